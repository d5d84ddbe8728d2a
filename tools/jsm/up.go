package main

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/jsmplatform/jsm/libs/auth"
	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/natsauth"
	"github.com/jsmplatform/jsm/libs/natsx"
	"github.com/jsmplatform/jsm/libs/pgdb"
	"github.com/jsmplatform/jsm/libs/pglocal"
	"github.com/jsmplatform/jsm/libs/rpc"
	"github.com/jsmplatform/jsm/libs/startup"
	"github.com/jsmplatform/jsm/libs/telemetry"
	"github.com/jsmplatform/jsm/services/integration/ingest"
	"github.com/jsmplatform/jsm/tools/cluster"
)

// database is the PostgreSQL database `jsm up` keeps every service's schema in.
const database = "jsm"

type upConfig struct {
	DataDir  string
	Listen   string // HTTP listen address of every Connect API
	NATSHost string // default 127.0.0.1
	NATSPort int    // preferred port; a free one is used when taken; -1 picks one
	PGPort   int    // 0 picks a free port
	// RateLimit is the RPCs per second allowed per client IP, OrgRateLimit
	// per caller org; 0 is unlimited (the flags default to a limit). Bursts
	// of 0 are twice the rate.
	RateLimit, OrgRateLimit float64
	RateBurst, OrgRateBurst int
	Logger                  *slog.Logger
}

// endpoints are where a running `jsm up` can be reached.
type endpoints struct {
	HTTP     string // base URL of the Connect APIs
	NATS     string
	Postgres string // DSN of the jsm database
	DataDir  string
}

func runUpCommand(args []string, stdout, stderr io.Writer) error {
	cfg := upConfig{}
	var logFormat, logLevel string
	fs := newFlagSet("up", stderr)
	fs.StringVar(&cfg.DataDir, "data-dir", defaultDataDir, "folder for all data (PostgreSQL, NATS, dev signing key); reused on the next start")
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:8080", "HTTP address serving every Connect/gRPC/gRPC-Web API")
	fs.IntVar(&cfg.NATSPort, "nats-port", 4222, "NATS client port on 127.0.0.1 (a free port is used when taken; -1 picks one)")
	fs.IntVar(&cfg.PGPort, "pg-port", 0, "PostgreSQL port on 127.0.0.1 (0 picks a free one)")
	fs.Float64Var(&cfg.RateLimit, "rate-limit", 200, "RPCs per second allowed per client IP, before authentication (0 = unlimited)")
	fs.IntVar(&cfg.RateBurst, "rate-burst", 0, "burst of RPCs allowed per client IP (0 = twice --rate-limit)")
	fs.Float64Var(&cfg.OrgRateLimit, "org-rate-limit", 50, "RPCs per second allowed per caller org (0 = unlimited)")
	fs.IntVar(&cfg.OrgRateBurst, "org-rate-burst", 0, "burst of RPCs allowed per caller org (0 = twice --org-rate-limit)")
	fs.StringVar(&logFormat, "log-format", "text", "log format on stderr: text or json")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("up: unexpected arguments %q", fs.Args())
	}
	log, err := newLogger(stderr, logFormat, logLevel)
	if err != nil {
		return err
	}
	cfg.Logger = log

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	shutdownTracing, err := telemetry.Setup(ctx, "jsm", log)
	if err != nil {
		return err
	}
	defer func() {
		flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := shutdownTracing(flushCtx); err != nil {
			log.Warn("flush spans", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		// From the first signal on, a second one ends the process at once.
		stop()
		log.Info("stopping; press Ctrl-C again to stop at once")
	}()
	err = runUp(ctx, cfg, func(e endpoints) { printBanner(stdout, e) })
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		err = nil // stopped during start-up
	}
	if err == nil {
		log.Info("stopped")
	}
	return err
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	log, err := telemetry.NewLogger(w, format, level)
	if err != nil {
		return nil, fmt.Errorf("--log-format/--log-level: %w", err)
	}
	return log, nil
}

