package main

import (
	"context"
	"crypto/ed25519"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/rpc"
	"github.com/jsmplatform/jsm/libs/svcmain"
	"github.com/jsmplatform/jsm/services/audits"
	"github.com/jsmplatform/jsm/services/changeadvisory"
	"github.com/jsmplatform/jsm/services/contracts"
	"github.com/jsmplatform/jsm/services/incidents"
	"github.com/jsmplatform/jsm/services/integration"
	"github.com/jsmplatform/jsm/services/integration/ingest"
	"github.com/jsmplatform/jsm/services/integration/secret"
	"github.com/jsmplatform/jsm/services/patching"
	"github.com/jsmplatform/jsm/services/reporting"
)

// serviceDeps are what `jsm up` hands every service.
type serviceDeps struct {
	Store  *eventstore.Store
	Pool   *pgxpool.Pool
	Logger *slog.Logger
	// DataDir keeps what a service must find again on the next start (the
	// trail's signing key, the integration master key).
	DataDir string
	// IntegrationKey signs ingest's tokens (integration's own issuer, which
	// the host trusts for sources only); Addr is the host's address once it
	// listens. Ingest calls the platform with both.
	IntegrationKey ed25519.PrivateKey
	Addr           func() string
}

// platformServices builds every service of the platform; a new area is
// added here.
func platformServices(ctx context.Context, d serviceDeps) ([]rpc.Service, error) {
	c, err := contracts.New(ctx, contracts.Deps{Store: d.Store, Pool: d.Pool, Logger: d.Logger})
	if err != nil {
		return nil, err
	}
	i, err := incidents.New(ctx, incidents.Deps{Store: d.Store, Pool: d.Pool, Logger: d.Logger})
	if err != nil {
		return nil, err
	}
	p, err := patching.New(ctx, patching.Deps{Store: d.Store, Pool: d.Pool, Logger: d.Logger})
	if err != nil {
		return nil, err
	}
	ca, err := changeadvisory.New(ctx, changeadvisory.Deps{Store: d.Store, Pool: d.Pool, Logger: d.Logger})
	if err != nil {
		return nil, err
	}
	au, err := audits.New(ctx, audits.Deps{Store: d.Store, Pool: d.Pool, Logger: d.Logger})
	if err != nil {
		return nil, err
	}
	re, err := reporting.New(ctx, reporting.Deps{Store: d.Store, Pool: d.Pool, Logger: d.Logger})
	if err != nil {
		return nil, err
	}
	tr, err := newTrail(d)
	if err != nil {
		return nil, err
	}
	in, err := newIntegration(ctx, d)
	if err != nil {
		return nil, err
	}
	return []rpc.Service{c, i, p, ca, au, re, tr, in}, nil
}

// newIntegration builds the integration service of `jsm up`: its master
// key kept in the data dir, ingest calling this same host, and webhooks
// allowed to a developer's local endpoints.
func newIntegration(ctx context.Context, d serviceDeps) (*integration.Service, error) {
	keys, err := secret.LoadOrCreate(d.DataDir)
	if err != nil {
		return nil, err
	}
	mint := ingest.Minter(d.IntegrationKey)
	return integration.New(ctx, integration.Deps{
		Deps: svcmain.Deps{Store: d.Store, Pool: d.Pool, Logger: d.Logger},
		Keys: keys,
		Platform: func() ingest.Platform {
			base := d.Addr()
			return ingest.Platform{Incidents: base, Patching: base, Changes: base, Token: mint}
		},
		AllowPrivateTargets: true,
	})
}
