package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/jsmplatform/jsm/libs/natsauth"
	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1/contractsv1connect"
	incidentsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/incidents/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/incidents/v1/incidentsv1connect"
)

// The contracts service as its own process, as in production: it runs
// against the NATS server and PostgreSQL of a `jsm up` (which runs its own
// contracts instance beside it), accepts the platform's tokens, and both
// instances serve the same contracts.
func TestContractsServiceRunsAlone(t *testing.T) {
	ctx := context.Background()
	dir := dataDir(t)
	p := up(t, dir)
	svc := runAlone(t, p, dir, "contracts")

	token := p.token(t, "acme", "org-admin")
	alone := contractsv1connect.NewContractServiceClient(http.DefaultClient, svc.url, connect.WithInterceptors(bearer(token)))
	d, err := alone.DraftContract(ctx, connect.NewRequest(&contractsv1.DraftContractRequest{CustomerOrgId: "acme", ProviderOrgId: "itsec", Title: "Standalone"}))
	if err != nil {
		t.Fatalf("draft through the standalone service: %v\n%s", err, svc.log.String())
	}
	for name, c := range map[string]contractsv1connect.ContractServiceClient{"standalone": alone, "jsm up": p.contracts(t, "acme", "viewer")} {
		got, err := c.GetContract(ctx, connect.NewRequest(&contractsv1.GetContractRequest{ContractId: d.Msg.ContractId, MinPosition: d.Msg.Position}))
		if err != nil {
			t.Fatalf("%s: get: %v", name, err)
		}
		if got.Msg.Contract.GetTitle() != "Standalone" {
			t.Fatalf("%s: contract = %v", name, got.Msg.Contract)
		}
	}
	// Without a token it refuses, as jsm up does.
	_, err = contractsv1connect.NewContractServiceClient(http.DefaultClient, svc.url).GetContract(ctx, connect.NewRequest(&contractsv1.GetContractRequest{ContractId: d.Msg.ContractId}))
	if connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("no token: got %v, want unauthenticated", err)
	}
	svc.stop(t)
}

// The incidents service as its own process beside jsm up: it learns the
// contracts from the stream and serves the incidents jsm up's instance
// opened, and the other way round.
func TestIncidentsServiceRunsAlone(t *testing.T) {
	ctx := context.Background()
	dir := dataDir(t)
	p := up(t, dir)
	svc := runAlone(t, p, dir, "incidents")

	acme, itsec := p.token(t, "acme", "org-admin"), p.token(t, "itsec", "org-admin")
	var draft struct {
		ContractID string `json:"contractId"`
	}
	var out struct {
		Position string `json:"position"`
	}
	p.post(t, acme, "/jsm.contracts.v1.ContractService/DraftContract", `{"customerOrgId":"acme","providerOrgId":"itsec","title":"Standalone"}`, &draft)
	p.post(t, acme, "/jsm.contracts.v1.ContractService/SignContract", fmt.Sprintf(`{"contractId":%q}`, draft.ContractID), &out)
	p.post(t, itsec, "/jsm.contracts.v1.ContractService/SignContract", fmt.Sprintf(`{"contractId":%q}`, draft.ContractID), &out)

	alone := incidentsv1connect.NewIncidentServiceClient(http.DefaultClient, svc.url, connect.WithInterceptors(bearer(itsec)))
	r, err := alone.ReportIncident(ctx, connect.NewRequest(&incidentsv1.ReportIncidentRequest{
		ContractId: draft.ContractID, Title: "Standalone", Severity: commonv1.Severity_SEVERITY_LOW, AwareAt: timestamppb.Now(),
	}))
	if err != nil {
		t.Fatalf("report through the standalone service: %v\n%s", err, svc.log.String())
	}
	var got struct {
		Incident struct {
			Title string `json:"title"`
		} `json:"incident"`
	}
	p.post(t, acme, "/jsm.incidents.v1.IncidentService/GetIncident", fmt.Sprintf(`{"incidentId":%q,"minPosition":"%d"}`, r.Msg.IncidentId, r.Msg.Position), &got)
	if got.Incident.Title != "Standalone" {
		t.Fatalf("jsm up's instance shows %+v", got.Incident)
	}
	svc.stop(t)
}

