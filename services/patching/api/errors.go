package api

import (
	"context"
	"errors"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/jsmplatform/jsm/libs/es"
	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/projection"
	"github.com/jsmplatform/jsm/services/patching/app"
	"github.com/jsmplatform/jsm/services/patching/domain"
)

// toConnect maps every error of the app and domain layers to a Connect
// code, in this one place. Remediations and contracts of other orgs are
// not found (the app layer makes them so).
func toConnect(ctx context.Context, log *slog.Logger, err error) error {
	var code connect.Code
	switch {
	case errors.Is(err, domain.NotFoundError{}):
		code = connect.CodeNotFound
	case errors.Is(err, domain.ErrNotParty):
		return connect.NewError(connect.CodeNotFound, errors.New("not found"))
	case errors.Is(err, domain.ErrWrongParty):
		code = connect.CodePermissionDenied
	case errors.Is(err, domain.ErrInvalid), errors.Is(err, es.ErrInvalidID), errors.Is(err, app.ErrBadPageToken):
		code = connect.CodeInvalidArgument
	case errors.Is(err, domain.ErrWrongStatus), errors.Is(err, domain.ErrContractNotActive), errors.Is(err, domain.ErrNoApprovedChange):
		code = connect.CodeFailedPrecondition
	case errors.Is(err, eventstore.ErrConflict):
		code = connect.CodeAborted
	case errors.Is(err, projection.ErrNotCaughtUp):
		code = connect.CodeUnavailable
	case errors.Is(err, projection.ErrBeyondStream):
		code = connect.CodeInvalidArgument
	case errors.Is(err, context.Canceled):
		code = connect.CodeCanceled
	case errors.Is(err, context.DeadlineExceeded):
		code = connect.CodeDeadlineExceeded
	default:
		log.ErrorContext(ctx, "patching request failed", "err", err)
		return connect.NewError(connect.CodeInternal, errors.New("internal error"))
	}
	return connect.NewError(code, err)
}
