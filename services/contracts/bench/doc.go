// Package bench holds the contracts service's performance benchmarks. Each
// measures a raw baseline (what JetStream or PostgreSQL can do with
// hand-written code) and our code doing the same work, in the same run, and
// reports both and their ratio:
//
//	go test -run '^$' -bench . -benchtime 1x -timeout 30m ./services/contracts/bench/
//
// Every benchmark does a fixed amount of work once, whatever b.N is, so run
// them with -benchtime 1x. Sizes default to the (a stream of 200k
// events, 10k aggregates); -short and the JSM_BENCH_* variables (see
// sizes_test.go) change them.
package bench
