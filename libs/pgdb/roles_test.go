package pgdb_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jsmplatform/jsm/libs/pgdb"
	"github.com/jsmplatform/jsm/libs/testkit"
)

// schemaMigrations is a service's read model as its migrations make it
// today: first granted to the shared reader with a write policy for the
// migrating user, then (the later migration) moved to the schema's reader.
func schemaMigrations(schema string) (old, all fstest.MapFS) {
	old = fstest.MapFS{"00001_things.sql": {Data: []byte(`
-- +goose Up
CREATE TABLE ` + schema + `.things (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, org_id text NOT NULL);
GRANT SELECT ON ` + schema + `.things TO jsm_reader;
ALTER TABLE ` + schema + `.things ENABLE ROW LEVEL SECURITY;
ALTER TABLE ` + schema + `.things FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_read ON ` + schema + `.things FOR SELECT TO jsm_reader USING (org_id = current_setting('jsm.org', true));
CREATE POLICY writes ON ` + schema + `.things FOR ALL TO CURRENT_USER USING (true) WITH CHECK (true);
-- +goose Down
DROP TABLE ` + schema + `.things;
`)}}
	all = fstest.MapFS{"00002_reader.sql": {Data: []byte(`
-- +goose Up
ALTER POLICY owner_read ON ` + schema + `.things TO jsm_reader_` + schema + `;
GRANT SELECT ON ` + schema + `.things TO jsm_reader_` + schema + `;
REVOKE ALL ON ` + schema + `.things FROM jsm_reader;
REVOKE ALL ON SCHEMA ` + schema + ` FROM jsm_reader;
-- +goose Down
SELECT 1;
`)}}
	all["00001_things.sql"] = old["00001_things.sql"]
	return old, all
}

