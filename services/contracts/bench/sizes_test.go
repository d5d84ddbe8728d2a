package bench

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// Sizes of the benchmarks. Each can be set by an environment variable; -short
// makes the defaults small enough for a quick check.
type sizes struct {
	Stream     int   // JSM_BENCH_STREAM: events already in the stream before commands run
	Aggregates int   // JSM_BENCH_AGGREGATES: distinct aggregates commands go to
	Commands   int   // JSM_BENCH_COMMANDS: events (raw) and commands (each ours run) per run
	Callers    []int // JSM_BENCH_CALLERS: concurrent callers of the runner, e.g. "64,128,256"
	Window     int   // JSM_BENCH_WINDOW: raw publishes in flight at most
	Projection int   // JSM_BENCH_PROJECTION_EVENTS: events the projections fold (10 per contract)
	Samples    int   // JSM_BENCH_SAMPLES: operations of the latency baselines
}

func benchSizes() sizes {
	s := sizes{
		Stream:     200_000,
		Aggregates: 10_000,
		Commands:   100_000,
		Callers:    []int{64, 128, 256},
		Window:     4000,
		Projection: 100_000,
		Samples:    20_000,
	}
	if testing.Short() {
		s = sizes{Stream: 10_000, Aggregates: 1000, Commands: 5000, Callers: []int{64}, Window: 4000, Projection: 5000, Samples: 2000}
	}
	s.Stream = envInt("JSM_BENCH_STREAM", s.Stream)
	s.Aggregates = envInt("JSM_BENCH_AGGREGATES", s.Aggregates)
	s.Commands = envInt("JSM_BENCH_COMMANDS", s.Commands)
	s.Window = envInt("JSM_BENCH_WINDOW", s.Window)
	s.Projection = envInt("JSM_BENCH_PROJECTION_EVENTS", s.Projection)
	s.Samples = envInt("JSM_BENCH_SAMPLES", s.Samples)
	if v := os.Getenv("JSM_BENCH_CALLERS"); v != "" {
		s.Callers = nil
		for _, f := range strings.Split(v, ",") {
			if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
				s.Callers = append(s.Callers, n)
			}
		}
	}
	return s
}

func envInt(name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(strings.ReplaceAll(v, "_", ""))
	if err != nil || n <= 0 {
		return def
	}
	return n
}
