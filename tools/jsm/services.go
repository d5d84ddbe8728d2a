package main

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"path/filepath"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jsmplatform/jsm/libs/eventsig"
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
	// Signers are the services' event signing keys, by area, and
	// SignerKeys their verifier keys, which the trail pins.
	Signers    map[string]*eventsig.Signer
	SignerKeys []string
	// StoreOf opens the event stream as the named service's NATS user;
	// nil: every service uses Store.
	StoreOf func(ctx context.Context, service string) (*eventstore.Store, error)
	// PoolOf opens a pool logging in to PostgreSQL as the named service's
	// own role (tools/cluster ProvisionLogins); nil: every service uses Pool.
	PoolOf func(ctx context.Context, service string) (*pgxpool.Pool, error)
	// NATSAuth lets sources onto NATS through the integration service.
	NATSAuth *ingest.NATSAuth
}

// Areas are the services that append events, each signing with its own key.
var Areas = []string{"contracts", "incidents", "patching", "changeadvisory", "audits", "reporting", "integration"}

// EventKeysDir is where `jsm up` keeps the services' event signing keys.
const EventKeysDir = "event-keys"

// withEventKeys loads (or creates, 0600) a signing key per area in the data
// dir's EventKeysDir.
func (d serviceDeps) withEventKeys() (serviceDeps, error) {
	d.Signers = map[string]*eventsig.Signer{}
	for _, area := range Areas {
		s, vkey, err := eventsig.LoadOrCreate(filepath.Join(d.DataDir, EventKeysDir), area)
		if err != nil {
			return d, err
		}
		d.Signers[area], d.SignerKeys = s, append(d.SignerKeys, vkey)
	}
	return d, nil
}

// as is d with the store and pool of service.
func (d serviceDeps) as(ctx context.Context, service string) (serviceDeps, error) {
	if d.StoreOf != nil {
		store, err := d.StoreOf(ctx, service)
		if err != nil {
			return d, err
		}
		d.Store = store
	}
	if d.PoolOf != nil {
		pool, err := d.PoolOf(ctx, service)
		if err != nil {
			return d, err
		}
		d.Pool = pool
	}
	return d, nil
}

// platformServices builds every service of the platform; a new area is
// added here.
func platformServices(ctx context.Context, d serviceDeps) ([]rpc.Service, error) {
	d, err := d.withEventKeys()
	if err != nil {
		return nil, err
	}
	builds := []struct {
		name  string
		build func(d serviceDeps) (rpc.Service, error)
	}{
		{"contracts", func(d serviceDeps) (rpc.Service, error) {
			return contracts.New(ctx, contracts.Deps{Store: d.Store, Pool: d.Pool, Logger: d.Logger})
		}},
		{"incidents", func(d serviceDeps) (rpc.Service, error) {
			return incidents.New(ctx, incidents.Deps{Store: d.Store, Pool: d.Pool, Logger: d.Logger})
		}},
		{"patching", func(d serviceDeps) (rpc.Service, error) {
			return patching.New(ctx, patching.Deps{Store: d.Store, Pool: d.Pool, Logger: d.Logger})
		}},
		{"changeadvisory", func(d serviceDeps) (rpc.Service, error) {
			return changeadvisory.New(ctx, changeadvisory.Deps{Store: d.Store, Pool: d.Pool, Logger: d.Logger})
		}},
		{"audits", func(d serviceDeps) (rpc.Service, error) {
			return audits.New(ctx, audits.Deps{Store: d.Store, Pool: d.Pool, Logger: d.Logger})
		}},
		{"reporting", func(d serviceDeps) (rpc.Service, error) {
			return reporting.New(ctx, reporting.Deps{Store: d.Store, Pool: d.Pool, Logger: d.Logger})
		}},
		{"trail", func(d serviceDeps) (rpc.Service, error) { return newTrail(d) }},
		{"integration", func(d serviceDeps) (rpc.Service, error) { return newIntegration(ctx, d) }},
	}
	var out []rpc.Service
	for _, b := range builds {
		sd, err := d.as(ctx, b.name)
		if err != nil {
			return nil, err
		}
		sd.Store = sd.Store.WithSigner(d.Signers[b.name])
		svc, err := b.build(sd)
		if err != nil {
			return nil, err
		}
		out = append(out, svc)
	}
	return out, nil
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
		NATSAuth:            d.NATSAuth,
	})
}
