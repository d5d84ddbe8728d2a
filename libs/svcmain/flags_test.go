package svcmain

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jsmplatform/jsm/libs/rpc"
)

// Every flag takes its value from JSM_<NAME> unless given on the command line.
func TestFlagsComeFromTheEnvironment(t *testing.T) {
	t.Setenv("JSM_NATS_URL", "nats://a:4222,nats://b:4222")
	t.Setenv("JSM_REPLICAS", "3")
	t.Setenv("JSM_LISTEN", "127.0.0.1:1")
	var cfg config
	fs := flags("test", "127.0.0.1:8081", &cfg)
	if err := fs.Parse([]string{"--listen", "127.0.0.1:2"}); err != nil {
		t.Fatal(err)
	}
	if err := fromEnv(fs); err != nil {
		t.Fatal(err)
	}
	if cfg.natsURL != "nats://a:4222,nats://b:4222" || cfg.replicas != 3 || cfg.listen != "127.0.0.1:2" {
		t.Fatalf("nats %q replicas %d listen %q; want the environment's, and the command line's listen", cfg.natsURL, cfg.replicas, cfg.listen)
	}
	t.Setenv("JSM_DRAIN_DELAY", "soon")
	if err := fromEnv(flags("test", "", &cfg)); err == nil || !strings.Contains(err.Error(), "JSM_DRAIN_DELAY") {
		t.Fatalf("a bad JSM_DRAIN_DELAY: %v, want an error naming it", err)
	}
}

// README.md documents every setting of a service in one table ("Running a
// service alone"): each flag with its environment variable and default,
// every JSM_* variable a service reads itself, and the OpenTelemetry
// variables libs/telemetry reads.
func TestREADMETableDocumentsEverySetting(t *testing.T) {
	root := filepath.Join("..", "..")
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Running a service alone\n")
	if !ok {
		t.Fatal("README.md has no section \"Running a service alone\"")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	type row struct{ flag, env, def string }
	var rows []row
	envs := map[string]bool{}
	for line := range strings.Lines(section) {
		cells := strings.Split(strings.TrimSpace(line), "|")
		if len(cells) < 5 || !strings.HasPrefix(strings.TrimSpace(line), "|") {
			continue
		}
		r := row{strings.TrimSpace(cells[1]), strings.TrimSpace(cells[2]), strings.TrimSpace(cells[3])}
		rows = append(rows, r)
		for _, m := range regexp.MustCompile("`([A-Z][A-Z0-9_]+)`").FindAllStringSubmatch(r.env, -1) {
			envs[m[1]] = true
		}
	}
	if len(rows) == 0 {
		t.Fatal("no table in \"Running a service alone\"")
	}

	var cfg config
	flags("test", "127.0.0.1:8081", &cfg).VisitAll(func(f *flag.Flag) {
		env := "JSM_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		for _, r := range rows {
			if r.flag != "`--"+f.Name+"`" {
				continue
			}
			if r.env != "`"+env+"`" {
				t.Errorf("README: --%s is documented with %s, want `%s`", f.Name, r.env, env)
			}
			if def := f.DefValue; f.Name != "listen" && def != "" && !strings.Contains(r.def, "`"+def+"`") {
				t.Errorf("README: --%s's default is %q, the table says %s", f.Name, def, r.def)
			}
			return
		}
		t.Errorf("README: flag --%s (%s) is not in the table", f.Name, env)
	})

	// What a service reads from the environment itself (its own secrets
	// and settings), and what telemetry.Enabled reads.
	read := regexp.MustCompile(`(?:Getenv|LookupEnv)\("((?:JSM|OTEL)_[A-Z0-9_]+)"\)`)
	var files []string
	for _, dir := range []string{filepath.Join(root, "services"), filepath.Join(root, "libs", "telemetry")} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "bench" || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	found := 0
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range read.FindAllStringSubmatch(string(b), -1) {
			found++
			if !envs[m[1]] {
				t.Errorf("README: %s (read in %s) is not in the table", m[1], path)
			}
		}
	}
	if found == 0 {
		t.Fatal("found no environment variable read by a service: the search is broken")
	}
}

// Only the services ingest drives take integration's public key; the
// others refuse to start with it rather than trust its tokens.
func TestIntegrationKeyOnlyForTheServicesIngestDrives(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "integration.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"contracts", "audits", "reporting", "trail", "integration", "incidents", "patching", "changeadvisory"} {
		var cfg config
		if err := flags(name, "127.0.0.1:0", &cfg).Parse([]string{"--integration-public-key", file, "--jwt-algorithms", "RS256, EdDSA"}); err != nil {
			t.Fatal(err)
		}
		vc, err := cfg.verifier(name)
		driven := slices.Contains(IngestDriven, name)
		switch {
		case driven && (err != nil || len(vc.Machines) != 1 || vc.Machines[0].Role != "itsm-source"):
			t.Errorf("%s: %+v, %v", name, vc.Machines, err)
		case !driven && err == nil:
			t.Errorf("%s accepted integration's key", name)
		}
		if driven && !slices.Equal(vc.Algorithms, []string{"RS256", "EdDSA"}) {
			t.Errorf("%s: algorithms %q", name, vc.Algorithms)
		}
	}
}

// With no setting, a service limits the rate per IP and per org and hides
// /metrics and reflection; each is a flag (and JSM_*) away.
func TestLimitsAreOnByDefault(t *testing.T) {
	var cfg config
	if err := flags("test", "", &cfg).Parse(nil); err != nil {
		t.Fatal(err)
	}
	hc := cfg.limits.hostConfig(rpc.HostConfig{})
	if hc.RateLimit <= 0 || hc.OrgRateLimit <= 0 || !hc.NoMetrics || !hc.NoReflection || hc.MetricsToken != "" {
		t.Fatalf("defaults: %+v; want both rate limits on, metrics and reflection off", hc)
	}

	t.Setenv("JSM_METRICS_TOKEN", "s3cret")
	t.Setenv("JSM_ORG_RATE_LIMIT", "0")
	cfg = config{}
	fs := flags("test", "", &cfg)
	if err := fs.Parse([]string{"--reflection", "--rate-limit", "5"}); err != nil {
		t.Fatal(err)
	}
	if err := fromEnv(fs); err != nil {
		t.Fatal(err)
	}
	hc = cfg.limits.hostConfig(rpc.HostConfig{})
	if hc.RateLimit != 5 || hc.OrgRateLimit != 0 || hc.NoMetrics || hc.MetricsToken != "s3cret" || hc.NoReflection {
		t.Fatalf("set: %+v; want rate 5, no org limit, metrics behind the token, reflection on", hc)
	}
}
