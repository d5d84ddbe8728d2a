package projection_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/projection"
	"github.com/jsmplatform/jsm/libs/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// seen records every applied event; no key, so a duplicate would show.
type seen struct{}

func (seen) Apply(ctx context.Context, tx pgx.Tx, events []event.Event) error {
	rows := make([][]any, len(events))
	for i, e := range events {
		rows[i] = []any{int64(e.Position), e.ID, e.AggregateID}
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"t", "seen"}, []string{"position", "event_id", "aggregate_id"}, pgx.CopyFromRows(rows))
	return err
}

func (seen) Reset(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `TRUNCATE t.seen`)
	return err
}

// preparer is seen as a Preparer: rows are built before the transaction.
type preparer struct {
	seen
	forgets atomic.Int64
}

func (p *preparer) Prepare(events []event.Event) (projection.Prepared, error) {
	rows := make(preparedRows, len(events))
	for i, e := range events {
		rows[i] = []any{int64(e.Position), e.ID, e.AggregateID}
	}
	return rows, nil
}

func (p *preparer) Forget() { p.forgets.Add(1) }

type preparedRows [][]any

func (r preparedRows) Queue(b *pgx.Batch) bool {
	positions, ids, aggregates := make([]int64, len(r)), make([]string, len(r)), make([]string, len(r))
	for i, row := range r {
		positions[i], ids[i], aggregates[i] = row[0].(int64), row[1].(string), row[2].(string)
	}
	b.Queue(`INSERT INTO t.seen SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[])`, positions, ids, aggregates)
	return true
}

func (r preparedRows) Apply(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"t", "seen"}, []string{"position", "event_id", "aggregate_id"}, pgx.CopyFromRows(r))
	return err
}

type fixture struct {
	store    *eventstore.Store
	pool     *pgxpool.Pool
	prepared bool // projectors use a Preparer
}

// kinds runs a test with a plain handler and with a Preparer.
func kinds(t *testing.T, test func(t *testing.T, prepared bool)) {
	for _, prepared := range []bool{false, true} {
		t.Run(map[bool]string{false: "handler", true: "preparer"}[prepared], func(t *testing.T) { test(t, prepared) })
	}
}

