package app

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Scheduler records once, as a MeasureOverdue event, every agreed measure
// not implemented by its due date. It finds candidates in the read model,
// which may lag; the decider, on the audit's latest state, decides whether
// the measure is really overdue, and the command's id is derived from the
// measure, so a second scheduler, a restart or a lagging read model never
// records one twice.
type Scheduler struct {
	pool     *pgxpool.Pool
	commands *Commands
	now      func() time.Time
	// Batch bounds the measures one tick handles.
	Batch int
}

// NewScheduler returns a scheduler reading the clock now.
func NewScheduler(pool *pgxpool.Pool, commands *Commands, now func() time.Time) *Scheduler {
	return &Scheduler{pool: pool, commands: commands, now: now, Batch: 500}
}

// Tick records the measures overdue now and returns how many it recorded.
func (s *Scheduler) Tick(ctx context.Context) (int, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT audit_id, measure_id FROM audits.measures
		WHERE overdue_pending AND due_at < $1
		ORDER BY due_at LIMIT $2`, s.now(), s.Batch)
	if err != nil {
		return 0, err
	}
	type due struct{ Audit, Measure string }
	pending, err := pgx.CollectRows(rows, pgx.RowToStructByPos[due])
	if err != nil {
		return 0, err
	}
	recorded := 0
	var errs []error
	for _, d := range pending {
		res, err := s.commands.MarkMeasureOverdue(ctx, d.Audit, d.Measure)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if res.Appended > 0 {
			recorded++
		}
	}
	return recorded, errors.Join(errs...)
}
