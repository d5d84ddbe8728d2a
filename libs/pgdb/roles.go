package pgdb

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Login is a service's own PostgreSQL login role. It owns the service's
// schemas and may become their readers (ReaderRole), and nothing else: no
// other schema's tables, no CREATE outside its schemas, no new roles or
// databases. A service connecting as it cannot read or change another
// service's read models, whatever its code does.
type Login struct {
	Role     string
	Password string
	Schemas  []string
}

// ServiceRole is the login role of service, e.g. jsm_trail.
func ServiceRole(service string) string { return "jsm_" + service }

// Provision makes l's role and schemas as an administrator (a superuser
// pool, e.g. the DSN PostgreSQL was set up with), and is safe to run again:
// the role gets l's password and only the attributes above; each schema,
// and everything in it, is handed to the role (a database migrated before
// the roles existed, by the superuser, upgrades here), with the write
// policies that named the old owner moved to it; the role loses any
// membership in SharedReaderRole, which could once read every schema.
// PUBLIC loses CREATE on schema public (PostgreSQL 15 and later's default).
func Provision(ctx context.Context, admin *pgxpool.Pool, l Login) error {
	if l.Role == "" || len(l.Schemas) == 0 {
		return errors.New("pgdb: a login needs a role and a schema")
	}
	err := pgx.BeginFunc(ctx, admin, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('jsm.pgdb.reader'))`); err != nil {
			return err
		}
		if err := createRole(ctx, tx, l.Role, "LOGIN"); err != nil {
			return err
		}
		if err := createRole(ctx, tx, SharedReaderRole, "NOLOGIN"); err != nil {
			return err
		}
		role := pgx.Identifier{l.Role}.Sanitize()
		// BYPASSRLS as the superuser services ran as had it: a service's
		// own writes cover every org (a projector's batch; the trail's COPY,
		// which PostgreSQL refuses under row-level security at all). Reads
		// on behalf of an org switch to the schema's reader, and attributes
		// are never inherited, so row-level security applies to those.
		var alter string
		if err := tx.QueryRow(ctx, `SELECT format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION BYPASSRLS INHERIT PASSWORD %L', $1::text, $2::text)`,
			l.Role, l.Password).Scan(&alter); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, alter); err != nil {
			return err
		}
		var shared bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_auth_members WHERE roleid = $1::regrole AND member = $2::regrole)`, SharedReaderRole, l.Role).Scan(&shared); err != nil {
			return err
		}
		if shared {
			if _, err := tx.Exec(ctx, `REVOKE `+pgx.Identifier{SharedReaderRole}.Sanitize()+` FROM `+role); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `REVOKE CREATE ON SCHEMA public FROM PUBLIC`); err != nil {
			return err
		}
		for _, schema := range l.Schemas {
			if err := handOver(ctx, tx, schema, l.Role); err != nil {
				return fmt.Errorf("schema %s: %w", schema, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("provision role %s: %w", l.Role, err)
	}
	return nil
}

// handOver gives schema and its objects to role, and makes the schema's
// reader, which role may become.
func handOver(ctx context.Context, tx pgx.Tx, schema, role string) error {
	ident, to := pgx.Identifier{schema}.Sanitize(), pgx.Identifier{role}.Sanitize()
	if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+ident+` AUTHORIZATION `+to); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `ALTER SCHEMA `+ident+` OWNER TO `+to); err != nil {
		return err
	}
	// Write policies were made TO CURRENT_USER, the migrating user: those
	// naming a table's owner alone follow the table to its new owner, or
	// forced row-level security would refuse the service its own writes.
	// Then the objects themselves (a sequence a table owns follows it).
	var stmts []string
	rows, err := tx.Query(ctx, `
		SELECT format('ALTER POLICY %I ON %s TO %I', p.polname, c.oid::regclass, $2::text)
		FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
		WHERE c.relnamespace = $1::regnamespace AND p.polroles = ARRAY[c.relowner]
		  AND c.relowner <> $2::regrole
		UNION ALL
		SELECT format('ALTER TABLE %s OWNER TO %I', c.oid::regclass, $2::text)
		FROM pg_class c
		WHERE c.relnamespace = $1::regnamespace AND c.relowner <> $2::regrole
		  AND (c.relkind IN ('r', 'p', 'v', 'm', 'f')
		       OR (c.relkind = 'S' AND NOT EXISTS (
		           SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i'))))
		UNION ALL
		SELECT format('ALTER ROUTINE %s OWNER TO %I', p.oid::regprocedure, $2::text)
		FROM pg_proc p WHERE p.pronamespace = $1::regnamespace AND p.proowner <> $2::regrole
		UNION ALL
		SELECT format('ALTER TYPE %s OWNER TO %I', t.oid::regtype, $2::text)
		FROM pg_type t
		WHERE t.typnamespace = $1::regnamespace AND t.typowner <> $2::regrole
		  AND t.typtype IN ('e', 'd', 'r') `, schema, role)
	if err != nil {
		return err
	}
	stmts, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, stmt := range stmts {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
	}
	reader := ReaderRole(schema)
	if err := createRole(ctx, tx, reader, "NOLOGIN"); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `GRANT USAGE ON SCHEMA `+ident+` TO `+pgx.Identifier{reader}.Sanitize()); err != nil {
		return err
	}
	return grantMembership(ctx, tx, reader, role)
}

// WithLogin is dsn (a URL) connecting as l's role with its password.
func WithLogin(dsn string, l Login) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return "", fmt.Errorf("pgdb: the DSN must be a postgres:// URL")
	}
	u.User = url.UserPassword(l.Role, l.Password)
	return u.String(), nil
}
