package auth_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/jsmplatform/jsm/libs/auth"
)

const (
	procWrite   = "/test.v1.EchoService/Write"
	procHealth  = "/test.v1.EchoService/Health"
	procUnknown = "/test.v1.EchoService/Unlisted"
	procWatch   = "/test.v1.EchoService/Watch"
)

var testPolicy = auth.Policy{
	Procedures: map[string]auth.Permission{
		procWrite:  "echo.write",
		procHealth: auth.Public,
		procWatch:  "echo.read",
	},
	Roles: map[string][]auth.Permission{
		"writer": {"echo.write", "echo.read"},
		"reader": {"echo.read"},
	},
}

// whoami answers with the principal the handler sees.
func whoami(ctx context.Context) *wrapperspb.StringValue {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return wrapperspb.String("anonymous")
	}
	return wrapperspb.String(p.Org + "/" + p.User + "/" + strings.Join(p.Roles, ","))
}

// newServer serves the test procedures behind the auth interceptor.
func newServer(t *testing.T, v *auth.Verifier) *httptest.Server {
	t.Helper()
	opt := connect.WithInterceptors(auth.NewInterceptor(v, testPolicy))
	unary := func(ctx context.Context, _ *connect.Request[emptypb.Empty]) (*connect.Response[wrapperspb.StringValue], error) {
		return connect.NewResponse(whoami(ctx)), nil
	}
	mux := http.NewServeMux()
	for _, proc := range []string{procWrite, procHealth, procUnknown} {
		mux.Handle(proc, connect.NewUnaryHandler(proc, unary, opt))
	}
	mux.Handle(procWatch, connect.NewServerStreamHandler(procWatch,
		func(ctx context.Context, _ *connect.Request[emptypb.Empty], s *connect.ServerStream[wrapperspb.StringValue]) error {
			return s.Send(whoami(ctx))
		}, opt))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func call(t *testing.T, srv *httptest.Server, proc, authorization string) (string, error) {
	t.Helper()
	client := connect.NewClient[emptypb.Empty, wrapperspb.StringValue](srv.Client(), srv.URL+proc)
	req := connect.NewRequest(&emptypb.Empty{})
	if authorization != "" {
		req.Header().Set("Authorization", authorization)
	}
	res, err := client.CallUnary(t.Context(), req)
	if err != nil {
		return "", err
	}
	return res.Msg.GetValue(), nil
}

type keys struct {
	priv  ed25519.PrivateKey
	other ed25519.PrivateKey
}

func newKeys(t *testing.T) keys {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return keys{priv: priv, other: other}
}

func newVerifier(t *testing.T, pub ed25519.PublicKey) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(auth.VerifierConfig{
		Issuer:   auth.DevIssuer,
		Audience: auth.DevAudience,
		Keys:     []crypto.PublicKey{pub},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	return v
}

// claims are valid claims for the test verifier, to be spoiled by a case.
func claims(mod func(jwt.MapClaims)) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{
		"iss":   auth.DevIssuer,
		"aud":   auth.DevAudience,
		"sub":   "alice",
		"org":   "acme",
		"roles": []string{"writer"},
		"iat":   now.Unix(),
		"nbf":   now.Unix(),
		"exp":   now.Add(time.Hour).Unix(),
	}
	if mod != nil {
		mod(c)
	}
	return c
}

func sign(t *testing.T, m jwt.SigningMethod, key any, c jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mint(t *testing.T, key ed25519.PrivateKey, iss, aud string, p auth.Principal) string {
	t.Helper()
	s, err := auth.Mint(key, iss, aud, p, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestInterceptor(t *testing.T) {
	t.Parallel()
	k := newKeys(t)
	pub := k.priv.Public().(ed25519.PublicKey)
	srv := newServer(t, newVerifier(t, pub))

	alice := auth.Principal{Org: "acme", User: "alice", Roles: []string{"writer"}}
	valid := mint(t, k.priv, auth.DevIssuer, auth.DevAudience, alice)
	bearer := func(tok string) string { return "Bearer " + tok }

	tests := []struct {
		name     string
		proc     string
		auth     string
		want     string       // the handler's answer on success
		wantCode connect.Code // 0 for success
		wantMsg  string       // part of the error message
	}{
		{name: "valid token", proc: procWrite, auth: bearer(valid), want: "acme/alice/writer"},
		{name: "lower-case scheme", proc: procWrite, auth: "bearer " + valid, want: "acme/alice/writer"},
		{
			name: "roles as one string", proc: procWrite, want: "acme/alice/reader,writer",
			auth: bearer(sign(t, jwt.SigningMethodEdDSA, k.priv, claims(func(c jwt.MapClaims) { c["roles"] = "reader writer" }))),
		},
		{name: "public without token", proc: procHealth, want: "anonymous"},
		{name: "public with garbage token", proc: procHealth, auth: "Bearer garbage", want: "anonymous"},

		{name: "missing header", proc: procWrite, wantCode: connect.CodeUnauthenticated, wantMsg: "missing bearer token"},
		{name: "wrong scheme", proc: procWrite, auth: "Basic " + valid, wantCode: connect.CodeUnauthenticated, wantMsg: "malformed authorization header"},
		{name: "scheme only", proc: procWrite, auth: "Bearer ", wantCode: connect.CodeUnauthenticated, wantMsg: "malformed authorization header"},
		{name: "token without scheme", proc: procWrite, auth: valid, wantCode: connect.CodeUnauthenticated, wantMsg: "malformed authorization header"},
		{name: "garbage", proc: procWrite, auth: "Bearer not.a.jwt", wantCode: connect.CodeUnauthenticated, wantMsg: "malformed token"},
		{
			name: "expired", proc: procWrite, wantCode: connect.CodeUnauthenticated, wantMsg: "token expired",
			auth: bearer(sign(t, jwt.SigningMethodEdDSA, k.priv, claims(func(c jwt.MapClaims) {
				c["iat"] = time.Now().Add(-2 * time.Hour).Unix()
				c["nbf"] = time.Now().Add(-2 * time.Hour).Unix()
				c["exp"] = time.Now().Add(-time.Hour).Unix()
			}))),
		},
		{
			name: "no expiry", proc: procWrite, wantCode: connect.CodeUnauthenticated, wantMsg: "token missing required claim",
			auth: bearer(sign(t, jwt.SigningMethodEdDSA, k.priv, claims(func(c jwt.MapClaims) { delete(c, "exp") }))),
		},
		{
			name: "not yet valid", proc: procWrite, wantCode: connect.CodeUnauthenticated, wantMsg: "token not valid yet",
			auth: bearer(sign(t, jwt.SigningMethodEdDSA, k.priv, claims(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() }))),
		},
		{
			name: "wrong issuer", proc: procWrite, wantCode: connect.CodeUnauthenticated, wantMsg: "token issuer not accepted",
			auth: bearer(mint(t, k.priv, "someone-else", auth.DevAudience, alice)),
		},
		{
			name: "wrong audience", proc: procWrite, wantCode: connect.CodeUnauthenticated, wantMsg: "token audience not accepted",
			auth: bearer(mint(t, k.priv, auth.DevIssuer, "other-api", alice)),
		},
		{
			name: "wrong key", proc: procWrite, wantCode: connect.CodeUnauthenticated, wantMsg: "invalid token signature",
			auth: bearer(mint(t, k.other, auth.DevIssuer, auth.DevAudience, alice)),
		},
		{
			name: "alg none", proc: procWrite, wantCode: connect.CodeUnauthenticated, wantMsg: "invalid token signature",
			auth: bearer(sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil))),
		},
		{
			// The classic confusion: the public key used as an HMAC secret.
			name: "HS256 with the public key", proc: procWrite, wantCode: connect.CodeUnauthenticated, wantMsg: "invalid token signature",
			auth: bearer(sign(t, jwt.SigningMethodHS256, []byte(pub), claims(nil))),
		},
		{
			name: "missing org", proc: procWrite, wantCode: connect.CodeUnauthenticated, wantMsg: "token missing required claim",
			auth: bearer(sign(t, jwt.SigningMethodEdDSA, k.priv, claims(func(c jwt.MapClaims) { delete(c, "org") }))),
		},
		{
			name: "empty org", proc: procWrite, wantCode: connect.CodeUnauthenticated, wantMsg: "token missing required claim",
			auth: bearer(sign(t, jwt.SigningMethodEdDSA, k.priv, claims(func(c jwt.MapClaims) { c["org"] = "" }))),
		},
		{
			name: "missing sub", proc: procWrite, wantCode: connect.CodeUnauthenticated, wantMsg: "token missing required claim",
			auth: bearer(sign(t, jwt.SigningMethodEdDSA, k.priv, claims(func(c jwt.MapClaims) { delete(c, "sub") }))),
		},
		{
			name: "roles of the wrong type", proc: procWrite, wantCode: connect.CodeUnauthenticated, wantMsg: "malformed token",
			auth: bearer(sign(t, jwt.SigningMethodEdDSA, k.priv, claims(func(c jwt.MapClaims) { c["roles"] = 42 }))),
		},

		{
			name: "role without the permission", proc: procWrite, wantCode: connect.CodePermissionDenied, wantMsg: `permission "echo.write" required`,
			auth: bearer(mint(t, k.priv, auth.DevIssuer, auth.DevAudience, auth.Principal{Org: "acme", User: "bob", Roles: []string{"reader"}})),
		},
		{
			name: "no roles", proc: procWrite, wantCode: connect.CodePermissionDenied, wantMsg: `permission "echo.write" required`,
			auth: bearer(mint(t, k.priv, auth.DevIssuer, auth.DevAudience, auth.Principal{Org: "acme", User: "bob"})),
		},
		{name: "unknown procedure", proc: procUnknown, auth: bearer(valid), wantCode: connect.CodePermissionDenied, wantMsg: "procedure not allowed"},
		{name: "unknown procedure without token", proc: procUnknown, wantCode: connect.CodePermissionDenied, wantMsg: "procedure not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := call(t, srv, tt.proc, tt.auth)
			if tt.wantCode == 0 {
				if err != nil {
					t.Fatalf("call: %v", err)
				}
				if got != tt.want {
					t.Fatalf("handler saw %q, want %q", got, tt.want)
				}
				return
			}
			if code := connect.CodeOf(err); code != tt.wantCode {
				t.Fatalf("code %v (err %v), want %v", code, err, tt.wantCode)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("message %q does not contain %q", err.Error(), tt.wantMsg)
			}
			if tok, _ := strings.CutPrefix(tt.auth, "Bearer "); tok != "" && strings.Contains(err.Error(), tok) {
				t.Errorf("error echoes the token: %q", err.Error())
			}
			if tt.wantCode == connect.CodeUnauthenticated {
				var cerr *connect.Error
				if errors.As(err, &cerr) && !strings.HasPrefix(cerr.Meta().Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("no WWW-Authenticate challenge: %v", cerr.Meta())
				}
			}
		})
	}
}