// runUp starts PostgreSQL, NATS JetStream and every service, serves their
// APIs until ctx ends, then stops everything in order: HTTP, services,
// NATS, PostgreSQL. ready, if not nil, is called once everything is up.
func runUp(ctx context.Context, cfg upConfig, ready func(endpoints)) (err error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.DataDir == "" {
		cfg.DataDir = defaultDataDir
	}
	if cfg.NATSHost == "" {
		cfg.NATSHost = "127.0.0.1"
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	unlock, err := lockDataDir(dataDir)
	if err != nil {
		return err
	}
	defer unlock()

	// Everything started is stopped in reverse order, whatever happens.
	var stops []func(context.Context) error
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		for i := len(stops) - 1; i >= 0; i-- {
			err = errors.Join(err, stops[i](stopCtx))
		}
	}()

	start := time.Now()
	pg, err := pglocal.Start(ctx, filepath.Join(dataDir, "postgres"), cfg.PGPort)
	if err != nil {
		return err
	}
	stops = append(stops, func(ctx context.Context) error {
		err := pg.Stop(ctx)
		log.Info("postgres stopped", "err", err)
		return err
	})
	log.Info("postgres started", "port", pg.Port, "reused", pg.Reused, "took", time.Since(start).Round(time.Millisecond))
	if err := cluster.CreateDatabase(ctx, pg.DSN("postgres"), database); err != nil {
		return err
	}
	// Each service logs in as its own role, which owns its schema alone:
	// a pool per service, made once (services are built again when a build
	// is retried), connecting when first used.
	dsns, err := cluster.ProvisionLogins(ctx, pg.DSN(database), dataDir, slices.Sorted(maps.Keys(cluster.ServiceSchemas)))
	if err != nil {
		return err
	}
	pools := map[string]*pgxpool.Pool{}
	stops = append(stops, func(context.Context) error {
		for _, p := range pools {
			p.Close()
		}
		return nil
	})
	var poolsMu sync.Mutex
	poolOf := func(_ context.Context, service string) (*pgxpool.Pool, error) {
		poolsMu.Lock()
		defer poolsMu.Unlock()
		if p, ok := pools[service]; ok {
			return p, nil
		}
		dsn, ok := dsns[service]
		if !ok {
			return nil, fmt.Errorf("no postgres login for %s", service)
		}
		p, err := pgdb.New(dsn)
		if err != nil {
			return nil, err
		}
		pools[service] = p
		return p, nil
	}

	// Every service is a NATS user of its own (libs/natsauth), with a
	// password kept in the data dir; anyone else is refused, except the
	// sources the integration service lets in by their secrets.
	secrets, err := natsauth.LoadOrCreate(dataDir)
	if err != nil {
		return err
	}
	ns, err := natsx.RunEmbedded(natsx.EmbeddedConfig{
		StoreDir:   filepath.Join(dataDir, "nats"),
		Host:       cfg.NATSHost,
		Port:       natsPort(log, cfg.NATSHost, cfg.NATSPort),
		ServerName: "jsm",
		Auth:       &secrets,
	})
	if err != nil {
		return err
	}
	stops = append(stops, func(ctx context.Context) error {
		natsx.Shutdown(ctx, ns)
		log.Info("nats stopped")
		return nil
	})
	log.Info("nats started", "url", ns.ClientURL())
	connect := func(name, user string) (*nats.Conn, error) {
		creds := natsx.Credentials{User: user, Password: secrets.Passwords[user]}
		nc, err := natsx.Connect(ns.ClientURL(), name, log, creds.Options()...)
		if err != nil {
			return nil, err
		}
		stops = append(stops, func(context.Context) error {
			err := nc.FlushTimeout(5 * time.Second)
			nc.Close()
			if err != nil && !nc.IsClosed() {
				return fmt.Errorf("flush nats: %w", err)
			}
			return nil
		})
		return nc, nil
	}
	nc, err := connect("jsm-up", natsauth.AdminUser)
	if err != nil {
		return err
	}
	storeOf := func(ctx context.Context, service string) (*eventstore.Store, error) {
		nc, err := connect("jsm-"+service, service)
		if err != nil {
			return nil, err
		}
		return eventstore.Open(ctx, nc, eventstore.Config{})
	}
	sys, err := connect("jsm-up-system", natsauth.SystemUser)
	if err != nil {
		return err
	}
	issuer, err := secrets.Issuer()
	if err != nil {
		return err
	}

	key, err := auth.LoadOrCreateDevKey(dataDir)
	if err != nil {
		return err
	}
	// Ingest signs with a key of its own, never the dev key: its tokens act
	// as a source and nothing more.
	integrationKey, err := auth.LoadOrCreateKey(dataDir, auth.IntegrationKeyFile)
	if err != nil {
		return err
	}
	verifier, err := auth.NewVerifier(auth.VerifierConfig{
		Issuer:   auth.DevIssuer,
		Audience: auth.DevAudience,
		Keys:     []crypto.PublicKey{key.Public()},
		Machines: []auth.MachineIssuer{auth.SourceIssuer(integrationKey.Public().(ed25519.PublicKey))},
	})
	if err != nil {
		return err
	}
	stops = append(stops, func(context.Context) error { return verifier.Close() })

	var host *rpc.Host // listening before the services are built
	addr := func() string {
		if a := host.Addr(); a != nil {
			return "http://" + dialable(a)
		}
		return ""
	}
	dsn := pg.DSN(database)
	// The services are built once the host listens (/readyz answers not
	// ready until then), their streams and buckets created with the same
	// patience as a service started alone.
	build := func(ctx context.Context) (services []rpc.Service, err error) {
		err = startup.Retry(ctx, log, "streams", func(ctx context.Context) error {
			store, err := eventstore.Open(ctx, nc, eventstore.Config{})
			if err != nil {
				return err
			}
			services, err = platformServices(ctx, serviceDeps{
				Store: store, StoreOf: storeOf, PoolOf: poolOf, Logger: log, DataDir: dataDir, IntegrationKey: integrationKey, Addr: addr,
				NATSAuth: &ingest.NATSAuth{Issuer: issuer, System: sys},
			})
			if err != nil {
				return err
			}
			// The host's own admin API works on the services' projectors.
			services = append(services, newAdmin(store, services))
			return nil
		})
		return services, err
	}
	host, err = rpc.NewHostWith(rpc.HostConfig{
		Listen:   cfg.Listen,
		Verifier: verifier,
		Logger:   log,
		// /metrics and gRPC reflection stay open: `jsm up` is a developer's
		// platform on loopback (a service run alone hides both by default).
		RateLimit:    cfg.RateLimit,
		RateBurst:    cfg.RateBurst,
		OrgRateLimit: cfg.OrgRateLimit,
		OrgRateBurst: cfg.OrgRateBurst,
		OnReady: func(addr net.Addr) {
			log.Info("jsm is up", "took", time.Since(start).Round(time.Millisecond))
			if ready != nil {
				ready(endpoints{HTTP: "http://" + dialable(addr), NATS: ns.ClientURL(), Postgres: dsn, DataDir: dataDir})
			}
		},
	}, build)
	if err != nil {
		return err
	}
	// Run returns once HTTP is shut down and every service's Run returned.
	return host.Run(ctx)
}

