package projection

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/projection"
	"github.com/jsmplatform/jsm/services/trail/ledger"
)

// Builder is the trail's handler as a projection.Preparer: it remembers
// the tree's size and frontier after the last batch it prepared, so the
// next batch's entries, leaves and stored hashes are computed while the
// previous batch commits. The write checks the tree still has the size the
// batch was prepared on; else it computes the rows again on the tree as
// it is, as Log does.
type Builder struct {
	Log
	pool *pgxpool.Pool

	mu  sync.Mutex
	gen uint64  // bumped by Forget
	mem *memory // nil: nothing known
}

// memory is the tree after every event up to through.
type memory struct {
	through  uint64
	size     int64
	frontier ledger.Hashes
}

var _ projection.Preparer = (*Builder)(nil)

// NewBuilder returns the trail's handler; pool is read to learn the tree's
// state when the builder knows nothing of it.
// policy is which events it logs (see Log).
func NewBuilder(pool *pgxpool.Pool, policy Log) *Builder {
	return &Builder{Log: policy, pool: pool}
}

// Forget drops what the builder remembers.
func (b *Builder) Forget() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.gen++
	b.mem = nil
}

// Prepare computes the batch's rows on the remembered tree, or on the tree
// as committed when the checkpoint is right before the batch (as when the
// projector starts a round). Knowing neither, it leaves the batch to Apply.
func (b *Builder) Prepare(events []event.Event) (projection.Prepared, error) {
	first, last := events[0].Position, events[len(events)-1].Position
	b.mu.Lock()
	m, gen := b.mem, b.gen
	b.mu.Unlock()
	if m == nil || m.through != first-1 {
		var err error
		if m, err = b.load(first - 1); err != nil {
			return nil, err
		}
	}
	p := &prepared{b: b, events: events}
	if m == nil {
		return p, nil
	}
	rows, next, err := build(b.Log, m.size, m.frontier, events)
	if err != nil {
		return nil, err
	}
	p.rows, p.from, p.to = rows, m.size, next.size
	b.mu.Lock()
	if b.gen == gen {
		next.through = last
		b.mem = next
	}
	b.mu.Unlock()
	return p, nil
}

// load reads the committed tree if the checkpoint is at through.
func (b *Builder) load(through uint64) (*memory, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var m *memory
	err := pgx.BeginTxFunc(ctx, b.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var pos, size int64
		err := tx.QueryRow(ctx, `SELECT c.position, t.size FROM trail.checkpoints c, trail.tree t WHERE c.name = $1`, Name).Scan(&pos, &size)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && uint64(pos) != through) {
			return nil
		}
		if err != nil {
			return err
		}
		frontier, err := ReadFrontier(ctx, tx, size)
		if err != nil {
			return err
		}
		m = &memory{through: through, size: size, frontier: frontier}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("trail: read tree: %w", err)
	}
	return m, nil
}

// prepared is a batch, with its rows when they could be computed ahead.
type prepared struct {
	b        *Builder
	events   []event.Event
	rows     *encoded // nil: to be computed in Apply
	from, to int64    // tree sizes before and after
}

// Queue declines: the batch is written with COPY, which PostgreSQL takes
// far faster than the same rows as arrays in a pipelined statement, and
// COPY cannot be pipelined. The few round trips of Apply cost less.
func (p *prepared) Queue(*pgx.Batch) bool { return false }

// Apply writes the batch in tx: the rows computed ahead when the tree is
// still the one they were computed on, else rows computed on the tree as
// it is in tx.
func (p *prepared) Apply(ctx context.Context, tx pgx.Tx) error {
	if p.rows == nil {
		return p.b.Log.Apply(ctx, tx, p.events)
	}
	var size int64
	if err := tx.QueryRow(ctx, `SELECT size FROM trail.tree FOR UPDATE`).Scan(&size); err != nil {
		return fmt.Errorf("tree size: %w", err)
	}
	if size != p.from {
		p.b.Forget()
		return p.b.Log.Apply(ctx, tx, p.events)
	}
	return write(ctx, tx, p.rows, p.to)
}
