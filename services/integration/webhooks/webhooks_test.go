package webhooks_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/jsmplatform/jsm/libs/auth"
	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/pgdb"
	"github.com/jsmplatform/jsm/libs/rpc"
	"github.com/jsmplatform/jsm/libs/telemetry"
	"github.com/jsmplatform/jsm/libs/testkit"
	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1/contractsv1connect"
	incidentsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/incidents/v1"
	integrationv1 "github.com/jsmplatform/jsm/proto/gen/jsm/integration/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/integration/v1/integrationv1connect"
	"github.com/jsmplatform/jsm/services/contracts"
	"github.com/jsmplatform/jsm/services/integration/ingest"
	"github.com/jsmplatform/jsm/services/integration/secret"
	"github.com/jsmplatform/jsm/services/integration/webhooks"
)

func TestMain(m *testing.M) { testkit.Main(m) }

var ctx = context.Background()

const (
	customer = "acme"
	provider = "itsec"
	outsider = "evilcorp"

	timelineEntry = "jsm.incidents.v1.TimelineEntryAdded"
	escalated     = "jsm.incidents.v1.IncidentEscalated"
	incidentType  = "incidents.incident"
)

// handler is IntegrationService as the service will mount it: the ingest
// stub and the webhooks half.
type handler struct {
	*ingest.Sources
	*webhooks.Subscriptions
}

// service hosts the webhooks half the way the integration service will.
// stop ends its background work early (a crash or a restart).
type service struct {
	subs *webhooks.Subscriptions
	stop chan struct{}
	done chan struct{}
}

func (s *service) Name() string                      { return "integration" }
func (s *service) Migrate(ctx context.Context) error { return s.subs.Migrate(ctx) }
func (s *service) Run(ctx context.Context) error {
	defer close(s.done)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return s.subs.Run(ctx)
}

func (s *service) Handlers(opts ...connect.HandlerOption) []rpc.Handler {
	path, h := integrationv1connect.NewIntegrationServiceHandler(handler{&ingest.Sources{}, s.subs}, opts...)
	return []rpc.Handler{{Path: path, Service: integrationv1connect.IntegrationServiceName, Handler: h}}
}

func (s *service) Policy() auth.Policy {
	return auth.Policy{
		Procedures: webhooks.Procedures(),
		Roles: map[string][]auth.Permission{
			"org-admin": {webhooks.PermWebhooks, webhooks.PermRead},
			"viewer":    {webhooks.PermRead},
		},
	}
}

// halt stops the service's matcher and worker and waits until they have.
func (s *service) halt() {
	close(s.stop)
	<-s.done
}

type platform struct {
	t     *testing.T
	store *eventstore.Store
	pool  *pgxpool.Pool
	clock *testkit.Clock
	keys  secret.Keys
	svc   *service
	srv   *testkit.Services
}

