// Package reporting is the reporting service: KPIs per contract and period
// from every area's events (incidents, patching, changes, audits, the
// contract), the situation picture of a contract, and periodic security
// reports (a frozen snapshot of the KPIs with a content hash, rendered as
// HTML and PDF) delivered by the provider and acknowledged by the
// customer, generated on the contract's cadence by a scheduler that also
// records missed due dates once. Service wires it from explicit
// dependencies, so cmd/reporting and tools/jsm build it the same way.
package reporting

import (
	"context"
	"net/http"

	"connectrpc.com/connect"

	"github.com/jsmplatform/jsm/libs/auth"
	"github.com/jsmplatform/jsm/libs/es"
	"github.com/jsmplatform/jsm/libs/pgdb"
	"github.com/jsmplatform/jsm/libs/projection"
	"github.com/jsmplatform/jsm/libs/rpc"
	"github.com/jsmplatform/jsm/libs/svcmain"
	"github.com/jsmplatform/jsm/proto/gen/jsm/reporting/v1/reportingv1connect"
	"github.com/jsmplatform/jsm/services/contracts/known"
	"github.com/jsmplatform/jsm/services/reporting/api"
	"github.com/jsmplatform/jsm/services/reporting/app"
	"github.com/jsmplatform/jsm/services/reporting/domain"
	readmodel "github.com/jsmplatform/jsm/services/reporting/projection"
)

// Deps are what the service needs from its host.
type Deps = svcmain.Deps

// Service is the reporting service.
type Service struct {
	deps      Deps
	app       app.Application
	reports   *app.ReportRunner
	projector *projection.Projector
	scheduler *app.Scheduler
}

var _ rpc.Service = (*Service)(nil)

// Source is the CloudEvents source of the service's events.
const Source = "/jsm/reporting"

// Decider is the report aggregate as the es runner sees it.
func Decider() es.Decider[domain.Report, domain.Command] {
	return es.Pure(readmodel.ReportType, domain.Decide, domain.Evolve, func(r domain.Report) (string, domain.OrgID, domain.OrgID) {
		return r.ContractID, r.Customer, r.Provider
	})
}

// New builds the service.
func New(ctx context.Context, d Deps) (*Service, error) {
	d, err := d.Defaults("reporting")
	if err != nil {
		return nil, err
	}
	reports, err := es.NewRunner(ctx, d.Store, Source, Decider(), es.WithClock(d.Now), es.WithLogger(d.Logger))
	if err != nil {
		return nil, err
	}
	projector, err := projection.New(projection.Config{Name: "reporting", Schema: readmodel.Schema, Logger: d.Logger}, readmodel.Handler{}, d.Store, d.Pool)
	if err != nil {
		return nil, err
	}
	queries, err := app.NewQueries(d.Pool, projector, d.ReadWait)
	if err != nil {
		return nil, err
	}
	commands, err := app.NewCommands(reports, known.New(d.Pool, d.Store, projector, readmodel.Schema, d.ReadWait), queries, d.Now)
	if err != nil {
		return nil, err
	}
	return &Service{
		deps:      d,
		app:       app.Application{Commands: commands, Queries: queries},
		reports:   reports,
		projector: projector,
		scheduler: app.NewScheduler(d.Pool, commands, d.Now),
	}, nil
}

// Name is "reporting".
func (s *Service) Name() string { return "reporting" }

// App is the service's use cases, for in-process callers.
func (s *Service) App() app.Application { return s.app }

// Projector is the service's read-model projector (status, rebuild).
func (s *Service) Projector() *projection.Projector { return s.projector }

// Scheduler generates scheduled reports and records overdue ones; tests
// tick it with their own clock.
func (s *Service) Scheduler() *app.Scheduler { return s.scheduler }

// Migrate creates the schema and the projector's checkpoint.
func (s *Service) Migrate(ctx context.Context) error {
	if err := pgdb.Migrate(ctx, s.deps.Pool, readmodel.Schema, readmodel.Migrations(), nil); err != nil {
		return err
	}
	return s.projector.Migrate(ctx)
}

// Run keeps the read model up to date and runs the scheduler until ctx
// ends, then stores the snapshots not stored yet.
func (s *Service) Run(ctx context.Context) error {
	return svcmain.Background{
		Projector: s.projector,
		Reactors:  nil,
		Tick:      s.scheduler.Tick,
		Every:     s.deps.SchedulerEvery,
		Name:      "reporting",
		Log:       s.deps.Logger,
		Flush:     []svcmain.Flusher{s.reports},
	}.Run(ctx)
}

// Handlers mounts jsm.reporting.v1.ReportingService.
func (s *Service) Handlers(opts ...connect.HandlerOption) []rpc.Handler {
	path, h := reportingv1connect.NewReportingServiceHandler(api.New(s.app, s.deps.Logger), opts...)
	return []rpc.Handler{{Path: path, Service: reportingv1connect.ReportingServiceName, Handler: http.Handler(h)}}
}

// Permissions of the reporting service.
const (
	PermRead        auth.Permission = "reporting.read"
	PermGenerate    auth.Permission = "reporting.generate"
	PermDeliver     auth.Permission = "reporting.deliver"
	PermAcknowledge auth.Permission = "reporting.acknowledge"
)

// Policy: which role may call which procedure. README.md documents it.
func (s *Service) Policy() auth.Policy { return Policy() }

// Policy is the service's access policy.
func Policy() auth.Policy {
	all := []auth.Permission{PermRead, PermGenerate, PermDeliver, PermAcknowledge}
	return auth.Policy{
		Procedures: map[string]auth.Permission{
			reportingv1connect.ReportingServiceGetKpisProcedure:           PermRead,
			reportingv1connect.ReportingServiceGetSituationProcedure:      PermRead,
			reportingv1connect.ReportingServiceGetReportProcedure:         PermRead,
			reportingv1connect.ReportingServiceListReportsProcedure:       PermRead,
			reportingv1connect.ReportingServiceDownloadReportProcedure:    PermRead,
			reportingv1connect.ReportingServiceGenerateReportProcedure:    PermGenerate,
			reportingv1connect.ReportingServiceDeliverReportProcedure:     PermDeliver,
			reportingv1connect.ReportingServiceAcknowledgeReportProcedure: PermAcknowledge,
		},
		Roles: map[string][]auth.Permission{
			"org-admin":        all,
			"security-officer": all,
			"contract-manager": all,
			"auditor":          {PermRead},
			"viewer":           {PermRead},
		},
	}
}