func randomName(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func loginPool(t *testing.T, dsn string, l pgdb.Login) *pgxpool.Pool {
	t.Helper()
	ldsn, err := pgdb.WithLogin(dsn, l)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgdb.Open(context.Background(), ldsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func wantDenied(t *testing.T, what string, err error) {
	t.Helper()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		t.Errorf("%s: got %v, want permission denied (42501)", what, err)
	}
}

// Two services each log in as their own role: each migrates, writes and
// reads its own schema, and may neither read, write, nor create anything
// in the other's, not even through the other's reader. One of them
// upgrades a database its migrations ran on as the superuser.
func TestEachLoginOwnsOnlyItsSchema(t *testing.T) {
	ctx := context.Background()
	dsn := testkit.Postgres(t)
	admin := loginPoolAdmin(t, dsn)
	suffix := randomName(t)
	trail := pgdb.Login{Role: "jsm_t_trail_" + suffix, Password: "p'w " + suffix, Schemas: []string{"ttrail"}}
	contracts := pgdb.Login{Role: "jsm_t_contracts_" + suffix, Password: "pw2" + suffix, Schemas: []string{"tcontracts"}}

	// contracts' schema predates the roles: migrated (old files) by the superuser.
	oldContracts, allContracts := schemaMigrations("tcontracts")
	if err := pgdb.Migrate(ctx, admin, "tcontracts", oldContracts, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `INSERT INTO tcontracts.things (org_id) VALUES ('acme'), ('evil')`); err != nil {
		t.Fatal(err)
	}
	for range 2 { // provisioning again changes nothing
		for _, l := range []pgdb.Login{trail, contracts} {
			if err := pgdb.Provision(ctx, admin, l); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, allTrail := schemaMigrations("ttrail")
	tp, cp := loginPool(t, dsn, trail), loginPool(t, dsn, contracts)
	for pool, m := range map[*pgxpool.Pool]struct {
		schema string
		fs     fstest.MapFS
	}{tp: {"ttrail", allTrail}, cp: {"tcontracts", allContracts}} {
		if err := pgdb.Migrate(ctx, pool, m.schema, m.fs, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO `+m.schema+`.things (org_id) VALUES ('acme')`); err != nil {
			t.Fatalf("%s writes its own table: %v", m.schema, err)
		}
	}
	count := func(pool *pgxpool.Pool, schema, org string) int {
		t.Helper()
		var n int
		err := pgdb.ReadAs(ctx, pool, schema, org, `SELECT count(*) FROM `+schema+`.things`, nil, func(rows pgx.Rows) error {
			for rows.Next() {
				if err := rows.Scan(&n); err != nil {
					return err
				}
			}
			return rows.Err()
		})
		if err != nil {
			t.Fatalf("read %s as %s: %v", schema, org, err)
		}
		return n
	}
	if n := count(cp, "tcontracts", "acme"); n != 2 {
		t.Errorf("acme reads %d of contracts' rows, want 2 (the superuser's and the login's)", n)
	}
	if n := count(tp, "ttrail", "acme"); n != 1 {
		t.Errorf("acme reads %d of the trail's rows, want 1", n)
	}

	_, err := tp.Exec(ctx, `SELECT * FROM tcontracts.things`)
	wantDenied(t, "the trail selects from contracts' schema", err)
	err = pgdb.ReadAs(ctx, tp, "tcontracts", "acme", `SELECT * FROM tcontracts.things`, nil, func(pgx.Rows) error { return nil })
	wantDenied(t, "the trail becomes contracts' reader", err)
	err = pgdb.ReadAs(ctx, tp, "ttrail", "acme", `SELECT * FROM tcontracts.things`, nil, func(pgx.Rows) error { return nil })
	wantDenied(t, "the trail's reader selects from contracts' schema", err)
	_, err = tp.Exec(ctx, `SET ROLE jsm_reader`)
	wantDenied(t, "the trail becomes the shared reader", err)
	_, err = tp.Exec(ctx, `INSERT INTO tcontracts.things (org_id) VALUES ('x')`)
	wantDenied(t, "the trail writes contracts' table", err)
	_, err = tp.Exec(ctx, `DELETE FROM tcontracts.things`)
	wantDenied(t, "the trail deletes from contracts' table", err)
	_, err = tp.Exec(ctx, `CREATE TABLE tcontracts.planted (x int)`)
	wantDenied(t, "the trail creates in contracts' schema", err)
	_, err = tp.Exec(ctx, `CREATE TABLE public.planted (x int)`)
	wantDenied(t, "the trail creates in schema public", err)
	_, err = tp.Exec(ctx, `CREATE SCHEMA planted`)
	wantDenied(t, "the trail creates a schema", err)
	_, err = tp.Exec(ctx, `CREATE ROLE planted`)
	wantDenied(t, "the trail creates a role", err)
	_, err = cp.Exec(ctx, `SELECT * FROM ttrail.things`)
	wantDenied(t, "contracts selects from the trail's schema", err)

	// The shared reader of old is left nothing to read.
	var readable int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_class WHERE relnamespace IN ('ttrail'::regnamespace, 'tcontracts'::regnamespace) AND has_table_privilege('jsm_reader', oid, 'SELECT')`).Scan(&readable); err != nil || readable != 0 {
		t.Errorf("jsm_reader may still read %d tables (%v)", readable, err)
	}
}

func loginPoolAdmin(t *testing.T, dsn string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgdb.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// A login nobody provisioned cannot make its reader itself, and is told
// who can.
func TestMigrateAsAnUnprovisionedLoginSaysWhatIsMissing(t *testing.T) {
	ctx := context.Background()
	dsn := testkit.Postgres(t)
	admin := loginPoolAdmin(t, dsn)
	suffix := randomName(t)
	l := pgdb.Login{Role: "jsm_t_bare_" + suffix, Password: "pw", Schemas: []string{"bare_" + suffix}}
	if _, err := admin.Exec(ctx, `CREATE ROLE `+l.Role+` LOGIN; CREATE SCHEMA `+l.Schemas[0]+` AUTHORIZATION `+l.Role); err != nil {
		t.Fatal(err)
	}
	_, all := schemaMigrations(l.Schemas[0])
	err := pgdb.Migrate(ctx, loginPool(t, dsn, l), l.Schemas[0], all, nil)
	if err == nil || !strings.Contains(err.Error(), "jsm pg-logins") {
		t.Fatalf("migrate as an unprovisioned login: %v, want a hint at jsm pg-logins", err)
	}
}
