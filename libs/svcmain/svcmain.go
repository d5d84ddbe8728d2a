// Package svcmain is the main of a service run as its own process
// (services/<area>/cmd/<area>): flags and their JSM_* environment
// variables, the connections to NATS and PostgreSQL, token verification
// and the Connect host, stopped cleanly by SIGINT or SIGTERM. A service's
// main only says how to build the service.
package svcmain

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jsmplatform/jsm/libs/auth"
	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/natsx"
	"github.com/jsmplatform/jsm/libs/pgdb"
	"github.com/jsmplatform/jsm/libs/rpc"
	"github.com/jsmplatform/jsm/libs/telemetry"
)

// Deps are what a service is built from.
type Deps struct {
	Store  *eventstore.Store
	Pool   *pgxpool.Pool
	Logger *slog.Logger
	// Now is the clock of commands and schedulers; time.Now when nil.
	Now func() time.Time
	// ReadWait bounds how long a query waits for its min_position (default 5s).
	ReadWait time.Duration
	// SchedulerEvery is how often a service's scheduler looks for deadlines
	// that passed (default 30s; negative turns it off, for tests that tick it).
	SchedulerEvery time.Duration
}

// Defaults checks the dependencies and fills in the defaults, with the
// logger naming the service.
func (d Deps) Defaults(service string) (Deps, error) {
	if d.Store == nil || d.Pool == nil {
		return d, fmt.Errorf("%s: store and pool are required", service)
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	d.Logger = d.Logger.With("service", service)
	if d.Now == nil {
		d.Now = time.Now
	}
	// PostgreSQL keeps microseconds: a time a command stamps and a
	// scheduler later reads back from a read model must compare equal.
	now := d.Now
	d.Now = func() time.Time { return now().Truncate(time.Microsecond) }
	if d.ReadWait == 0 {
		d.ReadWait = 5 * time.Second
	}
	if d.SchedulerEvery == 0 {
		d.SchedulerEvery = 30 * time.Second
	}
	return d, nil
}

// Build makes the service from its dependencies. ctx bounds the start-up
// only (creating streams and buckets): nothing built may keep it.
type Build func(ctx context.Context, d Deps) (rpc.Service, error)

// Main runs the service named name until SIGINT or SIGTERM and exits.
func Main(name, defaultListen string, build Build) {
	if err := Run(name, defaultListen, build, nil, os.Args[1:]); err != nil {
		slog.New(slog.NewJSONHandler(os.Stderr, nil)).Error(name+" stopped", "err", err)
		os.Exit(1)
	}
}

type config struct {
	listen, natsURL, pgDSN          string
	issuer, audience, publicKeyFile string
	jwksURL                         string
	replicas                        int
	drainDelay                      time.Duration
	logFormat, logLevel             string
	limits                          limits
}

// limits are the flags that bound what a caller may cost the service and
// what it shows of itself.
type limits struct {
	rateLimit, orgRateLimit float64
	rateBurst, orgRateBurst int
	exposeMetrics           bool
	metricsToken            string
	reflection              bool
}

// Defaults of the rate limits of a service run alone: a flood guard per
// client IP (generous, since behind a proxy every caller shares its
// address) and a steady budget per org.
const (
	defaultRateLimit    = 200
	defaultOrgRateLimit = 50
)

// hostConfig applies the limits to a host's configuration.
func (l limits) hostConfig(cfg rpc.HostConfig) rpc.HostConfig {
	cfg.RateLimit, cfg.RateBurst = l.rateLimit, l.rateBurst
	cfg.OrgRateLimit, cfg.OrgRateBurst = l.orgRateLimit, l.orgRateBurst
	cfg.NoMetrics = !l.exposeMetrics && l.metricsToken == ""
	cfg.MetricsToken = l.metricsToken
	cfg.NoReflection = !l.reflection
	return cfg
}

// Run is Main with its arguments given, and its logger unless log is nil
// (then --log-format and --log-level make one on stderr). Spans are
// exported when the standard OTEL_EXPORTER_OTLP_ENDPOINT is set.
func Run(name, defaultListen string, build Build, log *slog.Logger, args []string) error {
	var cfg config
	fs := flags(name, defaultListen, &cfg)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := fromEnv(fs); err != nil {
		return err
	}
	if log == nil {
		var err error
		if log, err = telemetry.NewLogger(os.Stderr, cfg.logFormat, cfg.logLevel); err != nil {
			return fmt.Errorf("--log-format/--log-level: %w", err)
		}
	} else {
		log = slog.New(telemetry.LogHandler(log.Handler()))
	}
	if cfg.pgDSN == "" {
		return errors.New("--pg-dsn (JSM_PG_DSN) is required")
	}
	verifierCfg := auth.VerifierConfig{Issuer: cfg.issuer, Audience: cfg.audience, JWKSURL: cfg.jwksURL}
	if cfg.publicKeyFile != "" {
		key, err := readPublicKey(cfg.publicKeyFile)
		if err != nil {
			return err
		}
		verifierCfg.Keys = []crypto.PublicKey{key}
	}
	verifier, err := auth.NewVerifier(verifierCfg)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	shutdownTracing, err := telemetry.Setup(ctx, "jsm-"+name, log)
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
	nc, err := natsx.Connect(cfg.natsURL, "jsm-"+name, log)
	if err != nil {
		return err
	}
	defer nc.Drain()
	pool, err := pgdb.Open(ctx, cfg.pgDSN)
	if err != nil {
		return err
	}
	defer pool.Close()
	var svc rpc.Service
	err = retryStart(ctx, log, name, func() error {
		// A replicated stream or bucket can take longer to create than
		// JetStream's default 5 s request timeout while a busy cluster forms
		// its groups; the context's deadline replaces that timeout.
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		store, err := eventstore.Open(ctx, nc, eventstore.Config{Replicas: cfg.replicas})
		if err != nil {
			return err
		}
		svc, err = build(ctx, Deps{Store: store, Pool: pool, Logger: log})
		return err
	})
	if err != nil {
		return err
	}
	host, err := rpc.NewHost(cfg.limits.hostConfig(rpc.HostConfig{Listen: cfg.listen, Verifier: verifier, Logger: log, DrainDelay: cfg.drainDelay}), svc)
	if err != nil {
		return err
	}
	log.Info(name+" starting", "listen", cfg.listen, "nats", cfg.natsURL, "tracing", telemetry.Enabled())
	return host.Run(ctx)
}

// flags are a service's flags, each also read from JSM_<NAME> (fromEnv);
// README.md's table "Running a service alone" lists them all.
func flags(name, defaultListen string, cfg *config) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(&cfg.listen, "listen", defaultListen, "HTTP listen address of the Connect API")
	fs.StringVar(&cfg.natsURL, "nats-url", "nats://127.0.0.1:4222", "NATS server URL(s), comma-separated")
	fs.StringVar(&cfg.pgDSN, "pg-dsn", "", "PostgreSQL DSN (required)")
	fs.StringVar(&cfg.issuer, "jwt-issuer", auth.DevIssuer, "required JWT issuer")
	fs.StringVar(&cfg.audience, "jwt-audience", auth.DevAudience, "required JWT audience")
	fs.StringVar(&cfg.publicKeyFile, "jwt-public-key", "", "PEM file with the token signing public key")
	fs.StringVar(&cfg.jwksURL, "jwks-url", "", "JWKS URL of the identity provider")
	fs.IntVar(&cfg.replicas, "replicas", 1, "replicas of the JSM_EVENTS stream (3 in production)")
	fs.DurationVar(&cfg.drainDelay, "drain-delay", 0, "how long /readyz fails before shutdown closes the listener (a few seconds behind a load balancer)")
	fs.Float64Var(&cfg.limits.rateLimit, "rate-limit", defaultRateLimit, "RPCs per second allowed per client IP, before authentication (0 = unlimited)")
	fs.IntVar(&cfg.limits.rateBurst, "rate-burst", 0, "burst of RPCs allowed per client IP (0 = twice --rate-limit)")
	fs.Float64Var(&cfg.limits.orgRateLimit, "org-rate-limit", defaultOrgRateLimit, "RPCs per second allowed per caller org (0 = unlimited)")
	fs.IntVar(&cfg.limits.orgRateBurst, "org-rate-burst", 0, "burst of RPCs allowed per caller org (0 = twice --org-rate-limit)")
	fs.BoolVar(&cfg.limits.exposeMetrics, "expose-metrics", false, "serve /metrics without a token (else only with --metrics-token, or not at all)")
	fs.StringVar(&cfg.limits.metricsToken, "metrics-token", "", "bearer token /metrics requires (serves /metrics)")
	fs.BoolVar(&cfg.limits.reflection, "reflection", false, "serve gRPC reflection (lists every procedure and message)")
	fs.StringVar(&cfg.logFormat, "log-format", "json", "log format on stderr: json or text")
	fs.StringVar(&cfg.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return fs
}

// startTimeout bounds how long a service keeps trying to create its
// streams and buckets.
const startTimeout = 2 * time.Minute

// retryStart runs start until it succeeds, fails for good, or startTimeout
// passes. Creating replicated streams and buckets times out while a cluster
// elects leaders, or while every service of a fresh cluster creates its
// assets at once on a busy machine: that is worth another try, unlike a
// wrong setting.
func retryStart(ctx context.Context, log *slog.Logger, name string, start func() error) error {
	deadline := time.Now().Add(startTimeout)
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		err := start()
		transient := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
			errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrJetStreamNotEnabled)
		if err == nil || !transient || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		log.Warn(name+" start-up failed, retrying", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// fromEnv fills every flag not given on the command line from JSM_<NAME>.
func fromEnv(fs *flag.FlagSet) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		env := "JSM_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok && !given[f.Name] && err == nil {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s: %w", env, e)
			}
		}
	})
	return err
}

func readPublicKey(path string) (crypto.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}
