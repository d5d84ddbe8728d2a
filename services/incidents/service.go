// Package incidents is the incidents service: security incidents handled
// jointly by the parties of a contract, with the contractual notification
// clock and each party's regulatory clocks (NIS2, DORA), tasks, timeline,
// post-incident review, and exercises per contract. Service wires it from
// explicit dependencies, so cmd/incidents and tools/jsm build it the same way.
package incidents

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
	"github.com/jsmplatform/jsm/proto/gen/jsm/incidents/v1/incidentsv1connect"
	"github.com/jsmplatform/jsm/services/contracts/known"
	"github.com/jsmplatform/jsm/services/incidents/api"
	"github.com/jsmplatform/jsm/services/incidents/app"
	"github.com/jsmplatform/jsm/services/incidents/domain"
	readmodel "github.com/jsmplatform/jsm/services/incidents/projection"
)

// Deps are what the service needs from its host.
type Deps = svcmain.Deps

// Service is the incidents service.
type Service struct {
	deps      Deps
	app       app.Application
	incidents *app.IncidentRunner
	exercises *app.ExerciseRunner
	projector *projection.Projector
	scheduler *app.Scheduler
}

var _ rpc.Service = (*Service)(nil)

// Source is the CloudEvents source of the service's events.
const Source = "/jsm/incidents"

// Decider is the incident aggregate as the es runner sees it.
func Decider() es.Decider[domain.State, domain.Command] {
	return es.Pure(readmodel.IncidentType, domain.Decide, domain.Evolve, func(s domain.State) (string, domain.OrgID, domain.OrgID) {
		return s.ContractID, s.Customer, s.Provider
	})
}

// ExerciseDecider is the exercise aggregate as the es runner sees it.
func ExerciseDecider() es.Decider[domain.Exercise, domain.ExerciseCommand] {
	return es.Pure(readmodel.ExerciseType, domain.DecideExercise, domain.EvolveExercise, func(x domain.Exercise) (string, domain.OrgID, domain.OrgID) {
		return x.ContractID, x.Customer, x.Provider
	})
}

// New builds the service.
func New(ctx context.Context, d Deps) (*Service, error) {
	d, err := d.Defaults("incidents")
	if err != nil {
		return nil, err
	}
	opts := []es.Option{es.WithClock(d.Now), es.WithLogger(d.Logger)}
	incidents, err := es.NewRunner(ctx, d.Store, Source, Decider(), opts...)
	if err != nil {
		return nil, err
	}
	exercises, err := es.NewRunner(ctx, d.Store, Source, ExerciseDecider(), opts...)
	if err != nil {
		return nil, err
	}
	projector, err := projection.New(projection.Config{Name: "incidents", Schema: readmodel.Schema, Logger: d.Logger}, readmodel.Handler{}, d.Store, d.Pool)
	if err != nil {
		return nil, err
	}
	contracts := app.NewContracts(known.New(d.Pool, d.Store, projector, readmodel.Schema, d.ReadWait))
	commands, err := app.NewCommands(incidents, exercises, contracts, d.Now)
	if err != nil {
		return nil, err
	}
	queries, err := app.NewQueries(d.Pool, projector, d.ReadWait)
	if err != nil {
		return nil, err
	}
	return &Service{
		deps:      d,
		app:       app.Application{Commands: commands, Queries: queries},
		incidents: incidents,
		exercises: exercises,
		projector: projector,
		scheduler: app.NewScheduler(d.Pool, commands, d.Now),
	}, nil
}

// Name is "incidents".
func (s *Service) Name() string { return "incidents" }

// Projector is the service's read-model projector (status, rebuild).
func (s *Service) Projector() *projection.Projector { return s.projector }

// Scheduler records overdue deadlines; tests tick it with their own clock.
func (s *Service) Scheduler() *app.Scheduler { return s.scheduler }

// Migrate creates the schema and the projector's checkpoint.
func (s *Service) Migrate(ctx context.Context) error {
	if err := pgdb.Migrate(ctx, s.deps.Pool, readmodel.Schema, readmodel.Migrations(), nil); err != nil {
		return err
	}
	return s.projector.Migrate(ctx)
}

