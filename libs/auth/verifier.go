package auth

import (
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// MaxTokenLen bounds the size of a token the verifier will look at.
const MaxTokenLen = 8 << 10

// DefaultLeeway is the clock skew allowed when VerifierConfig.Leeway is zero.
const DefaultLeeway = 30 * time.Second

// DefaultAlgorithms are the signing algorithms accepted when
// VerifierConfig.Algorithms is empty: what identity providers sign with by
// default (RS256: Keycloak, Entra ID, Okta, Auth0, Dex; ES256) and JSM's own
// EdDSA.
var DefaultAlgorithms = []string{"RS256", "ES256", "EdDSA"}

// Defaults of the JWKS refresh.
const (
	// DefaultJWKSRefresh is how often the JWKS is fetched again: a key the
	// identity provider removed stops verifying within it.
	DefaultJWKSRefresh = time.Minute
	// DefaultJWKSUnknownKIDEvery is how often at most a token whose kid the
	// JWKS lacks makes it fetched again (a rotated key is picked up at once,
	// and made-up kids cannot make the verifier hammer the provider).
	DefaultJWKSUnknownKIDEvery = 10 * time.Second
)

// VerifierConfig says which tokens a Verifier accepts.
type VerifierConfig struct {
	Issuer   string // required: the "iss" a token must carry
	Audience string // required: a value the token's "aud" must contain

	// Algorithms lists the accepted signing algorithms; default
	// DefaultAlgorithms. "none" and the symmetric HS* algorithms are refused.
	Algorithms []string
	// Keys are the public keys (ed25519.PublicKey, *ecdsa.PublicKey,
	// *rsa.PublicKey) tried in turn.
	Keys []crypto.PublicKey
	// JWKSURL, if set, is a JWKS endpoint whose keys are fetched in the
	// background and refreshed; a token's "kid" selects among them, and a
	// token without one is tried with every key whose type fits its
	// algorithm. Call Verifier.Close to stop the refresh.
	JWKSURL string
	// JWKSRefresh is how often the JWKS is fetched again; default
	// DefaultJWKSRefresh. A token verified with a key is trusted without a
	// new check for at most this long too.
	JWKSRefresh time.Duration
	// JWKSUnknownKIDEvery is the least time between two fetches caused by
	// tokens naming a kid the JWKS lacks; default DefaultJWKSUnknownKIDEvery.
	JWKSUnknownKIDEvery time.Duration
	// Claims says which claims name the caller's org and roles; default the
	// "org" and "roles" claims JSM's own tokens carry.
	Claims ClaimNames
	// Machines are further issuers: services of the platform that call
	// others with tokens of their own, trusted only as far as each says.
	Machines []MachineIssuer
	// Leeway is the clock skew allowed on exp and nbf; default 30s.
	Leeway time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// ClaimNames says where a token carries the caller's org and roles, for
// identity providers that cannot add JSM's own "org" and "roles" claims.
// A claim holds a string, or an array of strings (such as "groups"); with a
// prefix, only the values that start with it count, without it: groups
// ["org:acme", "role:incident-manager"] give org "acme" with OrgPrefix
// "org:" and role "incident-manager" with RolePrefix "role:". The org must
// come out as exactly one value.
type ClaimNames struct {
	Org, OrgPrefix    string // default "org", no prefix
	Roles, RolePrefix string // default "roles", no prefix
}

func (n ClaimNames) withDefaults() ClaimNames {
	if n.Org == "" {
		n.Org = "org"
	}
	if n.Roles == "" {
		n.Roles = "roles"
	}
	return n
}

// A MachineIssuer is a service of the platform that mints tokens for its
// own calls (integration's ingest, calling as a source). Its tokens are
// EdDSA, name a user with UserPrefix, hold Role and no other, and carry a
// "contracts" claim: the principal may act on those contracts only. A token
// of this issuer that claims anything else is refused.
type MachineIssuer struct {
	Issuer, Audience string
	Keys             []ed25519.PublicKey
	Role             string
	UserPrefix       string
}

// Verifier checks bearer tokens and turns them into principals. It is safe
// for concurrent use.
type Verifier struct {
	users    issuer
	machines map[string]issuer // by "iss"
	jwks     keyfunc.Keyfunc
	// unknownKID limits the JWKS fetches that tokens naming a kid it lacks
	// cause; a token over the limit is refused at once.
	unknownKID *rate.Limiter
	stop       context.CancelFunc
	now        func() time.Time
	leeway     time.Duration
	// keepFor bounds how long a verified token is trusted without a new
	// check: a key removed from the JWKS stops its tokens within it.
	keepFor time.Duration

	// Tokens verified lately: a client sends the same token with each of
	// its requests, and checking its signature every time was a twentieth
	// of a busy service's CPU. An entry is kept for at most keepFor and
	// never past the token's own validity.
	mu       sync.Mutex
	verified map[string]verifiedToken
}

// issuer is how the tokens of one issuer are checked.
type issuer struct {
	parser  *jwt.Parser
	keys    []crypto.PublicKey
	names   ClaimNames
	machine *MachineIssuer // nil for the users' issuer
}

type verifiedToken struct {
	p          Principal
	nbf, until time.Time
}

// verifiedFor bounds how long a verified token is trusted without a new
// check when no JWKS refresh asks for less.
const verifiedFor = time.Minute

// verifiedMax bounds the tokens remembered.
const verifiedMax = 10_000

// NewVerifier checks cfg and returns a verifier for it.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("auth: verifier needs an issuer")
	}
	if cfg.Audience == "" {
		return nil, errors.New("auth: verifier needs an audience")
	}
	algs := cfg.Algorithms
	if len(algs) == 0 {
		algs = DefaultAlgorithms
	}
	if err := checkAlgorithms(algs); err != nil {
		return nil, err
	}
	for i, k := range cfg.Keys {
		switch k.(type) {
		case ed25519.PublicKey, *ecdsa.PublicKey, *rsa.PublicKey:
		default:
			return nil, fmt.Errorf("auth: key %d: unsupported key type %T (want a public key)", i, k)
		}
	}
	if len(cfg.Keys) == 0 && cfg.JWKSURL == "" {
		return nil, errors.New("auth: verifier needs keys or a JWKS URL")
	}
	if cfg.Leeway < 0 || cfg.JWKSRefresh < 0 || cfg.JWKSUnknownKIDEvery < 0 {
		return nil, errors.New("auth: negative leeway or JWKS interval")
	}
	leeway := cmp.Or(cfg.Leeway, DefaultLeeway)
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	refresh := cmp.Or(cfg.JWKSRefresh, DefaultJWKSRefresh)
	v := &Verifier{
		users: issuer{
			parser: newParser(algs, cfg.Issuer, cfg.Audience, leeway, now),
			keys:   cfg.Keys,
			names:  cfg.Claims.withDefaults(),
		},
		machines: make(map[string]issuer),
		stop:     func() {},
		now:      now,
		leeway:   leeway,
		keepFor:  verifiedFor,
		verified: make(map[string]verifiedToken),
	}
	for _, m := range cfg.Machines {
		if err := v.addMachine(cfg.Issuer, m, leeway, now); err != nil {
			return nil, err
		}
	}
	if cfg.JWKSURL != "" {
		u, err := url.Parse(cfg.JWKSURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("auth: JWKS URL %q is not an http(s) URL", cfg.JWKSURL)
		}
		ctx, cancel := context.WithCancel(context.Background())
		jwks, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{cfg.JWKSURL}, keyfunc.Override{
			HTTPTimeout:     10 * time.Second,
			RefreshInterval: refresh,
			// keyFor asks for a kid the JWKS lacks only when v.unknownKID
			// allows; jwkset's own limiter would make requests wait for it.
			RefreshUnknownKID: rate.NewLimiter(rate.Inf, 1),
			RateLimitWaitMax:  10 * time.Second, // bounds the fetch
		})
		if err != nil {
			cancel()
			return nil, fmt.Errorf("auth: JWKS %s: %w", cfg.JWKSURL, err)
		}
		v.unknownKID = rate.NewLimiter(rate.Every(cmp.Or(cfg.JWKSUnknownKIDEvery, DefaultJWKSUnknownKIDEvery)), 1)
		v.jwks, v.stop = jwks, cancel
		v.keepFor = min(v.keepFor, refresh)
	}
	return v, nil
}

