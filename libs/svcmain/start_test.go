package svcmain

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/nats-io/nats.go"
)

// A timeout while a cluster forms its groups is tried again; a wrong
// setting is not.
func TestRetryStartRetriesOnlyTimeouts(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	calls := 0
	err := retryStart(context.Background(), log, "test", func() error {
		calls++
		if calls < 3 {
			return errors.Join(errors.New("snapshot bucket"), context.DeadlineExceeded)
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("after timeouts: err %v, %d calls; want success on the 3rd", err, calls)
	}

	calls = 0
	wrong := errors.New("stream JSM_EVENTS: insufficient resources")
	err = retryStart(context.Background(), log, "test", func() error { calls++; return wrong })
	if !errors.Is(err, wrong) || calls != 1 {
		t.Fatalf("a lasting error: err %v, %d calls; want it returned at once", err, calls)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = retryStart(ctx, log, "test", func() error { return nats.ErrTimeout })
	if !errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("stopped while starting: %v", err)
	}
}
