package app

import (
	"context"
	"errors"
	"log/slog"
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
	log      *slog.Logger
	// Batch bounds the measures one tick handles.
	Batch int
}

// NewScheduler returns a scheduler reading the clock now.
func NewScheduler(pool *pgxpool.Pool, commands *Commands, now func() time.Time, log *slog.Logger) *Scheduler {
	return &Scheduler{pool: pool, commands: commands, now: now, log: log, Batch: 500}
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

// Run ticks every interval until ctx ends.
func (s *Scheduler) Run(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := s.Tick(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "overdue measure scheduler", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
