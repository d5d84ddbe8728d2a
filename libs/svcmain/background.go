package svcmain

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/jsmplatform/jsm/libs/telemetry"
)

// Runner is work that runs until its context ends (a projector, a reactor).
type Runner interface{ Run(context.Context) error }

// Flusher stores what a service keeps in memory (an es runner's snapshots).
type Flusher interface{ Flush(context.Context) error }

// Background is what a service does besides answering requests.
type Background struct {
	// Projector keeps the read model; when it ends, everything ends:
	// without its read model the service has nothing to go on.
	Projector Runner
	// Reactors answer other areas' events; one that fails ends everything,
	// so the service does not look healthy without its reactions.
	Reactors []Runner
	// Tick runs every Every (none when Every is not positive): the
	// scheduler of deadlines that passed. Its errors are logged.
	Tick  func(context.Context) (int, error)
	Every time.Duration
	// Name names the scheduler's spans ("<Name> scheduler").
	Name string
	Log  *slog.Logger
	// Flush runs once the rest has stopped, with up to 5 s of its own.
	Flush []Flusher
}

// Run does the background work until ctx ends or the projector or a
// reactor stops, then flushes.
func (b Background) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1+len(b.Reactors))
	go func() {
		err := b.Projector.Run(ctx)
		cancel()
		done <- err
	}()
	for _, r := range b.Reactors {
		go func() {
			err := r.Run(ctx)
			if err != nil {
				cancel()
			}
			done <- err
		}()
	}
	if b.Tick != nil && b.Every > 0 {
		b.tick(ctx)
	}
	var errs []error
	for range 1 + len(b.Reactors) {
		errs = append(errs, <-done)
	}
	flushCtx, stop := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer stop()
	for _, f := range b.Flush {
		errs = append(errs, f.Flush(flushCtx))
	}
	return errors.Join(errs...)
}

func (b Background) tick(ctx context.Context) {
	t := time.NewTicker(b.Every)
	defer t.Stop()
	for {
		b.tickOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// tickOnce runs one tick in a span of its own: the ...Overdue events it
// appends start their traces there.
func (b Background) tickOnce(ctx context.Context) {
	name := "scheduler"
	if b.Name != "" {
		name = b.Name + " scheduler"
	}
	ctx, span := telemetry.Tracer().Start(ctx, name)
	n, err := b.Tick(ctx)
	span.SetAttributes(attribute.Int("jsm.scheduler.appended", n))
	if ctx.Err() != nil {
		err = nil
	}
	telemetry.End(span, err)
	if err != nil {
		b.Log.WarnContext(ctx, "scheduler", "err", err)
	}
}
