package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	log      *slog.Logger
	// Batch bounds the remediations one tick handles of each kind.
	Batch int
}

// NewScheduler returns a scheduler reading the clock now.
func NewScheduler(pool *pgxpool.Pool, commands *Commands, now func() time.Time, log *slog.Logger) *Scheduler {
	return &Scheduler{pool: pool, commands: commands, now: now, log: log, Batch: 500}
}

// SchedulerActor is who records overdue remediations and expired deferrals.
var SchedulerActor = event.Actor{Org: "jsm", User: "scheduler", Role: "system"}

// Tick records what is due now and returns how many events it appended.
func (s *Scheduler) Tick(ctx context.Context) (int, error) {
	now := s.now()
	type due struct {
		ID  string
		Due time.Time
	}
	rows, err := s.pool.Query(ctx, `
		SELECT remediation_id, due_at FROM patching.remediations
		WHERE due_at < $1 AND NOT overdue AND status NOT IN ($2, $3, $4)
		ORDER BY due_at LIMIT $5`,
		now, int16(patchingv1.RemediationStatus_REMEDIATION_STATUS_FIXED), int16(patchingv1.RemediationStatus_REMEDIATION_STATUS_DEFERRED),
		int16(patchingv1.RemediationStatus_REMEDIATION_STATUS_NOT_AFFECTED), s.Batch)
	if err != nil {
		return 0, err
	}
	overdue, err := pgx.CollectRows(rows, pgx.RowToStructByPos[due])
	if err != nil {
		return 0, err
	}
	type expiring struct{ ID, Deferral string }
	rows, err = s.pool.Query(ctx, `
		SELECT remediation_id, deferral_id FROM patching.remediations
		WHERE deferred_until <= $1 ORDER BY deferred_until LIMIT $2`, now, s.Batch)
	if err != nil {
		return 0, err
	}
	expired, err := pgx.CollectRows(rows, pgx.RowToStructByPos[expiring])
	if err != nil {
		return 0, err
	}
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
	for _, d := range expired {
		run(d.ID, "expire/"+d.Deferral, &domain.ExpireDeferral{DeferralID: d.Deferral})
	}
	for _, d := range overdue {
		run(d.ID, fmt.Sprintf("overdue/%d", d.Due.UnixNano()), &domain.MarkOverdue{DueAt: d.Due})
	}
	return appended, errors.Join(errs...)
}

// Run ticks every interval until ctx ends.
func (s *Scheduler) Run(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := s.Tick(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "patching scheduler", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
