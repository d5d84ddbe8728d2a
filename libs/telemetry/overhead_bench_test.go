package telemetry_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/jsmplatform/jsm/libs/telemetry"
)

// What the append path adds per append with tracing off: a span from the
// no-op tracer, the traceparent of the context, one counter.
func BenchmarkAppendInstrumentationOff(b *testing.B) {
	for _, tc := range []struct {
		name string
		ctx  context.Context
	}{
		{"no-trace", context.Background()},
		{"client-trace", telemetry.FromTraceParent(context.Background(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ctx, span := telemetry.Tracer().Start(tc.ctx, "append test.thing", trace.WithSpanKind(trace.SpanKindProducer))
				_ = telemetry.TraceParent(ctx)
				telemetry.EventsAppended.WithLabelValues("jsm.contracts.v1.ContractDrafted").Inc()
				telemetry.End(span, nil)
			}
		})
	}
}
