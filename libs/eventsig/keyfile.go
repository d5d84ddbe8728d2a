package eventsig

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// LoadOrCreate returns the signer kept in dir/<name>.key and its verifier
// key, creating the key (0600, dir 0700) on first use: how `jsm up` and a
// development cluster give each service its own key.
func LoadOrCreate(dir, name string) (*Signer, string, error) {
	path := filepath.Join(dir, name+".key")
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, "", fmt.Errorf("event signing keys: %w", err)
		}
		skey, _, err := GenerateKey(name)
		if err != nil {
			return nil, "", err
		}
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if errors.Is(err, os.ErrExist) {
			return LoadOrCreate(dir, name) // another process won the race
		}
		if err != nil {
			return nil, "", fmt.Errorf("create event signing key: %w", err)
		}
		if _, err := f.WriteString(skey + "\n"); err != nil {
			_ = f.Close()
			return nil, "", fmt.Errorf("write event signing key: %w", err)
		}
		if err := f.Close(); err != nil {
			return nil, "", err
		}
		data = []byte(skey)
	case err != nil:
		return nil, "", fmt.Errorf("read event signing key: %w", err)
	}
	skey := strings.TrimSpace(string(data))
	s, err := NewSigner(skey)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	if s.Name() != name {
		return nil, "", fmt.Errorf("%s: a key named %q, want %q", path, s.Name(), name)
	}
	vkey, err := VerifierKey(skey)
	return s, vkey, err
}

// VerifierKey is the public verifier key of a signer key.
func VerifierKey(skey string) (string, error) {
	// PRIVATE+KEY+<name>+<hash>+<base64(alg || private key)>: the
	// verifier key is <name>+<hash>+<base64(alg || public key)>.
	s, err := note.NewSigner(strings.TrimSpace(skey))
	if err != nil {
		return "", err
	}
	fields := strings.SplitN(strings.TrimSpace(skey), "+", 5) // the key data may hold '+'
	key, err := base64.StdEncoding.DecodeString(fields[len(fields)-1])
	if err != nil || len(key) != 1+ed25519.SeedSize || key[0] != 1 {
		return "", errors.New("event signing key: not an Ed25519 note signer key")
	}
	pub := ed25519.NewKeyFromSeed(key[1:]).Public().(ed25519.PublicKey)
	return note.NewEd25519VerifierKey(s.Name(), pub)
}
