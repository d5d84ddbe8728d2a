package main

import (
	"context"
	"log/slog"
	"testing"

	"github.com/jsmplatform/jsm/libs/pgdb"
	"github.com/jsmplatform/jsm/libs/testkit"
)

// Every table a query may read as jsm_reader must show an org only rows of
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
	rows, err := pool.Query(ctx, `
		SELECT c.oid::regclass::text, c.relrowsecurity, c.relforcerowsecurity,
		       EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polcmd IN ('r', '*')
		               AND $1::regrole = ANY (p.polroles))
		FROM pg_class c
		WHERE c.relkind IN ('r', 'p') AND has_table_privilege($1, c.oid, 'SELECT')
		  AND c.relnamespace::regnamespace::text NOT IN ('pg_catalog', 'information_schema')`, pgdb.ReaderRole)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := 0
	for rows.Next() {
		var table string
		var rls, forced, policy bool
		if err := rows.Scan(&table, &rls, &forced, &policy); err != nil {
			t.Fatal(err)
		}
		seen++
		if !rls || !forced || !policy {
			t.Errorf("%s is readable as %s without forced row-level security and a read policy for it (rls %t, forced %t, policy %t)",
				table, pgdb.ReaderRole, rls, forced, policy)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if seen < 10 {
		t.Fatalf("only %d tables readable as %s: the check looked in the wrong place", seen, pgdb.ReaderRole)
	}
	t.Logf("%d tables readable as %s, all scoped", seen, pgdb.ReaderRole)
}
