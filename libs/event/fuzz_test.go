package event_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/jsmplatform/jsm/libs/event"
)

// FuzzFromMsgBounds feeds FromMsg the headers anyone on the bus could publish.
// Whatever they hold, it must not panic, must refuse with ErrMalformed
// only, and what it accepts must be in bounds and survive a round trip
// through Msg unchanged.
func FuzzFromMsgBounds(f *testing.F) {
	e, err := event.New(event.Envelope{
		ID: event.NewID(), Source: "/jsm/contracts", AggregateType: "contracts.contract", AggregateID: "c-1", Contract: "c-1",
		Parties: event.Parties{Customer: "acme", Provider: "itsec"}, Actor: event.Actor{Org: "acme", User: "alice", Role: "org-admin"},
		Time: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC), Correlation: "vuln-42", Causation: "acme/alice/x/1",
	}, wrapperspb.String("x"))
	if err != nil {
		f.Fatal(err)
	}
	m := e.Msg()
	get := func(k string) string { return m.Header.Get(k) }
	f.Add(get(event.HeaderID), get(event.HeaderType), get(event.HeaderTime), get(event.HeaderCorrelation), get(event.HeaderActor), get(event.HeaderParties), get(event.HeaderSchemaVersion))
	f.Add(get(event.HeaderID), get(event.HeaderType), "yesterday", strings.Repeat("c", 6<<10), "\xff", ",", "-1")
	f.Add("", "", "", "", "", "", "")
	f.Add(strings.Repeat("i", 129), "t", "", "a b", "tab\there", "a,b,c", "99999999999999999999")
	f.Add("id", "t", "2026-03-02T09:00:00Z", "\x00", "ünïcode", "acme,", "2")
	f.Fuzz(func(t *testing.T, id, typ, at, correlation, actor, parties, version string) {
		m := &nats.Msg{Subject: "jsm.evt.test.thing.x", Header: nats.Header{}, Data: []byte{1}}
		for k, v := range map[string]string{event.HeaderID: id, event.HeaderType: typ, event.HeaderTime: at,
			event.HeaderCorrelation: correlation, event.HeaderActor: actor, event.HeaderParties: parties, event.HeaderSchemaVersion: version} {
			if v != "" {
				m.Header[k] = []string{v}
			}
		}
		got, err := event.FromMsg(m, 7)
		if err != nil {
			if !errors.Is(err, event.ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			if len(err.Error()) > 1024 {
				t.Fatalf("error of %d bytes quotes the hostile value", len(err.Error()))
			}
			return
		}
		if err := got.Envelope.Check(); err != nil {
			t.Fatalf("accepted an envelope out of bounds: %v", err)
		}
		again, err := event.FromMsg(got.Msg(), 7)
		if err != nil {
			t.Fatalf("round trip: %v", err)
		}
		if again.Envelope != got.Envelope {
			t.Fatalf("round trip changed the envelope:\n%+v\n%+v", got.Envelope, again.Envelope)
		}
	})
}

// Bounds are checked byte by byte: what CheckToken accepts is printable
// ASCII without spaces and no longer than its bound.
func TestBounds(t *testing.T) {
	for _, c := range []struct {
		v    string
		max  int
		want bool
	}{
		{"", 5, true},
		{"abc-1/2:3", 9, true},
		{"abcdef", 5, false},
		{"a b", 5, false},
		{"a\nb", 5, false},
		{"\x7f", 5, false},
		{"é", 5, false},
	} {
		if err := event.CheckToken("v", c.v, c.max); (err == nil) != c.want || err != nil && !errors.Is(err, event.ErrOutOfBounds) {
			t.Errorf("CheckToken(%q, %d) = %v, want ok %v", c.v, c.max, err, c.want)
		}
	}
	for _, c := range []struct {
		v    string
		want bool
	}{
		{"Jürgen Müller", true},
		{"a\x00b", false},
		{"\xff", false},
		{"line\nbreak", false},
		{strings.Repeat("x", event.MaxNameLen+1), false},
	} {
		if err := event.CheckName("v", c.v, event.MaxNameLen); (err == nil) != c.want {
			t.Errorf("CheckName(%q) = %v, want ok %v", c.v, err, c.want)
		}
	}
}
