// Package audits is the audits service: audit plans per contract within
// the contract's audit rights, with notice to the audited party; findings
// with measures agreed by both parties, implemented by their owner and
// verified by the auditor's side; overdue measures recorded once; and the
// recurring checks of BSI IT-Grundschutz M 2.256. Service wires it from
// explicit dependencies, so cmd/audits and tools/jsm build it the same way.
package audits

import (
	"context"
	"net/http"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/jsmplatform/jsm/libs/auth"
	"github.com/jsmplatform/jsm/libs/es"
	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/pgdb"
	"github.com/jsmplatform/jsm/libs/projection"
	"github.com/jsmplatform/jsm/libs/rpc"
	"github.com/jsmplatform/jsm/libs/svcmain"
	"github.com/jsmplatform/jsm/proto/gen/jsm/audits/v1/auditsv1connect"
	"github.com/jsmplatform/jsm/services/audits/api"
	"github.com/jsmplatform/jsm/services/audits/app"
	"github.com/jsmplatform/jsm/services/audits/domain"
	readmodel "github.com/jsmplatform/jsm/services/audits/projection"
	"github.com/jsmplatform/jsm/services/contracts/known"
)

// Deps are what the service needs from its host.
type Deps = svcmain.Deps

// Service is the audits service.
type Service struct {
	deps       Deps
	app        app.Application
	audits     *app.AuditRunner
	checklists *app.ChecklistRunner
	projector  *projection.Projector
	scheduler  *app.Scheduler
}

var _ rpc.Service = (*Service)(nil)

// Source is the CloudEvents source of the service's events.
const Source = "/jsm/audits"

// Decider is the audit aggregate as the es runner sees it.
func Decider() es.Decider[domain.State, domain.Command] {
	return es.Decider[domain.State, domain.Command]{
		AggregateType: readmodel.AuditType,
		Initial:       func() domain.State { return domain.State{} },
		Decide:        domain.Decide,
		Evolve: func(s domain.State, e event.Event, m proto.Message) domain.State {
			return domain.Evolve(s, m, es.MetaOf(e))
		},
		Scope: func(s domain.State) (string, event.Parties) {
			return s.ContractID, event.Parties{Customer: string(s.Customer), Provider: string(s.Provider)}
		},
		StateVersion: 1,
	}
}

// ChecklistDecider is the checklist aggregate (one per contract, its id the contract's).
func ChecklistDecider() es.Decider[domain.Checklist, domain.Command] {
	return es.Decider[domain.Checklist, domain.Command]{
		AggregateType: readmodel.ChecklistType,
		Initial:       func() domain.Checklist { return domain.Checklist{} },
		Decide:        domain.DecideChecklist,
		Evolve: func(c domain.Checklist, e event.Event, m proto.Message) domain.Checklist {
			return domain.EvolveChecklist(c, m, es.MetaOf(e))
		},
		Scope: func(c domain.Checklist) (string, event.Parties) {
			return c.ContractID, event.Parties{Customer: string(c.Customer), Provider: string(c.Provider)}
		},
		StateVersion: 1,
	}
}

// New builds the service.
func New(ctx context.Context, d Deps) (*Service, error) {
	d, err := d.Defaults("audits")
	if err != nil {
		return nil, err
	}
	audits, err := es.NewRunner(ctx, d.Store, Source, Decider(), es.WithClock(d.Now), es.WithLogger(d.Logger))
	if err != nil {
		return nil, err
	}
	checklists, err := es.NewRunner(ctx, d.Store, Source, ChecklistDecider(), es.WithClock(d.Now), es.WithLogger(d.Logger))
	if err != nil {
		return nil, err
	}
	projector, err := projection.New(projection.Config{Name: "audits", Schema: readmodel.Schema, Logger: d.Logger}, readmodel.Handler{}, d.Store, d.Pool)
	if err != nil {
		return nil, err
	}
	contracts := app.NewContracts(known.New(d.Pool, d.Store, projector, readmodel.Schema, d.ReadWait), d.Pool)
	commands, err := app.NewCommands(audits, checklists, contracts, d.Now)
	if err != nil {
		return nil, err
	}
	queries, err := app.NewQueries(d.Pool, projector, d.ReadWait)
	if err != nil {
		return nil, err
	}
	return &Service{
		deps:       d,
		app:        app.Application{Commands: commands, Queries: queries},
		audits:     audits,
		checklists: checklists,
		projector:  projector,
		scheduler:  app.NewScheduler(d.Pool, commands, d.Now),
	}, nil
}