// Run keeps the read model up to date and records overdue deadlines until
// ctx ends, then stores the snapshots not stored yet.
func (s *Service) Run(ctx context.Context) error {
	return svcmain.Background{
		Projector: s.projector,
		Reactors:  nil,
		Tick:      s.scheduler.Tick,
		Every:     s.deps.SchedulerEvery,
		Name:      "incidents",
		Log:       s.deps.Logger,
		Flush:     []svcmain.Flusher{s.incidents, s.exercises},
	}.Run(ctx)
}

// Handlers mounts jsm.incidents.v1.IncidentService.
func (s *Service) Handlers(opts ...connect.HandlerOption) []rpc.Handler {
	path, h := incidentsv1connect.NewIncidentServiceHandler(api.New(s.app, s.deps.Logger), opts...)
	return []rpc.Handler{{Path: path, Service: incidentsv1connect.IncidentServiceName, Handler: http.Handler(h)}}
}

// Permissions of the incidents service.
const (
	PermRead       auth.Permission = "incidents.read"
	PermReport     auth.Permission = "incidents.report"
	PermHandle     auth.Permission = "incidents.handle"
	PermRegulatory auth.Permission = "incidents.regulatory"
	PermExercise   auth.Permission = "incidents.exercise"
)

// Policy: which role may call which procedure. README.md documents it.
func (s *Service) Policy() auth.Policy { return Policy() }

// Policy is the service's access policy.
func Policy() auth.Policy {
	all := []auth.Permission{PermRead, PermReport, PermHandle, PermRegulatory, PermExercise}
	return auth.Policy{
		Procedures: map[string]auth.Permission{
			incidentsv1connect.IncidentServiceReportIncidentProcedure:             PermReport,
			incidentsv1connect.IncidentServiceAssessIncidentProcedure:             PermHandle,
			incidentsv1connect.IncidentServiceClassifyIncidentProcedure:           PermRegulatory,
			incidentsv1connect.IncidentServiceNotifyPartyProcedure:                PermHandle,
			incidentsv1connect.IncidentServiceAcknowledgeNotificationProcedure:    PermHandle,
			incidentsv1connect.IncidentServiceRecordRegulatorySubmissionProcedure: PermRegulatory,
			incidentsv1connect.IncidentServiceAddTimelineEntryProcedure:           PermHandle,
			incidentsv1connect.IncidentServiceAssignTaskProcedure:                 PermHandle,
			incidentsv1connect.IncidentServiceCompleteTaskProcedure:               PermHandle,
			incidentsv1connect.IncidentServiceEscalateIncidentProcedure:           PermHandle,
			incidentsv1connect.IncidentServiceContainIncidentProcedure:            PermHandle,
			incidentsv1connect.IncidentServiceResolveIncidentProcedure:            PermHandle,
			incidentsv1connect.IncidentServiceReopenIncidentProcedure:             PermHandle,
			incidentsv1connect.IncidentServiceRecordReviewProcedure:               PermHandle,
			incidentsv1connect.IncidentServiceCloseIncidentProcedure:              PermHandle,
			incidentsv1connect.IncidentServiceGetIncidentProcedure:                PermRead,
			incidentsv1connect.IncidentServiceListIncidentsProcedure:              PermRead,
			incidentsv1connect.IncidentServiceScheduleExerciseProcedure:           PermExercise,
			incidentsv1connect.IncidentServiceRecordExerciseResultProcedure:       PermExercise,
			incidentsv1connect.IncidentServiceListExercisesProcedure:              PermRead,
		},
		Roles: map[string][]auth.Permission{
			"org-admin":        all,
			"security-officer": all,
			"incident-manager": {PermRead, PermReport, PermHandle, PermExercise},
			// An ITSM tool or scanner feeding the platform through ingest.
			"itsm-source":      {PermRead, PermReport, PermHandle},
			"contract-manager": {PermRead},
			"auditor":          {PermRead},
			"viewer":           {PermRead},
		},
	}
}
