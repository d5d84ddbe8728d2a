// Package projection keeps a PostgreSQL read model up to date from the event
// stream.
//
// A projector reads JSM_EVENTS with an ordered consumer starting after its
// checkpoint, applies events in batches, and commits each batch's rows and
// the new checkpoint in one transaction. A crash anywhere loses nothing and
// applies nothing twice: the consumer keeps no server-side state and always
// restarts after the committed checkpoint, and a batch re-delivered to a
// second instance is trimmed to what the checkpoint has not covered yet.
package projection

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/eventstore"
)

// Handler turns events into rows. Apply runs inside the batch's transaction
// and must only use tx; it sees every event of the stream in order and skips
// those it does not project.
type Handler interface {
	Apply(ctx context.Context, tx pgx.Tx, events []event.Event) error
	// Reset empties the read model before a rebuild from position 0.
	Reset(ctx context.Context, tx pgx.Tx) error
}

// Config names a projection and where its checkpoint lives.
type Config struct {
	// Name identifies the projection (its checkpoint row), e.g. "contracts".
	Name string
	// Schema is the service's PostgreSQL schema; the checkpoint table lives there.
	Schema string
	// BatchSize bounds the events per transaction (default 500).
	BatchSize int
	Logger    *slog.Logger
	// Hooks let fault tests stop the projector at the worst moments.
	Hooks Hooks
}

// Hooks run around a batch's commit. A hook's error stops Run with that error,
// as a crash at that point would.
type Hooks struct {
	BeforeCommit func(last uint64) error
	AfterCommit  func(last uint64) error
}

// ErrNotCaughtUp is returned by WaitFor when the position was not reached in time.
var ErrNotCaughtUp = errors.New("projection has not caught up yet")

// Projector runs one projection.
type Projector struct {
	cfg   Config
	h     Handler
	store *eventstore.Store
	pool  *pgxpool.Pool
	table string

	position atomic.Uint64 // last applied stream position
	pending  atomic.Uint64 // events after it in the stream, as last seen

	mu      sync.Mutex
	changed chan struct{} // closed and replaced whenever position moves
	rebuild chan chan error
}

