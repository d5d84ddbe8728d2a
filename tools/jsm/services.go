package main

import (
	"context"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/rpc"
	"github.com/jsmplatform/jsm/services/audits"
	"github.com/jsmplatform/jsm/services/changeadvisory"
	"github.com/jsmplatform/jsm/services/contracts"
	"github.com/jsmplatform/jsm/services/incidents"
	"github.com/jsmplatform/jsm/services/patching"
	"github.com/jsmplatform/jsm/services/reporting"
)

// serviceDeps are what `jsm up` hands every service.
type serviceDeps struct {
	Store  *eventstore.Store
	Pool   *pgxpool.Pool
	Logger *slog.Logger
	// DataDir keeps what a service must find again on the next start (the
	// trail's signing key).
	DataDir string
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
	return []rpc.Service{c, i, p, ca, au, re, tr}, nil
}
