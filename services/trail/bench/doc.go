// Package bench holds the trail's performance benchmarks: building the
// verifiable log from a stream of a million events against a raw
// JetStream ordered-consumer read of the same stream, replaying it, and
// SearchEvents latency for one contract's events through Connect.
//
//	go test -run '^$' -bench . -benchtime 1x -timeout 30m ./services/trail/bench/
//
// Each benchmark does a fixed amount of work once, whatever b.N is, so run
// them with -benchtime 1x. JSM_BENCH_TRAIL_EVENTS sets the stream's size
// (default 1,000,000; -short: 20,000).
package bench
