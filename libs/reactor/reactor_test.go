package reactor_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/reactor"
	"github.com/jsmplatform/jsm/libs/testkit"
)

func appendValues(t *testing.T, store *eventstore.Store, agg string, values ...int64) []event.Event {
	t.Helper()
	var out []event.Event
	for _, v := range values {
		e, err := event.New(event.Envelope{ID: event.NewID(), AggregateType: "test.thing", AggregateID: agg, Time: time.Now()}, wrapperspb.Int64(v))
		if err != nil {
			t.Fatal(err)
		}
		version, err := store.Version(context.Background(), "test.thing", agg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Append(context.Background(), version, e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

type seen struct {
	mu     sync.Mutex
	values []int64
	ids    []string
	calls  map[int64]int
	done   chan struct{}
	want   int
}

func (s *seen) handle(fail int64) reactor.Handler {
	return func(_ context.Context, e event.Event, m proto.Message) error {
		v := m.(*wrapperspb.Int64Value).GetValue()
		s.mu.Lock()
		defer s.mu.Unlock()
		s.calls[v]++
		if v == fail {
			return errors.New("cannot handle this one")
		}
		s.values = append(s.values, v)
		s.ids = append(s.ids, e.ID)
		if len(s.values) == s.want {
			close(s.done)
		}
		return nil
	}
}

// run runs the reactor until the test ends or stop is called; stop
// returns once Run has.
func run(t *testing.T, r *reactor.Reactor) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	stop = sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("reactor: %v", err)
		}
	})
	t.Cleanup(stop)
	return stop
}

func TestEventsReachTheHandlerInOrderAndPoisonGoesToTheDeadLetterSubject(t *testing.T) {
	n := testkit.StartNATS(t)
	store := n.Store()
	evs := appendValues(t, store, "a", 1, 2, 3, 4)

	s := &seen{calls: map[int64]int{}, done: make(chan struct{}), want: 3}
	r, err := reactor.New(context.Background(), store, reactor.Config{
		Name: "test-reactions", Subjects: []string{event.Subject("test.thing", ">")}, MaxRetries: 2, InitialInterval: time.Millisecond,
	}, s.handle(2))
	if err != nil {
		t.Fatal(err)
	}
	run(t, r)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("handled %v", s.values)
	}
	s.mu.Lock()
	if got := s.values; len(got) != 3 || got[0] != 1 || got[1] != 3 || got[2] != 4 {
		t.Fatalf("handled %v, want 1 3 4 in order, the poison one left out", got)
	}
	if s.calls[2] != 3 {
		t.Fatalf("the failing event was tried %d times, want 1 + 2 retries", s.calls[2])
	}
	if s.ids[0] != evs[0].ID {
		t.Fatalf("event id %s, want %s", s.ids[0], evs[0].ID)
	}
	s.mu.Unlock()

	// The poison event is in the dead-letter stream, whole, with the reason.
	dlq, err := store.JetStream().Stream(context.Background(), reactor.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := dlq.GetLastMsgForSubject(context.Background(), reactor.DeadLetterSubject("test-reactions"))
	if err != nil {
		t.Fatal(err)
	}
	if msg.Header.Get(event.HeaderID) != evs[1].ID && msg.Header.Get("_watermill_message_uuid") != evs[1].ID {
		t.Fatalf("dead letter headers %v, want the event %s", msg.Header, evs[1].ID)
	}
	if reason := msg.Header.Get("reason_poisoned"); reason == "" {
		t.Fatalf("dead letter carries no reason: %v", msg.Header)
	}
	if !proto.Equal(mustDecode(t, msg.Data), wrapperspb.Int64(2)) {
		t.Fatal("dead letter does not carry the original body")
	}
}

