package bench

import (
	"context"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/jsmplatform/jsm/libs/es"
	"github.com/jsmplatform/jsm/libs/testkit"
	"github.com/jsmplatform/jsm/services/contracts"
)

// BenchmarkCommandThroughput compares the es runner (load from its cache,
// decide, append one event with the expected version, save the snapshot)
// with raw JetStream publishes of the same event bytes with the
// expected-sequence header, sent without waiting, one pending per aggregate.
// Both go to distinct sets of the same number of aggregates in a stream that
// already holds sizes.Stream events.
//
//	raw                events/s
//	ours/callers=N     commands/s and ratio to raw, for each number of callers
//	ours/best          the best of them and its ratio (target >= 0.5)
func BenchmarkCommandThroughput(b *testing.B) {
	sz := benchSizes()
	ctx := context.Background()
	srv := testkit.StartNATS(b)
	store := srv.Store()

	took := fillStream(b, srv.Conn(), sz.Stream)
	b.Logf("stream filled with %d events in %v (%.0f events/s)", sz.Stream, took, perSecond(sz.Stream, took))

	r, err := es.NewRunner(ctx, store, contracts.Source, contracts.Decider())
	if err != nil {
		b.Fatal(err)
	}
	ours := newFleet("ours", sz.Aggregates)
	// Drafting loads every aggregate into the runner's cache: the warm steady
	// state of a running service.
	took, err = parallel(64, sz.Aggregates, func(i int) error { return ours.draft(ctx, r, i) })
	if err != nil {
		b.Fatalf("draft: %v", err)
	}
	b.Logf("drafted %d contracts through the runner in %v", sz.Aggregates, took)

	raw := newFleet("raw", sz.Aggregates)
	rawConn := srv.Conn()
	pipe := newPipeline(raw.subjects())
	drafts := make([]*nats.Msg, sz.Aggregates)
	for i := range drafts {
		if drafts[i], err = raw.draftedMsg(i); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := pipe.run(rawConn, sz.Aggregates, sz.Window, func(i, _ int) *nats.Msg { return drafts[i] }); err != nil {
		b.Fatalf("create raw aggregates: %v", err)
	}
	same, err := newSameBytes(raw)
	if err != nil {
		b.Fatal(err)
	}

	var rawRate float64
	b.Run("raw", func(b *testing.B) {
		stop := profile(b, "commands-raw")
		took, err := pipe.run(rawConn, sz.Commands, sz.Window, func(i, n int) *nats.Msg { return same.msg(raw, i, n) })
		stop()
		if err != nil {
			b.Fatal(err)
		}
		rawRate = perSecond(sz.Commands, took)
		b.ReportMetric(rawRate, "events/s")
		b.ReportMetric(float64(sz.Aggregates), "aggregates")
	})

	rates := map[int]float64{}
	k0 := 0 // contact numbers stay unique across runs
	for _, callers := range sz.Callers {
		b.Run(fmt.Sprintf("ours/callers=%d", callers), func(b *testing.B) {
			base := k0
			stop := profile(b, fmt.Sprintf("commands-ours-%d", callers))
			took, err := parallel(callers, sz.Commands, func(k int) error {
				return ours.assignContact(ctx, r, k%sz.Aggregates, base+k)
			})
			stop()
			if err != nil {
				b.Fatal(err)
			}
			rates[callers] = perSecond(sz.Commands, took)
			b.ReportMetric(rates[callers], "commands/s")
			b.ReportMetric(float64(took.Microseconds())/float64(sz.Commands)*float64(callers), "µs/command-mean")
			if rawRate > 0 {
				b.ReportMetric(rates[callers]/rawRate, "ratio")
			}
		})
		k0 += sz.Commands
	}
	b.Run("ours/best", func(b *testing.B) {
		callers, best := bestOf(rates)
		if best == 0 || rawRate == 0 {
			b.Skip(errNoBaseline)
		}
		b.ReportMetric(best, "commands/s")
		b.ReportMetric(float64(callers), "callers")
		b.ReportMetric(best/rawRate, "ratio")
		b.Logf("commands: raw %.0f events/s, ours best %.0f commands/s at %d callers: ratio %.2f (target >= 0.5)", rawRate, best, callers, best/rawRate)
	})
}
