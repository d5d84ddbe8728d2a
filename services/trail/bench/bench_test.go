package bench

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/jsmplatform/jsm/libs/auth"
	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/testkit"
	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
	trailv1 "github.com/jsmplatform/jsm/proto/gen/jsm/trail/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/trail/v1/trailv1connect"
	"github.com/jsmplatform/jsm/services/trail"
	"github.com/jsmplatform/jsm/services/trail/app"
	"github.com/jsmplatform/jsm/services/trail/ledger"
	"github.com/jsmplatform/jsm/services/trail/projection"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func events() int {
	n := 1_000_000
	if testing.Short() {
		n = 20_000
	}
	if v, err := strconv.Atoi(strings.ReplaceAll(os.Getenv("JSM_BENCH_TRAIL_EVENTS"), "_", "")); err == nil && v > 0 {
		n = v
	}
	return n
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(strings.ReplaceAll(os.Getenv(name), "_", "")); err == nil && v > 0 {
		return v
	}
	return def
}

// contractsIn is how many contracts the events spread over: about 100
// events each, between 100 customers and one provider.
func contractsIn(n int) int { return max(1, n/100) }

// fill publishes n contract events with full envelopes, contracts
// interleaved, as fast as JetStream takes them.
func fill(b *testing.B, nc *nats.Conn, n int) []string {
	b.Helper()
	var failed atomic.Int64
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4000),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { failed.Add(1) }))
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, contractsIn(n))
	for i := range ids {
		ids[i] = event.NewID()
	}
	start := time.Now()
	base := time.Now().Add(-time.Hour)
	for i := range n {
		c := i % len(ids)
		var msg *contractsv1.RequirementAdded = &contractsv1.RequirementAdded{
			ContractId: ids[c], TermsVersion: 1,
			Requirement: &contractsv1.Requirement{RequirementId: "REQ-" + strconv.Itoa(i), StandardReference: "ISO27001:2022 A.5.20", Text: "Supplier agreements address information security"},
		}
		customer := "customer-" + strconv.Itoa(c%100)
		e, err := event.New(event.Envelope{
			ID: event.NewID(), Source: "/jsm/contracts", AggregateType: "contracts.contract", AggregateID: ids[c], Contract: ids[c],
			Parties: event.Parties{Customer: customer, Provider: "itsec"}, Actor: event.Actor{Org: customer, User: "alice", Role: "org-admin"},
			Time: base.Add(time.Duration(i) * time.Millisecond), Correlation: "corr-" + strconv.Itoa(i/10),
		}, msg)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := js.PublishMsgAsync(e.Msg(), jetstream.WithStallWait(10*time.Second)); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(5 * time.Minute):
		b.Fatal("acks missing after 5 minutes")
	}
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d publishes failed", f)
	}
	b.Logf("stream filled with %d events of %d contracts in %v", n, len(ids), time.Since(start).Round(time.Millisecond))
	return ids
}

// rawRead reads the whole stream with an ordered consumer, decoding each
// message's envelope: the least any consumer of the stream does.
func rawRead(ctx context.Context, js jetstream.JetStream, stream string, last uint64) (time.Duration, error) {
	start := time.Now()
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return 0, err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(4000))
	if err != nil {
		return 0, err
	}
	defer it.Stop()
	for {
		m, err := it.Next()
		if err != nil {
			return 0, err
		}
		md, err := m.Metadata()
		if err != nil {
			return 0, err
		}
		if _, err := event.FromMsg(&nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()}, md.Sequence.Stream); err != nil {
			return 0, err
		}
		if md.Sequence.Stream >= last {
			return time.Since(start), nil
		}
	}
}

func perSecond(n uint64, d time.Duration) float64 { return float64(n) / d.Seconds() }

