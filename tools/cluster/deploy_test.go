package cluster_test

// No container engine runs on the development machines, so the compose
// file and the Kubernetes manifests are checked here by structure: every
// service of the repository is deployed with the settings it needs, and
// the NATS configuration keeps three nodes, R3 and sync_interval: always.
// `make cluster-up` and e2e/fault_test.go run the same topology for real.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.yaml.in/yaml/v3"

	"github.com/jsmplatform/jsm/libs/natsauth"
)

const root = "../.."

// services are the repository's services/*/cmd/*.
func services(t *testing.T) []string {
	t.Helper()
	mains, err := filepath.Glob(filepath.Join(root, "services", "*", "cmd", "*", "main.go"))
	if err != nil || len(mains) == 0 {
		t.Fatalf("no services/*/cmd/*: %v", err)
	}
	var names []string
	for _, m := range mains {
		names = append(names, filepath.Base(filepath.Dir(m)))
	}
	return names
}

// secrets a service cannot start without, beyond the common settings.
var secrets = map[string]string{
	"trail":       "JSM_TRAIL_SIGNING_KEY",
	"integration": "JSM_INTEGRATION_MASTER_KEY",
}

// eventKeySetting is the event signing setting a service needs: its own
// key, or for the trail (which appends nothing) the keys it pins.
func eventKeySetting(name string) string {
	if name == "trail" {
		return "JSM_TRAIL_SIGNER_KEYS"
	}
	return "JSM_EVENT_SIGNING_KEY"
}

func readYAML(t *testing.T, path string, out any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, out); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestComposeDeploysEveryService(t *testing.T) {
	var compose struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
			Build       struct {
				Args map[string]string `yaml:"args"`
			} `yaml:"build"`
		} `yaml:"services"`
	}
	readYAML(t, "deploy/compose.yaml", &compose)

	pinned := pinnedNATS(t)
	for _, n := range []string{"nats-1", "nats-2", "nats-3"} {
		s, ok := compose.Services[n]
		if !ok {
			t.Fatalf("compose: no %s", n)
		}
		if !strings.HasPrefix(s.Image, "nats:"+pinned+"-") && s.Image != "nats:"+pinned {
			t.Errorf("compose: %s runs %s, want the nats-server the workspace pins (%s)", n, s.Image, pinned)
		}
		if !slices.ContainsFunc(s.Volumes, func(v string) bool { return strings.HasPrefix(v, "./nats/jsm-events.conf:") }) {
			t.Errorf("compose: %s does not run deploy/nats/jsm-events.conf: %v", n, s.Volumes)
		}
		if got := strings.Count(s.Environment["NATS_ROUTES"], "nats://"); got != 2 {
			t.Errorf("compose: %s routes to %d nodes, want the 2 others: %q", n, got, s.Environment["NATS_ROUTES"])
		}
	}
	for _, n := range []string{"postgres", "otel-collector"} {
		if _, ok := compose.Services[n]; !ok {
			t.Errorf("compose: no %s", n)
		}
	}
	// The roles the services log in as are made before any of them starts.
	if s := compose.Services["pg-logins"]; s.Build.Args["SERVICE"] != "jsm" || s.Environment["JSM_PG_ADMIN_DSN"] == "" {
		t.Errorf("compose: pg-logins builds %q with admin DSN %q, want jsm pg-logins as the superuser", s.Build.Args["SERVICE"], s.Environment["JSM_PG_ADMIN_DSN"])
	}
	for _, name := range services(t) {
		s, ok := compose.Services[name]
		if !ok {
			t.Errorf("compose: service %s is missing", name)
			continue
		}
		env := s.Environment
		if s.Build.Args["SERVICE"] != name {
			t.Errorf("compose: %s builds %q", name, s.Build.Args["SERVICE"])
		}
		if got := strings.Count(env["JSM_NATS_URL"], "nats://"); got != 3 {
			t.Errorf("compose: %s knows %d NATS nodes, want 3: %q", name, got, env["JSM_NATS_URL"])
		}
		if env["JSM_REPLICAS"] != "3" {
			t.Errorf("compose: %s JSM_REPLICAS=%q, want 3", name, env["JSM_REPLICAS"])
		}
		checkOTLP(t, "compose: "+name, env["OTEL_EXPORTER_OTLP_ENDPOINT"], env["OTEL_EXPORTER_OTLP_PROTOCOL"], "http://otel-collector")
		for _, k := range []string{"JSM_PG_DSN", "JSM_LISTEN", "JSM_JWKS_URL"} {
			if env[k] == "" {
				t.Errorf("compose: %s has no %s", name, k)
			}
		}
		if k, ok := secrets[name]; ok && env[k] == "" {
			t.Errorf("compose: %s has no %s", name, k)
		}
		if !strings.HasPrefix(env["JSM_PG_DSN"], "postgres://jsm_"+name+":${JSM_PG_PASSWORD_"+strings.ToUpper(name)+"}@") {
			t.Errorf("compose: %s connects to PostgreSQL with %q, want its own role jsm_%s", name, env["JSM_PG_DSN"], name)
		}
		if k := eventKeySetting(name); env[k] == "" {
			t.Errorf("compose: %s has no %s", name, k)
		}
		if env["JSM_NATS_USER"] != name || env["JSM_NATS_PASSWORD"] != "${"+natsauth.PasswordEnv(name)+"}" || env["JSM_NATS_CA"] == "" {
			t.Errorf("compose: %s connects to NATS as %q with %q, CA %q; want its own user, password and the CA", name, env["JSM_NATS_USER"], env["JSM_NATS_PASSWORD"], env["JSM_NATS_CA"])
		}
	}
	for _, n := range []string{"nats-1", "nats-2", "nats-3"} {
		env := compose.Services[n].Environment
		for _, id := range natsauth.All() {
			if !strings.Contains(env[natsauth.PasswordEnv(id.User)], natsauth.PasswordEnv(id.User)) {
				t.Errorf("compose: %s does not get the password of the NATS user %s (%s)", n, id.User, natsauth.PasswordEnv(id.User))
			}
		}
		if env[natsauth.IssuerEnv] == "" || env["NATS_TLS_CERT"] == "" || env["NATS_TLS_CA"] == "" {
			t.Errorf("compose: %s has no callout issuer or TLS: %v", n, env)
		}
		if !slices.ContainsFunc(compose.Services[n].Volumes, func(v string) bool { return strings.HasPrefix(v, "./nats/auth.conf:") }) {
			t.Errorf("compose: %s does not mount deploy/nats/auth.conf", n)
		}
	}
	if env := compose.Services["integration"].Environment; env["JSM_INTEGRATION_NATS_CALLOUT_SEED"] == "" || env["JSM_INTEGRATION_NATS_SYSTEM_PASSWORD"] == "" {
		t.Error("compose: integration cannot answer the NATS auth callout or cut sources off")
	}
}

