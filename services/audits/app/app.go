// Package app holds the audits service's use cases: commands run through
// the event-sourcing runner, queries read the projection, and the scheduler
// records measures not implemented by their due date.
package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jsmplatform/jsm/libs/decide"
	"github.com/jsmplatform/jsm/libs/es"
	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/services/audits/domain"
	cdomain "github.com/jsmplatform/jsm/services/contracts/domain"
	"github.com/jsmplatform/jsm/services/contracts/known"
)

// Application groups the use cases.
type Application struct {
	Commands *Commands
	Queries  *Queries
}

// AuditRunner runs the audit aggregate.
type AuditRunner = es.Runner[domain.State, domain.Command]

// ChecklistRunner runs the checklist aggregate (one per contract).
type ChecklistRunner = es.Runner[domain.Checklist, domain.Command]

// Request is what every command needs besides its body.
type Request = es.Request

// Commands changes audits and checklists.
type Commands struct {
	audits     *AuditRunner
	checklists *ChecklistRunner
	contracts  *Contracts
	now        func() time.Time
	// plans serialises the plans of this instance: a plan counts the
	// audits planned before it in the read model.
	plans sync.Mutex
}

// NewCommands returns the command handlers.
func NewCommands(audits *AuditRunner, checklists *ChecklistRunner, contracts *Contracts, now func() time.Time) (*Commands, error) {
	if audits == nil || checklists == nil || contracts == nil || now == nil {
		return nil, errors.New("app: runners, contracts and clock are required")
	}
	return &Commands{audits: audits, checklists: checklists, contracts: contracts, now: now}, nil
}

// Result of a command.
type Result struct {
	ID       string // the audit, or the finding or measure the command created
	Position uint64
	State    domain.State
	// Appended counts the events the command appended: none for a no-op
	// or a retried request.
	Appended int
}

// Plan plans an audit on a contract within its audit rights and gives the
// audited party notice. With a request id the audit id is derived from
// it, so a retried request finds the audit it planned the first time.
func (c *Commands) Plan(ctx context.Context, req Request, contractID string, cmd *domain.PlanAudit) (Result, error) {
	if domain.Missing(cmd) {
		return Result{}, domain.ValidationError{Field: "command", Reason: "missing"}
	}
	c.plans.Lock()
	defer c.plans.Unlock()
	k, err := c.contracts.Lookup(ctx, contractID, cmd.StartsAt)
	if err != nil {
		return Result{}, err
	}
	cmd.Contract = k
	cmd.AuditID = es.NewID("audits.plan", req)
	res, err := c.handle(ctx, req, cmd.AuditID, cmd)
	return res, decide.HideContract(err, contractID)
}

// Audit runs a command on an existing audit; who gives it and when come
// from the request and the clock. A finding or measure the command creates
// gets its id here (derived from the audit and the request id when there
// is one, so the same key on another audit names another object); the
// result's ID names it.
func (c *Commands) Audit(ctx context.Context, req Request, auditID string, cmd domain.Command) (Result, error) {
	if domain.Missing(cmd) {
		return Result{}, domain.ValidationError{Field: "command", Reason: "missing"}
	}
	id := auditID
	switch x := cmd.(type) {
	case *domain.RecordFinding:
		x.FindingID = es.NewID("audits.finding/"+auditID, req)
		id = x.FindingID
	case *domain.ProposeMeasure:
		x.MeasureID = es.NewID("audits.measure/"+auditID, req)
		id = x.MeasureID
	}
	res, err := c.handle(ctx, req, auditID, cmd)
	if errors.Is(err, domain.NotFoundError{What: "audit"}) || errors.Is(err, domain.ErrNotParty) {
		// Audits of other orgs' contracts are not found, whether or not they exist.
		err = domain.NotFoundError{What: "audit", ID: auditID}
	}
	res.ID = id
	return res, err
}

