package incidents_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/testkit"
	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1/contractsv1connect"
	incidentsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/incidents/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/incidents/v1/incidentsv1connect"
	"github.com/jsmplatform/jsm/services/contracts"
	"github.com/jsmplatform/jsm/services/incidents"
	readmodel "github.com/jsmplatform/jsm/services/incidents/projection"
)

func TestMain(m *testing.M) { testkit.Main(m) }

var ctx = context.Background()

type platform struct {
	t         *testing.T
	store     *eventstore.Store
	pool      *pgxpool.Pool
	clock     *testkit.Clock
	incidents *incidents.Service
	srv       *testkit.Services
}

// start runs the contracts and incidents services on a real NATS and
// PostgreSQL behind the production interceptors. The incidents service runs
// on the test's clock, its scheduler ticked by the tests.
func start(t *testing.T) *platform {
	t.Helper()
	n := testkit.StartNATS(t)
	p := &platform{t: t, store: n.Store(), pool: testkit.PostgresPool(t), clock: testkit.NewClock(time.Now().UTC().Truncate(time.Second))}
	c, err := contracts.New(ctx, contracts.Deps{Store: p.store, Pool: p.pool, ReadWait: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	p.incidents = p.newIncidents()
	p.srv = testkit.Serve(t, c, p.incidents)
	return p
}

// newIncidents builds one more instance of the incidents service on the
// same stream, database and clock (a restart, or a second replica).
func (p *platform) newIncidents() *incidents.Service {
	svc, err := incidents.New(ctx, incidents.Deps{Store: p.store, Pool: p.pool, Now: p.clock.Now, ReadWait: 2 * time.Second, SchedulerEvery: -1})
	if err != nil {
		p.t.Fatal(err)
	}
	return svc
}

func (p *platform) client(org string) incidentsv1connect.IncidentServiceClient {
	return incidentsv1connect.NewIncidentServiceClient(http.DefaultClient, p.srv.URL, p.srv.As(org, "security-officer"))
}

func (p *platform) contracts(org string) contractsv1connect.ContractServiceClient {
	return contractsv1connect.NewContractServiceClient(http.DefaultClient, p.srv.URL, p.srv.As(org, "org-admin"))
}

func must[T any](t *testing.T) func(*connect.Response[T], error) *T { return testkit.Must[T](t) }

func code(t *testing.T, want connect.Code, err error) {
	t.Helper()
	testkit.Code(t, want, err)
}

const (
	customer = "acme"
	provider = "itsec"
)

func deadline(sev commonv1.Severity, d time.Duration) *contractsv1.SeverityDeadline {
	return &contractsv1.SeverityDeadline{Severity: sev, Within: durationpb.New(d)}
}

// contract drafts a contract between acme and itsec with the notification
// deadlines given, signed by both, and returns its id.
func (p *platform) contract(deadlines ...*contractsv1.SeverityDeadline) string {
	t := p.t
	t.Helper()
	c := p.contracts(customer)
	d := must[contractsv1.DraftContractResponse](t)(c.DraftContract(ctx, connect.NewRequest(&contractsv1.DraftContractRequest{
		CustomerOrgId: customer, ProviderOrgId: provider, Title: "Managed SOC",
	})))
	p.setLevels(d.ContractId, deadlines...)
	return d.ContractId
}

// setLevels sets the notification deadlines as a new terms version signed by both.
func (p *platform) setLevels(id string, deadlines ...*contractsv1.SeverityDeadline) {
	t := p.t
	t.Helper()
	c, pr := p.contracts(customer), p.contracts(provider)
	must[contractsv1.SetServiceLevelsResponse](t)(c.SetServiceLevels(ctx, connect.NewRequest(&contractsv1.SetServiceLevelsRequest{ContractId: id, IncidentNotification: deadlines})))
	must[contractsv1.SignContractResponse](t)(c.SignContract(ctx, connect.NewRequest(&contractsv1.SignContractRequest{ContractId: id})))
	must[contractsv1.SignContractResponse](t)(pr.SignContract(ctx, connect.NewRequest(&contractsv1.SignContractRequest{ContractId: id})))
}

func (p *platform) report(org, contractID string, sev commonv1.Severity, aware time.Time) *incidentsv1.ReportIncidentResponse {
	p.t.Helper()
	return must[incidentsv1.ReportIncidentResponse](p.t)(p.client(org).ReportIncident(ctx, connect.NewRequest(&incidentsv1.ReportIncidentRequest{
		ContractId: contractID, Title: "Ransomware on file server", Severity: sev, AwareAt: timestamppb.New(aware),
		Category: "malware", AffectedServices: []string{"file-share"},
		ExternalReferences: []*incidentsv1.ExternalReference{{System: "servicenow", Id: "INC0012345"}},
	})))
}

func (p *platform) get(org, id string, minPosition uint64) *incidentsv1.Incident {
	p.t.Helper()
	return must[incidentsv1.GetIncidentResponse](p.t)(p.client(org).GetIncident(ctx, connect.NewRequest(&incidentsv1.GetIncidentRequest{IncidentId: id, MinPosition: minPosition}))).Incident
}

func clockOf(t *testing.T, inc *incidentsv1.Incident, kind incidentsv1.ClockKind, party string) *incidentsv1.Clock {
	t.Helper()
	var found *incidentsv1.Clock
	for _, k := range inc.GetClocks() {
		if k.GetKind() == kind && k.GetPartyOrgId() == party {
			found = k // the latest of its kind
		}
	}
	if found == nil {
		t.Fatalf("no %s clock for %s in %v", kind, party, inc.GetClocks())
	}
	return found
}

func countEvents(t *testing.T, store *eventstore.Store, id, typ string) int {
	t.Helper()
	return testkit.CountEvents(t, store, readmodel.IncidentType, id, typ)
}

func TestIncidentWalkthrough(t *testing.T) {
	p := start(t)
	contractID := p.contract(deadline(commonv1.Severity_SEVERITY_CRITICAL, 4*time.Hour), deadline(commonv1.Severity_SEVERITY_HIGH, 24*time.Hour))
	prov, cust := p.client(provider), p.client(customer)
	aware := p.clock.Now().Add(-time.Hour)

	r := p.report(provider, contractID, commonv1.Severity_SEVERITY_HIGH, aware)
	inc := p.get(customer, r.IncidentId, r.Position)
	if inc.GetStatus() != incidentsv1.IncidentStatus_INCIDENT_STATUS_OPEN || inc.GetSeverity() != commonv1.Severity_SEVERITY_HIGH ||
		inc.GetContractId() != contractID || inc.GetReporterOrgId() != provider {
		t.Fatalf("reported incident = %v", inc)
	}
	notice := clockOf(t, inc, incidentsv1.ClockKind_CLOCK_KIND_PARTY_NOTIFICATION, provider)
	if got, want := notice.GetDueAt().AsTime(), aware.Add(24*time.Hour); !got.Equal(want) {
		t.Fatalf("notification due %s, want %s (aware + the contract's 24h for high)", got, want)
	}

	// Reassessed critical: the contract's 4h from the reassessment, earlier than the 24h.
	p.clock.Advance(10 * time.Minute)
	must[incidentsv1.AssessIncidentResponse](t)(cust.AssessIncident(ctx, connect.NewRequest(&incidentsv1.AssessIncidentRequest{
		IncidentId: r.IncidentId, Severity: commonv1.Severity_SEVERITY_CRITICAL, Rationale: "domain controller affected",
	})))
	reassessedAt := p.clock.Now()

	p.clock.Advance(10 * time.Minute)
	cl := must[incidentsv1.ClassifyIncidentResponse](t)(prov.ClassifyIncident(ctx, connect.NewRequest(&incidentsv1.ClassifyIncidentRequest{
		IncidentId: r.IncidentId, Significant: true, Major: true, Criteria: []string{"service outage > 2h"},
	})))
	classifiedAt := p.clock.Now()
	inc = p.get(provider, r.IncidentId, cl.Position)
	if got, want := clockOf(t, inc, incidentsv1.ClockKind_CLOCK_KIND_PARTY_NOTIFICATION, provider).GetDueAt().AsTime(), reassessedAt.Add(4*time.Hour); !got.Equal(want) {
		t.Fatalf("after reassessment notification due %s, want %s", got, want)
	}
	for kind, want := range map[incidentsv1.ClockKind]time.Time{
		incidentsv1.ClockKind_CLOCK_KIND_NIS2_EARLY_WARNING: aware.Add(24 * time.Hour),
		incidentsv1.ClockKind_CLOCK_KIND_NIS2_NOTIFICATION:  aware.Add(72 * time.Hour),
		incidentsv1.ClockKind_CLOCK_KIND_DORA_INITIAL:       classifiedAt.Add(4 * time.Hour),
	} {
		if got := clockOf(t, inc, kind, provider).GetDueAt().AsTime(); !got.Equal(want) {
			t.Errorf("%s due %s, want %s", kind, got, want)
		}
	}

	n := must[incidentsv1.NotifyPartyResponse](t)(prov.NotifyParty(ctx, connect.NewRequest(&incidentsv1.NotifyPartyRequest{
		IncidentId: r.IncidentId, Channel: "email", Content: "Critical incident, see INC0012345",
	})))
	_, err := prov.AcknowledgeNotification(ctx, connect.NewRequest(&incidentsv1.AcknowledgeNotificationRequest{IncidentId: r.IncidentId, NotificationId: n.NotificationId}))
	code(t, connect.CodePermissionDenied, err) // only the recipient acknowledges
	must[incidentsv1.AcknowledgeNotificationResponse](t)(cust.AcknowledgeNotification(ctx, connect.NewRequest(&incidentsv1.AcknowledgeNotificationRequest{IncidentId: r.IncidentId, NotificationId: n.NotificationId})))
	must[incidentsv1.RecordRegulatorySubmissionResponse](t)(prov.RecordRegulatorySubmission(ctx, connect.NewRequest(&incidentsv1.RecordRegulatorySubmissionRequest{
		IncidentId: r.IncidentId, Regime: incidentsv1.Regime_REGIME_DORA, Kind: incidentsv1.SubmissionKind_SUBMISSION_KIND_INITIAL, Reference: "BAFIN-2026-0042", Authority: "BaFin",
	})))
	_, err = prov.RecordRegulatorySubmission(ctx, connect.NewRequest(&incidentsv1.RecordRegulatorySubmissionRequest{
		IncidentId: r.IncidentId, Regime: incidentsv1.Regime_REGIME_NIS2, Kind: incidentsv1.SubmissionKind_SUBMISSION_KIND_FINAL_REPORT, Reference: "x",
	}))
	code(t, connect.CodeFailedPrecondition, err) // the final report follows the notification
	_, err = cust.RecordRegulatorySubmission(ctx, connect.NewRequest(&incidentsv1.RecordRegulatorySubmissionRequest{
		IncidentId: r.IncidentId, Regime: incidentsv1.Regime_REGIME_NIS2, Kind: incidentsv1.SubmissionKind_SUBMISSION_KIND_EARLY_WARNING, Reference: "x",
	}))
	code(t, connect.CodeFailedPrecondition, err) // the customer has not classified it

	task := must[incidentsv1.AssignTaskResponse](t)(prov.AssignTask(ctx, connect.NewRequest(&incidentsv1.AssignTaskRequest{
		IncidentId: r.IncidentId, Title: "Isolate the affected VLAN", AssigneeOrgId: customer, DueAt: timestamppb.New(p.clock.Now().Add(2 * time.Hour)),
	})))
	_, err = prov.CompleteTask(ctx, connect.NewRequest(&incidentsv1.CompleteTaskRequest{IncidentId: r.IncidentId, TaskId: task.TaskId}))
	code(t, connect.CodePermissionDenied, err)
	must[incidentsv1.CompleteTaskResponse](t)(cust.CompleteTask(ctx, connect.NewRequest(&incidentsv1.CompleteTaskRequest{IncidentId: r.IncidentId, TaskId: task.TaskId, Note: "done"})))
	must[incidentsv1.AddTimelineEntryResponse](t)(cust.AddTimelineEntry(ctx, connect.NewRequest(&incidentsv1.AddTimelineEntryRequest{IncidentId: r.IncidentId, Text: "Backups verified clean"})))
	esc := must[incidentsv1.EscalateIncidentResponse](t)(cust.EscalateIncident(ctx, connect.NewRequest(&incidentsv1.EscalateIncidentRequest{IncidentId: r.IncidentId, Reason: "CISO informed"})))
	if esc.Level != 1 {
		t.Fatalf("escalation level %d, want 1", esc.Level)
	}
	must[incidentsv1.ContainIncidentResponse](t)(prov.ContainIncident(ctx, connect.NewRequest(&incidentsv1.ContainIncidentRequest{IncidentId: r.IncidentId, Summary: "VLAN isolated"})))
	must[incidentsv1.ResolveIncidentResponse](t)(prov.ResolveIncident(ctx, connect.NewRequest(&incidentsv1.ResolveIncidentRequest{IncidentId: r.IncidentId, Summary: "Restored from backup"})))
	_, err = prov.CloseIncident(ctx, connect.NewRequest(&incidentsv1.CloseIncidentRequest{IncidentId: r.IncidentId}))
	code(t, connect.CodeFailedPrecondition, err) // a critical incident is reviewed first
	must[incidentsv1.RecordReviewResponse](t)(cust.RecordReview(ctx, connect.NewRequest(&incidentsv1.RecordReviewRequest{
		IncidentId: r.IncidentId, RootCause: "Unpatched VPN appliance", LessonsLearned: []string{"patch edge devices first"}, FollowUpMeasures: []string{"monthly VPN patch window"},
	})))
	closed := must[incidentsv1.CloseIncidentResponse](t)(prov.CloseIncident(ctx, connect.NewRequest(&incidentsv1.CloseIncidentRequest{IncidentId: r.IncidentId})))

	inc = p.get(customer, r.IncidentId, closed.Position)
	if inc.GetStatus() != incidentsv1.IncidentStatus_INCIDENT_STATUS_CLOSED || inc.GetReview().GetRootCause() != "Unpatched VPN appliance" || inc.GetEscalationLevel() != 1 {
		t.Fatalf("closed incident = %v", inc)
	}
	if k := clockOf(t, inc, incidentsv1.ClockKind_CLOCK_KIND_PARTY_NOTIFICATION, provider); k.GetMetAt() == nil || k.GetOverdue() {
		t.Fatalf("notification clock %v: want met in time", k)
	}
	if k := clockOf(t, inc, incidentsv1.ClockKind_CLOCK_KIND_DORA_INITIAL, provider); k.GetMetAt() == nil {
		t.Fatalf("DORA initial clock %v: want met", k)
	}
	if k := clockOf(t, inc, incidentsv1.ClockKind_CLOCK_KIND_DORA_INTERMEDIATE, provider); k.GetMetAt() != nil || !k.GetDueAt().AsTime().Equal(p.clock.Now().Add(72*time.Hour)) {
		t.Fatalf("DORA intermediate clock %v: want open, due 72h after the initial", k)
	}
	if k := clockOf(t, inc, incidentsv1.ClockKind_CLOCK_KIND_TASK, customer); k.GetMetAt() == nil {
		t.Fatalf("task clock %v: want met", k)
	}
	if got := len(inc.GetTimeline()); got != 14 {
		t.Fatalf("timeline has %d entries, want one per event (14): %v", got, inc.GetTimeline())
	}
	if n := inc.GetNotifications()[0]; n.GetAcknowledgedAt() == nil || n.GetToOrgId() != customer {
		t.Fatalf("notification %v: want acknowledged by the customer", n)
	}
	if c := inc.GetClassifications(); len(c) != 1 || c[0].GetOrgId() != provider || !c[0].GetMajor() {
		t.Fatalf("classifications %v", c)
	}

	// Reopened after closing, it is open again.
	re := must[incidentsv1.ReopenIncidentResponse](t)(cust.ReopenIncident(ctx, connect.NewRequest(&incidentsv1.ReopenIncidentRequest{IncidentId: r.IncidentId, Reason: "Reinfection"})))
	live := p.get(provider, r.IncidentId, re.Position)
	if st := live.GetStatus(); st != incidentsv1.IncidentStatus_INCIDENT_STATUS_OPEN {
		t.Fatalf("reopened incident is %s", st)
	}

	// The read model rebuilt from the stream shows the same incident.
	if err := p.incidents.Projector().Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	if rebuilt := p.get(provider, r.IncidentId, re.Position); !proto.Equal(rebuilt, live) {
		t.Fatalf("after a rebuild:\n%v\nbefore:\n%v", rebuilt, live)
	}
}

func TestOtherOrgsSeeNothing(t *testing.T) {
	p := start(t)
	contractID := p.contract(deadline(commonv1.Severity_SEVERITY_HIGH, 24*time.Hour))
	r := p.report(customer, contractID, commonv1.Severity_SEVERITY_HIGH, p.clock.Now())
	p.get(provider, r.IncidentId, r.Position) // the other party sees it

	outsider := p.client("mallory")
	_, err := outsider.GetIncident(ctx, connect.NewRequest(&incidentsv1.GetIncidentRequest{IncidentId: r.IncidentId, MinPosition: r.Position}))
	code(t, connect.CodeNotFound, err)
	_, err = outsider.AssessIncident(ctx, connect.NewRequest(&incidentsv1.AssessIncidentRequest{IncidentId: r.IncidentId, Severity: commonv1.Severity_SEVERITY_LOW}))
	code(t, connect.CodeNotFound, err)
	_, err = outsider.AddTimelineEntry(ctx, connect.NewRequest(&incidentsv1.AddTimelineEntryRequest{IncidentId: r.IncidentId, Text: "hello"}))
	code(t, connect.CodeNotFound, err)
	_, err = outsider.ReportIncident(ctx, connect.NewRequest(&incidentsv1.ReportIncidentRequest{
		ContractId: contractID, Title: "x", Severity: commonv1.Severity_SEVERITY_LOW, AwareAt: timestamppb.New(p.clock.Now()),
	}))
	code(t, connect.CodeNotFound, err)
	_, err = outsider.ScheduleExercise(ctx, connect.NewRequest(&incidentsv1.ScheduleExerciseRequest{
		ContractId: contractID, Kind: incidentsv1.ExerciseKind_EXERCISE_KIND_TABLETOP, Title: "x", ScheduledFor: timestamppb.New(p.clock.Now()),
	}))
	code(t, connect.CodeNotFound, err)
	list := must[incidentsv1.ListIncidentsResponse](t)(outsider.ListIncidents(ctx, connect.NewRequest(&incidentsv1.ListIncidentsRequest{ContractId: contractID, MinPosition: r.Position})))
	if len(list.Incidents) != 0 {
		t.Fatalf("outsider lists %d incidents", len(list.Incidents))
	}
	if n := countEvents(t, p.store, r.IncidentId, "jsm.incidents.v1.IncidentAssessed"); n != 0 {
		t.Fatalf("outsider's reassessment stored %d events", n)
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	p := start(t)
	contractID := p.contract(deadline(commonv1.Severity_SEVERITY_HIGH, 24*time.Hour))
	r := p.report(customer, contractID, commonv1.Severity_SEVERITY_HIGH, p.clock.Now())
	before, err := p.store.LastPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := p.client(customer)
	now := p.clock.Now()
	for name, call := range map[string]func() error{
		"no aware_at": func() error {
			_, err := c.ReportIncident(ctx, connect.NewRequest(&incidentsv1.ReportIncidentRequest{ContractId: contractID, Title: "x", Severity: commonv1.Severity_SEVERITY_LOW}))
			return err
		},
		"aware_at in the future": func() error {
			_, err := c.ReportIncident(ctx, connect.NewRequest(&incidentsv1.ReportIncidentRequest{ContractId: contractID, Title: "x", Severity: commonv1.Severity_SEVERITY_LOW, AwareAt: timestamppb.New(now.Add(time.Hour))}))
			return err
		},
		"no severity": func() error {
			_, err := c.ReportIncident(ctx, connect.NewRequest(&incidentsv1.ReportIncidentRequest{ContractId: contractID, Title: "x", AwareAt: timestamppb.New(now)}))
			return err
		},
		"contract id not a uuid": func() error {
			_, err := c.ReportIncident(ctx, connect.NewRequest(&incidentsv1.ReportIncidentRequest{ContractId: "nope", Title: "x", Severity: commonv1.Severity_SEVERITY_LOW, AwareAt: timestamppb.New(now)}))
			return err
		},
		"task due in the past": func() error {
			_, err := c.AssignTask(ctx, connect.NewRequest(&incidentsv1.AssignTaskRequest{IncidentId: r.IncidentId, Title: "x", AssigneeOrgId: provider, DueAt: timestamppb.New(now.Add(-time.Minute))}))
			return err
		},
		"task for an outsider": func() error {
			_, err := c.AssignTask(ctx, connect.NewRequest(&incidentsv1.AssignTaskRequest{IncidentId: r.IncidentId, Title: "x", AssigneeOrgId: "mallory", DueAt: timestamppb.New(now.Add(time.Hour))}))
			return err
		},
		"submission kind of another regime": func() error {
			_, err := c.RecordRegulatorySubmission(ctx, connect.NewRequest(&incidentsv1.RecordRegulatorySubmissionRequest{IncidentId: r.IncidentId, Regime: incidentsv1.Regime_REGIME_NIS2, Kind: incidentsv1.SubmissionKind_SUBMISSION_KIND_INITIAL, Reference: "x"}))
			return err
		},
		"bad page token": func() error {
			_, err := c.ListIncidents(ctx, connect.NewRequest(&incidentsv1.ListIncidentsRequest{PageToken: "!!"}))
			return err
		},
	} {
		t.Run(name, func(t *testing.T) { code(t, connect.CodeInvalidArgument, call()) })
	}
	_, err = c.AcknowledgeNotification(ctx, connect.NewRequest(&incidentsv1.AcknowledgeNotificationRequest{IncidentId: r.IncidentId, NotificationId: "missing"}))
	code(t, connect.CodeNotFound, err)
	after, err := p.store.LastPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Fatalf("rejected requests moved the stream from %d to %d", before, after)
	}
}

func TestReportNeedsAContractInForce(t *testing.T) {
	p := start(t)
	d := must[contractsv1.DraftContractResponse](t)(p.contracts(customer).DraftContract(ctx, connect.NewRequest(&contractsv1.DraftContractRequest{
		CustomerOrgId: customer, ProviderOrgId: provider, Title: "Draft only",
	})))
	_, err := p.client(customer).ReportIncident(ctx, connect.NewRequest(&incidentsv1.ReportIncidentRequest{
		ContractId: d.ContractId, Title: "x", Severity: commonv1.Severity_SEVERITY_LOW, AwareAt: timestamppb.New(p.clock.Now()),
	}))
	code(t, connect.CodeFailedPrecondition, err)
	_, err = p.client(customer).ReportIncident(ctx, connect.NewRequest(&incidentsv1.ReportIncidentRequest{
		ContractId: "0198a5d2-7f6b-7c3e-9d4f-2a1b3c4d5e6f", Title: "x", Severity: commonv1.Severity_SEVERITY_LOW, AwareAt: timestamppb.New(p.clock.Now()),
	}))
	code(t, connect.CodeNotFound, err)
}

func TestSLAChangeAppliesToLaterIncidents(t *testing.T) {
	p := start(t)
	contractID := p.contract(deadline(commonv1.Severity_SEVERITY_CRITICAL, 4*time.Hour))
	aware := p.clock.Now()
	before := p.report(customer, contractID, commonv1.Severity_SEVERITY_CRITICAL, aware)

	p.setLevels(contractID, deadline(commonv1.Severity_SEVERITY_CRITICAL, time.Hour))
	after := p.report(customer, contractID, commonv1.Severity_SEVERITY_CRITICAL, aware)

	old := p.get(customer, before.IncidentId, after.Position)
	if got := clockOf(t, old, incidentsv1.ClockKind_CLOCK_KIND_PARTY_NOTIFICATION, customer).GetDueAt().AsTime(); !got.Equal(aware.Add(4 * time.Hour)) {
		t.Fatalf("incident reported before the change: due %s, want the old 4h", got)
	}
	fresh := p.get(customer, after.IncidentId, after.Position)
	if got := clockOf(t, fresh, incidentsv1.ClockKind_CLOCK_KIND_PARTY_NOTIFICATION, customer).GetDueAt().AsTime(); !got.Equal(aware.Add(time.Hour)) {
		t.Fatalf("incident reported after the change: due %s, want the new 1h", got)
	}
}

func TestSchedulerRecordsOverdueOnce(t *testing.T) {
	p := start(t)
	contractID := p.contract(deadline(commonv1.Severity_SEVERITY_CRITICAL, 4*time.Hour))
	aware := p.clock.Now().Add(-3 * time.Hour)
	r := p.report(provider, contractID, commonv1.Severity_SEVERITY_CRITICAL, aware)
	due := aware.Add(4 * time.Hour)
	p.get(provider, r.IncidentId, r.Position) // the scheduler reads the read model

	tick := func(s *incidents.Service) int {
		t.Helper()
		n, err := s.Scheduler().Tick(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	p.clock.Advance(due.Sub(p.clock.Now())) // exactly at the deadline: not overdue
	if n := tick(p.incidents); n != 0 {
		t.Fatalf("at the deadline the scheduler recorded %d", n)
	}
	p.clock.Advance(time.Second)
	if n := tick(p.incidents); n != 1 {
		t.Fatalf("one second after the deadline the scheduler recorded %d, want 1", n)
	}
	if n := tick(p.incidents); n != 0 { // the read model may not show it yet
		t.Fatalf("a second tick recorded %d more", n)
	}
	restarted := p.newIncidents() // a fresh process: no cache, same stream and database
	if n := tick(restarted); n != 0 {
		t.Fatalf("after a restart the scheduler recorded %d more", n)
	}
	if n := countEvents(t, p.store, r.IncidentId, "jsm.incidents.v1.ClockOverdue"); n != 1 {
		t.Fatalf("%d ClockOverdue events, want exactly 1", n)
	}

	last, _ := p.store.LastPosition(ctx)
	inc := p.get(customer, r.IncidentId, last)
	if k := clockOf(t, inc, incidentsv1.ClockKind_CLOCK_KIND_PARTY_NOTIFICATION, provider); !k.GetOverdue() || k.GetMetAt() != nil || !inc.GetOverdue() {
		t.Fatalf("clock %v, incident overdue %t: want overdue and unmet", k, inc.GetOverdue())
	}
	c := p.client(customer)
	for _, tc := range []struct {
		req  *incidentsv1.ListIncidentsRequest
		want int
	}{
		{&incidentsv1.ListIncidentsRequest{OverdueOnly: true}, 1},
		{&incidentsv1.ListIncidentsRequest{OverdueClock: incidentsv1.ClockKind_CLOCK_KIND_PARTY_NOTIFICATION}, 1},
		{&incidentsv1.ListIncidentsRequest{OverdueClock: incidentsv1.ClockKind_CLOCK_KIND_NIS2_EARLY_WARNING}, 0},
		{&incidentsv1.ListIncidentsRequest{Severity: commonv1.Severity_SEVERITY_LOW}, 0},
		{&incidentsv1.ListIncidentsRequest{Status: incidentsv1.IncidentStatus_INCIDENT_STATUS_OPEN, ContractId: contractID}, 1},
	} {
		got := must[incidentsv1.ListIncidentsResponse](t)(c.ListIncidents(ctx, connect.NewRequest(tc.req)))
		if len(got.Incidents) != tc.want {
			t.Errorf("%v: %d incidents, want %d", tc.req, len(got.Incidents), tc.want)
		}
	}

	// Notified late, the clock is met but stays overdue, and no second ClockOverdue.
	n := must[incidentsv1.NotifyPartyResponse](t)(p.client(provider).NotifyParty(ctx, connect.NewRequest(&incidentsv1.NotifyPartyRequest{IncidentId: r.IncidentId, Channel: "phone", Content: "sorry, late"})))
	inc = p.get(customer, r.IncidentId, n.Position)
	if k := clockOf(t, inc, incidentsv1.ClockKind_CLOCK_KIND_PARTY_NOTIFICATION, provider); !k.GetOverdue() || k.GetMetAt() == nil || inc.GetOverdue() {
		t.Fatalf("clock %v, incident overdue %t: want met late", k, inc.GetOverdue())
	}
	if n := countEvents(t, p.store, r.IncidentId, "jsm.incidents.v1.ClockOverdue"); n != 1 {
		t.Fatalf("%d ClockOverdue events after the late notice, want 1", n)
	}
	// Met late, the clock no longer makes the incident one to chase.
	for _, req := range []*incidentsv1.ListIncidentsRequest{
		{OverdueOnly: true, MinPosition: n.Position},
		{OverdueClock: incidentsv1.ClockKind_CLOCK_KIND_PARTY_NOTIFICATION, MinPosition: n.Position},
	} {
		if got := must[incidentsv1.ListIncidentsResponse](t)(c.ListIncidents(ctx, connect.NewRequest(req))); len(got.Incidents) != 0 {
			t.Errorf("%v after the late notice: %d incidents, want 0", req, len(got.Incidents))
		}
	}
}

func TestRetriedReportOpensOneIncident(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	req := &incidentsv1.ReportIncidentRequest{
		ContractId: contractID, Title: "Phishing wave", Severity: commonv1.Severity_SEVERITY_MEDIUM, AwareAt: timestamppb.New(p.clock.Now()), RequestId: "itsm-42",
	}
	c := p.client(customer)
	first := must[incidentsv1.ReportIncidentResponse](t)(c.ReportIncident(ctx, connect.NewRequest(req)))
	second := must[incidentsv1.ReportIncidentResponse](t)(c.ReportIncident(ctx, connect.NewRequest(req)))
	if first.IncidentId != second.IncidentId || first.Position != second.Position {
		t.Fatalf("retry answered %v, first %v", second, first)
	}
	if n := countEvents(t, p.store, first.IncidentId, "jsm.incidents.v1.IncidentReported"); n != 1 {
		t.Fatalf("%d IncidentReported events, want 1", n)
	}
	// A medium incident without a contract deadline has no notification clock.
	if clocks := p.get(customer, first.IncidentId, first.Position).GetClocks(); len(clocks) != 0 {
		t.Fatalf("clocks %v, want none", clocks)
	}
}

func TestListPagesNewestFirst(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	var ids []string
	var last uint64
	for range 5 {
		r := p.report(customer, contractID, commonv1.Severity_SEVERITY_LOW, p.clock.Now())
		ids = append(ids, r.IncidentId)
		last = r.Position
		p.clock.Advance(time.Minute)
	}
	c := p.client(provider)
	var got []string
	token := ""
	for {
		page := must[incidentsv1.ListIncidentsResponse](t)(c.ListIncidents(ctx, connect.NewRequest(&incidentsv1.ListIncidentsRequest{PageSize: 2, PageToken: token, MinPosition: last})))
		for _, inc := range page.Incidents {
			got = append(got, inc.GetIncidentId())
			if len(inc.GetTimeline()) != 0 {
				t.Fatal("lists leave the timeline out")
			}
		}
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	if len(got) != 5 {
		t.Fatalf("paged through %d incidents, want 5", len(got))
	}
	for i := range got {
		if got[i] != ids[len(ids)-1-i] {
			t.Fatalf("order %v, want newest first %v", got, ids)
		}
	}
}

func TestExercises(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	c, pr := p.client(customer), p.client(provider)
	x := must[incidentsv1.ScheduleExerciseResponse](t)(c.ScheduleExercise(ctx, connect.NewRequest(&incidentsv1.ScheduleExerciseRequest{
		ContractId: contractID, Kind: incidentsv1.ExerciseKind_EXERCISE_KIND_RESTORE_TEST, Title: "Restore the ERP database",
		ScheduledFor: timestamppb.New(p.clock.Now().Add(24 * time.Hour)),
	})))
	p.clock.Advance(25 * time.Hour)
	res := must[incidentsv1.RecordExerciseResultResponse](t)(pr.RecordExerciseResult(ctx, connect.NewRequest(&incidentsv1.RecordExerciseResultRequest{
		ExerciseId: x.ExerciseId, Outcome: incidentsv1.ExerciseOutcome_EXERCISE_OUTCOME_PASSED_WITH_FINDINGS, Summary: "restored in 3h", Findings: []string{"runbook outdated"},
	})))
	_, err := pr.RecordExerciseResult(ctx, connect.NewRequest(&incidentsv1.RecordExerciseResultRequest{ExerciseId: x.ExerciseId, Outcome: incidentsv1.ExerciseOutcome_EXERCISE_OUTCOME_FAILED}))
	code(t, connect.CodeFailedPrecondition, err)
	list := must[incidentsv1.ListExercisesResponse](t)(c.ListExercises(ctx, connect.NewRequest(&incidentsv1.ListExercisesRequest{ContractId: contractID, MinPosition: res.Position})))
	if len(list.Exercises) != 1 || list.Exercises[0].GetOutcome() != incidentsv1.ExerciseOutcome_EXERCISE_OUTCOME_PASSED_WITH_FINDINGS ||
		list.Exercises[0].GetFindings()[0] != "runbook outdated" || list.Exercises[0].GetScheduledByOrgId() != customer {
		t.Fatalf("exercises %v", list.Exercises)
	}
	none := must[incidentsv1.ListExercisesResponse](t)(p.client("mallory").ListExercises(ctx, connect.NewRequest(&incidentsv1.ListExercisesRequest{ContractId: contractID, MinPosition: res.Position})))
	if len(none.Exercises) != 0 {
		t.Fatalf("an outsider lists %d exercises", len(none.Exercises))
	}
}

// One tick pages through every due clock, a page at a time.
func TestSchedulerPagesThroughDueClocks(t *testing.T) {
	p := start(t)
	contractID := p.contract(deadline(commonv1.Severity_SEVERITY_CRITICAL, 4*time.Hour))
	var last uint64
	for range 3 {
		last = p.report(provider, contractID, commonv1.Severity_SEVERITY_CRITICAL, p.clock.Now().Add(-5*time.Hour)).Position
	}
	p.get(provider, p.report(provider, contractID, commonv1.Severity_SEVERITY_LOW, p.clock.Now()).IncidentId, last+1)
	s := p.incidents.Scheduler()
	s.Batch = 1
	if n, err := s.Tick(ctx); err != nil || n != 3 {
		t.Fatalf("one tick with pages of one recorded %d (%v), want 3", n, err)
	}
}
