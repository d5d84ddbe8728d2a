package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jsmplatform/jsm/libs/es"
	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/pgdb"
	"github.com/jsmplatform/jsm/libs/projection"
	"github.com/jsmplatform/jsm/libs/testkit"
	"github.com/jsmplatform/jsm/services/contracts"
	readmodel "github.com/jsmplatform/jsm/services/contracts/projection"
)

// projectionBatch is the batch size of both projections.
const projectionBatch = 500

// BenchmarkProjectionThroughput compares the contracts projection
// (libs/projection with the contracts read model: events folded with the
// domain's Evolve into one row per contract, checkpoint in the same
// transaction) with a hand-written loop over the same stream: an ordered
// consumer, batches of 500, one unnest upsert of (aggregate, position, type,
// payload) and the checkpoint update per transaction.
//
//	raw/batch=500                       events/s
//	ours                                events/s as configured (batches of 500, up
//	                                    to 2000 while behind); ratio to raw/batch=500
//	                                    (target >= 0.7)
//	diagnostic/ours-batch=500           held to batches of 500; ratio to raw/batch=500
//	raw/batch=2000                      the raw loop with batches of 2000
//	diagnostic/ours-vs-raw-batch=2000   ours as configured; ratio to raw/batch=2000
func BenchmarkProjectionThroughput(b *testing.B) {
	sz := benchSizes()
	ctx := context.Background()
	srv := testkit.StartNATS(b)
	store := srv.Store()

	// Real events from the real decider: per contract a draft, 7
	// requirements and both signatures, contracts interleaved.
	r, err := es.NewRunner(ctx, store, contracts.Source, contracts.Decider(), es.WithoutSnapshots())
	if err != nil {
		b.Fatal(err)
	}
	f := newFleet("projection", max(1, sz.Projection/10))
	took, err := parallel(64, len(f.ids), func(i int) error { return f.lifecycle(ctx, r, i) })
	if err != nil {
		b.Fatalf("produce events: %v", err)
	}
	last, err := store.LastPosition(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("stream holds %d contract events of %d contracts (produced in %v)", last, len(f.ids), took)
	pool := testkit.PostgresPool(b)

	raw := func(batch int) float64 {
		var rate float64
		b.Run(fmt.Sprintf("raw/batch=%d", batch), func(b *testing.B) {
			traced, times := tracedPool(b, pool)
			stop := profile(b, fmt.Sprintf("projection-raw-%d", batch))
			took, err := rawProjection(ctx, store.JetStream(), store.Name(), traced, last, batch)
			stop()
			times.report(b, took)
			if err != nil {
				b.Fatal(err)
			}
			var rows int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM raw.latest`).Scan(&rows); err != nil {
				b.Fatal(err)
			}
			if rows != len(f.ids) {
				b.Fatalf("raw projection has %d rows, want %d", rows, len(f.ids))
			}
			rate = perSecond(int(last), took)
			b.ReportMetric(rate, "events/s")
		})
		return rate
	}
	ours := func(name string, cfg projection.Config, rawRate float64) {
		b.Run(name, func(b *testing.B) {
			if _, err := pool.Exec(ctx, `DROP SCHEMA IF EXISTS contracts CASCADE`); err != nil {
				b.Fatal(err)
			}
			if err := pgdb.Migrate(ctx, pool, readmodel.Schema, readmodel.Migrations(), nil); err != nil {
				b.Fatal(err)
			}
			traced, times := tracedPool(b, pool)
			var commits int
			cfg.Name, cfg.Schema = "contracts", readmodel.Schema
			cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
			cfg.Hooks = projection.Hooks{AfterCommit: func(uint64) error { commits++; return nil }}
			p, err := projection.New(cfg, readmodel.NewContracts(0), store, traced)
			if err != nil {
				b.Fatal(err)
			}
			if err := p.Migrate(ctx); err != nil {
				b.Fatal(err)
			}
			runCtx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			stop := profile(b, "projection-"+name)
			start := time.Now()
			go func() { done <- p.Run(runCtx) }()
			err = p.WaitFor(ctx, last, 10*time.Minute)
			took := time.Since(start)
			stop()
			cancel()
			if runErr := <-done; runErr != nil {
				b.Fatalf("run: %v", runErr)
			}
			times.report(b, took)
			if err != nil {
				b.Fatal(err)
			}
			var rows, active int
			if err := pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE status = 2) FROM contracts.contracts`).Scan(&rows, &active); err != nil {
				b.Fatal(err)
			}
			if rows != len(f.ids) || active != len(f.ids) {
				b.Fatalf("read model has %d contracts, %d active; want %d active", rows, active, len(f.ids))
			}
			rate := perSecond(int(last), took)
			b.ReportMetric(rate, "events/s")
			b.ReportMetric(float64(last)/float64(max(1, commits)), "events/tx")
			if rawRate > 0 {
				b.ReportMetric(rate/rawRate, "ratio")
				b.Logf("projection %s: %.0f events/s, raw %.0f events/s: ratio %.2f (target >= 0.7)", name, rate, rawRate, rate/rawRate)
			}
		})
	}

	// The target: ours as it runs (batches of 500, up to 2000 while behind)
	// against the raw loop's batches of 500. The diagnostics compare equal
	// batch sizes: ours held to 500 against the raw 500, ours against a raw
	// loop with batches of 2000.
	raw500 := raw(projectionBatch)
	ours("ours", projection.Config{BatchSize: projectionBatch}, raw500)
	ours(fmt.Sprintf("diagnostic/ours-batch=%d", projectionBatch), projection.Config{BatchSize: projectionBatch, CatchUpBatchSize: projectionBatch}, raw500)
	if _, err := pool.Exec(ctx, `DROP SCHEMA raw CASCADE`); err != nil {
		b.Fatal(err)
	}
	raw2000 := raw(4 * projectionBatch)
	ours(fmt.Sprintf("diagnostic/ours-vs-raw-batch=%d", 4*projectionBatch), projection.Config{BatchSize: projectionBatch}, raw2000)
}

