package eventstore_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/eventsig"
	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/testkit"
)

func ev(t *testing.T, aggID, id, text string) event.Event {
	t.Helper()
	e, err := event.New(event.Envelope{
		ID: id, AggregateType: "test.thing", AggregateID: aggID, Source: "/test",
		Contract: "c1", Parties: event.Parties{Customer: "cust", Provider: "prov"},
		Actor: event.Actor{Org: "cust", User: "u1", Role: "org-admin"},
		Time:  time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC), Correlation: "corr", Causation: "cmd",
	}, wrapperspb.String(text))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func texts(t *testing.T, events []event.Event) []string {
	t.Helper()
	var out []string
	for _, e := range events {
		m, err := e.Decode()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m.(*wrapperspb.StringValue).Value)
	}
	return out
}

func TestAppendDetectsConflicts(t *testing.T) {
	ctx := context.Background()
	store := testkit.StartNATS(t).Store()

	p1, err := store.Append(ctx, 0, ev(t, "a", event.NewID(), "one"))
	if err != nil {
		t.Fatal(err)
	}
	// Creating it again (expected 0) conflicts.
	_, err = store.Append(ctx, 0, ev(t, "a", event.NewID(), "again"))
	var conflict *eventstore.ConflictError
	if !errors.As(err, &conflict) || !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("create twice: got %v, want a conflict", err)
	}
	// Another aggregate moves the stream on; "a" is still at p1.
	if _, err := store.Append(ctx, 0, ev(t, "b", event.NewID(), "b1")); err != nil {
		t.Fatal(err)
	}
	p2, err := store.Append(ctx, p1, ev(t, "a", event.NewID(), "two"))
	if err != nil {
		t.Fatalf("append at the right version: %v", err)
	}
	// A stale version conflicts, for single events and for batches.
	if _, err := store.Append(ctx, p1, ev(t, "a", event.NewID(), "stale")); !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("stale single append: got %v", err)
	}
	if _, err := store.Append(ctx, p1, ev(t, "a", event.NewID(), "s1"), ev(t, "a", event.NewID(), "s2")); !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("stale batch append: got %v", err)
	}
	got, err := store.Load(ctx, "test.thing", "a", 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"one", "two"}; !equal(texts(t, got), want) {
		t.Fatalf("events of a = %v, want %v", texts(t, got), want)
	}
	if got[1].Position != p2 {
		t.Fatalf("position %d, want %d", got[1].Position, p2)
	}
	v, err := store.Version(ctx, "test.thing", "a")
	if err != nil || v != p2 {
		t.Fatalf("version = %d, %v; want %d", v, err, p2)
	}
}

func TestRetriedAppendIsDeduplicated(t *testing.T) {
	ctx := context.Background()
	store := testkit.StartNATS(t).Store()
	one := ev(t, "a", event.DeriveID("cmd-1", 0), "one")
	p1, err := store.Append(ctx, 0, one)
	if err != nil {
		t.Fatal(err)
	}
	resent := func(what string, want uint64, expected uint64, events ...event.Event) {
		t.Helper()
		pos, err := store.Append(ctx, expected, events...)
		var stored *eventstore.StoredError
		if !errors.As(err, &stored) || !errors.Is(err, eventstore.ErrAlreadyStored) || stored.Position != want || pos != want {
			t.Fatalf("%s = %d, %v; want already stored at %d", what, pos, err, want)
		}
	}
	// The same event resent with the same expectation (a retry after a lost ack).
	resent("resent append", p1, 0, one)
	b := []event.Event{ev(t, "a", event.DeriveID("cmd-2", 0), "b1"), ev(t, "a", event.DeriveID("cmd-2", 1), "b2")}
	pb, err := store.Append(ctx, p1, b...)
	if err != nil {
		t.Fatal(err)
	}
	resent("resent batch", pb, p1, b...)
	// Resent after the aggregate moved on, expecting its latest version (a
	// late retry decided again on newer state): still nothing is stored.
	p3, err := store.Append(ctx, pb, ev(t, "a", event.NewID(), "three"))
	if err != nil {
		t.Fatal(err)
	}
	resent("late resent append", p1, p3, one)
	resent("late resent batch", pb, p3, b...)
	got, err := store.Load(ctx, "test.thing", "a", 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"one", "b1", "b2", "three"}; !equal(texts(t, got), want) {
		t.Fatalf("events = %v, want %v", texts(t, got), want)
	}
}

