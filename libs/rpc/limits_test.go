package rpc_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/jsmplatform/jsm/libs/auth"
	"github.com/jsmplatform/jsm/libs/rpc"
)

// countingBody is an endless request body that counts what is read of it.
type countingBody struct{ read, size int }

func (b *countingBody) Read(p []byte) (int, error) {
	if b.read >= b.size {
		return 0, io.EOF
	}
	n := min(len(p), b.size-b.read)
	clear(p[:n])
	b.read += n
	return n, nil
}

// An unauthenticated 5 MiB request is answered 401 (Connect) or
// unauthenticated (gRPC) from its headers: not one byte of its body is read.
// With a valid token the same body is read, up to the message limit.
func TestUnauthenticatedBodyIsNotRead(t *testing.T) {
	f := start(t, rpc.HostConfig{}, &echoService{})
	waitFor(t, "ready", func() bool { return f.get(t, "/readyz") == http.StatusOK })
	const size = 5 << 20

	for _, tc := range []struct {
		name, contentType, authorization string
	}{
		{"connect, no token", "application/proto", ""},
		{"connect, bad token", "application/proto", "Bearer not-a-jwt"},
		{"grpc, no token", "application/grpc", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := &countingBody{size: size}
			req := httptest.NewRequest(http.MethodPost, echoProcedure, body)
			req.Header.Set("Content-Type", tc.contentType)
			if tc.authorization != "" {
				req.Header.Set("Authorization", tc.authorization)
			}
			rec := httptest.NewRecorder()
			f.host.Handler().ServeHTTP(rec, req)
			if body.read != 0 {
				t.Errorf("read %d bytes of an unauthenticated body, want 0", body.read)
			}
			if tc.contentType == "application/grpc" {
				if got := rec.Result().Trailer.Get("Grpc-Status"); got != "16" {
					t.Errorf("grpc-status %q, want 16 (unauthenticated)", got)
				}
				return
			}
			if rec.Code != http.StatusUnauthorized {
				t.Errorf("status %d, want 401", rec.Code)
			}
			var e struct{ Code string }
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Code != "unauthenticated" {
				t.Errorf("body %q (%v), want a Connect error with code unauthenticated", rec.Body.String(), err)
			}
			if rec.Header().Get("WWW-Authenticate") == "" {
				t.Error("no WWW-Authenticate header")
			}
		})
	}

	// The authenticated caller's body is read, and bounded by the limit.
	body := &countingBody{size: size}
	req := httptest.NewRequest(http.MethodPost, echoProcedure, body)
	req.Header.Set("Content-Type", "application/proto")
	req.Header.Set("Authorization", "Bearer "+f.token)
	rec := httptest.NewRecorder()
	f.host.Handler().ServeHTTP(rec, req)
	if body.read == 0 || body.read > rpc.DefaultMaxRequestBytes+64<<10 {
		t.Errorf("read %d bytes of an authenticated oversized body, want some, at most the limit", body.read)
	}
	if rec.Code != http.StatusTooManyRequests { // Connect's resource_exhausted
		t.Errorf("oversized authenticated request: status %d, want 429 (resource_exhausted)", rec.Code)
	}
}

// The per-org limit counts every caller of an org together, wherever they
// call from; another org has its own bucket.
func TestHostLimitsRatePerOrg(t *testing.T) {
	f := start(t, rpc.HostConfig{OrgRateLimit: 0.001, OrgRateBurst: 2}, &echoService{})
	ctx := t.Context()
	waitFor(t, "ready", func() bool { return f.get(t, "/readyz") == http.StatusOK })
	mint := func(org, user string) string {
		tok, err := auth.Mint(f.key, auth.DevIssuer, auth.DevAudience, auth.Principal{Org: org, User: user, Roles: []string{"user"}}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	alice, bob, carol := mint("acme", "alice"), mint("acme", "bob"), mint("globex", "carol")
	for _, tok := range []string{alice, bob} {
		if err := f.echo(ctx, tok, "hi"); err != nil {
			t.Fatalf("within the org's burst: %v", err)
		}
	}
	if err := f.echo(ctx, bob, "hi"); connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Fatalf("third call of the org: %v, want resource_exhausted", err)
	}
	if err := f.echo(ctx, carol, "hi"); err != nil {
		t.Fatalf("another org: %v, want its own bucket", err)
	}
	// Unauthenticated calls do not use the org's bucket up.
	if err := f.echo(ctx, "", "hi"); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("no token: %v", err)
	}
}

// /metrics can be left out or put behind a token; gRPC reflection can be
// left out.
func TestHostGatesMetricsAndReflection(t *testing.T) {
	const reflection = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
	post := func(base, path string) int {
		t.Helper()
		resp, err := http.Post(base+path, "application/grpc", http.NoBody)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}

	hidden := start(t, rpc.HostConfig{NoMetrics: true, NoReflection: true}, &echoService{})
	waitFor(t, "ready", func() bool { return hidden.get(t, "/readyz") == http.StatusOK })
	if code := hidden.get(t, "/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics with NoMetrics: %d, want 404", code)
	}
	if code := post(hidden.base, reflection); code != http.StatusNotFound {
		t.Errorf("reflection with NoReflection: %d, want 404", code)
	}

	guarded := start(t, rpc.HostConfig{MetricsToken: "s3cret"}, &echoService{})
	waitFor(t, "ready", func() bool { return guarded.get(t, "/readyz") == http.StatusOK })
	for _, tc := range []struct {
		authorization string
		want          int
	}{
		{"", http.StatusUnauthorized},
		{"Bearer wrong", http.StatusUnauthorized},
		{"Bearer " + guarded.token, http.StatusUnauthorized}, // a user's token is not the metrics token
		{"Bearer s3cret", http.StatusOK},
	} {
		req, _ := http.NewRequest(http.MethodGet, guarded.base+"/metrics", nil)
		if tc.authorization != "" {
			req.Header.Set("Authorization", tc.authorization)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("/metrics with %q: %d, want %d", tc.authorization, resp.StatusCode, tc.want)
		}
	}
	if code := post(guarded.base, reflection); code == http.StatusNotFound {
		t.Errorf("reflection left on: %d", code)
	}
}
