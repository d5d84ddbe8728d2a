package integration_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/nats-io/nats.go"

	integrationv1 "github.com/jsmplatform/jsm/proto/gen/jsm/integration/v1"
	"github.com/jsmplatform/jsm/services/integration/ingest"
)

// A CloudEvent id of 6 kB (past the inbox key's and the correlation id's
// bounds) is refused with a problem over HTTP and dead-lettered over NATS,
// with its reason, and the next message is processed: one message never
// holds up every source (issue 15, finding 3).
func TestOversizedCloudEventIDsNeverStallIngest(t *testing.T) {
	p := start(t, ingest.Limits{})
	con := p.contract()
	secret := p.source(provider, "soc", integrationv1.Mapping_MAPPING_JSM, con)
	huge := strings.Repeat("x", 6<<10)

	a := p.structured("soc", secret, event(huge, "jsm.incident.report", con, report("H1", "SEVERITY_HIGH")))
	if a.status != 400 || !strings.HasSuffix(a.str("type"), "/malformed-cloudevent") || !strings.Contains(a.str("detail"), "at most 128") {
		t.Fatalf("HTTP answer to a 6 kB id: %d %s", a.status, a.raw)
	}
	a = p.structured("soc", secret, event("h-ok", "jsm.incident.report", con, report("H2", "SEVERITY_HIGH")))
	if a.status != 200 {
		t.Fatalf("HTTP answer to the next event: %d %s", a.status, a.raw)
	}

	dlq, err := p.nats.Conn().SubscribeSync(ingest.DeadLetterSubject)
	if err != nil {
		t.Fatal(err)
	}
	// Binary mode (the id in a header) and structured mode (in the body).
	publish(t, p, "soc", event(huge, "jsm.incident.report", con, report("N1", "SEVERITY_HIGH")))
	body, _ := json.Marshal(event(huge+"y", "jsm.incident.report", con, report("N2", "SEVERITY_HIGH")))
	if _, err := p.store.JetStream().PublishMsg(ctx, &nats.Msg{Subject: ingest.Subject("soc") + ".x",
		Header: nats.Header{"content-type": {cloudevents.ApplicationCloudEventsJSON}}, Data: body}); err != nil {
		t.Fatal(err)
	}
	publish(t, p, "soc", event("n-ok", "jsm.incident.report", con, report("N3", "SEVERITY_HIGH")))
	waitIngested(t, p, provider, "n-ok", integrationv1.IngestOutcome_INGEST_OUTCOME_APPLIED)
	for range 2 {
		m, err := dlq.NextMsg(20 * time.Second)
		if err != nil {
			t.Fatalf("dead letters: %v", err)
		}
		if r := m.Header.Get("reason_poisoned"); !strings.Contains(r, "malformed-cloudevent") || !strings.Contains(r, "id is") {
			t.Fatalf("dead-lettered with reason %q", r)
		}
	}
	l := must[integrationv1.ListIngestedEventsResponse](t)(p.integration(provider).ListIngestedEvents(ctx, connect.NewRequest(&integrationv1.ListIngestedEventsRequest{PageSize: 1000})))
	for _, e := range l.Events {
		if len(e.EventId) > 128 {
			t.Fatalf("the inbox holds an event id of %d bytes", len(e.EventId))
		}
	}
}
