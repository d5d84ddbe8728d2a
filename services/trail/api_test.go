package trail_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/validate"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/jsmplatform/jsm/libs/auth"
	"github.com/jsmplatform/jsm/libs/eventsig"
	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/rpc"
	"github.com/jsmplatform/jsm/libs/testkit"
	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1/contractsv1connect"
	trailv1 "github.com/jsmplatform/jsm/proto/gen/jsm/trail/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/trail/v1/trailv1connect"
	"github.com/jsmplatform/jsm/services/contracts"
	"github.com/jsmplatform/jsm/services/trail"
	"github.com/jsmplatform/jsm/services/trail/ledger"
	"github.com/jsmplatform/jsm/services/trail/projection"
)

func TestMain(m *testing.M) { testkit.Main(m) }

var ctx = context.Background()

type platform struct {
	t     *testing.T
	url   string
	key   ed25519.PrivateKey
	store *eventstore.Store
	pool  *pgxpool.Pool
	trail *trail.Service
	skey  string
	area  *contracts.Service // the contracts service
}

// start runs the contracts and trail services, and those of more, on a
// real NATS and PostgreSQL behind the production interceptors.
func start(t *testing.T, more ...func(*platform) rpc.Service) *platform {
	t.Helper()
	return startSigned(t, nil, nil, more...)
}

