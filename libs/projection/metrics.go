package projection

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/telemetry"
)

// running are the projectors of this process by name, for /metrics. The
// last one started under a name wins: a name is one projection.
var running = struct {
	sync.Mutex
	byName map[string]*Projector
}{byName: map[string]*Projector{}}

func (p *Projector) register() func() {
	running.Lock()
	running.byName[p.cfg.Name] = p
	running.Unlock()
	return func() {
		running.Lock()
		defer running.Unlock()
		if running.byName[p.cfg.Name] == p {
			delete(running.byName, p.cfg.Name)
		}
	}
}

var (
	positionDesc = prometheus.NewDesc("jsm_projection_position",
		"Last JSM_EVENTS position the projection has committed.", []string{"projection"}, nil)
	lagDesc = prometheus.NewDesc("jsm_projection_lag_events",
		"Events in JSM_EVENTS after the projection's position (the stream's last sequence minus the checkpoint).", []string{"projection"}, nil)
)

// collector reads the positions at scrape time, and the stream's end once
// per store: a gauge updated per batch would cost the hot path and still
// say nothing of a projection that stopped.
type collector struct{}

func (collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- positionDesc
	ch <- lagDesc
}

func (collector) Collect(ch chan<- prometheus.Metric) {
	running.Lock()
	projectors := make([]*Projector, 0, len(running.byName))
	for _, p := range running.byName {
		projectors = append(projectors, p)
	}
	running.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	last := map[*eventstore.Store]uint64{}
	for _, p := range projectors {
		pos := p.Position()
		end, ok := last[p.store]
		if !ok {
			var err error
			if end, err = p.store.LastPosition(ctx); err != nil {
				end = pos + p.Lag() // what the consumer last said
			}
			last[p.store] = end
		}
		ch <- prometheus.MustNewConstMetric(positionDesc, prometheus.GaugeValue, float64(pos), p.cfg.Name)
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(end-min(pos, end)), p.cfg.Name)
	}
}

func init() { telemetry.Registry.MustRegister(collector{}) }

// maxLinks bounds a batch span's links, as the SDK's default span limits
// would anyway.
const maxLinks = 128

// startBatch starts the span of one batch. A batch whose events come from
// one trace (live traffic: usually one command's events) is a child of it,
// so the command's trace shows its projection; a batch mixing traces
// (catching up, rebuilding) is a trace of its own, linked to each event's.
// Linking keeps one span per transaction, the unit that actually runs,
// where a child span per event would write thousands of spans per batch
// while catching up.
func (p *Projector) startBatch(ctx context.Context, batch []event.Event) (context.Context, trace.Span) {
	first, mixed := "", false
	for _, e := range batch {
		switch {
		case e.TraceParent == "":
		case first == "":
			first = e.TraceParent
		case traceID(e.TraceParent) != traceID(first):
			mixed = true
		}
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}
	if mixed {
		opts = append(opts, trace.WithNewRoot())
	} else {
		ctx = telemetry.FromTraceParent(ctx, first)
	}
	ctx, span := telemetry.Tracer().Start(ctx, "project "+p.cfg.Name, opts...)
	if !span.IsRecording() {
		return ctx, span
	}
	span.SetAttributes(
		attribute.String("jsm.projection", p.cfg.Name),
		attribute.Int("messaging.batch.message_count", len(batch)),
		attribute.Int64("jsm.position.first", int64(batch[0].Position)),
		attribute.Int64("jsm.position.last", int64(batch[len(batch)-1].Position)),
	)
	if mixed {
		links := 0
		for _, e := range batch {
			if sc := telemetry.SpanContext(e.TraceParent); sc.IsValid() && links < maxLinks {
				span.AddLink(trace.Link{SpanContext: sc})
				links++
			}
		}
	}
	return ctx, span
}

// traceID is the trace id part of a W3C traceparent ("00-<trace id>-<span id>-<flags>").
func traceID(tp string) string {
	if len(tp) < 35 {
		return tp
	}
	return tp[3:35]
}