func setup(t *testing.T, events int, prepared bool) fixture {
	t.Helper()
	ctx := context.Background()
	f := fixture{store: testkit.StartNATS(t).Store(), pool: testkit.PostgresPool(t), prepared: prepared}
	if _, err := f.pool.Exec(ctx, `CREATE SCHEMA t; CREATE TABLE t.seen (position bigint NOT NULL, event_id text NOT NULL, aggregate_id text NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	f.append(t, events)
	return f
}

func (f fixture) append(t *testing.T, n int) {
	t.Helper()
	for i := range n {
		e, err := event.New(event.Envelope{ID: event.NewID(), AggregateType: "test.thing", AggregateID: fmt.Sprintf("a%d", i%37), Time: time.Now()}, wrapperspb.Int64(int64(i)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.store.JetStream().PublishMsg(context.Background(), e.Msg()); err != nil {
			t.Fatal(err)
		}
	}
}

func (f fixture) projector(t *testing.T, hooks projection.Hooks) *projection.Projector {
	t.Helper()
	var h projection.Handler = seen{}
	if f.prepared {
		h = &preparer{}
	}
	p, err := projection.New(projection.Config{Name: "seen", Schema: "t", BatchSize: 64, Hooks: hooks}, h, f.store, f.pool)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return p
}

// start runs p until the test ends and returns a wait for Run's result.
func start(t *testing.T, p *projection.Projector) (wait func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var err error
	go func() { err = p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return func() error { <-done; return err }
}

// exactlyOnce checks that positions 1..n were each applied once.
func (f fixture) exactlyOnce(t *testing.T, n int) {
	t.Helper()
	var count, distinct, lo, hi int64
	err := f.pool.QueryRow(context.Background(), `SELECT count(*), count(DISTINCT position), coalesce(min(position),0), coalesce(max(position),0) FROM t.seen`).Scan(&count, &distinct, &lo, &hi)
	if err != nil {
		t.Fatal(err)
	}
	if count != int64(n) || distinct != int64(n) || lo != 1 || hi != int64(n) {
		t.Fatalf("applied %d rows, %d distinct, positions %d..%d; want each of 1..%d once", count, distinct, lo, hi, n)
	}
}

func TestProjectsEveryEventOnceAndWaitsForPositions(t *testing.T) {
	kinds(t, testProjectsEveryEventOnce)
}

func testProjectsEveryEventOnce(t *testing.T, prepared bool) {
	ctx := context.Background()
	f := setup(t, 500, prepared)
	p := f.projector(t, projection.Hooks{})
	start(t, p)
	if err := p.WaitFor(ctx, 500, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	f.exactlyOnce(t, 500)
	if p.Lag() != 0 {
		t.Fatalf("lag %d after catching up", p.Lag())
	}
	// A position the stream has not reached is refused at once.
	began := time.Now()
	if err := p.WaitFor(ctx, 501, 10*time.Second); !errors.Is(err, projection.ErrBeyondStream) || time.Since(began) > 5*time.Second {
		t.Fatalf("got %v after %v, want ErrBeyondStream at once", err, time.Since(began))
	}
	// A projector that does not run: the wait is bounded.
	idle, err := projection.New(projection.Config{Name: "idle", Schema: "t"}, seen{}, f.store, f.pool)
	if err != nil {
		t.Fatal(err)
	}
	if err := idle.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := idle.WaitFor(ctx, 500, 50*time.Millisecond); !errors.Is(err, projection.ErrNotCaughtUp) {
		t.Fatalf("got %v, want ErrNotCaughtUp", err)
	}
	f.append(t, 1)
	if err := p.WaitFor(ctx, 501, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	f.exactlyOnce(t, 501)
}

var errCrash = errors.New("crash")

func TestCrashAroundCommitLosesAndDuplicatesNothing(t *testing.T) {
	kinds(t, testCrashAroundCommit)
}

func testCrashAroundCommit(t *testing.T, prepared bool) {
	for _, tc := range []struct {
		name  string
		hooks func(crashAt uint64) projection.Hooks
	}{
		{"between apply and commit", func(at uint64) projection.Hooks {
			return projection.Hooks{BeforeCommit: func(last uint64) error {
				if last >= at {
					return errCrash
				}
				return nil
			}}
		}},
		{"between commit and ack", func(at uint64) projection.Hooks {
			return projection.Hooks{AfterCommit: func(last uint64) error {
				if last >= at {
					return errCrash
				}
				return nil
			}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := setup(t, 700, prepared)
			crashing := f.projector(t, tc.hooks(300))
			if err := start(t, crashing)(); !errors.Is(err, errCrash) {
				t.Fatalf("run ended with %v, want the injected crash", err)
			}
			// A new process picks up from the committed checkpoint.
			p := f.projector(t, projection.Hooks{})
			start(t, p)
			if err := p.WaitFor(ctx, 700, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			f.exactlyOnce(t, 700)
		})
	}
}

func TestTwoInstancesApplyEachEventOnce(t *testing.T) {
	kinds(t, testTwoInstances)
}

func testTwoInstances(t *testing.T, prepared bool) {
	ctx := context.Background()
	f := setup(t, 2000, prepared)
	a, b := f.projector(t, projection.Hooks{}), f.projector(t, projection.Hooks{})
	start(t, a)
	start(t, b)
	if err := a.WaitFor(ctx, 2000, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitFor(ctx, 2000, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	f.exactlyOnce(t, 2000)
}

func TestRebuildYieldsTheSameRows(t *testing.T) {
	kinds(t, testRebuild)
}

func testRebuild(t *testing.T, prepared bool) {
	ctx := context.Background()
	f := setup(t, 400, prepared)
	p := f.projector(t, projection.Hooks{})
	start(t, p)
	if err := p.WaitFor(ctx, 400, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	before := dump(t, f.pool)
	if err := p.Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitFor(ctx, 400, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if after := dump(t, f.pool); after != before {
		t.Fatalf("rebuild differs:\nbefore %s\nafter  %s", before, after)
	}
	f.exactlyOnce(t, 400)
}

func dump(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var s string
	if err := pool.QueryRow(context.Background(), `SELECT string_agg(position || ':' || event_id || ':' || aggregate_id, ',' ORDER BY position) FROM t.seen`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// Catching up, batches grow to CatchUpBatchSize (4 x 64 here) so that each
// row is written fewer times; caught up, a single new event is committed
// at once.
func TestBatchesGrowWhileBehind(t *testing.T) {
	kinds(t, func(t *testing.T, prepared bool) {
		ctx := context.Background()
		f := setup(t, 2048, prepared)
		var commits atomic.Int64
		p := f.projector(t, projection.Hooks{AfterCommit: func(uint64) error { commits.Add(1); return nil }})
		start(t, p)
		if err := p.WaitFor(ctx, 2048, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		// 2048 events in batches of 64 would take 32 commits.
		if n := commits.Load(); n > 16 {
			t.Fatalf("%d commits for 2048 events, want batches of up to 256", n)
		}
		f.exactlyOnce(t, 2048)
		f.append(t, 1)
		if err := p.WaitFor(ctx, 2049, 2*time.Second); err != nil {
			t.Fatal(err)
		}
	})
}

// A message in the stream that is not an event (no id, no type) cannot
// belong to any projection: it is passed over, not retried for ever.
func TestMessagesThatAreNotEventsArePassedOver(t *testing.T) {
	kinds(t, func(t *testing.T, prepared bool) {
		ctx := context.Background()
		f := setup(t, 10, prepared)
		if _, err := f.store.JetStream().Publish(ctx, "jsm.evt.test.thing.stray", []byte("not an event")); err != nil {
			t.Fatal(err)
		}
		f.append(t, 10)
		p := f.projector(t, projection.Hooks{})
		start(t, p)
		if err := p.WaitFor(ctx, 21, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		f.exactlyOnce(t, 21)
	})
}

// Run returns once its context ends, also while the reader is still
// delivering (catching up), so that a service can shut down.
func TestRunReturnsWhenCancelledWhileCatchingUp(t *testing.T) {
	f := setup(t, 3000, false)
	for i := range 30 {
		p := f.projector(t, projection.Hooks{})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		time.Sleep(time.Duration(5+i%10) * time.Millisecond)
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("round %d: Run ended with %v, want nil on a clean stop", i, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: Run did not return 5 s after its context ended (at %d)", i, p.Position())
		}
		if _, err := f.pool.Exec(context.Background(), `TRUNCATE t.seen; UPDATE t.checkpoints SET position = 0`); err != nil {
			t.Fatal(err)
		}
	}
}

// A shutdown that comes while a batch is being committed lets it commit:
// the rows and the checkpoint of the batch in hand are kept.
func TestShutdownCommitsTheBatchInHand(t *testing.T) {
	kinds(t, func(t *testing.T, prepared bool) {
		f := setup(t, 64, prepared)
		ctx, cancel := context.WithCancel(context.Background())
		var at atomic.Uint64
		p := f.projector(t, projection.Hooks{BeforeCommit: func(last uint64) error {
			if at.CompareAndSwap(0, last) {
				cancel() // SIGTERM arrives while the batch is on its way
			}
			return nil
		}})
		if err := p.Run(ctx); err != nil {
			t.Fatal(err)
		}
		var pos int64
		if err := f.pool.QueryRow(context.Background(), `SELECT position FROM t.checkpoints WHERE name = 'seen'`).Scan(&pos); err != nil {
			t.Fatal(err)
		}
		if pos != int64(at.Load()) || pos == 0 {
			t.Fatalf("checkpoint at %d after shutdown, want the batch in hand (%d) committed", pos, at.Load())
		}
		f.exactlyOnce(t, int(pos))
	})
}
