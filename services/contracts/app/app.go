// Package app holds the contracts service's use cases: commands run through
// the event-sourcing runner, queries read the projection.
package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jsmplatform/jsm/libs/es"
	"github.com/jsmplatform/jsm/libs/projection"
	"github.com/jsmplatform/jsm/services/contracts/domain"
)

// Application groups the use cases.
type Application struct {
	Commands *Commands
	Queries  *Queries
}

// Runner is the runner of the contract aggregate.
type Runner = es.Runner[domain.State, domain.Command]

// Request is what every command needs besides its body.
type Request = es.Request

// Commands changes contracts.
type Commands struct {
	runner *Runner
	now    func() time.Time
}

// NewCommands returns the command handlers.
func NewCommands(runner *Runner, now func() time.Time) (*Commands, error) {
	if runner == nil || now == nil {
		return nil, errors.New("app: runner and clock are required")
	}
	return &Commands{runner: runner, now: now}, nil
}

// Now is the clock commands are stamped with.
func (c *Commands) Now() time.Time { return c.now() }

// Result of a command.
type Result struct {
	ContractID domain.ContractID
	Position   uint64
	State      domain.State
}

// Draft starts a new contract. With a request id the contract id is derived
// from it, so a retried draft finds the contract it created the first time.
func (c *Commands) Draft(ctx context.Context, req Request, cmd domain.DraftContract) (Result, error) {
	cmd.ContractID = domain.ContractID(es.NewID("contracts.draft", req))
	cmd.Actor = domain.Actor{Org: domain.OrgID(req.Actor.Org), User: req.Actor.User}
	return c.handle(ctx, req, cmd.ContractID, cmd)
}

// Change runs any other command on an existing contract. The actor of the
// command is taken from the request.
func (c *Commands) Change(ctx context.Context, req Request, id domain.ContractID, cmd domain.Command) (Result, error) {
	return c.handle(ctx, req, id, withActor(cmd, domain.Actor{Org: domain.OrgID(req.Actor.Org), User: req.Actor.User}))
}

func withActor(cmd domain.Command, a domain.Actor) domain.Command {
	switch c := cmd.(type) {
	case domain.AddRequirement:
		c.Actor = a
		return c
	case domain.AssignContact:
		c.Actor = a
		return c
	case domain.AddSubcontractor:
		c.Actor = a
		return c
	case domain.SetServiceLevels:
		c.Actor = a
		return c
	case domain.SignContract:
		c.Actor = a
		return c
	case domain.AdvancePhase:
		c.Actor = a
		return c
	case domain.TerminateContract:
		c.Actor = a
		return c
	}
	return cmd
}

func (c *Commands) handle(ctx context.Context, req Request, id domain.ContractID, cmd domain.Command) (Result, error) {
	res, err := c.runner.Handle(ctx, es.CommandFor(req, string(id), cmd))
	if errors.Is(err, domain.NotFoundError{}) {
		err = domain.NotFoundError{ID: id}
	}
	if err != nil {
		return Result{}, err
	}
	return Result{ContractID: id, Position: res.Position, State: res.State}, nil
}

// Queries reads contracts, always on behalf of one org.
type Queries struct {
	pool      *pgxpool.Pool
	projector *projection.Projector
	maxWait   time.Duration
}

// NewQueries returns the query handlers; a read with a min position waits
// for the projector at most maxWait.
func NewQueries(pool *pgxpool.Pool, projector *projection.Projector, maxWait time.Duration) (*Queries, error) {
	if pool == nil || projector == nil {
		return nil, errors.New("app: pool and projector are required")
	}
	return &Queries{pool: pool, projector: projector, maxWait: maxWait}, nil
}

func (q *Queries) wait(ctx context.Context, minPosition uint64) error {
	if err := q.projector.WaitFor(ctx, minPosition, q.maxWait); err != nil {
		return fmt.Errorf("read model: %w", err)
	}
	return nil
}
