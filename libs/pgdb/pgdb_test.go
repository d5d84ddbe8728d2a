package pgdb_test

import (
	"context"
	"slices"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jsmplatform/jsm/libs/pgdb"
	"github.com/jsmplatform/jsm/libs/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// A table as a service's migration would make it: readable by the reader
// role, row-level security forced, a policy on the org setting.
var migrations = fstest.MapFS{
	"00001_things.sql": {Data: []byte(`
-- +goose Up
CREATE TABLE t.things (id text PRIMARY KEY, customer_org_id text NOT NULL, provider_org_id text NOT NULL);
GRANT SELECT ON t.things TO jsm_reader_t;
ALTER TABLE t.things ENABLE ROW LEVEL SECURITY;
ALTER TABLE t.things FORCE ROW LEVEL SECURITY;
CREATE POLICY parties_read ON t.things FOR SELECT TO jsm_reader_t
    USING (current_setting('jsm.org', true) IN (customer_org_id, provider_org_id));
CREATE POLICY owner_all ON t.things FOR ALL TO CURRENT_USER USING (true) WITH CHECK (true);
-- +goose Down
DROP TABLE t.things;
`)},
}

func TestReadAsSeesOnlyTheOrgsRows(t *testing.T) {
	ctx := context.Background()
	// One connection: every read below and the check after them share it.
	cfg := testkit.PostgresPool(t).Config().Copy()
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for range 2 { // migrating again changes nothing
		if err := pgdb.Migrate(ctx, pool, "t", migrations, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, `INSERT INTO t.things VALUES ('a', 'acme', 'itsec'), ('b', 'acme', 'other'), ('c', 'evil', 'other')`); err != nil {
		t.Fatal(err)
	}
	ids := func(org, sql string) []string {
		t.Helper()
		var out []string
		err := pgdb.ReadAs(ctx, pool, "t", org, sql, nil, func(rows pgx.Rows) error {
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					return err
				}
				out = append(out, id)
			}
			return rows.Err()
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(out)
		return out
	}
	// The query forgets to filter by org: the policy does it.
	for org, want := range map[string][]string{"acme": {"a", "b"}, "itsec": {"a"}, "other": {"b", "c"}, "nobody": nil} {
		if got := ids(org, `SELECT id FROM t.things`); !slices.Equal(got, want) {
			t.Errorf("%s sees %v, want %v", org, got, want)
		}
	}
	// The reader may not write, and the role and org end with the read.
	err = pgdb.ReadAs(ctx, pool, "t", "acme", `DELETE FROM t.things`, nil, func(pgx.Rows) error { return nil })
	if err == nil {
		t.Error("the reader deleted rows")
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM t.things`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("after the reads the pool sees %d rows (%v), want all 3", n, err)
	}
	if err := pgdb.ReadAs(ctx, pool, "t", "", `SELECT 1`, nil, func(pgx.Rows) error { return nil }); err == nil {
		t.Error("a read without an org ran")
	}
}
