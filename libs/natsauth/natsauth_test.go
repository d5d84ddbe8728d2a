package natsauth_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/jsmplatform/jsm/libs/es"
	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/natsauth"
	"github.com/jsmplatform/jsm/libs/natsx"
	"github.com/jsmplatform/jsm/libs/reactor"
	"github.com/jsmplatform/jsm/libs/testkit"
)

func ev(t *testing.T, aggType, aggID string) event.Event {
	t.Helper()
	e, err := event.New(event.Envelope{
		ID: event.NewID(), AggregateType: aggType, AggregateID: aggID, Source: "/test",
		Contract: "c1", Parties: event.Parties{Customer: "acme", Provider: "itsec"},
		Actor: event.Actor{Org: "itsec", User: "ceo", Role: "org-admin"},
		Time:  time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC),
	}, wrapperspb.String("forged?"))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// stored reports whether the stream holds a message on subject.
func stored(t *testing.T, n *testkit.NATS, subject string) bool {
	t.Helper()
	s, err := n.Store().JetStream().Stream(context.Background(), eventstore.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.GetLastMsgForSubject(context.Background(), subject)
	if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

func TestTableNamesTheStreamsOfTheCode(t *testing.T) {
	id, _ := natsauth.Service("patching")
	want := []string{
		"$JS.API.STREAM.CREATE." + eventstore.DefaultStream,
		"$KV." + es.SnapshotBucket + ".patching.>",
		"$JS.API.STREAM.CREATE." + reactor.DeadLetterStream,
		reactor.DeadLetterSubject("patching-reactions"),
		event.Subject("patching", ">"),
	}
	for _, w := range want {
		if !contains(id.Publish, w) {
			t.Errorf("patching may not publish %s; its table: %v", w, id.Publish)
		}
	}
}

func contains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

func TestUnauthenticatedClientIsRefused(t *testing.T) {
	n := testkit.StartNATSAuth(t)
	for name, opts := range map[string][]nats.Option{
		"no credentials":   nil,
		"wrong password":   {nats.UserInfo("contracts", "guess")},
		"unknown user":     {nats.UserInfo("mallory", "x")},
		"admin, no pass":   {nats.UserInfo(natsauth.AdminUser, "")},
		"system, wrong pw": {nats.UserInfo(natsauth.SystemUser, n.Auth.Passwords["contracts"])},
	} {
		nc, err := nats.Connect(n.URL(), append(opts, nats.Timeout(5*time.Second))...)
		if err == nil {
			nc.Close()
			t.Errorf("%s: connected, want refused", name)
		}
	}
}

// Each service appends its own area's events and nothing else: an event
// of another area (a forged RequirementAdded of contracts published by
// incidents, say) is refused by the server and never stored.
func TestServiceAppendsOnlyItsArea(t *testing.T) {
	ctx := context.Background()
	n := testkit.StartNATSAuth(t)
	for _, area := range natsauth.Areas() {
		t.Run(area, func(t *testing.T) {
			store := n.StoreAs(area)
			own := ev(t, area+".thing", "a-"+area)
			_, err := store.Append(ctx, 0, own)
			switch {
			case area == "trail" && err == nil:
				t.Fatalf("trail appended an event; it appends none")
			case area != "trail" && err != nil:
				t.Fatalf("append in its own area: %v", err)
			}
			other := "contracts"
			if area == other {
				other = "incidents"
			}
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			forged := ev(t, other+".thing", "forged-by-"+area)
			if _, err := store.Append(cctx, 0, forged); err == nil {
				t.Fatalf("%s appended an event of %s", area, other)
			}
			if stored(t, n, event.Subject(other+".thing", "forged-by-"+area)) {
				t.Fatalf("the stream holds %s's forged %s event", area, other)
			}
		})
	}
}

// A service cannot read another's replies, delete the event stream or
// subscribe to events directly around JetStream.
func TestServiceCannotOverstep(t *testing.T) {
	n := testkit.StartNATSAuth(t)
	_ = n.StoreAs("contracts")
	nc := n.ConnAs("incidents")
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	refused := func() context.Context { // a refused request gets no answer
		c, cancel := context.WithTimeout(ctx, time.Second)
		t.Cleanup(cancel)
		return c
	}
	if err := js.DeleteStream(refused(), eventstore.DefaultStream); err == nil {
		t.Fatal("incidents deleted the event stream")
	}
	for _, subject := range []string{"jsm.evt.>", "_INBOX.contracts.>", natsauth.CalloutSubject} {
		errs := make(chan error, 1)
		nc.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err })
		if _, err := nc.SubscribeSync(subject); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-errs:
			if !errors.Is(err, nats.ErrPermissionViolation) {
				t.Fatalf("subscribe %s: %v, want a permissions violation", subject, err)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("incidents subscribed to %s", subject)
		}
	}
	if _, err := n.StoreAs(natsauth.AdminUser).LastPosition(context.Background()); err != nil {
		t.Fatalf("the stream is gone: %v", err)
	}
	// Only integration reads what sources publish, and no service
	// publishes as a source.
	admin, err := jetstream.New(n.ConnAs(natsauth.AdminUser))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateStream(ctx, jetstream.StreamConfig{Name: "JSM_INGEST", Subjects: []string{"jsm.ingest.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.OrderedConsumer(refused(), "JSM_INGEST", jetstream.OrderedConsumerConfig{}); err == nil {
		t.Fatal("incidents reads JSM_INGEST")
	}
	if _, err := js.Publish(refused(), "jsm.ingest.soc.incidents", []byte("{}")); err == nil {
		t.Fatal("incidents published as the source soc")
	}
	ingest, err := jetstream.New(n.ConnAs("integration"))
	if err != nil {
		t.Fatal(err)
	}
	// Through its durable consumer "ingest", and no other.
	if _, err := ingest.CreateOrUpdateConsumer(ctx, "JSM_INGEST", jetstream.ConsumerConfig{Durable: "ingest", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatalf("integration cannot read JSM_INGEST: %v", err)
	}
	if _, err := ingest.OrderedConsumer(refused(), "JSM_INGEST", jetstream.OrderedConsumerConfig{}); err == nil {
		t.Fatal("integration reads JSM_INGEST with a consumer other than ingest")
	}
}

// TestSystemUserListsConnections: the system user, reached like the
// integration service does (natsx.As on a service's connection), lists
// the connections and may do nothing in the services' account.
func TestSystemUserListsConnections(t *testing.T) {
	n := testkit.StartNATSAuth(t)
	sys, err := natsx.As(n.ConnAs("integration"), "test-system", natsauth.SystemUser, n.Auth.Passwords[natsauth.SystemUser])
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	m, err := sys.Request("$SYS.REQ.SERVER.PING.CONNZ", []byte(`{"user":"integration"}`), 5*time.Second)
	if err != nil {
		t.Fatalf("connz: %v", err)
	}
	if !strings.Contains(string(m.Data), `"num_connections":1`) {
		t.Fatalf("connz of integration: %s", m.Data)
	}
	if err := sys.Publish("jsm.evt.contracts.contract.x", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := sys.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := sys.LastError(); !errors.Is(err, nats.ErrPermissionViolation) {
		t.Fatalf("the system user published an event: %v", err)
	}
}