// The trail as its own process beside jsm up, with jsm up's signing key:
// both serve one log.
func TestTrailServiceRunsAlone(t *testing.T) {
	dir := dataDir(t)
	p := up(t, dir)
	key, err := os.ReadFile(filepath.Join(dir, "trail-signing.key"))
	if err != nil {
		t.Fatal(err)
	}
	svc := runAlone(t, p, dir, "trail", "JSM_TRAIL_SIGNING_KEY="+strings.TrimSpace(string(key)))

	acme := p.token(t, "acme", "org-admin")
	var draft struct {
		ContractID string `json:"contractId"`
	}
	p.post(t, acme, "/jsm.contracts.v1.ContractService/DraftContract", `{"customerOrgId":"acme","providerOrgId":"itsec","title":"Trail alone"}`, &draft)
	alone := &platform{url: svc.url}
	var cp struct {
		Checkpoint string `json:"checkpoint"`
		Size       string `json:"size"`
	}
	alone.post(t, acme, "/jsm.trail.v1.TrailService/GetCheckpoint", `{"minPosition":"1"}`, &cp)
	// The checkpoint names the log by the key's name (PRIVATE+KEY+<origin>+…):
	// jsm up's origin, random per data dir.
	origin := strings.Split(strings.TrimSpace(string(key)), "+")[2]
	if cp.Size == "" || cp.Size == "0" || !strings.HasPrefix(origin, "jsm-trail/") || !strings.HasPrefix(cp.Checkpoint, origin+"\n") {
		t.Fatalf("checkpoint from the trail alone: %+v", cp)
	}
	svc.stop(t)
}

// alone is a service's own process, started from its cmd/<name> package
// against jsm up's NATS and PostgreSQL with jsm up's token key.
type alone struct {
	name   string
	url    string
	log    *bytes.Buffer
	cmd    *exec.Cmd
	exited chan error
}

func runAlone(t *testing.T, p *platform, dir, name string, env ...string) *alone {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	build := exec.Command("go", "build", "-o", bin, "github.com/jsmplatform/jsm/services/"+name+"/cmd/"+name)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, out)
	}
	dsn := regexp.MustCompile(`postgres://\S+`).FindString(p.log.String())
	if dsn == "" {
		t.Fatalf("jsm up printed no PostgreSQL DSN:\n%s", p.log)
	}
	pubKey := filepath.Join(t.TempDir(), "jwt.pub.pem")
	writePublicKey(t, filepath.Join(dir, "dev-signing-key.pem"), pubKey)

	port := freePort(t)
	a := &alone{name: name, url: fmt.Sprintf("http://127.0.0.1:%d", port), log: &bytes.Buffer{}, exited: make(chan error, 1)}
	a.cmd = exec.Command(bin, "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--jwt-public-key", pubKey)
	// Flags and environment variables both configure it.
	// On NATS it is its own user, with the password jsm up keeps.
	secrets, err := natsauth.LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	a.cmd.Env = append(append(os.Environ(), "JSM_NATS_URL="+p.natsURL, "JSM_PG_DSN="+dsn,
		"JSM_NATS_USER="+name, "JSM_NATS_PASSWORD="+secrets.Passwords[name]), env...)
	a.cmd.Stdout, a.cmd.Stderr = a.log, a.log
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.exited <- a.cmd.Wait() }()
	t.Cleanup(func() {
		if a.cmd.ProcessState == nil {
			_ = a.cmd.Process.Kill()
		}
	})
	waitReady(t, a.url, a.log, 30*time.Second)
	return a
}

// stop sends SIGTERM and expects a clean exit.
func (a *alone) stop(t *testing.T) {
	t.Helper()
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-a.exited:
		if err != nil {
			t.Fatalf("%s exited with %v:\n%s", a.name, err, a.log.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not stop within 30s of SIGTERM:\n%s", a.name, a.log.String())
	}
}

func bearer(token string) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+token)
			return next(ctx, req)
		}
	}
}

// writePublicKey writes the public half of jsm up's dev signing key, as an
// operator would hand an identity provider's key to a service.
func writePublicKey(t *testing.T, privatePEM, out string) {
	t.Helper()
	data, err := os.ReadFile(privatePEM)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM block", privatePEM)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(key.(ed25519.PrivateKey).Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
