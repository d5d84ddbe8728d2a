package eventsig_test

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/eventsig"
)

func key(t *testing.T, name string) (*eventsig.Signer, string) {
	t.Helper()
	skey, vkey, err := eventsig.GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := eventsig.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s, vkey
}

func sample() event.Event {
	return event.Event{Envelope: event.Envelope{
		ID: "e1", Type: "jsm.contracts.v1.ContractDrafted", Source: "/jsm/contracts",
		AggregateType: "contracts.contract", AggregateID: "c1", Contract: "c1",
		Parties: event.Parties{Customer: "acme", Provider: "itsec"},
		Actor:   event.Actor{Org: "acme", User: "alice", Role: "org-admin"},
		Time:    time.Date(2026, 12, 6, 2, 0, 0, 123456789, time.UTC), Correlation: "k1", Causation: "cmd1",
		SchemaVersion: 1, TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
	}, Data: []byte{1, 2, 3}}
}

// Every field of the envelope and the body is covered: changing any one
// of them after signing breaks the signature. The fields are found by
// reflection, so a field added to the envelope is covered or fails here.
func TestSignatureCoversEveryField(t *testing.T) {
	contracts, vkey := key(t, "contracts")
	keys, err := eventsig.ParseKeys(vkey)
	if err != nil {
		t.Fatal(err)
	}
	e := sample()
	if err := contracts.Sign(&e); err != nil {
		t.Fatal(err)
	}
	if err := keys.Verify(e); err != nil {
		t.Fatalf("signed event: %v", err)
	}
	// Through NATS headers and back, it still verifies.
	back, err := event.FromMsg(e.Msg(), 7)
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.Verify(back); err != nil {
		t.Fatalf("event read back from its message: %v", err)
	}

	var flip func(v reflect.Value, path string)
	flip = func(v reflect.Value, path string) {
		switch v.Kind() {
		case reflect.Struct:
			if v.Type() == reflect.TypeFor[time.Time]() {
				c := e
				c.Time = c.Time.Add(time.Nanosecond)
				check(t, keys, c, path)
				return
			}
			for i := range v.NumField() {
				flip(v.Field(i), path+"."+v.Type().Field(i).Name)
			}
		case reflect.String, reflect.Int:
			c := e
			f := reflect.ValueOf(&c.Envelope).Elem().FieldByIndex(fieldIndex(t, path))
			if f.Kind() == reflect.String {
				f.SetString(f.String() + "x")
			} else {
				f.SetInt(f.Int() + 1)
			}
			check(t, keys, c, path)
		}
	}
	flip(reflect.ValueOf(e.Envelope), "Envelope")
	c := e
	c.Data = []byte{1, 2, 4}
	check(t, keys, c, "Data")
}

func fieldIndex(t *testing.T, path string) []int {
	t.Helper()
	typ := reflect.TypeFor[event.Envelope]()
	var idx []int
	for _, name := range strings.Split(strings.TrimPrefix(path, "Envelope."), ".") {
		f, ok := typ.FieldByName(name)
		if !ok {
			t.Fatalf("no field %s", path)
		}
		idx = append(idx, f.Index...)
		typ = f.Type
	}
	return idx
}

func check(t *testing.T, keys *eventsig.Keys, e event.Event, field string) {
	t.Helper()
	if got := eventsig.ReasonOf(keys.Verify(e)); got != eventsig.BadSignature {
		t.Errorf("changed %s: verification says %q, want %q", field, got, eventsig.BadSignature)
	}
}

func TestRefusedEvents(t *testing.T) {
	contracts, contractsKey := key(t, "contracts")
	incidents, incidentsKey := key(t, "incidents")
	stranger, _ := key(t, "contracts")
	keys, err := eventsig.ParseKeys(contractsKey + ", " + incidentsKey)
	if err != nil {
		t.Fatal(err)
	}
	signed := func(s *eventsig.Signer) event.Event {
		e := sample()
		if err := s.Sign(&e); err != nil {
			t.Fatal(err)
		}
		return e
	}
	garbled := signed(contracts)
	garbled.Signature = []byte("not base64 at all")
	for _, tc := range []struct {
		name string
		e    event.Event
		want eventsig.Reason
	}{
		{"signed by its area's key", signed(contracts), ""},
		{"unsigned", sample(), eventsig.Unsigned},
		{"a key nobody pinned", signed(stranger), eventsig.UnknownSigner},
		{"another area's pinned key", signed(incidents), eventsig.WrongArea},
		{"a garbled signature", garbled, eventsig.BadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := eventsig.ReasonOf(keys.Verify(tc.e)); got != tc.want {
				t.Errorf("reason %q, want %q", got, tc.want)
			}
		})
	}
	var none *eventsig.Keys
	if got := eventsig.ReasonOf(none.Verify(signed(contracts))); got != eventsig.UnknownSigner {
		t.Errorf("no keys pinned: reason %q, want %q", got, eventsig.UnknownSigner)
	}
}

func TestParseKeys(t *testing.T) {
	_, a := key(t, "contracts")
	_, b := key(t, "contracts") // a rotation: two keys of one area
	k, err := eventsig.ParseKeys(a + "\n" + b)
	if err != nil || k.Len() != 2 {
		t.Fatalf("two keys: %v, %d keys", err, k.Len())
	}
	for _, bad := range []string{a + " " + a, "contracts+1234+AAAA", "PRIVATE+KEY+x"} {
		if _, err := eventsig.ParseKeys(bad); err == nil {
			t.Errorf("ParseKeys(%q) succeeded", bad)
		}
	}
}

func TestLoadOrCreateKeepsOneKeyPerArea(t *testing.T) {
	dir := t.TempDir() + "/keys"
	s, vkey, err := eventsig.LoadOrCreate(dir, "contracts")
	if err != nil {
		t.Fatal(err)
	}
	again, vkey2, err := eventsig.LoadOrCreate(dir, "contracts")
	if err != nil || again.ID() != s.ID() || vkey2 != vkey {
		t.Fatalf("second load: %v, %s vs %s", err, again.ID(), s.ID())
	}
	info, err := os.Stat(dir + "/contracts.key")
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v", err, info.Mode())
	}
	keys, err := eventsig.ParseKeys(vkey)
	if err != nil {
		t.Fatal(err)
	}
	e := sample()
	if err := s.Sign(&e); err != nil {
		t.Fatal(err)
	}
	if err := keys.Verify(e); err != nil {
		t.Fatalf("the derived verifier key does not check the key's signature: %v", err)
	}
}
