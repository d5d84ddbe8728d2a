// Package secret issues the shared secrets of sources and webhook
// subscriptions without storing them: a secret is derived from the
// service's master key, what it is for, the object's id and its version, so
// a rotation is a new version and every projection stays rebuildable from
// the stream (the events carry the version, never the secret).
package secret

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Prefix marks a secret in the Standard Webhooks form.
const Prefix = "whsec_"

// KeySize is the master key's length in bytes.
const KeySize = 32

// Purposes keep a source's and a subscription's secrets apart even for
// equal ids.
const (
	ForSource       = "source"
	ForSubscription = "subscription"
)

// Keys derives secrets from one master key.
type Keys struct{ master []byte }

// New returns the derivation for master, which must be KeySize bytes.
func New(master []byte) (Keys, error) {
	if len(master) != KeySize {
		return Keys{}, fmt.Errorf("secret: master key has %d bytes, want %d", len(master), KeySize)
	}
	return Keys{master: master}, nil
}

// Derive returns the secret of version of the object id, in the Standard
// Webhooks form "whsec_<base64 of 32 bytes>".
func (k Keys) Derive(purpose, id string, version uint32) string {
	return Prefix + base64.StdEncoding.EncodeToString(k.Raw(purpose, id, version))
}

// Raw is the secret's key bytes: the HMAC key of signatures.
func (k Keys) Raw(purpose, id string, version uint32) []byte {
	mac := hmac.New(sha256.New, k.master)
	fmt.Fprintf(mac, "jsm-integration\x00%s\x00%s\x00%d", purpose, id, version)
	return mac.Sum(nil)
}

// Equal reports whether given is the secret of version, in constant time.
func (k Keys) Equal(given, purpose, id string, version uint32) bool {
	return hmac.Equal([]byte(given), []byte(k.Derive(purpose, id, version)))
}

// Parse decodes a master key given as base64 (as in an environment variable).
func Parse(s string) (Keys, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return Keys{}, fmt.Errorf("secret: master key is not base64: %w", err)
	}
	return New(b)
}

// KeyFile is the master key's file name in a data directory.
const KeyFile = "integration-master-key"

// LoadOrCreate returns the master key kept in dir/KeyFile (base64, mode
// 0600), creating it on first use, as `jsm up` does for its other keys.
func LoadOrCreate(dir string) (Keys, error) {
	path := filepath.Join(dir, KeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		return Parse(string(b))
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return Keys{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Keys{}, err
	}
	master := make([]byte, KeySize)
	if _, err := rand.Read(master); err != nil {
		return Keys{}, err
	}
	// Created exclusively: of two racing starts, the second reads the first's key.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return LoadOrCreate(dir)
	}
	if err != nil {
		return Keys{}, err
	}
	_, werr := f.WriteString(base64.StdEncoding.EncodeToString(master) + "\n")
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return Keys{}, werr
	}
	return New(master)
}
