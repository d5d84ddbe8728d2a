package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	reportingv1 "github.com/jsmplatform/jsm/proto/gen/jsm/reporting/v1"
	cdomain "github.com/jsmplatform/jsm/services/contracts/domain"
	"github.com/jsmplatform/jsm/services/reporting/domain"
)

// Scheduler generates, for every contract in force with a report cadence,
// the report of the latest closed period (boundaries in UTC), and records
// once, as ReportOverdue, every report not delivered or not acknowledged
// by its due date. It finds candidates in the read model, which may lag;
// the decider decides on the report's latest state, and the command ids
// derive from the contract and period or from the report and kind, so a
// second scheduler, a restart or a lagging read model records nothing twice.
type Scheduler struct {
	pool     *pgxpool.Pool
	commands *Commands
	now      func() time.Time
	// Batch bounds the rows one query of a tick reads; a tick pages through all.
	Batch int
}

// NewScheduler returns a scheduler reading the clock now.
func NewScheduler(pool *pgxpool.Pool, commands *Commands, now func() time.Time) *Scheduler {
	return &Scheduler{pool: pool, commands: commands, now: now, Batch: 500}
}

// Tick generates the reports due and records the overdue ones; it returns
// how many events it appended.
func (s *Scheduler) Tick(ctx context.Context) (int, error) {
	now := s.now().UTC()
	appended := 0
	var errs []error
	count := func(res Result, err error) {
		if err != nil {
			errs = append(errs, err)
			return
		}
		appended += res.Appended
	}
	// Reports on each contract's cadence, paging by contract id.
	after := ""
	for ctx.Err() == nil {
		rows, err := s.pool.Query(ctx, `SELECT contract_id, state FROM reporting.contracts WHERE contract_id > $1 ORDER BY contract_id LIMIT $2`, after, s.Batch)
		if err != nil {
			return appended, errors.Join(append(errs, err)...)
		}
		type row struct {
			ID    string
			State []byte
		}
		page, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
		if err != nil {
			return appended, errors.Join(append(errs, err)...)
		}
		for _, r := range page {
			var c cdomain.State
			if err := json.Unmarshal(r.State, &c); err != nil {
				errs = append(errs, fmt.Errorf("contract %s: %w", r.ID, err))
				continue
			}
			start, end, ok := due(c, now)
			if !ok {
				continue
			}
			var exists bool
			if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM reporting.reports WHERE contract_id = $1 AND period_start = $2 AND period_end = $3 AND (state->>'scheduled')::boolean)`,
				r.ID, start, end).Scan(&exists); err != nil {
				errs = append(errs, err)
				continue
			}
			if !exists {
				count(s.commands.GenerateScheduled(ctx, r.ID, start, end))
			}
		}
		if len(page) < s.Batch {
			break
		}
		after = page[len(page)-1].ID
	}
	// Missed due dates, paging by (due date, report id).
	for _, q := range []struct {
		kind reportingv1.OverdueKind
		sql  string
	}{
		{reportingv1.OverdueKind_OVERDUE_KIND_DELIVERY, `SELECT report_id, delivery_due_at FROM reporting.reports
			WHERE delivery_pending AND delivery_due_at < $1 AND ($2::timestamptz IS NULL OR (delivery_due_at, report_id) > ($2, $3))
			ORDER BY delivery_due_at, report_id LIMIT $4`},
		{reportingv1.OverdueKind_OVERDUE_KIND_ACKNOWLEDGEMENT, `SELECT report_id, ack_due_at FROM reporting.reports
			WHERE ack_pending AND ack_due_at < $1 AND ($2::timestamptz IS NULL OR (ack_due_at, report_id) > ($2, $3))
			ORDER BY ack_due_at, report_id LIMIT $4`},
	} {
		var afterAt *time.Time
		afterID := ""
		for ctx.Err() == nil {
			rows, err := s.pool.Query(ctx, q.sql, now, afterAt, afterID, s.Batch)
			if err != nil {
				return appended, errors.Join(append(errs, err)...)
			}
			type row struct {
				ID string
				At time.Time
			}
			page, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
			if err != nil {
				return appended, errors.Join(append(errs, err)...)
			}
			for _, r := range page {
				count(s.commands.MarkOverdue(ctx, r.ID, q.kind))
			}
			if len(page) < s.Batch {
				break
			}
			last := page[len(page)-1]
			afterAt, afterID = &last.At, last.ID
		}
	}
	return appended, errors.Join(errs...)
}

// due returns the latest closed period of the contract's cadence at now,
// when the contract existed then and was not terminated before it.
func due(c cdomain.State, now time.Time) (time.Time, time.Time, bool) {
	if c.InForce == nil {
		return time.Time{}, time.Time{}, false
	}
	start, end, ok := domain.LastClosedPeriod(c.InForce.Terms.Levels.ReportCadence, now)
	if !ok {
		return start, end, false
	}
	if !c.CreatedAt.IsZero() && !c.CreatedAt.Before(end) {
		return start, end, false // no report on a period before the contract
	}
	if c.Termination != nil && !c.Termination.EffectiveDate.IsZero() && !c.Termination.EffectiveDate.After(start) {
		return start, end, false
	}
	return start, end, true
}
