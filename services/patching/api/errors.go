package api

import (
	"context"
	"log/slog"

	"github.com/jsmplatform/jsm/libs/rpc"
	"github.com/jsmplatform/jsm/services/patching/domain"
)

// domainErrors maps the app and domain layers' errors to Connect codes.
var domainErrors = rpc.DomainErrors{
	Service:            "patching",
	AlreadyExists:      []error{},
	FailedPrecondition: []error{domain.ErrWrongStatus, domain.ErrNoApprovedChange},
}

func toConnect(ctx context.Context, log *slog.Logger, err error) error {
	return domainErrors.ToConnect(ctx, log, err)
}
