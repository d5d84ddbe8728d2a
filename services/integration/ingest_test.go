package integration_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	cejs "github.com/cloudevents/sdk-go/protocol/nats_jetstream/v2"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/natsauth"
	"github.com/jsmplatform/jsm/libs/svcmain"
	"github.com/jsmplatform/jsm/libs/telemetry"
	"github.com/jsmplatform/jsm/libs/testkit"
	changeadvisoryv1 "github.com/jsmplatform/jsm/proto/gen/jsm/changeadvisory/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/changeadvisory/v1/changeadvisoryv1connect"
	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1/contractsv1connect"
	incidentsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/incidents/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/incidents/v1/incidentsv1connect"
	integrationv1 "github.com/jsmplatform/jsm/proto/gen/jsm/integration/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/integration/v1/integrationv1connect"
	patchingv1 "github.com/jsmplatform/jsm/proto/gen/jsm/patching/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/patching/v1/patchingv1connect"
	"github.com/jsmplatform/jsm/services/changeadvisory"
	"github.com/jsmplatform/jsm/services/contracts"
	"github.com/jsmplatform/jsm/services/incidents"
	"github.com/jsmplatform/jsm/services/integration"
	"github.com/jsmplatform/jsm/services/integration/ingest"
	"github.com/jsmplatform/jsm/services/integration/secret"
	"github.com/jsmplatform/jsm/services/patching"
)

func TestMain(m *testing.M) { testkit.Main(m) }

var ctx = context.Background()

const (
	customer = "acme"
	provider = "itsec"
	outsider = "evilcorp"
)

// platform runs contracts, incidents, patching, change advisory and
// integration on a real NATS and PostgreSQL behind the production
// interceptors; ingest calls the same host as its sources.
type platform struct {
	t     *testing.T
	nats  *testkit.NATS
	store *eventstore.Store
	srv   *testkit.Services
	keys  secret.Keys
	// url is where ingest sends commands; a test may point it elsewhere.
	url    atomic.Pointer[string]
	served atomic.Pointer[testkit.Services]
	deps   integration.Deps
	svc    *stoppable
	pool   *pgxpool.Pool
}

func start(t *testing.T, limits ingest.Limits) *platform {
	t.Helper()
	return startOn(t, testkit.StartNATS(t), limits)
}

