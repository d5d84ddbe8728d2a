package main

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpcreflect"
	"github.com/nats-io/nats.go"

	"github.com/jsmplatform/jsm/libs/auth"
	"github.com/jsmplatform/jsm/libs/natsauth"
	"github.com/jsmplatform/jsm/libs/natsx"
	"github.com/jsmplatform/jsm/libs/pglocal"
	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1/contractsv1connect"
)

// startUp runs runUp in the background until the test (or stop) ends it,
// and returns its endpoints once it is ready.
func startUp(t *testing.T, dataDir string) (e endpoints, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	readyc := make(chan endpoints, 1)
	errc := make(chan error, 1)
	cfg := upConfig{
		DataDir:  dataDir,
		Listen:   "127.0.0.1:0",
		NATSPort: -1,
		Logger:   slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	go func() { errc <- runUp(ctx, cfg, func(e endpoints) { readyc <- e }) }()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-errc:
			return err
		case <-time.After(90 * time.Second):
			return errors.New("runUp did not return 90s after cancel")
		}
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	select {
	case e = <-readyc:
	case err := <-errc:
		stopped = true
		cancel()
		t.Fatalf("runUp: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("runUp not ready after 2 minutes")
	}
	return e, stop
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func withToken[T any](tok string, msg *T) *connect.Request[T] {
	req := connect.NewRequest(msg)
	if tok != "" {
		req.Header().Set("Authorization", "Bearer "+tok)
	}
	return req
}

func TestUpServesContractsAndKeepsThemAcrossRestarts(t *testing.T) {
	if _, err := pglocal.BinDir(); err != nil {
		t.Fatalf("make test installs PostgreSQL first: %v", err)
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	e, stop := startUp(t, dataDir)
	ctx := t.Context()

	if code, body := httpGet(t, e.HTTP+"/healthz"); code != http.StatusOK || body != "ok" {
		t.Fatalf("/healthz = %d %q", code, body)
	}
	if code, _ := httpGet(t, e.HTTP+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d after ready", code)
	}
	if !strings.HasPrefix(e.NATS, "nats://127.0.0.1:") || !strings.Contains(e.Postgres, "/jsm?") {
		t.Fatalf("endpoints %+v", e)
	}
	checkNATSUsers(t, e)

	tok, err := mintToken(tokenConfig{DataDir: dataDir, Org: "acme", User: "alice", Roles: []string{"org-admin"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	client := contractsv1connect.NewContractServiceClient(http.DefaultClient, e.HTTP)
	draft := &contractsv1.DraftContractRequest{CustomerOrgId: "acme", ProviderOrgId: "itsec", Title: "x"}

	// Authentication comes before validation: an anonymous caller learns
	// nothing about its request.
	if _, err := client.DraftContract(ctx, withToken("", &contractsv1.DraftContractRequest{})); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("anonymous invalid draft: %v, want unauthenticated", err)
	}
	if _, err := client.DraftContract(ctx, withToken(tok, &contractsv1.DraftContractRequest{})); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("invalid draft: %v, want invalid_argument", err)
	}

	res, err := client.DraftContract(ctx, withToken(tok, draft))
	if err != nil {
		t.Fatalf("DraftContract: %v", err)
	}
	id, pos := res.Msg.GetContractId(), res.Msg.GetPosition()
	if id == "" || pos == 0 {
		t.Fatalf("DraftContract = %v", res.Msg)
	}
	got, err := client.GetContract(ctx, withToken(tok, &contractsv1.GetContractRequest{ContractId: id, MinPosition: pos}))
	if err != nil {
		t.Fatalf("GetContract: %v", err)
	}
	if c := got.Msg.GetContract(); c.GetContractId() != id || c.GetCustomerOrgId() != "acme" || c.GetProviderOrgId() != "itsec" || c.GetTitle() != "x" {
		t.Fatalf("GetContract = %v", c)
	}

	// gRPC reflection over unencrypted HTTP/2.
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Transport: &http.Transport{Protocols: &protocols}}
	stream := grpcreflect.NewClient(h2c, e.HTTP, connect.WithGRPC()).NewStream(ctx)
	names, err := stream.ListServices()
	if err != nil {
		t.Fatalf("reflection: %v", err)
	}
	_, _ = stream.Close()
	if !slices.Contains(names, contractsv1connect.ContractServiceName) {
		t.Fatalf("reflection lists %v, want %s", names, contractsv1connect.ContractServiceName)
	}
	// Connect also over HTTP/2 without TLS.
	h2client := contractsv1connect.NewContractServiceClient(h2c, e.HTTP, connect.WithGRPC())
	if _, err := h2client.GetContract(ctx, withToken(tok, &contractsv1.GetContractRequest{ContractId: id})); err != nil {
		t.Fatalf("GetContract over gRPC/h2c: %v", err)
	}

	if err := stop(); err != nil {
		t.Fatalf("clean stop: %v", err)
	}
	if _, err := http.Get(e.HTTP + "/healthz"); err == nil {
		t.Fatal("still serving after stop")
	}

	// A second start finds everything again.
	e2, _ := startUp(t, dataDir)
	client = contractsv1connect.NewContractServiceClient(http.DefaultClient, e2.HTTP)
	got, err = client.GetContract(ctx, withToken(tok, &contractsv1.GetContractRequest{ContractId: id, MinPosition: pos}))
	if err != nil {
		t.Fatalf("GetContract after restart: %v", err)
	}
	if got.Msg.GetContract().GetTitle() != "x" {
		t.Fatalf("GetContract after restart = %v", got.Msg.GetContract())
	}
	// The contract is not visible to another org.
	other, err := mintToken(tokenConfig{DataDir: dataDir, Org: "mallory", User: "eve", Roles: []string{"org-admin"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.GetContract(ctx, withToken(other, &contractsv1.GetContractRequest{ContractId: id})); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("GetContract by another org: %v, want not_found", err)
	}
}

func TestUpRefusesASecondInstanceOnTheSameDataDir(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	err = runUp(t.Context(), upConfig{DataDir: dir, Listen: "127.0.0.1:0", NATSPort: -1}, nil)
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("runUp on a locked data dir: %v", err)
	}
}

func TestTokenCommandPrintsTokenLast(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fresh") // jsm token before the first jsm up
	var stdout, stderr bytes.Buffer
	err := run([]string{"token", "--data-dir", dir, "--org", "acme", "--user", "alice", "--role", "org-admin", "--role", "auditor,viewer", "--ttl", "1h"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("jsm token: %v (%s)", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	tok := lines[len(lines)-1]
	if strings.Count(tok, ".") != 2 {
		t.Fatalf("last line %q is not a JWT", tok)
	}
	key, err := auth.LoadOrCreateDevKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.VerifierConfig{Issuer: auth.DevIssuer, Audience: auth.DevAudience, Keys: []crypto.PublicKey{key.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Verify(tok)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if p.Org != "acme" || p.User != "alice" || !slices.Equal(p.Roles, []string{"org-admin", "auditor", "viewer"}) {
		t.Fatalf("principal %+v", p)
	}
	if !strings.Contains(stderr.String(), "org-admin,auditor,viewer") {
		t.Fatalf("stderr %q does not name the roles", stderr.String())
	}

	for _, args := range [][]string{
		{"token", "--data-dir", dir, "--user", "alice", "--role", "org-admin"},
		{"token", "--data-dir", dir, "--org", "acme", "--role", "org-admin"},
		{"token", "--data-dir", dir, "--org", "acme", "--user", "alice"},
	} {
		if err := run(args, io.Discard, io.Discard); err == nil {
			t.Errorf("jsm %v: no error", args)
		}
	}
}

func TestUnknownCommand(t *testing.T) {
	if err := run([]string{"frobnicate"}, io.Discard, io.Discard); err == nil {
		t.Fatal("no error for an unknown command")
	}
}

// checkNATSUsers: the NATS of `jsm up` refuses a client without a user,
// keeps the users' passwords readable by the owner only, and lets a
// service's user in with its password.
func checkNATSUsers(t *testing.T, e endpoints) {
	t.Helper()
	if nc, err := nats.Connect(e.NATS, nats.Timeout(5*time.Second)); err == nil {
		nc.Close()
		t.Fatal("an anonymous client connected to the NATS of jsm up")
	}
	path := filepath.Join(e.DataDir, "nats-auth.json")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Fatalf("%s has mode %v, want 0600", path, perm)
	}
	secrets, err := natsauth.LoadOrCreate(e.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	creds := natsx.Credentials{User: "contracts", Password: secrets.Passwords["contracts"]}
	nc, err := natsx.Connect(e.NATS, "test", nil, creds.Options()...)
	if err != nil {
		t.Fatalf("contracts' user: %v", err)
	}
	nc.Close()
}
