package pglocal_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jsmplatform/jsm/libs/pglocal"
)

func query(t *testing.T, c *pglocal.Cluster, sql string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func exec1(t *testing.T, c *pglocal.Cluster, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func start(t *testing.T, dir string, port int, opts ...pglocal.Option) *pglocal.Cluster {
	t.Helper()
	if opts == nil {
		opts = []pglocal.Option{pglocal.Unsafe(), pglocal.MaxConnections(50)}
	}
	c, err := pglocal.Start(context.Background(), dir, port, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	return c
}

func TestStartStopRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pg")
	t0 := time.Now()
	c := start(t, dir, 0)
	t.Logf("initdb+start: %v, port %d, bin %s", time.Since(t0), c.Port, c.BinDir)
	if c.Port == 0 || c.Reused {
		t.Fatalf("port %d reused %v", c.Port, c.Reused)
	}
	if got := query(t, c, "select 1"); got != 1 {
		t.Fatalf("select 1 = %d", got)
	}
	if got := query(t, c, "select current_setting('max_connections')::int"); got != 50 {
		t.Fatalf("max_connections = %d", got)
	}
	exec1(t, c, "create table kept (id int primary key); insert into kept values (1), (2)")
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(context.Background()); err != nil {
		t.Fatalf("second stop: %v", err)
	}

	t0 = time.Now()
	c2 := start(t, dir, 0)
	t.Logf("restart: %v, port %d", time.Since(t0), c2.Port)
	if got := query(t, c2, "select count(*) from kept"); got != 2 {
		t.Fatalf("rows after restart = %d", got)
	}

	// Starting again while it runs attaches to the running server.
	c3, err := pglocal.Start(context.Background(), dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !c3.Reused || c3.Port != c2.Port {
		t.Fatalf("second start: reused %v port %d, want port %d", c3.Reused, c3.Port, c2.Port)
	}
	if err := c2.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestCrashRecovery(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pg")
	// Not Unsafe: with synchronous_commit=off a crash may lose the last
	// commits (fsync=off alone survives a crash of the server, not of the OS).
	durable := []pglocal.Option{pglocal.Setting("fsync", "off")}
	c := start(t, dir, 0, durable...)
	exec1(t, c, "create table kept (id int primary key); insert into kept values (1)")

	// pg_ctl -m immediate.
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	c = start(t, dir, 0, durable...)
	if got := query(t, c, "select count(*) from kept"); got != 1 {
		t.Fatalf("rows after immediate stop = %d", got)
	}

	// SIGKILL of the postmaster: postmaster.pid stays behind.
	pidFile := filepath.Join(c.DataDir(), "postmaster.pid")
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	fmt.Sscan(strings.SplitN(string(b), "\n", 2)[0], &pid)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for syscall.Kill(pid, 0) == nil {
		time.Sleep(10 * time.Millisecond)
	}
	t0 := time.Now()
	c = start(t, dir, 0, durable...)
	t.Logf("start after SIGKILL: %v", time.Since(t0))
	if got := query(t, c, "select count(*) from kept"); got != 1 {
		t.Fatalf("rows after SIGKILL = %d", got)
	}
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	// A stale postmaster.pid naming a live process that is not postgres
	// (a pid reused after a crash).
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() }()
	stale := strings.SplitN(string(b), "\n", 2)
	if err := os.WriteFile(pidFile, []byte(fmt.Sprintf("%d\n%s", sleeper.Process.Pid, stale[1])), 0o600); err != nil {
		t.Fatal(err)
	}
	c = start(t, dir, 0, durable...)
	if c.Reused {
		t.Fatal("attached to a stale pid file")
	}
	if got := query(t, c, "select count(*) from kept"); got != 1 {
		t.Fatalf("rows after stale pid = %d", got)
	}
}

func TestFixedPortAndLongPath(t *testing.T) {
	// A path too long for a unix socket: TCP only.
	dir := filepath.Join(t.TempDir(), strings.Repeat("x", 100), "pg")
	c := start(t, dir, 0)
	if got := query(t, c, "select 1"); got != 1 {
		t.Fatal(got)
	}
	port := c.Port
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	c = start(t, dir, port)
	if c.Port != port {
		t.Fatalf("port %d, want %d", c.Port, port)
	}
}

func TestStartFailureIncludesLog(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pg")
	_, err := pglocal.Start(context.Background(), dir, 0, pglocal.Setting("shared_buffers", "nonsense"))
	if err == nil {
		t.Fatal("start with a bad setting succeeded")
	}
	if !strings.Contains(err.Error(), "shared_buffers") {
		t.Fatalf("error lacks the log: %v", err)
	}
	t.Logf("%v", err)
}

// TestStopOnExit runs a child process that starts a cluster, arms the
// watchdog and exits without stopping it.
func TestStopOnExit(t *testing.T) {
	if dir := os.Getenv("PGLOCAL_HELPER_DIR"); dir != "" {
		c, err := pglocal.Start(context.Background(), dir, 0, pglocal.Unsafe())
		if err != nil {
			t.Fatal(err)
		}
		if err := c.StopOnExit(false); err != nil {
			t.Fatal(err)
		}
		os.Exit(0) // no Stop
	}
	dir := filepath.Join(t.TempDir(), "pg")
	cmd := exec.Command(os.Args[0], "-test.run=^TestStopOnExit$")
	cmd.Env = append(os.Environ(), "PGLOCAL_HELPER_DIR="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	pidFile := filepath.Join(dir, "data", "postmaster.pid")
	if _, err := os.Stat(pidFile); err != nil {
		t.Fatalf("helper left no running cluster: %v", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat(pidFile); os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("cluster still running 15 s after its process exited")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