// Name is "audits".
func (s *Service) Name() string { return "audits" }

// App is the service's use cases, for in-process callers.
func (s *Service) App() app.Application { return s.app }

// Projector is the service's read-model projector (status, rebuild).
func (s *Service) Projector() *projection.Projector { return s.projector }

// Scheduler records overdue measures; tests tick it with their own clock.
func (s *Service) Scheduler() *app.Scheduler { return s.scheduler }

// Migrate creates the schema and the projector's checkpoint.
func (s *Service) Migrate(ctx context.Context) error {
	if err := pgdb.Migrate(ctx, s.deps.Pool, readmodel.Schema, readmodel.Migrations(), nil); err != nil {
		return err
	}
	return s.projector.Migrate(ctx)
}

// Run keeps the read model up to date and records overdue measures until
// ctx ends, then stores the snapshots not stored yet.
func (s *Service) Run(ctx context.Context) error {
	return svcmain.Background{
		Projector: s.projector,
		Reactors:  nil,
		Tick:      s.scheduler.Tick,
		Every:     s.deps.SchedulerEvery,
		Name:      "audits",
		Log:       s.deps.Logger,
		Flush:     []svcmain.Flusher{s.audits, s.checklists},
	}.Run(ctx)
}

// Handlers mounts jsm.audits.v1.AuditService.
func (s *Service) Handlers(opts ...connect.HandlerOption) []rpc.Handler {
	path, h := auditsv1connect.NewAuditServiceHandler(api.New(s.app, s.deps.Logger), opts...)
	return []rpc.Handler{{Path: path, Service: auditsv1connect.AuditServiceName, Handler: http.Handler(h)}}
}

// Permissions of the audits service.
const (
	PermRead     auth.Permission = "audits.read"
	PermPlan     auth.Permission = "audits.plan"
	PermFindings auth.Permission = "audits.findings"
	PermMeasures auth.Permission = "audits.measures"
	PermChecks   auth.Permission = "audits.checks"
)

// Policy: which role may call which procedure. README.md documents it.
func (s *Service) Policy() auth.Policy { return Policy() }

// Policy is the service's access policy.
func Policy() auth.Policy {
	all := []auth.Permission{PermRead, PermPlan, PermFindings, PermMeasures, PermChecks}
	return auth.Policy{
		Procedures: map[string]auth.Permission{
			auditsv1connect.AuditServicePlanAuditProcedure:                PermPlan,
			auditsv1connect.AuditServiceStartAuditProcedure:               PermPlan,
			auditsv1connect.AuditServiceCompleteAuditProcedure:            PermPlan,
			auditsv1connect.AuditServiceRecordFindingProcedure:            PermFindings,
			auditsv1connect.AuditServiceCloseFindingProcedure:             PermFindings,
			auditsv1connect.AuditServiceVerifyMeasureProcedure:            PermFindings,
			auditsv1connect.AuditServiceProposeMeasureProcedure:           PermMeasures,
			auditsv1connect.AuditServiceAgreeMeasureProcedure:             PermMeasures,
			auditsv1connect.AuditServiceRejectMeasureProcedure:            PermMeasures,
			auditsv1connect.AuditServiceRecordMeasureImplementedProcedure: PermMeasures,
			auditsv1connect.AuditServiceSetCheckTemplateProcedure:         PermChecks,
			auditsv1connect.AuditServiceRecordCheckResultProcedure:        PermChecks,
			auditsv1connect.AuditServiceGetAuditProcedure:                 PermRead,
			auditsv1connect.AuditServiceListAuditsProcedure:               PermRead,
			auditsv1connect.AuditServiceListFindingsProcedure:             PermRead,
			auditsv1connect.AuditServiceListChecksProcedure:               PermRead,
		},
		Roles: map[string][]auth.Permission{
			"org-admin":        all,
			"security-officer": all,
			"auditor":          all,
			"contract-manager": {PermMeasures, PermRead},
			"viewer":           {PermRead},
		},
	}
}
