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
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/poison"
	"github.com/jsmplatform/jsm/libs/telemetry"
)

// Handler turns events into rows. Apply runs inside the batch's transaction
// and must only use tx; it sees every event of the stream in order and skips
// those it does not project.
type Handler interface {
	Apply(ctx context.Context, tx pgx.Tx, events []event.Event) error
	// Reset empties the read model before a rebuild from position 0.
	Reset(ctx context.Context, tx pgx.Tx) error
}

// A Preparer is a Handler that can do most of a batch's work before its
// transaction: the projector prepares the next batch while the previous one
// commits. Whatever Prepare remembers between batches may run ahead of what
// is committed; the projector calls Forget whenever that could be wrong: when
// it (re)starts from its checkpoint, and when part of a prepared batch turns
// out to be applied already (another instance got there first), in which
// case it calls Apply with the rest instead.
type Preparer interface {
	Handler
	Prepare(events []event.Event) (Prepared, error)
	Forget()
}

// Prepared is a batch ready to be written.
type Prepared interface {
	// Queue adds the batch's statements to b and reports whether it could:
	// a batch that must read rows first cannot. They run with the
	// checkpoint's advance in one implicit transaction, one round trip. A
	// statement finding rows other than Prepare expected must fail the whole
	// transaction through <schema>.projection_expect(what, got, want) (which
	// Migrate creates); the projector then forgets and applies the batch in
	// an explicit transaction instead.
	Queue(b *pgx.Batch) bool
	// Apply writes the batch in tx, reading what it needs.
	Apply(ctx context.Context, tx pgx.Tx) error
}

// Config names a projection and where its checkpoint lives.
type Config struct {
	// Name identifies the projection (its checkpoint row), e.g. "contracts".
	Name string
	// Schema is the service's PostgreSQL schema; the checkpoint table lives there.
	Schema string
	// BatchSize bounds the events per transaction (default 500).
	BatchSize int
	// CatchUpBatchSize bounds them while the projector is behind by more
	// than BatchSize events (default 4 x BatchSize): larger transactions
	// write each row fewer times when catching up or rebuilding.
	CatchUpBatchSize int
	Logger           *slog.Logger
	// Admit, when set, sees every event before the handler does; an event
	// it refuses is set aside in the quarantine like one the handler cannot
	// apply, and the projection goes on. It must decide the same way every
	// time for the same event, so a rebuild decides as the live run did.
	Admit func(event.Event) error
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

// ErrBeyondStream is returned by WaitFor for a position the stream has not reached.
var ErrBeyondStream = errors.New("position beyond the end of the stream")

// Projector runs one projection.
type Projector struct {
	cfg   Config
	h     Handler
	prep  Preparer // h, when it is one
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
	if cfg.CatchUpBatchSize < cfg.BatchSize {
		cfg.CatchUpBatchSize = 4 * cfg.BatchSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	prep, _ := h.(Preparer)
	return &Projector{
		cfg: cfg, h: h, prep: prep, store: store, pool: pool,
		table:   pgx.Identifier{cfg.Schema, "checkpoints"}.Sanitize(),
		changed: make(chan struct{}),
		rebuild: make(chan chan error),
	}, nil
}

// Name is the projection's name.
func (p *Projector) Name() string { return p.cfg.Name }

// Migrate creates the checkpoint table and row and loads the checkpoint.
func (p *Projector) Migrate(ctx context.Context) error {
	schema := pgx.Identifier{p.cfg.Schema}.Sanitize()
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		// Instances starting together take turns.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('jsm.projection.' || $1))`, p.cfg.Schema); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, fmt.Sprintf(`
			-- Only when missing: CREATE SCHEMA IF NOT EXISTS needs CREATE on
			-- the database, which a service's own login (libs/pgdb Login) lacks.
			DO $do$ BEGIN
				IF to_regnamespace(%[5]s) IS NULL THEN CREATE SCHEMA %[1]s; END IF;
			END $do$;
			CREATE TABLE IF NOT EXISTS %[2]s (
				name       text PRIMARY KEY,
				position   bigint NOT NULL DEFAULT 0,
				updated_at timestamptz NOT NULL DEFAULT now()
			);
			%[4]s;
			CREATE OR REPLACE FUNCTION %[1]s.projection_expect(what text, got bigint, want bigint) RETURNS bigint
			LANGUAGE plpgsql AS $$
			BEGIN
				IF got IS DISTINCT FROM want THEN
					RAISE EXCEPTION '%% rows of %%, expected %%', got, what, want USING ERRCODE = '%[3]s';
				END IF;
				RETURN got;
			END $$`, schema, p.table, staleCode, quarantineDDL(p.cfg.Schema), quoteLiteral(p.cfg.Schema)))
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO `+p.table+` (name) VALUES ($1) ON CONFLICT DO NOTHING`, p.cfg.Name)
		return err
	})
	if err != nil {
		return fmt.Errorf("projection %s: migrate: %w", p.cfg.Name, err)
	}
	pos, err := p.checkpoint(ctx, p.pool)
	if err != nil {
		return err
	}
	p.advance(pos)
	return nil
}

