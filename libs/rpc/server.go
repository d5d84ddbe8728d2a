package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpcreflect"
	"golang.org/x/sync/errgroup"

	"github.com/jsmplatform/jsm/libs/auth"
	"github.com/jsmplatform/jsm/libs/startup"
	"github.com/jsmplatform/jsm/libs/telemetry"
)

// DefaultMaxRequestBytes bounds a request message when HostConfig leaves it 0.
const DefaultMaxRequestBytes = 4 << 20

// HostConfig configures a Host.
type HostConfig struct {
	// Listen is the TCP address to serve on, e.g. "127.0.0.1:8080" (port 0 picks one).
	Listen string
	// Verifier checks the callers' bearer tokens. Required.
	Verifier *auth.Verifier
	Logger   *slog.Logger
	// MaxRequestBytes bounds one request message (default 4 MiB).
	MaxRequestBytes int
	// RateLimit is the steady number of RPCs per second allowed per client
	// IP, with bursts of RateBurst (default 2×RateLimit); 0 means unlimited.
	// It is checked before anything else, authentication included.
	RateLimit float64
	RateBurst int
	// OrgRateLimit is the steady number of RPCs per second allowed per
	// caller org (checked once the token is verified), with bursts of
	// OrgRateBurst (default 2×OrgRateLimit); 0 means unlimited.
	OrgRateLimit float64
	OrgRateBurst int
	// ShutdownTimeout bounds how long in-flight requests may finish once
	// Run's context ends (default 10 s).
	ShutdownTimeout time.Duration
	// DrainDelay is how long /readyz answers 503 before the listener closes
	// on shutdown, so load balancers stop sending requests first (default 0;
	// a few seconds behind a load balancer).
	DrainDelay time.Duration
	// NoReflection leaves out the gRPC reflection endpoints.
	NoReflection bool
	// NoMetrics leaves out /metrics; MetricsToken, when set, makes /metrics
	// answer only requests with "Authorization: Bearer <MetricsToken>".
	NoMetrics    bool
	MetricsToken string
	// OnReady, if set, is called once every service is migrated and running.
	OnReady func(addr net.Addr)
}

// Host serves the Connect APIs of several services on one listener, with
// the same interceptors (authentication, then validation) and limits, gRPC
// reflection, /healthz, /readyz and /metrics (Prometheus). It also migrates the services and runs
// their background work.
type Host struct {
	cfg      HostConfig
	log      *slog.Logger
	services []Service
	// build makes the services once the host listens (NewHostWith).
	build   func(context.Context) ([]Service, error)
	handler http.Handler
	rpc     atomic.Pointer[http.Handler] // the services' APIs, once mounted
	srv     *http.Server

	mu sync.Mutex
	ln net.Listener

	ready atomic.Bool
}

// NewHost builds the host's handlers; nothing runs until Run (or Listen and Serve).
func NewHost(cfg HostConfig, services ...Service) (*Host, error) {
	if len(services) == 0 {
		return nil, errors.New("rpc host: no services")
	}
	h, err := newHost(cfg)
	if err != nil {
		return nil, err
	}
	if err := h.mount(services); err != nil {
		return nil, err
	}
	return h, nil
}

// NewHostWith is NewHost whose services build makes once the host listens:
// while build waits for what the services need (NATS, streams, PostgreSQL),
// /healthz answers, /readyz and the APIs answer not ready, and shutdown
// ends the wait. An error from build ends Serve; build retries whatever
// may pass by itself (see package startup).
func NewHostWith(cfg HostConfig, build func(context.Context) ([]Service, error)) (*Host, error) {
	if build == nil {
		return nil, errors.New("rpc host: no services")
	}
	h, err := newHost(cfg)
	if err != nil {
		return nil, err
	}
	h.build = build
	return h, nil
}

