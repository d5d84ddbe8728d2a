package rpc

import (
	"context"
	"errors"
	"net/http"
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
// correlation and trace. A correlation id or request id out of its bounds
// (event.CheckToken, event.MaxRefLen) is refused invalid_argument: it would
// travel in every event's headers and the trail's index. A traceparent
// that is not one is dropped, as W3C Trace Context asks.
func CommandRequest[T any](ctx context.Context, r *connect.Request[T], requestID string) (es.Request, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return es.Request{}, connect.NewError(connect.CodeUnauthenticated, errors.New("no caller"))
	}
	correlation, traceParent, err := RequestHeaders(r.Header())
	if err != nil {
		return es.Request{}, err
	}
	if err := event.CheckName("request_id", requestID, event.MaxClientRefLen); err != nil {
		return es.Request{}, connect.NewError(connect.CodeInvalidArgument, err)
	}
	return es.Request{
		Actor:       event.Actor{Org: p.Org, User: p.User, Role: strings.Join(p.Roles, ",")},
		ID:          requestID,
		Correlation: correlation,
		TraceParent: traceParent,
		Contracts:   p.Contracts,
	}, nil
}

// RequestHeaders reads the correlation id and the traceparent a client
// sent, in their bounds: a correlation id out of them is an
// invalid_argument error, a traceparent out of them is dropped.
func RequestHeaders(h http.Header) (correlation, traceParent string, err error) {
	correlation = h.Get(HeaderCorrelation)
	if err := event.CheckToken(HeaderCorrelation+" header", correlation, event.MaxRefLen); err != nil {
		return "", "", connect.NewError(connect.CodeInvalidArgument, err)
	}
	traceParent = h.Get("traceparent")
	if event.CheckToken("traceparent", traceParent, event.MaxTraceParentLen) != nil {
		traceParent = ""
	}
	return correlation, traceParent, nil
}

// CallerOrg is the org a query reads for.
func CallerOrg(ctx context.Context) (string, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return "", connect.NewError(connect.CodeUnauthenticated, errors.New("no caller"))
	}
	return p.Org, nil
}
