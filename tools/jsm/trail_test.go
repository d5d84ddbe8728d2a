package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/natsauth"
	"github.com/jsmplatform/jsm/libs/natsx"
	"github.com/jsmplatform/jsm/libs/pglocal"
	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1/contractsv1connect"
	"github.com/jsmplatform/jsm/services/trail"
	"github.com/jsmplatform/jsm/services/trail/ledger"
)

// jsm runs the command line and returns its output.
func jsm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(args, &out, &errb)
	if err != nil {
		t.Logf("jsm %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), err
}

func TestTrailCommandsAgainstJsmUp(t *testing.T) {
	if _, err := pglocal.BinDir(); err != nil {
		t.Fatalf("make test installs PostgreSQL first: %v", err)
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	e, _ := startUp(t, dataDir)
	ctx := t.Context()
	tok, err := mintToken(tokenConfig{DataDir: dataDir, Org: "acme", User: "alice", Roles: []string{"org-admin"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	client := contractsv1connect.NewContractServiceClient(http.DefaultClient, e.HTTP)
	draft := withToken(tok, &contractsv1.DraftContractRequest{CustomerOrgId: "acme", ProviderOrgId: "itsec", Title: "SOC"})
	draft.Header().Set("Jsm-Correlation-Id", "vuln-42")
	res, err := client.DraftContract(ctx, draft)
	if err != nil {
		t.Fatal(err)
	}
	id := res.Msg.GetContractId()
	add := withToken(tok, &contractsv1.AddRequirementRequest{ContractId: id, Requirement: &contractsv1.Requirement{RequirementId: "R1", Text: "t"}})
	add.Header().Set("Jsm-Correlation-Id", "vuln-42")
	added, err := client.AddRequirement(ctx, add)
	if err != nil {
		t.Fatal(err)
	}
	// The trail catches up on its own; wait for it through the API.
	deadline := time.Now().Add(10 * time.Second)
	server := []string{"--server", e.HTTP, "--token", tok}
	var out string
	for {
		out, err = jsm(t, append([]string{"trail", "search", "--contract", id}, server...)...)
		if err == nil && strings.Count(out, "\n") == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"type":"jsm.contracts.v1.ContractDrafted"`) || !strings.Contains(lines[1], `"position":"`+itoa(added.Msg.GetPosition())+`"`) {
		t.Fatalf("trail search:\n%s", out)
	}
	if out, err := jsm(t, append([]string{"trail", "search", "--table", "--type", "jsm.contracts.v1.RequirementAdded"}, server...)...); err != nil || !strings.Contains(out, "POSITION") || !strings.Contains(out, "contracts.v1.RequirementAdded") {
		t.Fatalf("trail search --table: %v\n%s", err, out)
	}
	if out, err := jsm(t, append([]string{"trail", "replay", "--from-position", "2"}, server...)...); err != nil || strings.Count(out, "\n") != 1 {
		t.Fatalf("trail replay: %v\n%s", err, out)
	}
	if out, err := jsm(t, append([]string{"timeline", "--correlation", "vuln-42"}, server...)...); err != nil || !strings.Contains(out, "ContractDrafted") || !strings.Contains(out, "acme/alice") || strings.Index(out, "ContractDrafted") > strings.Index(out, "RequirementAdded") {
		t.Fatalf("timeline: %v\n%s", err, out)
	}

	// Export, verify offline, and catch a tampered copy.
	file := filepath.Join(t.TempDir(), "export.json")
	if _, err := jsm(t, append([]string{"trail", "export", "--contract", id, "--out", file}, server...)...); err != nil {
		t.Fatal(err)
	}
	key := verifierKey(t, dataDir)
	if out, err := jsm(t, "trail", "verify", "--key", key, file); err != nil || !strings.HasPrefix(out, "OK: 2 entries") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "tampered.json")
	if err := os.WriteFile(bad, bytes.Replace(data, []byte(`"actor": "alice"`), []byte(`"actor": "mallory"`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := jsm(t, "trail", "verify", "--key", key, bad); err == nil || !strings.Contains(err.Error(), "entry 0 (position 1), field actor") {
		t.Fatalf("verify of a tampered export: %v", err)
	}
	// The rendered body investigators read is checked too (issue 15,
	// finding 8): a changed title fails, naming the entry and the field.
	if !bytes.Contains(data, []byte(`"title": "SOC"`)) {
		t.Fatalf("export without the rendered title:\n%s", data)
	}
	if err := os.WriteFile(bad, bytes.Replace(data, []byte(`"title": "SOC"`), []byte(`"title": "SOC, paid twice"`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := jsm(t, "trail", "verify", "--key", key, bad); err == nil || !strings.Contains(err.Error(), "entry 0 (position 1), field data.title") {
		t.Fatalf("verify of an export with a changed data title: %v", err)
	}
	// The events are signed by the contracts service's key of the data
	// dir, which `jsm up` pins; another key pinned by the investigator fails.
	if !bytes.Contains(data, []byte(`"signer": "contracts+`)) {
		t.Fatalf("export entries without their signer:\n%s", data)
	}
	other := eventKeyOf(t, "contracts")
	if _, err := jsm(t, "trail", "verify", "--key", key, "--signer-keys", other, file); err == nil || !strings.Contains(err.Error(), "field signer") {
		t.Fatalf("verify against another pinned contracts key: %v", err)
	}

	// The witness keeps checkpoints and checks each new one extends them.
	state := filepath.Join(t.TempDir(), "witness.json")
	if out, err := jsm(t, append([]string{"trail", "witness", "--state", state}, server...)...); err != nil || !strings.HasPrefix(out, "consistent: 2 entries") {
		t.Fatalf("witness: %v\n%s", err, out)
	}
	add = withToken(tok, &contractsv1.AddRequirementRequest{ContractId: id, Requirement: &contractsv1.Requirement{RequirementId: "R2", Text: "t"}})
	if _, err := client.AddRequirement(ctx, add); err != nil {
		t.Fatal(err)
	}
	for {
		out, err = jsm(t, append([]string{"trail", "witness", "--state", state}, server...)...)
		if err != nil || !strings.HasPrefix(out, "unchanged") || time.Now().After(deadline.Add(10*time.Second)) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil || !strings.HasPrefix(out, "consistent: 3 entries") {
		t.Fatalf("witness after one more event: %v\n%s", err, out)
	}
	// Rebuilding every read model while the platform serves gives the same
	// trail: the witness still finds it consistent.
	op, err := mintToken(tokenConfig{DataDir: dataDir, Org: "jsm", User: "ops", Roles: []string{operatorRole}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// An event appended straight to NATS, unsigned, is not logged: the
	// operator finds it in the quarantine. Anonymous clients are refused by
	// NATS; this one holds the contracts service's NATS password (leaked)
	// but not its signing key.
	forgedAt := publishForged(t, e, id)
	for {
		out, err = jsm(t, "trail", "quarantine", "--server", e.HTTP, "--token", op)
		if err != nil || strings.Contains(out, "unsigned") || time.Now().After(deadline.Add(20*time.Second)) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || !strings.Contains(out, itoa(forgedAt)+"  ") || !strings.Contains(out, "unsigned") {
		t.Fatalf("trail quarantine: %v\n%s", err, out)
	}
	if _, err := jsm(t, "trail", "quarantine", "--server", e.HTTP, "--token", tok); err == nil || !strings.Contains(err.Error(), "permission_denied") {
		t.Fatalf("trail quarantine as an org admin: %v", err)
	}
	if _, err := jsm(t, "rebuild", "--server", e.HTTP, "--token", tok, "--all"); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("rebuild by an org admin: %v", err)
	}
	if _, err := jsm(t, "rebuild", "--server", e.HTTP, "--token", op, "nope"); err == nil || !strings.Contains(err.Error(), "there are: contracts, incidents, patching, changeadvisory, audits, reporting, trail") {
		t.Fatalf("rebuild of an unknown projection: %v", err)
	}
	out, err = jsm(t, "rebuild", "--server", e.HTTP, "--token", op, "--all", "--progress-every", "10ms")
	if err != nil || !strings.Contains(out, "contracts") || !strings.Contains(out, "trail") || !strings.Contains(out, "100%") {
		t.Fatalf("rebuild --all: %v\n%s", err, out)
	}
	if out, err := jsm(t, append([]string{"trail", "witness", "--state", state}, server...)...); err != nil || !strings.HasPrefix(out, "unchanged: 3 entries") {
		t.Fatalf("witness after a rebuild: %v\n%s", err, out)
	}
	if out, err := jsm(t, append([]string{"trail", "search", "--contract", id}, server...)...); err != nil || strings.Count(out, "\n") != 3 {
		t.Fatalf("search after a rebuild: %v\n%s", err, out)
	}

	// A split view: the witness holds another root for size 3, signed with
	// the trail's own key (as a compromised operator could).
	var st witnessState
	raw, err := os.ReadFile(state)
	if err != nil || json.Unmarshal(raw, &st) != nil {
		t.Fatalf("witness state: %v", err)
	}
	s, err := ledger.NewSigner(signingKey(t, dataDir))
	if err != nil {
		t.Fatal(err)
	}
	forged, err := s.Sign(ledger.Checkpoint{Origin: s.Name(), Size: 3, Root: tlog.RecordHash([]byte("another history"))})
	if err != nil {
		t.Fatal(err)
	}
	st.Checkpoints[len(st.Checkpoints)-1] = forged
	raw, _ = json.Marshal(st)
	if err := os.WriteFile(state, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := jsm(t, append([]string{"trail", "witness", "--state", state}, server...)...); err == nil || !strings.Contains(err.Error(), "INCONSISTENT") || !strings.Contains(err.Error(), "split view") {
		t.Fatalf("witness of a split view: %v", err)
	}
}

func signingKey(t *testing.T, dataDir string) string {
	t.Helper()
	key, err := trail.LoadOrCreateKey(dataDir, trail.Origin)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func verifierKey(t *testing.T, dataDir string) string {
	t.Helper()
	s, err := ledger.NewSigner(signingKey(t, dataDir))
	if err != nil {
		t.Fatal(err)
	}
	return s.VerifierKey()
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// eventKeyOf is a new verifier key of area, made by `jsm event-key`.
func eventKeyOf(t *testing.T, area string) string {
	t.Helper()
	out, err := jsm(t, "event-key", "--area", area)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err != nil || len(lines) != 2 || !strings.HasPrefix(lines[0], "PRIVATE+KEY+"+area+"+") || !strings.HasPrefix(lines[1], area+"+") {
		t.Fatalf("event-key: %v\n%s", err, out)
	}
	return lines[1]
}

// publishForged appends an unsigned RequirementAdded to contract straight
// to NATS, as anyone reaching an open NATS could, and returns its position.
func publishForged(t *testing.T, e endpoints, contract string) uint64 {
	t.Helper()
	if nc, err := nats.Connect(e.NATS); err == nil {
		nc.Close()
		t.Fatal("jsm up's NATS let an anonymous client in")
	}
	secrets, err := natsauth.LoadOrCreate(e.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	creds := natsx.Credentials{User: "contracts", Password: secrets.Passwords["contracts"]}
	nc, err := nats.Connect(e.NATS, creds.Options()...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := event.New(event.Envelope{
		ID: event.NewID(), Source: "/jsm/contracts", AggregateType: "contracts.contract", AggregateID: contract,
		Contract: contract, Parties: event.Parties{Customer: "acme", Provider: "itsec"},
		Actor: event.Actor{Org: "itsec", User: "ceo", Role: "org-admin"}, Time: time.Now().UTC(),
	}, &contractsv1.RequirementAdded{ContractId: contract, Requirement: &contractsv1.Requirement{RequirementId: "FORGED", Text: "t"}})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.PublishMsg(t.Context(), ev.Msg())
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}
