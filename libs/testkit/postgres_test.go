package testkit

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

func TestPostgresGivesFreshDatabases(t *testing.T) {
	ctx := context.Background()
	t0 := time.Now()
	dsn1 := Postgres(t)
	t.Logf("first database (incl. server start): %v", time.Since(t0))
	t0 = time.Now()
	dsn2 := Postgres(t)
	t.Logf("second database: %v", time.Since(t0))
	if dsn1 == dsn2 {
		t.Fatalf("same DSN twice: %s", dsn1)
	}

	c1, err := pgx.Connect(ctx, dsn1)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close(ctx)
	c2, err := pgx.Connect(ctx, dsn2)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close(ctx)

	var db1, db2 string
	if err := c1.QueryRow(ctx, "select current_database()").Scan(&db1); err != nil {
		t.Fatal(err)
	}
	if err := c2.QueryRow(ctx, "select current_database()").Scan(&db2); err != nil {
		t.Fatal(err)
	}
	if db1 == db2 || db1 == "postgres" {
		t.Fatalf("databases %q and %q", db1, db2)
	}

	for _, c := range []*pgx.Conn{c1, c2} {
		var n int
		if err := c.QueryRow(ctx, "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("new database has %d relations in public", n)
		}
	}
	if _, err := c1.Exec(ctx, "create table only_in_one (id int)"); err != nil {
		t.Fatal(err)
	}
	var exists bool
	if err := c2.QueryRow(ctx, "select to_regclass('public.only_in_one') is not null").Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Fatal("table of the first database visible in the second")
	}
}

func TestPostgresDropsDatabaseAtCleanup(t *testing.T) {
	var name string
	t.Run("inner", func(t *testing.T) {
		pool := PostgresPool(t)
		if err := pool.QueryRow(context.Background(), "select current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
		// A connection left open must not keep the database alive.
		conn, err := pgx.Connect(context.Background(), Postgres(t))
		if err != nil {
			t.Fatal(err)
		}
		_ = conn
	})
	var n int
	if err := pgShared.admin.QueryRow(context.Background(),
		"select count(*) from pg_database where datname = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("database %s still exists after the test", name)
	}
}

func BenchmarkPostgresCreateDatabase(b *testing.B) {
	for b.Loop() {
		Postgres(b)
	}
}

func TestWithDatabase(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:p@h:5/postgres?sslmode=disable": "postgres://u:p@h:5/t_x?sslmode=disable",
		"host=h user=u dbname=postgres":               "host=h user=u dbname=postgres dbname='t_x'",
	} {
		got, err := pgWithDatabase(in, "t_x")
		if err != nil || got != want {
			t.Errorf("pgWithDatabase(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