// start runs contracts and the webhooks half on a real NATS and
// PostgreSQL behind the production interceptors, on the test's clock.
func start(t *testing.T) *platform {
	t.Helper()
	n := testkit.StartNATS(t)
	keys, err := secret.New(bytes.Repeat([]byte{7}, secret.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	p := &platform{t: t, store: n.Store(), pool: testkit.PostgresPool(t), keys: keys,
		clock: testkit.NewClock(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC))}
	c, err := contracts.New(ctx, contracts.Deps{Store: p.store, Pool: p.pool, ReadWait: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	p.svc = &service{subs: p.instance(), stop: make(chan struct{}), done: make(chan struct{})}
	p.srv = testkit.Serve(t, c, p.svc)
	return p
}

// instance builds one more instance on the same stream, database and
// clock: retries wait a minute and more, so they happen when the test
// moves the clock.
func (p *platform) instance() *webhooks.Subscriptions {
	s, err := webhooks.New(ctx, webhooks.Deps{
		Store: p.store, Pool: p.pool, Keys: p.keys, Now: p.clock.Now, AllowPrivateTargets: true, ReadWait: 2 * time.Second,
		Delivery: webhooks.Delivery{PollEvery: 20 * time.Millisecond, RetryBase: time.Minute, RetryMax: time.Hour, MaxAttempts: 4, AttemptTimeout: 5 * time.Second},
	})
	if err != nil {
		p.t.Fatal(err)
	}
	return s
}

// run runs another instance until the test ends.
func (p *platform) run(s *webhooks.Subscriptions) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	p.t.Cleanup(func() { cancel(); <-done })
}

func (p *platform) client(org, role string) integrationv1connect.IntegrationServiceClient {
	return integrationv1connect.NewIntegrationServiceClient(http.DefaultClient, p.srv.URL, p.srv.As(org, role))
}

func must[T any](t *testing.T) func(*connect.Response[T], error) *T { return testkit.Must[T](t) }

// contract drafts a contract between acme and itsec: both are parties from then on.
func (p *platform) contract() string {
	c := contractsv1connect.NewContractServiceClient(http.DefaultClient, p.srv.URL, p.srv.As(customer, "org-admin"))
	return must[contractsv1.DraftContractResponse](p.t)(c.DraftContract(ctx, connect.NewRequest(&contractsv1.DraftContractRequest{
		CustomerOrgId: customer, ProviderOrgId: provider, Title: "Managed SOC",
	}))).ContractId
}

// emit appends an incident event of the contract to the stream, as the
// incidents service would, and returns its position.
func (p *platform) emit(contract, incident, text string) uint64 {
	return p.emitMsg(contract, incident, &incidentsv1.TimelineEntryAdded{IncidentId: incident, EntryId: text, Text: text})
}

func (p *platform) emitMsg(contract, incident string, m proto.Message) uint64 {
	return p.emitTraced(contract, incident, m, "")
}

func (p *platform) emitTraced(contract, incident string, m proto.Message, traceParent string) uint64 {
	p.t.Helper()
	e, err := event.New(event.Envelope{
		ID: event.NewID(), Source: "/jsm/incidents", AggregateType: incidentType, AggregateID: incident,
		Contract: contract, Parties: event.Parties{Customer: customer, Provider: provider},
		Actor: event.Actor{Org: provider, User: "soc"}, Time: p.clock.Now(),
	}, m)
	if err != nil {
		p.t.Fatal(err)
	}
	version, err := p.store.Version(ctx, incidentType, incident)
	if err != nil {
		p.t.Fatal(err)
	}
	// Appended within the trace, as a command's RPC would.
	pos, err := p.store.Append(telemetry.FromTraceParent(ctx, traceParent), version, e)
	if err != nil {
		p.t.Fatal(err)
	}
	return pos
}

func (p *platform) subscribe(org, url string, contracts []string, types ...string) (*integrationv1.RegisterSubscriptionResponse, error) {
	r, err := p.client(org, "org-admin").RegisterSubscription(ctx, connect.NewRequest(&integrationv1.RegisterSubscriptionRequest{
		Url: url, EventTypes: types, ContractIds: contracts, Description: "SIEM",
	}))
	if err != nil {
		return nil, err
	}
	return r.Msg, nil
}

func (p *platform) deliveries(org, sub string) []*integrationv1.Delivery {
	p.t.Helper()
	last, err := p.store.LastPosition(ctx)
	if err != nil {
		p.t.Fatal(err)
	}
	return must[integrationv1.ListDeliveriesResponse](p.t)(p.client(org, "viewer").ListDeliveries(ctx, connect.NewRequest(&integrationv1.ListDeliveriesRequest{SubscriptionId: sub, MinPosition: last}))).Deliveries
}

// recorded waits until every request rc got is recorded as an attempt of
// the subscription: the test clock may move on then without taking a
// lease from an attempt still in flight (which would send it again).
func (p *platform) recorded(org, sub string, rc *receiver) {
	p.t.Helper()
	eventually(p.t, "the attempts recorded", func() bool {
		var attempts uint32
		for _, d := range p.deliveries(org, sub) {
			attempts += d.Attempts
		}
		return int(attempts) == rc.count()
	})
}

// eventually waits (bounded) until ok holds.
func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ---- the receiver -----------------------------------------------------------

type received struct {
	At     time.Time // on the test's clock
	Header http.Header
	Body   []byte
	// From the body.
	Type  string
	Event struct {
		ID          string          `json:"id"`
		Position    uint64          `json:"position"`
		ContractID  string          `json:"contract_id"`
		AggregateID string          `json:"aggregate_id"`
		Body        json.RawMessage `json:"event"`
	}
	Text string // the timeline entry's text
}

// receiver is an org's endpoint. respond decides the status of each
// request; n counts the requests with its webhook-id so far (1 = first).
type receiver struct {
	URL     string
	now     func() time.Time
	mu      sync.Mutex
	got     []received
	seen    map[string]int
	respond func(r received, n int) int
}

func (p *platform) receiver() *receiver {
	t := p.t
	rc := &receiver{now: p.clock.Now, seen: map[string]int{}, respond: func(received, int) int { return http.StatusNoContent }}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var got received
		got.At, got.Header, got.Body = rc.now(), r.Header.Clone(), body
		var payload struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		_ = json.Unmarshal(body, &payload)
		got.Type = payload.Type
		_ = json.Unmarshal(payload.Data, &got.Event)
		var entry struct{ Text string }
		_ = json.Unmarshal(got.Event.Body, &entry)
		got.Text = entry.Text
		rc.mu.Lock()
		rc.got = append(rc.got, got)
		id := r.Header.Get("webhook-id")
		rc.seen[id]++
		n, respond := rc.seen[id], rc.respond
		rc.mu.Unlock()
		code := respond(got, n)
		w.WriteHeader(code)
		if code >= 300 {
			// What an internal endpoint might answer: it must not reach the org.
			_, _ = io.WriteString(w, "internal detail: pg password hunter2")
		}
	}))
	t.Cleanup(srv.Close)
	rc.URL = srv.URL + "/hooks/jsm"
	return rc
}

func (rc *receiver) all() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got)
}

// texts are the texts of the events received, in order of arrival, of
// one incident (all when incident is empty).
func (rc *receiver) texts(incident string) []string {
	var out []string
	for _, r := range rc.all() {
		if incident == "" || r.Event.AggregateID == incident {
			out = append(out, r.Text)
		}
	}
	return out
}

func (rc *receiver) count() int { return len(rc.all()) }

// ---- an independent Standard Webhooks verifier -----------------------------

