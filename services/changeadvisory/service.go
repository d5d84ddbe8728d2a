// Package changeadvisory is the change advisory service: change requests on
// a contract, approved by the parties the contract requires, with downtime
// outside the contract's maintenance windows agreed by the customer,
// implementation, rollback and closure, and emergency changes implemented
// first and reviewed by both parties afterwards. Service wires it from
// explicit dependencies, so cmd/changeadvisory and tools/jsm build it the
// same way.
package changeadvisory

import (
	"context"
	"net/http"

	"connectrpc.com/connect"

	"github.com/jsmplatform/jsm/libs/auth"
	"github.com/jsmplatform/jsm/libs/es"
	"github.com/jsmplatform/jsm/libs/pgdb"
	"github.com/jsmplatform/jsm/libs/projection"
	"github.com/jsmplatform/jsm/libs/reactor"
	"github.com/jsmplatform/jsm/libs/rpc"
	"github.com/jsmplatform/jsm/libs/svcmain"
	"github.com/jsmplatform/jsm/proto/gen/jsm/changeadvisory/v1/changeadvisoryv1connect"
	"github.com/jsmplatform/jsm/services/changeadvisory/api"
	"github.com/jsmplatform/jsm/services/changeadvisory/app"
	"github.com/jsmplatform/jsm/services/changeadvisory/domain"
	readmodel "github.com/jsmplatform/jsm/services/changeadvisory/projection"
	"github.com/jsmplatform/jsm/services/contracts/known"
)

// Deps are what the service needs from its host.
type Deps = svcmain.Deps

// Service is the change advisory service.
type Service struct {
	deps      Deps
	app       app.Application
	changes   *app.ChangeRunner
	projector *projection.Projector
	scheduler *app.Scheduler
	reactor   *reactor.Reactor
}

var _ rpc.Service = (*Service)(nil)

// Source is the CloudEvents source of the service's events.
const Source = "/jsm/changeadvisory"

// Decider is the change aggregate as the es runner sees it.
func Decider() es.Decider[domain.State, domain.Command] {
	return es.Pure(readmodel.ChangeType, domain.Decide, domain.Evolve, func(s domain.State) (string, domain.OrgID, domain.OrgID) {
		return s.ContractID, s.Customer, s.Provider
	})
}

// New builds the service.
func New(ctx context.Context, d Deps) (*Service, error) {
	d, err := d.Defaults("changeadvisory")
	if err != nil {
		return nil, err
	}
	changes, err := es.NewRunner(ctx, d.Store, Source, Decider(), es.WithClock(d.Now), es.WithLogger(d.Logger))
	if err != nil {
		return nil, err
	}
	projector, err := projection.New(projection.Config{Name: "changeadvisory", Schema: readmodel.Schema, Logger: d.Logger}, readmodel.Handler{}, d.Store, d.Pool)
	if err != nil {
		return nil, err
	}
	contracts := app.NewContracts(known.New(d.Pool, d.Store, projector, readmodel.Schema, d.ReadWait))
	commands, err := app.NewCommands(changes, contracts, d.Now)
	if err != nil {
		return nil, err
	}
	queries, err := app.NewQueries(d.Pool, projector, d.ReadWait)
	if err != nil {
		return nil, err
	}
	react, err := reactor.New(ctx, d.Store, reactor.Config{Name: app.ReactorName, Subjects: app.PatchSubjects, Logger: d.Logger}, commands.React)
	if err != nil {
		return nil, err
	}
	return &Service{
		deps:      d,
		app:       app.Application{Commands: commands, Queries: queries},
		changes:   changes,
		projector: projector,
		scheduler: app.NewScheduler(d.Pool, commands, d.Now),
		reactor:   react,
	}, nil
}

// Name is "changeadvisory".
func (s *Service) Name() string { return "changeadvisory" }

// App is the service's use cases, for in-process callers such as the
// patching reactor (app.Commands.Request opens a change).
func (s *Service) App() app.Application { return s.app }

// Projector is the service's read-model projector (status, rebuild).
func (s *Service) Projector() *projection.Projector { return s.projector }

// Scheduler records overdue emergency reviews; tests tick it with their own clock.
func (s *Service) Scheduler() *app.Scheduler { return s.scheduler }

// Migrate creates the schema and the projector's checkpoint.
func (s *Service) Migrate(ctx context.Context) error {
	if err := pgdb.Migrate(ctx, s.deps.Pool, readmodel.Schema, readmodel.Migrations(), nil); err != nil {
		return err
	}
	return s.projector.Migrate(ctx)
}

// Run keeps the read model up to date and records overdue emergency
// reviews until ctx ends, then stores the snapshots not stored yet.
func (s *Service) Run(ctx context.Context) error {
	return svcmain.Background{
		Projector: s.projector,
		Reactors:  []svcmain.Runner{s.reactor},
		Tick:      s.scheduler.Tick,
		Every:     s.deps.SchedulerEvery,
		Name:      "changeadvisory",
		Log:       s.deps.Logger,
		Flush:     []svcmain.Flusher{s.changes},
	}.Run(ctx)
}

// Handlers mounts jsm.changeadvisory.v1.ChangeService.
func (s *Service) Handlers(opts ...connect.HandlerOption) []rpc.Handler {
	path, h := changeadvisoryv1connect.NewChangeServiceHandler(api.New(s.app, s.deps.Logger), opts...)
	return []rpc.Handler{{Path: path, Service: changeadvisoryv1connect.ChangeServiceName, Handler: http.Handler(h)}}
}

// Permissions of the change advisory service.
const (
	PermRead      auth.Permission = "changeadvisory.read"
	PermRequest   auth.Permission = "changeadvisory.request"
	PermApprove   auth.Permission = "changeadvisory.approve"
	PermImplement auth.Permission = "changeadvisory.implement"
)

// Policy: which role may call which procedure. README.md documents it.
func (s *Service) Policy() auth.Policy { return Policy() }

// Policy is the service's access policy.
func Policy() auth.Policy {
	all := []auth.Permission{PermRead, PermRequest, PermApprove, PermImplement}
	return auth.Policy{
		Procedures: map[string]auth.Permission{
			changeadvisoryv1connect.ChangeServiceRequestChangeProcedure:         PermRequest,
			changeadvisoryv1connect.ChangeServiceScheduleReviewProcedure:        PermApprove,
			changeadvisoryv1connect.ChangeServiceApproveChangeProcedure:         PermApprove,
			changeadvisoryv1connect.ChangeServiceRejectChangeProcedure:          PermApprove,
			changeadvisoryv1connect.ChangeServiceAgreeDowntimeProcedure:         PermApprove,
			changeadvisoryv1connect.ChangeServiceReviewEmergencyChangeProcedure: PermApprove,
			changeadvisoryv1connect.ChangeServiceRecordImplementationProcedure:  PermImplement,
			changeadvisoryv1connect.ChangeServiceRecordRollbackProcedure:        PermImplement,
			changeadvisoryv1connect.ChangeServiceCloseChangeProcedure:           PermImplement,
			changeadvisoryv1connect.ChangeServiceGetChangeProcedure:             PermRead,
			changeadvisoryv1connect.ChangeServiceListChangesProcedure:           PermRead,
		},
		Roles: map[string][]auth.Permission{
			"org-admin":        all,
			"security-officer": all,
			"change-manager":   all,
			// An ITSM tool or scanner feeding the platform through ingest.
			"itsm-source":      {PermRead, PermRequest, PermImplement},
			"contract-manager": {PermRead},
			"auditor":          {PermRead},
			"viewer":           {PermRead},
		},
	}
}
