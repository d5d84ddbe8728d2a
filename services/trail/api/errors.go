package api

import (
	"context"
	"errors"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/jsmplatform/jsm/libs/projection"
	"github.com/jsmplatform/jsm/services/trail/app"
)

// toConnect maps every error of the app layer to a Connect code, in this
// one place. Entries of other orgs' contracts are not found, so a caller
// cannot probe which exist.
func toConnect(ctx context.Context, log *slog.Logger, err error) error {
	var code connect.Code
	switch {
	case errors.Is(err, app.ErrNotFound):
		code = connect.CodeNotFound
	case errors.Is(err, app.ErrInvalid), errors.Is(err, projection.ErrBeyondStream):
		code = connect.CodeInvalidArgument
	case errors.Is(err, app.ErrNotYet), errors.Is(err, projection.ErrNotCaughtUp):
		code = connect.CodeUnavailable
	case errors.Is(err, app.ErrDiverged):
		log.ErrorContext(ctx, "trail diverges from a signed checkpoint", "err", err)
		code = connect.CodeDataLoss
	case errors.Is(err, context.Canceled):
		code = connect.CodeCanceled
	case errors.Is(err, context.DeadlineExceeded):
		code = connect.CodeDeadlineExceeded
	default:
		log.ErrorContext(ctx, "trail request failed", "err", err)
		return connect.NewError(connect.CodeInternal, errors.New("internal error"))
	}
	return connect.NewError(code, err)
}
