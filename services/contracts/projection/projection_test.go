package projection_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"

	"github.com/jsmplatform/jsm/libs/es"
	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/pgdb"
	"github.com/jsmplatform/jsm/libs/projection"
	"github.com/jsmplatform/jsm/libs/testkit"
	"github.com/jsmplatform/jsm/services/contracts"
	"github.com/jsmplatform/jsm/services/contracts/domain"
	readmodel "github.com/jsmplatform/jsm/services/contracts/projection"
)

func TestMain(m *testing.M) { testkit.Main(m) }

var ctx = context.Background()

// history writes n contracts' lifecycles, interleaved: draft, requirements,
// a contact, both signatures, then a new version with one more requirement.
func history(t *testing.T, store *eventstore.Store, n int) uint64 {
	t.Helper()
	r, err := es.NewRunner(ctx, store, contracts.Source, contracts.Decider(), es.WithoutSnapshots())
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	cmd := func(i int, org string, body domain.Command) {
		id := event.DeriveID("projection-test", i)
		if _, err := r.Handle(ctx, es.Command[domain.Command]{AggregateID: id, Body: body, Actor: event.Actor{Org: org, User: "u"}}); err != nil {
			t.Fatalf("contract %d: %v", i, err)
		}
	}
	actor := func(org string) domain.Actor { return domain.Actor{Org: domain.OrgID(org), User: "u"} }
	for i := range n {
		cust, prov := "cust-"+strconv.Itoa(i%3), "prov-"+strconv.Itoa(i%2)
		cmd(i, cust, domain.DraftContract{Actor: actor(cust), ContractID: domain.ContractID(event.DeriveID("projection-test", i)),
			Customer: domain.OrgID(cust), Provider: domain.OrgID(prov), Title: fmt.Sprintf("Contract %d", i)})
	}
	for step := range 6 {
		for i := range n {
			cust, prov := "cust-"+strconv.Itoa(i%3), "prov-"+strconv.Itoa(i%2)
			switch step {
			case 0, 1:
				cmd(i, cust, domain.AddRequirement{Actor: actor(cust), Requirement: domain.Requirement{ID: fmt.Sprintf("R%d", step), Text: "encrypt"}})
			case 2:
				cmd(i, prov, domain.AssignContact{Actor: actor(prov), Contact: domain.Contact{Org: domain.OrgID(prov), Role: "ciso", Name: "Bea"}})
			case 3:
				cmd(i, cust, domain.SignContract{Actor: actor(cust), At: at})
			case 4:
				cmd(i, prov, domain.SignContract{Actor: actor(prov), At: at})
			case 5:
				cmd(i, cust, domain.AddRequirement{Actor: actor(cust), Requirement: domain.Requirement{ID: "R9", Text: "report"}})
			}
		}
	}
	last, err := store.LastPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return last
}

func newProjector(t *testing.T, store *eventstore.Store, pool *pgxpool.Pool, h *readmodel.Contracts, hooks projection.Hooks) *projection.Projector {
	t.Helper()
	p, err := projection.New(projection.Config{Name: "contracts", Schema: readmodel.Schema, BatchSize: 16, CatchUpBatchSize: 16, Hooks: hooks}, h, store, pool)
	if err != nil {
		t.Fatal(err)
	}
	if err := pgdb.Migrate(ctx, pool, readmodel.Schema, readmodel.Migrations(), nil); err != nil {
		t.Fatal(err)
	}
	if err := p.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return p
}