func BenchmarkTrail(b *testing.B) {
	ctx := context.Background()
	n := events()
	srv := testkit.StartNATS(b)
	store := srv.Store()
	ids := fill(b, srv.Conn(), n)
	last, err := store.LastPosition(ctx)
	if err != nil {
		b.Fatal(err)
	}
	pool := testkit.PostgresPool(b)

	var rawRate float64
	b.Run("raw-ordered-consumer-read", func(b *testing.B) {
		took, err := rawRead(ctx, store.JetStream(), store.Name(), last)
		if err != nil {
			b.Fatal(err)
		}
		rawRate = perSecond(last, took)
		b.ReportMetric(rawRate, "events/s")
		b.Logf("raw ordered consumer: %d events in %v: %.0f events/s", last, took.Round(time.Millisecond), rawRate)
	})

	skey, _, err := ledger.GenerateKey(trail.Origin)
	if err != nil {
		b.Fatal(err)
	}
	svc, err := trail.New(trail.Deps{Store: store, Pool: pool, SigningKey: skey, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), CheckpointInterval: time.Hour, CheckpointEvery: 1 << 40,
		CatchUpBatchSize: envInt("JSM_BENCH_TRAIL_BATCH", 0)})
	if err != nil {
		b.Fatal(err)
	}
	if err := svc.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	defer func() { cancel(); <-done }()
	var root string
	b.Run("ours-build-log", func(b *testing.B) {
		start := time.Now()
		go func() { done <- svc.Run(runCtx) }()
		root = built(b, svc, pool, last, start, rawRate, "trail log built")
	})

	b.Run("ours-rebuild", func(b *testing.B) {
		start := time.Now()
		if err := svc.Projector().Rebuild(ctx); err != nil {
			b.Fatal(err)
		}
		if got := built(b, svc, pool, last, start, rawRate, "trail rebuilt"); got != root {
			b.Fatalf("root after rebuild %s, before %s", got, root)
		}
	})

	b.Run("ours-replay-app", func(b *testing.B) {
		start := time.Now()
		var got uint64
		err := svc.App().Replay(ctx, "itsec", app.Filter{}, 0, func(rows []projection.Row) error { got += uint64(len(rows)); return nil })
		if err != nil || got != last {
			b.Fatalf("replayed %d of %d: %v", got, last, err)
		}
		took := time.Since(start)
		rate := perSecond(last, took)
		b.ReportMetric(rate, "events/s")
		b.ReportMetric(rate/rawRate, "ratio")
		b.Logf("replay of every event (PostgreSQL, org-scoped, rows decoded): %.0f events/s, %.2f of raw", rate, rate/rawRate)
	})

	client, token := serve(b, svc)
	b.Run("ours-replay-connect", func(b *testing.B) {
		start := time.Now()
		req := connect.NewRequest(&trailv1.ReplayEventsRequest{})
		req.Header().Set("Authorization", "Bearer "+token)
		stream, err := client.ReplayEvents(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		var got uint64
		for stream.Receive() {
			got += uint64(len(stream.Msg().Events))
		}
		if err := stream.Err(); err != nil || got != last {
			b.Fatalf("replayed %d of %d: %v", got, last, err)
		}
		took := time.Since(start)
		rate := perSecond(last, took)
		b.ReportMetric(rate, "events/s")
		b.ReportMetric(rate/rawRate, "ratio")
		b.Logf("ReplayEvents through Connect (events rendered as protojson): %.0f events/s, %.2f of raw", rate, rate/rawRate)
	})

	b.Run("SearchEvents-one-contract", func(b *testing.B) {
		const samples = 1000
		lat := make([]time.Duration, 0, samples)
		rng := rand.New(rand.NewPCG(1, 2))
		for range samples {
			id := ids[rng.IntN(len(ids))]
			req := connect.NewRequest(&trailv1.SearchEventsRequest{ContractId: id, PageSize: 100})
			req.Header().Set("Authorization", "Bearer "+token)
			start := time.Now()
			res, err := client.SearchEvents(ctx, req)
			lat = append(lat, time.Since(start))
			if err != nil {
				b.Fatal(err)
			}
			if len(res.Msg.Events) == 0 {
				b.Fatalf("no events of contract %s", id)
			}
		}
		slices.Sort(lat)
		p := func(q float64) time.Duration { return lat[int(q*float64(len(lat)-1))] }
		b.ReportMetric(float64(p(0.5).Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(p(0.99).Microseconds())/1000, "p99-ms")
		b.Logf("SearchEvents, one contract's %d events (page of 100) in a trail of %d: p50 %v, p99 %v, max %v",
			n/len(ids), last, p(0.5), p(0.99), lat[len(lat)-1])
	})
}

// built waits until the trail has every event and then its search
// indexes, reports both rates and returns the tree's root.
func built(b *testing.B, svc *trail.Service, pool *pgxpool.Pool, last uint64, start time.Time, rawRate float64, what string) string {
	ctx := context.Background()
	if err := svc.Projector().WaitFor(ctx, last, 30*time.Minute); err != nil {
		b.Fatal(err)
	}
	took := time.Since(start)
	indexed := waitIndexes(b, pool).Sub(start)
	rate, rateIndexed := perSecond(last, took), perSecond(last, indexed)
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(rate/rawRate, "ratio")
	b.ReportMetric(rateIndexed, "events/s-indexed")
	b.ReportMetric(rateIndexed/rawRate, "ratio-indexed")
	b.Logf("%s (entries, tlog hashes, checkpoint per batch): %d events in %v: %.0f events/s, %.2f of raw (target >= 0.5); with its search indexes built after: %v, %.0f events/s, %.2f of raw",
		what, last, took.Round(time.Millisecond), rate, rate/rawRate, indexed.Round(time.Millisecond), rateIndexed, rateIndexed/rawRate)
	root, err := tlog.TreeHash(int64(last), projection.HashReader(ctx, pool))
	if err != nil {
		b.Fatal(err)
	}
	return root.String()
}

// waitIndexes waits until the search indexes are built and says when.
func waitIndexes(b *testing.B, pool *pgxpool.Pool) time.Time {
	for {
		missing, err := projection.MissingIndexes(context.Background(), pool)
		if err != nil {
			b.Fatal(err)
		}
		if !missing {
			return time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serve mounts the trail behind the production interceptors and returns a
// client and a token of the provider, a party to every contract.
func serve(b *testing.B, svc *trail.Service) (trailv1connect.TrailServiceClient, string) {
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		b.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.VerifierConfig{Issuer: auth.DevIssuer, Audience: auth.DevAudience, Keys: []crypto.PublicKey{pub}})
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	for _, h := range svc.Handlers(connect.WithInterceptors(auth.NewInterceptor(v, svc.Policy()))) {
		mux.Handle(h.Path, h.Handler)
	}
	srv := httptest.NewServer(mux)
	b.Cleanup(srv.Close)
	tok, err := auth.Mint(key, auth.DevIssuer, auth.DevAudience, auth.Principal{Org: "itsec", User: "ana", Roles: []string{"auditor"}}, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	return trailv1connect.NewTrailServiceClient(http.DefaultClient, srv.URL), fmt.Sprint(tok)
}
