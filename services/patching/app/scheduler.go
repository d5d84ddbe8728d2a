package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jsmplatform/jsm/libs/event"
	patchingv1 "github.com/jsmplatform/jsm/proto/gen/jsm/patching/v1"
	"github.com/jsmplatform/jsm/services/patching/domain"
)

// Scheduler records, once each, the due dates that passed with assets
// unfixed and the deferrals that ran out (the clock then runs again). It
// finds candidates in the read model, which may lag; the decider, on the
// remediation's latest state, decides, and each command's id derives from
// what it records, so restarts and several instances record nothing twice.
type Scheduler struct {
	pool     *pgxpool.Pool
	commands *Commands
	now      func() time.Time
	// Batch bounds the remediations one tick handles of each kind.
	Batch int
}

// NewScheduler returns a scheduler reading the clock now.
func NewScheduler(pool *pgxpool.Pool, commands *Commands, now func() time.Time) *Scheduler {
	return &Scheduler{pool: pool, commands: commands, now: now, Batch: 500}
}

// SchedulerActor is who records overdue remediations and expired deferrals.
var SchedulerActor = event.Actor{Org: "jsm", User: "scheduler", Role: "system"}

// Tick records what is due now and returns how many events it appended.
// It pages through every due row (by time, then id), so remediations whose
// command fails cannot crowd out the others.
func (s *Scheduler) Tick(ctx context.Context) (int, error) {
	now := s.now()
	appended := 0
	var errs []error
	run := func(id, key string, cmd domain.Command) {
		res, err := s.commands.Change(ctx, Request{Actor: SchedulerActor, ID: key}, id, cmd)
		if err != nil {
			errs = append(errs, err)
			return
		}
		appended += res.Appended
	}
	type row struct {
		ID       string
		At       time.Time
		Deferral *string
	}
	pages := func(query string, args []any, each func(row)) error {
		var after *row
		for {
			var afterAt *time.Time
			var afterID string
			if after != nil {
				afterAt, afterID = &after.At, after.ID
			}
			rows, err := s.pool.Query(ctx, query, append([]any{now, afterAt, afterID, s.Batch}, args...)...)
			if err != nil {
				return err
			}
			page, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
			if err != nil {
				return err
			}
			for _, r := range page {
				each(r)
			}
			if len(page) < s.Batch || ctx.Err() != nil {
				return nil
			}
			after = &page[len(page)-1]
		}
	}
	// Expiries first: a deferral that ran out gives a new due date.
	err := pages(`
		SELECT remediation_id, deferred_until, deferral_id FROM patching.remediations
		WHERE deferred_until <= $1 AND ($2::timestamptz IS NULL OR (deferred_until, remediation_id) > ($2, $3))
		ORDER BY deferred_until, remediation_id LIMIT $4`, nil, func(r row) {
		run(r.ID, "expire/"+*r.Deferral, &domain.ExpireDeferral{DeferralID: *r.Deferral})
	})
	if err != nil {
		return appended, errors.Join(append(errs, err)...)
	}
	err = pages(`
		SELECT remediation_id, due_at, NULL::text FROM patching.remediations
		WHERE due_at < $1 AND NOT overdue AND status NOT IN ($5, $6, $7)
		  AND ($2::timestamptz IS NULL OR (due_at, remediation_id) > ($2, $3))
		ORDER BY due_at, remediation_id LIMIT $4`,
		[]any{int16(patchingv1.RemediationStatus_REMEDIATION_STATUS_FIXED), int16(patchingv1.RemediationStatus_REMEDIATION_STATUS_DEFERRED),
			int16(patchingv1.RemediationStatus_REMEDIATION_STATUS_NOT_AFFECTED)}, func(r row) {
			run(r.ID, fmt.Sprintf("overdue/%d", r.At.UnixNano()), &domain.MarkOverdue{DueAt: r.At})
		})
	return appended, errors.Join(append(errs, err)...)
}
