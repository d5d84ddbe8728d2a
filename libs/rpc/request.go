package rpc

import (
	"context"
	"errors"
	"strings"

	"connectrpc.com/connect"

	"github.com/jsmplatform/jsm/libs/auth"
	"github.com/jsmplatform/jsm/libs/es"
	"github.com/jsmplatform/jsm/libs/event"
)

// HeaderCorrelation carries a client's correlation id; traceparent comes
// from W3C tracing.
const HeaderCorrelation = "Jsm-Correlation-Id"

// CommandRequest is what a command handler hands its app layer: the caller
// from the context, the client's idempotency key and the request's
// correlation and trace.
func CommandRequest[T any](ctx context.Context, r *connect.Request[T], requestID string) (es.Request, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return es.Request{}, connect.NewError(connect.CodeUnauthenticated, errors.New("no caller"))
	}
	return es.Request{
		Actor:       event.Actor{Org: p.Org, User: p.User, Role: strings.Join(p.Roles, ",")},
		ID:          requestID,
		Correlation: r.Header().Get(HeaderCorrelation),
		TraceParent: r.Header().Get("traceparent"),
		Contracts:   p.Contracts,
	}, nil
}

// CallerOrg is the org a query reads for.
func CallerOrg(ctx context.Context) (string, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return "", connect.NewError(connect.CodeUnauthenticated, errors.New("no caller"))
	}
	return p.Org, nil
}
