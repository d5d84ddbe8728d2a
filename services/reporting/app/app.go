// Package app holds the reporting service's use cases: report commands run
// through the event-sourcing runner, queries (KPIs, the situation, reports
// and their renderings) read the projection, and the scheduler generates
// reports on each contract's cadence and records missed due dates.
package app

import (
	"context"
	"errors"
	"time"

	"github.com/jsmplatform/jsm/libs/es"
	"github.com/jsmplatform/jsm/libs/event"
	reportingv1 "github.com/jsmplatform/jsm/proto/gen/jsm/reporting/v1"
	"github.com/jsmplatform/jsm/services/contracts/known"
	"github.com/jsmplatform/jsm/services/reporting/domain"
)

// Application groups the use cases.
type Application struct {
	Commands *Commands
	Queries  *Queries
}

// ReportRunner runs the report aggregate.
type ReportRunner = es.Runner[domain.Report, domain.Command]

// Request is what every command needs besides its body.
type Request = es.Request

// Commands changes reports.
type Commands struct {
	reports   *ReportRunner
	contracts *known.Contracts
	queries   *Queries
	now       func() time.Time
}

// NewCommands returns the command handlers.
func NewCommands(reports *ReportRunner, contracts *known.Contracts, queries *Queries, now func() time.Time) (*Commands, error) {
	if reports == nil || contracts == nil || queries == nil || now == nil {
		return nil, errors.New("app: runner, contracts, queries and clock are required")
	}
	return &Commands{reports: reports, contracts: contracts, queries: queries, now: now}, nil
}

// Result of a command.
type Result struct {
	ID       string
	Position uint64
	State    domain.Report
	Appended int
}

// SchedulerActor is who generates scheduled reports and records overdue ones.
var SchedulerActor = event.Actor{Org: "jsm", User: "scheduler", Role: "system"}

// Generate freezes the KPIs of a period of a contract into a new report.
// With a request id the report id is derived from it, so a retried
// request finds the report it generated the first time.
func (c *Commands) Generate(ctx context.Context, req Request, contractID string, start, end time.Time) (Result, error) {
	return c.generate(ctx, req, es.NewID("reporting.report", req), contractID, start, end, false)
}

func (c *Commands) generate(ctx context.Context, req Request, id, contractID string, start, end time.Time, scheduled bool) (Result, error) {
	s, ok, err := c.contracts.Get(ctx, contractID) // waits until the read model has the whole stream
	if err != nil {
		return Result{}, err
	}
	k := domain.Contract{}
	if ok {
		k = domain.Contract{ID: string(s.ID), Customer: domain.OrgID(s.Customer), Provider: domain.OrgID(s.Provider)}
	}
	if !scheduled && !k.IsParty(domain.OrgID(req.Actor.Org)) {
		return Result{}, domain.NotFoundError{What: "contract", ID: contractID}
	}
	cmd := &domain.GenerateReport{ReportID: id, Contract: k, PeriodStart: start.UTC(), PeriodEnd: end.UTC(), Scheduled: scheduled}
	if ok && end.After(start) {
		if cmd.Kpis, err = c.queries.kpis(ctx, string(k.Customer), s, start.UTC(), end.UTC()); err != nil {
			return Result{}, err
		}
	}
	res, err := c.handle(ctx, req, id, cmd)
	if errors.Is(err, domain.ErrNotParty) {
		err = domain.NotFoundError{What: "contract", ID: contractID}
	}
	return res, err
}

// Report runs a command (DeliverReport, AcknowledgeReport) on a report.
func (c *Commands) Report(ctx context.Context, req Request, reportID string, cmd domain.Command) (Result, error) {
	if domain.Missing(cmd) {
		return Result{}, domain.ValidationError{Field: "command", Reason: "missing"}
	}
	res, err := c.handle(ctx, req, reportID, cmd)
	if errors.Is(err, domain.NotFoundError{What: "report"}) || errors.Is(err, domain.ErrNotParty) {
		// Reports of other orgs' contracts are not found, whether or not they exist.
		err = domain.NotFoundError{What: "report", ID: reportID}
	}
	return res, err
}

func (c *Commands) handle(ctx context.Context, req Request, id string, cmd domain.Command) (Result, error) {
	domain.Stamp(cmd, es.ActorOf(req), c.now().UTC())
	res, err := c.reports.Handle(ctx, es.CommandFor(req, id, cmd))
	if err != nil {
		return Result{}, err
	}
	return Result{ID: id, Position: res.Position, State: res.State, Appended: len(res.Events)}, nil
}

// GenerateScheduled generates the report of a closed period on the
// contract's cadence. Its id and command id derive from the contract and
// the period, so however often and by whichever process it is given, a
// period gets one scheduled report.
func (c *Commands) GenerateScheduled(ctx context.Context, contractID string, start, end time.Time) (Result, error) {
	key := contractID + "/" + start.UTC().Format(time.RFC3339) + "/" + end.UTC().Format(time.RFC3339)
	req := Request{Actor: SchedulerActor, ID: "scheduled/" + key}
	return c.generate(ctx, req, event.DeriveID("reporting.scheduled/"+key, 0), contractID, start, end, true)
}

// MarkOverdue records a report's missed due date once.
func (c *Commands) MarkOverdue(ctx context.Context, reportID string, kind reportingv1.OverdueKind) (Result, error) {
	req := Request{Actor: SchedulerActor, ID: "overdue/" + kind.String() + "/" + reportID}
	return c.Report(ctx, req, reportID, &domain.MarkReportOverdue{Kind: kind})
}
