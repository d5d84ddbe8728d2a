package testkit

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/jsmplatform/jsm/libs/auth"
	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/rpc"
)

// Clock is a clock tests move by hand.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock starts a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Services serve services as the platform does (migrated and running,
// behind the token and validation interceptors) on an httptest server, and
// mint tokens it accepts.
type Services struct {
	URL      string
	key      ed25519.PrivateKey
	source   ed25519.PrivateKey // integration's: it mints sources' tokens
	verifier *auth.Verifier
	t        testing.TB
}

// ServeOptions change how Serve serves.
type ServeOptions struct {
	// Verifier changes the token verifier's configuration (by default the
	// dev issuer and audience with a key of the test's, and integration's
	// issuer with another).
	Verifier func(*auth.VerifierConfig)
}

// Serve migrates and runs the services until the test ends and serves
// their APIs on one listener.
func Serve(t testing.TB, svcs ...rpc.Service) *Services {
	t.Helper()
	return ServeWith(t, ServeOptions{}, svcs...)
}

// ServeWith is Serve with options.
func ServeWith(t testing.TB, opts ServeOptions, svcs ...rpc.Service) *Services {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	sourcePub, source, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := auth.VerifierConfig{
		Issuer: auth.DevIssuer, Audience: auth.DevAudience, Keys: []crypto.PublicKey{pub},
		Machines: []auth.MachineIssuer{auth.SourceIssuer(sourcePub)},
	}
	if opts.Verifier != nil {
		opts.Verifier(&cfg)
	}
	v, err := auth.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	mux := http.NewServeMux()
	for _, svc := range svcs {
		if err := svc.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); _ = svc.Run(ctx) }()
		interceptors, err := rpc.Interceptors(v, svc.Policy(), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range svc.Handlers(interceptors) {
			mux.Handle(h.Path, h.Handler)
		}
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &Services{URL: srv.URL, key: key, source: source, verifier: v, t: t}
}

// Token mints a token for a user of org with roles.
func (s *Services) Token(org string, roles ...string) string {
	tok, err := auth.Mint(s.key, auth.DevIssuer, auth.DevAudience, auth.Principal{Org: org, User: org + "-user", Roles: roles}, time.Hour)
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

// Mint mints a token for p as integration's ingest does, under its own
// issuer: the services accept it for a source only (user "source:<id>",
// role itsm-source, on the contracts p names). Ingest is given this.
func (s *Services) Mint(p auth.Principal) (string, error) {
	return auth.Mint(s.source, auth.IntegrationIssuer, auth.IntegrationAudience, p, time.Hour)
}

// MintUser mints a user's token for p under the dev issuer.
func (s *Services) MintUser(p auth.Principal) (string, error) {
	return auth.Mint(s.key, auth.DevIssuer, auth.DevAudience, p, time.Hour)
}

// As is a client option calling as a user of org with roles.
func (s *Services) As(org string, roles ...string) connect.ClientOption {
	return connect.WithInterceptors(Bearer(s.Token(org, roles...)))
}

// Bearer sends a token with every request.
func Bearer(token string) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+token)
			return next(ctx, req)
		}
	}
}

// Must returns a response's message or fails the test.
func Must[T any](t testing.TB) func(*connect.Response[T], error) *T {
	return func(r *connect.Response[T], err error) *T {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return r.Msg
	}
}

// Code fails the test unless err has the Connect code want.
func Code(t testing.TB, want connect.Code, err error) {
	t.Helper()
	if connect.CodeOf(err) != want {
		t.Fatalf("got %v (code %v), want %v", err, connect.CodeOf(err), want)
	}
}

// CountEvents counts the events of type typ an aggregate has in the stream.
func CountEvents(t testing.TB, store *eventstore.Store, aggregateType, id, typ string) int {
	t.Helper()
	evs, err := store.Load(context.Background(), aggregateType, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		if e.Type == typ {
			n++
		}
	}
	return n
}