func newHost(cfg HostConfig) (*Host, error) {
	if cfg.Verifier == nil {
		return nil, errors.New("rpc host: a token verifier is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	h := &Host{cfg: cfg, log: cfg.Logger}

	mux := http.NewServeMux()
	// The APIs are mounted once the services are built (mount); until they
	// run, whenReady answers for them.
	var rpcHandler http.Handler = h.whenReady(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*h.rpc.Load()).ServeHTTP(w, r)
	}))
	if cfg.RateLimit > 0 {
		rpcHandler = newLimiter(cfg.RateLimit, cfg.RateBurst).wrap(rpcHandler, peerIP)
	}
	mux.Handle("/", rpcHandler)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok")
	})
	if !cfg.NoMetrics {
		mux.Handle("GET /metrics", withToken(cfg.MetricsToken, telemetry.MetricsHandler()))
	}
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if h.ready.Load() {
			writeText(w, http.StatusOK, "ready")
			return
		}
		writeText(w, http.StatusServiceUnavailable, "not ready")
	})
	h.handler = mux

	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	h.srv = &http.Server{
		Handler:           mux,
		Protocols:         &protocols,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute, // a request trickled in slowly holds no connection for ever
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	return h, nil
}

// mount builds the services' Connect handlers with the host's
// interceptors and limits, and gRPC reflection.
func (h *Host) mount(services []Service) error {
	cfg := h.cfg
	if len(services) == 0 {
		return errors.New("rpc host: no services")
	}
	policies := make([]auth.Policy, 0, len(services)+1)
	names := make([]string, 0, len(services))
	seen := make(map[string]bool)
	for _, s := range services {
		if s == nil {
			return errors.New("rpc host: nil service")
		}
		if seen[s.Name()] {
			return fmt.Errorf("rpc host: service %q given twice", s.Name())
		}
		seen[s.Name()] = true
		policies = append(policies, s.Policy())
	}
	policies = append(policies, reflectionPolicy())
	policy := auth.Policy{}.Merge(policies...)

	limit := connect.WithReadMaxBytes(cfg.MaxRequestBytes)
	interceptors, err := Interceptors(cfg.Verifier, policy, cfg.Logger)
	if err != nil {
		return fmt.Errorf("rpc host: %w", err)
	}
	rpcMux := http.NewServeMux()
	for _, s := range services {
		for _, sh := range s.Handlers(interceptors, limit) {
			if sh.Path == "" || sh.Handler == nil {
				return fmt.Errorf("rpc host: service %s returned an empty handler", s.Name())
			}
			rpcMux.Handle(sh.Path, sh.Handler)
			if sh.Service != "" {
				names = append(names, sh.Service)
			}
		}
	}
	if !cfg.NoReflection {
		reflector := grpcreflect.NewStaticReflector(names...)
		rpcMux.Handle(grpcreflect.NewHandlerV1(reflector, limit))
		rpcMux.Handle(grpcreflect.NewHandlerV1Alpha(reflector, limit))
	}
	// Inside the per-IP limit and readiness (newHost): authentication from
	// the headers alone (no byte of the body is read for a caller turned
	// away), then the per-org limit of the authenticated caller.
	var handler http.Handler = limitBody(int64(cfg.MaxRequestBytes)+bodySlack, rpcMux)
	if cfg.OrgRateLimit > 0 {
		handler = newLimiter(cfg.OrgRateLimit, cfg.OrgRateBurst).wrap(handler, orgOf)
	}
	handler = authenticate(auth.NewGate(cfg.Verifier, policy), handler)
	h.services = services
	h.rpc.Store(&handler)
	return nil
}

// reflectionPolicy marks the reflection procedures public. They are plain
// handlers outside the auth interceptor; this keeps the policy complete.
func reflectionPolicy() auth.Policy {
	return auth.Policy{Procedures: map[string]auth.Permission{
		"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo":      auth.Public,
		"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": auth.Public,
	}}
}

// Handler is the host's HTTP handler (APIs, reflection, health), e.g. for httptest.
func (h *Host) Handler() http.Handler { return h.handler }

// Ready reports whether every service is migrated and running.
func (h *Host) Ready() bool { return h.ready.Load() }

// Listen opens the listener (so that port 0 is resolved) without serving yet.
func (h *Host) Listen(ctx context.Context) (net.Addr, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ln != nil {
		return h.ln.Addr(), nil
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", h.cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("rpc host: listen %s: %w", h.cfg.Listen, err)
	}
	h.ln = ln
	return ln.Addr(), nil
}

// Addr is the address the host listens on, nil before Listen.
func (h *Host) Addr() net.Addr {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ln == nil {
		return nil
	}
	return h.ln.Addr()
}

// Run listens (unless Listen was called), then serves like Serve.
func (h *Host) Run(ctx context.Context) error {
	if _, err := h.Listen(ctx); err != nil {
		return err
	}
	return h.Serve(ctx)
}

