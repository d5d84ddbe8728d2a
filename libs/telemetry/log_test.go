package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/jsmplatform/jsm/libs/telemetry"
)

func TestLogHandlerAddsTraceContractAndOrg(t *testing.T) {
	var buf bytes.Buffer
	log, err := telemetry.NewLogger(&buf, "json", "info")
	if err != nil {
		t.Fatal(err)
	}
	log = log.With("service", "contracts")
	tp := sdktrace.NewTracerProvider()
	defer func() { _ = tp.Shutdown(context.Background()) }()
	ctx, span := tp.Tracer("test").Start(context.Background(), "work")
	defer span.End()
	ctx = telemetry.WithScope(ctx, telemetry.Scope{Org: "acme"})
	ctx = telemetry.WithScope(ctx, telemetry.Scope{Contract: "c-1"}) // keeps the org

	log.InfoContext(ctx, "signed", "by", "alice")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("not JSON: %q: %v", buf.String(), err)
	}
	want := map[string]string{
		"msg": "signed", "by": "alice", "service": "contracts", "contract": "c-1", "org": "acme",
		"trace_id": span.SpanContext().TraceID().String(), "span_id": span.SpanContext().SpanID().String(),
	}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s = %v, want %q (line %s)", k, line[k], v, buf.String())
		}
	}

	// Without a context there is nothing to add, and nothing breaks.
	buf.Reset()
	log.Info("plain")
	if s := buf.String(); strings.Contains(s, "trace_id") || strings.Contains(s, `"contract":`) || !strings.Contains(s, `"msg":"plain"`) {
		t.Errorf("line without a context: %s", s)
	}
}

func TestNewLoggerFormats(t *testing.T) {
	var buf bytes.Buffer
	log, err := telemetry.NewLogger(&buf, "text", "warn")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown")
	if s := buf.String(); strings.Contains(s, "hidden") || !strings.Contains(s, "msg=shown") {
		t.Errorf("text logger at warn wrote %q", s)
	}
	if _, err := telemetry.NewLogger(&buf, "yaml", "info"); err == nil {
		t.Error("format yaml accepted")
	}
	if _, err := telemetry.NewLogger(&buf, "json", "loud"); err == nil {
		t.Error("level loud accepted")
	}
}

func TestTraceParentRoundTrip(t *testing.T) {
	ctx := context.Background()
	if tp := telemetry.TraceParent(ctx); tp != "" {
		t.Fatalf("no span, traceparent %q", tp)
	}
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	if got := telemetry.TraceParent(telemetry.FromTraceParent(ctx, tp)); got != tp {
		t.Fatalf("round trip gave %q, want %q", got, tp)
	}
	if sc := telemetry.SpanContext("not a traceparent"); sc.IsValid() {
		t.Fatalf("malformed traceparent gave %v", sc)
	}
	if !telemetry.SpanContext(tp).IsRemote() {
		t.Fatal("an event's span context is remote")
	}
}