func TestInterceptorStreaming(t *testing.T) {
	t.Parallel()
	k := newKeys(t)
	srv := newServer(t, newVerifier(t, k.priv.Public().(ed25519.PublicKey)))
	client := connect.NewClient[emptypb.Empty, wrapperspb.StringValue](srv.Client(), srv.URL+procWatch)

	watch := func(p *auth.Principal) (string, error) {
		req := connect.NewRequest(&emptypb.Empty{})
		if p != nil {
			req.Header().Set("Authorization", "Bearer "+mint(t, k.priv, auth.DevIssuer, auth.DevAudience, *p))
		}
		stream, err := client.CallServerStream(t.Context(), req)
		if err != nil {
			return "", err
		}
		defer stream.Close()
		var got string
		for stream.Receive() {
			got = stream.Msg().GetValue()
		}
		return got, stream.Err()
	}

	got, err := watch(&auth.Principal{Org: "acme", User: "carol", Roles: []string{"reader"}})
	if err != nil || got != "acme/carol/reader" {
		t.Fatalf("valid token: got %q, %v", got, err)
	}
	if _, err := watch(nil); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("no token: %v, want unauthenticated", err)
	}
	if _, err := watch(&auth.Principal{Org: "acme", User: "dan", Roles: []string{"auditor"}}); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("role without permission: %v, want permission_denied", err)
	}
}

func TestInterceptorPassesClientCalls(t *testing.T) {
	t.Parallel()
	k := newKeys(t)
	v := newVerifier(t, k.priv.Public().(ed25519.PublicKey))
	// A server without the interceptor, and a client that carries it: the
	// call to an unlisted procedure without a token must go through.
	mux := http.NewServeMux()
	mux.Handle(procUnknown, connect.NewUnaryHandler(procUnknown,
		func(ctx context.Context, _ *connect.Request[emptypb.Empty]) (*connect.Response[wrapperspb.StringValue], error) {
			return connect.NewResponse(whoami(ctx)), nil
		}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	client := connect.NewClient[emptypb.Empty, wrapperspb.StringValue](srv.Client(), srv.URL+procUnknown,
		connect.WithInterceptors(auth.NewInterceptor(v, testPolicy)))
	res, err := client.CallUnary(t.Context(), connect.NewRequest(&emptypb.Empty{}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Msg.GetValue() != "anonymous" {
		t.Fatalf("got %q", res.Msg.GetValue())
	}
}
