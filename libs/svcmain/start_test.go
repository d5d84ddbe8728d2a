package svcmain

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jsmplatform/jsm/libs/auth"
	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/natsx"
	"github.com/jsmplatform/jsm/libs/pgdb"
	"github.com/jsmplatform/jsm/libs/rpc"
	"github.com/jsmplatform/jsm/libs/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// A service started before NATS and PostgreSQL answers /healthz, reports
// not ready and serves no API while it waits; once NATS starts, then
// PostgreSQL, it creates its stream, migrates and becomes ready, in the
// same process, without a restart.
func TestServiceWaitsForNATSAndPostgres(t *testing.T) {
	natsPort, listen := freePort(t), freeAddr(t)
	realDSN := testkit.Postgres(t)
	pgAddr := freeAddr(t) // nothing listens there yet
	dsn := withHostPort(t, realDSN, pgAddr)

	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	var built *waiter
	go func() {
		done <- run(ctx, "waiter", listen, func(ctx context.Context, d Deps) (rpc.Service, error) {
			built = &waiter{pool: d.Pool, store: d.Store}
			return built, nil
		}, log, []string{"--nats-url", "nats://127.0.0.1:" + strconv.Itoa(natsPort), "--pg-dsn", dsn,
			"--jwt-public-key", publicKeyFile(t)})
	}()

	waitStatus(t, done, "http://"+listen+"/healthz", http.StatusOK)
	notReadyFor(t, done, listen, 2*time.Second)
	if !strings.Contains(logs.String(), "nats not ready, retrying") {
		t.Fatalf("no warning says what the service waits for:\n%s", logs.String())
	}

	ns, err := natsx.RunEmbedded(natsx.EmbeddedConfig{StoreDir: t.TempDir(), Port: natsPort})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	waitLog(t, logs, "postgres not ready, retrying")
	notReadyFor(t, done, listen, time.Second)

	stopProxy := proxy(t, pgAddr, hostPort(t, realDSN))
	defer stopProxy()
	waitStatus(t, done, "http://"+listen+"/readyz", http.StatusOK)

	// Ready means built on the late NATS and migrated on the late PostgreSQL.
	var n int
	if err := built.pool.QueryRow(ctx, `SELECT count(*) FROM waiter.seen`).Scan(&n); err != nil {
		t.Fatalf("the migration did not run: %v", err)
	}
	if _, err := built.store.JetStream().Stream(ctx, eventstore.DefaultStream); err != nil {
		t.Fatalf("stream: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("stopped with %v, want a clean stop", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("did not stop")
	}
}

// Shutdown while waiting for a dependency that never comes is a clean,
// prompt stop.
func TestServiceStopsWhileWaiting(t *testing.T) {
	listen := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, "waiter", listen, func(context.Context, Deps) (rpc.Service, error) {
			return nil, errors.New("never built: NATS is not there")
		}, slog.New(slog.DiscardHandler), []string{"--nats-url", "nats://" + freeAddr(t), "--pg-dsn", "postgres://u@" + freeAddr(t) + "/db",
			"--jwt-public-key", publicKeyFile(t)})
	}()
	waitStatus(t, done, "http://"+listen+"/readyz", http.StatusServiceUnavailable)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("stopped with %v, want a clean stop", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("still waiting after shutdown")
	}
}

// A wrong setting is not waited on: a DSN that does not parse, three
// replicas asked of a NATS server that is not clustered, or a setting the
// service's build finds missing, fail at once.
func TestServiceFailsFastOnWrongSettings(t *testing.T) {
	key := publicKeyFile(t)
	build := func(ctx context.Context, d Deps) (rpc.Service, error) {
		return &waiter{pool: d.Pool, store: d.Store}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := run(ctx, "waiter", freeAddr(t), build, slog.New(slog.DiscardHandler),
		[]string{"--pg-dsn", "postgres://u@127.0.0.1:1/db?sslmode=bogus", "--jwt-public-key", key})
	if err == nil || !strings.Contains(err.Error(), "dsn") {
		t.Fatalf("a DSN that does not parse: %v", err)
	}

	n := testkit.StartNATS(t)
	start := time.Now()
	err = run(ctx, "waiter", freeAddr(t), build, slog.New(slog.DiscardHandler),
		[]string{"--nats-url", n.URL(), "--pg-dsn", testkit.Postgres(t), "--replicas", "3", "--jwt-public-key", key})
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != 10074 {
		t.Fatalf("3 replicas on one server: %v, want JetStream's refusal (10074)", err)
	}
	if time.Since(start) > 20*time.Second {
		t.Fatalf("a wrong setting took %v to fail", time.Since(start))
	}

	missing := errors.New("JSM_WAITER_KEY is required")
	err = run(ctx, "waiter", freeAddr(t), func(context.Context, Deps) (rpc.Service, error) { return nil, missing },
		slog.New(slog.DiscardHandler), []string{"--nats-url", n.URL(), "--pg-dsn", testkit.Postgres(t), "--jwt-public-key", key})
	if !errors.Is(err, missing) {
		t.Fatalf("a service setting missing: %v, want it returned", err)
	}
}

// waiter is the smallest service: one migration, a stream, no API.
type waiter struct {
	pool  *pgxpool.Pool
	store *eventstore.Store
}

func (w *waiter) Name() string { return "waiter" }
func (w *waiter) Migrate(ctx context.Context) error {
	return pgdb.Migrate(ctx, w.pool, "waiter", fstest.MapFS{
		"00001_seen.sql": {Data: []byte("-- +goose Up\nCREATE TABLE waiter.seen (id int);\n")},
	}, nil)
}
func (w *waiter) Run(ctx context.Context) error                   { <-ctx.Done(); return nil }
func (w *waiter) Handlers(...connect.HandlerOption) []rpc.Handler { return nil }
func (w *waiter) Policy() auth.Policy                             { return auth.Policy{} }

// notReadyFor checks /readyz says 503 and the APIs Unavailable for d.
func notReadyFor(t *testing.T, done <-chan error, listen string, d time.Duration) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if got := status(t, done, "http://"+listen+"/readyz"); got != http.StatusServiceUnavailable {
			t.Fatalf("/readyz %d while waiting, want 503", got)
		}
		if got := status(t, done, "http://"+listen+"/jsm.any.v1.Service/Call"); got != http.StatusServiceUnavailable {
			t.Fatalf("an API call got %d while waiting, want 503", got)
		}
	}
}