// pinnedNATS is the nats-server version libs/go.mod requires (without the v).
func pinnedNATS(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "libs", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "github.com/nats-io/nats-server/v2" {
			return strings.TrimPrefix(f[1], "v")
		}
	}
	t.Fatal("libs/go.mod does not require github.com/nats-io/nats-server/v2")
	return ""
}

// checkOTLP checks a service's span export reaches the collector of
// deploy/otel/collector.yaml: libs/telemetry exports OTLP over HTTP
// (otlptracehttp, which ignores OTEL_EXPORTER_OTLP_PROTOCOL), so the
// endpoint must be the collector's HTTP receiver, not its gRPC one.
func checkOTLP(t *testing.T, what, endpoint, protocol, host string) {
	t.Helper()
	var collector struct {
		Receivers struct {
			OTLP struct {
				Protocols struct {
					HTTP struct{ Endpoint string } `yaml:"http"`
				} `yaml:"protocols"`
			} `yaml:"otlp"`
		} `yaml:"receivers"`
		Service struct {
			Pipelines map[string]struct {
				Receivers []string `yaml:"receivers"`
			} `yaml:"pipelines"`
		} `yaml:"service"`
	}
	readYAML(t, "deploy/otel/collector.yaml", &collector)
	_, port, ok := strings.Cut(collector.Receivers.OTLP.Protocols.HTTP.Endpoint, ":")
	if !ok || !slices.Contains(collector.Service.Pipelines["traces"].Receivers, "otlp") {
		t.Fatalf("collector: no OTLP/HTTP receiver in the traces pipeline: %+v", collector)
	}
	if want := host + ":" + port; endpoint != want {
		t.Errorf("%s: OTEL_EXPORTER_OTLP_ENDPOINT=%q, want the collector's OTLP/HTTP receiver %s", what, endpoint, want)
	}
	if protocol != "" && protocol != "http/protobuf" {
		t.Errorf("%s: OTEL_EXPORTER_OTLP_PROTOCOL=%q, but the services export OTLP over HTTP only", what, protocol)
	}
}

