package rpc

import (
	"context"
	"errors"
	"log/slog"
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
// Failures that are the platform's fault (internal, unknown, data loss) are
// logged with that context, so the line leads to the trace.
func Interceptors(verifier *auth.Verifier, policy auth.Policy, log *slog.Logger) (connect.HandlerOption, error) {
	if log == nil {
		log = slog.Default()
	}
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
	return connect.WithInterceptors(otel, metrics{}, auth.NewInterceptor(verifier, policy), scope{log}, validate.NewInterceptor()), nil
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
type scope struct{ log *slog.Logger }

func (s scope) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		msg, _ := req.Any().(proto.Message)
		ctx = withScope(ctx, msg)
		res, err := next(ctx, req)
		s.failed(ctx, req.Spec().Procedure, err)
		return res, err
	}
}

func (s scope) failed(ctx context.Context, procedure string, err error) {
	switch connect.CodeOf(err) {
	case connect.CodeInternal, connect.CodeUnknown, connect.CodeDataLoss:
		if err != nil && !errors.Is(err, context.Canceled) {
			s.log.ErrorContext(ctx, "rpc failed", "procedure", procedure, "err", err)
		}
	}
}

func (s scope) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (s scope) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx = withScope(ctx, nil)
		err := next(ctx, conn)
		s.failed(ctx, conn.Spec().Procedure, err)
		return err
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
