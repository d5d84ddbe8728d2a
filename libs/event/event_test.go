package event_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/jsmplatform/jsm/libs/event"
)

func TestEnvelopeRoundTripsThroughHeaders(t *testing.T) {
	env := event.Envelope{
		ID: event.NewID(), Source: "/jsm/contracts", AggregateType: "contracts.contract", AggregateID: "c-1",
		Contract: "c-1", Parties: event.Parties{Customer: "acme", Provider: "itsec"},
		Actor: event.Actor{Org: "acme", User: "alice", Role: "org-admin"},
		Time:  time.Date(2026, 11, 22, 8, 30, 0, 123456789, time.UTC), Correlation: "corr", Causation: "cmd",
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	}
	e, err := event.New(env, wrapperspb.String("hello"))
	if err != nil {
		t.Fatal(err)
	}
	m := e.Msg()
	if m.Subject != "jsm.evt.contracts.contract.c-1" {
		t.Fatalf("subject %q", m.Subject)
	}
	got, err := event.FromMsg(m, 42)
	if err != nil {
		t.Fatal(err)
	}
	env.Type, env.SchemaVersion = "google.protobuf.StringValue", 1
	if got.Envelope != env || got.Position != 42 {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got.Envelope, env)
	}
	msg, err := got.Decode()
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(msg, wrapperspb.String("hello")) {
		t.Fatalf("decoded %v", msg)
	}
}

func TestDeriveIDIsStable(t *testing.T) {
	if event.DeriveID("k", 0) != event.DeriveID("k", 0) || event.DeriveID("k", 0) == event.DeriveID("k", 1) || event.DeriveID("k", 0) == event.DeriveID("j", 0) {
		t.Fatal("derived ids must be stable per key and index and differ otherwise")
	}
}

func TestFromMsgRejectsForeignMessages(t *testing.T) {
	for name, h := range map[string]nats.Header{
		"no id":    {"ce-type": {"x"}},
		"no type":  {nats.MsgIdHdr: {"1"}},
		"bad time": {nats.MsgIdHdr: {"1"}, "ce-type": {"x"}, "ce-time": {"yesterday"}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := event.FromMsg(&nats.Msg{Subject: "jsm.evt.x.y.z", Header: h}, 1); !errors.Is(err, event.ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		})
	}
	e := event.Event{Envelope: event.Envelope{ID: "1", Type: "no.such.Type"}}
	if _, err := e.Decode(); err == nil {
		t.Fatal("decoded an unknown type")
	}
}

// Headers come from anyone who can publish to NATS: decoding must never panic.
func FuzzFromMsg(f *testing.F) {
	f.Add("id", "jsm.contracts.v1.ContractSigned", "2026-11-22T08:00:00Z", "a,b", "1", []byte{0x0a, 0x01, 0x78})
	f.Add("", "", "", ",,,", "x", []byte{})
	f.Fuzz(func(t *testing.T, id, typ, ts, parties, version string, data []byte) {
		m := &nats.Msg{Subject: "jsm.evt.a.b.c", Data: data, Header: nats.Header{
			nats.MsgIdHdr: {id}, "ce-type": {typ, "second"}, "ce-time": {ts}, "jsm-parties": {parties}, "jsm-schema-version": {version},
		}}
		e, err := event.FromMsg(m, 7)
		if err != nil {
			return
		}
		_, _ = e.Decode()
		if e.ID != id || e.Type != typ {
			t.Fatalf("id/type changed: %q %q", e.ID, e.Type)
		}
	})
}

// Events stored before a change of meaning are upcast on the way out; new
// ones carry the new version; events of a version this code does not know
// yet are refused rather than misread.
var registerHoursToMinutes sync.Once

func TestUpcastersTurnOldBodiesIntoCurrentOnes(t *testing.T) {
	typ := "google.protobuf.UInt32Value" // used by no other test of this package
	// Version 2 counts minutes where version 1 counted hours. Registered
	// once per process: upcasters are global, and -count runs tests again.
	registerHoursToMinutes.Do(func() {
		event.RegisterUpcaster(typ, 1, func(body []byte) ([]byte, error) {
			var v wrapperspb.UInt32Value
			if err := proto.Unmarshal(body, &v); err != nil {
				return nil, err
			}
			return proto.Marshal(wrapperspb.UInt32(v.Value * 60))
		})
	})
	if got := event.CurrentVersion(typ); got != 2 {
		t.Fatalf("current version %d, want 2", got)
	}
	decode := func(e event.Event) uint32 {
		t.Helper()
		m, err := e.Decode()
		if err != nil {
			t.Fatal(err)
		}
		return m.(*wrapperspb.UInt32Value).Value
	}
	old, err := event.New(event.Envelope{ID: "e1", SchemaVersion: 1}, wrapperspb.UInt32(3))
	if err != nil {
		t.Fatal(err)
	}
	if got := decode(old); got != 180 {
		t.Fatalf("old event decodes to %d, want 180 minutes", got)
	}
	current, err := event.New(event.Envelope{ID: "e2"}, wrapperspb.UInt32(90))
	if err != nil {
		t.Fatal(err)
	}
	if current.SchemaVersion != 2 || decode(current) != 90 {
		t.Fatalf("new event at version %d decodes to %d, want 90 at version 2", current.SchemaVersion, decode(current))
	}
	// Through NATS headers and back, the version travels with the event.
	back, err := event.FromMsg(old.Msg(), 7)
	if err != nil {
		t.Fatal(err)
	}
	if back.SchemaVersion != 1 || decode(back) != 180 {
		t.Fatalf("old event read back at version %d", back.SchemaVersion)
	}
	future := current
	future.SchemaVersion = 3
	if _, err := future.Decode(); !errors.Is(err, event.ErrNewerSchema) {
		t.Fatalf("version 3 decoded with %v, want ErrNewerSchema", err)
	}
}