// startSigned is start with the contracts service signing its events with
// signer and the trail pinning keys (nil: none).
func startSigned(t *testing.T, signer *eventsig.Signer, keys *eventsig.Keys, more ...func(*platform) rpc.Service) *platform {
	t.Helper()
	n := testkit.StartNATS(t)
	p := &platform{t: t, store: n.Store(), pool: testkit.PostgresPool(t)}
	var err error
	if p.skey, _, err = ledger.GenerateKey(trail.Origin); err != nil {
		t.Fatal(err)
	}
	store := p.store
	if signer != nil {
		store = store.WithSigner(signer)
	}
	c, err := contracts.New(ctx, contracts.Deps{Store: store, Pool: p.pool, ReadWait: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	p.area = c
	p.trail, err = trail.New(trail.Deps{Store: p.store, Pool: p.pool, SigningKey: p.skey, ReadWait: 2 * time.Second, CheckpointEvery: 4, CheckpointInterval: 50 * time.Millisecond, SignerKeys: keys})
	if err != nil {
		t.Fatal(err)
	}
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	p.key = key
	v, err := auth.NewVerifier(auth.VerifierConfig{Issuer: auth.DevIssuer, Audience: auth.DevAudience, Keys: []crypto.PublicKey{pub}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	runCtx, cancel := context.WithCancel(ctx)
	svcs := []rpc.Service{c, p.trail}
	for _, m := range more {
		svcs = append(svcs, m(p))
	}
	policy := contracts.Policy()
	for _, s := range svcs[1:] {
		policy = policy.Merge(s.Policy())
	}
	opts := connect.WithInterceptors(auth.NewInterceptor(v, policy), validate.NewInterceptor())
	done := make(chan struct{}, len(svcs))
	for _, s := range svcs {
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		go func() { _ = s.Run(runCtx); done <- struct{}{} }()
		for _, h := range s.Handlers(opts) {
			mux.Handle(h.Path, h.Handler)
		}
	}
	t.Cleanup(func() {
		cancel()
		for range svcs {
			<-done
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	p.url = srv.URL
	return p
}

func (p *platform) token(org string, roles ...string) string {
	tok, err := auth.Mint(p.key, auth.DevIssuer, auth.DevAudience, auth.Principal{Org: org, User: org + "-user", Roles: roles}, time.Hour)
	if err != nil {
		p.t.Fatal(err)
	}
	return tok
}

// contracts is a contracts client of org; correlation, when set, is sent
// as the interaction's correlation id.
func (p *platform) contracts(org, correlation string) contractsv1connect.ContractServiceClient {
	return contractsv1connect.NewContractServiceClient(http.DefaultClient, p.url, connect.WithInterceptors(&headers{token: p.token(org, "org-admin"), correlation: correlation}))
}

func (p *platform) trailClient(org string, roles ...string) trailv1connect.TrailServiceClient {
	if len(roles) == 0 {
		roles = []string{"auditor"}
	}
	return trailv1connect.NewTrailServiceClient(http.DefaultClient, p.url, connect.WithInterceptors(&headers{token: p.token(org, roles...)}))
}

// headers sets the token and correlation id on unary and streaming calls.
type headers struct{ token, correlation string }

func (h *headers) set(hd http.Header) {
	if h.token != "" {
		hd.Set("Authorization", "Bearer "+h.token)
	}
	if h.correlation != "" {
		hd.Set("Jsm-Correlation-Id", h.correlation)
	}
}

func (h *headers) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		h.set(req.Header())
		return next(ctx, req)
	}
}

func (h *headers) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		h.set(conn.RequestHeader())
		return conn
	}
}

func (h *headers) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

func must[T any](t *testing.T) func(*connect.Response[T], error) *T {
	return func(r *connect.Response[T], err error) *T {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return r.Msg
	}
}

func code(t *testing.T, want connect.Code, err error) {
	t.Helper()
	if connect.CodeOf(err) != want {
		t.Fatalf("got %v (code %v), want %v", err, connect.CodeOf(err), want)
	}
}

// interaction drafts a contract between customer and provider and adds
// n requirements; it returns the contract id and each command's position
// with the contract as GetContract showed it right after.
type step struct {
	pos  uint64
	view *contractsv1.Contract
}

func interaction(t *testing.T, p *platform, customer, provider, correlation string, n int) (string, []step) {
	t.Helper()
	c := p.contracts(customer, correlation)
	d := must[contractsv1.DraftContractResponse](t)(c.DraftContract(ctx, connect.NewRequest(&contractsv1.DraftContractRequest{
		CustomerOrgId: customer, ProviderOrgId: provider, Title: "Managed SOC " + customer,
	})))
	view := func(pos uint64) step {
		v := must[contractsv1.GetContractResponse](t)(c.GetContract(ctx, connect.NewRequest(&contractsv1.GetContractRequest{ContractId: d.ContractId, MinPosition: pos})))
		return step{pos: pos, view: v.Contract}
	}
	steps := []step{view(d.Position)}
	for i := range n {
		r := must[contractsv1.AddRequirementResponse](t)(c.AddRequirement(ctx, connect.NewRequest(&contractsv1.AddRequirementRequest{
			ContractId: d.ContractId, Requirement: &contractsv1.Requirement{RequirementId: fmt.Sprintf("REQ-%d", i), Text: "requirement"},
		})))
		steps = append(steps, view(r.Position))
		time.Sleep(2 * time.Millisecond) // distinct event times for the time windows
	}
	return d.ContractId, steps
}

func search(t *testing.T, c trailv1connect.TrailServiceClient, req *trailv1.SearchEventsRequest) []*trailv1.Event {
	t.Helper()
	var out []*trailv1.Event
	for {
		r := must[trailv1.SearchEventsResponse](t)(c.SearchEvents(ctx, connect.NewRequest(req)))
		out = append(out, r.Events...)
		if r.NextPageToken == "" {
			return out
		}
		req = proto.CloneOf(req)
		req.PageToken = r.NextPageToken
	}
}

func TestSearchShowsEventsOfOwnContractsOnly(t *testing.T) {
	p := start(t)
	acmeContract, steps := interaction(t, p, "acme", "itsec", "corr-1", 5)
	globexContract, gsteps := interaction(t, p, "globex", "itsec", "corr-2", 2)
	last := max(steps[len(steps)-1].pos, gsteps[len(gsteps)-1].pos)

	acme := p.trailClient("acme")
	got := search(t, acme, &trailv1.SearchEventsRequest{ContractId: acmeContract, PageSize: 2, MinPosition: last})
	if len(got) != 6 {
		t.Fatalf("acme sees %d events of its contract, want 6", len(got))
	}
	for i, e := range got {
		if e.ContractId != acmeContract || e.ActorOrgId != "acme" || e.CustomerOrgId != "acme" || e.CorrelationId != "corr-1" || e.Time == nil {
			t.Fatalf("event %d = %v", i, e)
		}
		if i > 0 && e.Position <= got[i-1].Position {
			t.Fatalf("events out of stream order: %d after %d", e.Position, got[i-1].Position)
		}
	}
	if got[0].Type != "jsm.contracts.v1.ContractDrafted" || got[0].Data.GetFields()["title"].GetStringValue() != "Managed SOC acme" {
		t.Fatalf("first event = %v", got[0])
	}
	// Another org sees none of the contract's events, whatever it asks.
	globex := p.trailClient("globex", "org-admin")
	for _, req := range []*trailv1.SearchEventsRequest{
		{ContractId: acmeContract}, {OrgId: "acme"}, {CorrelationId: "corr-1"}, {ActorOrgId: "acme"}, {AggregateId: acmeContract},
	} {
		if got := search(t, globex, req); len(got) != 0 {
			t.Fatalf("globex sees %d events of acme's contract with %v", len(got), req)
		}
	}
	if all := search(t, globex, &trailv1.SearchEventsRequest{}); len(all) != 3 || all[0].ContractId != globexContract {
		t.Fatalf("globex sees %d events in all", len(all))
	}
	// Nor in a replay, from the start or from a position of acme's.
	for _, req := range []*trailv1.ReplayEventsRequest{{ContractId: acmeContract}, {}, {FromPosition: steps[0].pos}, {CorrelationId: "corr-1"}} {
		stream, err := globex.ReplayEvents(ctx, connect.NewRequest(req))
		if err != nil {
			t.Fatal(err)
		}
		for stream.Receive() {
			for _, e := range stream.Msg().Events {
				if e.ContractId != globexContract {
					t.Fatalf("globex replays acme's event %d with %v", e.Position, req)
				}
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
	}
	// The provider of both sees both.
	if got := search(t, p.trailClient("itsec"), &trailv1.SearchEventsRequest{}); len(got) != 9 {
		t.Fatalf("itsec sees %d events, want 9", len(got))
	}
	if got := search(t, p.trailClient("itsec"), &trailv1.SearchEventsRequest{Type: "jsm.contracts.v1.ContractDrafted", OrgId: "globex"}); len(got) != 1 || got[0].ContractId != globexContract {
		t.Fatalf("itsec's drafts with globex = %v", got)
	}
	// Proofs of another org's entries are not found either.
	_, err := globex.GetInclusionProof(ctx, connect.NewRequest(&trailv1.GetInclusionProofRequest{Position: got[0].Position}))
	code(t, connect.CodeNotFound, err)
	_, err = globex.GetAggregateAt(ctx, connect.NewRequest(&trailv1.GetAggregateAtRequest{AggregateType: "contracts.contract", AggregateId: acmeContract}))
	code(t, connect.CodeNotFound, err)
	x := must[trailv1.ExportInvestigationResponse](t)(globex.ExportInvestigation(ctx, connect.NewRequest(&trailv1.ExportInvestigationRequest{ContractId: acmeContract})))
	if x.Events != 0 {
		t.Fatalf("globex exported %d of acme's events", x.Events)
	}
}

func TestReplayOfATimeWindow(t *testing.T) {
	p := start(t)
	id, steps := interaction(t, p, "acme", "itsec", "", 8)
	c := p.trailClient("acme")
	all := search(t, c, &trailv1.SearchEventsRequest{ContractId: id, MinPosition: steps[len(steps)-1].pos})
	from, to := all[2].Time, all[6].Time // [from, to): events 2..5
	stream, err := c.ReplayEvents(ctx, connect.NewRequest(&trailv1.ReplayEventsRequest{ContractId: id, FromTime: from, ToTime: to}))
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for stream.Receive() {
		for _, e := range stream.Msg().Events {
			got = append(got, e.Position)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	want := []uint64{all[2].Position, all[3].Position, all[4].Position, all[5].Position}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("replay of [%v, %v) = %v, want %v", from.AsTime(), to.AsTime(), got, want)
	}
	// From a position: that event and every later one.
	stream, err = c.ReplayEvents(ctx, connect.NewRequest(&trailv1.ReplayEventsRequest{FromPosition: all[7].Position}))
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for stream.Receive() {
		for _, e := range stream.Msg().Events {
			got = append(got, e.Position)
		}
	}
	if want := []uint64{all[7].Position, all[8].Position}; fmt.Sprint(got) != fmt.Sprint(want) || stream.Err() != nil {
		t.Fatalf("replay from %d = %v (%v), want %v", all[7].Position, got, stream.Err(), want)
	}
}

func TestGetAggregateAtMatchesLiveState(t *testing.T) {
	p := start(t)
	id, steps := interaction(t, p, "acme", "itsec", "", 4)
	c := p.trailClient("itsec", "security-officer")
	events := search(t, c, &trailv1.SearchEventsRequest{AggregateId: id, MinPosition: steps[len(steps)-1].pos})
	for i, s := range steps {
		for _, req := range []*trailv1.GetAggregateAtRequest{
			{AggregateType: "contracts.contract", AggregateId: id, Position: s.pos},
			{AggregateType: "contracts.contract", AggregateId: id, Time: events[i].Time},
		} {
			r := must[trailv1.GetAggregateAtResponse](t)(c.GetAggregateAt(ctx, connect.NewRequest(req)))
			data, err := protojson.Marshal(r.State)
			if err != nil {
				t.Fatal(err)
			}
			got := &contractsv1.Contract{}
			if err := protojson.Unmarshal(data, got); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, s.view) || r.Position != s.pos || r.Events != uint64(i+1) {
				t.Fatalf("state at %v = %v (position %d, %d events),\nlive it was %v", req, got, r.Position, r.Events, s.view)
			}
		}
	}
	_, err := c.GetAggregateAt(ctx, connect.NewRequest(&trailv1.GetAggregateAtRequest{AggregateType: "nope.nothing", AggregateId: id}))
	code(t, connect.CodeInvalidArgument, err)
	_, err = c.GetAggregateAt(ctx, connect.NewRequest(&trailv1.GetAggregateAtRequest{AggregateType: "contracts.contract", AggregateId: id, Time: timestamppb.New(events[0].Time.AsTime().Add(-time.Second))}))
	code(t, connect.CodeNotFound, err)
}

func TestCheckpointsAndProofs(t *testing.T) {
	p := start(t)
	_, steps := interaction(t, p, "acme", "itsec", "", 3)
	c := p.trailClient("acme")
	first := must[trailv1.GetCheckpointResponse](t)(c.GetCheckpoint(ctx, connect.NewRequest(&trailv1.GetCheckpointRequest{MinPosition: steps[len(steps)-1].pos})))
	cp1, err := ledger.OpenCheckpoint(first.Checkpoint, first.VerifierKey)
	if err != nil {
		t.Fatal(err)
	}
	if cp1.Size != 4 || first.Size != 4 || first.Origin != trail.Origin || !strings.HasPrefix(first.Checkpoint, "jsm-trail\n4\n") {
		t.Fatalf("checkpoint = %v", first)
	}
	_, more := interaction(t, p, "acme", "itsec", "", 2)
	second := must[trailv1.GetCheckpointResponse](t)(c.GetCheckpoint(ctx, connect.NewRequest(&trailv1.GetCheckpointRequest{MinPosition: more[len(more)-1].pos})))
	cp2, err := ledger.OpenCheckpoint(second.Checkpoint, first.VerifierKey)
	if err != nil || cp2.Size != 7 {
		t.Fatalf("second checkpoint %v: %v", second, err)
	}
	cons := must[trailv1.GetConsistencyProofResponse](t)(c.GetConsistencyProof(ctx, connect.NewRequest(&trailv1.GetConsistencyProofRequest{FirstSize: 4})))
	if err := ledger.CheckConsistency(cp1, cp2, hashes(t, cons.Proof)); err != nil || cons.SecondSize != 7 || cons.Checkpoint != second.Checkpoint {
		t.Fatalf("consistency %v: %v", cons, err)
	}
	for _, s := range append(steps, more...) {
		for _, size := range []uint64{0, 7} {
			in := must[trailv1.GetInclusionProofResponse](t)(c.GetInclusionProof(ctx, connect.NewRequest(&trailv1.GetInclusionProofRequest{Position: s.pos, TreeSize: size})))
			leaf := tlog.RecordHash(in.CanonicalEntry)
			if string(leaf[:]) != string(in.LeafHash) || in.Event.Position != s.pos {
				t.Fatalf("leaf hash of %d does not match its canonical entry", s.pos)
			}
			if err := tlog.CheckRecord(hashes(t, in.Proof), cp2.Size, cp2.Root, int64(in.LeafIndex), leaf); err != nil {
				t.Fatalf("inclusion of position %d: %v", s.pos, err)
			}
		}
	}
	// Bad input gets a clear error.
	_, err = c.GetInclusionProof(ctx, connect.NewRequest(&trailv1.GetInclusionProofRequest{Position: steps[3].pos, TreeSize: 2}))
	code(t, connect.CodeInvalidArgument, err)
	_, err = c.GetInclusionProof(ctx, connect.NewRequest(&trailv1.GetInclusionProofRequest{}))
	code(t, connect.CodeInvalidArgument, err)
	_, err = c.GetInclusionProof(ctx, connect.NewRequest(&trailv1.GetInclusionProofRequest{Position: steps[0].pos, TreeSize: 1000}))
	code(t, connect.CodeUnavailable, err)
	_, err = c.GetConsistencyProof(ctx, connect.NewRequest(&trailv1.GetConsistencyProofRequest{FirstSize: 9, SecondSize: 7}))
	code(t, connect.CodeInvalidArgument, err)
	_, err = c.SearchEvents(ctx, connect.NewRequest(&trailv1.SearchEventsRequest{PageToken: "not a token!"}))
	code(t, connect.CodeInvalidArgument, err)
	_, err = c.SearchEvents(ctx, connect.NewRequest(&trailv1.SearchEventsRequest{PageSize: 5000}))
	code(t, connect.CodeInvalidArgument, err)
	_, err = p.trailClient("acme", "viewer").SearchEvents(ctx, connect.NewRequest(&trailv1.SearchEventsRequest{}))
	code(t, connect.CodePermissionDenied, err)
	_, err = p.trailClient("acme", "security-officer").ExportInvestigation(ctx, connect.NewRequest(&trailv1.ExportInvestigationRequest{}))
	code(t, connect.CodePermissionDenied, err)
	_, err = trailv1connect.NewTrailServiceClient(http.DefaultClient, p.url).GetCheckpoint(ctx, connect.NewRequest(&trailv1.GetCheckpointRequest{}))
	code(t, connect.CodeUnauthenticated, err)
}

func hashes(t *testing.T, raw [][]byte) []tlog.Hash {
	t.Helper()
	out := make([]tlog.Hash, len(raw))
	for i, h := range raw {
		if len(h) != tlog.HashSize {
			t.Fatalf("hash of %d bytes", len(h))
		}
		out[i] = tlog.Hash(h)
	}
	return out
}

func TestExportVerifiesOffline(t *testing.T) {
	p := start(t)
	id, steps := interaction(t, p, "acme", "itsec", "corr-x", 3)
	interaction(t, p, "acme", "itsec", "", 1)
	c := p.trailClient("acme")
	r := must[trailv1.ExportInvestigationResponse](t)(c.ExportInvestigation(ctx, connect.NewRequest(&trailv1.ExportInvestigationRequest{ContractId: id, MinPosition: steps[len(steps)-1].pos})))
	if r.Events != 4 {
		t.Fatalf("exported %d events, want 4", r.Events)
	}
	x, err := ledger.ParseExport(r.Content)
	if err != nil {
		t.Fatal(err)
	}
	key := must[trailv1.GetCheckpointResponse](t)(c.GetCheckpoint(ctx, connect.NewRequest(&trailv1.GetCheckpointRequest{}))).VerifierKey
	if _, err := ledger.Verify(x, key); err != nil {
		t.Fatal(err)
	}
	if x.Entries[0].CorrelationID != "corr-x" || !strings.Contains(string(x.Entries[0].Data), "Managed SOC") || x.Filter["contract_id"] != id {
		t.Fatalf("export = %s", r.Content)
	}
	// The payload of an entry changed in the file is caught at that entry.
	var doc map[string]any
	if err := json.Unmarshal(r.Content, &doc); err != nil {
		t.Fatal(err)
	}
	x.Entries[2].Payload = append([]byte{}, x.Entries[2].Payload...)
	x.Entries[2].Payload[len(x.Entries[2].Payload)-1] ^= 0x20
	_, err = ledger.Verify(x, key)
	if ve, ok := err.(*ledger.VerifyError); !ok || ve.Entry != 2 {
		t.Fatalf("tampered export: %v", err)
	}
}

// tamper changes the stored log behind the service's back, as someone
// with database access could, past the append-only triggers.
func tamper(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	_, err := pool.Exec(ctx, `ALTER TABLE trail.entries DISABLE TRIGGER entries_append_only;
		ALTER TABLE trail.tree_heads DISABLE TRIGGER tree_heads_append_only`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, sql, args...); err != nil {
		t.Fatal(err)
	}
}

func TestTamperingInTheDatabaseIsDetectedAndLocated(t *testing.T) {
	p := start(t)
	_, steps := interaction(t, p, "acme", "itsec", "", 6)
	c := p.trailClient("acme")
	must[trailv1.GetCheckpointResponse](t)(c.GetCheckpoint(ctx, connect.NewRequest(&trailv1.GetCheckpointRequest{MinPosition: steps[len(steps)-1].pos})))
	if f, err := p.trail.App().Audit(ctx); err != nil || f != nil {
		t.Fatalf("audit of an intact log: %v, %v", f, err)
	}
	// Rows cannot be changed through SQL while the triggers stand.
	if _, err := p.pool.Exec(ctx, `UPDATE trail.entries SET actor = 'mallory' WHERE idx = 1`); err == nil {
		t.Fatal("an entry was updated in place")
	}
	if _, err := p.pool.Exec(ctx, `DELETE FROM trail.entries WHERE idx = 1`); err == nil {
		t.Fatal("an entry was deleted")
	}
	check := func(t *testing.T, leaf int64, reason string) {
		t.Helper()
		f, err := p.trail.App().Audit(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if f == nil || f.Leaf != leaf || !strings.Contains(f.Reason, reason) {
			t.Fatalf("audit found %+v, want leaf %d: %s", f, leaf, reason)
		}
	}
	// Each case is undone in a transaction rolled back after the audit.
	cases := []struct {
		name   string
		sql    string
		leaf   int64
		reason string
	}{
		{"changed byte in a stored entry", `UPDATE trail.entries SET payload = overlay(payload placing '\xff'::bytea from 3 for 1) WHERE idx = 4`, 4, "does not match"},
		{"changed actor", `UPDATE trail.entries SET actor_org_id = 'itsec' WHERE idx = 2`, 2, "does not match"},
		{"deleted entry", `DELETE FROM trail.entries WHERE idx = 3`, 3, "out of place"},
		{"deleted last entry", `DELETE FROM trail.entries WHERE idx = 6`, 6, "missing"},
		{"two entries swapped", `UPDATE trail.entries SET idx = -1 WHERE idx = 1; UPDATE trail.entries SET idx = 1 WHERE idx = 5;
			UPDATE trail.entries SET idx = 5 WHERE idx = -1`, 1, "out of place"},
		{"two payloads swapped", `UPDATE trail.entries e SET payload = o.payload FROM trail.entries o WHERE (e.idx, o.idx) IN ((2, 3), (3, 2))`, 2, "does not match"},
		{"checkpoint signed by another key", ``, -1, "checkpoint of size"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := dump(t, p.pool)
			sql := tc.sql
			if sql == "" {
				other, _, _ := ledger.GenerateKey(trail.Origin)
				s, err := ledger.NewSigner(other)
				if err != nil {
					t.Fatal(err)
				}
				var root []byte
				if err := p.pool.QueryRow(ctx, `SELECT root FROM trail.tree_heads ORDER BY size DESC LIMIT 1`).Scan(&root); err != nil {
					t.Fatal(err)
				}
				note, err := s.Sign(ledger.Checkpoint{Origin: trail.Origin, Size: 7, Root: tlog.Hash(root)})
				if err != nil {
					t.Fatal(err)
				}
				sql = `UPDATE trail.tree_heads SET note = '` + note + `' WHERE size = 7`
			}
			tamper(t, p.pool, `CREATE TABLE IF NOT EXISTS public.saved_entries AS SELECT * FROM trail.entries;
				CREATE TABLE IF NOT EXISTS public.saved_heads AS SELECT * FROM trail.tree_heads`)
			tamper(t, p.pool, sql)
			check(t, tc.leaf, tc.reason)
			tamper(t, p.pool, `TRUNCATE trail.entries, trail.tree_heads; INSERT INTO trail.entries SELECT * FROM public.saved_entries;
				INSERT INTO trail.tree_heads SELECT * FROM public.saved_heads; DROP TABLE public.saved_entries, public.saved_heads`)
			if after := dump(t, p.pool); after != before {
				t.Fatal("could not undo the tampering")
			}
		})
	}
}

// A history rewritten consistently (an entry changed and the stored tree
// recomputed to match, as an operator with the database could) passes every
// leaf check: the signed checkpoints catch it, the audit names the first
// signed size whose root the log no longer gives and the leaves it covers
// beyond the last good one, and the service refuses to sign the new
// history (a split view: two roots for one size).
func TestRewrittenHistoryIsCaughtByTheSignedCheckpoints(t *testing.T) {
	p := start(t)
	c := p.trailClient("acme")
	var signed *trailv1.GetCheckpointResponse
	for range 3 { // at least three signed sizes
		_, steps := interaction(t, p, "acme", "itsec", "", 3)
		signed = must[trailv1.GetCheckpointResponse](t)(c.GetCheckpoint(ctx, connect.NewRequest(&trailv1.GetCheckpointRequest{MinPosition: steps[len(steps)-1].pos})))
	}
	var sizes []int64
	rows, err := p.pool.Query(ctx, `SELECT size FROM trail.tree_heads ORDER BY size`)
	if err != nil {
		t.Fatal(err)
	}
	if sizes, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil || len(sizes) < 2 || sizes[len(sizes)-1] != int64(signed.Size) {
		t.Fatalf("signed sizes %v (%v), want several up to %d", sizes, err, signed.Size)
	}
	// Rewrite the entry of the first leaf after the first signed size (the
	// next signed size may be just one more).
	victim := sizes[0]
	tamper(t, p.pool, `ALTER TABLE trail.hashes DISABLE TRIGGER hashes_append_only`)
	tamper(t, p.pool, `UPDATE trail.entries SET actor = 'mallory' WHERE idx = $1`, victim)
	rows, err = p.pool.Query(ctx, `SELECT `+strings.Join(projection.Columns, ", ")+` FROM trail.entries ORDER BY position`)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (projection.Row, error) { return projection.Scan(r) })
	if err != nil {
		t.Fatal(err)
	}
	tree := ledger.NewAppender(0, ledger.Hashes{}, len(entries))
	for _, e := range entries {
		if _, err := tree.Append(e.Entry().LeafHash()); err != nil {
			t.Fatal(err)
		}
	}
	// Every stored hash recomputed, written over the runs of records the
	// rows of trail.hashes hold (each from its first record's stored index).
	var flat []byte
	for _, h := range tree.Added() {
		flat = append(flat, h[:]...)
	}
	rows, err = p.pool.Query(ctx, `SELECT first_record, length(hashes) FROM trail.hashes ORDER BY first_record`)
	if err != nil {
		t.Fatal(err)
	}
	type run struct{ first, length int64 }
	runs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (run, error) {
		var x run
		return x, r.Scan(&x.first, &x.length)
	})
	if err != nil || len(runs) == 0 {
		t.Fatalf("runs of stored hashes %v: %v", runs, err)
	}
	for _, r := range runs {
		from := tlog.StoredHashIndex(0, r.first) * tlog.HashSize
		if _, err := p.pool.Exec(ctx, `UPDATE trail.hashes SET hashes = $2 WHERE first_record = $1`, r.first, flat[from:from+r.length]); err != nil {
			t.Fatal(err)
		}
	}

	f, err := p.trail.App().Audit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("checkpoint of size %d has root", sizes[1])
	if f == nil || f.Leaf != -1 || !strings.Contains(f.Reason, want) || !strings.Contains(f.Reason, fmt.Sprintf("leaves %d to %d", sizes[0], sizes[1]-1)) {
		t.Fatalf("audit of a rewritten history: %+v, want %q naming leaves %d to %d", f, want, sizes[0], sizes[1]-1)
	}
	// The log goes on, but no checkpoint of the rewritten history is signed.
	_, more := interaction(t, p, "acme", "itsec", "", 1)
	_, err = c.GetCheckpoint(ctx, connect.NewRequest(&trailv1.GetCheckpointRequest{MinPosition: more[len(more)-1].pos}))
	code(t, connect.CodeDataLoss, err)
	latest := must[trailv1.GetCheckpointResponse](t)(c.GetCheckpoint(ctx, connect.NewRequest(&trailv1.GetCheckpointRequest{})))
	if latest.Size != signed.Size || latest.Checkpoint != signed.Checkpoint {
		t.Fatalf("latest checkpoint %d, want still the last honest one, %d", latest.Size, signed.Size)
	}
}

func dump(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var s string
	if err := pool.QueryRow(ctx, `SELECT string_agg(e::text, '|' ORDER BY idx) FROM trail.entries e`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRootIsTheSameAfterARebuild(t *testing.T) {
	p := start(t)
	_, steps := interaction(t, p, "acme", "itsec", "", 5)
	interaction(t, p, "globex", "itsec", "", 3)
	c := p.trailClient("itsec")
	last := steps[len(steps)-1].pos
	before := must[trailv1.GetCheckpointResponse](t)(c.GetCheckpoint(ctx, connect.NewRequest(&trailv1.GetCheckpointRequest{MinPosition: last + 4})))
	if err := p.trail.Projector().Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for p.trail.Projector().Position() < last+4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	root, err := tlog.TreeHash(int64(before.Size), projection.HashReader(ctx, p.pool))
	if err != nil {
		t.Fatal(err)
	}
	if string(root[:]) != string(before.RootHash) {
		t.Fatalf("root after rebuild %s, before %x", root, before.RootHash)
	}
	if f, err := p.trail.App().Audit(ctx); err != nil || f != nil {
		t.Fatalf("audit after rebuild: %v, %v", f, err)
	}
	// The rebuild dropped the search indexes; they are built again once
	// the log has caught up.
	for missing := true; missing; time.Sleep(20 * time.Millisecond) {
		if missing, err = projection.MissingIndexes(ctx, p.pool); err != nil || missing && time.Now().After(deadline.Add(10*time.Second)) {
			t.Fatalf("search indexes not rebuilt: %v", err)
		}
	}
	// The log goes on from there, consistent with what was signed before.
	_, more := interaction(t, p, "acme", "itsec", "", 1)
	after := must[trailv1.GetCheckpointResponse](t)(c.GetCheckpoint(ctx, connect.NewRequest(&trailv1.GetCheckpointRequest{MinPosition: more[len(more)-1].pos})))
	cons := must[trailv1.GetConsistencyProofResponse](t)(c.GetConsistencyProof(ctx, connect.NewRequest(&trailv1.GetConsistencyProofRequest{FirstSize: before.Size, SecondSize: after.Size})))
	old, _ := ledger.OpenCheckpoint(before.Checkpoint, before.VerifierKey)
	cur, _ := ledger.OpenCheckpoint(after.Checkpoint, before.VerifierKey)
	if err := ledger.CheckConsistency(old, cur, hashes(t, cons.Proof)); err != nil || cur.Size != old.Size+2 {
		t.Fatalf("after rebuild: %v (sizes %d, %d)", err, old.Size, cur.Size)
	}
}

func TestTwoInstancesBuildOneLog(t *testing.T) {
	p := start(t)
	// A second instance on the same stream and database: the projectors
	// take turns on the checkpoint, and each finds the tree moved by the
	// other under what it prepared.
	second, err := trail.New(trail.Deps{Store: p.store, Pool: p.pool, SigningKey: p.skey, BatchSize: 3, CatchUpBatchSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = second.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })

	var last uint64
	for i := range 4 {
		_, steps := interaction(t, p, "acme", "itsec", "", 3+i)
		last = steps[len(steps)-1].pos
	}
	for _, s := range []*trail.Service{p.trail, second} {
		if err := s.Projector().WaitFor(ctx, last, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if f, err := p.trail.App().Audit(ctx); err != nil || f != nil {
		t.Fatalf("audit: %v, %v", f, err)
	}
	var size int64
	if err := p.pool.QueryRow(ctx, `SELECT size FROM trail.tree`).Scan(&size); err != nil || uint64(size) != last {
		t.Fatalf("tree of %d entries after %d events: %v", size, last, err)
	}
}
