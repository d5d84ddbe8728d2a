// Package app holds the change advisory service's use cases: commands run
// through the event-sourcing runner, queries read the projection, and the
// scheduler records emergency reviews that were not done in time.
package app

import (
	"context"
	"errors"
	"time"

	"github.com/jsmplatform/jsm/libs/decide"
	"github.com/jsmplatform/jsm/libs/es"
	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/services/changeadvisory/domain"
	cdomain "github.com/jsmplatform/jsm/services/contracts/domain"
	"github.com/jsmplatform/jsm/services/contracts/known"
)

// Application groups the use cases.
type Application struct {
	Commands *Commands
	Queries  *Queries
}

// ChangeRunner runs the change aggregate.
type ChangeRunner = es.Runner[domain.State, domain.Command]

// Request is what every command needs besides its body. (The es runner
// takes no causation: an event's causation is the id of the command that
// caused it.)
type Request = es.Request

// Commands changes changes.
type Commands struct {
	changes   *ChangeRunner
	contracts *Contracts
	now       func() time.Time
}

// NewCommands returns the command handlers.
func NewCommands(changes *ChangeRunner, contracts *Contracts, now func() time.Time) (*Commands, error) {
	if changes == nil || contracts == nil || now == nil {
		return nil, errors.New("app: runner, contracts and clock are required")
	}
	return &Commands{changes: changes, contracts: contracts, now: now}, nil
}

// Result of a command.
type Result struct {
	ID       string // the change
	Position uint64
	State    domain.State
	// Appended counts the events the command appended: none for a no-op
	// or a retried request.
	Appended int
}

// Request opens a change on a contract; the actor is either party (a
// person, or the platform acting for a party, e.g. the patching reactor as
// {Org: provider, User: "patching-reactor", Role: "system"}). With a
// request id the change id is derived from it, so a retried request finds
// the change it opened the first time.
func (c *Commands) Request(ctx context.Context, req Request, contractID string, cmd *domain.RequestChange) (Result, error) {
	if domain.Missing(cmd) {
		return Result{}, domain.ValidationError{Field: "command", Reason: "missing"}
	}
	k, err := c.contracts.Lookup(ctx, contractID)
	if err != nil {
		return Result{}, err
	}
	cmd.Contract = k
	cmd.ChangeID = es.NewID("changeadvisory.request", req)
	res, err := c.handle(ctx, req, cmd.ChangeID, cmd)
	return res, decide.HideContract(err, contractID)
}

// Change runs a command on an existing change; who gives it and when come
// from the request and the clock.
func (c *Commands) Change(ctx context.Context, req Request, changeID string, cmd domain.Command) (Result, error) {
	if domain.Missing(cmd) {
		return Result{}, domain.ValidationError{Field: "command", Reason: "missing"}
	}
	res, err := c.handle(ctx, req, changeID, cmd)
	if errors.Is(err, domain.NotFoundError{What: "change"}) || errors.Is(err, domain.ErrNotParty) {
		// Changes of other orgs' contracts are not found, whether or not they exist.
		err = domain.NotFoundError{What: "change", ID: changeID}
	}
	return res, err
}

func (c *Commands) handle(ctx context.Context, req Request, changeID string, cmd domain.Command) (Result, error) {
	domain.Stamp(cmd, es.ActorOf(req), c.now().UTC())
	res, err := c.changes.Handle(ctx, es.CommandFor(req, changeID, cmd))
	if err != nil {
		return Result{}, err
	}
	return Result{ID: changeID, Position: res.Position, State: res.State, Appended: len(res.Events)}, nil
}

// MarkReviewOverdue is the scheduler's command: the platform, not a party,
// gives it, with a command id derived from the change, so that the overdue
// review is recorded once however often and by whichever process it is given.
func (c *Commands) MarkReviewOverdue(ctx context.Context, changeID string) (Result, error) {
	req := Request{Actor: SchedulerActor, ID: "overdue/emergency-review/" + changeID}
	return c.Change(ctx, req, changeID, &domain.MarkReviewOverdue{})
}

// SchedulerActor is who records overdue reviews.
var SchedulerActor = event.Actor{Org: "jsm", User: "scheduler", Role: "system"}

// Contracts answers what a change needs to know of its contract.
type Contracts struct{ known *known.Contracts }

// NewContracts returns the lookup over the contracts the service learns.
func NewContracts(k *known.Contracts) *Contracts { return &Contracts{known: k} }

// Lookup returns the contract as the stream has it now; an unknown
// contract is the zero Contract.
func (c *Contracts) Lookup(ctx context.Context, id string) (domain.Contract, error) {
	s, ok, err := c.known.Get(ctx, id)
	if err != nil || !ok {
		return domain.Contract{}, err
	}
	return ContractOf(s), nil
}

// ContractOf maps a folded contract to what a change needs of it.
func ContractOf(s cdomain.State) domain.Contract {
	k := domain.Contract{ID: string(s.ID), Customer: domain.OrgID(s.Customer), Provider: domain.OrgID(s.Provider), InForce: s.InForce != nil}
	if s.Termination != nil {
		k.EndsAt = s.Termination.EffectiveDate
	}
	if s.InForce != nil {
		l := s.InForce.Terms.Levels
		k.CustomerApprovalCategories = append(k.CustomerApprovalCategories, l.CustomerApprovalCategories...)
		for _, w := range l.MaintenanceWindows {
			k.MaintenanceWindows = append(k.MaintenanceWindows, domain.Window{Weekday: w.Weekday, Start: w.Start, Duration: w.Duration, TimeZone: w.TimeZone})
		}
		k.EmergencyReviewWithin = l.EmergencyChangeReviewWithin
	}
	return k
}
