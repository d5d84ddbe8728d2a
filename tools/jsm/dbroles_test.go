package main

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jsmplatform/jsm/libs/pgdb"
	"github.com/jsmplatform/jsm/libs/pglocal"
	"github.com/jsmplatform/jsm/libs/testkit"
	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1/contractsv1connect"
	audits "github.com/jsmplatform/jsm/services/audits/projection"
	changes "github.com/jsmplatform/jsm/services/changeadvisory/projection"
	contracts "github.com/jsmplatform/jsm/services/contracts/projection"
	incidents "github.com/jsmplatform/jsm/services/incidents/projection"
	"github.com/jsmplatform/jsm/services/integration/ingest"
	"github.com/jsmplatform/jsm/services/integration/webhooks"
	patching "github.com/jsmplatform/jsm/services/patching/projection"
	reporting "github.com/jsmplatform/jsm/services/reporting/projection"
	trail "github.com/jsmplatform/jsm/services/trail/projection"
	"github.com/jsmplatform/jsm/tools/cluster"
)

func wantDenied(t *testing.T, what string, err error) {
	t.Helper()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		t.Errorf("%s: got %v, want permission denied (42501)", what, err)
	}
}

// `jsm up` runs every service as its own PostgreSQL role: each owns its
// schema's tables, the projectors and reads work, and the trail's login
// can neither read contracts' schema nor write or create anything in it.
func TestUpRunsEachServiceAsItsOwnPostgresRole(t *testing.T) {
	if _, err := pglocal.BinDir(); err != nil {
		t.Fatalf("make test installs PostgreSQL first: %v", err)
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	e, _ := startUp(t, dataDir)
	ctx := t.Context()

	tok, err := mintToken(tokenConfig{DataDir: dataDir, Org: "acme", User: "alice", Roles: []string{"org-admin"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	client := contractsv1connect.NewContractServiceClient(http.DefaultClient, e.HTTP)
	res, err := client.DraftContract(ctx, withToken(tok, &contractsv1.DraftContractRequest{CustomerOrgId: "acme", ProviderOrgId: "itsec", Title: "x"}))
	if err != nil {
		t.Fatalf("DraftContract: %v", err)
	}
	if _, err := client.GetContract(ctx, withToken(tok, &contractsv1.GetContractRequest{ContractId: res.Msg.GetContractId(), MinPosition: res.Msg.GetPosition()})); err != nil {
		t.Fatalf("GetContract as contracts' own role: %v", err)
	}

	admin, err := pgdb.Open(ctx, e.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	// The trail projected the draft, as its own role.
	deadline := time.Now().Add(20 * time.Second)
	for n := 0; n == 0; time.Sleep(100 * time.Millisecond) {
		if err := admin.QueryRow(ctx, `SELECT count(*) FROM trail.entries`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the trail recorded nothing")
		}
	}
	for service, schemas := range cluster.ServiceSchemas {
		rows, err := admin.Query(ctx, `SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = ANY ($1)`, schemas)
		if err != nil {
			t.Fatal(err)
		}
		var owners []string
		for rows.Next() {
			var o string
			if err := rows.Scan(&o); err != nil {
				t.Fatal(err)
			}
			owners = append(owners, o)
		}
		if rows.Err() != nil {
			t.Fatal(rows.Err())
		}
		if want := []string{pgdb.ServiceRole(service)}; !slices.Equal(owners, want) {
			t.Errorf("the tables of %v are owned by %v, want %v", schemas, owners, want)
		}
	}
	var connected []string
	rows, err := admin.Query(ctx, `SELECT DISTINCT usename::text FROM pg_stat_activity WHERE datname = 'jsm' AND usename LIKE 'jsm\_%' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			t.Fatal(err)
		}
		connected = append(connected, u)
	}
	var want []string
	for _, s := range slices.Sorted(maps.Keys(cluster.ServiceSchemas)) {
		want = append(want, pgdb.ServiceRole(s))
	}
	if !slices.Equal(connected, want) {
		t.Errorf("connected as %v, want %v", connected, want)
	}

	dsns, err := cluster.ProvisionLogins(ctx, e.Postgres, dataDir, []string{"trail"})
	if err != nil {
		t.Fatal(err)
	}
	tp, err := pgdb.Open(ctx, dsns["trail"])
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	var me string
	if err := tp.QueryRow(ctx, `SELECT current_user`).Scan(&me); err != nil || me != "jsm_trail" {
		t.Fatalf("the trail's DSN logs in as %q (%v)", me, err)
	}
	_, err = tp.Exec(ctx, `SELECT * FROM contracts.contracts`)
	wantDenied(t, "the trail selects from contracts' schema", err)
	_, err = tp.Exec(ctx, `SET ROLE jsm_reader_contracts`)
	wantDenied(t, "the trail becomes contracts' reader", err)
	_, err = tp.Exec(ctx, `SET ROLE jsm_reader`)
	wantDenied(t, "the trail becomes the shared reader", err)
	_, err = tp.Exec(ctx, `DELETE FROM contracts.contracts`)
	wantDenied(t, "the trail deletes contracts' rows", err)
	_, err = tp.Exec(ctx, `CREATE TABLE contracts.planted (x int)`)
	wantDenied(t, "the trail creates in contracts' schema", err)
	_, err = tp.Exec(ctx, `CREATE TABLE public.planted (x int)`)
	wantDenied(t, "the trail creates in schema public", err)
}

// withoutReaderMove is fsys without the migrations that moved each schema's
// reads off the shared reader: the files of a database made before.
func withoutReaderMove(t *testing.T, fsys fs.FS) fs.FS {
	t.Helper()
	out := fstest.MapFS{}
	err := fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, "_reader_of_this_schema.sql") {
			return err
		}
		data, err := fs.ReadFile(fsys, path)
		out[path] = &fstest.MapFile{Data: data}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A database the services migrated as the superuser, before they had roles
// of their own, upgrades: the administrator provisions the logins, each
// service migrates as its own, and every forced row-level security table
// still lets its owner write (the write policies followed the tables).
func TestDatabaseOfTheSuperuserUpgradesToServiceRoles(t *testing.T) {
	ctx := context.Background()
	dsn := testkit.Postgres(t)
	admin, err := pgdb.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	for schema, fsys := range map[string]fs.FS{
		contracts.Schema: contracts.Migrations(), incidents.Schema: incidents.Migrations(), patching.Schema: patching.Migrations(),
		changes.Schema: changes.Migrations(), audits.Schema: audits.Migrations(), reporting.Schema: reporting.Migrations(),
		trail.Schema: trail.Migrations(), ingest.Schema: ingest.Migrations(), webhooks.Schema: webhooks.Migrations(),
	} {
		if err := pgdb.Migrate(ctx, admin, schema, withoutReaderMove(t, fsys), nil); err != nil {
			t.Fatal(err)
		}
	}
	dataDir := t.TempDir()
	dsns, err := cluster.ProvisionLogins(ctx, dsn, dataDir, slices.Sorted(maps.Keys(cluster.ServiceSchemas)))
	if err != nil {
		t.Fatal(err)
	}
	n := testkit.StartNATS(t)
	poolOf := func(ctx context.Context, service string) (*pgxpool.Pool, error) {
		p, err := pgdb.New(dsns[service])
		if err == nil {
			t.Cleanup(p.Close)
		}
		return p, err
	}
	services, err := platformServices(ctx, serviceDeps{Store: n.Store(), PoolOf: poolOf, Logger: slog.New(slog.DiscardHandler), DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range services {
		if err := svc.Migrate(ctx); err != nil {
			t.Fatalf("%s migrates as its own role: %v", svc.Name(), err)
		}
	}
	rows, err := admin.Query(ctx, `
		SELECT c.oid::regclass::text
		FROM pg_class c
		WHERE c.relkind IN ('r', 'p') AND c.relforcerowsecurity
		  AND NOT EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid AND p.polcmd = '*' AND c.relowner = ANY (p.polroles))`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var table string
		if err := rows.Scan(&table); err != nil {
			t.Fatal(err)
		}
		t.Errorf("%s: forced row-level security and no write policy for its owner", table)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	var readable int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_class WHERE has_table_privilege('jsm_reader', oid, 'SELECT') AND relnamespace::regnamespace::text NOT IN ('pg_catalog', 'information_schema')`).Scan(&readable); err != nil || readable != 0 {
		t.Errorf("the shared reader may still read %d tables (%v)", readable, err)
	}
}

// `jsm pg-logins` makes the roles a deployment's services log in as, with
// the passwords of the environment, and refuses to run without one.
func TestPGLoginsCommandMakesEachServicesRole(t *testing.T) {
	dsn := testkit.Postgres(t)
	t.Setenv("JSM_PG_ADMIN_DSN", dsn)
	if _, err := jsm(t, "pg-logins"); err == nil {
		t.Fatal("pg-logins ran without the services' passwords")
	}
	for s := range cluster.ServiceSchemas {
		t.Setenv("JSM_PG_PASSWORD_"+strings.ToUpper(s), "pw-"+s)
	}
	out, err := jsm(t, "pg-logins")
	if err != nil || !strings.Contains(out, "jsm_integration owns ingest, webhooks") {
		t.Fatalf("pg-logins: %v\n%s", err, out)
	}
	admin, err := pgdb.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var owner string
	var super bool
	if err := admin.QueryRow(t.Context(), `SELECT nspowner::regrole::text, r.rolsuper FROM pg_namespace JOIN pg_roles r ON r.oid = nspowner WHERE nspname = 'trail'`).Scan(&owner, &super); err != nil {
		t.Fatal(err)
	}
	if owner != "jsm_trail" || super {
		t.Errorf("schema trail owned by %s (superuser %t), want jsm_trail", owner, super)
	}
}
