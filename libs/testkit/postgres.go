package testkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jsmplatform/jsm/libs/pglocal"
)

// PostgresDSNEnv names a DSN to a maintenance database (e.g. "postgres") on
// a running server, as a superuser or a role with CREATEDB. When set, tests
// create their databases there instead of starting a cluster of their own.
const PostgresDSNEnv = "JSM_TEST_PG_DSN"

// The server shared by all tests of this process.
var pgShared struct {
	once     sync.Once
	err      error
	admin    *pgxpool.Pool    // to the maintenance database
	baseDSN  string           // the maintenance DSN
	cluster  *pglocal.Cluster // nil when JSM_TEST_PG_DSN is used
	dir      string           // the cluster's temp folder
	strategy string           // CREATE DATABASE strategy clause
}

// Main runs the package's tests and then stops the PostgreSQL cluster that
// Postgres started, if any; call it from TestMain:
//
//	func TestMain(m *testing.M) { testkit.Main(m) }
//
// Without it the cluster is still stopped and removed, by a watchdog, about
// a second after the test process exits.
func Main(m *testing.M) {
	code := m.Run()
	stopSharedPostgres()
	os.Exit(code)
}

// Postgres returns the DSN of a new, empty database for this test only; it
// is dropped (WITH (FORCE), so open connections do not keep it) when the
// test ends. The server is $JSM_TEST_PG_DSN's or else a throwaway cluster
// started on first use (fsync off) and shared by the tests of the process.
func Postgres(t testing.TB) string {
	t.Helper()
	admin := sharedPostgres(t)
	name := "t_" + pgRandomHex(8)
	ident := pgx.Identifier{name}.Sanitize()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+ident+" TEMPLATE template0"+pgShared.strategy); err != nil {
		t.Fatalf("testkit: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			t.Logf("testkit: drop database %s: %v", name, err)
		}
	})
	dsn, err := pgWithDatabase(pgShared.baseDSN, name)
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	return dsn
}

// PostgresPool opens a pool to a new, empty database for this test only
// (see Postgres); the pool is closed and the database dropped when the
// test ends.
func PostgresPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	dsn := Postgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatalf("testkit: open pool: %v", err)
	}
	t.Cleanup(pool.Close) // runs before the database is dropped
	if err := pool.Ping(ctx); err != nil {
		t.Fatalf("testkit: ping %s: %v", dsn, err)
	}
	return pool
}

func sharedPostgres(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pgShared.once.Do(func() { pgShared.err = startSharedPostgres() })
	if pgShared.err != nil {
		t.Fatalf("testkit: postgres: %v", pgShared.err)
	}
	return pgShared.admin
}

func startSharedPostgres() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dsn := os.Getenv(PostgresDSNEnv)
	if dsn == "" {
		dir, err := os.MkdirTemp("", "jsm-testpg-")
		if err != nil {
			return err
		}
		if err := os.Chmod(dir, 0o755); err != nil { // the postgres user must enter it when we are root
			return err
		}
		c, err := pglocal.Start(ctx, dir, 0, pglocal.Unsafe(), pglocal.MaxConnections(200))
		if err != nil {
			_ = os.RemoveAll(dir)
			return fmt.Errorf("%w\n(install the server with tools/scripts/ensure-postgres.sh, or set %s)", err, PostgresDSNEnv)
		}
		if err := c.StopOnExit(true); err != nil {
			_ = c.Kill()
			_ = os.RemoveAll(dir)
			return err
		}
		pgShared.cluster, pgShared.dir = c, dir
		dsn = c.DSN("postgres")
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return fmt.Errorf("parse %s: %w", PostgresDSNEnv, err)
	}
	cfg.MaxConns = 4
	admin, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	var version int
	if err := admin.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		admin.Close()
		return fmt.Errorf("connect to maintenance database: %w", err)
	}
	if version >= 150000 {
		// Copying template0's files beats WAL-logging them block by block
		// for a tiny database; its checkpoints are cheap with fsync off.
		pgShared.strategy = " STRATEGY FILE_COPY"
	}
	pgShared.admin, pgShared.baseDSN = admin, dsn
	return nil
}

func stopSharedPostgres() {
	if pgShared.admin != nil {
		pgShared.admin.Close()
	}
	if pgShared.cluster != nil {
		if err := pgShared.cluster.Stop(context.Background()); err != nil {
			fmt.Fprintf(os.Stderr, "testkit: stop postgres: %v\n", err)
			_ = pgShared.cluster.Kill()
		}
		_ = os.RemoveAll(pgShared.dir)
	}
}

// pgWithDatabase replaces the database of a DSN (URL or key=value form).
func pgWithDatabase(dsn, db string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("parse dsn: %w", err)
		}
		u.Path, u.RawPath = "/"+db, ""
		return u.String(), nil
	}
	return dsn + " dbname='" + db + "'", nil // the last dbname wins
}

func pgRandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
