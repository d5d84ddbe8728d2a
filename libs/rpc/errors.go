package rpc

import (
	"context"
	"errors"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/jsmplatform/jsm/libs/decide"
	"github.com/jsmplatform/jsm/libs/es"
	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/projection"
)

// DomainErrors maps to Connect codes, in one place per service, the errors
// every area's app and domain layers share, plus the area's own.
// Aggregates and contracts of other orgs are not found (the app layers make
// them so), so a caller cannot probe which exist.
type DomainErrors struct {
	// Service names the service in the log of an unexpected error.
	Service string
	// AlreadyExists and FailedPrecondition list the area's own errors of
	// those kinds; decide.ErrContractNotActive is a failed precondition
	// in every area.
	AlreadyExists      []error
	FailedPrecondition []error
}

// ToConnect maps err; an unexpected one is logged and answered as internal.
func (m DomainErrors) ToConnect(ctx context.Context, log *slog.Logger, err error) error {
	var code connect.Code
	switch {
	case errors.Is(err, decide.NotFoundError{}):
		code = connect.CodeNotFound
	case errors.Is(err, decide.ErrNotParty):
		return connect.NewError(connect.CodeNotFound, errors.New("not found"))
	case errors.Is(err, decide.ErrWrongParty), errors.Is(err, es.ErrContractNotAllowed):
		code = connect.CodePermissionDenied
	case errors.Is(err, decide.ErrInvalid), errors.Is(err, es.ErrInvalidID), errors.Is(err, event.ErrOutOfBounds):
		code = connect.CodeInvalidArgument
	case isAny(err, m.AlreadyExists):
		code = connect.CodeAlreadyExists
	case errors.Is(err, decide.ErrContractNotActive), isAny(err, m.FailedPrecondition):
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
		log.ErrorContext(ctx, m.Service+" request failed", "err", err)
		return connect.NewError(connect.CodeInternal, errors.New("internal error"))
	}
	return connect.NewError(code, err)
}

func isAny(err error, targets []error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}