// startOn is start on n; on a server with natsauth's users each service
// connects as its own user, and integration answers the auth callout.
func startOn(t *testing.T, n *testkit.NATS, limits ingest.Limits) *platform {
	t.Helper()
	p := &platform{t: t, nats: n, store: n.Store()}
	storeOf := func(user string) *eventstore.Store {
		if n.Auth == nil {
			return p.store
		}
		return n.StoreAs(user)
	}
	pool := testkit.PostgresPool(t)
	p.pool = pool
	keys, err := secret.New(bytes.Repeat([]byte{9}, secret.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	p.keys = keys
	deps := func(user string) svcmain.Deps {
		return svcmain.Deps{Store: storeOf(user), Pool: pool, ReadWait: 3 * time.Second, SchedulerEvery: -1}
	}
	c, err := contracts.New(ctx, contracts.Deps{Store: storeOf("contracts"), Pool: pool, ReadWait: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	inc, err := incidents.New(ctx, deps("incidents"))
	if err != nil {
		t.Fatal(err)
	}
	pa, err := patching.New(ctx, deps("patching"))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := changeadvisory.New(ctx, deps("changeadvisory"))
	if err != nil {
		t.Fatal(err)
	}
	p.deps = integration.Deps{
		Deps: deps("integration"), Keys: keys, Limits: limits, AllowPrivateTargets: true,
		Platform: func() ingest.Platform {
			u := ""
			if s := p.url.Load(); s != nil {
				u = *s
			}
			pl := ingest.Platform{Incidents: u, Patching: u, Changes: u}
			if s := p.served.Load(); s != nil {
				pl.Token = s.Mint
			}
			return pl
		},
	}
	if n.Auth != nil {
		issuer, err := n.Auth.Issuer()
		if err != nil {
			t.Fatal(err)
		}
		p.deps.NATSAuth = &ingest.NATSAuth{Issuer: issuer, System: n.ConnAs(natsauth.SystemUser)}
	}
	in, err := integration.New(ctx, p.deps)
	if err != nil {
		t.Fatal(err)
	}
	p.svc = &stoppable{Service: in, stop: make(chan struct{}), done: make(chan struct{})}
	p.srv = testkit.Serve(t, c, inc, pa, ca, p.svc)
	p.served.Store(p.srv)
	p.url.Store(&p.srv.URL)
	return p
}

// stoppable is the integration service with its background work stopped
// early (a crash or a restart) by halt.
type stoppable struct {
	*integration.Service
	stop, done chan struct{}
}

func (s *stoppable) Run(ctx context.Context) error {
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
	return s.Service.Run(ctx)
}

func (s *stoppable) halt() {
	close(s.stop)
	<-s.done
}

// restart runs another instance of the integration service's background
// work on the same stream and database, until the test ends.
func (p *platform) restart() {
	p.t.Helper()
	in, err := integration.New(ctx, p.deps)
	if err != nil {
		p.t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = in.Run(runCtx) }()
	p.t.Cleanup(func() { cancel(); <-done })
}

func must[T any](t *testing.T) func(*connect.Response[T], error) *T { return testkit.Must[T](t) }

func (p *platform) integration(org string) integrationv1connect.IntegrationServiceClient {
	return integrationv1connect.NewIntegrationServiceClient(http.DefaultClient, p.srv.URL, p.srv.As(org, "org-admin"))
}

func (p *platform) incidents(org string) incidentsv1connect.IncidentServiceClient {
	return incidentsv1connect.NewIncidentServiceClient(http.DefaultClient, p.srv.URL, p.srv.As(org, "org-admin"))
}

// contract is an active contract of acme and itsec with a notification
// deadline and a patch deadline for every severity.
func (p *platform) contract() string {
	t := p.t
	t.Helper()
	c := contractsv1connect.NewContractServiceClient(http.DefaultClient, p.srv.URL, p.srv.As(customer, "org-admin"))
	pr := contractsv1connect.NewContractServiceClient(http.DefaultClient, p.srv.URL, p.srv.As(provider, "org-admin"))
	d := must[contractsv1.DraftContractResponse](t)(c.DraftContract(ctx, connect.NewRequest(&contractsv1.DraftContractRequest{
		CustomerOrgId: customer, ProviderOrgId: provider, Title: "Managed SOC",
	})))
	var notify, patch []*contractsv1.SeverityDeadline
	for _, sev := range []commonv1.Severity{commonv1.Severity_SEVERITY_CRITICAL, commonv1.Severity_SEVERITY_HIGH, commonv1.Severity_SEVERITY_MEDIUM, commonv1.Severity_SEVERITY_LOW} {
		notify = append(notify, &contractsv1.SeverityDeadline{Severity: sev, Within: durationpb.New(4 * time.Hour)})
		patch = append(patch, &contractsv1.SeverityDeadline{Severity: sev, Within: durationpb.New(72 * time.Hour)})
	}
	must[contractsv1.SetServiceLevelsResponse](t)(c.SetServiceLevels(ctx, connect.NewRequest(&contractsv1.SetServiceLevelsRequest{
		ContractId: d.ContractId, IncidentNotification: notify, PatchDeadlines: patch,
	})))
	must[contractsv1.SignContractResponse](t)(c.SignContract(ctx, connect.NewRequest(&contractsv1.SignContractRequest{ContractId: d.ContractId})))
	must[contractsv1.SignContractResponse](t)(pr.SignContract(ctx, connect.NewRequest(&contractsv1.SignContractRequest{ContractId: d.ContractId})))
	return d.ContractId
}

// source registers a source of org for contracts and returns its secret.
func (p *platform) source(org, id string, mapping integrationv1.Mapping, contracts ...string) string {
	p.t.Helper()
	res := must[integrationv1.RegisterSourceResponse](p.t)(p.integration(org).RegisterSource(ctx, connect.NewRequest(&integrationv1.RegisterSourceRequest{
		SourceId: id, ContractIds: contracts, Mapping: mapping, Name: id,
	})))
	return res.Secret
}

func (p *platform) ingestURL(source string) string {
	return p.srv.URL + "/ingest/v1/sources/" + source + "/events"
}

// event is a CloudEvent of the generic vocabulary.
func event(id, typ, contract string, data any) cloudevents.Event {
	e := cloudevents.NewEvent()
	e.SetID(id)
	e.SetSource("https://itsm.example.com")
	e.SetType(typ)
	e.SetSubject(contract)
	e.SetTime(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	if err := e.SetData(cloudevents.ApplicationJSON, data); err != nil {
		panic(err)
	}
	return e
}

func report(ticket, severity string) map[string]any {
	return map[string]any{
		"title": "Phishing wave " + ticket, "severity": severity, "aware_at": "2026-03-02T08:30:00Z",
		"category": "phishing", "external_ref": map[string]string{"system": "servicenow", "id": ticket},
	}
}

// answer is the ingest endpoint's reply.
type answer struct {
	status int
	body   map[string]any
	raw    string
}

func (a answer) str(k string) string { s, _ := a.body[k].(string); return s }

// post sends body with headers to the source's endpoint.
func (p *platform) post(source string, h http.Header, body []byte) answer {
	p.t.Helper()
	req, err := http.NewRequest(http.MethodPost, p.ingestURL(source), bytes.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header = h
	return p.do(req)
}

// structured posts e in structured mode with the bearer secret.
func (p *platform) structured(source, secret string, e cloudevents.Event) answer {
	p.t.Helper()
	body, err := json.Marshal(e)
	if err != nil {
		p.t.Fatal(err)
	}
	h := http.Header{"Content-Type": {cloudevents.ApplicationCloudEventsJSON}, "Authorization": {"Bearer " + secret}}
	return p.post(source, h, body)
}

// batch posts events in batch mode with the bearer secret.
func (p *platform) batch(source, secret string, events ...cloudevents.Event) answer {
	p.t.Helper()
	body, err := json.Marshal(events)
	if err != nil {
		p.t.Fatal(err)
	}
	h := http.Header{"Content-Type": {cloudevents.ApplicationCloudEventsBatchJSON}, "Authorization": {"Bearer " + secret}}
	return p.post(source, h, body)
}

func (p *platform) incident(id string, minPosition uint64) *incidentsv1.Incident {
	p.t.Helper()
	return must[incidentsv1.GetIncidentResponse](p.t)(p.incidents(customer).GetIncident(ctx, connect.NewRequest(&incidentsv1.GetIncidentRequest{IncidentId: id, MinPosition: minPosition}))).Incident
}

func position(a answer) uint64 {
	f, _ := a.body["position"].(float64)
	return uint64(f)
}

func TestSources(t *testing.T) {
	p := start(t, ingest.Limits{})
	con := p.contract()
	c := p.integration(customer)
	secretV1 := p.source(customer, "snow-prod", integrationv1.Mapping_MAPPING_SERVICENOW, con)
	if !strings.HasPrefix(secretV1, "whsec_") {
		t.Fatalf("secret %q is not in the Standard Webhooks form", secretV1)
	}
	// Registering it again changes nothing and does not show the secret again.
	if again := p.source(customer, "snow-prod", integrationv1.Mapping_MAPPING_SERVICENOW, con); again != "" {
		t.Fatal("registering the same source again showed its live secret")
	}
	got := must[integrationv1.GetSourceResponse](t)(c.GetSource(ctx, connect.NewRequest(&integrationv1.GetSourceRequest{SourceId: "snow-prod", MinPosition: lastPosition(t, p)})))
	if s := got.Source; s.OrgId != customer || s.Mapping != integrationv1.Mapping_MAPPING_SERVICENOW || s.Status != integrationv1.SourceStatus_SOURCE_STATUS_ENABLED || s.SecretVersion != 1 || len(s.ContractIds) != 1 {
		t.Fatalf("source %v", s)
	}
	rot := must[integrationv1.RotateSourceSecretResponse](t)(c.RotateSourceSecret(ctx, connect.NewRequest(&integrationv1.RotateSourceSecretRequest{SourceId: "snow-prod"})))
	if rot.SecretVersion != 2 || rot.Secret == secretV1 {
		t.Fatalf("rotation %v", rot)
	}
	dis := must[integrationv1.DisableSourceResponse](t)(c.DisableSource(ctx, connect.NewRequest(&integrationv1.DisableSourceRequest{SourceId: "snow-prod", Reason: "migration"})))
	got = must[integrationv1.GetSourceResponse](t)(c.GetSource(ctx, connect.NewRequest(&integrationv1.GetSourceRequest{SourceId: "snow-prod", MinPosition: dis.Position})))
	if got.Source.Status != integrationv1.SourceStatus_SOURCE_STATUS_DISABLED {
		t.Fatalf("disabled source is %v", got.Source.Status)
	}
	must[integrationv1.EnableSourceResponse](t)(c.EnableSource(ctx, connect.NewRequest(&integrationv1.EnableSourceRequest{SourceId: "snow-prod"})))
	p.source(customer, "jira-1", integrationv1.Mapping_MAPPING_JIRA, con)
	list := must[integrationv1.ListSourcesResponse](t)(c.ListSources(ctx, connect.NewRequest(&integrationv1.ListSourcesRequest{PageSize: 1, MinPosition: lastPosition(t, p)})))
	if len(list.Sources) != 1 || list.NextPageToken == "" {
		t.Fatalf("first page %v", list)
	}
	list = must[integrationv1.ListSourcesResponse](t)(c.ListSources(ctx, connect.NewRequest(&integrationv1.ListSourcesRequest{PageSize: 1, PageToken: list.NextPageToken})))
	if len(list.Sources) != 1 || list.Sources[0].SourceId != "jira-1" {
		t.Fatalf("second page %v", list)
	}

	// Another org sees nothing of it and changes nothing.
	evil := p.integration(outsider)
	_, err := evil.GetSource(ctx, connect.NewRequest(&integrationv1.GetSourceRequest{SourceId: "snow-prod"}))
	testkit.Code(t, connect.CodeNotFound, err)
	_, err = evil.DisableSource(ctx, connect.NewRequest(&integrationv1.DisableSourceRequest{SourceId: "snow-prod"}))
	testkit.Code(t, connect.CodeNotFound, err)
	_, err = evil.RotateSourceSecret(ctx, connect.NewRequest(&integrationv1.RotateSourceSecretRequest{SourceId: "snow-prod"}))
	testkit.Code(t, connect.CodeNotFound, err)
	if l := must[integrationv1.ListSourcesResponse](t)(evil.ListSources(ctx, connect.NewRequest(&integrationv1.ListSourcesRequest{}))); len(l.Sources) != 0 {
		t.Fatalf("an outsider lists %v", l.Sources)
	}
	// It cannot take the id (source ids name URLs and subjects, so they are
	// one namespace), nor register for a contract it is no party to.
	_, err = evil.RegisterSource(ctx, connect.NewRequest(&integrationv1.RegisterSourceRequest{SourceId: "snow-prod", ContractIds: []string{con}}))
	testkit.Code(t, connect.CodeAlreadyExists, err)
	_, err = evil.RegisterSource(ctx, connect.NewRequest(&integrationv1.RegisterSourceRequest{SourceId: "evil-src", ContractIds: []string{con}}))
	testkit.Code(t, connect.CodeNotFound, err)
	_, err = p.integration(provider).RegisterSource(ctx, connect.NewRequest(&integrationv1.RegisterSourceRequest{SourceId: "snow-prod", ContractIds: []string{con}}))
	testkit.Code(t, connect.CodeAlreadyExists, err)
	// Bad input is refused.
	for _, bad := range []*integrationv1.RegisterSourceRequest{
		{SourceId: "has.dot", ContractIds: []string{con}},
		{SourceId: "x"},
		{SourceId: "x", ContractIds: []string{"not-a-uuid"}},
		{SourceId: "x", ContractIds: []string{con}, Mapping: 99},
	} {
		_, err = c.RegisterSource(ctx, connect.NewRequest(bad))
		testkit.Code(t, connect.CodeInvalidArgument, err)
	}
	// A viewer may read but not change.
	viewer := integrationv1connect.NewIntegrationServiceClient(http.DefaultClient, p.srv.URL, p.srv.As(customer, "viewer"))
	_, err = viewer.DisableSource(ctx, connect.NewRequest(&integrationv1.DisableSourceRequest{SourceId: "snow-prod"}))
	testkit.Code(t, connect.CodePermissionDenied, err)
}

func lastPosition(t *testing.T, p *platform) uint64 {
	t.Helper()
	pos, err := p.store.LastPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return pos
}

// TestHTTPModes sends the generic vocabulary in each HTTP mode through the
// CloudEvents SDK's client, and reads what each event made.
func TestHTTPModes(t *testing.T) {
	p := start(t, ingest.Limits{})
	con := p.contract()
	secret := p.source(provider, "soc-tool", integrationv1.Mapping_MAPPING_JSM, con)

	// Structured mode, through the SDK's HTTP client.
	client, err := cloudevents.NewClientHTTP(cloudevents.WithTarget(p.ingestURL("soc-tool")),
		cehttp.WithHeader("Authorization", "Bearer "+secret))
	if err != nil {
		t.Fatal(err)
	}
	e := event("evt-1", "jsm.incident.report", con, report("INC001", "SEVERITY_HIGH"))
	res := client.Send(cloudevents.WithEncodingStructured(ctx), e)
	var result *cehttp.Result
	if !cloudevents.IsACK(res) || !cloudevents.ResultAs(res, &result) || result.StatusCode != http.StatusOK {
		t.Fatalf("structured send: %v", res)
	}
	// Binary mode, through the SDK, answers with the object it created.
	e = event("evt-2", "jsm.incident.report", con, report("INC002", "SEVERITY_LOW"))
	req, err := http.NewRequest(http.MethodPost, p.ingestURL("soc-tool"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cehttp.WriteRequest(ctx, binding.ToMessage(&e), req); err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	if req.Header.Get("ce-id") != "evt-2" {
		t.Fatalf("not binary mode: %v", req.Header)
	}
	bin := p.do(req)
	if bin.status != http.StatusOK || bin.str("outcome") != "applied" || bin.str("object_type") != "incident" || bin.str("object_id") == "" {
		t.Fatalf("binary mode: %d %s", bin.status, bin.raw)
	}
	inc := p.incident(bin.str("object_id"), position(bin))
	if inc.Title != "Phishing wave INC002" || inc.Severity != commonv1.Severity_SEVERITY_LOW || inc.ContractId != con || inc.ReporterOrgId != provider {
		t.Fatalf("incident %v", inc)
	}
	if len(inc.ExternalReferences) != 1 || inc.ExternalReferences[0].Id != "INC002" {
		t.Fatalf("external refs %v", inc.ExternalReferences)
	}
	// Batch mode: three events, one answer each.
	b := p.batch("soc-tool", secret,
		event("evt-3", "jsm.incident.report", con, report("INC003", "SEVERITY_MEDIUM")),
		event("evt-4", "jsm.incident.report", con, report("INC004", "SEVERITY_CRITICAL")),
		event("evt-2", "jsm.incident.report", con, report("INC002", "SEVERITY_LOW")))
	results, _ := b.body["results"].([]any)
	if b.status != http.StatusOK || len(results) != 3 {
		t.Fatalf("batch: %d %s", b.status, b.raw)
	}
	if dup, _ := results[2].(map[string]any)["duplicate"].(bool); !dup {
		t.Fatalf("the batch's resent event is no duplicate: %v", results[2])
	}
	list := must[incidentsv1.ListIncidentsResponse](t)(p.incidents(customer).ListIncidents(ctx, connect.NewRequest(&incidentsv1.ListIncidentsRequest{ContractId: con, MinPosition: lastPosition(t, p)})))
	if len(list.Incidents) != 4 {
		t.Fatalf("%d incidents, want 4", len(list.Incidents))
	}
	// The inbox lists every event with its outcome, for the source's org only.
	ingested := must[integrationv1.ListIngestedEventsResponse](t)(p.integration(provider).ListIngestedEvents(ctx, connect.NewRequest(&integrationv1.ListIngestedEventsRequest{SourceId: "soc-tool"})))
	if len(ingested.Events) != 4 {
		t.Fatalf("inbox %v", ingested.Events)
	}
	for _, ev := range ingested.Events {
		if ev.Outcome != integrationv1.IngestOutcome_INGEST_OUTCOME_APPLIED || ev.Transport != "http" || ev.ObjectType != "incident" || ev.ExternalRef.GetSystem() != "servicenow" {
			t.Fatalf("inbox row %v", ev)
		}
	}
	if l := must[integrationv1.ListIngestedEventsResponse](t)(p.integration(customer).ListIngestedEvents(ctx, connect.NewRequest(&integrationv1.ListIngestedEventsRequest{}))); len(l.Events) != 0 {
		t.Fatalf("another org sees the source's inbox: %v", l.Events)
	}
}

func (p *platform) do(req *http.Request) answer {
	p.t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	a := answer{status: res.StatusCode, raw: string(raw)}
	_ = json.Unmarshal(raw, &a.body)
	return a
}

// TestDuplicatesAppliedOnce: the same event, resent, is acknowledged and
// changes nothing.
func TestDuplicatesAppliedOnce(t *testing.T) {
	p := start(t, ingest.Limits{})
	con := p.contract()
	secret := p.source(customer, "soc", integrationv1.Mapping_MAPPING_JSM, con)
	first := p.structured("soc", secret, event("dup-1", "jsm.incident.report", con, report("INC9", "SEVERITY_HIGH")))
	if first.status != http.StatusOK {
		t.Fatalf("first: %d %s", first.status, first.raw)
	}
	for range 3 {
		again := p.structured("soc", secret, event("dup-1", "jsm.incident.report", con, report("INC9", "SEVERITY_HIGH")))
		if again.status != http.StatusOK || again.body["duplicate"] != true || again.str("object_id") != first.str("object_id") {
			t.Fatalf("resent: %d %s", again.status, again.raw)
		}
	}
	// Another event of the same ticket names the same incident.
	other := p.structured("soc", secret, event("dup-2", "jsm.incident.report", con, report("INC9", "SEVERITY_HIGH")))
	if other.status != http.StatusOK || other.str("outcome") != "unchanged" || other.str("object_id") != first.str("object_id") {
		t.Fatalf("same ticket again: %d %s", other.status, other.raw)
	}
	if n := testkit.CountEvents(t, p.store, "incidents.incident", first.str("object_id"), "jsm.incidents.v1.IncidentReported"); n != 1 {
		t.Fatalf("%d IncidentReported events, want 1", n)
	}

	// The same new event sent five times at once: one incident, and every
	// answer names it.
	var wg sync.WaitGroup
	answers := make([]answer, 5)
	for i := range answers {
		wg.Go(func() {
			answers[i] = p.structured("soc", secret, event("race-1", "jsm.incident.report", con, report("RACE", "SEVERITY_LOW")))
		})
	}
	wg.Wait()
	for _, a := range answers {
		if a.status != http.StatusOK || a.str("object_id") != answers[0].str("object_id") || a.str("object_id") == "" {
			t.Fatalf("concurrent sends: %d %s (first named %s)", a.status, a.raw, answers[0].str("object_id"))
		}
	}
	if n := testkit.CountEvents(t, p.store, "incidents.incident", answers[0].str("object_id"), "jsm.incidents.v1.IncidentReported"); n != 1 {
		t.Fatalf("%d reports from concurrent sends, want 1", n)
	}
}

// TestUpdatesOfOneTicket: later events of a ticket update the incident it
// became, and an update of a ticket never reported is refused.
func TestUpdatesOfOneTicket(t *testing.T) {
	p := start(t, ingest.Limits{})
	con := p.contract()
	secret := p.source(provider, "soc", integrationv1.Mapping_MAPPING_JSM, con)
	rep := p.structured("soc", secret, event("u-1", "jsm.incident.report", con, report("INC42", "SEVERITY_MEDIUM")))
	id := rep.str("object_id")
	upd := p.structured("soc", secret, event("u-2", "jsm.incident.update", con, map[string]any{
		"severity": "SEVERITY_CRITICAL", "rationale": "spreads", "text": "Second host encrypted",
		"external_ref": map[string]string{"system": "servicenow", "id": "INC42"},
	}))
	if upd.status != http.StatusOK || upd.str("object_id") != id || upd.str("outcome") != "applied" {
		t.Fatalf("update: %d %s", upd.status, upd.raw)
	}
	inc := p.incident(id, position(upd))
	if inc.Severity != commonv1.Severity_SEVERITY_CRITICAL {
		t.Fatalf("severity %v after the update", inc.Severity)
	}
	res := p.structured("soc", secret, event("u-3", "jsm.incident.resolve", con, map[string]any{
		"summary": "Hosts restored", "external_ref": map[string]string{"system": "servicenow", "id": "INC42"},
	}))
	if res.status != http.StatusOK || res.str("object_id") != id {
		t.Fatalf("resolve: %d %s", res.status, res.raw)
	}
	if inc := p.incident(id, position(res)); inc.Status != incidentsv1.IncidentStatus_INCIDENT_STATUS_RESOLVED {
		t.Fatalf("status %v after resolve", inc.Status)
	}
	// Resolving again changes nothing.
	again := p.structured("soc", secret, event("u-4", "jsm.incident.resolve", con, map[string]any{
		"summary": "Hosts restored", "external_ref": map[string]string{"system": "servicenow", "id": "INC42"},
	}))
	if again.status != http.StatusOK || again.str("outcome") != "unchanged" {
		t.Fatalf("resolve again: %d %s", again.status, again.raw)
	}
	unknown := p.structured("soc", secret, event("u-5", "jsm.incident.update", con, map[string]any{
		"severity": "SEVERITY_LOW", "external_ref": map[string]string{"system": "servicenow", "id": "INC-NEVER"},
	}))
	if unknown.status != http.StatusUnprocessableEntity || !strings.HasSuffix(unknown.str("type"), "/unknown-ticket") {
		t.Fatalf("update of an unknown ticket: %d %s", unknown.status, unknown.raw)
	}
	if n := testkit.CountEvents(t, p.store, "incidents.incident", id, "jsm.incidents.v1.IncidentAssessed"); n != 1 {
		t.Fatalf("%d assessments, want 1", n)
	}
	// One ticket, one correlation: jsm timeline --correlation tells its story.
	evs, err := p.store.Load(ctx, "incidents.incident", id, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Correlation != "ingest/servicenow/INC42" || e.Actor.Org != provider || e.Actor.User != "source:soc" || e.Actor.Role != ingest.Role {
			t.Fatalf("%s: correlation %q, actor %+v", e.Type, e.Correlation, e.Actor)
		}
	}
}

// TestPatchingAndChanges: vulnerabilities, assets and changes come in
// the generic vocabulary too.
func TestPatchingAndChanges(t *testing.T) {
	p := start(t, ingest.Limits{})
	con := p.contract()
	secret := p.source(provider, "scanner", integrationv1.Mapping_MAPPING_JSM, con)
	assets := p.structured("scanner", secret, event("a-1", "jsm.assets.register", con, map[string]any{
		"assets": []map[string]any{{"asset_id": "web-1", "name": "Web 1", "software": []map[string]string{{"product": "nginx", "version": "1.24.0"}}}},
	}))
	if assets.status != http.StatusOK || assets.str("object_type") != "inventory" {
		t.Fatalf("assets: %d %s", assets.status, assets.raw)
	}
	vuln := p.structured("scanner", secret, event("v-1", "jsm.vulnerability.register", con, map[string]any{
		"cve_id": "CVE-2026-1234", "severity": "SEVERITY_HIGH", "product": "nginx", "affected_versions": []string{"< 1.25.0"},
		"external_ref": map[string]string{"system": "qualys", "id": "QID-1"},
	}))
	if vuln.status != http.StatusOK || vuln.str("object_type") != "remediation" {
		t.Fatalf("vulnerability: %d %s", vuln.status, vuln.raw)
	}
	pc := patchingv1connect.NewPatchServiceClient(http.DefaultClient, p.srv.URL, p.srv.As(customer, "org-admin"))
	rem := must[patchingv1.GetRemediationResponse](t)(pc.GetRemediation(ctx, connect.NewRequest(&patchingv1.GetRemediationRequest{RemediationId: vuln.str("object_id"), MinPosition: position(vuln)}))).Remediation
	if len(rem.Assets) != 1 || rem.Assets[0].AssetId != "web-1" || rem.DueAt == nil {
		t.Fatalf("remediation %v", rem)
	}
	ch := p.structured("scanner", secret, event("c-1", "jsm.change.request", con, map[string]any{
		"title": "Upgrade nginx", "category": "CHANGE_CATEGORY_SOFTWARE", "external_ref": map[string]string{"system": "servicenow", "id": "CHG7"},
	}))
	if ch.status != http.StatusOK || ch.str("object_type") != "change" {
		t.Fatalf("change: %d %s", ch.status, ch.raw)
	}
	cc := changeadvisoryv1connect.NewChangeServiceClient(http.DefaultClient, p.srv.URL, p.srv.As(customer, "org-admin"))
	change := must[changeadvisoryv1.GetChangeResponse](t)(cc.GetChange(ctx, connect.NewRequest(&changeadvisoryv1.GetChangeRequest{ChangeId: ch.str("object_id"), MinPosition: position(ch)}))).Change
	if change.Title != "Upgrade nginx" || change.Status != changeadvisoryv1.ChangeStatus_CHANGE_STATUS_REQUESTED {
		t.Fatalf("change %v", change)
	}
}

// TestRefusals: bad credentials, oversize bodies and batches, rate limits,
// malformed events, unknown types, contracts the source may not write to
// and domain rules: each a clear 4xx that changes nothing, the event ones
// listed with their reason.
func TestRefusals(t *testing.T) {
	p := start(t, ingest.Limits{MaxBodyBytes: 16 << 10, MaxBatch: 3, RatePerSource: 1000})
	con := p.contract()
	other := p.contract()
	secret := p.source(provider, "soc", integrationv1.Mapping_MAPPING_JSM, con)
	good := func(id string) cloudevents.Event {
		return event(id, "jsm.incident.report", con, report("T-"+id, "SEVERITY_LOW"))
	}
	body, _ := json.Marshal(good("r-1"))
	ce := http.Header{"Content-Type": {cloudevents.ApplicationCloudEventsJSON}}
	with := func(k, v string) http.Header { h := ce.Clone(); h.Set(k, v); return h }

	for name, tc := range map[string]struct {
		source string
		h      http.Header
		body   []byte
		status int
		typ    string
	}{
		"no credentials":   {"soc", ce, body, http.StatusUnauthorized, "unauthenticated"},
		"wrong secret":     {"soc", with("Authorization", "Bearer whsec_AAAA"), body, http.StatusUnauthorized, "unauthenticated"},
		"unknown source":   {"nobody", with("Authorization", "Bearer "+secret), body, http.StatusUnauthorized, "unauthenticated"},
		"forged signature": {"soc", signed("whsec_"+"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "r-1", body), body, http.StatusUnauthorized, "unauthenticated"},
		"oversize":         {"soc", with("Authorization", "Bearer "+secret), bytes.Repeat([]byte("x"), 17<<10), http.StatusRequestEntityTooLarge, "too-large"},
		"not a cloudevent": {"soc", with("Authorization", "Bearer "+secret), []byte(`{"hello": "world"}`), http.StatusBadRequest, "malformed-cloudevent"},
		"malformed json":   {"soc", with("Authorization", "Bearer "+secret), []byte(`{"specversion": "1.0", "id": `), http.StatusBadRequest, "malformed-cloudevent"},
	} {
		a := p.post(tc.source, tc.h, tc.body)
		if a.status != tc.status || !strings.HasSuffix(a.str("type"), "/"+tc.typ) || a.str("title") == "" {
			t.Errorf("%s: %d %s, want %d %s", name, a.status, a.raw, tc.status, tc.typ)
		}
	}
	tooMany := p.batch("soc", secret, good("b-1"), good("b-2"), good("b-3"), good("b-4"))
	if tooMany.status != http.StatusRequestEntityTooLarge {
		t.Errorf("a batch over the bound: %d %s", tooMany.status, tooMany.raw)
	}

	// Refused events: answered with problem details, listed with the reason
	// and the event as received.
	for name, tc := range map[string]struct {
		e      cloudevents.Event
		status int
		typ    string
	}{
		"unknown type":         {event("x-1", "jsm.coffee.brew", con, map[string]any{}), http.StatusUnprocessableEntity, "unknown-type"},
		"not allowed contract": {event("x-2", "jsm.incident.report", other, report("T-x2", "SEVERITY_LOW")), http.StatusForbidden, "contract-not-allowed"},
		"invalid field":        {event("x-3", "jsm.incident.report", con, map[string]any{"title": "", "severity": "SEVERITY_LOW", "aware_at": "2026-03-02T08:30:00Z"}), http.StatusUnprocessableEntity, "refused"},
		"aware in the future":  {event("x-4", "jsm.incident.report", con, map[string]any{"title": "t", "severity": "SEVERITY_LOW", "aware_at": "2099-03-02T08:30:00Z"}), http.StatusUnprocessableEntity, "refused"},
	} {
		a := p.structured("soc", secret, tc.e)
		if a.status != tc.status || !strings.HasSuffix(a.str("type"), "/"+tc.typ) || a.str("event_id") != tc.e.ID() || a.str("detail") == "" {
			t.Errorf("%s: %d %s, want %d %s", name, a.status, a.raw, tc.status, tc.typ)
		}
	}
	rejected := must[integrationv1.ListRejectedEventsResponse](t)(p.integration(provider).ListRejectedEvents(ctx, connect.NewRequest(&integrationv1.ListRejectedEventsRequest{SourceId: "soc"})))
	if len(rejected.Events) != 4 {
		t.Fatalf("rejected list %v", rejected.Events)
	}
	for _, r := range rejected.Events {
		if r.Outcome != integrationv1.IngestOutcome_INGEST_OUTCOME_REJECTED || r.Reason == "" || r.ReasonType == "" || !bytes.Contains(r.Original, []byte(r.EventId)) {
			t.Fatalf("rejected row %v", r)
		}
	}
	list := must[incidentsv1.ListIncidentsResponse](t)(p.incidents(provider).ListIncidents(ctx, connect.NewRequest(&incidentsv1.ListIncidentsRequest{MinPosition: lastPosition(t, p)})))
	if len(list.Incidents) != 0 {
		t.Fatalf("refused requests made incidents: %v", list.Incidents)
	}

	// A batch with a refused event: the others are taken, the answer says which.
	mixed := p.batch("soc", secret, good("m-1"), event("m-2", "jsm.coffee.brew", con, map[string]any{}), good("m-3"))
	results, _ := mixed.body["results"].([]any)
	if mixed.status != http.StatusUnprocessableEntity || len(results) != 3 || mixed.str("event_id") != "m-2" {
		t.Fatalf("mixed batch: %d %s", mixed.status, mixed.raw)
	}
	// A disabled source is refused; enabled again it is served.
	c := p.integration(provider)
	must[integrationv1.DisableSourceResponse](t)(c.DisableSource(ctx, connect.NewRequest(&integrationv1.DisableSourceRequest{SourceId: "soc"})))
	if a := p.structured("soc", secret, good("d-1")); a.status != http.StatusForbidden {
		t.Fatalf("disabled source: %d %s", a.status, a.raw)
	}
	must[integrationv1.EnableSourceResponse](t)(c.EnableSource(ctx, connect.NewRequest(&integrationv1.EnableSourceRequest{SourceId: "soc"})))
	if a := p.structured("soc", secret, good("d-1")); a.status != http.StatusOK {
		t.Fatalf("enabled again: %d %s", a.status, a.raw)
	}
}

// signed is h with a Standard Webhooks signature of body by secret.
func signed(secret, msgID string, body []byte) http.Header {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		panic(err)
	}
	now := time.Now()
	sig, err := wh.Sign(msgID, now, body)
	if err != nil {
		panic(err)
	}
	return http.Header{
		"Content-Type":      {cloudevents.ApplicationCloudEventsJSON},
		"Webhook-Id":        {msgID},
		"Webhook-Timestamp": {fmt.Sprint(now.Unix())},
		"Webhook-Signature": {sig},
	}
}

// TestSignaturesAndRotation: a Standard Webhooks signature authenticates
// like the bearer secret; after a rotation the previous secret still does
// for the grace period.
func TestSignaturesAndRotation(t *testing.T) {
	p := start(t, ingest.Limits{})
	con := p.contract()
	secretV1 := p.source(provider, "soc", integrationv1.Mapping_MAPPING_JSM, con)
	body, _ := json.Marshal(event("s-1", "jsm.incident.report", con, report("S1", "SEVERITY_LOW")))
	if a := p.post("soc", signed(secretV1, "s-1", body), body); a.status != http.StatusOK {
		t.Fatalf("signed: %d %s", a.status, a.raw)
	}
	tampered := bytes.Replace(body, []byte("S1"), []byte("S2"), 1)
	if a := p.post("soc", signed(secretV1, "s-1", body), tampered); a.status != http.StatusUnauthorized {
		t.Fatalf("a body changed after signing: %d %s", a.status, a.raw)
	}
	old := signed(secretV1, "s-1", body)
	old.Set("Webhook-Timestamp", fmt.Sprint(time.Now().Add(-time.Hour).Unix()))
	if a := p.post("soc", old, body); a.status != http.StatusUnauthorized {
		t.Fatalf("a stale signature: %d %s", a.status, a.raw)
	}
	rot := must[integrationv1.RotateSourceSecretResponse](t)(p.integration(provider).RotateSourceSecret(ctx, connect.NewRequest(&integrationv1.RotateSourceSecretRequest{SourceId: "soc"})))
	for _, s := range []string{rot.Secret, secretV1} {
		e := event("s-"+s[6:12], "jsm.incident.report", con, report("R-"+s[6:12], "SEVERITY_LOW"))
		if a := p.structured("soc", s, e); a.status != http.StatusOK {
			t.Fatalf("after rotation: %d %s", a.status, a.raw)
		}
	}
}

// TestRotationRevokesAtOnce: a rotation with a grace of 0 refuses the
// previous secret at once (over HTTP, bearer and signed); a replayed
// request_id does not show the new secret again.
func TestRotationRevokesAtOnce(t *testing.T) {
	p := start(t, ingest.Limits{})
	con := p.contract()
	leaked := p.source(provider, "soc", integrationv1.Mapping_MAPPING_JSM, con)
	rotate := &integrationv1.RotateSourceSecretRequest{SourceId: "soc", RequestId: "rot-1", PreviousSecretGrace: durationpb.New(0)}
	rot := must[integrationv1.RotateSourceSecretResponse](t)(p.integration(provider).RotateSourceSecret(ctx, connect.NewRequest(rotate)))
	if rot.SecretVersion != 2 || !strings.HasPrefix(rot.Secret, "whsec_") {
		t.Fatalf("rotation %v", rot)
	}
	replay := must[integrationv1.RotateSourceSecretResponse](t)(p.integration(provider).RotateSourceSecret(ctx, connect.NewRequest(rotate)))
	if replay.Secret != "" || replay.SecretVersion != 2 {
		t.Fatalf("replayed rotation %v: the secret shown again", replay)
	}
	e := event("r-1", "jsm.incident.report", con, report("R1", "SEVERITY_LOW"))
	if a := p.structured("soc", leaked, e); a.status != http.StatusUnauthorized {
		t.Fatalf("the revoked secret as a token: %d %s", a.status, a.raw)
	}
	body, _ := json.Marshal(e)
	if a := p.post("soc", signed(leaked, "r-1", body), body); a.status != http.StatusUnauthorized {
		t.Fatalf("signed with the revoked secret: %d %s", a.status, a.raw)
	}
	if a := p.structured("soc", rot.Secret, e); a.status != http.StatusOK {
		t.Fatalf("the new secret: %d %s", a.status, a.raw)
	}
	// A grace beyond a day is refused and changes nothing.
	_, err := p.integration(provider).RotateSourceSecret(ctx, connect.NewRequest(&integrationv1.RotateSourceSecretRequest{SourceId: "soc", PreviousSecretGrace: durationpb.New(48 * time.Hour)}))
	if connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("a 48 h grace: %v, want invalid_argument", err)
	}
	got := must[integrationv1.GetSourceResponse](t)(p.integration(provider).GetSource(ctx, connect.NewRequest(&integrationv1.GetSourceRequest{SourceId: "soc", MinPosition: lastPosition(t, p)})))
	if got.Source.SecretVersion != 2 {
		t.Fatalf("after a refused rotation: version %d", got.Source.SecretVersion)
	}
}

// TestRateLimit: a source sending faster than its rate is told to wait.
func TestRateLimit(t *testing.T) {
	p := start(t, ingest.Limits{RatePerSource: 1, Burst: 2})
	con := p.contract()
	secret := p.source(provider, "soc", integrationv1.Mapping_MAPPING_JSM, con)
	var statuses []int
	for i := range 4 {
		a := p.structured("soc", secret, event(fmt.Sprint("rl-", i), "jsm.incident.report", con, report(fmt.Sprint("RL", i), "SEVERITY_LOW")))
		statuses = append(statuses, a.status)
	}
	if statuses[0] != http.StatusOK || statuses[1] != http.StatusOK || statuses[3] != http.StatusTooManyRequests {
		t.Fatalf("statuses %v", statuses)
	}
}

// TestTransientFailuresAreRetried: while the platform cannot be reached,
// HTTP answers 503 and records nothing; NATS keeps the event and applies
// it once the platform is back.
func TestTransientFailuresAreRetried(t *testing.T) {
	p := start(t, ingest.Limits{})
	con := p.contract()
	secret := p.source(provider, "soc", integrationv1.Mapping_MAPPING_JSM, con)
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
	defer dead.Close()
	p.url.Store(&dead.URL)
	e := event("t-1", "jsm.incident.report", con, report("T1", "SEVERITY_LOW"))
	if a := p.structured("soc", secret, e); a.status != http.StatusServiceUnavailable || a.str("type") == "" {
		t.Fatalf("platform down: %d %s", a.status, a.raw)
	}
	publish(t, p, "soc", event("t-2", "jsm.incident.report", con, report("T2", "SEVERITY_LOW")))
	time.Sleep(500 * time.Millisecond)
	p.url.Store(&p.srv.URL)
	if a := p.structured("soc", secret, e); a.status != http.StatusOK || a.body["duplicate"] == true {
		t.Fatalf("platform back: %d %s", a.status, a.raw)
	}
	waitIngested(t, p, provider, "t-2", integrationv1.IngestOutcome_INGEST_OUTCOME_APPLIED)
}

// publish sends e on the source's NATS subject through the CloudEvents
// SDK's JetStream sender (binary mode: ce- headers).
func publish(t *testing.T, p *platform, source string, e cloudevents.Event) {
	t.Helper()
	proto, err := cejs.NewSenderFromConn(p.nats.Conn(), ingest.Stream, ingest.Subject(source)+".incidents", nil)
	if err != nil {
		t.Fatal(err)
	}
	client, err := cloudevents.NewClient(proto)
	if err != nil {
		t.Fatal(err)
	}
	if res := client.Send(ctx, e); cloudevents.IsUndelivered(res) {
		t.Fatalf("publish: %v", res)
	}
}

func waitIngested(t *testing.T, p *platform, org, eventID string, want integrationv1.IngestOutcome) *integrationv1.IngestedEvent {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		l := must[integrationv1.ListIngestedEventsResponse](t)(p.integration(org).ListIngestedEvents(ctx, connect.NewRequest(&integrationv1.ListIngestedEventsRequest{PageSize: 1000})))
		for _, e := range l.Events {
			if e.EventId == eventID {
				if e.Outcome != want {
					t.Fatalf("event %s: %v, want %v (%s)", eventID, e.Outcome, want, e.Reason)
				}
				return e
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("event %s never ingested", eventID)
	return nil
}

// TestNATSTransport: events published on jsm.ingest.<source>.> take the
// same path; a rejected one goes to the dead-letter subject with the
// original message and the reason, and the rest keeps flowing.
func TestNATSTransport(t *testing.T) {
	p := start(t, ingest.Limits{})
	con := p.contract()
	p.source(provider, "soc", integrationv1.Mapping_MAPPING_JSM, con)
	dlq, err := p.nats.Conn().SubscribeSync(ingest.DeadLetterSubject)
	if err != nil {
		t.Fatal(err)
	}
	publish(t, p, "soc", event("n-1", "jsm.incident.report", con, report("N1", "SEVERITY_HIGH")))
	publish(t, p, "soc", event("n-2", "jsm.coffee.brew", con, map[string]any{}))
	publish(t, p, "soc", event("n-1", "jsm.incident.report", con, report("N1", "SEVERITY_HIGH"))) // resent
	// Structured mode on NATS too, and a message that is no CloudEvent.
	body, _ := json.Marshal(event("n-3", "jsm.incident.report", con, report("N3", "SEVERITY_LOW")))
	js := p.store.JetStream()
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: ingest.Subject("soc") + ".x", Header: nats.Header{"content-type": {cloudevents.ApplicationCloudEventsJSON}}, Data: body}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, ingest.Subject("soc")+".x", []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, ingest.Subject("nobody")+".x", body); err != nil {
		t.Fatal(err)
	}
	applied := waitIngested(t, p, provider, "n-1", integrationv1.IngestOutcome_INGEST_OUTCOME_APPLIED)
	if applied.Transport != "nats" || applied.ObjectId == "" {
		t.Fatalf("inbox row %v", applied)
	}
	waitIngested(t, p, provider, "n-2", integrationv1.IngestOutcome_INGEST_OUTCOME_REJECTED)
	waitIngested(t, p, provider, "n-3", integrationv1.IngestOutcome_INGEST_OUTCOME_APPLIED)
	reasons := map[string]string{}
	for range 3 {
		m, err := dlq.NextMsg(20 * time.Second)
		if err != nil {
			t.Fatalf("dead letters: %v (have %v)", err, reasons)
		}
		reasons[string(m.Data)] = m.Header.Get("reason_poisoned")
		if m.Header.Get("ce-id") == "n-2" && (!strings.Contains(m.Header.Get("reason_poisoned"), "unknown-type") || m.Header.Get("ce-type") != "jsm.coffee.brew") {
			t.Fatalf("dead letter of n-2: %v %q", m.Header, m.Data)
		}
	}
	if r := reasons["garbage"]; !strings.Contains(r, "malformed-cloudevent") {
		t.Fatalf("garbage dead-lettered with %q", r)
	}
	if r := reasons[string(body)]; !strings.Contains(r, "unknown-source") {
		t.Fatalf("unknown source dead-lettered with %q (%v)", r, reasons)
	}
	if _, err := dlq.NextMsg(300 * time.Millisecond); err == nil {
		t.Fatal("more dead letters than rejected messages")
	}
	if n := testkit.CountEvents(t, p.store, "incidents.incident", applied.ObjectId, "jsm.incidents.v1.IncidentReported"); n != 1 {
		t.Fatalf("%d reports for a resent NATS event", n)
	}
}

// TestTraceContinues: a source's traceparent (the HTTP header, or the
// CloudEvents tracing extension) reaches the events its commands append.
func TestTraceContinues(t *testing.T) {
	p := start(t, ingest.Limits{})
	con := p.contract()
	secret := p.source(provider, "soc", integrationv1.Mapping_MAPPING_JSM, con)
	body, _ := json.Marshal(event("tr-1", "jsm.incident.report", con, report("TR1", "SEVERITY_LOW")))
	h := http.Header{"Content-Type": {cloudevents.ApplicationCloudEventsJSON}, "Authorization": {"Bearer " + secret},
		"Traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}
	a := p.post("soc", h, body)
	e := event("tr-2", "jsm.incident.report", con, report("TR2", "SEVERITY_LOW"))
	e.SetExtension("traceparent", "00-1bf7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	b := p.structured("soc", secret, e)
	for traceID, ans := range map[string]answer{"0af7651916cd43dd8448eb211c80319c": a, "1bf7651916cd43dd8448eb211c80319c": b} {
		evs, err := p.store.Load(ctx, "incidents.incident", ans.str("object_id"), 0)
		if err != nil || len(evs) != 1 {
			t.Fatalf("events of %s: %v %v", ans.str("object_id"), evs, err)
		}
		if !strings.Contains(evs[0].TraceParent, traceID) {
			t.Fatalf("event traceparent %q, want trace %s", evs[0].TraceParent, traceID)
		}
	}
}

// sample is a recorded CloudEvent of testdata, for contract.
func sample(t *testing.T, name, contract string) cloudevents.Event {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("ingest", "mapping", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var e cloudevents.Event
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	e.SetSubject(contract)
	return e
}

// TestRecordedSamples: ServiceNow and Jira payloads as those tools send
// them, through HTTP into the platform; later records of a ticket update
// the object it became.
func TestRecordedSamples(t *testing.T) {
	p := start(t, ingest.Limits{})
	con := p.contract()
	snow := p.source(customer, "snow", integrationv1.Mapping_MAPPING_SERVICENOW, con)
	jira := p.source(provider, "jira", integrationv1.Mapping_MAPPING_JIRA, con)

	ins := p.structured("snow", snow, sample(t, "servicenow/incident_insert_plain.json", con))
	if ins.status != http.StatusOK || ins.str("object_type") != "incident" {
		t.Fatalf("ServiceNow incident: %d %s", ins.status, ins.raw)
	}
	inc := p.incident(ins.str("object_id"), position(ins))
	if inc.Title != "Suspicious outbound traffic from payroll server" || inc.ReporterOrgId != customer || inc.ExternalReferences[0].Id != "INC0010023" {
		t.Fatalf("incident %v", inc)
	}
	res := p.structured("snow", snow, sample(t, "servicenow/incident_resolved_plain.json", con))
	if res.status != http.StatusOK || res.str("object_id") != ins.str("object_id") {
		t.Fatalf("ServiceNow resolution: %d %s", res.status, res.raw)
	}
	if inc := p.incident(ins.str("object_id"), position(res)); inc.Status != incidentsv1.IncidentStatus_INCIDENT_STATUS_RESOLVED {
		t.Fatalf("status %v after ServiceNow resolved it", inc.Status)
	}

	created := p.structured("jira", jira, sample(t, "jira/issue_created.json", con))
	if created.status != http.StatusOK || created.str("object_type") != "incident" {
		t.Fatalf("Jira issue: %d %s", created.status, created.raw)
	}
	done := p.structured("jira", jira, sample(t, "jira/issue_updated_done.json", con))
	if done.status != http.StatusOK || done.str("object_id") != created.str("object_id") {
		t.Fatalf("Jira done: %d %s", done.status, done.raw)
	}
	if inc := p.incident(created.str("object_id"), position(done)); inc.Status != incidentsv1.IncidentStatus_INCIDENT_STATUS_RESOLVED || inc.ReporterOrgId != provider {
		t.Fatalf("Jira incident %v", inc)
	}

	vul := p.structured("snow", snow, sample(t, "servicenow/vulnerable_item_plain.json", con))
	if vul.status != http.StatusOK || vul.str("object_type") != "remediation" || vul.str("object_id") == "" {
		t.Fatalf("ServiceNow vulnerable item: %d %s", vul.status, vul.raw)
	}
	chg := p.structured("snow", snow, sample(t, "servicenow/change_new_plain.json", con))
	if chg.status != http.StatusOK || chg.str("object_type") != "change" {
		t.Fatalf("ServiceNow change: %d %s", chg.status, chg.raw)
	}
	// A change ServiceNow reports implemented that the board never approved:
	// the platform refuses the implementation and says why.
	closed := p.structured("snow", snow, sample(t, "servicenow/change_closed_plain.json", con))
	if closed.status != http.StatusUnprocessableEntity || !strings.Contains(closed.str("detail"), "failed_precondition") {
		t.Fatalf("ServiceNow change closed before approval: %d %s", closed.status, closed.raw)
	}
}

// TestSurvivesCrashAndRestart: events published on NATS while the service
// is down are applied once it is back; an event whose commands were given
// but whose inbox row was lost (a crash between the two) is applied again
// without a second incident.
func TestSurvivesCrashAndRestart(t *testing.T) {
	p := start(t, ingest.Limits{})
	con := p.contract()
	secret := p.source(provider, "soc", integrationv1.Mapping_MAPPING_JSM, con)
	first := p.structured("soc", secret, event("c-1", "jsm.incident.report", con, report("C1", "SEVERITY_HIGH")))
	if first.status != http.StatusOK {
		t.Fatalf("first: %d %s", first.status, first.raw)
	}
	// As if the service died after its command, before its rows.
	if _, err := p.pool.Exec(ctx, `DELETE FROM ingest.events WHERE event_id = 'c-1'; DELETE FROM ingest.refs WHERE ref_id = 'C1'`); err != nil {
		t.Fatal(err)
	}
	again := p.structured("soc", secret, event("c-1", "jsm.incident.report", con, report("C1", "SEVERITY_HIGH")))
	if again.status != http.StatusOK || again.str("object_id") != first.str("object_id") {
		t.Fatalf("after the lost row: %d %s", again.status, again.raw)
	}
	if n := testkit.CountEvents(t, p.store, "incidents.incident", first.str("object_id"), "jsm.incidents.v1.IncidentReported"); n != 1 {
		t.Fatalf("%d reports after a lost inbox row, want 1", n)
	}

	p.svc.halt()
	for i := range 5 {
		publish(t, p, "soc", event(fmt.Sprint("down-", i), "jsm.incident.report", con, report(fmt.Sprint("D", i), "SEVERITY_LOW")))
	}
	time.Sleep(300 * time.Millisecond)
	l := must[integrationv1.ListIngestedEventsResponse](t)(p.integration(provider).ListIngestedEvents(ctx, connect.NewRequest(&integrationv1.ListIngestedEventsRequest{})))
	if len(l.Events) != 1 {
		t.Fatalf("ingested while down: %v", l.Events)
	}
	p.restart()
	for i := range 5 {
		waitIngested(t, p, provider, fmt.Sprint("down-", i), integrationv1.IngestOutcome_INGEST_OUTCOME_APPLIED)
	}
}

// TestMetrics: /metrics counts ingested events by transport and outcome.
func TestMetrics(t *testing.T) {
	p := start(t, ingest.Limits{})
	con := p.contract()
	secret := p.source(provider, "soc", integrationv1.Mapping_MAPPING_JSM, con)
	before := metric(t, `jsm_ingested_events_total{outcome="rejected",transport="http"}`)
	p.structured("soc", secret, event("mx-1", "jsm.coffee.brew", con, map[string]any{}))
	p.structured("soc", secret, event("mx-1", "jsm.coffee.brew", con, map[string]any{}))
	if got := metric(t, `jsm_ingested_events_total{outcome="rejected",transport="http"}`); got != before+1 {
		t.Fatalf("rejected counted %v times, want once", got-before)
	}
}

func metric(t *testing.T, series string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	telemetry.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return 0
}

// TestAuthenticatesBeforeReadingTheBody: a request that cannot be
// authenticated is answered 401 from its headers while its body is still
// coming (a server reading it would wait for ever): an unknown source, a
// wrong bearer token, no credentials, a signature too old, a signed
// request of a disabled source. A right token is read as usual.
func TestAuthenticatesBeforeReadingTheBody(t *testing.T) {
	p := start(t, ingest.Limits{})
	con := p.contract()
	secret := p.source(provider, "soc", integrationv1.Mapping_MAPPING_JSM, con)
	must[integrationv1.RegisterSourceResponse](t)(p.integration(provider).RegisterSource(ctx, connect.NewRequest(&integrationv1.RegisterSourceRequest{SourceId: "off", ContractIds: []string{con}})))
	must[integrationv1.DisableSourceResponse](t)(p.integration(provider).DisableSource(ctx, connect.NewRequest(&integrationv1.DisableSourceRequest{SourceId: "off"})))

	stalled := func(source string, h http.Header) int {
		t.Helper()
		pr, pw := io.Pipe()
		defer pw.Close()
		go func() { _, _ = pw.Write(make([]byte, 1024)) }() // then nothing more, never the end
		req, err := http.NewRequest(http.MethodPost, p.ingestURL(source), pr)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = 5 << 20
		req.Header = h
		c := &http.Client{Timeout: 10 * time.Second}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: no answer while the body was incomplete: %v", source, err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	ce := http.Header{"Content-Type": {cloudevents.ApplicationCloudEventsJSON}}
	with := func(kv ...string) http.Header {
		h := ce.Clone()
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	old := strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10)
	fresh := strconv.FormatInt(time.Now().Unix(), 10)
	for name, tc := range map[string]struct {
		source string
		h      http.Header
	}{
		"unknown source":       {"nope", with("Authorization", "Bearer "+secret)},
		"wrong token":          {"soc", with("Authorization", "Bearer whsec_wrong")},
		"no credentials":       {"soc", ce},
		"old signature":        {"soc", with("Webhook-Id", "m1", "Webhook-Timestamp", old, "Webhook-Signature", "v1,AAAA")},
		"signed, disabled src": {"off", with("Webhook-Id", "m1", "Webhook-Timestamp", fresh, "Webhook-Signature", "v1,AAAA")},
	} {
		if code := stalled(tc.source, tc.h); code != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", name, code)
		}
	}
	e := event("ok-1", "jsm.incident.report", con, report("OK1", "SEVERITY_LOW"))
	if a := p.structured("soc", secret, e); a.status != http.StatusOK {
		t.Fatalf("the right token: %d %s", a.status, a.raw)
	}
}
