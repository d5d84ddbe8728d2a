package app

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Scheduler records once, as an EmergencyReviewOverdue event, every
// emergency change whose review by both parties was not done in time. It
// finds candidates in the read model, which may lag; the decider, on the
// change's latest state, decides whether the review is really overdue, and
// the command's id is derived from the change, so a second scheduler, a
// restart or a lagging read model never records one twice.
type Scheduler struct {
	pool     *pgxpool.Pool
	commands *Commands
	now      func() time.Time
	// Batch bounds the changes one tick handles.
	Batch int
}

// NewScheduler returns a scheduler reading the clock now.
func NewScheduler(pool *pgxpool.Pool, commands *Commands, now func() time.Time) *Scheduler {
	return &Scheduler{pool: pool, commands: commands, now: now, Batch: 500}
}

// Tick records the reviews overdue now and returns how many it recorded.
// It pages through every due review, so changes whose command fails cannot
// crowd out the others.
func (s *Scheduler) Tick(ctx context.Context) (int, error) {
	now := s.now()
	type due struct {
		ID  string
		Due time.Time
	}
	var after *due
	recorded := 0
	var errs []error
	for {
		var afterDue *time.Time
		var afterID string
		if after != nil {
			afterDue, afterID = &after.Due, after.ID
		}
		rows, err := s.pool.Query(ctx, `
			SELECT change_id, review_due_at FROM changeadvisory.changes
			WHERE review_pending AND review_due_at < $1
			  AND ($2::timestamptz IS NULL OR (review_due_at, change_id) > ($2, $3))
			ORDER BY review_due_at, change_id LIMIT $4`, now, afterDue, afterID, s.Batch)
		if err != nil {
			return recorded, errors.Join(append(errs, err)...)
		}
		page, err := pgx.CollectRows(rows, pgx.RowToStructByPos[due])
		if err != nil {
			return recorded, errors.Join(append(errs, err)...)
		}
		for _, d := range page {
			res, err := s.commands.MarkReviewOverdue(ctx, d.ID)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if res.Appended > 0 {
				recorded++
			}
		}
		if len(page) < s.Batch || ctx.Err() != nil {
			return recorded, errors.Join(errs...)
		}
		after = &page[len(page)-1]
	}
}