// verify checks a request against the Standard Webhooks specification
// with this test's own code: the signed content is
// "<webhook-id>.<webhook-timestamp>.<body>", HMAC-SHA256 under the
// base64-decoded secret after "whsec_", sent as space-separated "v1,<base64>"
// signatures; the timestamp (Unix seconds) must be within 5 minutes of now.
func verify(whsec string, h http.Header, body []byte, now time.Time) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(whsec, "whsec_"))
	if err != nil {
		return err
	}
	id, stamp, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || stamp == "" || sigs == "" {
		return errors.New("missing headers")
	}
	secs, err := strconv.ParseInt(stamp, 10, 64)
	if err != nil {
		return fmt.Errorf("timestamp %q: %w", stamp, err)
	}
	if d := now.Sub(time.Unix(secs, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("timestamp %s off by %s", stamp, d)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + stamp + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		version, sig, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no matching signature")
}

// ---- tests ------------------------------------------------------------------

// TestDeliveredSigned: an event of a subscribed type and contract reaches
// the endpoint signed per Standard Webhooks; a tampered body, another
// secret and, after a rotation, the old secret fail the independent check.
func TestDeliveredSigned(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	rc := p.receiver()
	sub, err := p.subscribe(customer, rc.URL, []string{contractID}, timelineEntry)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sub.Secret, "whsec_") || sub.Subscription.Status != integrationv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ENABLED || sub.Subscription.SecretVersion != 1 {
		t.Fatalf("registered %v", sub)
	}
	p.emitMsg(contractID, "inc-1", &incidentsv1.IncidentEscalated{IncidentId: "inc-1", Level: 2}) // not a subscribed type
	pos := p.emit(contractID, "inc-1", "first")
	eventually(t, "the delivery", func() bool { return rc.count() == 1 })

	got := rc.all()[0]
	if err := verify(sub.Secret, got.Header, got.Body, got.At); err != nil {
		t.Fatalf("signature: %v", err)
	}
	tampered := bytes.Replace(got.Body, []byte("first"), []byte("fir5t"), 1)
	if err := verify(sub.Secret, got.Header, tampered, got.At); err == nil {
		t.Fatal("a tampered body verified")
	}
	other := p.keys.Derive(secret.ForSubscription, "another", 1)
	if err := verify(other, got.Header, got.Body, got.At); err == nil {
		t.Fatal("another secret verified")
	}
	if got.Type != timelineEntry || got.Event.Position != pos || got.Event.ContractID != contractID || got.Event.AggregateID != "inc-1" || got.Text != "first" {
		t.Fatalf("payload %s", got.Body)
	}
	if got.Header.Get("Content-Type") != "application/json" {
		t.Errorf("content type %q", got.Header.Get("Content-Type"))
	}

	ds := p.deliveries(customer, sub.Subscription.SubscriptionId)
	eventually(t, "the delivery to be recorded", func() bool {
		ds = p.deliveries(customer, sub.Subscription.SubscriptionId)
		return len(ds) == 1 && ds[0].Status == integrationv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED
	})
	if d := ds[0]; d.DeliveryId != got.Header.Get("webhook-id") || d.Attempts != 1 || d.LastStatusCode != http.StatusNoContent || d.Position != pos || d.EventType != timelineEntry || d.DeliveredAt == nil {
		t.Fatalf("delivery %v", d)
	}

	// After a rotation deliveries carry signatures of the new secret and,
	// for a day, of the old one too; then of the new one only.
	rot := must[integrationv1.RotateSubscriptionSecretResponse](t)(p.client(customer, "org-admin").RotateSubscriptionSecret(ctx, connect.NewRequest(&integrationv1.RotateSubscriptionSecretRequest{SubscriptionId: sub.Subscription.SubscriptionId})))
	if rot.SecretVersion != 2 || rot.Secret == sub.Secret {
		t.Fatalf("rotated %v", rot)
	}
	must[integrationv1.ListSubscriptionsResponse](t)(p.client(customer, "viewer").ListSubscriptions(ctx, connect.NewRequest(&integrationv1.ListSubscriptionsRequest{MinPosition: rot.Position})))
	p.emit(contractID, "inc-1", "second")
	eventually(t, "the second delivery", func() bool { return rc.count() == 2 })
	second := rc.all()[1]
	for _, whsec := range []string{rot.Secret, sub.Secret} {
		if err := verify(whsec, second.Header, second.Body, second.At); err != nil {
			t.Fatalf("signature in the rotation's grace period: %v", err)
		}
	}
	p.recorded(customer, sub.Subscription.SubscriptionId, rc)
	p.clock.Advance(25 * time.Hour)
	p.emit(contractID, "inc-1", "third")
	eventually(t, "the third delivery", func() bool { return rc.count() == 3 })
	third := rc.all()[2]
	if err := verify(rot.Secret, third.Header, third.Body, third.At); err != nil {
		t.Fatalf("signature after the grace period: %v", err)
	}
	if err := verify(sub.Secret, third.Header, third.Body, third.At); err == nil {
		t.Fatal("the old secret verified after the grace period")
	}
}

