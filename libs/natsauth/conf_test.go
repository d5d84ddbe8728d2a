package natsauth_test

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/jsmplatform/jsm/libs/natsauth"
)

var update = flag.Bool("update", false, "rewrite deploy/nats/auth.conf from the table")

// shipped is the configuration the production forms include.
var shipped = filepath.Join("..", "..", "deploy", "nats", "auth.conf")

// TestShippedConfIsTheTable: deploy/nats/auth.conf (compose mounts it, the
// Helm values include it) is what the table makes, with the passwords
// and the callout key read from the server's environment.
func TestShippedConfIsTheTable(t *testing.T) {
	want := natsauth.Conf(natsauth.EnvPasswords, "$"+natsauth.IssuerEnv)
	if *update {
		if err := os.WriteFile(shipped, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(shipped)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("%s differs from natsauth.Conf; run go test ./libs/natsauth -run TestShippedConfIsTheTable -update", shipped)
	}
	secrets, err := natsauth.NewSecrets()
	if err != nil {
		t.Fatal(err)
	}
	for user, pw := range secrets.Passwords {
		t.Setenv(natsauth.PasswordEnv(user), pw)
	}
	issuer, _ := secrets.IssuerPublic()
	t.Setenv(natsauth.IssuerEnv, issuer)
	checkConf(t, shipped, secrets)
}

// TestConfIsWhatTheEmbeddedServerRuns: the configuration file and the
// options of the embedded server give every user the same permissions.
func TestConfIsWhatTheEmbeddedServerRuns(t *testing.T) {
	secrets, err := natsauth.NewSecrets()
	if err != nil {
		t.Fatal(err)
	}
	issuer, _ := secrets.IssuerPublic()
	path := filepath.Join(t.TempDir(), "auth.conf")
	conf := natsauth.Conf(func(u string) string { return natsauth.Quote(secrets.Passwords[u]) }, natsauth.Quote(issuer))
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	checkConf(t, path, secrets)
}

func checkConf(t *testing.T, path string, secrets natsauth.Secrets) {
	t.Helper()
	fromFile, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var embedded server.Options
	if err := secrets.Apply(&embedded); err != nil {
		t.Fatal(err)
	}
	users := func(o *server.Options) map[string]*server.User {
		m := map[string]*server.User{}
		for _, u := range o.Users {
			m[u.Username] = u
		}
		return m
	}
	got, want := users(fromFile), users(&embedded)
	if len(got) != len(want) {
		t.Fatalf("%s has %d users, the table %d", path, len(got), len(want))
	}
	for name, w := range want {
		g := got[name]
		switch {
		case g == nil:
			t.Errorf("%s: no user %s", path, name)
		case g.Password != w.Password:
			t.Errorf("%s: %s's password is not the one given", path, name)
		case !slices.Equal(g.Permissions.Publish.Allow, w.Permissions.Publish.Allow),
			!slices.Equal(g.Permissions.Subscribe.Allow, w.Permissions.Subscribe.Allow),
			(g.Permissions.Response == nil) != (w.Permissions.Response == nil):
			t.Errorf("%s: %s may %+v, the table says %+v", path, name, g.Permissions, w.Permissions)
		case (g.Account != nil && g.Account.Name == natsauth.SystemAccount) != (w.Account != nil && w.Account.Name == natsauth.SystemAccount):
			t.Errorf("%s: %s in the wrong account", path, name)
		}
	}
	if fromFile.AuthCallout == nil || fromFile.AuthCallout.Issuer != embedded.AuthCallout.Issuer ||
		!slices.Equal(slices.Sorted(slices.Values(fromFile.AuthCallout.AuthUsers)), slices.Sorted(slices.Values(embedded.AuthCallout.AuthUsers))) {
		t.Errorf("%s: auth callout %+v, want %+v", path, fromFile.AuthCallout, embedded.AuthCallout)
	}
	if fromFile.SystemAccount != natsauth.SystemAccount {
		t.Errorf("%s: system account %q", path, fromFile.SystemAccount)
	}
}