func TestBatchAppendIsAtomic(t *testing.T) {
	ctx := context.Background()
	store := testkit.StartNATS(t).Store()
	p, err := store.Append(ctx, 0, ev(t, "a", event.NewID(), "x1"), ev(t, "a", event.NewID(), "x2"), ev(t, "a", event.NewID(), "x3"))
	if err != nil {
		t.Fatal(err)
	}
	// A batch that fails its check stores none of its events.
	if _, err := store.Append(ctx, 0, ev(t, "a", event.NewID(), "y1"), ev(t, "a", event.NewID(), "y2")); !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("got %v, want conflict", err)
	}
	last, err := store.LastPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if last != p || p != 3 {
		t.Fatalf("last position %d, batch position %d; want 3 and 3", last, p)
	}
	got, err := store.Load(ctx, "test.thing", "a", 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"x2", "x3"}; !equal(texts(t, got), want) {
		t.Fatalf("events after 1 = %v, want %v", texts(t, got), want)
	}
	// A batch must not span aggregates.
	if _, err := store.Append(ctx, p, ev(t, "a", event.NewID(), "z"), ev(t, "b", event.NewID(), "z")); err == nil {
		t.Fatal("batch over two aggregates accepted")
	}
}

func TestLoadAfterRestartAndManyEvents(t *testing.T) {
	ctx := context.Background()
	n := testkit.StartNATS(t)
	store := n.Store()
	var v uint64
	var err error
	var want []string
	// More than one direct-get batch, interleaved with another aggregate.
	for i := range 600 {
		text := "e" + strconv.Itoa(i)
		if v, err = store.Append(ctx, v, ev(t, "a", event.NewID(), text)); err != nil {
			t.Fatal(err)
		}
		want = append(want, text)
		if _, err := store.Append(ctx, 0, ev(t, "noise"+strconv.Itoa(i), event.NewID(), "n")); err != nil {
			t.Fatal(err)
		}
	}
	n.Restart()
	store = n.Store()
	got, err := store.Load(ctx, "test.thing", "a", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !equal(texts(t, got), want) {
		t.Fatalf("after restart loaded %d events, want %d", len(got), len(want))
	}
	e := got[0]
	if e.Contract != "c1" || e.Parties.Provider != "prov" || e.Actor.Role != "org-admin" || e.Causation != "cmd" || !e.Time.Equal(time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)) {
		t.Fatalf("envelope not preserved: %+v", e.Envelope)
	}
	// From within the history, and exactly at its end.
	for _, after := range []int{255, 256, 599} {
		from, err := store.Load(ctx, "test.thing", "a", got[after-1].Position)
		if err != nil || !equal(texts(t, from), want[after:]) {
			t.Fatalf("load after event %d: %d events, %v; want %d", after, len(from), err, len(want)-after)
		}
	}
	if rest, err := store.Load(ctx, "test.thing", "a", got[599].Position); err != nil || len(rest) != 0 {
		t.Fatalf("load after the last event = %d events, %v", len(rest), err)
	}
	none, err := store.Load(ctx, "test.thing", "missing", 0)
	if err != nil || len(none) != 0 {
		t.Fatalf("load of a missing aggregate = %v, %v", none, err)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Every instance opens the one shared stream: one started with fewer
// replicas or another duplicate window must not change the operator's
// settings, while what the store relies on is restored.
func TestOpenKeepsTheOperatorsSettings(t *testing.T) {
	ctx := context.Background()
	n := testkit.StartNATS(t)
	store := n.Store()
	js := store.JetStream()
	s, err := js.Stream(ctx, store.Name())
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.Duplicates = time.Hour
	cfg.AllowDirect = false
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := eventstore.Open(ctx, store.Conn(), eventstore.Config{Duplicates: time.Minute}); err != nil {
		t.Fatal(err)
	}
	s, err = js.Stream(ctx, store.Name())
	if err != nil {
		t.Fatal(err)
	}
	got := s.CachedInfo().Config
	if got.Duplicates != time.Hour || !got.AllowDirect || !got.DenyDelete || got.Discard != jetstream.DiscardNew {
		t.Fatalf("after a second Open: duplicates %v, direct %v, deny delete %v, discard %v; want the operator's hour and the store's needs", got.Duplicates, got.AllowDirect, got.DenyDelete, got.Discard)
	}
}

// A message on an aggregate's subject that is not an event is no part of
// the aggregate: loads pass over it instead of failing every command.
func TestLoadPassesOverMessagesThatAreNotEvents(t *testing.T) {
	ctx := context.Background()
	store := testkit.StartNATS(t).Store()
	p1, err := store.Append(ctx, 0, ev(t, "a", event.NewID(), "one"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.JetStream().Publish(ctx, event.Subject("test.thing", "a"), []byte("stray")); err != nil {
		t.Fatal(err)
	}
	v, err := store.Version(ctx, "test.thing", "a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Append(ctx, v, ev(t, "a", event.NewID(), "two")); err != nil {
		t.Fatal(err)
	}
	got, err := store.Load(ctx, "test.thing", "a", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[1].Type != "" || got[1].Position != v || got[0].Position != p1 {
		t.Fatalf("loaded %+v; want one, a position-only entry at %d, two", got, v)
	}
	if want := []string{"one", "two"}; !equal(texts(t, []event.Event{got[0], got[2]}), want) {
		t.Fatalf("loaded %v, want %v", texts(t, got), want)
	}
}

// A store with a signer signs every event it appends, one or a batch, and
// the events read back verify under the key's public half; the store it
// was derived from still appends unsigned.
func TestAppendSignsWithTheStoresKey(t *testing.T) {
	ctx := context.Background()
	plain := testkit.StartNATS(t).Store()
	skey, vkey, err := eventsig.GenerateKey("test")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := eventsig.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := eventsig.ParseKeys(vkey)
	if err != nil {
		t.Fatal(err)
	}
	signed := plain.WithSigner(signer)
	pos, err := signed.Append(ctx, 0, ev(t, "s", event.NewID(), "one"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signed.Append(ctx, pos, ev(t, "s", event.NewID(), "two"), ev(t, "s", event.NewID(), "three")); err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Append(ctx, 0, ev(t, "u", event.NewID(), "unsigned")); err != nil {
		t.Fatal(err)
	}
	events, err := plain.Load(ctx, "test.thing", "s", 0)
	if err != nil || len(events) != 3 {
		t.Fatalf("load: %v, %d events", err, len(events))
	}
	for _, e := range events {
		if err := keys.Verify(e); err != nil || e.Signer != signer.ID() {
			t.Errorf("event %s at %d: signer %q: %v", e.ID, e.Position, e.Signer, err)
		}
	}
	unsigned, err := plain.Load(ctx, "test.thing", "u", 0)
	if err != nil || len(unsigned) != 1 || eventsig.ReasonOf(keys.Verify(unsigned[0])) != eventsig.Unsigned {
		t.Fatalf("the plain store's event: %v, %+v", err, unsigned)
	}
}

// Defence in depth: whatever let it through, an envelope out of its bounds
// is never appended (every consumer would read it back as not an event).
func TestAppendRefusesEnvelopesOutOfBounds(t *testing.T) {
	ctx := context.Background()
	store := testkit.StartNATS(t).Store()
	for name, edit := range map[string]func(*event.Event){
		"6 kB correlation": func(e *event.Event) { e.Correlation = strings.Repeat("c", 6<<10) },
		"NUL in causation": func(e *event.Event) { e.Causation = "a\x00b" },
		"6 kB actor":       func(e *event.Event) { e.Actor.User = strings.Repeat("u", 6<<10) },
	} {
		e := ev(t, "a", event.NewID(), "x")
		edit(&e)
		if _, err := store.Append(ctx, 0, e); !errors.Is(err, event.ErrOutOfBounds) {
			t.Fatalf("%s: got %v, want ErrOutOfBounds", name, err)
		}
	}
	if last, err := store.LastPosition(ctx); err != nil || last != 0 {
		t.Fatalf("the stream holds %d events (%v), want none", last, err)
	}
}
