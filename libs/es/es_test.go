package es_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/jsmplatform/jsm/libs/es"
	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/testkit"
)

// A counter that refuses to go above a limit: enough to exercise the runner.
type counter struct {
	N     int64 `json:"n"`
	Limit int64 `json:"limit"`
}

type add struct{ By int64 }

var (
	errLimit    = errors.New("over the limit")
	errNegative = errors.New("below zero")
)

func counterDecider() es.Decider[counter, add] {
	return es.Decider[counter, add]{
		AggregateType: "test.counter",
		Initial:       func() counter { return counter{Limit: 1000} },
		Decide: func(s counter, c add) ([]proto.Message, error) {
			if s.N+c.By > s.Limit {
				return nil, errLimit
			}
			if s.N+c.By < 0 {
				return nil, errNegative
			}
			if c.By == 0 {
				return nil, nil
			}
			// Two events for a big step: exercises the atomic batch.
			if c.By > 1 {
				return []proto.Message{wrapperspb.Int64(c.By - 1), wrapperspb.Int64(1)}, nil
			}
			return []proto.Message{wrapperspb.Int64(c.By)}, nil
		},
		Evolve: func(s counter, _ event.Event, m proto.Message) counter {
			s.N += m.(*wrapperspb.Int64Value).Value
			return s
		},
		Scope: func(counter) (string, event.Parties) {
			return "contract-1", event.Parties{Customer: "cust", Provider: "prov"}
		},
		StateVersion: 1,
	}
}