func (v *Verifier) addMachine(userIssuer string, m MachineIssuer, leeway time.Duration, now func() time.Time) error {
	switch {
	case m.Issuer == "" || m.Audience == "" || m.Role == "" || m.UserPrefix == "":
		return errors.New("auth: a machine issuer needs an issuer, audience, role and user prefix")
	case m.Issuer == userIssuer:
		return fmt.Errorf("auth: machine issuer %q is the users' issuer", m.Issuer)
	case len(m.Keys) == 0:
		return fmt.Errorf("auth: machine issuer %q has no keys", m.Issuer)
	}
	if _, dup := v.machines[m.Issuer]; dup {
		return fmt.Errorf("auth: machine issuer %q given twice", m.Issuer)
	}
	keys := make([]crypto.PublicKey, len(m.Keys))
	for i, k := range m.Keys {
		if len(k) != ed25519.PublicKeySize {
			return fmt.Errorf("auth: machine issuer %q: key %d is not an Ed25519 public key", m.Issuer, i)
		}
		keys[i] = k
	}
	v.machines[m.Issuer] = issuer{
		parser:  newParser([]string{jwt.SigningMethodEdDSA.Alg()}, m.Issuer, m.Audience, leeway, now),
		keys:    keys,
		names:   ClaimNames{}.withDefaults(),
		machine: &m,
	}
	return nil
}

