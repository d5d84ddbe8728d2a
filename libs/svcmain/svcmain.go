// Package svcmain is the main of a service run as its own process
// (services/<area>/cmd/<area>): flags and their JSM_* environment
// variables, the connections to NATS and PostgreSQL, token verification
// and the Connect host, stopped cleanly by SIGINT or SIGTERM. A service's
// main only says how to build the service.
package svcmain

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/jsmplatform/jsm/libs/auth"
	"github.com/jsmplatform/jsm/libs/eventsig"
	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/natsx"
	"github.com/jsmplatform/jsm/libs/pgdb"
	"github.com/jsmplatform/jsm/libs/rpc"
	"github.com/jsmplatform/jsm/libs/startup"
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
	algorithms                      string
	jwksRefresh                     time.Duration
	claims                          auth.ClaimNames
	integrationKeyFile              string
	eventSigningKey                 string
	replicas                        int
	drainDelay                      time.Duration
	logFormat, logLevel             string
	nats                            natsx.Credentials
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, name, defaultListen, build, log, args)
}

// run is Run until ctx ends.
func run(ctx context.Context, name, defaultListen string, build Build, log *slog.Logger, args []string) error {
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
	verifierCfg, err := cfg.verifier(name)
	if err != nil {
		return err
	}
	verifier, err := auth.NewVerifier(verifierCfg)
	if err != nil {
		return err
	}

	var signer *eventsig.Signer
	if cfg.eventSigningKey != "" {
		if signer, err = eventsig.NewSigner(cfg.eventSigningKey); err != nil {
			return fmt.Errorf("--event-signing-key (JSM_EVENT_SIGNING_KEY): %w", err)
		}
	} else {
		log.Warn(name + ": no --event-signing-key (JSM_EVENT_SIGNING_KEY): its events go unsigned, and a trail with pinned signer keys will not log them")
	}

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
	// A server not up yet is no error: the connection keeps trying.
	nc, err := natsx.Connect(cfg.natsURL, "jsm-"+name, log, cfg.nats.Options()...)
	if err != nil {
		return err
	}
	defer nc.Drain()
	pool, err := pgdb.New(cfg.pgDSN)
	if err != nil {
		return err
	}
	defer pool.Close()
	// The host listens at once: /healthz answers and /readyz says not ready
	// while the service waits for NATS, its streams and PostgreSQL.
	host, err := rpc.NewHostWith(cfg.limits.hostConfig(rpc.HostConfig{Listen: cfg.listen, Verifier: verifier, Logger: log, DrainDelay: cfg.drainDelay}),
		func(ctx context.Context) ([]rpc.Service, error) {
			svc, err := start(ctx, log, name, nc, pool, cfg.replicas, signer, build)
			if err != nil {
				return nil, err
			}
			return []rpc.Service{svc}, nil
		})
	if err != nil {
		return err
	}
	log.Info(name+" starting", "listen", cfg.listen, "nats", cfg.natsURL, "tracing", telemetry.Enabled())
	return host.Run(ctx)
}

// start waits until NATS and PostgreSQL answer, then builds the service,
// trying again while its streams, consumers and buckets cannot be created
// yet (a cluster still electing leaders or waiting for a peer, or every
// service of a fresh cluster creating its assets at once on a busy
// machine). Only a wrong setting, or the end of ctx, ends the wait.
func start(ctx context.Context, log *slog.Logger, name string, nc *nats.Conn, pool *pgxpool.Pool, replicas int, signer *eventsig.Signer, build Build) (rpc.Service, error) {
	if err := startup.Retry(ctx, log, "nats", func(context.Context) error { return connected(nc) }); err != nil {
		return nil, err
	}
	if err := startup.Retry(ctx, log, "postgres", pool.Ping); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	var svc rpc.Service
	err := startup.Retry(ctx, log, name+" streams", func(ctx context.Context) error {
		// A try's deadline replaces JetStream's default 5 s request
		// timeout: a replicated stream or bucket can take longer to create
		// while a busy cluster forms its groups.
		store, err := eventstore.Open(ctx, nc, eventstore.Config{Replicas: replicas, Signer: signer})
		if err != nil {
			return err
		}
		svc, err = build(ctx, Deps{Store: store, Pool: pool, Logger: log})
		return err
	})
	return svc, err
}

// errNotConnected says the NATS connection is still trying its servers.
var errNotConnected = errors.New("not connected")

// connected says whether nc is connected; while it is still trying, why.
func connected(nc *nats.Conn) error {
	if nc.IsConnected() {
		return nil
	}
	err := nc.LastError()
	if errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) || errors.Is(err, nats.ErrAuthRevoked) {
		return fmt.Errorf("nats refused the credentials: %w", err) // a wrong setting
	}
	if err != nil {
		return startup.NotReady(fmt.Errorf("%w: %w", errNotConnected, err))
	}
	return startup.NotReady(fmt.Errorf("%w to %v", errNotConnected, nc.Servers()))
}

// IngestDriven are the services integration's ingest calls as a source:
// the only ones that may trust its tokens (--integration-public-key).
var IngestDriven = []string{"incidents", "patching", "changeadvisory"}