// staleCode is the SQLSTATE of <schema>.projection_expect.
const staleCode = "JSM01"

// IsStale reports whether err is <schema>.projection_expect finding a
// different number of rows than expected.
func IsStale(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == staleCode
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
// for max (or until ctx ends). It is how a query reads its own writes. A
// position the stream has not reached yet fails at once with
// ErrBeyondStream rather than after max.
func (p *Projector) WaitFor(ctx context.Context, pos uint64, max time.Duration) error {
	if pos == 0 || p.position.Load() >= pos {
		return nil
	}
	timer := time.NewTimer(max)
	defer timer.Stop()
	// Most waits end within milliseconds; only a longer one asks the stream
	// whether pos exists at all.
	check := time.NewTimer(min(20*time.Millisecond, max))
	defer check.Stop()
	for {
		p.mu.Lock()
		ch := p.changed
		p.mu.Unlock()
		if p.position.Load() >= pos {
			return nil
		}
		select {
		case <-ch:
		case <-check.C:
			last, err := p.store.LastPosition(ctx)
			if err == nil && pos > last {
				return fmt.Errorf("%w: %d, the stream ends at %d", ErrBeyondStream, pos, last)
			}
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
		// The replay sets aside again what it cannot apply.
		if _, err := tx.Exec(ctx, `DELETE FROM `+pgx.Identifier{p.cfg.Schema, quarantineTable}.Sanitize()+` WHERE projection = $1`, p.cfg.Name); err != nil {
			return fmt.Errorf("reset quarantine: %w", err)
		}
		p.mu.Lock()
		p.position.Store(0)
		p.mu.Unlock()
		return nil
	})
}

// shutdownCommit bounds how long a batch in hand may take to commit once
// the projector is stopped.
const shutdownCommit = 10 * time.Second

// errRestart ends one consumption round so Run starts again from the checkpoint.
var errRestart = errors.New("restart")

// Run applies events until ctx ends. Failures of NATS or PostgreSQL are
// retried with backoff from the last checkpoint; a hook's error ends Run.
func (p *Projector) Run(ctx context.Context) error {
	defer p.register()()
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
		p.cfg.Logger.WarnContext(ctx, "projection failed, retrying from checkpoint", "projection", p.cfg.Name, "position", p.Position(), "err", err, "backoff", backoff)
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
	p.forget()
	cons, err := p.store.OrderedConsumer(ctx, start+1)
	if err != nil {
		return err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * p.cfg.CatchUpBatchSize))
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	roundCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The reader decodes the next events while a batch commits.
	events := make(chan pendingEvent, 2*p.cfg.CatchUpBatchSize)
	readErr := make(chan error, 1)
	go func() {
		defer close(events)
		for {
			m, err := it.Next()
			if err != nil {
				readErr <- err
				return
			}
			// A message that is not an event, or that Admit refuses, is
			// set aside: stopping here would stop the projection for good.
			// The batch still covers its position.
			e, err := p.read(m)
			if err != nil {
				readErr <- err
				return
			}
			select {
			case events <- e:
			case <-roundCtx.Done():
				readErr <- roundCtx.Err() // the loop may be waiting for a reason
				return
			}
		}
	}()
	defer it.Stop()

	// The committer writes batches while the loop below collects and
	// prepares the next one.
	jobs := make(chan job, 1)
	committed := make(chan error, 1)
	// A batch in hand when ctx ends (shutdown) is still committed, within
	// shutdownCommit: the work is done, and its checkpoint moves with it.
	applyCtx, stopApply := context.WithCancel(context.WithoutCancel(ctx))
	defer stopApply()
	defer context.AfterFunc(ctx, func() { time.AfterFunc(shutdownCommit, stopApply) })()
	go func() {
		defer close(committed)
		for j := range jobs {
			if err := p.apply(applyCtx, j); err != nil {
				committed <- err
				return
			}
			p.pending.Store(j.pending)
		}
	}()
	after := start
	stopped := false
	stopCommitter := func() error {
		if !stopped {
			stopped = true
			close(jobs)
		}
		return <-committed
	}
	defer func() { _ = stopCommitter() }()

	for {
		var j job
		batch := make([]event.Event, 0, p.cfg.BatchSize)
		take := func(e pendingEvent) {
			batch, j.pending = append(batch, e.Event), e.pending
			if e.quarantine != nil {
				j.quarantined = append(j.quarantined, *e.quarantine)
			}
		}
		limit := p.cfg.BatchSize
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-committed:
			return err
		case done := <-p.rebuild:
			if err := stopCommitter(); err != nil {
				done <- err
				return err
			}
			err := p.reset(ctx)
			done <- err
			if err != nil {
				return err
			}
			return errRestart
		case e, ok := <-events:
			if !ok {
				return readFailure(ctx, readErr)
			}
			take(e)
		}
		if j.pending > uint64(p.cfg.BatchSize) {
			limit = p.cfg.CatchUpBatchSize
		}
		// Take what has arrived; while the stream holds more, wait a moment
		// for it rather than commit a short batch (catching up, the fewer
		// the transactions the fewer times each row is written).
		var fill <-chan time.Time
	drain:
		for len(batch) < limit {
			select {
			case e, ok := <-events:
				if !ok {
					break drain
				}
				take(e)
				continue
			default:
			}
			if j.pending == 0 {
				break
			}
			if fill == nil {
				fill = time.After(fillWait)
			}
			select {
			case e, ok := <-events:
				if !ok {
					break drain
				}
				take(e)
			case <-fill:
				break drain
			}
		}
		j.batch, j.after = batch, after
		after = batch[len(batch)-1].Position
		j.prepared = p.prepare(batch)
		select {
		case jobs <- j:
		case err := <-committed:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// prepare prepares the batch when the handler can. A batch it cannot
// prepare is applied in a transaction instead, where a failure that is not
// deterministic is retried and one that is sets its event aside.
func (p *Projector) prepare(batch []event.Event) Prepared {
	if p.prep == nil {
		return nil
	}
	prepared, err := p.prep.Prepare(batch)
	if err != nil {
		p.forget()
		p.cfg.Logger.Debug("batch not prepared, applying it in a transaction", "projection", p.cfg.Name, "last", batch[len(batch)-1].Position, "err", err)
		return nil
	}
	return prepared
}

// fillWait bounds how long a batch waits for events the stream already holds.
const fillWait = 5 * time.Millisecond

// readFailure is why the reader stopped.
func readFailure(ctx context.Context, readErr <-chan error) error {
	select {
	case err := <-readErr:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// job is one batch for the committer.
type job struct {
	after    uint64 // the position the batch follows in the stream as delivered
	batch    []event.Event
	prepared Prepared // nil unless the handler is a Preparer
	pending  uint64
	// quarantined are the batch's events set aside before the handler saw
	// them (carried in batch as their position only).
	quarantined []Quarantined
}

type pendingEvent struct {
	event.Event
	pending    uint64       // stream events after it when it was delivered
	quarantine *Quarantined // set when the event is set aside unapplied
}

// apply commits one batch with its checkpoint: in one round trip when the
// batch is prepared and the checkpoint is where this projector left it,
// else in an explicit transaction that locks the checkpoint first.
func (p *Projector) apply(ctx context.Context, j job) (err error) {
	ctx, span := p.startBatch(ctx, j.batch)
	defer func() {
		if errors.Is(err, errRestart) {
			telemetry.End(span, nil) // not a failure: another instance rebuilt
			return
		}
		telemetry.End(span, err)
	}()
	last := j.batch[len(j.batch)-1].Position
	if j.prepared != nil {
		done, err := p.applyPrepared(ctx, j, last)
		if done || err != nil {
			return err
		}
	}
	err = p.applyInTx(ctx, j, last, false)
	if poison.Deterministic(err) {
		// An event of the batch cannot be applied, now or ever: apply the
		// batch again one event at a time to set only that one aside.
		p.forget()
		err = p.applyInTx(ctx, j, last, true)
	}
	return err
}

// applyPrepared tries the one-round-trip path, which holds only if the
// checkpoint is still where the stream was before the batch: then no event
// of the batch is applied yet. It reports false when the batch has to be
// applied in an explicit transaction instead.
func (p *Projector) applyPrepared(ctx context.Context, j job, last uint64) (bool, error) {
	b := &pgx.Batch{}
	// Projections can always be rebuilt from the stream, so a commit need
	// not wait for the WAL flush.
	b.Queue(`
		WITH c AS (
			UPDATE `+p.table+` SET position = $3, updated_at = now()
			WHERE name = $1 AND position = $2 RETURNING 1)
		SELECT `+pgx.Identifier{p.cfg.Schema}.Sanitize()+`.projection_expect('checkpoint at ' || $2, (SELECT count(*) FROM c), 1),
			set_config('synchronous_commit', 'off', true)`,
		p.cfg.Name, int64(j.after), int64(last))
	if !j.prepared.Queue(b) {
		return false, nil
	}
	p.queueQuarantine(b, j.quarantined)
	// Failing here is failing before the commit: nothing was sent.
	if err := p.beforeCommit(last); err != nil {
		return false, err
	}
	err := p.pool.SendBatch(ctx, b).Close()
	if IsStale(err) || poison.Deterministic(err) {
		// Another instance moved the checkpoint or wrote the rows, or an
		// event cannot be applied: what the handler remembered may be
		// wrong, and the transaction sorts it out.
		p.forget()
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("apply up to %d: %w", last, err)
	}
	p.announce(j.quarantined)
	return true, p.committed(last)
}

// applyInTx applies the batch in an explicit transaction; each applies it
// one event at a time, setting aside those that fail deterministically.
func (p *Projector) applyInTx(ctx context.Context, j job, last uint64, each bool) error {
	batch := j.batch
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	// One round trip locks the checkpoint row (another instance waits here
	// until this batch commits), reads what was applied before and moves the
	// checkpoint.
	var done int64
	if err := tx.QueryRow(ctx, `
		WITH old AS (SELECT position FROM `+p.table+` WHERE name = $1 FOR UPDATE)
		UPDATE `+p.table+` AS c SET position = GREATEST(old.position, $2), updated_at = now()
		FROM old WHERE c.name = $1
		RETURNING old.position, set_config('synchronous_commit', 'off', true)`,
		p.cfg.Name, int64(last)).Scan(&done, nil); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	// The checkpoint went back (a rebuild elsewhere): applying this batch
	// would leave a hole before it. Start again from the checkpoint.
	if uint64(done) < j.after {
		p.forget()
		return errRestart
	}
	// Another instance may have applied part of this batch already: what
	// was prepared for all of it no longer fits.
	applied := 0
	for applied < len(batch) && batch[applied].Position <= uint64(done) {
		applied++
	}
	if batch = batch[applied:]; applied > 0 && j.prepared != nil {
		j.prepared = nil
		p.forget()
	}
	quarantined := notBefore(j.quarantined, uint64(done))
	switch {
	case len(batch) == 0:
	case each:
		var set []Quarantined
		set, err = p.applyEach(ctx, tx, batch)
		quarantined = append(quarantined, set...)
	case j.prepared != nil:
		err = j.prepared.Apply(ctx, tx)
	default:
		err = p.h.Apply(ctx, tx, batch)
	}
	if err != nil {
		return fmt.Errorf("apply up to %d: %w", last, err)
	}
	if err := p.recordQuarantine(ctx, tx, quarantined); err != nil {
		return err
	}
	if err := p.beforeCommit(last); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit up to %d: %w", last, err)
	}
	if each {
		// The handler's memory may hold what a savepoint undid.
		p.forget()
	}
	p.announce(quarantined)
	return p.committed(max(last, uint64(done)))
}

// notBefore is the part of qs after position done (not applied yet).
func notBefore(qs []Quarantined, done uint64) []Quarantined {
	for len(qs) > 0 && qs[0].Position <= done {
		qs = qs[1:]
	}
	return qs
}

// forget tells a Preparer that what it remembers may be wrong.
func (p *Projector) forget() {
	if p.prep != nil {
		p.prep.Forget()
	}
}

// beforeCommit runs the BeforeCommit hook; its error ends Run.
func (p *Projector) beforeCommit(last uint64) error {
	if h := p.cfg.Hooks.BeforeCommit; h != nil {
		if err := h(last); err != nil {
			return &hookError{err}
		}
	}
	return nil
}

// committed moves Position after a commit and runs the AfterCommit hook.
func (p *Projector) committed(last uint64) error {
	p.advance(last)
	if h := p.cfg.Hooks.AfterCommit; h != nil {
		if err := h(last); err != nil {
			return &hookError{err}
		}
	}
	return nil
}

// quoteLiteral makes s an SQL string literal (standard_conforming_strings).
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
