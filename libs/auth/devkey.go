package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The issuer and audience of the tokens `jsm up` mints with its dev key.
const (
	DevIssuer   = "jsm-dev"
	DevAudience = "jsm"
)

// DevKeyFile is the name of the dev signing key inside its directory.
const DevKeyFile = "dev-signing-key.pem"

// The issuer and audience of the tokens integration's ingest mints to call
// incidents, patching and change advisory as a source: an issuer of its
// own, that only those services trust, and only for SourceRole.
const (
	IntegrationIssuer   = "jsm-integration"
	IntegrationAudience = "jsm-ingest"
	// IntegrationKeyFile is the name of ingest's signing key in a data dir.
	IntegrationKeyFile = "integration-signing-key.pem"
	// SourceRole is the one role of a source's tokens.
	SourceRole = "itsm-source"
	// SourceUserPrefix starts the user of every source's token
	// ("source:<id>").
	SourceUserPrefix = "source:"
)

// SourceIssuer is the machine issuer of integration's ingest, signing with
// keys: its tokens act as one source (user "source:<id>", role
// itsm-source) on the contracts they name, and as nothing else.
func SourceIssuer(keys ...ed25519.PublicKey) MachineIssuer {
	return MachineIssuer{
		Issuer: IntegrationIssuer, Audience: IntegrationAudience, Keys: keys,
		Role: SourceRole, UserPrefix: SourceUserPrefix,
	}
}

// LoadOrCreateDevKey returns the local signing key kept in dir/DevKeyFile
// (a PKCS#8 PEM file, mode 0600), creating dir and the key if missing.
// Concurrent callers all end up with the same key.
func LoadOrCreateDevKey(dir string) (ed25519.PrivateKey, error) {
	return LoadOrCreateKey(dir, DevKeyFile)
}

// LoadOrCreateKey is LoadOrCreateDevKey for the key in dir/name (such as
// IntegrationKeyFile).
func LoadOrCreateKey(dir, name string) (ed25519.PrivateKey, error) {
	path := filepath.Join(dir, name)
	key, err := readDevKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create dev key dir: %w", err)
	}
	_, key, err = ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate dev key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode dev key: %w", err)
	}
	// Write a temporary file and link it into place, so that no reader
	// sees a half-written key and a racing creator keeps the first key.
	tmp, err := os.CreateTemp(dir, name+".tmp-*") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("write dev key: %w", err)
	}
	defer os.Remove(tmp.Name())
	werr := pem.Encode(tmp, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, fmt.Errorf("write dev key: %w", werr)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readDevKey(path)
		}
		return nil, fmt.Errorf("write dev key: %w", err)
	}
	return key, nil
}

// ReadKey reads an Ed25519 signing key from a PKCS#8 PEM file, such as
// the one LoadOrCreateDevKey keeps (a service that mints tokens of its own
// is given one).
func ReadKey(path string) (ed25519.PrivateKey, error) { return readDevKey(path) }

func readDevKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read dev key: %w", err)
	}
	key, err := ParseKey(b)
	if err != nil {
		return nil, fmt.Errorf("read dev key %s: %w", path, err)
	}
	return key, nil
}

// ParseKey decodes an Ed25519 signing key in PKCS#8 PEM.
func ParseKey(pemBytes []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("no PKCS#8 PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%T is not an ed25519 key", k)
	}
	return key, nil
}

// mintClaims are the claims of a token Mint signs.
type mintClaims struct {
	jwt.RegisteredClaims
	Org       string    `json:"org"`
	Roles     []string  `json:"roles,omitempty"`
	Contracts *[]string `json:"contracts,omitempty"` // present, even empty, when restricted
}

// Mint signs an EdDSA token for p, valid for ttl from now, with the claims
// a Verifier for issuer and audience accepts. A principal restricted to
// contracts gets them in the "contracts" claim.
func Mint(key ed25519.PrivateKey, issuer, audience string, p Principal, ttl time.Duration) (string, error) {
	switch {
	case len(key) != ed25519.PrivateKeySize:
		return "", errors.New("mint token: invalid ed25519 key")
	case issuer == "" || audience == "":
		return "", errors.New("mint token: issuer and audience are required")
	case p.Org == "" || p.User == "":
		return "", errors.New("mint token: principal needs an org and a user")
	case ttl <= 0:
		return "", fmt.Errorf("mint token: ttl %s is not positive", ttl)
	}
	now := time.Now()
	c := mintClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   p.User,
			Audience:  jwt.ClaimStrings{audience},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			ID:        rand.Text(),
		},
		Org:   p.Org,
		Roles: p.Roles,
	}
	if p.Contracts != nil {
		c.Contracts = &p.Contracts
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, &c).SignedString(key)
	if err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	return s, nil
}
