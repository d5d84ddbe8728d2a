package rpc_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/jsmplatform/jsm/libs/auth"
	"github.com/jsmplatform/jsm/libs/rpc"
)

const echoProcedure = "/test.v1.EchoService/Echo"

// echoService is a minimal rpc.Service: one unary procedure that needs the
// "echo" permission, granted to the "user" role.
type echoService struct {
	migrate   chan struct{} // Migrate waits for it to close, when not nil
	runErr    error         // Run returns it at once, when not nil
	runExited chan struct{}
	// An echo of "slow" signals held, then waits for release to close.
	held, release chan struct{}
}

func (s *echoService) Name() string { return "echo" }

func (s *echoService) Migrate(ctx context.Context) error {
	if s.migrate == nil {
		return nil
	}
	select {
	case <-s.migrate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *echoService) Run(ctx context.Context) error {
	if s.runExited != nil {
		defer close(s.runExited)
	}
	if s.runErr != nil {
		return s.runErr
	}
	<-ctx.Done()
	return ctx.Err()
}

func (s *echoService) Handlers(opts ...connect.HandlerOption) []rpc.Handler {
	h := connect.NewUnaryHandler(echoProcedure,
		func(_ context.Context, req *connect.Request[wrapperspb.StringValue]) (*connect.Response[wrapperspb.StringValue], error) {
			if req.Msg.GetValue() == "slow" && s.held != nil {
				close(s.held)
				<-s.release
			}
			return connect.NewResponse(req.Msg), nil
		}, opts...)
	return []rpc.Handler{{Path: echoProcedure, Service: "test.v1.EchoService", Handler: h}}
}

func (s *echoService) Policy() auth.Policy {
	return auth.Policy{
		Procedures: map[string]auth.Permission{echoProcedure: "echo"},
		Roles:      map[string][]auth.Permission{"user": {"echo"}},
	}
}

type fixture struct {
	base  string
	token string
	key   ed25519.PrivateKey // signs more tokens
	host  *rpc.Host
	errc  chan error
	stop  context.CancelFunc
}

func start(t *testing.T, cfg rpc.HostConfig, svc rpc.Service) *fixture {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.VerifierConfig{Issuer: auth.DevIssuer, Audience: auth.DevAudience, Keys: []crypto.PublicKey{pub}})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := auth.Mint(key, auth.DevIssuer, auth.DevAudience, auth.Principal{Org: "acme", User: "alice", Roles: []string{"user"}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen, cfg.Verifier = "127.0.0.1:0", v
	h, err := rpc.NewHost(cfg, svc)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := h.Listen(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	f := &fixture{base: "http://" + addr.String(), token: tok, key: key, host: h, errc: make(chan error, 1), stop: cancel}
	go func() { f.errc <- h.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-f.errc:
		case <-time.After(20 * time.Second):
			t.Error("host did not stop")
		}
	})
	return f
}

func (f *fixture) get(t *testing.T, path string) int {
	t.Helper()
	resp, err := http.Get(f.base + path)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

func (f *fixture) echo(ctx context.Context, token, msg string, opts ...connect.ClientOption) error {
	c := connect.NewClient[wrapperspb.StringValue, wrapperspb.StringValue](http.DefaultClient, f.base+echoProcedure, opts...)
	req := connect.NewRequest(wrapperspb.String(msg))
	if token != "" {
		req.Header().Set("Authorization", "Bearer "+token)
	}
	_, err := c.CallUnary(ctx, req)
	return err
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestHostIsReadyOnlyAfterMigrate(t *testing.T) {
	svc := &echoService{migrate: make(chan struct{})}
	f := start(t, rpc.HostConfig{}, svc)
	ctx := t.Context()

	if code := f.get(t, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d during migration", code)
	}
	if code := f.get(t, "/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d during migration", code)
	}
	if err := f.echo(ctx, f.token, "hi"); connect.CodeOf(err) != connect.CodeUnavailable {
		t.Fatalf("RPC during migration: %v, want unavailable", err)
	}

	close(svc.migrate)
	waitFor(t, "ready", func() bool { return f.get(t, "/readyz") == http.StatusOK })
	if err := f.echo(ctx, f.token, "hi"); err != nil {
		t.Fatalf("RPC: %v", err)
	}
	if err := f.echo(ctx, "", "hi"); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("RPC without token: %v, want unauthenticated", err)
	}
	if err := f.echo(ctx, "not-a-jwt", "hi"); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("RPC with a bad token: %v, want unauthenticated", err)
	}
}