func checkAlgorithms(algs []string) error {
	for _, alg := range algs {
		switch {
		case strings.EqualFold(alg, "none"):
			return errors.New(`auth: algorithm "none" is never accepted`)
		case strings.HasPrefix(strings.ToUpper(alg), "HS"):
			return fmt.Errorf("auth: symmetric algorithm %q is not supported", alg)
		case jwt.GetSigningMethod(alg) == nil:
			return fmt.Errorf("auth: unknown algorithm %q", alg)
		}
	}
	return nil
}

func newParser(algs []string, iss, aud string, leeway time.Duration, now func() time.Time) *jwt.Parser {
	return jwt.NewParser(
		jwt.WithValidMethods(algs),
		jwt.WithIssuer(iss),
		jwt.WithAudience(aud),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(now),
		jwt.WithStrictDecoding(),
	)
}

// Close stops the background refresh of JWKS keys, if any.
func (v *Verifier) Close() error {
	v.stop()
	return nil
}

// TokenError says why a token was refused. Reason is short and safe to show
// to the caller: it never contains the token.
type TokenError struct {
	Reason string
	Err    error
}

func (e *TokenError) Error() string {
	if e.Err == nil {
		return e.Reason
	}
	return e.Reason + ": " + e.Err.Error()
}

func (e *TokenError) Unwrap() error { return e.Err }

// Verify checks token and returns the principal it names. Errors are
// *TokenError.
func (v *Verifier) Verify(token string) (Principal, error) {
	if token == "" {
		return Principal{}, &TokenError{Reason: "missing token"}
	}
	if len(token) > MaxTokenLen {
		return Principal{}, &TokenError{Reason: "token too large"}
	}
	now := v.now()
	if p, ok := v.remembered(token, now); ok {
		return p, nil
	}
	iss, keyfunc := v.users, v.keyFor
	if len(v.machines) > 0 {
		if m, ok := v.machines[unverifiedIssuer(token)]; ok {
			// The issuer chosen here is checked again, with the signature,
			// by its own parser: a token cannot pick a laxer one.
			iss, keyfunc = m, m.keyFor
		}
	}
	c := claims{names: iss.names, machine: iss.machine}
	if _, err := iss.parser.ParseWithClaims(token, &c, keyfunc); err != nil {
		return Principal{}, &TokenError{Reason: reason(err), Err: err}
	}
	v.remember(token, c.p, c, now)
	return c.p.clone(), nil
}