// TestRotationWithoutGrace: a rotation with a grace of 0 (a leaked secret)
// signs the next delivery with the new secret only; a replayed request_id
// shows no secret.
func TestRotationWithoutGrace(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	rc := p.receiver()
	sub, err := p.subscribe(customer, rc.URL, []string{contractID}, timelineEntry)
	if err != nil {
		t.Fatal(err)
	}
	admin := p.client(customer, "org-admin")
	req := &integrationv1.RotateSubscriptionSecretRequest{SubscriptionId: sub.Subscription.SubscriptionId, RequestId: "rot-1", PreviousSecretGrace: durationpb.New(0)}
	rot := must[integrationv1.RotateSubscriptionSecretResponse](t)(admin.RotateSubscriptionSecret(ctx, connect.NewRequest(req)))
	if rot.SecretVersion != 2 || !strings.HasPrefix(rot.Secret, "whsec_") {
		t.Fatalf("rotated %v", rot)
	}
	if again := must[integrationv1.RotateSubscriptionSecretResponse](t)(admin.RotateSubscriptionSecret(ctx, connect.NewRequest(req))); again.Secret != "" {
		t.Fatal("a replayed rotation showed the secret again")
	}
	must[integrationv1.ListSubscriptionsResponse](t)(p.client(customer, "viewer").ListSubscriptions(ctx, connect.NewRequest(&integrationv1.ListSubscriptionsRequest{MinPosition: rot.Position})))
	p.emit(contractID, "inc-1", "after")
	eventually(t, "the delivery", func() bool { return rc.count() == 1 })
	got := rc.all()[0]
	if err := verify(rot.Secret, got.Header, got.Body, got.At); err != nil {
		t.Fatalf("the new secret: %v", err)
	}
	if err := verify(sub.Secret, got.Header, got.Body, got.At); err == nil {
		t.Fatal("the revoked secret still signs deliveries")
	}
	_, err = admin.RotateSubscriptionSecret(ctx, connect.NewRequest(&integrationv1.RotateSubscriptionSecretRequest{SubscriptionId: sub.Subscription.SubscriptionId, PreviousSecretGrace: durationpb.New(-time.Second)}))
	if connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("a negative grace: %v, want invalid_argument", err)
	}
}

