package auth

import (
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

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

// MaxTokenLen bounds the size of a token the verifier will look at.
const MaxTokenLen = 8 << 10

// DefaultLeeway is the clock skew allowed when VerifierConfig.Leeway is zero.
const DefaultLeeway = 30 * time.Second

// VerifierConfig says which tokens a Verifier accepts.
type VerifierConfig struct {
	Issuer   string // required: the "iss" a token must carry
	Audience string // required: a value the token's "aud" must contain

	// Algorithms lists the accepted signing algorithms; default ["EdDSA"].
	// "none" and the symmetric HS* algorithms are refused.
	Algorithms []string
	// Keys are the public keys (ed25519.PublicKey, *ecdsa.PublicKey,
	// *rsa.PublicKey) tried in turn.
	Keys []crypto.PublicKey
	// JWKSURL, if set, is a JWKS endpoint whose keys are fetched in the
	// background and refreshed; a token's "kid" selects among them. Call
	// Verifier.Close to stop the refresh.
	JWKSURL string
	// Leeway is the clock skew allowed on exp and nbf; default 30s.
	Leeway time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Verifier checks bearer tokens and turns them into principals. It is safe
// for concurrent use.
type Verifier struct {
	parser *jwt.Parser
	keys   []crypto.PublicKey
	jwks   keyfunc.Keyfunc
	stop   context.CancelFunc
	now    func() time.Time
	leeway time.Duration

	// Tokens verified lately: a client sends the same token with each of
	// its requests, and checking its signature every time was a twentieth
	// of a busy service's CPU. An entry is kept for at most verifiedFor and
	// never past the token's own validity.
	mu       sync.Mutex
	verified map[string]verifiedToken
}

type verifiedToken struct {
	p          Principal
	nbf, until time.Time
}

// verifiedFor bounds how long a verified token is trusted without a new
// check (a key removed from the JWKS stops its tokens within it).
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
		algs = []string{jwt.SigningMethodEdDSA.Alg()}
	}
	for _, alg := range algs {
		switch {
		case strings.EqualFold(alg, "none"):
			return nil, errors.New(`auth: algorithm "none" is never accepted`)
		case strings.HasPrefix(strings.ToUpper(alg), "HS"):
			return nil, fmt.Errorf("auth: symmetric algorithm %q is not supported", alg)
		case jwt.GetSigningMethod(alg) == nil:
			return nil, fmt.Errorf("auth: unknown algorithm %q", alg)
		}
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
	if cfg.Leeway < 0 {
		return nil, fmt.Errorf("auth: negative leeway %s", cfg.Leeway)
	}
	leeway := cfg.Leeway
	if leeway == 0 {
		leeway = DefaultLeeway
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}

	v := &Verifier{
		parser: jwt.NewParser(
			jwt.WithValidMethods(algs),
			jwt.WithIssuer(cfg.Issuer),
			jwt.WithAudience(cfg.Audience),
			jwt.WithExpirationRequired(),
			jwt.WithLeeway(leeway),
			jwt.WithTimeFunc(now),
			jwt.WithStrictDecoding(),
		),
		keys:     cfg.Keys,
		stop:     func() {},
		now:      now,
		leeway:   leeway,
		verified: make(map[string]verifiedToken),
	}
	if cfg.JWKSURL != "" {
		u, err := url.Parse(cfg.JWKSURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("auth: JWKS URL %q is not an http(s) URL", cfg.JWKSURL)
		}
		ctx, cancel := context.WithCancel(context.Background())
		jwks, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{cfg.JWKSURL}, keyfunc.Override{
			HTTPTimeout: 10 * time.Second,
		})
		if err != nil {
			cancel()
			return nil, fmt.Errorf("auth: JWKS %s: %w", cfg.JWKSURL, err)
		}
		v.jwks, v.stop = jwks, cancel
	}
	return v, nil
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
	var c claims
	if _, err := v.parser.ParseWithClaims(token, &c, v.keyFor); err != nil {
		return Principal{}, &TokenError{Reason: reason(err), Err: err}
	}
	p := Principal{Org: c.Org, User: c.Subject, Roles: c.Roles}
	v.remember(token, p, c, now)
	return p, nil
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
	p := t.p
	p.Roles = slices.Clone(p.Roles) // the caller's own
	return p, true
}

func (v *Verifier) remember(token string, p Principal, c claims, now time.Time) {
	until := now.Add(verifiedFor)
	if c.ExpiresAt != nil && c.ExpiresAt.Add(v.leeway).Before(until) {
		until = c.ExpiresAt.Add(v.leeway)
	}
	var nbf time.Time
	if c.NotBefore != nil {
		nbf = c.NotBefore.Time
	}
	p.Roles = slices.Clone(p.Roles)
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

// keyFor returns the keys to try for token: the JWKS key its "kid" names,
// if any, then the configured keys.
func (v *Verifier) keyFor(token *jwt.Token) (any, error) {
	keys := make([]jwt.VerificationKey, 0, len(v.keys)+1)
	if v.jwks != nil {
		if k, err := v.jwks.Keyfunc(token); err == nil {
			keys = append(keys, k)
		}
	}
	for _, k := range v.keys {
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no key for token")
	}
	return jwt.VerificationKeySet{Keys: keys}, nil
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
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing), errors.Is(err, errMissingClaim):
		return "token missing required claim"
	default:
		return "invalid token"
	}
}

var errMissingClaim = errors.New("missing claim")

// claims are the claims of a JSM token.
type claims struct {
	jwt.RegisteredClaims
	Org   string `json:"org"`
	Roles roles  `json:"roles,omitempty"`
}

// Validate is called by the parser after the registered claims check.
func (c *claims) Validate() error {
	if c.Subject == "" {
		return fmt.Errorf("%w: sub", errMissingClaim)
	}
	if c.Org == "" {
		return fmt.Errorf("%w: org", errMissingClaim)
	}
	return nil
}

// roles decodes a JSON array of strings or one space-separated string
// (the OAuth "scope" style).
type roles []string

func (r *roles) UnmarshalJSON(b []byte) error {
	var list []string
	if err := json.Unmarshal(b, &list); err == nil {
		*r = list
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("roles: want an array of strings or a string")
	}
	*r = strings.Fields(s)
	return nil
}