// natsPort returns want when it is free on host, otherwise -1 (any free port).
func natsPort(log *slog.Logger, host string, want int) int {
	if want <= 0 {
		return -1
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(want)))
	if err != nil {
		log.Warn("nats port taken, using a free one", "port", want, "err", err)
		return -1
	}
	_ = ln.Close()
	return want
}

// lockDataDir makes sure one `jsm up` at a time uses dir.
func lockDataDir(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, "up.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data dir %s is in use by another `jsm up`", dir)
		}
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	return func() { _ = f.Close() }, nil
}

// dialable turns a listen address into one a client can dial (":8080" -> "localhost:8080").
func dialable(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

func printBanner(w io.Writer, e endpoints) {
	dataDir := e.DataDir
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, e.DataDir); err == nil && !strings.HasPrefix(rel, "..") {
			dataDir = rel
		}
	}
	tokenCmd := "jsm token --data-dir " + dataDir + " --org acme --user alice --role org-admin"
	fmt.Fprintf(w, `
JSM is up.
  APIs (Connect, gRPC, gRPC-Web):  %[1]s
  NATS JetStream:                  %[2]s  (users and passwords: %[4]s/nats-auth.json)
  PostgreSQL:                      %[3]s
  Data:                            %[4]s

Get a token (roles: org-admin, contract-manager, security-officer, auditor, viewer):
  %[5]s

Draft a contract with the Connect JSON protocol:
  TOKEN=$(%[5]s | tail -n1)
  curl -sS %[1]s/jsm.contracts.v1.ContractService/DraftContract \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{"customer_org_id":"acme","provider_org_id":"itsec","title":"Managed SOC"}'

List the APIs (gRPC reflection):  grpcurl -plaintext %[6]s list
Health:  %[1]s/healthz  %[1]s/readyz   Metrics:  %[1]s/metrics

Press Ctrl-C to stop.
`, e.HTTP, e.NATS, e.Postgres, e.DataDir, tokenCmd, strings.TrimPrefix(e.HTTP, "http://"))
}