// verifier is the token verifier configuration of service name.
func (cfg config) verifier(name string) (auth.VerifierConfig, error) {
	vc := auth.VerifierConfig{
		Issuer: cfg.issuer, Audience: cfg.audience, JWKSURL: cfg.jwksURL,
		JWKSRefresh: cfg.jwksRefresh, Claims: cfg.claims,
	}
	for alg := range strings.SplitSeq(cfg.algorithms, ",") {
		if alg = strings.TrimSpace(alg); alg != "" {
			vc.Algorithms = append(vc.Algorithms, alg)
		}
	}
	if cfg.publicKeyFile != "" {
		key, err := readPublicKey(cfg.publicKeyFile)
		if err != nil {
			return vc, err
		}
		vc.Keys = []crypto.PublicKey{key}
	}
	if cfg.integrationKeyFile != "" {
		if !slices.Contains(IngestDriven, name) {
			return vc, fmt.Errorf("--integration-public-key: %s does not accept integration's tokens (only %s do)",
				name, strings.Join(IngestDriven, ", "))
		}
		key, err := publicKey(cfg.integrationKeyFile)
		if err != nil {
			return vc, fmt.Errorf("--integration-public-key: %w", err)
		}
		pub, ok := key.(ed25519.PublicKey)
		if !ok {
			return vc, fmt.Errorf("--integration-public-key: %s holds a %T, want an Ed25519 public key", cfg.integrationKeyFile, key)
		}
		vc.Machines = []auth.MachineIssuer{auth.SourceIssuer(pub)}
	}
	return vc, nil
}

// flags are a service's flags, each also read from JSM_<NAME> (fromEnv);
// README.md's table "Running a service alone" lists them all.
func flags(name, defaultListen string, cfg *config) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(&cfg.listen, "listen", defaultListen, "HTTP listen address of the Connect API")
	fs.StringVar(&cfg.natsURL, "nats-url", "nats://127.0.0.1:4222", "NATS server URL(s), comma-separated")
	fs.StringVar(&cfg.nats.User, "nats-user", "", "NATS user (the service's name in production; empty: no authentication)")
	fs.StringVar(&cfg.nats.Password, "nats-password", "", "password of --nats-user")
	fs.StringVar(&cfg.nats.CAFile, "nats-ca", "", "PEM file of the CA of the NATS servers' certificates (turns TLS on)")
	fs.StringVar(&cfg.nats.CertFile, "nats-cert", "", "client certificate for NATS servers that verify clients (PEM)")
	fs.StringVar(&cfg.nats.KeyFile, "nats-key", "", "key of --nats-cert (PEM)")
	fs.StringVar(&cfg.pgDSN, "pg-dsn", "", "PostgreSQL DSN (required)")
	fs.StringVar(&cfg.issuer, "jwt-issuer", auth.DevIssuer, "required JWT issuer")
	fs.StringVar(&cfg.audience, "jwt-audience", auth.DevAudience, "required JWT audience")
	fs.StringVar(&cfg.publicKeyFile, "jwt-public-key", "", "PEM file with the token signing public key")
	fs.StringVar(&cfg.jwksURL, "jwks-url", "", "JWKS URL of the identity provider")
	fs.StringVar(&cfg.algorithms, "jwt-algorithms", strings.Join(auth.DefaultAlgorithms, ","), "accepted token signing algorithms, comma-separated (never none or HS*)")
	fs.DurationVar(&cfg.jwksRefresh, "jwks-refresh", auth.DefaultJWKSRefresh, "how often the JWKS is fetched again (a removed key stops verifying within it)")
	fs.StringVar(&cfg.claims.Org, "jwt-org-claim", "org", "token claim that holds the caller's org (a string, or an array such as groups)")
	fs.StringVar(&cfg.claims.OrgPrefix, "jwt-org-prefix", "", "only values of the org claim with this prefix count, without it (e.g. org: in groups)")
	fs.StringVar(&cfg.claims.Roles, "jwt-roles-claim", "roles", "token claim that holds the caller's roles (an array, or a space-separated string)")
	fs.StringVar(&cfg.claims.RolePrefix, "jwt-role-prefix", "", "only values of the roles claim with this prefix count, without it (e.g. role: in groups)")
	fs.StringVar(&cfg.integrationKeyFile, "integration-public-key", "", "public half of integration's signing key (PEM, or a PEM file): its tokens act as a source here (incidents, patching and changeadvisory only)")
	fs.StringVar(&cfg.eventSigningKey, "event-signing-key", "", "the service's event signing key (a note signer key PRIVATE+KEY+<area>+...; see `jsm event-key`)")
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

// publicKey reads a PEM public key given inline (a secret handed over in an
// environment variable) or as the path of a file.
func publicKey(pemOrPath string) (crypto.PublicKey, error) {
	if strings.HasPrefix(strings.TrimSpace(pemOrPath), "-----BEGIN") {
		return parsePublicKey("inline key", []byte(pemOrPath))
	}
	return readPublicKey(pemOrPath)
}

func readPublicKey(path string) (crypto.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parsePublicKey(path, data)
}

func parsePublicKey(path string, data []byte) (crypto.PublicKey, error) {
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
