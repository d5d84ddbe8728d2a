package telemetry_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel"

	"github.com/jsmplatform/jsm/libs/telemetry"
)

func TestSetupExportsOnlyWhenAnEndpointIsSet(t *testing.T) {
	ctx := context.Background()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	before := otel.GetTracerProvider()
	shutdown, err := telemetry.Setup(ctx, "jsm-test", nil)
	if err != nil {
		t.Fatal(err)
	}
	if telemetry.Enabled() || otel.GetTracerProvider() != before {
		t.Fatal("tracing was set up without an endpoint")
	}
	if err := shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	var posts atomic.Int64
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" {
			posts.Add(1)
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	shutdown, err = telemetry.Setup(ctx, "jsm-test", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, span := telemetry.Tracer().Start(ctx, "work")
	if !span.IsRecording() {
		t.Fatal("with an endpoint, spans are recorded")
	}
	span.End()
	if err := shutdown(ctx); err != nil { // flushes the batch
		t.Fatal(err)
	}
	if posts.Load() == 0 {
		t.Fatal("no span reached the collector")
	}
}
