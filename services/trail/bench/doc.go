// Package bench holds the trail's performance benchmarks: building the
// verifiable log from a stream of a million events against a raw
// JetStream ordered-consumer read of the same stream, replaying it, and
// SearchEvents latency for one contract's events through Connect.
//
//	go test -run '^$' -bench . -benchtime 1x -timeout 30m ./services/trail/bench/
//
// Each benchmark does a fixed amount of work once, whatever b.N is, so run
// them with -benchtime 1x. JSM_BENCH_TRAIL_EVENTS sets the stream's size
// (default 1,000,000; -short: 20,000), JSM_BENCH_TRAIL_BATCH the projector's
// catch-up batch (default the service's, 5000). BenchmarkApplyOnly is a diagnostic:
// the PostgreSQL side of building the log alone (at most 200,000 events),
// after the SQL in JSM_BENCH_APPLY_SQL if set (e.g. to drop a constraint
// and see what it costs).
package bench