// run runs p until the test ends; wait returns Run's result once it ended.
func run(t *testing.T, p *projection.Projector) (wait func() error) {
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	var err error
	go func() { err = p.Run(runCtx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return func() error { <-done; return err }
}

func dump(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var s string
	err := pool.QueryRow(ctx, `SELECT coalesce(string_agg(concat_ws('|', contract_id, customer_org_id, provider_org_id, title, status, phase, md5(view), position, created_at, updated_at), E'\n' ORDER BY contract_id), '') FROM contracts.contracts`).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// caughtUp waits until every projector has applied position last.
func caughtUp(t *testing.T, last uint64, ps ...*projection.Projector) {
	t.Helper()
	for _, p := range ps {
		if err := p.WaitFor(ctx, last, 20*time.Second); err != nil {
			t.Fatal(err)
		}
	}
}

// sameRows fails the test when pool's read model is not want.
func sameRows(t *testing.T, pool *pgxpool.Pool, want string) {
	t.Helper()
	if got := dump(t, pool); got != want {
		t.Fatalf("read model differs:\n%s\nwant\n%s", got, want)
	}
}

// reference is the read model one projector with an empty cache builds in a
// database of its own.
func reference(t *testing.T, store *eventstore.Store, last uint64) (string, *pgxpool.Pool) {
	t.Helper()
	pool := testkit.PostgresPool(t)
	p := newProjector(t, store, pool, readmodel.NewContracts(0), projection.Hooks{})
	run(t, p)
	caughtUp(t, last, p)
	return dump(t, pool), pool
}

// The read model is the same whatever the cache knew: with a cache too small
// to hold anything, with two instances writing the same rows with caches of
// their own, and after a transaction that filled the cache rolled back.
func TestReadModelDoesNotDependOnTheCache(t *testing.T) {
	nats := testkit.StartNATS(t)
	store := nats.Store()
	last := history(t, store, 40)
	want, _ := reference(t, store, last)
	if want == "" {
		t.Fatal("the reference read model is empty")
	}

	t.Run("cache of one", func(t *testing.T) {
		pool := testkit.PostgresPool(t)
		p := newProjector(t, store, pool, readmodel.NewContracts(1), projection.Hooks{})
		run(t, p)
		caughtUp(t, last, p)
		sameRows(t, pool, want)
	})

	t.Run("two instances", func(t *testing.T) {
		pool := testkit.PostgresPool(t)
		a := newProjector(t, store, pool, readmodel.NewContracts(0), projection.Hooks{})
		b := newProjector(t, store, pool, readmodel.NewContracts(0), projection.Hooks{})
		run(t, a)
		run(t, b)
		caughtUp(t, last, a, b)
		sameRows(t, pool, want)
	})

	t.Run("rolled back batches", func(t *testing.T) {
		pool := testkit.PostgresPool(t)
		h := readmodel.NewContracts(0)
		// Each run fails before the commit of its third batch, after the
		// handler has prepared it (and maybe the next one): the same handler
		// goes on after each failure, its cache ahead of the table.
		errCrash := errors.New("crash")
		var runs int
		for pos := uint64(0); pos+48 < last; runs++ {
			var mu sync.Mutex
			batches := 0
			p := newProjector(t, store, pool, h, projection.Hooks{BeforeCommit: func(uint64) error {
				mu.Lock()
				defer mu.Unlock()
				if batches++; batches == 3 {
					return errCrash
				}
				return nil
			}})
			if err := run(t, p)(); !errors.Is(err, errCrash) {
				t.Fatalf("run ended with %v at %d, want the injected crash", err, p.Position())
			}
			if p.Position() <= pos {
				t.Fatalf("no progress from %d", pos)
			}
			pos = p.Position()
		}
		p := newProjector(t, store, pool, h, projection.Hooks{})
		run(t, p)
		caughtUp(t, last, p)
		t.Logf("%d runs ended by a failed commit", runs)
		sameRows(t, pool, want)
	})
}

// Row-level security backs up the queries' own org filter: a query on
// behalf of an org that names no org sees only that org's contracts.
func TestRowLevelSecurityShowsOnlyTheOrgsContracts(t *testing.T) {
	nats := testkit.StartNATS(t)
	store := nats.Store()
	last := history(t, store, 12) // customers cust-0..2 (i%3), providers prov-0..1 (i%2)
	_, pool := reference(t, store, last)
	for org, want := range map[string]int{"cust-0": 4, "cust-2": 4, "prov-1": 6, "nobody": 0} {
		var n int
		err := pgdb.ReadAs(ctx, pool, readmodel.Schema, org, `SELECT count(*) FROM contracts.contracts`, nil, func(rows pgx.Rows) error {
			for rows.Next() {
				if err := rows.Scan(&n); err != nil {
					return err
				}
			}
			return rows.Err()
		})
		if err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("%s sees %d contracts, want %d", org, n, want)
		}
	}
	var all int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM contracts.contracts`).Scan(&all); err != nil || all != 12 {
		t.Fatalf("the owner sees %d contracts (%v), want 12", all, err)
	}
}

// The projector prepares the next batch while one commits, so the cache can
// hold a contract from beyond the batch being applied, e.g. when that batch
// was trimmed because another instance applied part of it. Neither Prepare
// nor Apply may take such a cached state for the batch's starting point.
func TestCacheAheadOfTheBatchIsNotTrusted(t *testing.T) {
	store := testkit.StartNATS(t).Store()
	last := history(t, store, 1)
	want, _ := reference(t, store, last)
	events, err := store.Load(ctx, readmodel.AggregateType, event.DeriveID("projection-test", 0), 0)
	if err != nil || len(events) != 7 {
		t.Fatalf("%d events, %v; want 7", len(events), err)
	}
	pool := testkit.PostgresPool(t)
	if err := pgdb.Migrate(ctx, pool, readmodel.Schema, readmodel.Migrations(), nil); err != nil {
		t.Fatal(err)
	}
	apply := func(h *readmodel.Contracts, batch []event.Event) {
		t.Helper()
		if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return h.Apply(ctx, tx, batch) }); err != nil {
			t.Fatal(err)
		}
	}
	h := readmodel.NewContracts(0)
	apply(h, events[:3])
	// Batches n (events 4, 5) and n+1 (6, 7) are prepared: the cache is at 7.
	for _, batch := range [][]event.Event{events[3:5], events[5:7]} {
		if _, err := h.Prepare(batch); err != nil {
			t.Fatal(err)
		}
	}
	apply(readmodel.NewContracts(0), events[3:4]) // another instance applies 4
	apply(h, events[4:5])                         // the rest of batch n
	// Batch n+1 prepared again, as after a restart, and applied prepared.
	prepared, err := h.Prepare(events[5:7])
	if err != nil {
		t.Fatal(err)
	}
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return prepared.Apply(ctx, tx) }); err != nil {
		t.Fatal(err)
	}
	sameRows(t, pool, want)
}

// A rebuild started by one instance moves the checkpoint back under another
// instance's feet; the other must start again from there, not leave a hole.
func TestRebuildByAnotherInstanceLeavesNoHole(t *testing.T) {
	store := testkit.StartNATS(t).Store()
	last := history(t, store, 40)
	pool := testkit.PostgresPool(t)
	a := newProjector(t, store, pool, readmodel.NewContracts(0), projection.Hooks{})
	slow := projection.Hooks{BeforeCommit: func(uint64) error { time.Sleep(10 * time.Millisecond); return nil }}
	b := newProjector(t, store, pool, readmodel.NewContracts(0), slow)
	run(t, a)
	run(t, b)
	caughtUp(t, last, a, b)
	if err := b.Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond) // b replays slowly; a gets new events meanwhile
	r, err := es.NewRunner(ctx, store, contracts.Source, contracts.Decider(), es.WithoutSnapshots())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		id := event.DeriveID("after-rebuild", i)
		draft := domain.DraftContract{Actor: domain.Actor{Org: "cust-0", User: "u"}, ContractID: domain.ContractID(id), Customer: "cust-0", Provider: "prov-0", Title: fmt.Sprint("new ", i)}
		if _, err := r.Handle(ctx, es.Command[domain.Command]{AggregateID: id, Body: draft, Actor: event.Actor{Org: "cust-0", User: "u"}}); err != nil {
			t.Fatal(err)
		}
	}
	if last, err = store.LastPosition(ctx); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, last, a, b)
	want, _ := reference(t, store, last)
	if got := dump(t, pool); got != want {
		t.Fatalf("read model differs after a rebuild on another instance:\n%s\nwant\n%s", got, want)
	}
}

// Two instances projecting while commands arrive, in bursts, on few
// contracts: every row ends as a single projector would have it.
func TestTwoInstancesWhileCommandsArrive(t *testing.T) {
	for _, size := range []int{0, 2} {
		t.Run(fmt.Sprintf("remembering %d", size), func(t *testing.T) { twoInstancesWhileCommandsArrive(t, size) })
	}
}

func twoInstancesWhileCommandsArrive(t *testing.T, size int) {
	store := testkit.StartNATS(t).Store()
	pool := testkit.PostgresPool(t)
	a := newProjector(t, store, pool, readmodel.NewContracts(size), projection.Hooks{})
	b := newProjector(t, store, pool, readmodel.NewContracts(size), projection.Hooks{})
	run(t, a)
	run(t, b)
	last := history(t, store, 3)
	r, err := es.NewRunner(ctx, store, contracts.Source, contracts.Decider())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 3 {
		id := event.DeriveID("projection-test", i)
		cust := "cust-" + strconv.Itoa(i%3)
		for k := range 40 {
			wg.Go(func() {
				req := domain.AddRequirement{Actor: domain.Actor{Org: domain.OrgID(cust), User: "u"}, Requirement: domain.Requirement{ID: fmt.Sprintf("L-%d", k), Text: "live"}}
				if _, err := r.Handle(ctx, es.Command[domain.Command]{AggregateID: id, Body: req, Actor: event.Actor{Org: cust, User: "u"}}); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	if last, err = store.LastPosition(ctx); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, last, a, b)
	want, refPool := reference(t, store, last)
	if got := dump(t, pool); got != want {
		t.Fatalf("read model differs:\n%s\nwant\n%s", views(t, pool), views(t, refPool))
	}
}

// views prints every stored contract, for a failure's diff.
func views(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	rows, err := pool.Query(ctx, `SELECT view FROM contracts.contracts ORDER BY contract_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out strings.Builder
	for rows.Next() {
		var v []byte
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		var m contractsv1.Contract
		if err := proto.Unmarshal(v, &m); err != nil {
			t.Fatal(err)
		}
		out.WriteString(prototext.Format(&m) + "----\n")
	}
	return out.String()
}
