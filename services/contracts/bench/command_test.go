package bench

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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
//	raw/run=K            events/s, before each run of ours
//	ours/callers=N       commands/s and ratio to the raw run just before it
//	*/latency/callers=1  p50 and p99 of one sync publish / one command at a time
//	ours/best            the best ratio (target >= 0.5), and the fastest run
//	                     of ours against the fastest raw run (ratio-fastest)
//	diagnostic/...       the runner with snapshots in memory only (no KV
//	                     write per command) at the best number of callers,
//	                     after one more raw run
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

	// A diagnostic: the same runner keeping snapshots in memory only, on its
	// own aggregates. Its gap to ours is what writing a KV snapshot after
	// every command costs.
	memOnly, err := es.NewRunner(ctx, store, contracts.Source, contracts.Decider(), es.WithoutSnapshots())
	if err != nil {
		b.Fatal(err)
	}
	memFleet := newFleet("ours-memory-snapshots", sz.Aggregates)
	if _, err := parallel(64, sz.Aggregates, func(i int) error { return memFleet.draft(ctx, memOnly, i) }); err != nil {
		b.Fatalf("draft: %v", err)
	}

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

	// The stream grows by sizes.Commands events per run, and JetStream gets
	// slower as it grows (see the raw runs), so a raw run precedes each run
	// of ours and each ratio is against the raw run just before it: ours
	// always works on the larger stream, the ratios err on the low side.
	rawRuns, fastestRaw, fastestOurs := 0, 0.0, 0.0
	runRaw := func() float64 {
		rawRuns++
		var rate float64
		b.Run(fmt.Sprintf("raw/run=%d", rawRuns), func(b *testing.B) {
			stop := profile(b, fmt.Sprintf("commands-raw-%d", rawRuns))
			base := rawRuns * sz.Commands // event ids stay unique
			took, err := pipe.run(rawConn, sz.Commands, sz.Window, func(i, n int) *nats.Msg { return same.msg(raw, i, base+n) })
			stop()
			if err != nil {
				b.Fatal(err)
			}
			rate = perSecond(sz.Commands, took)
			b.ReportMetric(rate, "events/s")
			b.ReportMetric(float64(sz.Aggregates), "aggregates")
		})
		fastestRaw = max(fastestRaw, rate)
		return rate
	}

	type result struct{ rate, raw float64 }
	results := map[int]result{}
	k0 := 0 // contact numbers stay unique across runs
	for _, callers := range sz.Callers {
		rawRate := runRaw()
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
			rate := perSecond(sz.Commands, took)
			results[callers] = result{rate, rawRate}
			fastestOurs = max(fastestOurs, rate)
			b.ReportMetric(rate, "commands/s")
			b.ReportMetric(float64(took.Microseconds())/float64(sz.Commands)*float64(callers), "µs/command-mean")
			if rawRate > 0 {
				b.ReportMetric(rate/rawRate, "ratio")
			}
		})
		k0 += sz.Commands
	}

	// Latency at one caller: the sync publish of the same bytes with the
	// expected sequence, and the runner's full command.
	latencyN := min(sz.Commands, 5000)
	b.Run("raw/latency/callers=1", func(b *testing.B) {
		js, err := jetstream.New(rawConn)
		if err != nil {
			b.Fatal(err)
		}
		lat := make([]time.Duration, latencyN)
		start := time.Now()
		for n := range latencyN {
			i := n % sz.Aggregates
			m := same.msg(raw, i, (len(sz.Callers)+2)*sz.Commands+n)
			m.Header[jetstream.ExpectedLastSubjSeqHeader] = []string{strconv.FormatUint(pipe.last[i], 10)}
			t0 := time.Now()
			ack, err := js.PublishMsg(ctx, m)
			lat[n] = time.Since(t0)
			if err != nil {
				b.Fatal(err)
			}
			pipe.last[i] = ack.Sequence
		}
		reportLatencies(b, latencyN, time.Since(start), lat, "events/s")
	})
	b.Run("ours/latency/callers=1", func(b *testing.B) {
		lat := make([]time.Duration, latencyN)
		start := time.Now()
		for n := range latencyN {
			t0 := time.Now()
			err := ours.assignContact(ctx, r, n%sz.Aggregates, k0+n)
			lat[n] = time.Since(t0)
			if err != nil {
				b.Fatal(err)
			}
		}
		reportLatencies(b, latencyN, time.Since(start), lat, "commands/s")
	})

	bestCallers, bestRatio := 0, 0.0
	for callers, res := range results {
		if res.raw > 0 && res.rate/res.raw > bestRatio {
			bestCallers, bestRatio = callers, res.rate/res.raw
		}
	}
	b.Run("ours/best", func(b *testing.B) {
		if bestCallers == 0 {
			b.Skip(errNoBaseline)
		}
		res := results[bestCallers]
		b.ReportMetric(res.rate, "commands/s")
		b.ReportMetric(res.raw, "raw-events/s")
		b.ReportMetric(float64(bestCallers), "callers")
		b.ReportMetric(bestRatio, "ratio")
		b.ReportMetric(fastestOurs/fastestRaw, "ratio-fastest")
		b.Logf("commands: ours %.0f commands/s at %d callers, raw just before %.0f events/s: ratio %.2f (target >= 0.5); fastest of ours %.0f to fastest raw %.0f: %.2f",
			res.rate, bestCallers, res.raw, bestRatio, fastestOurs, fastestRaw, fastestOurs/fastestRaw)
	})

	if bestCallers == 0 {
		return
	}
	rawRate := runRaw()
	b.Run(fmt.Sprintf("diagnostic/ours-without-kv-snapshots/callers=%d", bestCallers), func(b *testing.B) {
		stop := profile(b, "commands-ours-memory-snapshots")
		took, err := parallel(bestCallers, sz.Commands, func(k int) error {
			return memFleet.assignContact(ctx, memOnly, k%sz.Aggregates, k)
		})
		stop()
		if err != nil {
			b.Fatal(err)
		}
		rate := perSecond(sz.Commands, took)
		b.ReportMetric(rate, "commands/s")
		if rawRate > 0 {
			b.ReportMetric(rate/rawRate, "ratio")
		}
	})
}
