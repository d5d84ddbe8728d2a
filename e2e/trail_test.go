package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
)

// jsmCmd runs the jsm binary with a token and returns its standard output.
func (p *platform) jsmCmd(t *testing.T, token string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(p.bin, args...)
	cmd.Env = append(os.Environ(), "JSM_TOKEN="+token)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Logf("jsm %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), err
}

// An auditor keeps the trail's checkpoints outside the platform, exports an
// investigation and checks it offline; after a restart the trail goes on,
// signed with the same key and consistent with what the auditor holds.
func TestTrailWitnessAndExportAcrossRestart(t *testing.T) {
	ctx := context.Background()
	dir := dataDir(t)
	p := up(t, dir)
	acme := p.contracts(t, "acme", "org-admin")
	d, err := acme.DraftContract(ctx, connect.NewRequest(&contractsv1.DraftContractRequest{CustomerOrgId: "acme", ProviderOrgId: "itsec", Title: "Managed SOC"}))
	if err != nil {
		t.Fatal(err)
	}
	id := d.Msg.ContractId
	auditor := p.token(t, "itsec", "auditor")
	work := t.TempDir()
	witness := filepath.Join(work, "witness.json")

	// The trail catches up within moments.
	var out string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, err = p.jsmCmd(t, auditor, "trail", "search", "--server", p.url, "--contract", id)
		if err == nil && strings.Count(out, "\n") == 1 || time.Now().After(deadline) {
			break
		}
	}
	if !strings.Contains(out, "ContractDrafted") {
		t.Fatalf("trail search: %v\n%s", err, out)
	}
	if out, err := p.jsmCmd(t, auditor, "trail", "witness", "--server", p.url, "--state", witness); err != nil || !strings.HasPrefix(out, "consistent: 1 entries") {
		t.Fatalf("witness: %v\n%s", err, out)
	}
	p.stop(t)

	p = up(t, dir)
	acme = p.contracts(t, "acme", "org-admin")
	s, err := acme.SignContract(ctx, connect.NewRequest(&contractsv1.SignContractRequest{ContractId: id}))
	if err != nil {
		t.Fatal(err)
	}
	export := filepath.Join(work, "case.json")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, err = p.jsmCmd(t, auditor, "trail", "export", "--server", p.url, "--contract", id, "--out", export)
		data, _ := os.ReadFile(export)
		if err == nil && strings.Contains(string(data), `"position": `+itoa(s.Msg.Position)) || time.Now().After(deadline) {
			break
		}
	}
	out, err = p.jsmCmd(t, auditor, "trail", "witness", "--server", p.url, "--state", witness)
	if err != nil || !strings.HasPrefix(out, "consistent: 2 entries") {
		t.Fatalf("witness after restart: %v\n%s", err, out)
	}
	// Verify offline, against the key the witness has held since the start.
	if out, err := p.jsmCmd(t, "", "trail", "verify", "--key", witnessKey(t, witness), export); err != nil || !strings.HasPrefix(out, "OK: 2 entries") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	if out, err := p.jsmCmd(t, auditor, "timeline", "--server", p.url, "--correlation", "nope"); err == nil {
		t.Fatalf("timeline of an unknown interaction succeeded:\n%s", out)
	}
}

func witnessKey(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), `"verifier_key": "`)
	key, _, ok2 := strings.Cut(rest, `"`)
	if !ok || !ok2 {
		t.Fatalf("no key in %s", data)
	}
	return key
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
