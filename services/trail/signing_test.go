package trail_test

import (
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/eventsig"
	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
	trailv1 "github.com/jsmplatform/jsm/proto/gen/jsm/trail/v1"
	"github.com/jsmplatform/jsm/services/trail"
	"github.com/jsmplatform/jsm/services/trail/projection"
)

func newKey(t *testing.T, area string) (*eventsig.Signer, string) {
	t.Helper()
	skey, vkey, err := eventsig.GenerateKey(area)
	if err != nil {
		t.Fatal(err)
	}
	s, err := eventsig.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s, vkey
}

// TestForgedEventsNeverEnterTheTrail publishes events straight to NATS, as
// anyone reaching an open NATS could: unsigned, signed by a key the trail
// does not pin, signed by another area's pinned key, and signed then
// changed. None enters the trail's tree; each is in the quarantine with its
// reason, the metric rose by one per reason, the events after them are
// logged with their signer, and a rebuild decides the same.
func TestForgedEventsNeverEnterTheTrail(t *testing.T) {
	contractsKey, contractsPub := newKey(t, "contracts")
	incidentsKey, incidentsPub := newKey(t, "incidents")
	strangerKey, _ := newKey(t, "contracts")
	keys, err := eventsig.ParseKeys(contractsPub + " " + incidentsPub)
	if err != nil {
		t.Fatal(err)
	}
	p := startSigned(t, contractsKey, keys)
	contract, steps := interaction(t, p, "acme", "itsec", "", 1)

	before := map[eventsig.Reason]float64{}
	reasons := []eventsig.Reason{eventsig.Unsigned, eventsig.UnknownSigner, eventsig.WrongArea, eventsig.BadSignature}
	for _, r := range reasons {
		before[r] = testutil.ToFloat64(projection.QuarantinedEvents.WithLabelValues(string(r)))
	}
	forge := func(i int) event.Event {
		e, err := event.New(event.Envelope{
			ID: event.NewID(), Source: "/jsm/contracts", AggregateType: "contracts.contract", AggregateID: contract,
			Contract: contract, Parties: event.Parties{Customer: "acme", Provider: "itsec"},
			Actor: event.Actor{Org: "itsec", User: "ceo", Role: "org-admin"}, Time: time.Now().UTC(),
		}, &contractsv1.RequirementAdded{ContractId: contract, Requirement: &contractsv1.Requirement{RequirementId: "FORGED", Text: "pay us twice"}})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	sign := func(s *eventsig.Signer, e event.Event) event.Event {
		if err := s.Sign(&e); err != nil {
			t.Fatal(err)
		}
		return e
	}
	tampered := sign(contractsKey, forge(3))
	tampered.Actor.User = "cfo"
	forged := map[eventsig.Reason]event.Event{
		eventsig.Unsigned:      forge(0),
		eventsig.UnknownSigner: sign(strangerKey, forge(1)),
		eventsig.WrongArea:     sign(incidentsKey, forge(2)),
		eventsig.BadSignature:  tampered,
	}
	positions := map[uint64]eventsig.Reason{}
	for _, r := range reasons {
		ack, err := p.store.JetStream().PublishMsg(ctx, forged[r].Msg())
		if err != nil {
			t.Fatal(err)
		}
		positions[ack.Sequence] = r
	}
	// A genuine event after the forged ones.
	_, later := interactionOn(t, p, contract, 1)
	last := later[len(later)-1]

	auditor := p.trailClient("acme")
	events := search(t, auditor, &trailv1.SearchEventsRequest{ContractId: contract, MinPosition: last})
	if len(events) != len(steps)+1 {
		t.Fatalf("the trail logged %d events of the contract, want the %d genuine ones", len(events), len(steps)+1)
	}
	for _, e := range events {
		if _, bad := positions[e.Position]; bad {
			t.Errorf("forged event at %d is in the trail", e.Position)
		}
		if e.Signer != contractsKey.ID() {
			t.Errorf("event at %d logged with signer %q, want %q", e.Position, e.Signer, contractsKey.ID())
		}
	}
	if events[len(events)-1].Position != last {
		t.Errorf("the event after the forged ones (at %d) is not logged: last is %d", last, events[len(events)-1].Position)
	}

	checkQuarantine := func(when string) {
		t.Helper()
		op := p.trailClient("jsm", trail.OperatorRole)
		res := must[trailv1.ListQuarantineResponse](t)(op.ListQuarantine(ctx, connect.NewRequest(&trailv1.ListQuarantineRequest{})))
		if len(res.Events) != len(positions) {
			t.Fatalf("%s: quarantine holds %d events, want %d: %v", when, len(res.Events), len(positions), res.Events)
		}
		for _, q := range res.Events {
			if want := positions[q.Position]; string(want) != q.Reason || q.Detail == "" || q.Actor != "ceo" && q.Actor != "cfo" {
				t.Errorf("%s: quarantined at %d: reason %q (%s), want %q", when, q.Position, q.Reason, q.Detail, want)
			}
		}
	}
	checkQuarantine("live")
	for _, r := range reasons {
		if got := testutil.ToFloat64(projection.QuarantinedEvents.WithLabelValues(string(r))) - before[r]; got != 1 {
			t.Errorf("jsm_trail_quarantined_events_total{reason=%q} rose by %v, want 1", r, got)
		}
	}
	// An org's auditor may not list other orgs' refused events.
	_, err = auditor.ListQuarantine(ctx, connect.NewRequest(&trailv1.ListQuarantineRequest{}))
	code(t, connect.CodePermissionDenied, err)

	// A rebuild decides the same: the same tree, the same quarantine.
	cp := must[trailv1.GetCheckpointResponse](t)(auditor.GetCheckpoint(ctx, connect.NewRequest(&trailv1.GetCheckpointRequest{MinPosition: last})))
	if err := p.trail.Projector().Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for p.trail.Projector().Position() < last && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	root, err := tlog.TreeHash(int64(cp.Size), projection.HashReader(ctx, p.pool))
	if err != nil || string(root[:]) != string(cp.RootHash) {
		t.Fatalf("root after rebuild %s (%v), before %x", root, err, cp.RootHash)
	}
	if f, err := p.trail.App().Audit(ctx); err != nil || f != nil {
		t.Fatalf("audit after rebuild: %v, %v", f, err)
	}
	checkQuarantine("after a rebuild")
}

// interactionOn adds n requirements to contract as its customer.
func interactionOn(t *testing.T, p *platform, contract string, n int) (string, []uint64) {
	t.Helper()
	c := p.contracts("acme", "")
	var out []uint64
	for i := range n {
		r := must[contractsv1.AddRequirementResponse](t)(c.AddRequirement(ctx, connect.NewRequest(&contractsv1.AddRequirementRequest{
			ContractId: contract, Requirement: &contractsv1.Requirement{RequirementId: "LATER-" + string(rune('A'+i)), Text: "requirement"},
		})))
		out = append(out, r.Position)
	}
	return contract, out
}
