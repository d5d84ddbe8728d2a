package natsauth

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// Secrets are the passwords of the identities and the seed of the account
// key that signs the auth callout's answers.
type Secrets struct {
	// Passwords of the users of All, by user name.
	Passwords map[string]string `json:"passwords"`
	// CalloutSeed is the seed of an account nkey: the server trusts the
	// callout answers it signs; the integration service holds it.
	CalloutSeed string `json:"callout_seed"`
}

// NewSecrets makes random passwords for every identity and a callout key.
func NewSecrets() (Secrets, error) {
	s := Secrets{Passwords: map[string]string{}}
	for _, id := range All() {
		s.Passwords[id.User] = rand.Text()
	}
	kp, err := nkeys.CreateAccount()
	if err != nil {
		return s, fmt.Errorf("callout key: %w", err)
	}
	seed, err := kp.Seed()
	if err != nil {
		return s, fmt.Errorf("callout key: %w", err)
	}
	s.CalloutSeed = string(seed)
	return s, nil
}

// secretsFile is where LoadOrCreate keeps the secrets in a data dir.
const secretsFile = "nats-auth.json"

// LoadOrCreate reads the secrets kept in dir, or makes and keeps new ones
// (readable by the owner only). A user added to the table since gets a
// password then.
func LoadOrCreate(dir string) (Secrets, error) {
	path := filepath.Join(dir, secretsFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		s, err := NewSecrets()
		if err != nil {
			return s, err
		}
		return s, write(path, s)
	}
	if err != nil {
		return Secrets{}, fmt.Errorf("nats secrets: %w", err)
	}
	var s Secrets
	if err := json.Unmarshal(data, &s); err != nil {
		return Secrets{}, fmt.Errorf("nats secrets %s: %w", path, err)
	}
	missing := false
	for _, id := range All() {
		if s.Passwords[id.User] == "" {
			s.Passwords[id.User], missing = rand.Text(), true
		}
	}
	if _, err := nkeys.FromSeed([]byte(s.CalloutSeed)); err != nil {
		return Secrets{}, fmt.Errorf("nats secrets %s: callout seed: %w", path, err)
	}
	if missing {
		return s, write(path, s)
	}
	return s, nil
}

func write(path string, s Secrets) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("nats secrets: %w", err)
	}
	return nil
}

// Issuer is the callout key pair.
func (s Secrets) Issuer() (nkeys.KeyPair, error) {
	kp, err := nkeys.FromSeed([]byte(s.CalloutSeed))
	if err != nil {
		return nil, fmt.Errorf("callout seed: %w", err)
	}
	return kp, nil
}

// IssuerPublic is the public key of the callout key, which the server trusts.
func (s Secrets) IssuerPublic() (string, error) {
	kp, err := s.Issuer()
	if err != nil {
		return "", err
	}
	return kp.PublicKey()
}

// Apply turns s and the table into the server's users, accounts and auth
// callout: every identity of All with its password, and every other
// client handed to the callout (the integration service answers it).
func (s Secrets) Apply(o *server.Options) error {
	issuer, err := s.IssuerPublic()
	if err != nil {
		return err
	}
	sys := server.NewAccount(SystemAccount)
	o.Accounts = append(o.Accounts, sys)
	o.SystemAccount = SystemAccount
	var authUsers []string
	for _, id := range All() {
		pw := s.Passwords[id.User]
		if pw == "" {
			return fmt.Errorf("nats secrets: no password for %s", id.User)
		}
		u := &server.User{Username: id.User, Password: pw, Permissions: id.permissions()}
		if id.Account == SystemAccount {
			u.Account = sys
		}
		o.Users = append(o.Users, u)
		authUsers = append(authUsers, id.User)
	}
	o.AuthCallout = &server.AuthCallout{Issuer: issuer, Account: Account, AuthUsers: authUsers}
	return nil
}

func (id Identity) permissions() *server.Permissions {
	p := &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: id.Publish},
		Subscribe: &server.SubjectPermission{Allow: id.Subscribe},
	}
	if id.Responses {
		p.Response = &server.ResponsePermission{MaxMsgs: 1, Expires: server.DEFAULT_ALLOW_RESPONSE_EXPIRATION}
	}
	return p
}
