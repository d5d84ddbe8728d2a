package testkit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// DexVersion pins the Dex (github.com/dexidp/dex) the tests run: the
// commit of its v2.45.1 tag. Dex's module path has no /v2, so its releases
// are only reachable as pseudo-versions.
const DexVersion = "v0.0.0-20260303133905-11d2eeb52b42"

// Dex is a real OpenID Connect provider (Dex, static clients and its
// password database) run for a test.
type Dex struct {
	Issuer  string // "http://127.0.0.1:<port>/dex"
	JWKSURL string
	t       testing.TB
}

// DexUser is a user of Dex's password database.
type DexUser struct {
	Email  string // the login; the password is always "password"
	Groups []string
}

// DexClient is a static client (its secret is "<id>-secret").
type DexClient struct{ ID string }

// dexPasswordHash is bcrypt("password"), as in Dex's own example config.
const dexPasswordHash = "$2a$10$2b2cU8CPhOTaGrs1HRQuAueS7JTT5ZHsHSzYiFPm1leZck7Mc8T4W"

// StartDex builds Dex at DexVersion (once, kept in the user's cache dir)
// and runs it until the test ends, with clients and users. Its tokens are
// RS256, with a kid. It skips the test when Dex cannot be built because
// the module proxy cannot be reached.
func StartDex(t testing.TB, clients []DexClient, users []DexUser) *Dex {
	t.Helper()
	bin := dexBinary(t)
	port := freePort(t)
	issuer := fmt.Sprintf("http://127.0.0.1:%d/dex", port)
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "issuer: %s\nstorage:\n  type: memory\nweb:\n  http: 127.0.0.1:%d\n", issuer, port)
	cfg.WriteString("logger:\n  level: warn\noauth2:\n  passwordConnector: local\n  skipApprovalScreen: true\nenablePasswordDB: true\nstaticClients:\n")
	for _, c := range clients {
		fmt.Fprintf(&cfg, "  - id: %s\n    secret: %s-secret\n    name: %s\n    redirectURIs: ['http://127.0.0.1/callback']\n", c.ID, c.ID, c.ID)
	}
	cfg.WriteString("staticPasswords:\n")
	for i, u := range users {
		groups, _ := json.Marshal(u.Groups)
		fmt.Fprintf(&cfg, "  - email: %q\n    hash: %q\n    username: %q\n    userID: \"user-%d\"\n    groups: %s\n",
			u.Email, dexPasswordHash, strings.Split(u.Email, "@")[0], i, groups)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(file, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "serve", file)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	d := &Dex{Issuer: issuer, JWKSURL: issuer + "/keys", t: t}
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get(issuer + "/.well-known/openid-configuration")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return d
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("dex did not start: %v\n%s", err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Token logs user in with the password grant for client and returns the
// ID token Dex issues (scopes openid, email, profile and groups).
func (d *Dex) Token(client, email string) string {
	d.t.Helper()
	form := url.Values{
		"grant_type": {"password"},
		"username":   {email},
		"password":   {"password"},
		"scope":      {"openid email profile groups"},
	}
	req, err := http.NewRequest(http.MethodPost, d.Issuer+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		d.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(client, client+"-secret")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		IDToken string `json:"id_token"`
		Error   string `json:"error"`
		Desc    string `json:"error_description"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || body.IDToken == "" {
		d.t.Fatalf("dex token for %s: %d %s %s (%v)", email, res.StatusCode, body.Error, body.Desc, err)
	}
	return body.IDToken
}

// dexBinary builds Dex at DexVersion into the user's cache dir, once: Dex's
// go.mod replaces a module of its own, so `go install pkg@version` cannot
// build it; a throwaway module requiring it can.
func dexBinary(t testing.TB) string {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "jsm-testkit", "dex-"+DexVersion)
	bin := filepath.Join(dir, "dex")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	work, err := os.MkdirTemp(dir, "build-*")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(work)
	files := map[string]string{
		"go.mod":   "module dexbuild\n\ngo 1.25.0\n\nrequire github.com/dexidp/dex " + DexVersion + "\n",
		"tools.go": "//go:build tools\n\npackage dexbuild\n\nimport _ \"github.com/dexidp/dex/cmd/dex\"\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(work, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// No cgo: Dex's SQLite storage is not needed (memory storage), and a
	// pure Go build is quicker and needs no C compiler.
	env := append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod", "GOWORK=off")
	for _, args := range [][]string{
		{"mod", "tidy"},
		{"build", "-o", filepath.Join(work, "dex"), "github.com/dexidp/dex/cmd/dex"},
	} {
		cmd := exec.Command("go", args...)
		cmd.Dir, cmd.Env = work, env
		if out, err := cmd.CombinedOutput(); err != nil {
			// Never skipped: make test needs the Go module proxy (or a
			// module cache holding Dex) like every module of the workspace.
			t.Fatalf("build dex: go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if err := os.Rename(filepath.Join(work, "dex"), bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