func mustDecode(t *testing.T, data []byte) proto.Message {
	t.Helper()
	v := &wrapperspb.Int64Value{}
	if err := proto.Unmarshal(data, v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestARestartedReactorGoesOnWhereItStopped(t *testing.T) {
	n := testkit.StartNATS(t)
	store := n.Store()
	appendValues(t, store, "a", 1, 2)
	cfg := reactor.Config{Name: "restarting", Subjects: []string{event.Subject("test.thing", ">")}}

	first := &seen{calls: map[int64]int{}, done: make(chan struct{}), want: 2}
	r, err := reactor.New(context.Background(), store, cfg, first.handle(0))
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, r)
	<-first.done
	// Wait until the consumer has recorded both acks, then stop (an event
	// handled but not acked when the reactor stops comes again: handlers
	// are idempotent).
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := store.JetStream().Consumer(context.Background(), store.Name(), "restarting")
		if err == nil {
			info, err := c.Info(context.Background())
			if err == nil && info.AckFloor.Stream >= 2 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("acks not recorded")
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()

	appendValues(t, store, "b", 3)
	second := &seen{calls: map[int64]int{}, done: make(chan struct{}), want: 1}
	r, err = reactor.New(context.Background(), store, cfg, second.handle(0))
	if err != nil {
		t.Fatal(err)
	}
	run(t, r)
	select {
	case <-second.done:
	case <-time.After(20 * time.Second):
		t.Fatal("restarted reactor handled nothing")
	}
	second.mu.Lock()
	defer second.mu.Unlock()
	if len(second.values) != 1 || second.values[0] != 3 {
		t.Fatalf("restarted reactor handled %v, want only the new event 3", second.values)
	}
}

// Stopping reactors while events stream in must neither crash the process
// nor strand an event: whatever one instance left unacked, the next handles
// at once rather than after the consumer's AckWait.
func TestReactorsStoppedMidStreamLoseNothing(t *testing.T) {
	n := testkit.StartNATS(t)
	store := n.Store()
	cfg := reactor.Config{Name: "churning", Subjects: []string{event.Subject("test.thing", ">")}, AckWait: 2 * time.Second}
	const total = 60
	s := &seen{calls: map[int64]int{}, done: make(chan struct{}), want: -1}
	handled := func() map[int64]bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		got := map[int64]bool{}
		for v := range s.calls {
			got[v] = true
		}
		return got
	}
	for v := int64(1); v <= total; v++ {
		appendValues(t, store, "a", v)
		if v%10 == 0 {
			r, err := reactor.New(context.Background(), store, cfg, s.handle(0))
			if err != nil {
				t.Fatal(err)
			}
			stop := run(t, r)
			<-r.Running()
			time.Sleep(time.Duration(v%7) * time.Millisecond)
			stop()
		}
	}
	r, err := reactor.New(context.Background(), store, cfg, s.handle(0))
	if err != nil {
		t.Fatal(err)
	}
	run(t, r)
	deadline := time.Now().Add(20 * time.Second)
	for len(handled()) < total {
		if time.Now().After(deadline) {
			t.Fatalf("handled %d of %d events within 20s (AckWait is 2s: a stranded event)", len(handled()), total)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A handler may take longer than AckWait: the reactor keeps the event
// its own, so it is not delivered a second time meanwhile.
func TestASlowHandlerIsNotRedelivered(t *testing.T) {
	n := testkit.StartNATS(t)
	store := n.Store()
	appendValues(t, store, "a", 1, 2)
	s := &seen{calls: map[int64]int{}, done: make(chan struct{}), want: 2}
	handle := s.handle(0)
	r, err := reactor.New(context.Background(), store, reactor.Config{
		Name: "slow", Subjects: []string{event.Subject("test.thing", ">")}, AckWait: time.Second,
	}, func(ctx context.Context, e event.Event, m proto.Message) error {
		if m.(*wrapperspb.Int64Value).GetValue() == 1 {
			time.Sleep(3500 * time.Millisecond)
		}
		return handle(ctx, e, m)
	})
	if err != nil {
		t.Fatal(err)
	}
	run(t, r)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		t.Fatal("not handled")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.calls[1] != 1 || len(s.values) != 2 || s.values[0] != 1 {
		t.Fatalf("handled %v with %d calls of the slow one, want 1 2 and one call", s.values, s.calls[1])
	}
}

// Raw messages of another stream: a permanent error dead-letters its
// message at once, without retries; a transient one is tried again, also
// after the retries, until it passes, and never dead-lettered.
func TestRawMessagesWithPermanentAndTransientErrors(t *testing.T) {
	ctx := context.Background()
	n := testkit.StartNATS(t)
	store := n.Store()
	js := store.JetStream()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "TEST_RAW", Subjects: []string{"test.raw.>"}}); err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		calls = map[string]int{}
		ok    = make(chan string, 10)
	)
	r, err := reactor.NewMessages(ctx, store, reactor.Config{
		Name: "test-raw", Stream: "TEST_RAW", Subjects: []string{"test.raw.>"}, MaxRetries: 2, InitialInterval: time.Millisecond,
	}, func(_ context.Context, m reactor.Message) error {
		mu.Lock()
		calls[string(m.Data)]++
		n := calls[string(m.Data)]
		mu.Unlock()
		switch string(m.Data) {
		case "refused":
			return reactor.Permanent(errors.New("never"))
		case "flaky":
			if n < 6 { // more than the 1 + 2 tries of one delivery
				return reactor.Transient(errors.New("not yet"))
			}
		}
		if m.Subject == "" || m.Header.Get("X-Test") != "kept" {
			t.Errorf("message %q: subject %q, headers %v", m.Data, m.Subject, m.Header)
		}
		ok <- string(m.Data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	run(t, r)
	for _, data := range []string{"refused", "flaky", "fine"} {
		if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: "test.raw." + data, Data: []byte(data), Header: nats.Header{"X-Test": {"kept"}}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"flaky", "fine"} {
		select {
		case got := <-ok:
			if got != want {
				t.Fatalf("handled %q, want %q (in order)", got, want)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%q never handled", want)
		}
	}
	mu.Lock()
	if calls["refused"] != 1 {
		t.Errorf("the refused message was tried %d times, want once", calls["refused"])
	}
	mu.Unlock()
	dlq, err := js.Stream(ctx, reactor.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := dlq.GetLastMsgForSubject(ctx, reactor.DeadLetterSubject("test-raw"))
	if err != nil {
		t.Fatal(err)
	}
	if string(msg.Data) != "refused" || msg.Header.Get("X-Test") != "kept" || msg.Header.Get("reason_poisoned") == "" {
		t.Fatalf("dead letter %q %v", msg.Data, msg.Header)
	}
	if info, err := dlq.Info(ctx, jetstream.WithSubjectFilter(reactor.DeadLetterSubject("test-raw"))); err != nil || info.State.Msgs != 1 {
		t.Fatalf("dead letters of test-raw: %v %v, want 1", info, err)
	}
}

// A failure no retry can cure (here a body that does not decode) goes to
// the dead letters at once, without the retries, and the reactor goes on.
func TestDeterministicFailuresAreDeadLetteredAtOnce(t *testing.T) {
	n := testkit.StartNATS(t)
	store := n.Store()
	appendValues(t, store, "a", 1)
	bad, err := event.New(event.Envelope{ID: event.NewID(), AggregateType: "test.thing", AggregateID: "a", Time: time.Now()}, wrapperspb.Int64(2))
	if err != nil {
		t.Fatal(err)
	}
	bad.Data = []byte{0xff, 0xff, 0xff}
	if _, err := store.JetStream().PublishMsg(context.Background(), bad.Msg()); err != nil {
		t.Fatal(err)
	}
	appendValues(t, store, "a", 3)
	s := &seen{calls: map[int64]int{}, done: make(chan struct{}), want: 2}
	r, err := reactor.New(context.Background(), store, reactor.Config{
		Name: "test-reactions", Subjects: []string{event.Subject("test.thing", ">")}, MaxRetries: 3, InitialInterval: 2 * time.Second,
	}, s.handle(0))
	if err != nil {
		t.Fatal(err)
	}
	run(t, r)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second): // 3 retries would take 2+4+5 s
		t.Fatalf("handled %v: the undecodable event was retried", s.values)
	}
	dlq, err := store.JetStream().Stream(context.Background(), reactor.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := dlq.GetLastMsgForSubject(context.Background(), reactor.DeadLetterSubject("test-reactions"))
	if err != nil {
		t.Fatal(err)
	}
	if reason := msg.Header.Get("reason_poisoned"); !strings.Contains(reason, "undecodable") {
		t.Fatalf("dead-lettered with reason %q", reason)
	}
}