func waitStatus(t *testing.T, done <-chan error, u string, want int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for status(t, done, u) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered %d", u, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// status is u's HTTP status, 0 when nothing answers; it fails the test if
// the service has stopped.
func status(t *testing.T, done <-chan error, u string) int {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("the service stopped: %v", err)
	default:
	}
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func waitLog(t *testing.T, logs *syncBuffer, want string) {
	t.Helper()
	for end := time.Now().Add(time.Minute); !strings.Contains(logs.String(), want); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("never logged %q:\n%s", want, logs.String())
		}
	}
}

// proxy forwards TCP connections from listen to target until stopped: a
// PostgreSQL that starts late.
func proxy(t *testing.T, listen, target string) (stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			wg.Add(2)
			go func() { defer wg.Done(); _, _ = io.Copy(out, in); out.Close() }()
			go func() { defer wg.Done(); _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
	return func() { ln.Close() }
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func freeAddr(t *testing.T) string { return "127.0.0.1:" + strconv.Itoa(freePort(t)) }

// withHostPort is dsn pointed at addr; hostPort is where dsn points.
func withHostPort(t *testing.T, dsn, addr string) string {
	t.Helper()
	if u, err := url.Parse(dsn); err == nil && strings.HasPrefix(u.Scheme, "postgres") {
		u.Host = addr
		return u.String()
	}
	host, port, _ := net.SplitHostPort(addr)
	return fmt.Sprintf("%s host=%s port=%s", dsn, host, port)
}

func hostPort(t *testing.T, dsn string) string {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port)))
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// publicKeyFile is a PEM file with a fresh Ed25519 public key.
func publicKeyFile(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A service of a three-node cluster started while only one node is up (no
// JetStream meta leader, no peers to place three replicas on) waits, not
// ready, and becomes ready once the other two join, without a restart.
func TestServiceWaitsForTheJetStreamClusterToForm(t *testing.T) {
	const nodes = 3
	var clients, routes []int
	for range nodes {
		clients, routes = append(clients, freePort(t)), append(routes, freePort(t))
	}
	node := func(i int) *server.Server {
		opts := &server.Options{
			ServerName: fmt.Sprintf("n%d", i), Host: "127.0.0.1", Port: clients[i],
			JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
			Cluster: server.ClusterOpts{Name: "jsm", Host: "127.0.0.1", Port: routes[i]},
		}
		for j := range nodes {
			if j != i {
				opts.Routes = append(opts.Routes, &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", routes[j])})
			}
		}
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatalf("node %d not ready", i)
		}
		t.Cleanup(s.Shutdown)
		return s
	}
	node(0)
	var urls []string
	for _, p := range clients {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}

	listen := freeAddr(t)
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, "waiter", listen, func(ctx context.Context, d Deps) (rpc.Service, error) {
			return &waiter{pool: d.Pool, store: d.Store}, nil
		}, slog.New(slog.NewTextHandler(logs, nil)), []string{"--nats-url", strings.Join(urls, ","), "--pg-dsn", testkit.Postgres(t),
			"--replicas", "3", "--jwt-public-key", publicKeyFile(t)})
	}()
	waitLog(t, logs, "waiter streams not ready, retrying")
	notReadyFor(t, done, listen, 2*time.Second)

	node(1)
	node(2)
	waitStatus(t, done, "http://"+listen+"/readyz", http.StatusOK)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("stopped with %v", err)
	}
}