func (c *Commands) handle(ctx context.Context, req Request, auditID string, cmd domain.Command) (Result, error) {
	domain.Stamp(cmd, es.ActorOf(req), c.now().UTC())
	res, err := c.audits.Handle(ctx, es.CommandFor(req, auditID, cmd))
	if err != nil {
		return Result{}, err
	}
	return Result{ID: auditID, Position: res.Position, State: res.State, Appended: len(res.Events)}, nil
}

// MarkMeasureOverdue is the scheduler's command: the platform, not a
// party, gives it, with a command id derived from the measure, so that the
// missed due date is recorded once however often and by whichever process
// it is given.
func (c *Commands) MarkMeasureOverdue(ctx context.Context, auditID, measureID string) (Result, error) {
	req := Request{Actor: SchedulerActor, ID: "overdue/measure/" + measureID}
	return c.Audit(ctx, req, auditID, &domain.MarkMeasureOverdue{MeasureID: measureID})
}

// SchedulerActor is who records overdue measures.
var SchedulerActor = event.Actor{Org: "jsm", User: "scheduler", Role: "system"}

// Checklist runs a command (SetCheckTemplate, RecordCheckResult) on the
// checklist of a contract.
func (c *Commands) Checklist(ctx context.Context, req Request, contractID string, cmd domain.Command) (uint64, error) {
	var k *domain.Contract
	switch x := cmd.(type) {
	case *domain.SetCheckTemplate:
		k = &x.Contract
	case *domain.RecordCheckResult:
		k = &x.Contract
	default:
		return 0, domain.ValidationError{Field: "command", Reason: fmt.Sprintf("not a checklist command: %T", cmd)}
	}
	found, err := c.contracts.Lookup(ctx, contractID, time.Time{})
	if err != nil {
		return 0, err
	}
	if found.ID == "" {
		return 0, domain.NotFoundError{What: "contract", ID: contractID}
	}
	*k = found
	domain.Stamp(cmd, es.ActorOf(req), c.now().UTC())
	res, err := c.checklists.Handle(ctx, es.CommandFor(req, contractID, cmd))
	if err != nil {
		return 0, decide.HideContract(err, contractID)
	}
	return res.Position, nil
}

// Contracts answers what an audit plan needs to know of its contract.
type Contracts struct {
	known *known.Contracts
	pool  *pgxpool.Pool
}

// NewContracts returns the lookup over the contracts the service learns
// and the audits it keeps.
func NewContracts(k *known.Contracts, pool *pgxpool.Pool) *Contracts {
	return &Contracts{known: k, pool: pool}
}

// Lookup returns the contract as the stream has it now, with the count of
// its audits planned to start in the calendar year (UTC) of startsAt when
// that is given; an unknown contract is the zero Contract. The known
// lookup waits until the read model has the whole stream, so the count
// includes every audit planned before.
func (c *Contracts) Lookup(ctx context.Context, id string, startsAt time.Time) (domain.Contract, error) {
	s, ok, err := c.known.Get(ctx, id)
	if err != nil || !ok {
		return domain.Contract{}, err
	}
	k := ContractOf(s)
	if !startsAt.IsZero() {
		y := startsAt.UTC().Year()
		from := time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC)
		err := c.pool.QueryRow(ctx, `SELECT count(*) FROM audits.audits WHERE contract_id = $1 AND starts_at >= $2 AND starts_at < $3`,
			id, from, from.AddDate(1, 0, 0)).Scan(&k.PlannedInYear)
		if err != nil {
			return domain.Contract{}, fmt.Errorf("audits of contract %s in %d: %w", id, y, err)
		}
	}
	return k, nil
}

// ContractOf maps a folded contract to what an audit needs of it.
func ContractOf(s cdomain.State) domain.Contract {
	k := domain.Contract{ID: string(s.ID), Customer: domain.OrgID(s.Customer), Provider: domain.OrgID(s.Provider), InForce: s.InForce != nil}
	if s.Termination != nil {
		k.EndsAt = s.Termination.EffectiveDate
	}
	if s.InForce != nil {
		r := s.InForce.Terms.Levels.AuditRights
		k.PerYear, k.Notice, k.OnSite = int(r.PerYear), r.Notice, r.OnSite
	}
	return k
}
