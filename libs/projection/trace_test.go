package projection_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/projection"
)

// A batch span continues its events' trace when they share one, and is a
// root linked to each event's context when they do not.
func TestBatchSpansFollowTheirEventsTraces(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	ctx := context.Background()
	f := setup(t, 0, false)
	traces := []string{
		"00-11111111111111111111111111111111-1111111111111111-01",
		"00-22222222222222222222222222222222-2222222222222222-01",
		"00-33333333333333333333333333333333-3333333333333333-01",
	}
	publish := func(tp string) {
		t.Helper()
		e, err := event.New(event.Envelope{ID: event.NewID(), AggregateType: "test.thing", AggregateID: "a", Time: time.Now(), TraceParent: tp}, wrapperspb.Int64(1))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.store.JetStream().PublishMsg(ctx, e.Msg()); err != nil {
			t.Fatal(err)
		}
	}
	// Waiting in the stream, the first two come in one batch, most likely.
	publish(traces[0])
	publish(traces[1])
	p := f.projector(t, projection.Hooks{})
	start(t, p)
	if err := p.WaitFor(ctx, 2, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	publish(traces[2])
	if err := p.WaitFor(ctx, 3, 10*time.Second); err != nil {
		t.Fatal(err)
	}

	reached := map[string]bool{} // trace ids a batch span is part of or links to
	for _, s := range spans.GetSpans().Snapshots() {
		if s.Name() != "project seen" {
			continue
		}
		if len(s.Links()) > 0 && s.Parent().IsValid() {
			t.Errorf("a batch span with links has parent %v: a mixed batch is a trace of its own", s.Parent())
		}
		if len(s.Links()) == 1 {
			t.Errorf("a batch span links one trace only: it should have continued it")
		}
		if s.Parent().IsValid() {
			reached[s.Parent().TraceID().String()] = true
		}
		for _, l := range s.Links() {
			reached[l.SpanContext.TraceID().String()] = true
		}
	}
	for _, tp := range traces {
		if id := tp[3:35]; !reached[id] {
			t.Errorf("no batch span continues or links trace %s", id)
		}
	}
	// The lone event's batch is in its trace.
	for _, s := range spans.GetSpans().Snapshots() {
		if s.Name() == "project seen" && s.SpanContext().TraceID().String() == traces[2][3:35] {
			return
		}
	}
	t.Error("the last event's batch span is not in its trace")
}