// TestRetriedUntilDelivered: a receiver failing twice gets the event on the
// third attempt, after backoff; every attempt is logged.
func TestRetriedUntilDelivered(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	rc := p.receiver()
	rc.respond = func(_ received, n int) int {
		if n <= 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	}
	sub, err := p.subscribe(customer, rc.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := sub.Subscription.SubscriptionId
	p.emit(contractID, "inc-1", "retry me")
	delivery := func() *integrationv1.Delivery {
		ds := p.deliveries(customer, id)
		if len(ds) != 1 {
			return nil
		}
		return ds[0]
	}
	for attempt := uint32(1); attempt <= 2; attempt++ {
		eventually(t, fmt.Sprintf("attempt %d", attempt), func() bool { d := delivery(); return d != nil && d.Attempts == attempt })
		d := delivery()
		if d.Status != integrationv1.DeliveryStatus_DELIVERY_STATUS_PENDING || d.LastStatusCode != http.StatusServiceUnavailable ||
			d.LastError != "503 Service Unavailable" || !d.NextAttemptAt.AsTime().After(p.clock.Now()) {
			t.Fatalf("after attempt %d: %v", attempt, d)
		}
		// Nothing is sent again before the backoff has passed.
		time.Sleep(100 * time.Millisecond)
		if rc.count() != int(attempt) {
			t.Fatalf("%d requests before the backoff passed, want %d", rc.count(), attempt)
		}
		p.clock.Advance(time.Hour)
	}
	eventually(t, "the delivery", func() bool {
		d := delivery()
		return d != nil && d.Status == integrationv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED
	})
	d := delivery()
	if d.Attempts != 3 || d.LastStatusCode != http.StatusOK || d.LastError != "" {
		t.Fatalf("delivered %v", d)
	}
	ids := map[string]bool{}
	for _, r := range rc.all() {
		ids[r.Header.Get("webhook-id")] = true
		if err := verify(sub.Secret, r.Header, r.Body, r.At); err != nil {
			t.Errorf("attempt signature: %v", err)
		}
	}
	if len(ids) != 1 || !ids[d.DeliveryId] {
		t.Fatalf("webhook-ids %v, want only %s", ids, d.DeliveryId)
	}
	rows, err := p.pool.Query(ctx, `SELECT attempt, status_code, error FROM webhooks.attempts WHERE delivery_id = $1 ORDER BY attempt`, d.DeliveryId)
	if err != nil {
		t.Fatal(err)
	}
	var log []string
	for rows.Next() {
		var n, code int
		var msg string
		if err := rows.Scan(&n, &code, &msg); err != nil {
			t.Fatal(err)
		}
		log = append(log, fmt.Sprintf("%d:%d:%t", n, code, msg != ""))
	}
	if want := []string{"1:503:true", "2:503:true", "3:200:false"}; !slices.Equal(log, want) {
		t.Fatalf("attempt log %v, want %v", log, want)
	}
}

// TestGivesUpAfterMaxAttempts: a delivery fails for good after the bound,
// and the next event of its aggregate goes on.
func TestGivesUpAfterMaxAttempts(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	rc := p.receiver()
	rc.respond = func(r received, _ int) int {
		if r.Text == "doomed" {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	}
	sub, err := p.subscribe(customer, rc.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.emit(contractID, "inc-1", "doomed")
	p.emit(contractID, "inc-1", "next")
	for n := 1; n < 4; n++ {
		eventually(t, fmt.Sprintf("attempt %d", n), func() bool { return rc.count() == n })
		p.recorded(customer, sub.Subscription.SubscriptionId, rc)
		p.clock.Advance(time.Hour)
	}
	eventually(t, "the next event", func() bool {
		return slices.Equal(rc.texts(""), []string{"doomed", "doomed", "doomed", "doomed", "next"})
	})
	ds := p.deliveries(customer, sub.Subscription.SubscriptionId)
	if ds[0].Status != integrationv1.DeliveryStatus_DELIVERY_STATUS_FAILED || ds[0].Attempts != 4 {
		t.Fatalf("doomed delivery %v", ds[0])
	}
}

// TestOrderedPerAggregate: while the first event of one incident is being
// retried, its later events wait and other incidents' events flow.
func TestOrderedPerAggregate(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	rc := p.receiver()
	rc.respond = func(r received, n int) int {
		if r.Text == "a1" && n == 1 {
			return http.StatusBadGateway
		}
		return http.StatusOK
	}
	sub, err := p.subscribe(customer, rc.URL, []string{contractID}, timelineEntry)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range [][2]string{{"inc-a", "a1"}, {"inc-b", "b1"}, {"inc-a", "a2"}, {"inc-b", "b2"}, {"inc-a", "a3"}, {"inc-c", "c1"}} {
		p.emit(contractID, e[0], e[1])
	}
	eventually(t, "the other incidents", func() bool { return len(rc.texts("inc-b")) == 2 && len(rc.texts("inc-c")) == 1 })
	time.Sleep(100 * time.Millisecond)
	if got := rc.texts("inc-a"); !slices.Equal(got, []string{"a1"}) {
		t.Fatalf("incident a while its first event waits for a retry: %v", got)
	}
	p.recorded(customer, sub.Subscription.SubscriptionId, rc)
	p.clock.Advance(time.Hour)
	eventually(t, "incident a", func() bool { return len(rc.texts("inc-a")) == 4 })
	if got := rc.texts("inc-a"); !slices.Equal(got, []string{"a1", "a1", "a2", "a3"}) {
		t.Fatalf("incident a received %v", got)
	}
	if got := rc.texts("inc-b"); !slices.Equal(got, []string{"b1", "b2"}) {
		t.Fatalf("incident b received %v", got)
	}
}

// TestOnlyPartiesReceive: an org's subscription to every contract receives
// only events of contracts it is a party to, and may not name others'.
func TestOnlyPartiesReceive(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	mine, theirs := p.receiver(), p.receiver()
	if _, err := p.subscribe(provider, mine.URL, nil); err != nil {
		t.Fatal(err)
	}
	evil, err := p.subscribe(outsider, theirs.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.subscribe(outsider, theirs.URL, []string{contractID})
	testkit.Code(t, connect.CodeNotFound, err)
	_, err = p.subscribe(outsider, theirs.URL, []string{"0196a3c0-0000-7000-8000-000000000000"})
	testkit.Code(t, connect.CodeNotFound, err)

	p.emit(contractID, "inc-1", "for the parties")
	eventually(t, "the party's delivery", func() bool { return mine.count() == 1 })
	time.Sleep(100 * time.Millisecond)
	if theirs.count() != 0 {
		t.Fatalf("the outsider received %d events", theirs.count())
	}
	if ds := p.deliveries(outsider, evil.Subscription.SubscriptionId); len(ds) != 0 {
		t.Fatalf("outsider deliveries %v", ds)
	}
}

// TestScopedToOwner: only the owning org sees and changes a subscription
// and its deliveries; bad input is refused and changes nothing.
func TestScopedToOwner(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	rc := p.receiver()
	sub, err := p.subscribe(customer, rc.URL, []string{contractID})
	if err != nil {
		t.Fatal(err)
	}
	id := sub.Subscription.SubscriptionId
	p.emit(contractID, "inc-1", "one")
	eventually(t, "the delivery", func() bool { return rc.count() == 1 })
	delivery := rc.all()[0].Header.Get("webhook-id")

	out, admin := p.client(provider, "org-admin"), p.client(customer, "org-admin")
	unknown := "0196a3c0-0000-7000-8000-000000000001"
	for name, err := range map[string]error{
		"rotate another org's": func() error {
			_, err := out.RotateSubscriptionSecret(ctx, connect.NewRequest(&integrationv1.RotateSubscriptionSecretRequest{SubscriptionId: id}))
			return err
		}(),
		"disable another org's": func() error {
			_, err := out.DisableSubscription(ctx, connect.NewRequest(&integrationv1.DisableSubscriptionRequest{SubscriptionId: id}))
			return err
		}(),
		"enable another org's": func() error {
			_, err := out.EnableSubscription(ctx, connect.NewRequest(&integrationv1.EnableSubscriptionRequest{SubscriptionId: id}))
			return err
		}(),
		"list another org's deliveries": func() error {
			_, err := out.ListDeliveries(ctx, connect.NewRequest(&integrationv1.ListDeliveriesRequest{SubscriptionId: id}))
			return err
		}(),
		"redeliver another org's": func() error {
			_, err := out.RedeliverDelivery(ctx, connect.NewRequest(&integrationv1.RedeliverDeliveryRequest{SubscriptionId: id, DeliveryId: delivery}))
			return err
		}(),
		"replay another org's": func() error {
			_, err := out.ReplayDeliveries(ctx, connect.NewRequest(&integrationv1.ReplayDeliveriesRequest{SubscriptionId: id, FromPosition: 1}))
			return err
		}(),
		"rotate unknown": func() error {
			_, err := admin.RotateSubscriptionSecret(ctx, connect.NewRequest(&integrationv1.RotateSubscriptionSecretRequest{SubscriptionId: unknown}))
			return err
		}(),
		"redeliver unknown": func() error {
			_, err := admin.RedeliverDelivery(ctx, connect.NewRequest(&integrationv1.RedeliverDeliveryRequest{SubscriptionId: id, DeliveryId: "msg_nope"}))
			return err
		}(),
	} {
		if connect.CodeOf(err) != connect.CodeNotFound {
			t.Errorf("%s: %v, want not found", name, err)
		}
	}
	for name, tc := range map[string]struct {
		url  string
		code connect.Code
	}{
		"not a URL":  {"hooks", connect.CodeInvalidArgument},
		"ftp":        {"ftp://hooks.example.com/x", connect.CodeInvalidArgument},
		"with creds": {"https://user:pw@hooks.example.com/x", connect.CodeInvalidArgument},
	} {
		_, err := p.subscribe(customer, tc.url, nil)
		if connect.CodeOf(err) != tc.code {
			t.Errorf("%s: %v, want %v", name, err, tc.code)
		}
	}
	_, err = p.client(customer, "viewer").RegisterSubscription(ctx, connect.NewRequest(&integrationv1.RegisterSubscriptionRequest{Url: rc.URL}))
	testkit.Code(t, connect.CodePermissionDenied, err)
	_, err = admin.RotateSubscriptionSecret(ctx, connect.NewRequest(&integrationv1.RotateSubscriptionSecretRequest{SubscriptionId: "not-a-uuid"}))
	testkit.Code(t, connect.CodeInvalidArgument, err)

	// Nothing changed: one registration, the same subscription, only acme sees it.
	if n := testkit.CountEvents(t, p.store, webhooks.AggregateType, id, "jsm.integration.v1.SubscriptionRegistered"); n != 1 {
		t.Fatalf("%d registrations", n)
	}
	if n, _ := p.store.Version(ctx, webhooks.AggregateType, id); n != sub.Position {
		t.Fatalf("subscription changed: version %d, registered at %d", n, sub.Position)
	}
	subs := must[integrationv1.ListSubscriptionsResponse](t)(p.client(customer, "viewer").ListSubscriptions(ctx, connect.NewRequest(&integrationv1.ListSubscriptionsRequest{})))
	if len(subs.Subscriptions) != 1 || subs.Subscriptions[0].SubscriptionId != id || subs.Subscriptions[0].SecretVersion != 1 || subs.Subscriptions[0].Status != integrationv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ENABLED {
		t.Fatalf("acme's subscriptions %v", subs.Subscriptions)
	}
	others := must[integrationv1.ListSubscriptionsResponse](t)(p.client(provider, "viewer").ListSubscriptions(ctx, connect.NewRequest(&integrationv1.ListSubscriptionsRequest{})))
	if len(others.Subscriptions) != 0 {
		t.Fatalf("itsec sees %v", others.Subscriptions)
	}
	if rc.count() != 1 {
		t.Fatalf("%d requests, want 1", rc.count())
	}

	// Row-level security backs the queries up: read without any filter,
	// an org sees only its own rows.
	eventually(t, "the attempt to be recorded", func() bool {
		ds := p.deliveries(customer, id)
		return len(ds) == 1 && ds[0].Status == integrationv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED
	})
	for _, table := range []string{"webhooks.subscriptions", "webhooks.deliveries", "webhooks.attempts"} {
		for org, want := range map[string]int{customer: 1, provider: 0, outsider: 0} {
			n := 0
			err := pgdb.ReadAs(ctx, p.pool, webhooks.Schema, org, `SELECT count(*) FROM `+table, nil, func(rows pgx.Rows) error {
				for rows.Next() {
					if err := rows.Scan(&n); err != nil {
						return err
					}
				}
				return rows.Err()
			})
			if err != nil {
				t.Fatal(err)
			}
			if n != want {
				t.Errorf("%s sees %d rows of %s, want %d", org, n, table, want)
			}
		}
	}
}

// TestIdempotentCommands: a retried register answers with the same
// subscription, without its secret (shown once); disabling or enabling
// twice appends once.
func TestIdempotentCommands(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	admin := p.client(customer, "org-admin")
	req := &integrationv1.RegisterSubscriptionRequest{Url: "https://hooks.example.com/jsm", ContractIds: []string{contractID}, RequestId: "reg-1"}
	first := must[integrationv1.RegisterSubscriptionResponse](t)(admin.RegisterSubscription(ctx, connect.NewRequest(req)))
	again := must[integrationv1.RegisterSubscriptionResponse](t)(admin.RegisterSubscription(ctx, connect.NewRequest(req)))
	id := first.Subscription.SubscriptionId
	if again.Subscription.SubscriptionId != id || !strings.HasPrefix(first.Secret, "whsec_") || again.Secret != "" || again.Position != first.Position {
		t.Fatalf("retried register: %v, first %v", again, first)
	}
	for range 2 {
		must[integrationv1.DisableSubscriptionResponse](t)(admin.DisableSubscription(ctx, connect.NewRequest(&integrationv1.DisableSubscriptionRequest{SubscriptionId: id, Reason: "maintenance"})))
	}
	for range 2 {
		must[integrationv1.EnableSubscriptionResponse](t)(admin.EnableSubscription(ctx, connect.NewRequest(&integrationv1.EnableSubscriptionRequest{SubscriptionId: id})))
	}
	for typ, want := range map[string]int{"SubscriptionRegistered": 1, "SubscriptionDisabled": 1, "SubscriptionEnabled": 1} {
		if n := testkit.CountEvents(t, p.store, webhooks.AggregateType, id, "jsm.integration.v1."+typ); n != want {
			t.Errorf("%d %s, want %d", n, typ, want)
		}
	}
}

// TestRedeliverAndReplay: a redelivery and a replay send again with the
// same webhook-id; a replay also delivers events that arrived while the
// subscription was disabled, and a retried replay queues nothing more.
func TestRedeliverAndReplay(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	rc := p.receiver()
	sub, err := p.subscribe(customer, rc.URL, []string{contractID}, timelineEntry)
	if err != nil {
		t.Fatal(err)
	}
	id, admin := sub.Subscription.SubscriptionId, p.client(customer, "org-admin")
	p.emit(contractID, "inc-1", "e1")
	second := p.emit(contractID, "inc-1", "e2")
	p.emit(contractID, "inc-2", "e3")
	eventually(t, "three deliveries", func() bool { return rc.count() == 3 })
	idOf := map[string]string{}
	for _, r := range rc.all() {
		idOf[r.Text] = r.Header.Get("webhook-id")
	}

	// Redeliver e1.
	re := must[integrationv1.RedeliverDeliveryResponse](t)(admin.RedeliverDelivery(ctx, connect.NewRequest(&integrationv1.RedeliverDeliveryRequest{SubscriptionId: id, DeliveryId: idOf["e1"]})))
	if re.Delivery.DeliveryId != idOf["e1"] || re.Delivery.Status != integrationv1.DeliveryStatus_DELIVERY_STATUS_PENDING {
		t.Fatalf("redelivery %v", re.Delivery)
	}
	eventually(t, "the redelivery", func() bool { return rc.count() == 4 })
	if r := rc.all()[3]; r.Text != "e1" || r.Header.Get("webhook-id") != idOf["e1"] {
		t.Fatalf("redelivered %s with id %s", r.Text, r.Header.Get("webhook-id"))
	}

	// e4 arrives while the subscription is disabled: no delivery.
	dis := must[integrationv1.DisableSubscriptionResponse](t)(admin.DisableSubscription(ctx, connect.NewRequest(&integrationv1.DisableSubscriptionRequest{SubscriptionId: id})))
	must[integrationv1.ListSubscriptionsResponse](t)(admin.ListSubscriptions(ctx, connect.NewRequest(&integrationv1.ListSubscriptionsRequest{MinPosition: dis.Position})))
	e4 := p.emit(contractID, "inc-1", "e4")
	en := must[integrationv1.EnableSubscriptionResponse](t)(admin.EnableSubscription(ctx, connect.NewRequest(&integrationv1.EnableSubscriptionRequest{SubscriptionId: id})))
	if ds := must[integrationv1.ListDeliveriesResponse](t)(admin.ListDeliveries(ctx, connect.NewRequest(&integrationv1.ListDeliveriesRequest{SubscriptionId: id, MinPosition: en.Position}))).Deliveries; len(ds) != 3 {
		t.Fatalf("%d deliveries after the disabled period, want 3", len(ds))
	}

	// Replay from e2: e2, e3 again and e4 for the first time, e2 before e4.
	replay := &integrationv1.ReplayDeliveriesRequest{SubscriptionId: id, FromPosition: second, RequestId: "replay-1"}
	got := must[integrationv1.ReplayDeliveriesResponse](t)(admin.ReplayDeliveries(ctx, connect.NewRequest(replay)))
	if got.Queued != 3 {
		t.Fatalf("queued %d, want 3", got.Queued)
	}
	eventually(t, "the replay", func() bool { return rc.count() == 7 })
	replayed := rc.all()[4:]
	for _, r := range replayed {
		if want, ok := idOf[r.Text]; ok && r.Header.Get("webhook-id") != want {
			t.Errorf("replayed %s with id %s, first sent as %s", r.Text, r.Header.Get("webhook-id"), want)
		}
		if err := verify(sub.Secret, r.Header, r.Body, r.At); err != nil {
			t.Errorf("replayed %s: %v", r.Text, err)
		}
	}
	if got := rc.texts("inc-1")[3:]; !slices.Equal(got, []string{"e2", "e4"}) {
		t.Fatalf("incident 1 replayed as %v", got)
	}
	if r := replayed[len(replayed)-1]; r.Text == "e4" && r.Event.Position != e4 {
		t.Fatalf("e4 at %d, want %d", r.Event.Position, e4)
	}
	again := must[integrationv1.ReplayDeliveriesResponse](t)(admin.ReplayDeliveries(ctx, connect.NewRequest(replay)))
	if again.Queued != 3 {
		t.Fatalf("retried replay answered %d", again.Queued)
	}
	time.Sleep(100 * time.Millisecond)
	if rc.count() != 7 {
		t.Fatalf("a retried replay sent again: %d requests", rc.count())
	}
	ds := p.deliveries(customer, id)
	if len(ds) != 4 {
		t.Fatalf("%d deliveries, want 4", len(ds))
	}
	// from_position filters the log.
	from := must[integrationv1.ListDeliveriesResponse](t)(admin.ListDeliveries(ctx, connect.NewRequest(&integrationv1.ListDeliveriesRequest{SubscriptionId: id, FromPosition: e4})))
	if len(from.Deliveries) != 1 || from.Deliveries[0].Position != e4 {
		t.Fatalf("deliveries from %d: %v", e4, from.Deliveries)
	}
}

// TestRestartResumes: an instance that stops and another that starts on
// the same database resume where the first left off, sending delivered
// events never again; two instances running together send each delivery
// once.
func TestRestartResumes(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	rc := p.receiver()
	sub, err := p.subscribe(customer, rc.URL, []string{contractID})
	if err != nil {
		t.Fatal(err)
	}
	p.emit(contractID, "inc-1", "before-1")
	p.emit(contractID, "inc-2", "before-2")
	eventually(t, "the first deliveries", func() bool { return rc.count() == 2 })
	p.svc.halt()

	for i := range 10 {
		p.emit(contractID, fmt.Sprintf("inc-%d", i%3), fmt.Sprintf("after-%d", i))
	}
	time.Sleep(100 * time.Millisecond)
	if rc.count() != 2 {
		t.Fatalf("%d requests while stopped", rc.count())
	}
	// Two new instances at once.
	p.run(p.instance())
	p.run(p.instance())
	eventually(t, "the rest", func() bool { return rc.count() >= 12 })
	time.Sleep(200 * time.Millisecond)
	seen := map[string]int{}
	for _, r := range rc.all() {
		seen[r.Header.Get("webhook-id")]++
	}
	if len(seen) != 12 || rc.count() != 12 {
		t.Fatalf("%d requests for %d deliveries, want 12 each", rc.count(), len(seen))
	}
	// The log pages in stream order.
	var paged []uint64
	token := ""
	for page := 0; ; page++ {
		r := must[integrationv1.ListDeliveriesResponse](t)(p.client(customer, "viewer").ListDeliveries(ctx, connect.NewRequest(&integrationv1.ListDeliveriesRequest{
			SubscriptionId: sub.Subscription.SubscriptionId, PageSize: 5, PageToken: token,
		})))
		for _, d := range r.Deliveries {
			paged = append(paged, d.Position)
		}
		if token = r.NextPageToken; token == "" || page > 5 {
			break
		}
	}
	if len(paged) != 12 || !slices.IsSorted(paged) {
		t.Fatalf("paged positions %v", paged)
	}
	_, err = p.client(customer, "viewer").ListDeliveries(ctx, connect.NewRequest(&integrationv1.ListDeliveriesRequest{SubscriptionId: sub.Subscription.SubscriptionId, PageToken: "bogus"}))
	testkit.Code(t, connect.CodeInvalidArgument, err)
	for i := range 3 {
		var want []string
		for j := i; j < 10; j += 3 {
			want = append(want, fmt.Sprintf("after-%d", j))
		}
		got := rc.texts(fmt.Sprintf("inc-%d", i))
		if i > 0 {
			got = got[1:] // before-1, before-2
		}
		if !slices.Equal(got, want) {
			t.Errorf("incident %d received %v, want %v", i, got, want)
		}
	}
}

// TestLeaseKeepsInstancesApart: while one instance is sending a delivery,
// another does not send it too; if the first never reports back (it
// died), the delivery is sent again once its lease has expired.
func TestLeaseKeepsInstancesApart(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	rc := p.receiver()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	rc.respond = func(r received, n int) int {
		if r.Text == "slow" && n == 1 {
			<-release // the first instance hangs here, holding the lease
		}
		return http.StatusOK
	}
	if _, err := p.subscribe(customer, rc.URL, nil); err != nil {
		t.Fatal(err)
	}
	p.emit(contractID, "inc-1", "slow")
	eventually(t, "the first attempt", func() bool { return rc.count() == 1 })
	p.run(p.instance())
	p.emit(contractID, "inc-2", "other")
	eventually(t, "the other incident", func() bool { return len(rc.texts("inc-2")) == 1 })
	time.Sleep(100 * time.Millisecond)
	if got := rc.texts("inc-1"); len(got) != 1 {
		t.Fatalf("sent %d times while leased", len(got))
	}
	// The lease outlives the attempt timeout (5s) by 30s.
	p.clock.Advance(time.Minute)
	eventually(t, "the delivery after the lease expired", func() bool { return len(rc.texts("inc-1")) == 2 })
	all := rc.all()
	var ids []string
	for _, r := range all {
		if r.Text == "slow" {
			ids = append(ids, r.Header.Get("webhook-id"))
		}
	}
	if len(ids) != 2 || ids[0] != ids[1] {
		t.Fatalf("webhook-ids %v, want the same twice", ids)
	}
}

// TestDeliveryContinuesTheEventsTrace: each attempt is a span of the
// delivered event's trace, and the receiver gets its traceparent.
func TestDeliveryContinuesTheEventsTrace(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()); otel.SetTracerProvider(noop.NewTracerProvider()) })

	p := start(t)
	contractID := p.contract()
	rc := p.receiver()
	if _, err := p.subscribe(customer, rc.URL, []string{contractID}, timelineEntry); err != nil {
		t.Fatal(err)
	}
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	p.emitTraced(contractID, "inc-1", &incidentsv1.TimelineEntryAdded{IncidentId: "inc-1", EntryId: "e1", Text: "traced"}, "00-"+traceID+"-00f067aa0ba902b7-01")
	eventually(t, "the delivery", func() bool { return rc.count() == 1 })
	byName := func(name string) *tracetest.SpanStub {
		for _, s := range spans.GetSpans() {
			if s.Name == name {
				return &s
			}
		}
		return nil
	}
	eventually(t, "the delivery span", func() bool { return byName("webhook deliver") != nil })
	deliver, appendSpan := byName("webhook deliver"), byName("append "+incidentType)
	if appendSpan == nil || deliver.SpanContext.TraceID().String() != traceID || deliver.Parent.SpanID() != appendSpan.SpanContext.SpanID() {
		t.Fatalf("delivery span in trace %s under %s, want trace %s under the append", deliver.SpanContext.TraceID(), deliver.Parent.SpanID(), traceID)
	}
	if got, want := rc.all()[0].Header.Get("traceparent"), "00-"+traceID+"-"+deliver.SpanContext.SpanID().String()+"-01"; got != want {
		t.Fatalf("receiver got traceparent %q, want %q", got, want)
	}
}
