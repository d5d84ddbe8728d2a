package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"connectrpc.com/connect"

	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/projection"
	"github.com/jsmplatform/jsm/services/contracts/domain"
)

// Every error the service can meet maps to the Connect code the README
// promises, wrapped or not; anything else is internal and says no more.
func TestErrorCodes(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cases := []struct {
		err  error
		want connect.Code
	}{
		{domain.NotFoundError{ID: "c"}, connect.CodeNotFound},
		{domain.ErrNotParty, connect.CodeNotFound},
		{domain.ErrWrongParty, connect.CodePermissionDenied},
		{errDraftForOthers, connect.CodePermissionDenied},
		{domain.ErrInvalid, connect.CodeInvalidArgument},
		{domain.ErrAlreadyExists, connect.CodeAlreadyExists},
		{domain.ErrWrongPhase, connect.CodeFailedPrecondition},
		{domain.ErrAlreadySigned, connect.CodeFailedPrecondition},
		{domain.ErrTerminated, connect.CodeFailedPrecondition},
		{domain.ErrNoticePeriod, connect.CodeFailedPrecondition},
		{&eventstore.ConflictError{Subject: "s", Expected: 1, Code: 10071}, connect.CodeAborted},
		{projection.ErrNotCaughtUp, connect.CodeUnavailable},
		{projection.ErrBeyondStream, connect.CodeInvalidArgument},
		{context.DeadlineExceeded, connect.CodeDeadlineExceeded},
		{errors.New("disk on fire"), connect.CodeInternal},
	}
	for _, tc := range cases {
		for _, err := range []error{tc.err, fmt.Errorf("handling: %w", tc.err)} {
			got := toConnect(context.Background(), log, err)
			if connect.CodeOf(got) != tc.want {
				t.Errorf("%v: code %v, want %v", err, connect.CodeOf(got), tc.want)
			}
		}
	}
	if got := toConnect(context.Background(), log, errors.New("disk on fire")); got.Error() != "internal: internal error" {
		t.Errorf("an internal error tells the caller %q", got.Error())
	}
}
