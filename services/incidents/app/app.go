// Package app holds the incidents service's use cases: commands run through
// the event-sourcing runners, queries read the projection, and the
// scheduler records deadlines that passed.
package app

import (
	"context"
	"errors"
	"time"

	"github.com/jsmplatform/jsm/libs/decide"
	"github.com/jsmplatform/jsm/libs/es"
	"github.com/jsmplatform/jsm/libs/event"
	cdomain "github.com/jsmplatform/jsm/services/contracts/domain"
	"github.com/jsmplatform/jsm/services/contracts/known"
	"github.com/jsmplatform/jsm/services/incidents/domain"
)

// Application groups the use cases.
type Application struct {
	Commands *Commands
	Queries  *Queries
}

// IncidentRunner and ExerciseRunner run the area's two aggregates.
type (
	IncidentRunner = es.Runner[domain.State, domain.Command]
	ExerciseRunner = es.Runner[domain.Exercise, domain.ExerciseCommand]
)

// Request is what every command needs besides its body.
type Request = es.Request

// Commands changes incidents and exercises.
type Commands struct {
	incidents *IncidentRunner
	exercises *ExerciseRunner
	contracts *Contracts
	now       func() time.Time
}

// NewCommands returns the command handlers.
func NewCommands(incidents *IncidentRunner, exercises *ExerciseRunner, contracts *Contracts, now func() time.Time) (*Commands, error) {
	if incidents == nil || exercises == nil || contracts == nil || now == nil {
		return nil, errors.New("app: runners, contracts and clock are required")
	}
	return &Commands{incidents: incidents, exercises: exercises, contracts: contracts, now: now}, nil
}

// Result of a command.
type Result struct {
	ID       string // the incident or exercise
	Position uint64
	State    domain.State
	// Appended counts the events the command appended: none for a no-op
	// or a retried request.
	Appended int
}

// Report opens an incident. With a request id the incident id is derived
// from it, so a retried report finds the incident it opened the first time.
func (c *Commands) Report(ctx context.Context, req Request, contractID string, cmd *domain.ReportIncident) (Result, error) {
	k, err := c.contracts.Lookup(ctx, contractID)
	if err != nil {
		return Result{}, err
	}
	cmd.Contract = k
	cmd.IncidentID = es.NewID("incidents.report", req)
	res, err := c.Change(ctx, req, cmd.IncidentID, cmd)
	return res, decide.HideContract(err, contractID)
}

// Change runs a command on an existing incident; who gives it and when
// come from the request and the clock.
func (c *Commands) Change(ctx context.Context, req Request, incidentID string, cmd domain.Command) (Result, error) {
	domain.Stamp(cmd, es.ActorOf(req), c.now().UTC())
	res, err := c.incidents.Handle(ctx, es.CommandFor(req, incidentID, cmd))
	if errors.Is(err, domain.NotFoundError{What: "incident"}) || errors.Is(err, domain.ErrNotParty) {
		// Incidents of other orgs' contracts are not found, whether or not they exist.
		err = domain.NotFoundError{What: "incident", ID: incidentID}
	}
	if err != nil {
		return Result{}, err
	}
	return Result{ID: incidentID, Position: res.Position, State: res.State, Appended: len(res.Events)}, nil
}

// ItemID is the id of what a command adds to an incident (a notification,
// a task, a timeline entry): derived from the request id when there is one,
// so that a retry names the same item.
func ItemID(kind string, req Request) string { return es.NewID("incidents."+kind, req) }

// MarkOverdue is the scheduler's command: the platform, not a party, gives it.
func (c *Commands) MarkOverdue(ctx context.Context, incidentID, clockID string) (Result, error) {
	req := Request{Actor: SchedulerActor, ID: "overdue/" + clockID}
	return c.Change(ctx, req, incidentID, &domain.MarkOverdue{ClockID: clockID})
}

// SchedulerActor is who records overdue deadlines.
var SchedulerActor = event.Actor{Org: "jsm", User: "scheduler", Role: "system"}

// ScheduleExercise plans an exercise on a contract.
func (c *Commands) ScheduleExercise(ctx context.Context, req Request, contractID string, cmd *domain.ScheduleExercise) (string, uint64, error) {
	k, err := c.contracts.Lookup(ctx, contractID)
	if err != nil {
		return "", 0, err
	}
	cmd.Contract = k
	cmd.ExerciseID = es.NewID("incidents.exercise", req)
	id, pos, err := c.exercise(ctx, req, cmd.ExerciseID, cmd)
	return id, pos, decide.HideContract(err, contractID)
}

// RecordExerciseResult records an exercise's outcome.
func (c *Commands) RecordExerciseResult(ctx context.Context, req Request, exerciseID string, cmd *domain.RecordExerciseResult) (uint64, error) {
	_, pos, err := c.exercise(ctx, req, exerciseID, cmd)
	if errors.Is(err, domain.NotFoundError{What: "exercise"}) || errors.Is(err, domain.ErrNotParty) {
		err = domain.NotFoundError{What: "exercise", ID: exerciseID}
	}
	return pos, err
}

func (c *Commands) exercise(ctx context.Context, req Request, id string, cmd domain.ExerciseCommand) (string, uint64, error) {
	domain.Stamp(cmd, es.ActorOf(req), c.now().UTC())
	res, err := c.exercises.Handle(ctx, es.CommandFor(req, id, cmd))
	if err != nil {
		return "", 0, err
	}
	return id, res.Position, nil
}

// Contracts answers what an incident needs to know of its contract.
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

// ContractOf maps a folded contract to what the incident needs of it.
func ContractOf(s cdomain.State) domain.Contract {
	k := domain.Contract{ID: string(s.ID), Customer: domain.OrgID(s.Customer), Provider: domain.OrgID(s.Provider), InForce: s.InForce != nil}
	if s.Termination != nil {
		k.EndsAt = s.Termination.EffectiveDate
	}
	if s.InForce != nil {
		for _, d := range s.InForce.Terms.Levels.IncidentNotification {
			k.Deadlines = append(k.Deadlines, domain.Deadline{Severity: d.Severity, Within: d.Within})
		}
	}
	return k
}
