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

// store is the event store signing with area's key.
func (d serviceDeps) store(area string) *eventstore.Store {
	return d.Store.WithSigner(d.Signers[area])
}

// platformServices builds every service of the platform; a new area is
// added here.
func platformServices(ctx context.Context, d serviceDeps) ([]rpc.Service, error) {
	d, err := d.withEventKeys()
	if err != nil {
		return nil, err
	}
	c, err := contracts.New(ctx, contracts.Deps{Store: d.store("contracts"), Pool: d.Pool, Logger: d.Logger})
	if err != nil {
		return nil, err
	}
	i, err := incidents.New(ctx, incidents.Deps{Store: d.store("incidents"), Pool: d.Pool, Logger: d.Logger})
	if err != nil {
		return nil, err
	}
	p, err := patching.New(ctx, patching.Deps{Store: d.store("patching"), Pool: d.Pool, Logger: d.Logger})
	if err != nil {
		return nil, err
	}
	ca, err := changeadvisory.New(ctx, changeadvisory.Deps{Store: d.store("changeadvisory"), Pool: d.Pool, Logger: d.Logger})
	if err != nil {
		return nil, err
	}
	au, err := audits.New(ctx, audits.Deps{Store: d.store("audits"), Pool: d.Pool, Logger: d.Logger})
	if err != nil {
		return nil, err
	}
	re, err := reporting.New(ctx, reporting.Deps{Store: d.store("reporting"), Pool: d.Pool, Logger: d.Logger})
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
		Deps: svcmain.Deps{Store: d.store("integration"), Pool: d.Pool, Logger: d.Logger},
		Keys: keys,
		Platform: func() ingest.Platform {
			base := d.Addr()
			return ingest.Platform{Incidents: base, Patching: base, Changes: base, Token: mint}
		},
		AllowPrivateTargets: true,
	})
}
