package telemetry_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	oteltrace "go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/jsmplatform/jsm/libs/auth"
	"github.com/jsmplatform/jsm/libs/es"
	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/pgdb"
	"github.com/jsmplatform/jsm/libs/projection"
	"github.com/jsmplatform/jsm/libs/reactor"
	"github.com/jsmplatform/jsm/libs/rpc"
	"github.com/jsmplatform/jsm/libs/svcmain"
	"github.com/jsmplatform/jsm/libs/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

const doProcedure = "/test.v1.ThingService/Do"

// thingOverdue is an event type whose name says a deadline passed, as the
// areas' schedulers append; built at run time, the libs having no protos.
var thingOverdue = func() protoreflect.MessageType {
	f, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name:    proto.String("telemetrytest/thing.proto"),
		Package: proto.String("telemetrytest.v1"),
		Syntax:  proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{
			Name: proto.String("ThingOverdue"),
			Field: []*descriptorpb.FieldDescriptorProto{{
				Name: proto.String("id"), JsonName: proto.String("id"), Number: proto.Int32(1),
				Type: descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum(), Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
			}},
		}},
	}, nil)
	if err != nil {
		panic(err)
	}
	mt := dynamicpb.NewMessageType(f.Messages().Get(0))
	if err := protoregistry.GlobalTypes.RegisterMessage(mt); err != nil {
		panic(err)
	}
	return mt
}()

// thingService is the smallest area: a command RPC appending a
// StringValue event on test.thing, a projection of those events, and a
// reactor answering each with a command on test.followup that appends a
// ThingOverdue; a "poison" thing fails its reaction for good.
type thingService struct {
	things    *es.Runner[struct{}, string]
	followups *es.Runner[struct{}, string]
	bg        svcmain.Background
	due       atomic.Pointer[string]
}