// The node configuration the compose file mounts, read by the NATS server
// itself, with the environment compose gives the first node.
func TestNATSNodeConfig(t *testing.T) {
	t.Setenv("NATS_SERVER_NAME", "nats-1")
	t.Setenv("NATS_ROUTES", "[nats://nats-2:6222, nats://nats-3:6222]")
	cert, key, ca := testCert(t)
	t.Setenv("NATS_TLS_CERT", cert)
	t.Setenv("NATS_TLS_KEY", key)
	t.Setenv("NATS_TLS_CA", ca)
	secrets, err := natsauth.NewSecrets()
	if err != nil {
		t.Fatal(err)
	}
	for user, pw := range secrets.Passwords {
		t.Setenv(natsauth.PasswordEnv(user), pw)
	}
	issuer, _ := secrets.IssuerPublic()
	t.Setenv(natsauth.IssuerEnv, issuer)
	opts, err := server.ProcessConfigFile(filepath.Join(root, "deploy/nats/jsm-events.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if opts.TLSConfig == nil || opts.Cluster.TLSConfig == nil || opts.Cluster.TLSConfig.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Errorf("client TLS %v, route TLS %+v; want TLS on both, route certificates verified", opts.TLSConfig != nil, opts.Cluster.TLSConfig)
	}
	if opts.HTTPHost != "127.0.0.1" {
		t.Errorf("monitoring on %q, want the loopback only", opts.HTTPHost)
	}
	if len(opts.Users) != len(natsauth.All()) || opts.AuthCallout == nil || opts.AuthCallout.Issuer != issuer {
		t.Errorf("%d users, auth callout %+v; want natsauth's %d users and the callout", len(opts.Users), opts.AuthCallout, len(natsauth.All()))
	}
	if !opts.JetStream || !opts.SyncAlways {
		t.Errorf("jetstream %v, sync_interval always %v; want both", opts.JetStream, opts.SyncAlways)
	}
	if len(opts.Routes) != 2 || opts.Cluster.Name == "" {
		t.Errorf("cluster %q with %d routes, want a named cluster of 3 nodes", opts.Cluster.Name, len(opts.Routes))
	}
	if opts.MaxPayload != 8<<20 {
		t.Errorf("max_payload %d, want 8 MiB", opts.MaxPayload)
	}
}

func TestKubernetesManifests(t *testing.T) {
	var kust struct {
		Resources          []string `yaml:"resources"`
		ConfigMapGenerator []struct {
			Name     string   `yaml:"name"`
			Literals []string `yaml:"literals"`
		} `yaml:"configMapGenerator"`
	}
	readYAML(t, "deploy/k8s/base/kustomization.yaml", &kust)
	config := map[string]string{}
	for _, g := range kust.ConfigMapGenerator {
		for _, l := range g.Literals {
			k, v, _ := strings.Cut(l, "=")
			config[k] = v
		}
	}
	if config["JSM_REPLICAS"] != "3" || strings.Count(config["JSM_NATS_URL"], "nats://") != 3 {
		t.Errorf("jsm-config: JSM_REPLICAS=%q JSM_NATS_URL=%q; want 3 and every node", config["JSM_REPLICAS"], config["JSM_NATS_URL"])
	}
	checkOTLP(t, "jsm-config", config["OTEL_EXPORTER_OTLP_ENDPOINT"], config["OTEL_EXPORTER_OTLP_PROTOCOL"], "http://otel-collector")
	for _, name := range services(t) {
		if !slices.Contains(kust.Resources, name+".yaml") {
			t.Errorf("kustomization: %s.yaml is not a resource", name)
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, "deploy/k8s/base", name+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[string]bool{}
		for _, doc := range strings.Split(string(b), "\n---\n") {
			var m struct {
				Kind string `yaml:"kind"`
				Spec struct {
					Template struct {
						Spec struct {
							Containers []struct {
								Env []struct {
									Name      string `yaml:"name"`
									Value     string `yaml:"value"`
									ValueFrom struct {
										SecretKeyRef struct{ Name, Key string } `yaml:"secretKeyRef"`
									} `yaml:"valueFrom"`
								} `yaml:"env"`
								EnvFrom []struct {
									ConfigMapRef struct{ Name string } `yaml:"configMapRef"`
								} `yaml:"envFrom"`
								Readiness struct {
									HTTPGet struct{ Path string } `yaml:"httpGet"`
								} `yaml:"readinessProbe"`
								Liveness struct {
									HTTPGet struct{ Path string } `yaml:"httpGet"`
								} `yaml:"livenessProbe"`
							} `yaml:"containers"`
						} `yaml:"spec"`
					} `yaml:"template"`
				} `yaml:"spec"`
			}
			if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
				t.Fatalf("%s.yaml: %v", name, err)
			}
			kinds[m.Kind] = true
			if m.Kind != "Deployment" {
				continue
			}
			c := m.Spec.Template.Spec.Containers[0]
			var env []string
			user, password := "", ""
			for _, e := range c.Env {
				env = append(env, e.Name)
				switch e.Name {
				case "JSM_NATS_USER":
					user = e.Value
				case "JSM_NATS_PASSWORD":
					password = e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
				case "JSM_PG_DSN":
					if ref := e.ValueFrom.SecretKeyRef; ref.Name != "jsm-secrets" || ref.Key != "pg-dsn-"+name {
						t.Errorf("%s: JSM_PG_DSN from %s/%s, want its own role's DSN jsm-secrets/pg-dsn-%s", name, ref.Name, ref.Key, name)
					}
				}
			}
			if user != name || password != "jsm-nats/"+name {
				t.Errorf("%s: connects to NATS as %q with the password %q; want its own user and jsm-nats/%s", name, user, password, name)
			}
			if len(c.EnvFrom) == 0 || c.EnvFrom[0].ConfigMapRef.Name != "jsm-config" || !slices.Contains(env, "JSM_PG_DSN") || !slices.Contains(env, "JSM_LISTEN") {
				t.Errorf("%s: env %v from %+v; want jsm-config, JSM_PG_DSN and JSM_LISTEN", name, env, c.EnvFrom)
			}
			if k, ok := secrets[name]; ok && !slices.Contains(env, k) {
				t.Errorf("%s: no %s", name, k)
			}
			if k := eventKeySetting(name); !slices.Contains(env, k) {
				t.Errorf("%s: no %s in %v", name, k, env)
			}
			if c.Readiness.HTTPGet.Path != "/readyz" || c.Liveness.HTTPGet.Path != "/healthz" {
				t.Errorf("%s: probes %q %q", name, c.Readiness.HTTPGet.Path, c.Liveness.HTTPGet.Path)
			}
		}
		if !kinds["Deployment"] || !kinds["Service"] {
			t.Errorf("%s.yaml: kinds %v, want a Deployment and a Service", name, kinds)
		}
	}

	var overlay struct {
		Resources []string `yaml:"resources"`
	}
	readYAML(t, "deploy/k8s/overlays/production/kustomization.yaml", &overlay)
	if !slices.Contains(overlay.Resources, "../../base") {
		t.Errorf("production overlay does not build on the base: %v", overlay.Resources)
	}

	var values struct {
		Container struct {
			Image struct {
				Tag string `yaml:"tag"`
			} `yaml:"image"`
		} `yaml:"container"`
		Config struct {
			Cluster struct {
				Enabled  bool `yaml:"enabled"`
				Replicas int  `yaml:"replicas"`
			} `yaml:"cluster"`
			JetStream struct {
				Enabled   bool `yaml:"enabled"`
				FileStore struct {
					Enabled bool `yaml:"enabled"`
				} `yaml:"fileStore"`
				Merge map[string]string `yaml:"merge"`
			} `yaml:"jetstream"`
		} `yaml:"config"`
	}
	readYAML(t, "deploy/k8s/nats/values.yaml", &values)
	if config["JSM_NATS_CA"] == "" {
		t.Error("jsm-config: no JSM_NATS_CA; the services would not trust NATS's TLS")
	}
	checkNATSValues(t)
	checkNetworkPolicies(t, kust.Resources)
	if tag, pinned := values.Container.Image.Tag, pinnedNATS(t); tag != pinned && !strings.HasPrefix(tag, pinned+"-") {
		t.Errorf("NATS Helm values: image tag %q, want the nats-server the workspace pins (%s)", tag, pinned)
	}
	c := values.Config
	if !c.Cluster.Enabled || c.Cluster.Replicas != 3 || !c.JetStream.Enabled || !c.JetStream.FileStore.Enabled || c.JetStream.Merge["sync_interval"] != "always" {
		t.Errorf("NATS Helm values: %+v; want a cluster of 3, JetStream on file storage, sync_interval always", c)
	}
}

// testCert writes a self-signed certificate and its key (its own CA).
func testCert(t *testing.T) (cert, key, ca string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "nats-1"}, DNSNames: []string{"nats-1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "nats-1.crt"), filepath.Join(dir, "nats-1.key")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key, cert
}

// checkNATSValues: the Helm values run TLS on client and route ports and
// include deploy/nats/auth.conf with every user's password from the
// environment.
func checkNATSValues(t *testing.T) {
	t.Helper()
	var v struct {
		Container struct {
			Env map[string]any `yaml:"env"`
		} `yaml:"container"`
		Config struct {
			NATS struct {
				TLS struct{ Enabled bool } `yaml:"tls"`
			} `yaml:"nats"`
			Cluster struct {
				TLS struct {
					Enabled bool           `yaml:"enabled"`
					Merge   map[string]any `yaml:"merge"`
				} `yaml:"tls"`
			} `yaml:"cluster"`
			Merge map[string]any `yaml:"merge"`
		} `yaml:"config"`
	}
	readYAML(t, "deploy/k8s/nats/values.yaml", &v)
	if !v.Config.NATS.TLS.Enabled || !v.Config.Cluster.TLS.Enabled || v.Config.Cluster.TLS.Merge["verify"] != true {
		t.Errorf("NATS Helm values: client TLS %v, route TLS %v %v; want both, routes verified", v.Config.NATS.TLS.Enabled, v.Config.Cluster.TLS.Enabled, v.Config.Cluster.TLS.Merge)
	}
	if inc, _ := v.Config.Merge["$include"].(string); !strings.HasSuffix(inc, "/auth.conf") {
		t.Errorf("NATS Helm values: config.merge.$include = %q, want deploy/nats/auth.conf", inc)
	}
	for _, id := range natsauth.All() {
		if _, ok := v.Container.Env[natsauth.PasswordEnv(id.User)]; !ok {
			t.Errorf("NATS Helm values: no %s for the user %s", natsauth.PasswordEnv(id.User), id.User)
		}
	}
	if _, ok := v.Container.Env[natsauth.IssuerEnv]; !ok {
		t.Errorf("NATS Helm values: no %s", natsauth.IssuerEnv)
	}
}

// checkNetworkPolicies: NATS and PostgreSQL take connections from the JSM
// services only.
func checkNetworkPolicies(t *testing.T, resources []string) {
	t.Helper()
	if !slices.Contains(resources, "networkpolicy.yaml") {
		t.Fatal("kustomization: networkpolicy.yaml is not a resource")
	}
	b, err := os.ReadFile(filepath.Join(root, "deploy/k8s/base/networkpolicy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	guarded := map[string][]int{}
	for _, doc := range strings.Split(string(b), "\n---\n") {
		var np struct {
			Kind string `yaml:"kind"`
			Spec struct {
				PodSelector struct {
					MatchLabels map[string]string `yaml:"matchLabels"`
				} `yaml:"podSelector"`
				Ingress []struct {
					From []struct {
						PodSelector struct {
							MatchLabels map[string]string `yaml:"matchLabels"`
						} `yaml:"podSelector"`
					} `yaml:"from"`
					Ports []struct{ Port int } `yaml:"ports"`
				} `yaml:"ingress"`
			} `yaml:"spec"`
		}
		if err := yaml.Unmarshal([]byte(doc), &np); err != nil {
			t.Fatal(err)
		}
		for _, in := range np.Spec.Ingress {
			for _, f := range in.From {
				if f.PodSelector.MatchLabels["app.kubernetes.io/part-of"] != "jsm" {
					continue
				}
				for _, p := range in.Ports {
					name := np.Spec.PodSelector.MatchLabels["app.kubernetes.io/name"]
					guarded[name] = append(guarded[name], p.Port)
				}
			}
		}
	}
	if !slices.Equal(guarded["nats"], []int{4222}) || !slices.Equal(guarded["postgresql"], []int{5432}) {
		t.Errorf("NetworkPolicies let the JSM services reach %v; want NATS's 4222 and PostgreSQL's 5432 only", guarded)
	}
}
