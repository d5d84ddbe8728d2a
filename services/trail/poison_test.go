package trail_test

import (
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go"

	"github.com/jsmplatform/jsm/libs/event"
	libprojection "github.com/jsmplatform/jsm/libs/projection"
	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
	trailv1 "github.com/jsmplatform/jsm/proto/gen/jsm/trail/v1"
)

var sixKB = strings.Repeat("c", 6<<10)

// A 6 kB correlation id, sent by an authenticated caller through the
// correlation header of DraftContract, is refused invalid_argument and
// nothing is appended (issue 15, finding 2).
func TestOversizedCorrelationHeaderIsRefused(t *testing.T) {
	p := start(t)
	before, err := p.store.LastPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, corr := range []string{sixKB, "with space", "ünïcode"} {
		_, err = p.contracts("acme", corr).DraftContract(ctx, connect.NewRequest(&contractsv1.DraftContractRequest{
			CustomerOrgId: "acme", ProviderOrgId: "itsec", Title: "Managed SOC",
		}))
		code(t, connect.CodeInvalidArgument, err)
		if !strings.Contains(err.Error(), "Jsm-Correlation-Id") {
			t.Fatalf("the error does not name the header: %v", err)
		}
	}
	if after, _ := p.store.LastPosition(ctx); after != before {
		t.Fatalf("the stream moved from %d to %d", before, after)
	}
	// A correlation id in bounds still works.
	_, steps := interaction(t, p, "acme", "itsec", "vuln-42", 0)
	if steps[0].pos == 0 {
		t.Fatal("no position")
	}
}

// hostile are messages anyone on the bus could publish straight to the
// stream, bypassing the API: each breaks a header's bounds or its body.
func hostile(t *testing.T) map[string]*nats.Msg {
	t.Helper()
	drafted := func(edit func(*event.Event)) *nats.Msg {
		id := event.NewID()
		e, err := event.New(event.Envelope{
			ID: event.NewID(), Source: "/jsm/contracts", AggregateType: "contracts.contract", AggregateID: id, Contract: id,
			Parties: event.Parties{Customer: "acme", Provider: "itsec"}, Actor: event.Actor{Org: "acme", User: "mallory", Role: "org-admin"},
			Time: time.Now(),
		}, &contractsv1.ContractDrafted{ContractId: id, CustomerOrgId: "acme", ProviderOrgId: "itsec", Title: "poison"})
		if err != nil {
			t.Fatal(err)
		}
		edit(&e)
		return e.Msg()
	}
	header := func(k, v string) *nats.Msg {
		m := drafted(func(*event.Event) {})
		m.Header[k] = []string{v}
		return m
	}
	return map[string]*nats.Msg{
		"6 kB correlation":   drafted(func(e *event.Event) { e.Correlation = sixKB }),
		"6 kB causation":     header(event.HeaderCausation, sixKB),
		"6 kB actor":         header(event.HeaderActor, sixKB),
		"6 kB contract":      header(event.HeaderContract, sixKB),
		"6 kB aggregate id":  header(event.HeaderSubject, sixKB),
		"6 kB type":          header(event.HeaderType, sixKB),
		"6 kB traceparent":   header(event.HeaderTraceParent, sixKB),
		"6 kB id":            header(event.HeaderID, sixKB),
		"NUL in correlation": header(event.HeaderCorrelation, "a\x00b"),
		"invalid UTF-8":      header(event.HeaderActor, "\xff\xfe"),
		"bad time":           header(event.HeaderTime, "yesterday"),
		"bad schema version": header(event.HeaderSchemaVersion, "v2"),
		"unknown type":       header(event.HeaderType, "jsm.contracts.v1.NoSuchEvent"),
		"garbage body":       drafted(func(e *event.Event) { e.Data = []byte{0xff, 0xff, 0xff} }),
		"no headers":         {Subject: "jsm.evt.contracts.contract.x", Data: []byte("x")},
	}
}

