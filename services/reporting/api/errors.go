package api

import (
	"context"
	"errors"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/jsmplatform/jsm/libs/es"
	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/projection"
	"github.com/jsmplatform/jsm/services/reporting/domain"
)

// toConnect maps every error of the app and domain layers to a Connect code,
// in this one place. Reports and contracts of other orgs are not found (the
// app layer makes them so), so a caller cannot probe which exist.
func toConnect(ctx context.Context, log *slog.Logger, err error) error {
	var code connect.Code
	switch {
	case errors.Is(err, domain.NotFoundError{}):
		code = connect.CodeNotFound
	case errors.Is(err, domain.ErrNotParty):
		return connect.NewError(connect.CodeNotFound, errors.New("not found"))
	case errors.Is(err, domain.ErrWrongParty):
		code = connect.CodePermissionDenied
	case errors.Is(err, domain.ErrInvalid), errors.Is(err, es.ErrInvalidID):
		code = connect.CodeInvalidArgument
	case errors.Is(err, domain.ErrAlreadyExists):
		code = connect.CodeAlreadyExists
	case errors.Is(err, domain.ErrWrongStatus):
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
		log.ErrorContext(ctx, "reporting request failed", "err", err)
		return connect.NewError(connect.CodeInternal, errors.New("internal error"))
	}
	return connect.NewError(code, err)
}
