package api

import (
	"context"
	"errors"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/jsmplatform/jsm/libs/es"
	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/projection"
	"github.com/jsmplatform/jsm/services/contracts/app"
	"github.com/jsmplatform/jsm/services/contracts/domain"
)

// toConnect maps every error of the app and domain layers to a Connect code,
// in this one place. Contracts of other orgs are not found, so a caller
// cannot probe which contracts exist.
func toConnect(ctx context.Context, log *slog.Logger, err error) error {
	var code connect.Code
	switch {
	case errors.Is(err, domain.NotFoundError{}), errors.Is(err, domain.ErrNotParty):
		return connect.NewError(connect.CodeNotFound, errors.New("contract not found"))
	case errors.Is(err, domain.ErrWrongParty), errors.Is(err, errDraftForOthers):
		code = connect.CodePermissionDenied
	case errors.Is(err, domain.ErrInvalid), errors.Is(err, es.ErrInvalidID), errors.Is(err, app.ErrBadPageToken):
		code = connect.CodeInvalidArgument
	case errors.Is(err, domain.ErrAlreadyExists):
		code = connect.CodeAlreadyExists
	case errors.Is(err, domain.ErrWrongPhase), errors.Is(err, domain.ErrAlreadySigned),
		errors.Is(err, domain.ErrTerminated), errors.Is(err, domain.ErrVersionMismatch),
		errors.Is(err, domain.ErrNoticePeriod):
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
		log.ErrorContext(ctx, "contracts request failed", "err", err)
		return connect.NewError(connect.CodeInternal, errors.New("internal error"))
	}
	return connect.NewError(code, err)
}

// errDraftForOthers: an org may only draft contracts it is a party to.
var errDraftForOthers = errors.New("an org may only draft contracts it is a party to")
