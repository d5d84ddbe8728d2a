// Package e2e drives a running platform as a black box, the way an
// integrator would: it builds the jsm binary, runs `jsm up` as its own
// process, and talks to it over HTTP and NATS only.
package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1/contractsv1connect"
	"github.com/jsmplatform/jsm/tools/cluster"
)

// platform is one `jsm up` process.
type platform struct {
	bin, dataDir string
	url          string
	natsURL      string
	cmd          *exec.Cmd
	log          *bytes.Buffer
}

var jsmBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "jsm-e2e-bin-")
	if err != nil {
		panic(err)
	}
	jsmBin = filepath.Join(dir, "jsm")
	build := exec.Command("go", "build", "-o", jsmBin, "github.com/jsmplatform/jsm/tools/jsm")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build jsm:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// freePort is below the ephemeral range: a port the kernel hands out for
// "port 0" may be taken by any outgoing connection of a busy machine before
// jsm up listens on it (seen beside a fault test run).
func freePort(tb testing.TB) int {
	tb.Helper()
	port, err := cluster.FreePort()
	if err != nil {
		tb.Fatal(err)
	}
	return port
}

// up starts `jsm up` on dataDir and waits until it is ready.
func up(tb testing.TB, dataDir string) *platform {
	tb.Helper()
	httpPort, natsPort := freePort(tb), freePort(tb)
	p := &platform{
		bin: jsmBin, dataDir: dataDir,
		url:     fmt.Sprintf("http://127.0.0.1:%d", httpPort),
		natsURL: fmt.Sprintf("nats://127.0.0.1:%d", natsPort),
		log:     &bytes.Buffer{},
	}
	p.cmd = exec.Command(jsmBin, "up", "--data-dir", dataDir, "--listen", fmt.Sprintf("127.0.0.1:%d", httpPort), "--nats-port", fmt.Sprint(natsPort), "--log-level", "warn",
		// The benchmarks and tests call far faster than a person: they
		// measure the platform, not its rate limits.
		"--rate-limit", "0", "--org-rate-limit", "0")
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.stop(tb) })
	waitReady(tb, p.url, p.log, 60*time.Second)
	return p
}

// waitReady polls url's /readyz until it answers 200, at most for max.
func waitReady(tb testing.TB, url string, log *bytes.Buffer, max time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(max)
	for {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s not ready after %v; output:\n%s", url, max, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop sends Ctrl-C and waits for a clean exit.
func (p *platform) stop(tb testing.TB) {
	tb.Helper()
	if p.cmd == nil || p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			tb.Errorf("jsm up exited with %v; output:\n%s", err, p.log)
		}
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		tb.Errorf("jsm up did not stop within 30s after SIGINT; output:\n%s", p.log)
	}
}

// token runs `jsm token` and takes its last line.
func (p *platform) token(tb testing.TB, org, role string) string {
	tb.Helper()
	out, err := exec.Command(p.bin, "token", "--data-dir", p.dataDir, "--org", org, "--user", org+"-user", "--role", role).Output()
	if err != nil {
		tb.Fatalf("jsm token: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// post calls a procedure with the Connect protocol's JSON, as curl would,
// and decodes the JSON answer into out.
func (p *platform) post(tb testing.TB, token, procedure string, body string, out any) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, p.url+procedure, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("%s: %s: %s", procedure, resp.Status, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		tb.Fatalf("%s: %v: %s", procedure, err, data)
	}
}

func (p *platform) contracts(tb testing.TB, org, role string) contractsv1connect.ContractServiceClient {
	return contractsv1connect.NewContractServiceClient(http.DefaultClient, p.url, connect.WithInterceptors(bearer(p.token(tb, org, role))))
}

func dataDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "jsm-e2e-")
	if err != nil {
		tb.Fatal(err)
	}
	// PostgreSQL runs as its own user when we are root: let it in.
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}