// Hostile messages published straight to the stream stop neither the
// trail nor an area's projector: each is set aside in their quarantine,
// later events are logged and readable, and a rebuild of either equals the
// live read model (issue 15, finding 2).
func TestHostileMessagesStopNoProjector(t *testing.T) {
	p := start(t)
	contract, _ := interaction(t, p, "acme", "itsec", "before", 1)
	first, _ := p.store.LastPosition(ctx)
	for name, m := range hostile(t) {
		if m.Subject == "" {
			m.Subject = "jsm.evt.contracts.contract.poison"
		}
		if _, err := p.store.JetStream().PublishMsg(ctx, m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	last, _ := p.store.LastPosition(ctx)
	later, steps := interaction(t, p, "acme", "itsec", "after", 1)
	end := steps[len(steps)-1].pos

	// The later contract is readable in the area and in the trail.
	c := p.trailClient("itsec")
	got := search(t, c, &trailv1.SearchEventsRequest{ContractId: later, MinPosition: end})
	if len(got) != 2 || got[0].CorrelationId != "after" {
		t.Fatalf("trail shows %d events of the later contract", len(got))
	}
	if n := len(search(t, c, &trailv1.SearchEventsRequest{ContractId: contract})); n != 2 {
		t.Fatalf("trail shows %d events of the first contract", n)
	}

	// What the trail set aside: every message that is not an event in
	// bounds. The trail hashes bodies without decoding them, so it logs the
	// event of the unknown type and the one with a garbage body.
	trailQ := quarantined(t, p, "trail")
	if len(trailQ) != int(last-first)-2 {
		t.Fatalf("the trail set aside %d of %d hostile messages: %+v", len(trailQ), last-first, trailQ)
	}
	// The contracts projector cannot decode those two either.
	areaQ := quarantined(t, p, "contracts")
	if len(areaQ) != int(last-first) {
		t.Fatalf("contracts set aside %d of %d hostile messages: %+v", len(areaQ), last-first, areaQ)
	}
	for _, q := range append(trailQ, areaQ...) {
		if q.Position <= first || q.Position > last || q.Reason == "" || len(q.Reason) > 2048 {
			t.Fatalf("quarantined %+v, want a position in %d..%d and a short reason", q, first+1, last)
		}
	}

	// Rebuilds decide the same way.
	area := dumpContracts(t, p)
	log := dump(t, p.pool)
	for _, pr := range []*libprojection.Projector{p.area.Projector(), p.trail.Projector()} {
		if err := pr.Rebuild(ctx); err != nil {
			t.Fatal(err)
		}
		if err := pr.WaitFor(ctx, end, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if again := dumpContracts(t, p); again != area {
		t.Fatalf("contracts after rebuild:\n%s\nlive:\n%s", again, area)
	}
	if again := dump(t, p.pool); again != log {
		t.Fatal("the trail's entries after a rebuild differ from the live ones")
	}
	if n := len(quarantined(t, p, "trail")); n != len(trailQ) {
		t.Fatalf("the rebuilt trail set aside %d, the live one %d", n, len(trailQ))
	}
	if n := len(quarantined(t, p, "contracts")); n != len(areaQ) {
		t.Fatalf("the rebuilt contracts set aside %d, the live one %d", n, len(areaQ))
	}
	if f, err := p.trail.App().Audit(ctx); err != nil || f != nil {
		t.Fatalf("audit of a log that passed over hostile messages: %v, %v", f, err)
	}
}

func quarantined(t *testing.T, p *platform, schema string) []libprojection.Quarantined {
	t.Helper()
	list, err := libprojection.ListQuarantine(ctx, p.pool, schema, "")
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func dumpContracts(t *testing.T, p *platform) string {
	t.Helper()
	var s string
	if err := p.pool.QueryRow(ctx, `SELECT coalesce(string_agg(c::text, '|' ORDER BY contract_id), '') FROM contracts.contracts c`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}
