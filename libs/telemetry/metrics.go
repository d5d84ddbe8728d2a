package telemetry

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Registry holds every JSM metric of this process. Metrics are
// process-wide, like the process they describe: `jsm up` runs every
// service in one process and serves them all on one /metrics.
var Registry = prometheus.NewRegistry()

// The platform's metrics. Their names are part of the operations contract
// (dashboards, alerts): change them only with the README's table.
var (
	EventsAppended = register(prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "jsm_events_appended_total",
		Help: "Events appended to JSM_EVENTS by this process, by event type.",
	}, []string{"type"}))
	DeadlinesOverdue = register(prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "jsm_deadlines_overdue_total",
		Help: "Deadlines found passed: ...Overdue events appended by this process, by area.",
	}, []string{"area"}))
	DeadLettered = register(prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "jsm_reactor_dead_lettered_total",
		Help: "Events a reactor gave up on after its retries and moved to JSM_DEADLETTER, by reactor.",
	}, []string{"reactor"}))
	Quarantined = register(prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "jsm_projection_quarantined_total",
		Help: "Events a projection set aside in its schema's quarantine table because no retry could apply them (malformed, undecodable, refused, or a value PostgreSQL refuses), by projection.",
	}, []string{"projection"}))
	Ingested = register(prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "jsm_ingested_events_total",
		Help: "CloudEvents sources sent that ingest took in (duplicates not counted again), by transport (http, nats) and outcome (applied, unchanged, rejected).",
	}, []string{"transport", "outcome"}))
	RPCRequests = register(prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "jsm_rpc_requests_total",
		Help: "Connect RPCs answered, by procedure and code (ok or the Connect error code).",
	}, []string{"procedure", "code"}))
	RPCDuration = register(prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "jsm_rpc_duration_seconds",
		Help:    "Time to answer a Connect RPC, by procedure.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"procedure"}))
)

func init() {
	Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
}

func register[C prometheus.Collector](c C) C {
	Registry.MustRegister(c)
	return c
}

// MetricsHandler serves Registry in the Prometheus text format.
func MetricsHandler() http.Handler {
	return promhttp.HandlerFor(Registry, promhttp.HandlerOpts{Registry: Registry})
}
