package auth_test

import (
	"crypto"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jsmplatform/jsm/libs/auth"
)

func TestMintVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	k := newKeys(t)
	v := newVerifier(t, k.priv.Public().(ed25519.PublicKey))
	want := auth.Principal{Org: "acme", User: "alice", Roles: []string{"writer", "reader"}}
	tok, err := auth.Mint(k.priv, auth.DevIssuer, auth.DevAudience, want, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if got.Org != want.Org || got.User != want.User || !slices.Equal(got.Roles, want.Roles) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if !got.HasRole("reader") || got.HasRole("admin") {
		t.Fatalf("HasRole wrong for %+v", got)
	}

	// The minted token carries every claim the brief names.
	var c jwt.MapClaims
	if _, _, err := jwt.NewParser().ParseUnverified(tok, &c); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"sub", "org", "roles", "iss", "aud", "iat", "nbf", "exp", "jti"} {
		if _, ok := c[name]; !ok {
			t.Errorf("minted token lacks %q", name)
		}
	}
}

func TestVerifyClockAndLeeway(t *testing.T) {
	t.Parallel()
	k := newKeys(t)
	tok, err := auth.Mint(k.priv, auth.DevIssuer, auth.DevAudience, auth.Principal{Org: "acme", User: "alice"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	verifierAt := func(at time.Time) *auth.Verifier {
		v, err := auth.NewVerifier(auth.VerifierConfig{
			Issuer: auth.DevIssuer, Audience: auth.DevAudience,
			Keys: []crypto.PublicKey{k.priv.Public()},
			Now:  func() time.Time { return at },
		})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	now := time.Now()
	for _, tt := range []struct {
		name string
		at   time.Time
		ok   bool
		err  error
	}{
		{"within lifetime", now.Add(30 * time.Second), true, nil},
		{"expired within leeway", now.Add(80 * time.Second), true, nil},
		{"expired past leeway", now.Add(2 * time.Minute), false, jwt.ErrTokenExpired},
		{"early within leeway", now.Add(-20 * time.Second), true, nil},
		{"early past leeway", now.Add(-time.Minute), false, jwt.ErrTokenNotValidYet},
	} {
		_, err := verifierAt(tt.at).Verify(tok)
		if tt.ok != (err == nil) || (tt.err != nil && !errors.Is(err, tt.err)) {
			t.Errorf("%s: err %v", tt.name, err)
		}
		if te, ok := errors.AsType[*auth.TokenError](err); err != nil && !ok {
			t.Errorf("%s: %T is not a *TokenError", tt.name, err)
		} else if ok && te.Reason == "" {
			t.Errorf("%s: empty reason", tt.name)
		}
	}
}

func TestNewVerifierRejectsBadConfig(t *testing.T) {
	t.Parallel()
	k := newKeys(t)
	pub := k.priv.Public()
	good := func() auth.VerifierConfig {
		return auth.VerifierConfig{Issuer: "i", Audience: "a", Keys: []crypto.PublicKey{pub}}
	}
	for name, mod := range map[string]func(*auth.VerifierConfig){
		"no issuer":       func(c *auth.VerifierConfig) { c.Issuer = "" },
		"no audience":     func(c *auth.VerifierConfig) { c.Audience = "" },
		"alg none":        func(c *auth.VerifierConfig) { c.Algorithms = []string{"EdDSA", "none"} },
		"symmetric alg":   func(c *auth.VerifierConfig) { c.Algorithms = []string{"HS256"} },
		"unknown alg":     func(c *auth.VerifierConfig) { c.Algorithms = []string{"XX999"} },
		"no keys":         func(c *auth.VerifierConfig) { c.Keys = nil },
		"private key":     func(c *auth.VerifierConfig) { c.Keys = []crypto.PublicKey{k.priv} },
		"secret as key":   func(c *auth.VerifierConfig) { c.Keys = []crypto.PublicKey{[]byte("secret")} },
		"negative leeway": func(c *auth.VerifierConfig) { c.Leeway = -time.Second },
		"non-http JWKS":   func(c *auth.VerifierConfig) { c.JWKSURL = "file:///etc/jwks.json" },
		"relative JWKS":   func(c *auth.VerifierConfig) { c.JWKSURL = "/jwks.json" },
	} {
		cfg := good()
		mod(&cfg)
		if _, err := auth.NewVerifier(cfg); err == nil {
			t.Errorf("%s: NewVerifier accepted %+v", name, cfg)
		}
	}
	if _, err := auth.NewVerifier(good()); err != nil {
		t.Fatalf("good config refused: %v", err)
	}
}

func TestVerifierJWKS(t *testing.T) {
	t.Parallel()
	k := newKeys(t)
	pub := k.priv.Public().(ed25519.PublicKey)
	jwks := fmt.Sprintf(`{"keys":[{"kty":"OKP","crv":"Ed25519","use":"sig","alg":"EdDSA","kid":"k1","x":%q}]}`,
		base64.RawURLEncoding.EncodeToString(pub))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(jwks))
	}))
	t.Cleanup(srv.Close)

	v, err := auth.NewVerifier(auth.VerifierConfig{Issuer: "https://id.example", Audience: "jsm", JWKSURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })

	signWithKID := func(key ed25519.PrivateKey, kid string) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims(func(c jwt.MapClaims) { c["iss"] = "https://id.example"; c["aud"] = "jsm" }))
		tok.Header["kid"] = kid
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if p, err := v.Verify(signWithKID(k.priv, "k1")); err != nil || p.User != "alice" {
		t.Fatalf("JWKS key: %+v, %v", p, err)
	}
	if _, err := v.Verify(signWithKID(k.other, "k1")); err == nil {
		t.Fatal("token signed by another key under a known kid accepted")
	}
	if _, err := v.Verify(signWithKID(k.priv, "unknown")); err == nil {
		t.Fatal("token with unknown kid accepted")
	}
}

