// Package contracts is the contracts service: contracts between a customer
// org and a provider org, their terms, service levels, signatures and
// lifecycle. Service wires it from explicit dependencies, so cmd/contracts
// and tools/jsm build it the same way.
package contracts

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/proto"

	"github.com/jsmplatform/jsm/libs/auth"
	"github.com/jsmplatform/jsm/libs/es"
	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/pgdb"
	"github.com/jsmplatform/jsm/libs/projection"
	"github.com/jsmplatform/jsm/libs/rpc"
	"github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1/contractsv1connect"
	"github.com/jsmplatform/jsm/services/contracts/api"
	"github.com/jsmplatform/jsm/services/contracts/app"
	"github.com/jsmplatform/jsm/services/contracts/domain"
	readmodel "github.com/jsmplatform/jsm/services/contracts/projection"
)

// Deps are what the service needs from its host.
type Deps struct {
	Store  *eventstore.Store
	Pool   *pgxpool.Pool
	Logger *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// ReadWait bounds how long a query waits for its min_position (default 5s).
	ReadWait time.Duration
	// Retries bounds how often a command is re-decided after a concurrent
	// change (default 5; negative for none).
	Retries int
}

// Service is the contracts service.
type Service struct {
	deps      Deps
	app       app.Application
	runner    *es.Runner[domain.State, domain.Command]
	projector *projection.Projector
}

var _ rpc.Service = (*Service)(nil)

// Source is the CloudEvents source of the service's events.
const Source = "/jsm/contracts"

// Decider is the contract aggregate as the es runner sees it.
func Decider() es.Decider[domain.State, domain.Command] {
	return es.Decider[domain.State, domain.Command]{
		AggregateType: readmodel.AggregateType,
		Initial:       func() domain.State { return domain.State{} },
		Decide:        domain.Decide,
		Evolve: func(s domain.State, e event.Event, m proto.Message) domain.State {
			return domain.EvolveAt(s, m, e.Time)
		},
		Scope: func(s domain.State) (string, event.Parties) {
			return string(s.ID), event.Parties{Customer: string(s.Customer), Provider: string(s.Provider)}
		},
		// 2: the terms in force are stored once when they are the current
		// ones; a version-1 reader would take such a contract for a draft.
		StateVersion: 2,
	}
}

// New builds the service.
func New(ctx context.Context, d Deps) (*Service, error) {
	if d.Store == nil || d.Pool == nil {
		return nil, errors.New("contracts: store and pool are required")
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	d.Logger = d.Logger.With("service", "contracts")
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.ReadWait == 0 {
		d.ReadWait = 5 * time.Second
	}
	switch {
	case d.Retries == 0:
		d.Retries = 5
	case d.Retries < 0:
		d.Retries = 0
	}
	runner, err := es.NewRunner(ctx, d.Store, Source, Decider(), es.WithClock(d.Now), es.WithLogger(d.Logger), es.WithRetries(d.Retries))
	if err != nil {
		return nil, err
	}
	projector, err := projection.New(projection.Config{Name: "contracts", Schema: readmodel.Schema, Logger: d.Logger}, readmodel.NewContracts(0), d.Store, d.Pool)
	if err != nil {
		return nil, err
	}
	commands, err := app.NewCommands(runner, d.Now)
	if err != nil {
		return nil, err
	}
	queries, err := app.NewQueries(d.Pool, projector, d.ReadWait)
	if err != nil {
		return nil, err
	}
	return &Service{deps: d, app: app.Application{Commands: commands, Queries: queries}, runner: runner, projector: projector}, nil
}

// Name is "contracts".
func (s *Service) Name() string { return "contracts" }

// Projector is the service's read-model projector (status, rebuild).
func (s *Service) Projector() *projection.Projector { return s.projector }

// Migrate creates the schema and the projector's checkpoint.
func (s *Service) Migrate(ctx context.Context) error {
	if err := pgdb.Migrate(ctx, s.deps.Pool, readmodel.Schema, readmodel.Migrations(), nil); err != nil {
		return err
	}
	return s.projector.Migrate(ctx)
}

// Run keeps the read model up to date until ctx ends, then stores the
// snapshots not stored yet, so the next start loads aggregates quickly.
func (s *Service) Run(ctx context.Context) error {
	err := s.projector.Run(ctx)
	flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return errors.Join(err, s.runner.Flush(flushCtx))
}

// Handlers mounts jsm.contracts.v1.ContractService.
func (s *Service) Handlers(opts ...connect.HandlerOption) []rpc.Handler {
	path, h := contractsv1connect.NewContractServiceHandler(api.New(s.app, s.deps.Logger), opts...)
	return []rpc.Handler{{Path: path, Service: contractsv1connect.ContractServiceName, Handler: http.Handler(h)}}
}

// Permissions of the contracts service.
const (
	PermRead      auth.Permission = "contracts.read"
	PermDraft     auth.Permission = "contracts.draft"
	PermEdit      auth.Permission = "contracts.edit"
	PermSign      auth.Permission = "contracts.sign"
	PermLifecycle auth.Permission = "contracts.lifecycle"
)

// Policy: which role may call which procedure. README.md documents it.
func (s *Service) Policy() auth.Policy { return Policy() }

// Policy is the service's access policy.
func Policy() auth.Policy {
	all := []auth.Permission{PermRead, PermDraft, PermEdit, PermSign, PermLifecycle}
	return auth.Policy{
		Procedures: map[string]auth.Permission{
			contractsv1connect.ContractServiceDraftContractProcedure:     PermDraft,
			contractsv1connect.ContractServiceAddRequirementProcedure:    PermEdit,
			contractsv1connect.ContractServiceAssignContactProcedure:     PermEdit,
			contractsv1connect.ContractServiceAddSubcontractorProcedure:  PermEdit,
			contractsv1connect.ContractServiceSetServiceLevelsProcedure:  PermEdit,
			contractsv1connect.ContractServiceSignContractProcedure:      PermSign,
			contractsv1connect.ContractServiceAdvancePhaseProcedure:      PermLifecycle,
			contractsv1connect.ContractServiceTerminateContractProcedure: PermLifecycle,
			contractsv1connect.ContractServiceGetContractProcedure:       PermRead,
			contractsv1connect.ContractServiceListContractsProcedure:     PermRead,
		},
		Roles: map[string][]auth.Permission{
			"org-admin":        all,
			"contract-manager": all,
			"security-officer": {PermRead, PermEdit},
			"auditor":          {PermRead},
			"viewer":           {PermRead},
		},
	}
}