func newRunner(t *testing.T, store *eventstore.Store, opts ...es.Option) *es.Runner[counter, add] {
	t.Helper()
	r, err := es.NewRunner(context.Background(), store, "/test", counterDecider(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestConcurrentWritersRetryOnConflict(t *testing.T) {
	ctx := context.Background()
	n := testkit.StartNATS(t)
	// Two runners with their own caches, as two service instances would be.
	a, b := newRunner(t, n.Store(), es.WithRetries(50)), newRunner(t, n.Store(), es.WithRetries(50))
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 100 {
		r := a
		if i%2 == 1 {
			r = b
		}
		wg.Go(func() {
			_, err := r.Handle(ctx, es.Command[add]{AggregateID: "c1", Body: add{By: 1}, Actor: event.Actor{Org: "cust"}})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("handle: %v", err)
		}
	}
	fresh := newRunner(t, n.Store(), es.WithoutSnapshots())
	s, v, err := fresh.State(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if s.N != 100 || v != 100 {
		t.Fatalf("state %+v at version %d, want n=100 at 100", s, v)
	}
}

func TestGivesUpAfterBoundedRetries(t *testing.T) {
	ctx := context.Background()
	n := testkit.StartNATS(t)
	stale := newRunner(t, n.Store(), es.WithRetries(0))
	other := newRunner(t, n.Store())
	cmd := es.Command[add]{AggregateID: "c1", Body: add{By: 1}}
	if _, err := stale.Handle(ctx, cmd); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Handle(ctx, cmd); err != nil {
		t.Fatal(err)
	}
	// stale's cache is behind and it may not retry: a conflict reaches the caller.
	if _, err := stale.Handle(ctx, cmd); !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("got %v, want a conflict", err)
	}
}

func TestCommandIDMakesRetriesIdempotent(t *testing.T) {
	ctx := context.Background()
	n := testkit.StartNATS(t)
	r := newRunner(t, n.Store())
	cmd := es.Command[add]{ID: "req-1", AggregateID: "c1", Body: add{By: 3}, Actor: event.Actor{Org: "cust", User: "u"}}
	first, err := r.Handle(ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Events) != 2 || first.Events[0].Position+1 != first.Events[1].Position || first.Position != first.Events[1].Position {
		t.Fatalf("batch positions wrong: %+v", first)
	}
	if first.Events[0].Contract != "contract-1" || first.Events[0].Parties.Provider != "prov" || first.Events[0].Causation != "req-1" {
		t.Fatalf("envelope lacks scope or causation: %+v", first.Events[0].Envelope)
	}
	// The same request again, on this runner and on a cold one: applied once.
	for _, runner := range []*es.Runner[counter, add]{r, newRunner(t, n.Store(), es.WithoutSnapshots())} {
		again, err := runner.Handle(ctx, cmd)
		if err != nil {
			t.Fatal(err)
		}
		if !again.Duplicate || again.Position != first.Position {
			t.Fatalf("retry = %+v, want duplicate at %d", again, first.Position)
		}
	}
	s, _, _ := newRunner(t, n.Store(), es.WithoutSnapshots()).State(ctx, "c1")
	if s.N != 3 {
		t.Fatalf("n = %d, want 3", s.N)
	}
}

func TestDomainErrorsAppendNothing(t *testing.T) {
	ctx := context.Background()
	n := testkit.StartNATS(t)
	store := n.Store()
	r := newRunner(t, store)
	if _, err := r.Handle(ctx, es.Command[add]{AggregateID: "c1", Body: add{By: 2000}}); !errors.Is(err, errLimit) {
		t.Fatalf("got %v, want the domain error", err)
	}
	if _, err := r.Handle(ctx, es.Command[add]{AggregateID: "bad.id", Body: add{By: 1}}); !errors.Is(err, es.ErrInvalidID) {
		t.Fatalf("got %v, want invalid id", err)
	}
	if last, _ := store.LastPosition(ctx); last != 0 {
		t.Fatalf("stream has %d events, want none", last)
	}
}

// A caller restricted to contracts (a source) cannot act on an aggregate
// of another: refused, nothing appended.
func TestCommandOutsideTheCallersContractsIsRefused(t *testing.T) {
	ctx := context.Background()
	n := testkit.StartNATS(t)
	store := n.Store()
	r := newRunner(t, store)
	for _, allowed := range [][]string{{}, {"contract-2"}} {
		_, err := r.Handle(ctx, es.Command[add]{AggregateID: "c1", Body: add{By: 1}, Contracts: allowed})
		if !errors.Is(err, es.ErrContractNotAllowed) {
			t.Fatalf("contracts %q: got %v, want ErrContractNotAllowed", allowed, err)
		}
	}
	if last, _ := store.LastPosition(ctx); last != 0 {
		t.Fatalf("stream has %d events, want none", last)
	}
	for _, allowed := range [][]string{nil, {"contract-2", "contract-1"}} {
		if _, err := r.Handle(ctx, es.CommandFor(es.Request{Contracts: allowed}, "c1", add{By: 1})); err != nil {
			t.Fatalf("contracts %q: %v", allowed, err)
		}
	}
}

func TestColdStartUsesSnapshot(t *testing.T) {
	ctx := context.Background()
	n := testkit.StartNATS(t)
	r := newRunner(t, n.Store())
	for range 30 {
		if _, err := r.Handle(ctx, es.Command[add]{AggregateID: "c1", Body: add{By: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	n.Restart()
	// A new process: no cache; state from the KV snapshot plus the events after it.
	cold := newRunner(t, n.Store())
	res, err := cold.Handle(ctx, es.Command[add]{AggregateID: "c1", Body: add{By: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if res.State.N != 31 || res.Position != 31 {
		t.Fatalf("after restart n=%d at %d, want 31 at 31", res.State.N, res.Position)
	}
}

// storedVersion is the version of the aggregate's snapshot in the KV bucket,
// 0 when there is none.
func storedVersion(t *testing.T, store *eventstore.Store, id string) uint64 {
	t.Helper()
	ctx := context.Background()
	kv, err := store.JetStream().KeyValue(ctx, es.SnapshotBucket)
	if err != nil {
		t.Fatal(err)
	}
	entry, err := kv.Get(ctx, "test.counter."+id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	var snap struct {
		Version uint64 `json:"v"`
	}
	if err := json.Unmarshal(entry.Value(), &snap); err != nil {
		t.Fatal(err)
	}
	return snap.Version
}

func TestSnapshotsAreWrittenBehindCommands(t *testing.T) {
	ctx := context.Background()
	n := testkit.StartNATS(t)
	store := n.Store()
	// An interval longer than the test: only Flush and eviction write.
	r := newRunner(t, store, es.WithSnapshotInterval(time.Hour), es.WithCacheSize(2))
	one := es.Command[add]{AggregateID: "c1", Body: add{By: 1}}
	for range 5 {
		if _, err := r.Handle(ctx, one); err != nil {
			t.Fatal(err)
		}
	}
	if v := storedVersion(t, store, "c1"); v != 0 {
		t.Fatalf("snapshot at %d before any flush, want none", v)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if v := storedVersion(t, store, "c1"); v != 5 {
		t.Fatalf("snapshot at %d after Flush, want 5", v)
	}

	// c1 changes again and leaves the cache when two others come in: it is
	// written on its way out, and only then.
	if _, err := r.Handle(ctx, one); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"c2", "c3"} {
		if _, err := r.Handle(ctx, es.Command[add]{AggregateID: id, Body: add{By: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Flush(ctx); err != nil { // waits for the acks; c2, c3 are written too
		t.Fatal(err)
	}
	if v := storedVersion(t, store, "c1"); v != 6 {
		t.Fatalf("snapshot of evicted c1 at %d, want 6", v)
	}
}

func TestSnapshotsAreWrittenWithinTheInterval(t *testing.T) {
	ctx := context.Background()
	n := testkit.StartNATS(t)
	store := n.Store()
	r := newRunner(t, store, es.WithSnapshotInterval(20*time.Millisecond))
	for range 3 {
		if _, err := r.Handle(ctx, es.Command[add]{AggregateID: "c1", Body: add{By: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for storedVersion(t, store, "c1") != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("snapshot at %d after 5 s, want 3", storedVersion(t, store, "c1"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A refusal or a no-op appends nothing, so no version check guards it: the
// runner decides it again on the stream's latest state before answering
// from a cache another instance has moved on from.
func TestStaleCacheNeverDecidesARefusalOrANoOp(t *testing.T) {
	ctx := context.Background()
	n := testkit.StartNATS(t)
	a, b := newRunner(t, n.Store()), newRunner(t, n.Store())
	handle := func(r *es.Runner[counter, add], by int64) (es.Result[counter], error) {
		return r.Handle(ctx, es.Command[add]{AggregateID: "c1", Body: add{By: by}})
	}
	if _, err := handle(a, 1); err != nil { // a caches n=1
		t.Fatal(err)
	}
	moved, err := handle(b, 5) // n=6, a does not know
	if err != nil {
		t.Fatal(err)
	}
	// On a's cache (n=1) taking 3 would go below zero; on the stream (n=6) it is fine.
	res, err := handle(a, -3)
	if err != nil {
		t.Fatalf("refused on a stale cache: %v", err)
	}
	if res.State.N != 3 {
		t.Fatalf("n = %d, want 3", res.State.N)
	}
	if _, err := handle(b, 1); err != nil { // n=4 at a new version, a's cache behind again
		t.Fatal(err)
	}
	noop, err := handle(a, 0)
	if err != nil {
		t.Fatal(err)
	}
	if noop.State.N != 4 || noop.Position <= moved.Position+1 {
		t.Fatalf("no-op answered n=%d at %d, want the latest state n=4", noop.State.N, noop.Position)
	}
	// A refusal that holds on the latest state is still a refusal.
	if _, err := handle(a, -10); !errors.Is(err, errNegative) {
		t.Fatalf("got %v, want the domain error", err)
	}
}

// A client retries a command after more than the snapshot remembers, inside
// the stream's dedupe window: nothing is appended, the answer is a
// duplicate, and no instance's state counts the command twice.
func TestLateRetryIsADuplicateAndLeavesStateAlone(t *testing.T) {
	ctx := context.Background()
	n := testkit.StartNATS(t)
	r := newRunner(t, n.Store())
	cmd := func(id string) es.Command[add] {
		return es.Command[add]{ID: id, AggregateID: "c1", Body: add{By: 1}, Actor: event.Actor{Org: "cust"}}
	}
	first, err := r.Handle(ctx, cmd("x"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := r.Handle(ctx, cmd(fmt.Sprint("other-", i))); err != nil {
			t.Fatal(err)
		}
	}
	again, err := r.Handle(ctx, cmd("x"))
	if err != nil {
		t.Fatal(err)
	}
	if !again.Duplicate || again.Position != first.Position || again.State.N != 21 {
		t.Fatalf("late retry = duplicate %v at %d with n=%d; want a duplicate at %d, n=21", again.Duplicate, again.Position, again.State.N, first.Position)
	}
	next, err := r.Handle(ctx, cmd("y"))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	truth, _, _ := newRunner(t, n.Store(), es.WithoutSnapshots()).State(ctx, "c1")
	cold, _, _ := newRunner(t, n.Store()).State(ctx, "c1")
	if next.State.N != 22 || truth.N != 22 || cold.N != 22 {
		t.Fatalf("n = %d here, %d in the stream, %d from the snapshot; want 22", next.State.N, truth.N, cold.N)
	}
}

// Snapshots only save time: with the bucket gone, commands still work.
func TestCommandsWorkWithoutTheSnapshotBucket(t *testing.T) {
	ctx := context.Background()
	n := testkit.StartNATS(t)
	if _, err := newRunner(t, n.Store()).Handle(ctx, es.Command[add]{AggregateID: "c1", Body: add{By: 1}}); err != nil {
		t.Fatal(err)
	}
	cold := newRunner(t, n.Store())
	if err := n.Store().JetStream().DeleteKeyValue(ctx, es.SnapshotBucket); err != nil {
		t.Fatal(err)
	}
	res, err := cold.Handle(ctx, es.Command[add]{AggregateID: "c1", Body: add{By: 1}})
	if err != nil {
		t.Fatalf("command failed although the stream is fine: %v", err)
	}
	if res.State.N != 2 {
		t.Fatalf("n = %d, want 2", res.State.N)
	}
}

// A message on the aggregate's subject that is not an event moves its
// version: commands go on after it instead of conflicting for ever.
func TestAStrayMessageDoesNotBlockTheAggregate(t *testing.T) {
	ctx := context.Background()
	n := testkit.StartNATS(t)
	r := newRunner(t, n.Store())
	if _, err := r.Handle(ctx, es.Command[add]{AggregateID: "c1", Body: add{By: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Store().JetStream().Publish(ctx, event.Subject("test.counter", "c1"), []byte("stray")); err != nil {
		t.Fatal(err)
	}
	for _, runner := range []*es.Runner[counter, add]{r, newRunner(t, n.Store(), es.WithoutSnapshots())} {
		res, err := runner.Handle(ctx, es.Command[add]{AggregateID: "c1", Body: add{By: 1}})
		if err != nil {
			t.Fatalf("command after a stray message: %v", err)
		}
		if res.State.N < 2 {
			t.Fatalf("n = %d", res.State.N)
		}
	}
}
