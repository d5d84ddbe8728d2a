package auth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/jsmplatform/jsm/libs/auth"
)

// idpKeys are one signing key of each algorithm identity providers use.
type idpKeys struct {
	rsa *rsa.PrivateKey
	ec  *ecdsa.PrivateKey
	ed  ed25519.PrivateKey
}

func newIdPKeys(t *testing.T) idpKeys {
	t.Helper()
	r, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	e, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return idpKeys{rsa: r, ec: e, ed: ed}
}

// signed is a token of the claims for the test verifier, signed with m and
// key, with kid in its header unless empty.
func signed(t *testing.T, m jwt.SigningMethod, key any, kid string, mod func(jwt.MapClaims)) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims(mod))
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerifierAlgorithms(t *testing.T) {
	t.Parallel()
	k := newIdPKeys(t)
	v, err := auth.NewVerifier(auth.VerifierConfig{
		Issuer: auth.DevIssuer, Audience: auth.DevAudience,
		Keys: []crypto.PublicKey{&k.rsa.PublicKey, &k.ec.PublicKey, k.ed.Public()},
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{
		"RS256": signed(t, jwt.SigningMethodRS256, k.rsa, "", nil),
		"ES256": signed(t, jwt.SigningMethodES256, k.ec, "", nil),
		"EdDSA": signed(t, jwt.SigningMethodEdDSA, k.ed, "", nil),
	} {
		if p, err := v.Verify(tok); err != nil || p.Org != "acme" || p.User != "alice" {
			t.Errorf("%s: %+v, %v", name, p, err)
		}
	}

	rsaDER := k.rsa.PublicKey.N.Bytes() // some bytes an attacker knows
	for name, tok := range map[string]string{
		"none":                     signed(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", nil),
		"HS256 with a key's bytes": signed(t, jwt.SigningMethodHS256, rsaDER, "", nil),
		"RS384, not listed":        signed(t, jwt.SigningMethodRS384, k.rsa, "", nil),
		"ES256 by another key":     signed(t, jwt.SigningMethodES256, newIdPKeys(t).ec, "", nil),
		"RS256 wrong audience":     signed(t, jwt.SigningMethodRS256, k.rsa, "", func(c jwt.MapClaims) { c["aud"] = "other" }),
		"ES256 wrong issuer":       signed(t, jwt.SigningMethodES256, k.ec, "", func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }),
	} {
		if p, err := v.Verify(tok); err == nil {
			t.Errorf("%s accepted: %+v", name, p)
		}
	}

	// A list that leaves RS256 out refuses it.
	only, err := auth.NewVerifier(auth.VerifierConfig{
		Issuer: auth.DevIssuer, Audience: auth.DevAudience, Algorithms: []string{"EdDSA"},
		Keys: []crypto.PublicKey{&k.rsa.PublicKey, k.ed.Public()},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := only.Verify(signed(t, jwt.SigningMethodRS256, k.rsa, "", nil)); err == nil {
		t.Error("RS256 accepted by a verifier for EdDSA only")
	}
}

// jwksServer serves a JWKS whose keys a test changes, and counts fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    map[string]any // kid ("" for none) → public key
	fetches atomic.Int64
}

func newJWKSServer(t *testing.T, keys map[string]any) *jwksServer {
	t.Helper()
	s := &jwksServer{keys: keys}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		var set jwkset.JWKSMarshal
		for kid, k := range s.keys {
			jwk, err := jwkset.NewJWKFromKey(k, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, USE: jwkset.UseSig}})
			if err != nil {
				panic(err)
			}
			set.Keys = append(set.Keys, jwk.Marshal())
		}
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(keys map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = keys
}

func jwksVerifier(t *testing.T, cfg auth.VerifierConfig) *auth.Verifier {
	t.Helper()
	cfg.Issuer, cfg.Audience = auth.DevIssuer, auth.DevAudience
	v, err := auth.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	return v
}

// An identity provider whose tokens carry no kid: every key of its JWKS
// whose type fits the token's algorithm is tried.
func TestVerifierJWKSWithoutKID(t *testing.T) {
	t.Parallel()
	k := newIdPKeys(t)
	other := newIdPKeys(t)
	srv := newJWKSServer(t, map[string]any{
		"r1": &other.rsa.PublicKey, "r2": &k.rsa.PublicKey, "e1": &k.ec.PublicKey, "d1": k.ed.Public(),
	})
	v := jwksVerifier(t, auth.VerifierConfig{JWKSURL: srv.URL})
	for name, tok := range map[string]string{
		"RS256": signed(t, jwt.SigningMethodRS256, k.rsa, "", nil),
		"ES256": signed(t, jwt.SigningMethodES256, k.ec, "", nil),
		"EdDSA": signed(t, jwt.SigningMethodEdDSA, k.ed, "", nil),
	} {
		if _, err := v.Verify(tok); err != nil {
			t.Errorf("%s without kid: %v", name, err)
		}
	}
	if _, err := v.Verify(signed(t, jwt.SigningMethodES256, other.ec, "", nil)); err == nil {
		t.Error("ES256 token of a key outside the JWKS accepted")
	}
	// With a kid, the key it names and no other.
	if _, err := v.Verify(signed(t, jwt.SigningMethodRS256, k.rsa, "r2", nil)); err != nil {
		t.Errorf("RS256 with its kid: %v", err)
	}
	if _, err := v.Verify(signed(t, jwt.SigningMethodRS256, k.rsa, "r1", nil)); err == nil {
		t.Error("RS256 token under another key's kid accepted")
	}
}

// A key the identity provider removes from its JWKS stops verifying within
// the refresh interval, tokens verified before included.
func TestVerifierJWKSRemovedKeyStops(t *testing.T) {
	t.Parallel()
	k := newIdPKeys(t)
	srv := newJWKSServer(t, map[string]any{"r1": &k.rsa.PublicKey})
	const refresh = 300 * time.Millisecond
	v := jwksVerifier(t, auth.VerifierConfig{JWKSURL: srv.URL, JWKSRefresh: refresh})
	withKID := signed(t, jwt.SigningMethodRS256, k.rsa, "r1", nil)
	withoutKID := signed(t, jwt.SigningMethodRS256, k.rsa, "", nil)
	for _, tok := range []string{withKID, withoutKID} {
		if _, err := v.Verify(tok); err != nil {
			t.Fatal(err)
		}
	}
	srv.set(map[string]any{})
	removed := time.Now()
	for _, tok := range []string{withKID, withoutKID} {
		for {
			if _, err := v.Verify(tok); err != nil {
				break
			}
			if time.Since(removed) > 4*refresh {
				t.Fatalf("token still verifies %s after its key left the JWKS (refresh %s)", time.Since(removed), refresh)
			}
			time.Sleep(refresh / 10)
		}
	}
}

// A token naming a kid the JWKS lacks makes the verifier fetch it again (a
// rotated-in key works at once), but at most once per interval.
func TestVerifierJWKSUnknownKIDRefreshes(t *testing.T) {
	t.Parallel()
	k := newIdPKeys(t)
	next := newIdPKeys(t)
	srv := newJWKSServer(t, map[string]any{"r1": &k.rsa.PublicKey})
	v := jwksVerifier(t, auth.VerifierConfig{JWKSURL: srv.URL, JWKSRefresh: time.Hour, JWKSUnknownKIDEvery: time.Hour})
	if _, err := v.Verify(signed(t, jwt.SigningMethodRS256, k.rsa, "r1", nil)); err != nil {
		t.Fatal(err)
	}
	before := srv.fetches.Load()

	srv.set(map[string]any{"r1": &k.rsa.PublicKey, "r2": &next.rsa.PublicKey})
	if _, err := v.Verify(signed(t, jwt.SigningMethodRS256, next.rsa, "r2", nil)); err != nil {
		t.Fatalf("token of a rotated-in key: %v", err)
	}
	if got := srv.fetches.Load(); got != before+1 {
		t.Fatalf("fetches after an unknown kid: %d, want %d", got, before+1)
	}

	// More made-up kids within the interval: refused at once, no fetch.
	start := time.Now()
	for _, kid := range []string{"x1", "x2", "x3"} {
		if _, err := v.Verify(signed(t, jwt.SigningMethodRS256, next.rsa, kid, nil)); err == nil {
			t.Fatalf("token with made-up kid %s accepted", kid)
		}
	}
	if got := srv.fetches.Load(); got != before+1 {
		t.Fatalf("fetches after more unknown kids: %d, want %d (rate limited)", got, before+1)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("refusing made-up kids took %s: the rate limit must not hold requests", took)
	}
}

// An identity provider that cannot add JSM's claims (Dex) says org and
// roles through groups.
func TestVerifierClaimNames(t *testing.T) {
	t.Parallel()
	k := newIdPKeys(t)
	v := jwksVerifier(t, auth.VerifierConfig{
		Keys:   []crypto.PublicKey{&k.rsa.PublicKey},
		Claims: auth.ClaimNames{Org: "groups", OrgPrefix: "org:", Roles: "groups", RolePrefix: "role:"},
	})
	groups := func(g ...string) func(jwt.MapClaims) {
		return func(c jwt.MapClaims) { delete(c, "org"); delete(c, "roles"); c["groups"] = g }
	}
	p, err := v.Verify(signed(t, jwt.SigningMethodRS256, k.rsa, "", groups("staff", "org:itsec", "role:incident-manager", "role:reader")))
	if err != nil {
		t.Fatal(err)
	}
	if p.Org != "itsec" || !slices.Equal(p.Roles, []string{"incident-manager", "reader"}) || p.Contracts != nil {
		t.Fatalf("principal %+v", p)
	}
	for name, g := range map[string][]string{
		"no org":   {"role:reader"},
		"two orgs": {"org:a", "org:b", "role:reader"},
	} {
		if _, err := v.Verify(signed(t, jwt.SigningMethodRS256, k.rsa, "", groups(g...))); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// JSM's own "org" claim means nothing to this verifier.
	if _, err := v.Verify(signed(t, jwt.SigningMethodRS256, k.rsa, "", nil)); err == nil {
		t.Error(`token with "org" but no org group accepted`)
	}
}

// A machine issuer's tokens are held to its role, its users and the
// contracts they name; the verifiers of other services, which do not list
// it, refuse them.
func TestVerifierMachineIssuer(t *testing.T) {
	t.Parallel()
	users := newKeys(t)
	_, machineKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	machine := auth.MachineIssuer{
		Issuer: "jsm-integration", Audience: "jsm-ingest",
		Keys: []ed25519.PublicKey{machineKey.Public().(ed25519.PublicKey)},
		Role: "itsm-source", UserPrefix: "source:",
	}
	driven, err := auth.NewVerifier(auth.VerifierConfig{
		Issuer: auth.DevIssuer, Audience: auth.DevAudience,
		Keys: []crypto.PublicKey{users.priv.Public()}, Machines: []auth.MachineIssuer{machine},
	})
	if err != nil {
		t.Fatal(err)
	}
	other := newVerifier(t, users.priv.Public().(ed25519.PublicKey))

	source := auth.Principal{Org: "acme", User: "source:s1", Roles: []string{"itsm-source"}, Contracts: []string{"c1", "c2"}}
	good := mint(t, machineKey, machine.Issuer, machine.Audience, source)
	p, err := driven.Verify(good)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Contracts, []string{"c1", "c2"}) || !p.MayActOn("c2") || p.MayActOn("c3") {
		t.Fatalf("principal %+v", p)
	}
	noContracts := source
	noContracts.Contracts = []string{}
	if p, err := driven.Verify(mint(t, machineKey, machine.Issuer, machine.Audience, noContracts)); err != nil || p.MayActOn("c1") {
		t.Fatalf("source of no contracts: %+v, %v", p, err)
	}
	// A user's token is not restricted.
	if p, err := driven.Verify(mint(t, users.priv, auth.DevIssuer, auth.DevAudience, auth.Principal{Org: "acme", User: "alice"})); err != nil || !p.MayActOn("c3") {
		t.Fatalf("user: %+v, %v", p, err)
	}

	with := func(mod func(*auth.Principal)) auth.Principal {
		p := source
		p.Roles = slices.Clone(p.Roles)
		mod(&p)
		return p
	}
	for name, tok := range map[string]string{
		"another role":          mint(t, machineKey, machine.Issuer, machine.Audience, with(func(p *auth.Principal) { p.Roles = []string{"contracts-admin"} })),
		"an extra role":         mint(t, machineKey, machine.Issuer, machine.Audience, with(func(p *auth.Principal) { p.Roles = append(p.Roles, "org-admin") })),
		"a user":                mint(t, machineKey, machine.Issuer, machine.Audience, with(func(p *auth.Principal) { p.User = "alice" })),
		"no contracts claim":    mint(t, machineKey, machine.Issuer, machine.Audience, with(func(p *auth.Principal) { p.Contracts = nil })),
		"users' audience":       mint(t, machineKey, machine.Issuer, auth.DevAudience, source),
		"machine key as a user": mint(t, machineKey, auth.DevIssuer, auth.DevAudience, auth.Principal{Org: "acme", User: "alice", Roles: []string{"org-admin"}}),
		"user key as machine":   mint(t, users.priv, machine.Issuer, machine.Audience, source),
	} {
		if p, err := driven.Verify(tok); err == nil {
			t.Errorf("%s: accepted as %+v", name, p)
		}
	}
	if _, err := other.Verify(good); err == nil {
		t.Error("a service that does not list the machine issuer accepted its token")
	}
}