// Serve serves HTTP/1.1 and unencrypted HTTP/2 on the listener, migrates
// every service, runs their background work and reports ready. When ctx
// ends (or a service fails) it stops in order: HTTP (in-flight requests get
// ShutdownTimeout to finish), then the services' Run. It returns nil on a
// clean stop.
func (h *Host) Serve(ctx context.Context) error {
	h.mu.Lock()
	ln := h.ln
	h.mu.Unlock()
	if ln == nil {
		return errors.New("rpc host: Serve before Listen")
	}

	serveErr := make(chan error, 1)
	go func() {
		if err := h.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			serveErr <- fmt.Errorf("rpc host: serve: %w", err)
		}
		close(serveErr)
	}()
	h.log.Info("http listening", "addr", ln.Addr().String())

	// The services outlive ctx until HTTP has drained: a request in flight
	// may wait for a projection.
	svcCtx, stopServices := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServices()
	g, gctx := errgroup.WithContext(svcCtx)

	err := h.buildServices(ctx)
	if err == nil {
		err = h.startServices(ctx, g, gctx)
	}
	if err == nil {
		h.ready.Store(true)
		h.log.Info("ready", "services", len(h.services))
		if h.cfg.OnReady != nil {
			h.cfg.OnReady(ln.Addr())
		}
		select {
		case <-ctx.Done():
		case <-gctx.Done(): // a service failed
		case err = <-serveErr:
		}
	} else if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		err = nil // stopped while waiting for a dependency: a clean stop
	}
	h.ready.Store(false)
	if h.cfg.DrainDelay > 0 && err == nil {
		h.log.Info("draining", "for", h.cfg.DrainDelay)
		time.Sleep(h.cfg.DrainDelay)
	}

	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.cfg.ShutdownTimeout)
	defer cancel()
	if serr := h.srv.Shutdown(shutdownCtx); serr != nil {
		h.log.Warn("http shutdown", "err", serr)
		_ = h.srv.Close()
	}
	h.log.Info("http stopped")
	stopServices()
	err = errors.Join(err, g.Wait())
	h.log.Info("services stopped", "err", err)
	return err
}

// buildServices makes the services of NewHostWith, once.
func (h *Host) buildServices(ctx context.Context) error {
	if h.build == nil || h.rpc.Load() != nil {
		return nil
	}
	services, err := h.build(ctx)
	if err != nil {
		return err
	}
	return h.mount(services)
}

// migration waits for PostgreSQL like every start-up dependency, but a try
// is never cut short: a migration of a large table may take long.
var migration = func() startup.Backoff { b := startup.Default; b.Attempt = 0; return b }()

func (h *Host) startServices(ctx context.Context, g *errgroup.Group, gctx context.Context) error {
	for _, s := range h.services {
		start := time.Now()
		// PostgreSQL may still be starting or in recovery; a failed
		// migration rolls back, so it is tried again from where it was.
		if err := startup.RetryWith(ctx, migration, h.log, "migrate "+s.Name(), s.Migrate); err != nil {
			return fmt.Errorf("migrate %s: %w", s.Name(), err)
		}
		h.log.Info("migrated", "service", s.Name(), "took", time.Since(start).Round(time.Millisecond))
	}
	for _, s := range h.services {
		g.Go(func() error {
			err := s.Run(gctx)
			if err != nil && !(errors.Is(err, context.Canceled) && gctx.Err() != nil) {
				h.log.Error("service stopped", "service", s.Name(), "err", err)
				return fmt.Errorf("run %s: %w", s.Name(), err)
			}
			return nil
		})
	}
	return ctx.Err()
}

// whenReady answers Unavailable (in the caller's protocol) until the
// services are migrated and running, and while the host shuts down.
func (h *Host) whenReady(next http.Handler) http.Handler {
	ew := connect.NewErrorWriter()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !h.ready.Load() {
			writeError(ew, w, r, connect.NewError(connect.CodeUnavailable, errors.New("not ready")), http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeError(ew *connect.ErrorWriter, w http.ResponseWriter, r *http.Request, err *connect.Error, status int) {
	if ew.IsSupported(r) {
		_ = ew.Write(w, r, err)
		return
	}
	writeText(w, status, err.Message())
}

func writeText(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body + "\n"))
}