func TestHostStopsHTTPBeforeServices(t *testing.T) {
	svc := &echoService{runExited: make(chan struct{})}
	f := start(t, rpc.HostConfig{}, svc)
	waitFor(t, "ready", func() bool { return f.get(t, "/readyz") == http.StatusOK })
	f.stop()
	select {
	case err := <-f.errc:
		if err != nil {
			t.Fatalf("Serve after a clean stop: %v", err)
		}
		f.errc <- nil // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	select {
	case <-svc.runExited:
	default:
		t.Fatal("Serve returned before the service's Run")
	}
	if _, err := http.Get(f.base + "/healthz"); err == nil {
		t.Fatal("still serving after stop")
	}
}

// A graceful shutdown: /readyz fails at once and new RPCs are turned away
// for the drain delay while the process stays alive (/healthz); then the
// listener closes, an RPC in flight still gets its answer, and only after
// it do the services stop.
func TestShutdownDrainsThenLetsInFlightRequestsFinish(t *testing.T) {
	const drain = time.Second
	svc := &echoService{runExited: make(chan struct{}), held: make(chan struct{}), release: make(chan struct{})}
	f := start(t, rpc.HostConfig{DrainDelay: drain}, svc)
	waitFor(t, "ready", func() bool { return f.get(t, "/readyz") == http.StatusOK })

	slow := make(chan error, 1)
	go func() { slow <- f.echo(context.Background(), f.token, "slow") }()
	<-svc.held
	stopped := time.Now()
	f.stop()
	waitFor(t, "/readyz failing", func() bool { return f.get(t, "/readyz") == http.StatusServiceUnavailable })
	if got := f.get(t, "/healthz"); got != http.StatusOK {
		t.Fatalf("/healthz while draining: %d, want 200 (the process is alive)", got)
	}
	if err := f.echo(context.Background(), f.token, "late"); connect.CodeOf(err) != connect.CodeUnavailable {
		t.Fatalf("an RPC while draining: %v, want unavailable", err)
	}
	// After the drain the listener closes, but the RPC in flight goes on.
	waitFor(t, "the listener closed", func() bool {
		_, err := http.Get(f.base + "/healthz")
		return err != nil
	})
	select {
	case err := <-f.errc:
		t.Fatalf("Serve returned (%v) with an RPC in flight", err)
	case <-svc.runExited:
		t.Fatal("the services stopped with an RPC in flight")
	case <-time.After(200 * time.Millisecond):
	}
	close(svc.release)
	if err := <-slow; err != nil {
		t.Fatalf("the RPC in flight at shutdown: %v, want its answer", err)
	}
	select {
	case err := <-f.errc:
		if err != nil {
			t.Fatalf("Serve after a graceful stop: %v", err)
		}
		f.errc <- nil // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the last RPC")
	}
	<-svc.runExited
	if took := time.Since(stopped); took < drain {
		t.Errorf("stopped %v after the signal, before the drain delay (%v) was over", took, drain)
	}
}

func TestHostStopsWhenAServiceFails(t *testing.T) {
	boom := errors.New("boom")
	f := start(t, rpc.HostConfig{}, &echoService{runErr: boom})
	select {
	case err := <-f.errc:
		if !errors.Is(err, boom) {
			t.Fatalf("Serve = %v, want boom", err)
		}
		f.errc <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after a service failed")
	}
}

func TestHostLimitsRequestSizeAndRate(t *testing.T) {
	f := start(t, rpc.HostConfig{MaxRequestBytes: 1024, RateLimit: 0.001, RateBurst: 3}, &echoService{})
	ctx := t.Context()
	waitFor(t, "ready", func() bool { return f.get(t, "/readyz") == http.StatusOK })

	if err := f.echo(ctx, f.token, strings.Repeat("x", 2048)); connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Fatalf("oversized request: %v, want resource_exhausted", err)
	}
	if err := f.echo(ctx, f.token, "hi"); err != nil {
		t.Fatalf("RPC within the burst: %v", err)
	}
	// The burst of 3 is used up (oversized, ok); a third passes, the fourth not.
	_ = f.echo(ctx, f.token, "hi")
	if err := f.echo(ctx, f.token, "hi"); connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Fatalf("RPC over the rate limit: %v, want resource_exhausted", err)
	}
	// Health checks are not rate limited.
	if code := f.get(t, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d under rate limiting", code)
	}
}

func TestNewHostNeedsAVerifier(t *testing.T) {
	if _, err := rpc.NewHost(rpc.HostConfig{Listen: "127.0.0.1:0"}, &echoService{}); err == nil {
		t.Fatal("NewHost without a verifier: no error")
	}
}