// rawProjection is the hand-written baseline: ordered consumer from the
// start, batches of 500 events, each one unnest upsert of the latest event
// per aggregate plus the checkpoint, in one transaction, until position last.
func rawProjection(ctx context.Context, js jetstream.JetStream, stream string, pool *pgxpool.Pool, last uint64, batch int) (time.Duration, error) {
	if _, err := pool.Exec(ctx, `
		CREATE SCHEMA raw;
		CREATE TABLE raw.latest (
			aggregate_id text PRIMARY KEY,
			position     bigint NOT NULL,
			type         text   NOT NULL,
			payload      bytea  NOT NULL
		);
		CREATE TABLE raw.checkpoints (name text PRIMARY KEY, position bigint NOT NULL);
		INSERT INTO raw.checkpoints VALUES ('raw', 0)`); err != nil {
		return 0, err
	}
	start := time.Now()
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return 0, err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * batch))
	if err != nil {
		return 0, err
	}
	defer it.Stop()

	var (
		ids       = make([]string, 0, batch)
		positions = make([]int64, 0, batch)
		types     = make([]string, 0, batch)
		payloads  = make([][]byte, 0, batch)
		row       = make(map[string]int, batch) // one row per aggregate and statement
		inBatch   int
		pos       uint64
	)
	flush := func() error {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `
				INSERT INTO raw.latest (aggregate_id, position, type, payload)
				SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bytea[])
				ON CONFLICT (aggregate_id) DO UPDATE SET
					position = excluded.position, type = excluded.type, payload = excluded.payload`,
				ids, positions, types, payloads); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `UPDATE raw.checkpoints SET position = $1 WHERE name = 'raw'`, int64(pos))
			return err
		})
		ids, positions, types, payloads = ids[:0], positions[:0], types[:0], payloads[:0]
		clear(row)
		inBatch = 0
		return err
	}
	for pos < last {
		m, err := it.Next()
		if err != nil {
			return 0, err
		}
		md, err := m.Metadata()
		if err != nil {
			return 0, err
		}
		pos = md.Sequence.Stream
		h := m.Headers()
		id, typ := first(h[event.HeaderSubject]), first(h[event.HeaderType])
		if j, ok := row[id]; ok {
			positions[j], types[j], payloads[j] = int64(pos), typ, m.Data()
		} else {
			row[id] = len(ids)
			ids, positions, types, payloads = append(ids, id), append(positions, int64(pos)), append(types, typ), append(payloads, m.Data())
		}
		if inBatch++; inBatch == batch || pos >= last {
			if err := flush(); err != nil {
				return 0, fmt.Errorf("apply up to %d: %w", pos, err)
			}
		}
	}
	return time.Since(start), nil
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}
