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
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1/contractsv1connect"
)

// The contracts service as its own process, as in production: it runs
// against the NATS server and PostgreSQL of a `jsm up` (which runs its own
// contracts instance beside it), accepts the platform's tokens, and both
// instances serve the same contracts.
func TestContractsServiceRunsAlone(t *testing.T) {
	ctx := context.Background()
	dir := dataDir(t)
	p := up(t, dir)

	bin := filepath.Join(t.TempDir(), "contracts")
	build := exec.Command("go", "build", "-o", bin, "github.com/jsmplatform/jsm/services/contracts/cmd/contracts")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build contracts: %v\n%s", err, out)
	}
	dsn := regexp.MustCompile(`postgres://\S+`).FindString(p.log.String())
	if dsn == "" {
		t.Fatalf("jsm up printed no PostgreSQL DSN:\n%s", p.log)
	}
	pubKey := filepath.Join(t.TempDir(), "jwt.pub.pem")
	writePublicKey(t, filepath.Join(dir, "dev-signing-key.pem"), pubKey)

	port := freePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	var log bytes.Buffer
	svc := exec.Command(bin, "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--jwt-public-key", pubKey)
	// Flags and environment variables both configure it.
	svc.Env = append(os.Environ(), "JSM_NATS_URL="+p.natsURL, "JSM_PG_DSN="+dsn)
	svc.Stdout, svc.Stderr = &log, &log
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- svc.Wait() }()
	t.Cleanup(func() {
		if svc.ProcessState == nil {
			_ = svc.Process.Kill()
		}
	})
	waitReady(t, url, &log, 30*time.Second)

	token := p.token(t, "acme", "org-admin")
	alone := contractsv1connect.NewContractServiceClient(http.DefaultClient, url,
		connect.WithInterceptors(connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
			return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
				req.Header().Set("Authorization", "Bearer "+token)
				return next(ctx, req)
			}
		})))
	d, err := alone.DraftContract(ctx, connect.NewRequest(&contractsv1.DraftContractRequest{CustomerOrgId: "acme", ProviderOrgId: "itsec", Title: "Standalone"}))
	if err != nil {
		t.Fatalf("draft through the standalone service: %v\n%s", err, log.String())
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
	_, err = contractsv1connect.NewContractServiceClient(http.DefaultClient, url).GetContract(ctx, connect.NewRequest(&contractsv1.GetContractRequest{ContractId: d.Msg.ContractId}))
	if connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("no token: got %v, want unauthenticated", err)
	}

	// SIGTERM stops it cleanly.
	if err := svc.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("contracts exited with %v:\n%s", err, log.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("contracts did not stop within 30s of SIGTERM:\n%s", log.String())
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
