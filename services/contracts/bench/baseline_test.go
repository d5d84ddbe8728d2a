package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/testkit"
)

// BenchmarkRawBaselines re-measures the raw figures of RECIPES.md on this
// machine: JetStream publishes (async with a window, sync, sync with the
// expected-last-subject-sequence header), the direct get of a subject's last
// message, and PostgreSQL commits of one row and upserts of 500.
//
// The PostgreSQL figures are of the test cluster (testkit: fsync and
// synchronous_commit off) unless JSM_TEST_PG_DSN names another server.
func BenchmarkRawBaselines(b *testing.B) {
	sz := benchSizes()
	ctx := context.Background()
	srv := testkit.StartNATS(b)
	store := srv.Store()
	nc := srv.Conn()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	const nsubjects = 10_000
	subjects := make([]string, nsubjects)
	for i := range subjects {
		subjects[i] = event.Subject("bench.raw", strconv.Itoa(i))
	}
	payload := make([]byte, 512)
	_, _ = rand.Read(payload)

	b.Run("jetstream/async-publish-window-4000", func(b *testing.B) {
		n := 5 * sz.Samples
		took := fillStream(b, srv.Conn(), n)
		b.ReportMetric(perSecond(n, took), "events/s")
	})

	last := make([]uint64, nsubjects)
	syncPublish := func(b *testing.B, expected bool) {
		lat := make([]time.Duration, sz.Samples)
		start := time.Now()
		for n := range sz.Samples {
			i := n % nsubjects
			m := &nats.Msg{Subject: subjects[i], Data: payload, Header: nats.Header{}}
			if expected {
				m.Header[jetstream.ExpectedLastSubjSeqHeader] = []string{strconv.FormatUint(last[i], 10)}
			}
			t0 := time.Now()
			ack, err := js.PublishMsg(ctx, m)
			lat[n] = time.Since(t0)
			if err != nil {
				b.Fatalf("publish %d: %v", n, err)
			}
			last[i] = ack.Sequence
		}
		reportLatencies(b, sz.Samples, time.Since(start), lat, "events/s")
	}
	b.Run("jetstream/sync-publish", func(b *testing.B) { syncPublish(b, false) })
	b.Run("jetstream/sync-publish-expected-seq", func(b *testing.B) { syncPublish(b, true) })

	b.Run("jetstream/direct-get-last-for-subject", func(b *testing.B) {
		stream, err := js.Stream(ctx, store.Name())
		if err != nil {
			b.Fatal(err)
		}
		published := min(nsubjects, sz.Samples) // the subjects the sync publishes wrote
		lat := make([]time.Duration, sz.Samples)
		start := time.Now()
		for n := range sz.Samples {
			t0 := time.Now()
			if _, err := stream.GetLastMsgForSubject(ctx, subjects[(n*7919)%published]); err != nil {
				b.Fatal(err)
			}
			lat[n] = time.Since(t0)
		}
		reportLatencies(b, sz.Samples, time.Since(start), lat, "gets/s")
	})

	pool := testkit.PostgresPool(b)
	if _, err := pool.Exec(ctx, `CREATE TABLE commits (id bigint PRIMARY KEY, payload text NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	row := fmt.Sprintf("%x", payload[:150]) // 300 B
	nextID := int64(0)
	for _, conns := range []int{1, 8} {
		b.Run(fmt.Sprintf("postgres/row-per-commit/conns=%d", conns), func(b *testing.B) {
			p := poolOf(b, pool, conns)
			n := sz.Samples / 4
			base := nextID
			nextID += int64(n)
			took, err := parallel(conns, n, func(k int) error {
				_, err := p.Exec(ctx, `INSERT INTO commits (id, payload) VALUES ($1, $2)`, base+int64(k), row)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(perSecond(n, took), "tx/s")
		})
	}

	b.Run("postgres/unnest-upsert-500-per-tx", func(b *testing.B) {
		if _, err := pool.Exec(ctx, `CREATE TABLE upserts (id text PRIMARY KEY, position bigint NOT NULL, payload text NOT NULL)`); err != nil {
			b.Fatal(err)
		}
		n := 5 * sz.Samples
		ids, positions, payloads := make([]string, 500), make([]int64, 500), make([]string, 500)
		start := time.Now()
		for done := 0; done < n; done += 500 {
			for j := range 500 {
				ids[j] = "aggregate-" + strconv.Itoa((done+j)%nsubjects)
				positions[j] = int64(done + j)
				payloads[j] = row
			}
			if _, err := pool.Exec(ctx, `
				INSERT INTO upserts (id, position, payload)
				SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[])
				ON CONFLICT (id) DO UPDATE SET position = excluded.position, payload = excluded.payload`,
				ids, positions, payloads); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(perSecond(n, time.Since(start)), "rows/s")
	})
}

// poolOf opens a pool of exactly conns connections to pool's database.
func poolOf(b *testing.B, pool *pgxpool.Pool, conns int) *pgxpool.Pool {
	b.Helper()
	cfg := pool.Config().Copy()
	cfg.MaxConns, cfg.MinConns = int32(conns), int32(conns)
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Close)
	if err := p.Ping(context.Background()); err != nil {
		b.Fatal(err)
	}
	return p
}

func reportLatencies(b *testing.B, n int, took time.Duration, lat []time.Duration, unit string) {
	slices.Sort(lat)
	b.ReportMetric(perSecond(n, took), unit)
	b.ReportMetric(micros(percentile(lat, 0.50)), "p50-µs")
	b.ReportMetric(micros(percentile(lat, 0.99)), "p99-µs")
}
