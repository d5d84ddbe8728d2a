// Package pgdb opens PostgreSQL pools and applies a service's embedded
// migrations (goose) inside the service's own schema.
package pgdb

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/jsmplatform/jsm/libs/telemetry"
)

// Open connects a pool and checks the server answers.
func Open(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	pool, err := New(dsn)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ping postgres: %w", err)
	}
	return pool, nil
}

// New makes a pool without connecting: PostgreSQL need not be up yet (the
// pool connects when first used). Only a DSN that does not parse fails.
func New(dsn string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse postgres dsn: %w", err)
	}
	// Queries become spans only inside a traced piece of work (a recording
	// span in their context): no root span per background query.
	cfg.ConnConfig.Tracer = otelpgx.NewTracer(otelpgx.WithDisableAcquireTracer(), otelpgx.WithTracerProvider(telemetry.TracerProvider()))
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres pool: %w", err)
	}
	return pool, nil
}

// SharedReaderRole is the one reader every service's queries ran as before
// each schema had its own. Migrations already applied still grant to it, so
// it exists; each schema's later migration moves its grants and policies to
// ReaderRole(schema) and leaves it nothing to read.
const SharedReaderRole = "jsm_reader"

// ReaderRole is the role queries on schema run as (see ReadAs). It owns
// nothing, so row-level security applies to it; migrations grant it what it
// may read of schema, and nothing of any other schema, and give each table
// a policy on OrgSetting. Only the schema's owner may become it, so a
// service's login cannot read another service's tables even through it.
func ReaderRole(schema string) string { return SharedReaderRole + "_" + schema }

// OrgSetting holds the calling org while a query runs as ReaderRole; a
// policy reads it with current_setting('jsm.org', true).
const OrgSetting = "jsm.org"

// ReadAs runs one query on schema on behalf of org: as ReaderRole(schema)
// with OrgSetting set,
// both for this transaction only, so the tables' row-level security policies
// show the query only rows of contracts org is a party to, whatever its
// WHERE clause says. It costs one round trip, like a plain query: both
// statements go in one pipeline, one implicit transaction. each is called
// with the query's rows.
func ReadAs(ctx context.Context, pool *pgxpool.Pool, schema, org string, sql string, args []any, each func(pgx.Rows) error) error {
	if org == "" {
		return errors.New("pgdb: a read needs an org")
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT set_config('role', $1, true), set_config($2, $3, true)`, ReaderRole(schema), OrgSetting, org)
	b.Queue(sql, args...).Query(each)
	return pool.SendBatch(ctx, b).Close()
}

// Migrate creates schema (unless it exists) and applies the .sql files of
// fsys (goose format) in order, recording them in <schema>.goose_db_version.
// A session advisory lock serialises instances starting at the same time.
// SharedReaderRole and ReaderRole(schema) exist before the first migration
// runs, the latter may use the schema, and the migrating user may become
// it. A superuser creates whatever is missing; a service's own login (see
// Provision) finds it all made already and needs no right beyond its schema.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema string, fsys fs.FS, log *slog.Logger) error {
	// CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the
	// schema exists, which a service's login does not have.
	if _, err := pool.Exec(ctx, `DO $$ BEGIN
		IF to_regnamespace(`+quoteLiteral(schema)+`) IS NULL THEN
			CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()+`;
		END IF; END $$`); err != nil {
		return fmt.Errorf("create schema %s: %w", schema, err)
	}
	if err := ensureReader(ctx, pool, schema); err != nil {
		return err
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return err
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	opts := []goose.ProviderOption{goose.WithTableName(schema + ".goose_db_version"), goose.WithSessionLocker(locker)}
	if log != nil {
		opts = append(opts, goose.WithSlog(log))
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys, opts...)
	if err != nil {
		return fmt.Errorf("migrations of %s: %w", schema, err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate %s: %w", schema, err)
	}
	return nil
}

func ensureReader(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	reader := ReaderRole(schema)
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// Instances migrating at the same time take turns; services in other
		// databases of the cluster may still race to create the role.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('jsm.pgdb.reader'))`); err != nil {
			return err
		}
		// Applied migrations grant to the shared reader: it must exist,
		// though nobody needs to become it any more.
		for _, role := range []string{SharedReaderRole, reader} {
			if err := createRole(ctx, tx, role, "NOLOGIN"); err != nil {
				return err
			}
		}
		var me string
		if err := tx.QueryRow(ctx, `SELECT current_user`).Scan(&me); err != nil {
			return err
		}
		if err := grantMembership(ctx, tx, reader, me); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `GRANT USAGE ON SCHEMA `+pgx.Identifier{schema}.Sanitize()+` TO `+pgx.Identifier{reader}.Sanitize())
		return err
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42501" {
		return fmt.Errorf("role %s for schema %s: %w (a service's own login finds its roles made by an administrator: jsm pg-logins)", reader, schema, err)
	}
	if err != nil {
		return fmt.Errorf("role %s for schema %s: %w", reader, schema, err)
	}
	return nil
}

// createRole creates role with attrs unless it exists: only then does it
// need a right (CREATEROLE) that a service's login lacks.
func createRole(ctx context.Context, tx pgx.Tx, role, attrs string) error {
	_, err := tx.Exec(ctx, `
		DO $$ BEGIN
			IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = `+quoteLiteral(role)+`) THEN
				CREATE ROLE `+pgx.Identifier{role}.Sanitize()+` `+attrs+`;
			END IF;
		EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
		END $$`)
	return err
}

// grantMembership lets member become role, unless it already may.
func grantMembership(ctx context.Context, tx pgx.Tx, role, member string) error {
	var ok bool
	if err := tx.QueryRow(ctx, `SELECT pg_has_role($1, $2, 'MEMBER')`, member, role).Scan(&ok); err != nil {
		return err
	}
	if ok {
		return nil
	}
	_, err := tx.Exec(ctx, `GRANT `+pgx.Identifier{role}.Sanitize()+` TO `+pgx.Identifier{member}.Sanitize())
	return err
}

// quoteLiteral makes s an SQL string literal (standard_conforming_strings).
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