// New returns a projector; call Migrate once and then Run.
func New(cfg Config, h Handler, store *eventstore.Store, pool *pgxpool.Pool) (*Projector, error) {
	if cfg.Name == "" || cfg.Schema == "" || h == nil || store == nil || pool == nil {
		return nil, errors.New("projection: name, schema, handler, store and pool are required")
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Projector{
		cfg: cfg, h: h, store: store, pool: pool,
		table:   pgx.Identifier{cfg.Schema, "checkpoints"}.Sanitize(),
		changed: make(chan struct{}),
		rebuild: make(chan chan error),
	}, nil
}

// Name is the projection's name.
func (p *Projector) Name() string { return p.cfg.Name }

// Migrate creates the checkpoint table and row and loads the checkpoint.
func (p *Projector) Migrate(ctx context.Context) error {
	_, err := p.pool.Exec(ctx, fmt.Sprintf(`
		CREATE SCHEMA IF NOT EXISTS %s;
		CREATE TABLE IF NOT EXISTS %s (
			name       text PRIMARY KEY,
			position   bigint NOT NULL DEFAULT 0,
			updated_at timestamptz NOT NULL DEFAULT now()
		)`, pgx.Identifier{p.cfg.Schema}.Sanitize(), p.table))
	if err != nil {
		return fmt.Errorf("projection %s: migrate checkpoints: %w", p.cfg.Name, err)
	}
	if _, err := p.pool.Exec(ctx, `INSERT INTO `+p.table+` (name) VALUES ($1) ON CONFLICT DO NOTHING`, p.cfg.Name); err != nil {
		return fmt.Errorf("projection %s: checkpoint row: %w", p.cfg.Name, err)
	}
	pos, err := p.checkpoint(ctx, p.pool)
	if err != nil {
		return err
	}
	p.advance(pos)
	return nil
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (p *Projector) checkpoint(ctx context.Context, q querier) (uint64, error) {
	var pos int64
	if err := q.QueryRow(ctx, `SELECT position FROM `+p.table+` WHERE name = $1`, p.cfg.Name).Scan(&pos); err != nil {
		return 0, fmt.Errorf("projection %s: read checkpoint: %w", p.cfg.Name, err)
	}
	return uint64(pos), nil
}

// Position is the last stream position applied to the read model.
func (p *Projector) Position() uint64 { return p.position.Load() }

// Lag is how many stream events were pending after Position when last seen.
func (p *Projector) Lag() uint64 { return p.pending.Load() }

func (p *Projector) advance(pos uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pos == p.position.Load() {
		return
	}
	p.position.Store(pos)
	close(p.changed)
	p.changed = make(chan struct{})
}

// WaitFor blocks until the read model has applied position pos, at most
// for max (or until ctx ends). It is how a query reads its own writes.
func (p *Projector) WaitFor(ctx context.Context, pos uint64, max time.Duration) error {
	if pos == 0 || p.position.Load() >= pos {
		return nil
	}
	timer := time.NewTimer(max)
	defer timer.Stop()
	for {
		p.mu.Lock()
		ch := p.changed
		p.mu.Unlock()
		if p.position.Load() >= pos {
			return nil
		}
		select {
		case <-ch:
		case <-timer.C:
			return fmt.Errorf("%w: %s at %d, waiting for %d", ErrNotCaughtUp, p.cfg.Name, p.position.Load(), pos)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Rebuild empties the read model and replays the stream from position 0
// into it. Run must be running; Rebuild returns once the reset is committed,
// the replay goes on in Run.
func (p *Projector) Rebuild(ctx context.Context) error {
	done := make(chan error, 1)
	select {
	case p.rebuild <- done:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *Projector) reset(ctx context.Context) error {
	return pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if err := p.h.Reset(ctx, tx); err != nil {
			return fmt.Errorf("reset: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE `+p.table+` SET position = 0, updated_at = now() WHERE name = $1`, p.cfg.Name); err != nil {
			return fmt.Errorf("reset checkpoint: %w", err)
		}
		p.mu.Lock()
		p.position.Store(0)
		p.mu.Unlock()
		return nil
	})
}

// errRestart ends one consumption round so Run starts again from the checkpoint.
var errRestart = errors.New("restart")

// Run applies events until ctx ends. Failures of NATS or PostgreSQL are
// retried with backoff from the last checkpoint; a hook's error ends Run.
func (p *Projector) Run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for {
		err := p.round(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var hookErr *hookError
		if errors.As(err, &hookErr) {
			return hookErr.err
		}
		if errors.Is(err, errRestart) {
			backoff = 100 * time.Millisecond
			continue
		}
		p.cfg.Logger.Warn("projection failed, retrying from checkpoint", "projection", p.cfg.Name, "position", p.Position(), "err", err, "backoff", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

type hookError struct{ err error }

func (e *hookError) Error() string { return e.err.Error() }

// round consumes from the checkpoint until an error or a rebuild request.
func (p *Projector) round(ctx context.Context) error {
	start, err := p.checkpoint(ctx, p.pool)
	if err != nil {
		return err
	}
	p.advance(start)
	cons, err := p.store.OrderedConsumer(ctx, start+1)
	if err != nil {
		return err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * p.cfg.BatchSize))
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	roundCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs := make(chan jetstream.Msg, 2*p.cfg.BatchSize)
	readErr := make(chan error, 1)
	go func() {
		defer close(msgs)
		for {
			m, err := it.Next()
			if err != nil {
				readErr <- err
				return
			}
			select {
			case msgs <- m:
			case <-roundCtx.Done():
				return
			}
		}
	}()
	defer it.Stop()

	batch := make([]event.Event, 0, p.cfg.BatchSize)
	for {
		batch = batch[:0]
		var pending uint64
		select {
		case <-ctx.Done():
			return ctx.Err()
		case done := <-p.rebuild:
			err := p.reset(ctx)
			done <- err
			if err != nil {
				return err
			}
			return errRestart
		case m, ok := <-msgs:
			if !ok {
				return <-readErr
			}
			e, n, err := eventstore.FromJetStream(m)
			if err != nil {
				return err
			}
			batch, pending = append(batch, e), n
		}
	drain:
		for len(batch) < p.cfg.BatchSize {
			select {
			case m, ok := <-msgs:
				if !ok {
					break drain
				}
				e, n, err := eventstore.FromJetStream(m)
				if err != nil {
					return err
				}
				batch, pending = append(batch, e), n
			default:
				break drain
			}
		}
		if err := p.apply(ctx, batch); err != nil {
			return err
		}
		p.pending.Store(pending)
	}
}

// apply commits one batch with its checkpoint.
func (p *Projector) apply(ctx context.Context, batch []event.Event) error {
	last := batch[len(batch)-1].Position
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	// Projections can always be rebuilt from the stream, so a commit need not
	// wait for the WAL flush.
	if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
		return err
	}
	var done int64
	if err := tx.QueryRow(ctx, `SELECT position FROM `+p.table+` WHERE name = $1 FOR UPDATE`, p.cfg.Name).Scan(&done); err != nil {
		return fmt.Errorf("lock checkpoint: %w", err)
	}
	// Another instance may have applied part of this batch already.
	for len(batch) > 0 && batch[0].Position <= uint64(done) {
		batch = batch[1:]
	}
	if len(batch) > 0 {
		if err := p.h.Apply(ctx, tx, batch); err != nil {
			return fmt.Errorf("apply up to %d: %w", last, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE `+p.table+` SET position = $2, updated_at = now() WHERE name = $1`, p.cfg.Name, int64(last)); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
	}
	if h := p.cfg.Hooks.BeforeCommit; h != nil {
		if err := h(last); err != nil {
			return &hookError{err}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit up to %d: %w", last, err)
	}
	p.advance(max(last, uint64(done)))
	if h := p.cfg.Hooks.AfterCommit; h != nil {
		if err := h(last); err != nil {
			return &hookError{err}
		}
	}
	return nil
}
