// Package patching is the patching service: a contract's inventory, the
// vulnerabilities matched against it, and each remediation from the patch
// released through an approved change to the verified fix, against the
// contract's patch deadlines, with deferrals both parties agree to. It
// follows the change advisory area through reactions on the Watermill
// router. Service wires it from explicit dependencies, so cmd/patching and
// tools/jsm build it the same way.
package patching

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
	"github.com/jsmplatform/jsm/proto/gen/jsm/patching/v1/patchingv1connect"
	"github.com/jsmplatform/jsm/services/contracts/known"
	"github.com/jsmplatform/jsm/services/patching/api"
	"github.com/jsmplatform/jsm/services/patching/app"
	"github.com/jsmplatform/jsm/services/patching/domain"
	readmodel "github.com/jsmplatform/jsm/services/patching/projection"
)

// Deps are what the service needs from its host.
type Deps = svcmain.Deps

// Service is the patching service.
type Service struct {
	deps         Deps
	app          app.Application
	inventory    *app.InventoryRunner
	remediations *app.RemediationRunner
	projector    *projection.Projector
	scheduler    *app.Scheduler
	reactor      *reactor.Reactor
}

var _ rpc.Service = (*Service)(nil)

// Source is the CloudEvents source of the service's events.
const Source = "/jsm/patching"

// InventoryDecider is the inventory aggregate as the es runner sees it.
func InventoryDecider() es.Decider[domain.Inventory, domain.Command] {
	return es.Pure(readmodel.InventoryType, domain.DecideInventory, domain.EvolveInventory, func(s domain.Inventory) (string, domain.OrgID, domain.OrgID) {
		return s.ContractID, s.Customer, s.Provider
	})
}

// RemediationDecider is the remediation aggregate as the es runner sees it.
func RemediationDecider() es.Decider[domain.Remediation, domain.Command] {
	return es.Pure(readmodel.RemediationType, domain.DecideRemediation, domain.EvolveRemediation, func(r domain.Remediation) (string, domain.OrgID, domain.OrgID) {
		return r.ContractID, r.Customer, r.Provider
	})
}

// New builds the service.
func New(ctx context.Context, d Deps) (*Service, error) {
	d, err := d.Defaults("patching")
	if err != nil {
		return nil, err
	}
	opts := []es.Option{es.WithClock(d.Now), es.WithLogger(d.Logger)}
	inventory, err := es.NewRunner(ctx, d.Store, Source, InventoryDecider(), opts...)
	if err != nil {
		return nil, err
	}
	remediations, err := es.NewRunner(ctx, d.Store, Source, RemediationDecider(), opts...)
	if err != nil {
		return nil, err
	}
	projector, err := projection.New(projection.Config{Name: "patching", Schema: readmodel.Schema, Logger: d.Logger}, readmodel.Handler{}, d.Store, d.Pool)
	if err != nil {
		return nil, err
	}
	commands, err := app.NewCommands(inventory, remediations, known.New(d.Pool, d.Store, projector, readmodel.Schema, d.ReadWait), d.Pool, projector, d.Now)
	if err != nil {
		return nil, err
	}
	queries, err := app.NewQueries(d.Pool, projector, d.ReadWait)
	if err != nil {
		return nil, err
	}
	react, err := reactor.New(ctx, d.Store, reactor.Config{Name: app.ReactorName, Subjects: app.Subjects, Logger: d.Logger}, commands.React)
	if err != nil {
		return nil, err
	}
	return &Service{
		deps: d, app: app.Application{Commands: commands, Queries: queries},
		inventory: inventory, remediations: remediations, projector: projector,
		scheduler: app.NewScheduler(d.Pool, commands, d.Now), reactor: react,
	}, nil
}

// Name is "patching".
func (s *Service) Name() string { return "patching" }

// Projector is the service's read-model projector (status, rebuild).
func (s *Service) Projector() *projection.Projector { return s.projector }

// Scheduler records overdue remediations and expired deferrals; tests tick it.
func (s *Service) Scheduler() *app.Scheduler { return s.scheduler }

// Commands are the service's use cases (tests and benchmarks).
func (s *Service) Commands() *app.Commands { return s.app.Commands }

// Migrate creates the schema and the projector's checkpoint.
func (s *Service) Migrate(ctx context.Context) error {
	if err := pgdb.Migrate(ctx, s.deps.Pool, readmodel.Schema, readmodel.Migrations(), nil); err != nil {
		return err
	}
	return s.projector.Migrate(ctx)
}

// Run keeps the read model up to date, reacts to changes and runs the
// scheduler until ctx ends, then stores the snapshots not stored yet.
func (s *Service) Run(ctx context.Context) error {
	return svcmain.Background{
		Projector: s.projector,
		Reactors:  []svcmain.Runner{s.reactor},
		Tick:      s.scheduler.Tick,
		Every:     s.deps.SchedulerEvery,
		Name:      "patching",
		Log:       s.deps.Logger,
		Flush:     []svcmain.Flusher{s.inventory, s.remediations},
	}.Run(ctx)
}

// Handlers mounts jsm.patching.v1.PatchService.
func (s *Service) Handlers(opts ...connect.HandlerOption) []rpc.Handler {
	path, h := patchingv1connect.NewPatchServiceHandler(api.New(s.app, s.deps.Logger), opts...)
	return []rpc.Handler{{Path: path, Service: patchingv1connect.PatchServiceName, Handler: http.Handler(h)}}
}

// Permissions of the patching service.
const (
	PermRead      auth.Permission = "patching.read"
	PermInventory auth.Permission = "patching.inventory"
	PermRemediate auth.Permission = "patching.remediate"
	PermDefer     auth.Permission = "patching.defer"
)

// Policy: which role may call which procedure. README.md documents it.
func (s *Service) Policy() auth.Policy { return Policy() }

// Policy is the service's access policy.
func Policy() auth.Policy {
	all := []auth.Permission{PermRead, PermInventory, PermRemediate, PermDefer}
	return auth.Policy{
		Procedures: map[string]auth.Permission{
			patchingv1connect.PatchServiceRegisterAssetsProcedure:        PermInventory,
			patchingv1connect.PatchServiceRetireAssetProcedure:           PermInventory,
			patchingv1connect.PatchServiceRegisterVulnerabilityProcedure: PermRemediate,
			patchingv1connect.PatchServiceReleasePatchProcedure:          PermRemediate,
			patchingv1connect.PatchServiceRecordPatchAppliedProcedure:    PermRemediate,
			patchingv1connect.PatchServiceRecordPatchRollbackProcedure:   PermRemediate,
			patchingv1connect.PatchServiceVerifyPatchProcedure:           PermRemediate,
			patchingv1connect.PatchServiceRequestDeferralProcedure:       PermDefer,
			patchingv1connect.PatchServiceDecideDeferralProcedure:        PermDefer,
			patchingv1connect.PatchServiceGetRemediationProcedure:        PermRead,
			patchingv1connect.PatchServiceListRemediationsProcedure:      PermRead,
			patchingv1connect.PatchServiceListAssetsProcedure:            PermRead,
		},
		Roles: map[string][]auth.Permission{
			"org-admin":        all,
			"security-officer": all,
			"patch-manager":    {PermRead, PermInventory, PermRemediate},
			"asset-manager":    {PermRead, PermInventory},
			// An ITSM tool or scanner feeding the platform through ingest.
			"itsm-source":      {PermRead, PermInventory, PermRemediate},
			"contract-manager": {PermRead, PermDefer},
			"auditor":          {PermRead},
			"viewer":           {PermRead},
		},
	}
}
