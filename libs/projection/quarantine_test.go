package projection_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/projection"
	"github.com/jsmplatform/jsm/libs/telemetry"
)

// publish appends one event of aggregate id straight to the stream, as
// anyone on the bus could, after edit has changed its envelope.
func (f fixture) publish(t *testing.T, id string, edit func(*event.Envelope)) {
	t.Helper()
	env := event.Envelope{ID: event.NewID(), AggregateType: "test.thing", AggregateID: id, Time: time.Now()}
	if edit != nil {
		edit(&env)
	}
	e, err := event.New(env, wrapperspb.Int64(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.JetStream().PublishMsg(context.Background(), e.Msg()); err != nil {
		t.Fatal(err)
	}
}

// poisoned sets up a stream of 30 events in which four can never be
// applied: position 5 is an event PostgreSQL refuses (a check constraint,
// SQLSTATE 23514), 12 one with a 6 kB correlation id, 20 one whose body
// does not decode, and 25 one that Admit refuses.
func poisoned(t *testing.T, prepared bool) (fixture, map[uint64]string) {
	f := setup(t, 4, prepared)
	if _, err := f.pool.Exec(context.Background(), `ALTER TABLE t.seen ADD CONSTRAINT no_poison CHECK (aggregate_id <> 'poison')`); err != nil {
		t.Fatal(err)
	}
	f.publish(t, "poison", nil) // 5
	f.append(t, 6)              // 6..11
	f.publish(t, "a1", func(e *event.Envelope) { e.Correlation = strings.Repeat("c", 6<<10) })
	f.append(t, 7) // 13..19
	e, _ := event.New(event.Envelope{ID: event.NewID(), AggregateType: "test.thing", AggregateID: "a2", Time: time.Now()}, wrapperspb.Int64(1))
	e.Type = "jsm.test.v1.NoSuchEvent"
	if _, err := f.store.JetStream().PublishMsg(context.Background(), e.Msg()); err != nil { // 20
		t.Fatal(err)
	}
	f.append(t, 4)               // 21..24
	f.publish(t, "refused", nil) // 25
	f.append(t, 5)               // 26..30
	return f, map[uint64]string{5: "no_poison", 12: "correlation", 20: "unknown type", 25: "refused"}
}

// decoding is seen, but it decodes every body first, as an area's
// projection does.
type decoding struct{ projection.Handler }

func (d decoding) Apply(ctx context.Context, tx pgx.Tx, events []event.Event) error {
	for _, e := range events {
		if e.ID == "" {
			continue
		}
		if _, err := e.Decode(); err != nil {
			return err
		}
	}
	return d.Handler.Apply(ctx, tx, events)
}

func (f fixture) quarantining(t *testing.T) *projection.Projector {
	t.Helper()
	var h projection.Handler = seen{}
	if f.prepared {
		h = &preparer{}
	}
	admit := func(e event.Event) error {
		if e.AggregateID == "refused" {
			return errors.New("no signer known")
		}
		return nil
	}
	p, err := projection.New(projection.Config{Name: "seen", Schema: "t", BatchSize: 64, Admit: admit}, decoding{h}, f.store, f.pool)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return p
}

// An event no retry can apply is set aside with its reason and the
// projection goes on with the next; only that event is missing from the
// read model, and a rebuild makes the same decisions.
func TestPoisonEventsAreQuarantinedAndTheProjectionGoesOn(t *testing.T) {
	kinds(t, func(t *testing.T, prepared bool) {
		ctx := context.Background()
		f, poison := poisoned(t, prepared)
		before := testutil.ToFloat64(telemetry.Quarantined.WithLabelValues("seen"))
		p := f.quarantining(t)
		start(t, p)
		if err := p.WaitFor(ctx, 30, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		checkQuarantine(t, f, poison)
		if got := testutil.ToFloat64(telemetry.Quarantined.WithLabelValues("seen")) - before; got < 4 {
			t.Fatalf("jsm_projection_quarantined_total rose by %v, want at least 4", got)
		}
		live := dump(t, f.pool)

		if err := p.Rebuild(ctx); err != nil {
			t.Fatal(err)
		}
		if err := p.WaitFor(ctx, 30, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if rebuilt := dump(t, f.pool); rebuilt != live {
			t.Fatalf("rebuild differs:\nlive    %s\nrebuilt %s", live, rebuilt)
		}
		checkQuarantine(t, f, poison)

		f.append(t, 1)
		if err := p.WaitFor(ctx, 31, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	})
}

// checkQuarantine checks that exactly the poison positions were set aside,
// for the expected reasons, and every other event applied once.
func checkQuarantine(t *testing.T, f fixture, poison map[uint64]string) {
	t.Helper()
	list, err := projection.ListQuarantine(context.Background(), f.pool, "t", "seen")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(poison) {
		t.Fatalf("quarantine holds %d events, want %d: %+v", len(list), len(poison), list)
	}
	for _, q := range list {
		want, ok := poison[q.Position]
		if !ok || !strings.Contains(q.Reason, want) {
			t.Errorf("quarantined %d for %q, want %q", q.Position, q.Reason, want)
		}
		if len(q.Reason) > 2000 {
			t.Errorf("reason of %d is %d bytes", q.Position, len(q.Reason))
		}
	}
	rows, err := f.pool.Query(context.Background(), `SELECT position FROM t.seen ORDER BY position`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	var want []int64
	for pos := int64(1); pos <= 30; pos++ {
		// A message set aside before the handler is carried as its
		// position only, which seen records like any other.
		if _, bad := poison[uint64(pos)]; !bad || pos == 12 || pos == 25 {
			want = append(want, pos)
		}
	}
	if !equal(got, want) {
		t.Fatalf("applied positions %v, want %v", got, want)
	}
}

func equal(a, b []int64) bool {
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

// flaky fails its first tries the way a dropped connection does.
type flaky struct {
	seen
	fails atomic.Int64
}

func (f *flaky) Apply(ctx context.Context, tx pgx.Tx, events []event.Event) error {
	if f.fails.Add(1) <= 3 {
		return errors.New("connection reset by peer")
	}
	return f.seen.Apply(ctx, tx, events)
}

// A failure that may pass is retried, never quarantined.
func TestTransientFailuresAreRetriedNotQuarantined(t *testing.T) {
	ctx := context.Background()
	f := setup(t, 20, false)
	p, err := projection.New(projection.Config{Name: "seen", Schema: "t"}, &flaky{}, f.store, f.pool)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	start(t, p)
	if err := p.WaitFor(ctx, 20, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	f.exactlyOnce(t, 20)
	if list, err := projection.ListQuarantine(ctx, f.pool, "t", ""); err != nil || len(list) != 0 {
		t.Fatalf("quarantine %+v, %v; want empty", list, err)
	}
}
