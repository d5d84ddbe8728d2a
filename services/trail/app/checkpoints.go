package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/jsmplatform/jsm/services/trail/ledger"
	"github.com/jsmplatform/jsm/services/trail/projection"
)

// Head is a signed checkpoint as stored.
type Head struct {
	ledger.Checkpoint
	Note string
}

// latestHead is the signed checkpoint of the largest tree, if any.
func latestHead(ctx context.Context, q pgx.Tx) (Head, bool, error) {
	var h Head
	var root []byte
	err := q.QueryRow(ctx, `SELECT size, root, note FROM trail.tree_heads ORDER BY size DESC LIMIT 1`).Scan(&h.Size, &root, &h.Note)
	if errors.Is(err, pgx.ErrNoRows) {
		return Head{}, false, nil
	}
	if err != nil {
		return Head{}, false, fmt.Errorf("latest checkpoint: %w", err)
	}
	h.Root = tlog.Hash(root)
	h.Origin, _, _ = strings.Cut(h.Note, "\n") // a checkpoint's first line
	return h, true, nil
}

// Sign signs a checkpoint of the tree as it is, unless the latest signed one
// already covers it, and returns the latest signed checkpoint. Before
// signing a larger tree it checks that the tree still has the root signed
// last: a log that lost or changed entries must not sign a new history.
func (a *App) Sign(ctx context.Context) (Head, error) {
	for try := 0; ; try++ {
		h, err := a.sign(ctx)
		// Two signers of one size at once: one wins, the other tries again
		// and finds the size signed.
		if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Code == "40001" && try < 3 {
			continue
		}
		return h, err
	}
}

func (a *App) sign(ctx context.Context) (Head, error) {
	var out Head
	err := pgx.BeginTxFunc(ctx, a.Pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		var size int64
		if err := tx.QueryRow(ctx, `SELECT size FROM trail.tree`).Scan(&size); err != nil {
			return fmt.Errorf("tree size: %w", err)
		}
		last, ok, err := latestHead(ctx, tx)
		if err != nil {
			return err
		}
		out = last
		if size == 0 || (ok && size <= last.Size) {
			return nil
		}
		reader := projection.HashReader(ctx, tx)
		if ok {
			root, err := tlog.TreeHash(last.Size, reader)
			if err != nil {
				return fmt.Errorf("root at %d: %w", last.Size, err)
			}
			if root != last.Root {
				return fmt.Errorf("%w: size %d was signed with root %s, the log now gives %s", ErrDiverged, last.Size, last.Root, root)
			}
		}
		root, err := tlog.TreeHash(size, reader)
		if err != nil {
			return fmt.Errorf("root at %d: %w", size, err)
		}
		c := ledger.Checkpoint{Origin: a.Signer.Name(), Size: size, Root: root}
		note, err := a.Signer.Sign(c)
		if err != nil {
			return err
		}
		// Another instance may sign the same size at the same time: the
		// same tree gives the same root, so either note will do.
		if _, err := tx.Exec(ctx, `INSERT INTO trail.tree_heads (size, root, note) VALUES ($1, $2, $3) ON CONFLICT (size) DO NOTHING`,
			size, root[:], note); err != nil {
			return fmt.Errorf("store checkpoint: %w", err)
		}
		out = Head{Checkpoint: c, Note: note}
		return nil
	})
	return out, err
}

// SignEvery signs a checkpoint whenever every entries have been added since
// the last one, or interval has passed and any have, until ctx ends.
func (a *App) SignEvery(ctx context.Context, every int64, interval time.Duration, log *slog.Logger) error {
	poll := min(interval, 250*time.Millisecond)
	tick := time.NewTicker(poll)
	defer tick.Stop()
	var signed int64
	lastAt := a.Now()
	var failedAt time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		var size int64
		if err := a.Pool.QueryRow(ctx, `SELECT size FROM trail.tree`).Scan(&size); err != nil {
			if ctx.Err() == nil {
				log.Warn("trail: read tree size", "err", err)
			}
			continue
		}
		if size <= signed || (size-signed < every && a.Now().Sub(lastAt) < interval) || a.Now().Sub(failedAt) < interval {
			continue
		}
		h, err := a.Sign(ctx)
		if err != nil {
			// Loud, but once an interval: a diverging log stays so.
			if ctx.Err() == nil {
				log.Error("trail: cannot sign a checkpoint", "size", size, "err", err)
			}
			failedAt = a.Now()
			continue
		}
		signed, lastAt = h.Size, a.Now()
	}
}

// Checkpoint returns the latest signed checkpoint, signing one first when
// none covers the trail up to minPosition (or none exists).
func (a *App) Checkpoint(ctx context.Context, minPosition uint64) (Head, error) {
	if err := a.wait(ctx, minPosition); err != nil {
		return Head{}, err
	}
	h, ok, err := a.latest(ctx)
	if err != nil {
		return Head{}, err
	}
	if !ok || minPosition > 0 {
		if h, err = a.Sign(ctx); err != nil {
			return Head{}, err
		}
	}
	if h.Size == 0 {
		return Head{}, fmt.Errorf("%w: the trail is empty", ErrNotYet)
	}
	return h, nil
}

// headOf is the signed checkpoint of exactly size, if there is one.
func (a *App) headOf(ctx context.Context, size int64) (string, error) {
	var note string
	err := a.Pool.QueryRow(ctx, `SELECT note FROM trail.tree_heads WHERE size = $1`, size).Scan(&note)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return note, err
}

func (a *App) treeSize(ctx context.Context) (int64, error) {
	var size int64
	if err := a.Pool.QueryRow(ctx, `SELECT size FROM trail.tree`).Scan(&size); err != nil {
		return 0, fmt.Errorf("tree size: %w", err)
	}
	return size, nil
}

// checkSize makes sure the stored tree has at least size entries.
func (a *App) checkSize(ctx context.Context, size int64) error {
	have, err := a.treeSize(ctx)
	if err != nil {
		return err
	}
	if size > have {
		return fmt.Errorf("%w: tree size %d asked, the trail holds %d entries", ErrNotYet, size, have)
	}
	return nil
}
