package bench

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/pgdb"
	"github.com/jsmplatform/jsm/libs/testkit"
	"github.com/jsmplatform/jsm/services/trail/projection"
)

// BenchmarkApplyOnly appends synthetic events to the log without NATS:
// what the PostgreSQL side of building the log costs.
func BenchmarkApplyOnly(b *testing.B) {
	ctx := context.Background()
	pool := testkit.PostgresPool(b)
	if err := pgdb.Migrate(ctx, pool, projection.Schema, projection.Migrations(), nil); err != nil {
		b.Fatal(err)
	}
	if sql := os.Getenv("JSM_BENCH_APPLY_SQL"); sql != "" {
		if _, err := pool.Exec(ctx, sql); err != nil {
			b.Fatal(err)
		}
	}
	n := min(events(), 200_000)
	const batch = 5000
	payload := make([]byte, 150)
	start := time.Now()
	for i := 0; i < n; i += batch {
		evs := make([]event.Event, 0, batch)
		for j := i; j < i+batch && j < n; j++ {
			c := strconv.Itoa(j % 10000)
			evs = append(evs, event.Event{Envelope: event.Envelope{ID: event.NewID(), Type: "jsm.contracts.v1.RequirementAdded", Source: "/jsm/contracts",
				AggregateType: "contracts.contract", AggregateID: c, Contract: c, Parties: event.Parties{Customer: "customer-" + strconv.Itoa(j%100), Provider: "itsec"},
				Actor: event.Actor{Org: "itsec", User: "u", Role: "r"}, Time: time.Now(), Correlation: "corr-" + strconv.Itoa(j/10)}, Data: payload, Position: uint64(j + 1)})
		}
		t0 := time.Now()
		if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return projection.Log{}.Apply(ctx, tx, evs) }); err != nil {
			b.Fatal(err)
		}
		if i == 0 || i+batch >= n {
			b.Logf("batch at %d took %v", i, time.Since(t0))
		}
	}
	took := time.Since(start)
	b.ReportMetric(float64(n)/took.Seconds(), "events/s")
}