func newThingService(t *testing.T, store *eventstore.Store) *thingService {
	ctx := context.Background()
	decider := func(typ string, msg func(string) proto.Message) es.Decider[struct{}, string] {
		return es.Decider[struct{}, string]{
			AggregateType: typ,
			Initial:       func() struct{} { return struct{}{} },
			Decide:        func(_ struct{}, c string) ([]proto.Message, error) { return []proto.Message{msg(c)}, nil },
			Evolve:        func(s struct{}, _ event.Event, _ proto.Message) struct{} { return s },
			Scope: func(struct{}) (string, event.Parties) {
				return "contract-7", event.Parties{Customer: "cust", Provider: "prov"}
			},
			StateVersion: 1,
		}
	}
	things, err := es.NewRunner(ctx, store, "/test", decider("test.thing", func(c string) proto.Message { return wrapperspb.String(c) }), es.WithoutSnapshots())
	if err != nil {
		t.Fatal(err)
	}
	followups, err := es.NewRunner(ctx, store, "/test", decider("test.followup", func(c string) proto.Message {
		m := thingOverdue.New()
		m.Set(m.Descriptor().Fields().ByName("id"), protoreflect.ValueOfString(c))
		return m.Interface()
	}), es.WithoutSnapshots())
	if err != nil {
		t.Fatal(err)
	}
	s := &thingService{things: things, followups: followups}
	react, err := reactor.New(ctx, store, reactor.Config{
		Name: "thing-followups", Subjects: []string{"jsm.evt.test.thing.>"}, MaxRetries: 1, InitialInterval: time.Millisecond,
	}, func(ctx context.Context, e event.Event, m proto.Message) error {
		id := m.(*wrapperspb.StringValue).GetValue()
		if id == "poison" {
			return errors.New("this thing cannot be followed up")
		}
		_, err := followups.Handle(ctx, es.Command[string]{ID: reactor.CommandID("thing-followups", e), AggregateID: id, Body: id})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Opened as a service opens it, so its queries are spans (otelpgx).
	pool, err := pgdb.Open(ctx, testkit.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	proj, err := projection.New(projection.Config{Name: "things", Schema: "telemetrytest"}, thingRows{}, store, pool)
	if err != nil {
		t.Fatal(err)
	}
	// The scheduler finds a deadline passed once the test names one.
	tick := func(ctx context.Context) (int, error) {
		d := s.due.Load()
		if d == nil {
			return 0, nil
		}
		res, err := followups.Handle(ctx, es.Command[string]{ID: "deadline/" + *d, AggregateID: *d, Body: *d})
		if err != nil || res.Duplicate {
			return 0, err
		}
		return 1, nil
	}
	s.bg = svcmain.Background{Projector: proj, Reactors: []svcmain.Runner{react}, Tick: tick, Every: 20 * time.Millisecond, Name: "things"}
	return s
}

type thingRows struct{}

func (thingRows) Apply(ctx context.Context, tx pgx.Tx, events []event.Event) error {
	_, err := tx.Exec(ctx, `SELECT $1::int`, len(events))
	return err
}

func (thingRows) Reset(context.Context, pgx.Tx) error { return nil }

func (s *thingService) Name() string { return "things" }

func (s *thingService) Migrate(ctx context.Context) error {
	return s.bg.Projector.(*projection.Projector).Migrate(ctx)
}

func (s *thingService) Run(ctx context.Context) error { return s.bg.Run(ctx) }

func (s *thingService) Handlers(opts ...connect.HandlerOption) []rpc.Handler {
	h := connect.NewUnaryHandler(doProcedure, func(ctx context.Context, req *connect.Request[wrapperspb.StringValue]) (*connect.Response[wrapperspb.UInt64Value], error) {
		cr, err := rpc.CommandRequest(ctx, req, "")
		if err != nil {
			return nil, err
		}
		res, err := s.things.Handle(ctx, es.CommandFor(cr, req.Msg.GetValue(), req.Msg.GetValue()))
		if err != nil {
			return nil, err
		}
		return connect.NewResponse(wrapperspb.UInt64(res.Position)), nil
	}, opts...)
	return []rpc.Handler{{Path: doProcedure, Service: "test.v1.ThingService", Handler: h}}
}

func (s *thingService) Policy() auth.Policy {
	return auth.Policy{
		Procedures: map[string]auth.Permission{doProcedure: "do"},
		Roles:      map[string][]auth.Permission{"user": {"do"}},
	}
}

type platform struct {
	base  string
	store *eventstore.Store
	svc   *thingService
	call  func(ctx context.Context, id, traceparent string) (uint64, error)
}

func startPlatform(t *testing.T) *platform {
	t.Helper()
	nats := testkit.StartNATS(t)
	store, err := eventstore.Open(context.Background(), nats.Conn(), eventstore.Config{MemoryStorage: true})
	if err != nil {
		t.Fatal(err)
	}
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := auth.NewVerifier(auth.VerifierConfig{Issuer: auth.DevIssuer, Audience: auth.DevAudience, Keys: []crypto.PublicKey{pub}})
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan net.Addr, 1)
	svc := newThingService(t, store)
	host, err := rpc.NewHost(rpc.HostConfig{Listen: "127.0.0.1:0", Verifier: verifier, OnReady: func(a net.Addr) { ready <- a }}, svc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- host.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("host: %v", err)
		}
	})
	var base string
	select {
	case a := <-ready:
		base = "http://" + a.String()
	case err := <-done:
		t.Fatalf("host stopped: %v", err)
	}
	token, err := auth.Mint(key, auth.DevIssuer, auth.DevAudience, auth.Principal{Org: "cust", User: "alice", Roles: []string{"user"}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	client := connect.NewClient[wrapperspb.StringValue, wrapperspb.UInt64Value](http.DefaultClient, base+doProcedure)
	return &platform{base: base, store: store, svc: svc, call: func(ctx context.Context, id, traceparent string) (uint64, error) {
		req := connect.NewRequest(wrapperspb.String(id))
		req.Header().Set("Authorization", "Bearer "+token)
		if traceparent != "" {
			req.Header().Set("traceparent", traceparent)
		}
		res, err := client.CallUnary(ctx, req)
		if err != nil {
			return 0, err
		}
		return res.Msg.GetValue(), nil
	}}
}

// One trace shows a command and all its consequences: the RPC, the
// command and its append, the projection's batch, and the reaction with
// its own command and append; a scheduler's tick is a trace with its
// appends. Before any exporter is installed the client's
// traceparent still reaches the event; afterwards /metrics counts it all.
func TestTraceFollowsACommandThroughItsConsequences(t *testing.T) {
	ctx := context.Background()
	p := startPlatform(t)

	// Tracing off (the global provider is OpenTelemetry's no-op): the
	// client's trace context is carried on as it came.
	const offTrace = "0af7651916cd43dd8448eb211c80319c"
	if _, err := p.call(ctx, "off", "00-"+offTrace+"-b7ad6b7169203331-01"); err != nil {
		t.Fatal(err)
	}
	evs, err := p.store.Load(ctx, "test.thing", "off", 0)
	if err != nil || len(evs) != 1 {
		t.Fatalf("load: %v, %d events", err, len(evs))
	}
	if !strings.Contains(evs[0].TraceParent, offTrace) {
		t.Fatalf("with tracing off the event's traceparent is %q, want the client's trace %s", evs[0].TraceParent, offTrace)
	}

	// Let the first command's consequences settle, so no batch of the
	// projection mixes them with the next command's.
	waitFor(t, func() bool {
		n, err := p.store.Version(ctx, "test.followup", "off")
		return err == nil && n > 0 && strings.Contains(scrape(t, p.base), `jsm_projection_lag_events{projection="things"} 0`)
	})

	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	const onTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	pos, err := p.call(ctx, "on", "00-"+onTrace+"-00f067aa0ba902b7-01")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"test.v1.ThingService/Do", "command test.thing", "append test.thing", "project things", "react thing-followups", "command test.followup", "append test.followup"}
	var trace map[string][]sdktrace.ReadOnlySpan
	deadline := time.Now().Add(20 * time.Second)
	for {
		trace = map[string][]sdktrace.ReadOnlySpan{}
		for _, s := range spans.GetSpans().Snapshots() {
			if s.SpanContext().TraceID().String() == onTrace {
				trace[s.Name()] = append(trace[s.Name()], s)
			}
		}
		missing := []string{}
		for _, name := range want {
			if len(trace[name]) == 0 {
				missing = append(missing, name)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("trace %s lacks %q; it has %v", onTrace, missing, names(trace))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// parentOf checks a span named child is a child of one named parent
	// (the projection has a batch span per event here, for example).
	parentOf := func(child, parent string) {
		t.Helper()
		for _, c := range trace[child] {
			for _, p := range trace[parent] {
				if c.Parent().SpanID() == p.SpanContext().SpanID() {
					return
				}
			}
		}
		t.Errorf("no %q span is a child of a %q span", child, parent)
	}
	parentOf("command test.thing", "test.v1.ThingService/Do")
	parentOf("append test.thing", "command test.thing")
	parentOf("project things", "append test.thing")
	parentOf("react thing-followups", "append test.thing")
	parentOf("command test.followup", "react thing-followups")
	parentOf("append test.followup", "command test.followup")
	// The projection's SQL is a span of the batch (otelpgx).
	queried := false
	for _, p := range trace["project things"] {
		for _, s := range spans.GetSpans().Snapshots() {
			if s.Parent().SpanID() != p.SpanContext().SpanID() {
				continue
			}
			for _, kv := range s.Attributes() {
				queried = queried || (kv.Key == "db.query.text" && kv.Value.AsString() == "SELECT $1::int")
			}
		}
	}
	if !queried {
		t.Error("no span of the projection's query (SELECT $1::int) under its batch's span")
	}
	orgOK := false
	for _, kv := range trace["test.v1.ThingService/Do"][0].Attributes() {
		orgOK = orgOK || (kv.Key == "jsm.org" && kv.Value.AsString() == "cust")
	}
	if !orgOK {
		t.Error("the RPC's span does not name the caller's org")
	}
	followup, err := p.store.Load(ctx, "test.followup", "on", 0)
	if err != nil || len(followup) != 1 {
		t.Fatalf("load followup: %v, %d events", err, len(followup))
	}
	if !strings.Contains(followup[0].TraceParent, onTrace) {
		t.Fatalf("the reaction's event carries %q, want trace %s", followup[0].TraceParent, onTrace)
	}

	// A scheduler's tick is a trace of its own, holding what it appends.
	due := "deadline-1"
	p.svc.due.Store(&due)
	waitFor(t, func() bool {
		byID := map[oteltrace.SpanID]sdktrace.ReadOnlySpan{}
		for _, s := range spans.GetSpans().Snapshots() {
			byID[s.SpanContext().SpanID()] = s
		}
		for _, s := range byID {
			cmd, ok := byID[s.Parent().SpanID()]
			if s.Name() != "append test.followup" || !ok || cmd.Name() != "command test.followup" {
				continue
			}
			if tick, ok := byID[cmd.Parent().SpanID()]; ok && tick.Name() == "things scheduler" {
				return true
			}
		}
		return false
	})

	// A thing whose reaction fails for good is dead-lettered. Metrics are
	// the process's: the test counts what it adds to them.
	const deadLettered = `jsm_reactor_dead_lettered_total{reactor="thing-followups"}`
	before := scrape(t, p.base)
	if _, err := p.call(ctx, "poison", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		last, err := p.store.LastPosition(ctx)
		return err == nil && last >= pos+3 && value(scrape(t, p.base), deadLettered) == value(before, deadLettered)+1
	})
	after := scrape(t, p.base)
	for series, added := range map[string]float64{
		`jsm_events_appended_total{type="google.protobuf.StringValue"}`:          1,
		`jsm_rpc_requests_total{code="ok",procedure="/test.v1.ThingService/Do"}`: 1,
		`jsm_rpc_duration_seconds_count{procedure="/test.v1.ThingService/Do"}`:   1,
	} {
		if got := value(after, series) - value(before, series); got != added {
			t.Errorf("%s went up by %v, want %v", series, got, added)
		}
	}
	for _, series := range []string{
		`jsm_events_appended_total{type="telemetrytest.v1.ThingOverdue"}`,
		`jsm_deadlines_overdue_total{area="test"}`,
		`jsm_projection_position{projection="things"}`,
	} {
		if value(after, series) < 3 {
			t.Errorf("/metrics: %s is %v, want at least 3", series, value(after, series))
		}
	}
	if !strings.Contains(after, `jsm_projection_lag_events{projection="things"} `) {
		t.Error("/metrics lacks the projection's lag")
	}
}

// value is a series' value in a Prometheus text exposition, 0 when absent.
func value(metrics, series string) float64 {
	for line := range strings.Lines(metrics) {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}

func names(spans map[string][]sdktrace.ReadOnlySpan) []string {
	var out []string
	for n := range spans {
		out = append(out, n)
	}
	return out
}

func scrape(t *testing.T, base string) string {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %v", res.StatusCode, err)
	}
	return string(body)
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
