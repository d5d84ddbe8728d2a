package api

import (
	"context"
	"log/slog"

	"github.com/jsmplatform/jsm/libs/rpc"
	"github.com/jsmplatform/jsm/services/reporting/domain"
)

// domainErrors maps the app and domain layers' errors to Connect codes.
var domainErrors = rpc.DomainErrors{
	Service:            "reporting",
	AlreadyExists:      []error{domain.ErrAlreadyExists},
	FailedPrecondition: []error{domain.ErrWrongStatus},
}

func toConnect(ctx context.Context, log *slog.Logger, err error) error {
	return domainErrors.ToConnect(ctx, log, err)
}
