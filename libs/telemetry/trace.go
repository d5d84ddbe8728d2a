// Package telemetry is JSM's wiring of OpenTelemetry traces, Prometheus
// metrics and slog logs.
//
// A trace follows a command from its RPC through the append (the W3C
// traceparent travels in the event's NATS headers) into every projection,
// reactor and scheduler that handles the event, so one trace shows a command
// and all its consequences. Spans are exported over OTLP only when the
// standard OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) is set;
// otherwise the global tracer stays OpenTelemetry's no-op one, and the
// traceparent a client sent still reaches the events unchanged.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// instrumentation names the tracer of every JSM library.
const instrumentation = "github.com/jsmplatform/jsm"

// Propagator reads and writes trace context (W3C traceparent). It is fixed
// rather than OpenTelemetry's global one, which is a no-op until set: the
// trace context must travel with the events whether or not this process
// exports spans.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Tracer is the tracer of JSM's libraries, from the global provider at the
// time of the call (a test may install its own provider).
func Tracer() trace.Tracer { return otel.GetTracerProvider().Tracer(instrumentation) }

// Enabled reports whether the environment asks for spans to be exported.
func Enabled() bool {
	if strings.EqualFold(os.Getenv("OTEL_SDK_DISABLED"), "true") || os.Getenv("OTEL_TRACES_EXPORTER") == "none" {
		return false
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Setup installs an OTLP (HTTP/protobuf) span exporter as the global tracer
// provider when Enabled, named service unless OTEL_SERVICE_NAME says
// otherwise. The exporter reads the standard OTEL_EXPORTER_OTLP_* variables
// and the sampler OTEL_TRACES_SAMPLER. shutdown flushes what is buffered; it
// is a no-op when nothing was installed.
// The exporter's own failures (an unreachable collector) go to log.
func Setup(ctx context.Context, service string, log *slog.Logger) (shutdown func(context.Context) error, err error) {
	otel.SetTextMapPropagator(Propagator)
	if !Enabled() {
		return func(context.Context) error { return nil }, nil
	}
	if log != nil {
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("opentelemetry", "err", err) }))
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("otlp exporter: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName(service)))
	if err != nil {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over the default name.
	if env, err := resource.New(ctx, resource.WithFromEnv()); err == nil {
		if merged, err := resource.Merge(res, env); err == nil {
			res = merged
		}
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}

// TraceParent is the W3C traceparent of the span in ctx, "" when ctx holds
// no valid span context.
func TraceParent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	var c traceParentCarrier
	Propagator.Inject(ctx, &c)
	return c.value
}

// FromTraceParent returns ctx carrying the remote span context of a W3C
// traceparent; ctx unchanged when tp is empty or malformed.
func FromTraceParent(ctx context.Context, tp string) context.Context {
	if tp == "" {
		return ctx
	}
	return Propagator.Extract(ctx, &traceParentCarrier{value: tp})
}

// SpanContext is the span context of a W3C traceparent (invalid when tp is
// empty or malformed), e.g. to link a span to an event's trace.
func SpanContext(tp string) trace.SpanContext {
	return trace.SpanContextFromContext(FromTraceParent(context.Background(), tp))
}

// End records err on span (if any) and ends it.
func End(span trace.Span, err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// traceParentCarrier carries only the traceparent: events keep it in one
// header of their own (tracestate is not kept), and a one-field carrier
// costs nothing to build on the hot append path.
type traceParentCarrier struct{ value string }

func (c *traceParentCarrier) Get(key string) string {
	if key == "traceparent" {
		return c.value
	}
	return ""
}

func (c *traceParentCarrier) Set(key, value string) {
	if key == "traceparent" {
		c.value = value
	}
}

func (c *traceParentCarrier) Keys() []string { return []string{"traceparent"} }

// TracerProvider is a provider whose tracers look the global provider up at
// each span, for libraries that take their tracer once when built (the
// Connect and pgx instrumentation): they follow a provider installed later,
// or replaced (OpenTelemetry's global delegation follows only the first).
func TracerProvider() trace.TracerProvider { return lateProvider{} }

type lateProvider struct{ embedded.TracerProvider }

func (lateProvider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return lateTracer{name: name, opts: opts}
}

type lateTracer struct {
	embedded.Tracer
	name string
	opts []trace.TracerOption
}

func (t lateTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	return otel.GetTracerProvider().Tracer(t.name, t.opts...).Start(ctx, name, opts...)
}
