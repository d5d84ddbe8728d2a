// Package pgdb opens PostgreSQL pools and applies a service's embedded
// migrations (goose) inside the service's own schema.
package pgdb

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
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

// ReaderRole is the role queries run as (see ReadAs). It owns nothing, so
// row-level security applies to it; migrations grant it what it may read
// and give each table a policy on OrgSetting.
const ReaderRole = "jsm_reader"

// OrgSetting holds the calling org while a query runs as ReaderRole; a
// policy reads it with current_setting('jsm.org', true).
const OrgSetting = "jsm.org"

// ReadAs runs one query on behalf of org: as ReaderRole with OrgSetting set,
// both for this transaction only, so the tables' row-level security policies
// show the query only rows of contracts org is a party to, whatever its
// WHERE clause says. It costs one round trip, like a plain query: both
// statements go in one pipeline, one implicit transaction. each is called
// with the query's rows.
func ReadAs(ctx context.Context, pool *pgxpool.Pool, org string, sql string, args []any, each func(pgx.Rows) error) error {
	if org == "" {
		return errors.New("pgdb: a read needs an org")
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT set_config('role', $1, true), set_config($2, $3, true)`, ReaderRole, OrgSetting, org)
	b.Queue(sql, args...).Query(each)
	return pool.SendBatch(ctx, b).Close()
}

// Migrate creates schema and applies the .sql files of fsys (goose format)
// in order, recording them in <schema>.goose_db_version. A session advisory
// lock serialises instances starting at the same time. ReaderRole exists
// before the first migration runs, may use the schema, and the migrating
// user may become it.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema string, fsys fs.FS, log *slog.Logger) error {
	if _, err := pool.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize()); err != nil {
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
	role := pgx.Identifier{ReaderRole}.Sanitize()
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// Instances migrating at the same time take turns; services in other
		// databases of the cluster may still race to create the role.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('jsm.pgdb.reader'))`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			DO $$ BEGIN
				IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '`+ReaderRole+`') THEN
					CREATE ROLE `+role+` NOLOGIN;
				END IF;
			EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
			END $$`); err != nil {
			return err
		}
		var member bool
		if err := tx.QueryRow(ctx, `SELECT pg_has_role(current_user, $1, 'MEMBER')`, ReaderRole).Scan(&member); err != nil {
			return err
		}
		if !member {
			if _, err := tx.Exec(ctx, `GRANT `+role+` TO CURRENT_USER`); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `GRANT USAGE ON SCHEMA `+pgx.Identifier{schema}.Sanitize()+` TO `+role)
		return err
	})
	if err != nil {
		return fmt.Errorf("role %s for schema %s: %w", ReaderRole, schema, err)
	}
	return nil
}
