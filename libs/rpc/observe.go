package rpc

import (
	"context"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/otelconnect"
	"connectrpc.com/validate"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/jsmplatform/jsm/libs/auth"
	"github.com/jsmplatform/jsm/libs/telemetry"
)

// Interceptors are the interceptors of every JSM handler, outermost first:
// the RPC's span (continuing the client's traceparent) and metrics see
// every call, an unauthenticated caller is turned away before validation
// tells it anything about the request, and the caller's org and the
// request's contract label the span and the log lines of what follows.
func Interceptors(verifier *auth.Verifier, policy auth.Policy) (connect.HandlerOption, error) {
	// The platform's clients are its parties' own systems: a trace they
	// started goes on here rather than starting over with a link.
	otel, err := otelconnect.NewInterceptor(
		otelconnect.WithTrustRemote(),
		otelconnect.WithoutMetrics(),
		otelconnect.WithPropagator(telemetry.Propagator),
		otelconnect.WithTracerProvider(telemetry.TracerProvider()),
	)
	if err != nil {
		return nil, err
	}
	return connect.WithInterceptors(otel, metrics{}, auth.NewInterceptor(verifier, policy), scope{}, validate.NewInterceptor()), nil
}

// metrics counts and times every RPC by procedure and outcome.
type metrics struct{}

func (metrics) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		start := time.Now()
		res, err := next(ctx, req)
		observe(req.Spec().Procedure, start, err)
		return res, err
	}
}

func (metrics) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (metrics) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		start := time.Now()
		err := next(ctx, conn)
		observe(conn.Spec().Procedure, start, err)
		return err
	}
}

func observe(procedure string, start time.Time, err error) {
	code := "ok"
	if err != nil {
		code = connect.CodeOf(err).String()
	}
	telemetry.RPCRequests.WithLabelValues(procedure, code).Inc()
	telemetry.RPCDuration.WithLabelValues(procedure).Observe(time.Since(start).Seconds())
}

// scope puts the caller's org and the request's contract (its contract_id
// field, when it has one) on the context and the RPC's span.
type scope struct{}

func (scope) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		msg, _ := req.Any().(proto.Message)
		return next(withScope(ctx, msg), req)
	}
}

func (scope) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (scope) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		return next(withScope(ctx, nil), conn)
	}
}

func withScope(ctx context.Context, msg proto.Message) context.Context {
	var s telemetry.Scope
	if p, ok := auth.FromContext(ctx); ok {
		s.Org = p.Org
	}
	if msg != nil {
		s.Contract = contractOf(msg.ProtoReflect())
	}
	if s == (telemetry.Scope{}) {
		return ctx
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(attribute.String("jsm.org", s.Org), attribute.String("jsm.contract", s.Contract))
	}
	return telemetry.WithScope(ctx, s)
}

// contractOf reads a request's top-level contract_id: every API names the
// contract that way.
func contractOf(m protoreflect.Message) string {
	f := m.Descriptor().Fields().ByName("contract_id")
	if f == nil || f.Kind() != protoreflect.StringKind || f.IsList() {
		return ""
	}
	return m.Get(f).String()
}
