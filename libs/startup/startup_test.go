package startup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The waits grow by the multiplier from the initial one, stop growing at
// the cap, and are jittered within ±Jitter around that curve.
func TestBackoffGrowsCappedAndJittered(t *testing.T) {
	b := Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2, Jitter: 0.3}
	bo := b.newBackOff()
	interval := b.Initial
	var seen []time.Duration
	for i := range 12 {
		got := bo.NextBackOff()
		lo := time.Duration(float64(interval) * (1 - b.Jitter))
		hi := time.Duration(float64(interval)*(1+b.Jitter)) + 1
		if got < lo || got > hi {
			t.Fatalf("wait %d: %v, want within [%v, %v]", i, got, lo, hi)
		}
		seen = append(seen, got)
		interval = min(2*interval, b.Max)
	}
	for _, w := range seen[5:] {
		if w > time.Duration(float64(b.Max)*(1+b.Jitter))+1 {
			t.Fatalf("a wait past the cap: %v", w)
		}
	}
	// Jitter: instances started together must not all wait the same.
	other := b.newBackOff()
	same := 0
	for range 12 {
		if bo.NextBackOff() == other.NextBackOff() {
			same++
		}
	}
	if same == 12 {
		t.Fatal("two backoffs gave the very same waits: no jitter")
	}
}

var fast = Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond, Multiplier: 2, Jitter: 0.5, Attempt: time.Second}

func TestRetryWaitsThroughTransientErrors(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	calls := 0
	err := RetryWith(context.Background(), fast, log, "nats", func(ctx context.Context) error {
		calls++
		if _, ok := ctx.Deadline(); !ok {
			t.Error("a try without a deadline of its own")
		}
		if calls < 4 {
			return fmt.Errorf("ingest stream: %w", &jetstream.APIError{Code: 400, ErrorCode: 10005, Description: "no suitable peers for placement, peer offline"})
		}
		return nil
	})
	if err != nil || calls != 4 {
		t.Fatalf("err %v after %d calls; want success on the 4th", err, calls)
	}
	if n := strings.Count(logs.String(), "level=WARN msg=\"nats not ready, retrying\""); n != 3 {
		t.Fatalf("%d warnings, want one per retry (3):\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "no suitable peers") || !strings.Contains(logs.String(), "nats ready") {
		t.Fatalf("the warnings do not give the reason, or readiness is not logged:\n%s", logs.String())
	}
}

func TestRetryReturnsAWrongSettingAtOnce(t *testing.T) {
	wrong := &jetstream.APIError{Code: 500, ErrorCode: 10074, Description: "replicas > 1 not supported in non-clustered mode"}
	calls := 0
	err := RetryWith(context.Background(), fast, slog.New(slog.DiscardHandler), "streams", func(context.Context) error {
		calls++
		return fmt.Errorf("stream JSM_EVENTS: %w", wrong)
	})
	if !errors.Is(err, wrong) || calls != 1 {
		t.Fatalf("err %v after %d calls; want the error at once", err, calls)
	}
	calls = 0
	marked := errors.New("bad flag")
	calls = 0
	err = RetryWith(context.Background(), fast, nil, "x", func(context.Context) error { calls++; return errors.New("JSM_TRAIL_SIGNING_KEY is required") })
	if err == nil || calls != 1 {
		t.Fatalf("err %v after %d calls; want a missing setting at once", err, calls)
	}
	calls = 0
	err = RetryWith(context.Background(), fast, nil, "x", func(context.Context) error { calls++; return Permanent(marked) })
	if !errors.Is(err, marked) || calls != 1 {
		t.Fatalf("err %v after %d calls; want the permanent error at once", err, calls)
	}
}

// Shutdown while waiting ends the wait, during a try or between two.
func TestRetryStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	slow := Backoff{Initial: time.Hour, Max: time.Hour, Multiplier: 2, Attempt: time.Hour}
	done := make(chan error, 1)
	go func() {
		done <- RetryWith(ctx, slow, slog.New(slog.DiscardHandler), "postgres", func(context.Context) error { return syscall.ECONNREFUSED })
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("still waiting after the context ended")
	}

	ctx, cancel = context.WithCancel(context.Background())
	go func() {
		done <- RetryWith(ctx, slow, slog.New(slog.DiscardHandler), "nats", func(ctx context.Context) error {
			<-ctx.Done() // a request that hangs until shutdown
			return ctx.Err()
		})
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("still trying after the context ended")
	}
}

// After the first few retries a reason that does not change is logged
// once a minute, not at every try.
func TestRetryLogIsBounded(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	calls := 0
	err := RetryWith(context.Background(), fast, log, "postgres", func(context.Context) error {
		if calls++; calls < 50 {
			return syscall.ECONNREFUSED
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "not ready, retrying"); n != quietAfter {
		t.Fatalf("%d warnings for 49 retries with one reason, want %d", n, quietAfter)
	}
}

func TestTransient(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true},
		{"deadline", fmt.Errorf("snapshot bucket: %w", context.DeadlineExceeded), true},
		{"nats timeout", nats.ErrTimeout, true},
		{"no responders", nats.ErrNoResponders, true},
		{"jetstream not enabled", jetstream.ErrJetStreamNotEnabled, true},
		{"no suitable peers", &jetstream.APIError{Code: 400, ErrorCode: 10005}, true},
		{"temporarily unavailable", &jetstream.APIError{Code: 503, ErrorCode: 10008}, true},
		{"insufficient resources", &jetstream.APIError{Code: 503, ErrorCode: 10023}, true},
		{"stream offline", &jetstream.APIError{Code: 500, ErrorCode: 10118}, true},
		{"replicas in non-clustered mode", &jetstream.APIError{Code: 500, ErrorCode: 10074}, false},
		{"subjects overlap", &jetstream.APIError{Code: 400, ErrorCode: 10065}, false},
		{"nats permission", nats.ErrPermissionViolation, false},
		{"nats authorization", nats.ErrAuthorization, false},
		{"postgres starting up", &pgconn.PgError{Code: "57P03"}, true},
		{"postgres admin shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"deadlock", &pgconn.PgError{Code: "40P01"}, true},
		{"lock not available", &pgconn.PgError{Code: "55P03"}, true},
		{"password refused", &pgconn.PgError{Code: "28P01"}, false},
		{"no such database", &pgconn.PgError{Code: "3D000"}, false},
		{"migration syntax error", fmt.Errorf("migrate contracts: %w", &pgconn.PgError{Code: "42601"}), false},
		{"bad dsn", &pgconn.ParseConfigError{}, false},
		{"marked permanent", Permanent(syscall.ECONNREFUSED), false},
		{"marked not ready", NotReady(errors.New("nats: not connected")), true},
		{"dns", &net.DNSError{Err: "no such host", Name: "nats", IsNotFound: true}, true},
		{"postgres dial", fmt.Errorf("postgres: %w", &pgconn.ConnectError{}), true},
		{"server shutdown", jetstream.ErrServerShutdown, true},
		{"stream not found yet", jetstream.ErrStreamNotFound, true},
		{"a missing setting", errors.New("trail: store, pool and signing key are required"), false},
		{"a bad key", fmt.Errorf("trail: %w", errors.New("illegal base64 data")), false},
		{"nil", nil, false},
	} {
		if got := Transient(c.err); got != c.want {
			t.Errorf("%s: Transient = %v, want %v", c.name, got, c.want)
		}
	}
}
