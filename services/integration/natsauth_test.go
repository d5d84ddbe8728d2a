package integration_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"connectrpc.com/connect"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jsmplatform/jsm/libs/natsauth"
	"github.com/jsmplatform/jsm/libs/testkit"
	integrationv1 "github.com/jsmplatform/jsm/proto/gen/jsm/integration/v1"
	"github.com/jsmplatform/jsm/services/integration/ingest"
)

// sourceConn connects to NATS as the source id with secret, the way an
// ITSM tool does: user = source id, password = its secret, its own inbox
// prefix (the only replies it may read).
func sourceConn(p *platform, id, secret string, opts ...nats.Option) (*nats.Conn, error) {
	nc, err := nats.Connect(p.nats.URL(), append([]nats.Option{
		nats.UserInfo(id, secret), nats.CustomInboxPrefix(natsauth.InboxPrefix(natsauth.Source(id).User)),
		nats.Timeout(5 * time.Second),
	}, opts...)...)
	if err == nil {
		p.t.Cleanup(nc.Close)
	}
	return nc, err
}

// sendAs publishes e on subject through JetStream and waits for the ack.
func sendAs(nc *nats.Conn, subject string, e cloudevents.Event) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(e)
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err = js.PublishMsg(cctx, &nats.Msg{Subject: subject, Data: body,
		Header: nats.Header{"content-type": {cloudevents.ApplicationCloudEventsJSON}}})
	return err
}

// ingestHolds reports whether JSM_INGEST stored a message on subject.
func ingestHolds(t *testing.T, p *platform, subject string) bool {
	t.Helper()
	s, err := p.store.JetStream().Stream(ctx, ingest.Stream)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.GetLastMsgForSubject(ctx, subject)
	if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

func waitDisconnected(t *testing.T, nc *nats.Conn) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for nc.IsConnected() {
		if time.Now().After(deadline) {
			t.Fatal("the source's connection is still up")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNATSSourceIdentity: on an authenticated NATS a source connects with
// its own secret and may publish only its own events; nobody else gets in,
// a disabled source is cut off at once, and a rotated-out secret works
// until its grace ends.
func TestNATSSourceIdentity(t *testing.T) {
	const grace = 4 * time.Second
	p := startOn(t, testkit.StartNATSAuth(t), ingest.Limits{RotationGrace: grace})
	con := p.contract()
	secret := p.source(provider, "soc", integrationv1.Mapping_MAPPING_JSM, con)
	otherSecret := p.source(provider, "scanner", integrationv1.Mapping_MAPPING_JSM, con)

	for name, creds := range map[string][2]string{
		"no credentials":          {"", ""},
		"wrong secret":            {"soc", otherSecret},
		"unknown source":          {"ghost", secret},
		"a service's name":        {"contracts", secret},
		"the system user, source": {natsauth.SystemUser, secret},
	} {
		var opts []nats.Option
		if creds[0] != "" {
			opts = append(opts, nats.UserInfo(creds[0], creds[1]))
		}
		if nc, err := nats.Connect(p.nats.URL(), append(opts, nats.Timeout(5*time.Second))...); err == nil {
			nc.Close()
			t.Errorf("%s: connected, want refused", name)
		}
	}

	soc, err := sourceConn(p, "soc", secret)
	if err != nil {
		t.Fatalf("the source with its secret: %v", err)
	}
	if err := sendAs(soc, ingest.Subject("soc")+".incidents", event("a-1", "jsm.incident.report", con, report("A1", "SEVERITY_HIGH"))); err != nil {
		t.Fatalf("publish its own event: %v", err)
	}
	waitIngested(t, p, provider, "a-1", integrationv1.IngestOutcome_INGEST_OUTCOME_APPLIED)
	for _, subject := range []string{ingest.Subject("scanner") + ".incidents", "jsm.evt.incidents.incident.forged", "jsm.dlq.ingest"} {
		if err := sendAs(soc, subject, event("a-2", "jsm.incident.report", con, report("A2", "SEVERITY_HIGH"))); err == nil {
			t.Errorf("soc published on %s", subject)
		}
	}
	if ingestHolds(t, p, ingest.Subject("scanner")+".incidents") {
		t.Fatal("JSM_INGEST holds soc's event as scanner's")
	}
	if forged, err := p.store.Load(ctx, "incidents.incident", "forged", 0); err != nil || len(forged) > 0 {
		t.Fatalf("JSM_EVENTS holds %d events a source published (%v)", len(forged), err)
	}

	// Rotation: connections are cut and come back with whichever secret they
	// have; the old one lasts until the grace ends.
	rot := must[integrationv1.RotateSourceSecretResponse](t)(p.integration(provider).RotateSourceSecret(ctx, connect.NewRequest(&integrationv1.RotateSourceSecretRequest{SourceId: "soc"})))
	rotated := time.Now()
	old, err := sourceConn(p, "soc", secret, nats.MaxReconnects(0))
	if err != nil {
		t.Fatalf("the previous secret within the grace: %v", err)
	}
	fresh, err := sourceConn(p, "soc", rot.Secret)
	if err != nil {
		t.Fatalf("the new secret: %v", err)
	}
	if err := sendAs(old, ingest.Subject("soc")+".incidents", event("a-3", "jsm.incident.report", con, report("A3", "SEVERITY_LOW"))); err != nil {
		t.Fatalf("publish with the previous secret within the grace: %v", err)
	}
	waitDisconnected(t, old) // at the end of the grace
	// The connection opened before the rotation was cut by it and came back
	// with the previous secret: it ends with the grace too.
	waitDisconnected(t, soc)
	if since := time.Since(rotated); since < grace-time.Second {
		t.Fatalf("the previous secret's connection ended %v after the rotation, before the grace", since)
	}
	if _, err := sourceConn(p, "soc", secret); err == nil {
		t.Fatal("the previous secret works after its grace")
	}
	if err := sendAs(fresh, ingest.Subject("soc")+".incidents", event("a-4", "jsm.incident.report", con, report("A4", "SEVERITY_LOW"))); err != nil {
		t.Fatalf("the new secret after the grace: %v", err)
	}

	// Disable: the open connection is cut at once and cannot come back.
	must[integrationv1.DisableSourceResponse](t)(p.integration(provider).DisableSource(ctx, connect.NewRequest(&integrationv1.DisableSourceRequest{SourceId: "soc", Reason: "compromised"})))
	waitDisconnected(t, fresh)
	if err := sendAs(fresh, ingest.Subject("soc")+".incidents", event("a-5", "jsm.incident.report", con, report("A5", "SEVERITY_LOW"))); err == nil {
		t.Fatal("a disabled source's open connection still publishes")
	}
	if _, err := sourceConn(p, "soc", rot.Secret); err == nil {
		t.Fatal("a disabled source connects")
	}
	if ingestHolds(t, p, ingest.Subject("soc")+".incidents") {
		last, _ := p.store.JetStream().Stream(ctx, ingest.Stream)
		m, _ := last.GetLastMsgForSubject(ctx, ingest.Subject("soc")+".incidents")
		var e cloudevents.Event
		if json.Unmarshal(m.Data, &e) == nil && e.ID() == "a-5" {
			t.Fatal("JSM_INGEST holds an event of a disabled source")
		}
	}
	// The other source is not affected.
	if _, err := sourceConn(p, "scanner", otherSecret); err != nil {
		t.Fatalf("another source: %v", err)
	}
}
