package app

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Scheduler records once, as a ClockOverdue event, every deadline that
// passed unmet. It finds candidates in the read model, which may lag; the
// decider, on the incident's latest state, decides whether the clock is
// really overdue, and the command's id is derived from the clock, so a
// second scheduler, a restart or a lagging read model never records one twice.
type Scheduler struct {
	pool     *pgxpool.Pool
	commands *Commands
	now      func() time.Time
	// Batch bounds the clocks one tick handles.
	Batch int
}

// NewScheduler returns a scheduler reading the clock now.
func NewScheduler(pool *pgxpool.Pool, commands *Commands, now func() time.Time) *Scheduler {
	return &Scheduler{pool: pool, commands: commands, now: now, Batch: 500}
}

// Tick records the clocks overdue now and returns how many it recorded. It
// pages through every due clock, so clocks whose command fails (and stay
// due) cannot crowd out the others.
func (s *Scheduler) Tick(ctx context.Context) (int, error) {
	now := s.now()
	type due struct {
		Incident, Clock string
		Due             time.Time
	}
	var after *due
	recorded := 0
	var errs []error
	for {
		var afterDue *time.Time
		var afterIncident, afterClock string
		if after != nil {
			afterDue, afterIncident, afterClock = &after.Due, after.Incident, after.Clock
		}
		rows, err := s.pool.Query(ctx, `
			SELECT incident_id, clock_id, due_at FROM incidents.clocks
			WHERE met_at IS NULL AND NOT overdue AND due_at < $1
			  AND ($2::timestamptz IS NULL OR (due_at, incident_id, clock_id) > ($2, $3, $4))
			ORDER BY due_at, incident_id, clock_id LIMIT $5`, now, afterDue, afterIncident, afterClock, s.Batch)
		if err != nil {
			return recorded, errors.Join(append(errs, err)...)
		}
		page, err := pgx.CollectRows(rows, pgx.RowToStructByPos[due])
		if err != nil {
			return recorded, errors.Join(append(errs, err)...)
		}
		for _, d := range page {
			res, err := s.commands.MarkOverdue(ctx, d.Incident, d.Clock)
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