func TestLoadOrCreateDevKey(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "state", "jsm")
	k1, err := auth.LoadOrCreateDevKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := auth.LoadOrCreateDevKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equal(k2) {
		t.Fatal("second load returned a different key")
	}
	fi, err := os.Stat(filepath.Join(dir, auth.DevKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(filepath.Join(dir, auth.DevKeyFile))
	if !slices.Equal(b[:28], []byte("-----BEGIN PRIVATE KEY-----\n")) {
		t.Fatalf("key file is not PKCS#8 PEM: %.40q", b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("dir holds %d entries, want only the key", len(entries))
	}
}

func TestLoadOrCreateDevKeyConcurrent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys := make([]ed25519.PrivateKey, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			k, err := auth.LoadOrCreateDevKey(dir)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	for _, k := range keys[1:] {
		if !k.Equal(keys[0]) {
			t.Fatal("concurrent callers got different keys")
		}
	}
}

func TestLoadOrCreateDevKeyRejectsGarbage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, auth.DevKeyFile), []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.LoadOrCreateDevKey(dir); err == nil {
		t.Fatal("garbage key file accepted")
	}
}

func TestMintRejectsBadInput(t *testing.T) {
	t.Parallel()
	k := newKeys(t)
	p := auth.Principal{Org: "acme", User: "alice"}
	for name, mint := range map[string]func() (string, error){
		"no key":      func() (string, error) { return auth.Mint(nil, "i", "a", p, time.Minute) },
		"no issuer":   func() (string, error) { return auth.Mint(k.priv, "", "a", p, time.Minute) },
		"no audience": func() (string, error) { return auth.Mint(k.priv, "i", "", p, time.Minute) },
		"no org":      func() (string, error) { return auth.Mint(k.priv, "i", "a", auth.Principal{User: "u"}, time.Minute) },
		"no user":     func() (string, error) { return auth.Mint(k.priv, "i", "a", auth.Principal{Org: "o"}, time.Minute) },
		"zero ttl":    func() (string, error) { return auth.Mint(k.priv, "i", "a", p, 0) },
	} {
		if _, err := mint(); err == nil {
			t.Errorf("%s: Mint succeeded", name)
		}
	}
}

func FuzzVerify(f *testing.F) {
	_, priv, _ := ed25519.GenerateKey(nil)
	tok, err := auth.Mint(priv, auth.DevIssuer, auth.DevAudience, auth.Principal{Org: "acme", User: "alice", Roles: []string{"r"}}, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.VerifierConfig{Issuer: auth.DevIssuer, Audience: auth.DevAudience, Keys: []crypto.PublicKey{priv.Public()}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok)
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := v.Verify(s)
		if err == nil && (p.Org == "" || p.User == "") {
			t.Fatalf("accepted a token without org or user: %+v", p)
		}
		if err == nil && s != tok {
			t.Fatalf("accepted a token it never minted: %q", s)
		}
	})
}

// A token verified once is taken again without its signature checked,
// but never past its expiry (with the leeway) nor for longer than a
// minute, and a changed token is checked in full.
func TestVerifiedTokensAreRememberedWithinTheirLifetime(t *testing.T) {
	t.Parallel()
	k := newKeys(t)
	tok, err := auth.Mint(k.priv, auth.DevIssuer, auth.DevAudience, auth.Principal{Org: "acme", User: "alice", Roles: []string{"viewer"}}, 90*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	at := time.Now()
	v, err := auth.NewVerifier(auth.VerifierConfig{
		Issuer: auth.DevIssuer, Audience: auth.DevAudience, Keys: []crypto.PublicKey{k.priv.Public()},
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return at },
	})
	if err != nil {
		t.Fatal(err)
	}
	advance := func(d time.Duration) { mu.Lock(); at = at.Add(d); mu.Unlock() }
	p, err := v.Verify(tok)
	if err != nil || p.Org != "acme" || len(p.Roles) != 1 {
		t.Fatalf("first: %v %v", p, err)
	}
	p.Roles[0] = "org-admin" // the caller's copy, not the remembered one
	if again, err := v.Verify(tok); err != nil || again.Roles[0] != "viewer" {
		t.Fatalf("remembered: %v %v", again, err)
	}
	// A character inside the signature (the last ones may only carry
	// padding bits, which base64 decoding can ignore).
	i := len(tok) - 10
	swap := byte('A')
	if tok[i] == swap {
		swap = 'B'
	}
	tampered := tok[:i] + string(swap) + tok[i+1:]
	if _, err := v.Verify(tampered); err == nil {
		t.Fatal("a changed token verified")
	}
	advance(100 * time.Second) // past a minute: checked again, still valid within the leeway
	if _, err := v.Verify(tok); err != nil {
		t.Fatalf("within the leeway: %v", err)
	}
	advance(30 * time.Second) // past expiry and leeway
	if _, err := v.Verify(tok); !errors.Is(err, jwt.ErrTokenExpired) {
		t.Fatalf("expired: %v", err)
	}
}
