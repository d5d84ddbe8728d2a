package main

import (
	"context"
	"log/slog"
	"testing"

	"github.com/jsmplatform/jsm/libs/pgdb"
	"github.com/jsmplatform/jsm/libs/testkit"
)

// Every table a query may read as a reader (libs/pgdb ReaderRole of a
// schema) must show an org only rows of
// its own contracts: row-level security on, forced, with the parties'
// read policy. A service that grants a new table to the reader and forgets
// its policy fails here, whatever its own tests check.
func TestEveryReadableTableIsScopedToTheParties(t *testing.T) {
	ctx := context.Background()
	n := testkit.StartNATS(t)
	pool := testkit.PostgresPool(t)
	services, err := platformServices(ctx, serviceDeps{Store: n.Store(), Pool: pool, Logger: slog.New(slog.DiscardHandler), DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range services {
		if err := svc.Migrate(ctx); err != nil {
			t.Fatalf("%s: %v", svc.Name(), err)
		}
	}
	// Each schema's reader, and the shared reader of old, with every table
	// it may read anywhere in the database.
	rows, err := pool.Query(ctx, `
		SELECT r.rolname, c.oid::regclass::text, c.relnamespace::regnamespace::text,
		       c.relrowsecurity, c.relforcerowsecurity,
		       EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polcmd IN ('r', '*')
		               AND r.oid = ANY (p.polroles))
		FROM pg_roles r CROSS JOIN pg_class c
		WHERE (r.rolname = $1 OR r.rolname IN (SELECT $1 || '_' || nspname FROM pg_namespace))
		  AND c.relkind IN ('r', 'p') AND has_table_privilege(r.oid, c.oid, 'SELECT')
		  AND c.relnamespace::regnamespace::text NOT IN ('pg_catalog', 'information_schema')`, pgdb.SharedReaderRole)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := 0
	for rows.Next() {
		var reader, table, schema string
		var rls, forced, policy bool
		if err := rows.Scan(&reader, &table, &schema, &rls, &forced, &policy); err != nil {
			t.Fatal(err)
		}
		seen++
		if reader != pgdb.ReaderRole(schema) {
			t.Errorf("%s may read %s, a table of another schema", reader, table)
		}
		if !rls || !forced || !policy {
			t.Errorf("%s is readable as %s without forced row-level security and a read policy for it (rls %t, forced %t, policy %t)",
				table, reader, rls, forced, policy)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if seen < 10 {
		t.Fatalf("only %d tables readable by the readers: the check looked in the wrong place", seen)
	}
	t.Logf("%d tables readable by the schemas' readers, each its own schema's, all scoped", seen)
}