// unverifiedIssuer is the "iss" a token says it has, unchecked.
func unverifiedIssuer(token string) string {
	var c jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(token, &c); err != nil {
		return ""
	}
	return c.Issuer
}

// remembered is the principal of a token verified lately, while the token
// is still valid.
func (v *Verifier) remembered(token string, now time.Time) (Principal, bool) {
	v.mu.Lock()
	t, ok := v.verified[token]
	v.mu.Unlock()
	if !ok || !now.Before(t.until) || now.Add(v.leeway).Before(t.nbf) {
		return Principal{}, false
	}
	return t.p.clone(), true // the caller's own
}

func (v *Verifier) remember(token string, p Principal, c claims, now time.Time) {
	until := now.Add(v.keepFor)
	if c.ExpiresAt != nil && c.ExpiresAt.Add(v.leeway).Before(until) {
		until = c.ExpiresAt.Add(v.leeway)
	}
	var nbf time.Time
	if c.NotBefore != nil {
		nbf = c.NotBefore.Time
	}
	p = p.clone()
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.verified) >= verifiedMax {
		// Forget what expired, and any one if nothing did.
		maps.DeleteFunc(v.verified, func(_ string, t verifiedToken) bool { return !now.Before(t.until) })
		for k := range v.verified {
			if len(v.verified) < verifiedMax {
				break
			}
			delete(v.verified, k)
		}
	}
	v.verified[token] = verifiedToken{p: p, nbf: nbf, until: until}
}

// keyFor returns the keys to try for a user's token: the JWKS key its
// "kid" names, or every JWKS key that fits its algorithm when it has no
// kid, then the configured keys.
func (v *Verifier) keyFor(token *jwt.Token) (any, error) {
	var keys []jwt.VerificationKey
	if v.jwks != nil {
		if kid, hasKID := token.Header["kid"]; hasKID {
			if v.knownKID(kid) || v.unknownKID.Allow() {
				if k, err := v.jwks.Keyfunc(token); err == nil {
					keys = append(keys, k)
				}
			}
		} else if set, err := v.jwks.VerificationKeySet(context.Background()); err == nil {
			keys = append(keys, set.Keys...)
		}
	}
	for _, k := range v.users.keys {
		keys = append(keys, k)
	}
	return fitting(token, keys)
}

// knownKID reports whether the JWKS as last fetched holds kid.
func (v *Verifier) knownKID(kid any) bool {
	all, err := v.jwks.Storage().KeyReadAll(context.Background())
	if err != nil {
		return false
	}
	return slices.ContainsFunc(all, func(k jwkset.JWK) bool { return k.Marshal().KID == kid })
}

// keyFor returns the keys of a machine issuer.
func (i issuer) keyFor(token *jwt.Token) (any, error) {
	keys := make([]jwt.VerificationKey, len(i.keys))
	for n, k := range i.keys {
		keys[n] = k
	}
	return fitting(token, keys)
}

