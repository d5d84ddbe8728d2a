// Package integration is the integration service: sources of an org's ITSM
// tools and scanners publish CloudEvents in (package ingest), and the orgs'
// webhook subscriptions receive platform events out (package webhooks).
// Service wires both halves from explicit dependencies, so
// cmd/integration and tools/jsm build it the same way.
package integration

import (
	"context"
	"maps"
	"net/http"

	"connectrpc.com/connect"
	"golang.org/x/sync/errgroup"

	"github.com/jsmplatform/jsm/libs/auth"
	"github.com/jsmplatform/jsm/libs/rpc"
	"github.com/jsmplatform/jsm/libs/svcmain"
	"github.com/jsmplatform/jsm/proto/gen/jsm/integration/v1/integrationv1connect"
	"github.com/jsmplatform/jsm/services/integration/ingest"
	"github.com/jsmplatform/jsm/services/integration/secret"
	"github.com/jsmplatform/jsm/services/integration/webhooks"
)

// Deps are what the service needs from its host.
type Deps struct {
	svcmain.Deps
	// Keys derive the sources' and subscriptions' secrets (required).
	Keys secret.Keys
	// Platform says where ingested events' commands go (required).
	Platform func() ingest.Platform
	// AllowPrivateTargets lets webhook endpoints on loopback and private
	// addresses through (tests, a developer's `jsm up`).
	AllowPrivateTargets bool
	Limits              ingest.Limits
	Delivery            webhooks.Delivery
	// NATSAuth lets sources publish on NATS with their secrets (the auth
	// callout); nil when the server lets them in some other way.
	NATSAuth *ingest.NATSAuth
}

// Service is the integration service.
type Service struct {
	deps    Deps
	sources *ingest.Sources
	subs    *webhooks.Subscriptions
}

var _ rpc.Service = (*Service)(nil)

// handler is jsm.integration.v1.IntegrationService: each half implements
// its own procedures.
type handler struct {
	*ingest.Sources
	*webhooks.Subscriptions
}

var _ integrationv1connect.IntegrationServiceHandler = handler{}

// New builds the service.
func New(ctx context.Context, d Deps) (*Service, error) {
	base, err := d.Deps.Defaults("integration")
	if err != nil {
		return nil, err
	}
	d.Deps = base
	sources, err := ingest.New(ctx, ingest.Deps{Store: d.Store, Pool: d.Pool, Logger: d.Logger, Keys: d.Keys,
		Platform: d.Platform, Now: d.Now, ReadWait: d.ReadWait, Limits: d.Limits, NATSAuth: d.NATSAuth})
	if err != nil {
		return nil, err
	}
	subs, err := webhooks.New(ctx, webhooks.Deps{Store: d.Store, Pool: d.Pool, Logger: d.Logger, Keys: d.Keys,
		Now: d.Now, ReadWait: d.ReadWait, AllowPrivateTargets: d.AllowPrivateTargets, Delivery: d.Delivery})
	if err != nil {
		return nil, err
	}
	return &Service{deps: d, sources: sources, subs: subs}, nil
}

// Name is "integration".
func (s *Service) Name() string { return "integration" }

// Sources is the ingest half (tests reach its projector).
func (s *Service) Sources() *ingest.Sources { return s.sources }

// Subscriptions is the webhooks half.
func (s *Service) Subscriptions() *webhooks.Subscriptions { return s.subs }

// Migrate creates both halves' schemas.
func (s *Service) Migrate(ctx context.Context) error {
	if err := s.sources.Migrate(ctx); err != nil {
		return err
	}
	return s.subs.Migrate(ctx)
}

// Run runs both halves' background work until ctx ends; one that fails
// stops the other.
func (s *Service) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.sources.Run(ctx) })
	g.Go(func() error { return s.subs.Run(ctx) })
	return g.Wait()
}

// Handlers mounts jsm.integration.v1.IntegrationService and the ingest
// endpoint (which authenticates sources itself, by their secrets).
func (s *Service) Handlers(opts ...connect.HandlerOption) []rpc.Handler {
	path, h := integrationv1connect.NewIntegrationServiceHandler(handler{s.sources, s.subs}, opts...)
	return []rpc.Handler{
		{Path: path, Service: integrationv1connect.IntegrationServiceName, Handler: http.Handler(h)},
		{Path: ingest.PathPrefix, Handler: s.sources.Handler()},
	}
}

// Policy: which role may call which procedure. README.md documents it.
func (s *Service) Policy() auth.Policy { return Policy() }

// Policy is the service's access policy.
func Policy() auth.Policy {
	procs := maps.Clone(ingest.Procedures())
	maps.Copy(procs, webhooks.Procedures())
	all := []auth.Permission{ingest.PermSources, webhooks.PermWebhooks, ingest.PermRead}
	return auth.Policy{
		Procedures: procs,
		Roles: map[string][]auth.Permission{
			"org-admin":           all,
			"integration-manager": all,
			"security-officer":    {ingest.PermRead},
			"contract-manager":    {ingest.PermRead},
			"auditor":             {ingest.PermRead},
			"viewer":              {ingest.PermRead},
		},
	}
}