// fitting keeps the keys whose type fits the token's algorithm: a key set
// tried in turn then only costs the checks that can succeed, and the error
// of a token no key fits says so.
func fitting(token *jwt.Token, keys []jwt.VerificationKey) (any, error) {
	out := keys[:0:0]
	for _, k := range keys {
		if fits(token.Method, k) {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no key for token")
	}
	return jwt.VerificationKeySet{Keys: out}, nil
}

func fits(m jwt.SigningMethod, k jwt.VerificationKey) bool {
	switch m := m.(type) {
	case *jwt.SigningMethodRSA, *jwt.SigningMethodRSAPSS:
		_, ok := k.(*rsa.PublicKey)
		return ok
	case *jwt.SigningMethodECDSA:
		ec, ok := k.(*ecdsa.PublicKey)
		return ok && ec.Curve.Params().BitSize == m.CurveBits
	case *jwt.SigningMethodEd25519:
		_, ok := k.(ed25519.PublicKey)
		return ok
	default:
		return false
	}
}

// reason maps a parse error to a short message for the caller.
func reason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed token"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "token not verifiable"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "invalid token signature"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "token not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "token issuer not accepted"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "token audience not accepted"
	case errors.Is(err, errNotAllowed):
		return "token claims not allowed for its issuer"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing), errors.Is(err, errMissingClaim):
		return "token missing required claim"
	default:
		return "invalid token"
	}
}

var (
	errMissingClaim = errors.New("missing claim")
	errNotAllowed   = errors.New("claim not allowed")
)

// claims are the claims of a token: the registered ones, and the org and
// roles under the names the issuer uses.
type claims struct {
	jwt.RegisteredClaims
	names   ClaimNames
	machine *MachineIssuer
	raw     map[string]json.RawMessage
	p       Principal // set by Validate
}

func (c *claims) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &c.RegisteredClaims); err != nil {
		return err
	}
	return json.Unmarshal(b, &c.raw)
}

// Validate is called by the parser after the registered claims check; it
// builds the principal.
func (c *claims) Validate() error {
	if c.Subject == "" {
		return fmt.Errorf("%w: sub", errMissingClaim)
	}
	orgs, err := values(c.raw[c.names.Org], c.names.OrgPrefix, false)
	if err != nil || len(orgs) != 1 || orgs[0] == "" {
		return fmt.Errorf("%w: %s", errMissingClaim, c.names.Org)
	}
	roles, err := values(c.raw[c.names.Roles], c.names.RolePrefix, true)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", jwt.ErrTokenMalformed, c.names.Roles, err)
	}
	c.p = Principal{Org: orgs[0], User: c.Subject, Roles: roles}
	if c.machine != nil {
		return c.validateMachine()
	}
	return nil
}

// validateMachine holds a machine issuer's token to what the issuer may
// say: its one role, its users, and the contracts it names.
func (c *claims) validateMachine() error {
	m := c.machine
	id, ok := strings.CutPrefix(c.p.User, m.UserPrefix)
	if !ok || id == "" {
		return fmt.Errorf("%w: sub %q", errNotAllowed, c.p.User)
	}
	if len(c.p.Roles) != 1 || c.p.Roles[0] != m.Role {
		return fmt.Errorf("%w: roles %q", errNotAllowed, c.p.Roles)
	}
	raw, ok := c.raw[ContractsClaim]
	if !ok {
		return fmt.Errorf("%w: %s", errMissingClaim, ContractsClaim)
	}
	contracts := []string{}
	if err := json.Unmarshal(raw, &contracts); err != nil || contracts == nil {
		return fmt.Errorf("%w: %s is not an array of strings", errNotAllowed, ContractsClaim)
	}
	c.p.Contracts = contracts
	return nil
}

// ContractsClaim lists the contracts a machine issuer's token may act on.
const ContractsClaim = "contracts"

// values decodes a claim holding a string or an array of strings, keeping
// the values with prefix (without it). A string is split on spaces where
// split says (the OAuth "scope" style of roles).
func values(raw json.RawMessage, prefix string, split bool) ([]string, error) {
	if raw == nil {
		return nil, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, errors.New("want an array of strings or a string")
		}
		list = []string{s}
		if split {
			list = strings.Fields(s)
		}
	}
	if prefix == "" {
		return list, nil
	}
	var out []string
	for _, s := range list {
		if v, ok := strings.CutPrefix(s, prefix); ok {
			out = append(out, v)
		}
	}
	return out, nil
}
