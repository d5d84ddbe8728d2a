package reporting_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ledongthuc/pdf"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/testkit"
	auditsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/audits/v1"
	changeadvisoryv1 "github.com/jsmplatform/jsm/proto/gen/jsm/changeadvisory/v1"
	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1/contractsv1connect"
	incidentsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/incidents/v1"
	patchingv1 "github.com/jsmplatform/jsm/proto/gen/jsm/patching/v1"
	reportingv1 "github.com/jsmplatform/jsm/proto/gen/jsm/reporting/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/reporting/v1/reportingv1connect"
	"github.com/jsmplatform/jsm/services/contracts"
	"github.com/jsmplatform/jsm/services/reporting"
)

func TestMain(m *testing.M) { testkit.Main(m) }

var ctx = context.Background()

const (
	customer = "acme"
	provider = "itsec"
	outsider = "evilcorp"

	hour = time.Hour
	day  = 24 * time.Hour

	critical = commonv1.Severity_SEVERITY_CRITICAL
	high     = commonv1.Severity_SEVERITY_HIGH
	medium   = commonv1.Severity_SEVERITY_MEDIUM
	low      = commonv1.Severity_SEVERITY_LOW
)

// March 2026, the fixture's period.
var (
	march = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	april = time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
)

type platform struct {
	t         *testing.T
	store     *eventstore.Store
	pool      *pgxpool.Pool
	clock     *testkit.Clock
	reporting *reporting.Service
	srv       *testkit.Services
	contract  string
	versions  map[string]uint64   // the last position of each aggregate the fixture appended to
	alter     func(proto.Message) // when set, emit changes each event with it before appending
}

// start runs the contracts and reporting services on a real NATS and
// PostgreSQL, on the test's clock (27 February 2026), and signs a contract
// with a monthly report cadence.
func start(t *testing.T) *platform {
	t.Helper()
	n := testkit.StartNATS(t)
	p := &platform{t: t, store: n.Store(), pool: testkit.PostgresPool(t), clock: testkit.NewClock(time.Date(2026, 2, 27, 0, 0, 0, 0, time.UTC))}
	c, err := contracts.New(ctx, contracts.Deps{Store: p.store, Pool: p.pool, Now: p.clock.Now, ReadWait: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	p.reporting = p.newService()
	p.srv = testkit.Serve(t, c, p.reporting)
	cu := contractsv1connect.NewContractServiceClient(http.DefaultClient, p.srv.URL, p.srv.As(customer, "org-admin"))
	pr := contractsv1connect.NewContractServiceClient(http.DefaultClient, p.srv.URL, p.srv.As(provider, "org-admin"))
	d := testkit.Must[contractsv1.DraftContractResponse](t)(cu.DraftContract(ctx, connect.NewRequest(&contractsv1.DraftContractRequest{
		CustomerOrgId: customer, ProviderOrgId: provider, Title: "Managed SOC",
		RequestId: "fixture-contract", // the same contract id on every platform the tests start
	})))
	testkit.Must[contractsv1.SetServiceLevelsResponse](t)(cu.SetServiceLevels(ctx, connect.NewRequest(&contractsv1.SetServiceLevelsRequest{
		ContractId: d.ContractId, ReportCadence: contractsv1.ReportCadence_REPORT_CADENCE_MONTHLY,
	})))
	testkit.Must[contractsv1.SignContractResponse](t)(cu.SignContract(ctx, connect.NewRequest(&contractsv1.SignContractRequest{ContractId: d.ContractId})))
	testkit.Must[contractsv1.SignContractResponse](t)(pr.SignContract(ctx, connect.NewRequest(&contractsv1.SignContractRequest{ContractId: d.ContractId})))
	p.contract = d.ContractId
	return p
}

// newService builds one more instance of the reporting service on the same
// stream, database and clock (a restart, or a second replica); the tests
// tick its scheduler.
func (p *platform) newService() *reporting.Service {
	p.t.Helper()
	svc, err := reporting.New(ctx, reporting.Deps{Store: p.store, Pool: p.pool, Now: p.clock.Now, ReadWait: 2 * time.Second, SchedulerEvery: -1})
	if err != nil {
		p.t.Fatal(err)
	}
	return svc
}

func (p *platform) client(org, role string) reportingv1connect.ReportingServiceClient {
	return reportingv1connect.NewReportingServiceClient(http.DefaultClient, p.srv.URL, p.srv.As(org, role))
}

func must[T any](t *testing.T) func(*connect.Response[T], error) *T { return testkit.Must[T](t) }

func ts(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

// at is a time in March 2026.
func at(d int, h int) time.Time { return time.Date(2026, 3, d, h, 0, 0, 0, time.UTC) }

// emit appends one event of another area to the stream, as that area would.
func (p *platform) emit(typ, id string, when time.Time, m proto.Message) uint64 {
	p.t.Helper()
	if p.alter != nil {
		p.alter(m)
	}
	e, err := event.New(event.Envelope{
		ID: event.NewID(), Source: "/jsm/" + strings.Split(typ, ".")[0], AggregateType: typ, AggregateID: id,
		Contract: p.contract, Parties: event.Parties{Customer: customer, Provider: provider},
		Actor: event.Actor{Org: provider, User: "fixture"}, Time: when,
	}, m)
	if err != nil {
		p.t.Fatal(err)
	}
	if p.versions == nil {
		p.versions = map[string]uint64{}
	}
	pos, err := p.store.Append(ctx, p.versions[typ+id], e)
	if err != nil {
		p.t.Fatal(err)
	}
	p.versions[typ+id] = pos
	return pos
}

// fixture appends a month of events of every area; the expected KPIs of
// March 2026 are computed by hand next to each event.
func (p *platform) fixture() uint64 {
	c := p.contract
	deadlines := []*incidentsv1.NotificationDeadline{{Severity: high, Within: durationpb.New(4 * hour)}, {Severity: critical, Within: durationpb.New(hour)}, {Severity: low, Within: durationpb.New(day)}}
	reported := func(id string, sev commonv1.Severity, aware time.Time) *incidentsv1.IncidentReported {
		return &incidentsv1.IncidentReported{IncidentId: id, ContractId: c, CustomerOrgId: customer, ProviderOrgId: provider, ReporterOrgId: provider,
			Title: "incident " + id, Severity: sev, AwareAt: ts(aware), ReportedAt: ts(aware), NotificationDeadlines: deadlines}
	}
	notified := func(id string, when time.Time) *incidentsv1.PartyNotified {
		return &incidentsv1.PartyNotified{IncidentId: id, NotificationId: id + "-n", FromOrgId: provider, ToOrgId: customer, Channel: "email", Severity: high, NotifiedAt: ts(when)}
	}
	const inc = "incidents.incident"
	// inc1: high, aware 2 Mar 10:00, notified 12:00 (deadline 14:00: met; 2 h), resolved 3 Mar 10:00 (24 h).
	p.emit(inc, "11111111-0000-4000-8000-000000000001", at(2, 10), reported("11111111-0000-4000-8000-000000000001", high, at(2, 10)))
	p.emit(inc, "11111111-0000-4000-8000-000000000001", at(2, 12), notified("11111111-0000-4000-8000-000000000001", at(2, 12)))
	p.emit(inc, "11111111-0000-4000-8000-000000000001", at(3, 10), &incidentsv1.IncidentResolved{IncidentId: "11111111-0000-4000-8000-000000000001", ResolvedAt: ts(at(3, 10))})
	// inc2: critical, aware 10 Mar 08:00, notified 10:00 (deadline 09:00: late; 2 h), open.
	p.emit(inc, "11111111-0000-4000-8000-000000000002", at(10, 8), reported("11111111-0000-4000-8000-000000000002", critical, at(10, 8)))
	p.emit(inc, "11111111-0000-4000-8000-000000000002", at(10, 10), notified("11111111-0000-4000-8000-000000000002", at(10, 10)))
	// inc3: high, aware 27 Feb 00:00 (before the period; its clock too), resolved 5 Mar 00:00 (144 h).
	feb27 := time.Date(2026, 2, 27, 0, 0, 0, 0, time.UTC)
	p.emit(inc, "11111111-0000-4000-8000-000000000003", feb27, reported("11111111-0000-4000-8000-000000000003", high, feb27))
	p.emit(inc, "11111111-0000-4000-8000-000000000003", feb27.Add(hour), notified("11111111-0000-4000-8000-000000000003", feb27.Add(hour)))
	p.emit(inc, "11111111-0000-4000-8000-000000000003", at(5, 0), &incidentsv1.IncidentResolved{IncidentId: "11111111-0000-4000-8000-000000000003", ResolvedAt: ts(at(5, 0))})

	const rem = "patching.remediation"
	vuln := func(id, cve string, sev commonv1.Severity, registered, due time.Time) *patchingv1.VulnerabilityRegistered {
		return &patchingv1.VulnerabilityRegistered{RemediationId: id, ContractId: c, CustomerOrgId: customer, ProviderOrgId: provider, CveId: cve, Severity: sev,
			RegisteredAt: ts(registered), DueAt: ts(due)}
	}
	// rem1: high, registered 1 Mar, due 8 Mar, patched 5 Mar (on time, 4 d), verified 6 Mar: closed.
	p.emit(rem, "22222222-0000-4000-8000-000000000001", at(1, 0), vuln("22222222-0000-4000-8000-000000000001", "CVE-2026-0001", high, at(1, 0), at(8, 0)))
	p.emit(rem, "22222222-0000-4000-8000-000000000001", at(5, 0), &patchingv1.PatchApplied{RemediationId: "22222222-0000-4000-8000-000000000001", AppliedAt: ts(at(5, 0))})
	p.emit(rem, "22222222-0000-4000-8000-000000000001", at(6, 0), &patchingv1.PatchVerified{RemediationId: "22222222-0000-4000-8000-000000000001", Success: true, VerifiedAt: ts(at(6, 0))})
	// rem2: high, registered 2 Mar, due 9 Mar, patched 12 Mar (late, 10 d), not verified: open.
	p.emit(rem, "22222222-0000-4000-8000-000000000002", at(2, 0), vuln("22222222-0000-4000-8000-000000000002", "CVE-2026-0002", high, at(2, 0), at(9, 0)))
	p.emit(rem, "22222222-0000-4000-8000-000000000002", at(12, 0), &patchingv1.PatchApplied{RemediationId: "22222222-0000-4000-8000-000000000002", AppliedAt: ts(at(12, 0))})
	// rem3: critical, registered 20 Mar, due 22 Mar, recorded overdue 22 Mar 01:00: open, overdue.
	p.emit(rem, "22222222-0000-4000-8000-000000000003", at(20, 0), vuln("22222222-0000-4000-8000-000000000003", "CVE-2026-0003", critical, at(20, 0), at(22, 0)))
	p.emit(rem, "22222222-0000-4000-8000-000000000003", at(22, 1), &patchingv1.RemediationOverdue{RemediationId: "22222222-0000-4000-8000-000000000003", DueAt: ts(at(22, 0)), DetectedAt: ts(at(22, 1))})
	// rem4: low, registered 1 Feb, due 1 May: open, not due in March.
	p.emit(rem, "22222222-0000-4000-8000-000000000004", march.AddDate(0, -1, 0), vuln("22222222-0000-4000-8000-000000000004", "CVE-2026-0004", low, march.AddDate(0, -1, 0), april.AddDate(0, 1, 0)))

	const chg = "changeadvisory.change"
	change := func(id string, emergency bool, approvers ...string) *changeadvisoryv1.ChangeRequested {
		return &changeadvisoryv1.ChangeRequested{ChangeId: id, ContractId: c, CustomerOrgId: customer, ProviderOrgId: provider, RequesterOrgId: provider,
			Title: "change " + id, Emergency: emergency, RequiredApproverOrgIds: approvers}
	}
	// ch1: approved 4 Mar, failed 5 Mar. ch2: emergency, rejected 11 Mar. ch3: waits for the customer.
	p.emit(chg, "33333333-0000-4000-8000-000000000001", at(3, 0), change("33333333-0000-4000-8000-000000000001", false, customer, provider))
	p.emit(chg, "33333333-0000-4000-8000-000000000001", at(3, 5), &changeadvisoryv1.ChangeApprovalGiven{ChangeId: "33333333-0000-4000-8000-000000000001", OrgId: provider})
	p.emit(chg, "33333333-0000-4000-8000-000000000001", at(4, 0), &changeadvisoryv1.ChangeApproved{ChangeId: "33333333-0000-4000-8000-000000000001", ApprovedAt: ts(at(4, 0))})
	p.emit(chg, "33333333-0000-4000-8000-000000000001", at(5, 0), &changeadvisoryv1.ChangeImplemented{ChangeId: "33333333-0000-4000-8000-000000000001", Success: false, ImplementedAt: ts(at(5, 0))})
	p.emit(chg, "33333333-0000-4000-8000-000000000002", at(10, 0), change("33333333-0000-4000-8000-000000000002", true, customer))
	p.emit(chg, "33333333-0000-4000-8000-000000000002", at(11, 0), &changeadvisoryv1.ChangeRejected{ChangeId: "33333333-0000-4000-8000-000000000002", OrgId: customer, RejectedAt: ts(at(11, 0))})
	p.emit(chg, "33333333-0000-4000-8000-000000000003", at(15, 0), change("33333333-0000-4000-8000-000000000003", false, customer, provider))
	p.emit(chg, "33333333-0000-4000-8000-000000000003", at(15, 1), &changeadvisoryv1.ChangeApprovalGiven{ChangeId: "33333333-0000-4000-8000-000000000003", OrgId: provider})

	const aud, a1 = "audits.audit", "44444444-0000-4000-8000-000000000001"
	finding := func(id string, sev commonv1.Severity) *auditsv1.FindingRecorded {
		return &auditsv1.FindingRecorded{AuditId: a1, FindingId: id, Severity: sev, Title: "finding " + id}
	}
	// f1 high (its measure m1 overdue 11 Mar), f2 medium (m2 due in May), f3 high closed 20 Mar.
	p.emit(aud, a1, at(2, 0), finding("f1", high))
	p.emit(aud, a1, at(3, 0), finding("f2", medium))
	p.emit(aud, a1, at(4, 0), finding("f3", high))
	p.emit(aud, a1, at(4, 1), &auditsv1.MeasureProposed{AuditId: a1, FindingId: "f1", MeasureId: "m1", OwnerOrgId: provider, DueAt: ts(at(10, 0))})
	p.emit(aud, a1, at(4, 2), &auditsv1.MeasureProposed{AuditId: a1, FindingId: "f2", MeasureId: "m2", OwnerOrgId: provider, DueAt: ts(april.AddDate(0, 1, 0))})
	p.emit(aud, a1, at(11, 0), &auditsv1.MeasureOverdue{AuditId: a1, MeasureId: "m1", DueAt: ts(at(10, 0)), OwnerOrgId: provider})
	return p.emit(aud, a1, at(20, 0), &auditsv1.FindingClosed{AuditId: a1, FindingId: "f3", ClosedAt: ts(at(20, 0))})
}

func sevs(pairs ...any) []*reportingv1.SeverityCount {
	var out []*reportingv1.SeverityCount
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, &reportingv1.SeverityCount{Severity: pairs[i].(commonv1.Severity), Count: int32(pairs[i+1].(int))})
	}
	return out
}

// wantMarch are the hand-computed KPIs of March 2026.
func (p *platform) wantMarch() *reportingv1.Kpis {
	return &reportingv1.Kpis{
		ContractId: p.contract, PeriodStart: ts(march), PeriodEnd: ts(april),
		Incidents: &reportingv1.IncidentKpis{
			Reported: 2, ReportedBySeverity: sevs(critical, 1, high, 1),
			NotificationClocksDue: 2, NotificationClocksMet: 1, NotificationDeadlinesMetPercent: 50,
			MeanTimeToNotify: durationpb.New(2 * hour), Resolved: 2, MeanTimeToResolve: durationpb.New(84 * hour),
		},
		Patching: &reportingv1.PatchingKpis{
			Due: 3, PatchedOnTime: 1, DueDateCompliancePercent: 33.33,
			MedianTimeToPatch: []*reportingv1.SeverityDuration{{Severity: high, Duration: durationpb.New(7 * day), Count: 2}},
			Open:              3, Overdue: 1,
		},
		Changes: &reportingv1.ChangeKpis{Requested: 3, Approved: 1, Rejected: 1, Emergency: 1, Failed: 1},
		Audits:  &reportingv1.AuditKpis{OpenFindings: 2, OpenFindingsBySeverity: sevs(high, 1, medium, 1), OverdueMeasures: 1},
		Contract: &reportingv1.ContractKpis{
			Title: "Managed SOC", Phase: contractsv1.Phase_PHASE_EXPLORE.String(), InForce: true,
			ReportCadence: contractsv1.ReportCadence_REPORT_CADENCE_MONTHLY, CustomerOrgId: customer, ProviderOrgId: provider,
		},
	}
}

func (p *platform) kpis(org string, pos uint64) *reportingv1.Kpis {
	p.t.Helper()
	return must[reportingv1.GetKpisResponse](p.t)(p.client(org, "viewer").GetKpis(ctx, connect.NewRequest(&reportingv1.GetKpisRequest{
		ContractId: p.contract, PeriodStart: ts(march), PeriodEnd: ts(april), MinPosition: pos,
	}))).GetKpis()
}

// TestKpisOfEveryArea: the KPIs of March match the hand-computed fixture,
// for both parties, and again after a rebuild from position 0; another
// org finds no contract.
func TestKpisOfEveryArea(t *testing.T) {
	p := start(t)
	pos := p.fixture()
	want := p.wantMarch()
	for _, org := range []string{customer, provider} {
		if got := p.kpis(org, pos); !proto.Equal(got, want) {
			t.Fatalf("KPIs for %s:\n got %v\nwant %v", org, got, want)
		}
	}
	_, err := p.client(outsider, "org-admin").GetKpis(ctx, connect.NewRequest(&reportingv1.GetKpisRequest{
		ContractId: p.contract, PeriodStart: ts(march), PeriodEnd: ts(april), MinPosition: pos,
	}))
	testkit.Code(t, connect.CodeNotFound, err)

	if err := p.reporting.Projector().Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	if got := p.kpis(customer, pos); !proto.Equal(got, want) {
		t.Fatalf("KPIs after a rebuild:\n got %v\nwant %v", got, want)
	}

	// The situation now: the open incident with its running clocks, the
	// overdue remediation, the change waiting for the customer, the open findings.
	sit := must[reportingv1.GetSituationResponse](t)(p.client(customer, "viewer").GetSituation(ctx, connect.NewRequest(&reportingv1.GetSituationRequest{ContractId: p.contract, MinPosition: pos})))
	if len(sit.GetOpenIncidents()) != 1 || sit.GetOpenIncidents()[0].GetIncidentId() != "11111111-0000-4000-8000-000000000002" {
		t.Fatalf("open incidents %v", sit.GetOpenIncidents())
	}
	if r := sit.GetOverdueRemediations(); len(r) != 1 || r[0].GetCveId() != "CVE-2026-0003" {
		t.Fatalf("overdue remediations %v", r)
	}
	if a := sit.GetPendingApprovals(); len(a) != 1 || a[0].GetChangeId() != "33333333-0000-4000-8000-000000000003" || a[0].GetOrgId() != customer {
		t.Fatalf("pending approvals %v", a)
	}
	if f := sit.GetOpenFindings(); len(f) != 2 || f[0].GetFindingId() != "f1" || !f[0].GetMeasureOverdue() || f[1].GetMeasureOverdue() {
		t.Fatalf("open findings %v", f)
	}
	_, err = p.client(outsider, "org-admin").GetSituation(ctx, connect.NewRequest(&reportingv1.GetSituationRequest{ContractId: p.contract, MinPosition: pos}))
	testkit.Code(t, connect.CodeNotFound, err)

	// An incident reported on 2 April (after March: its KPIs stay) shows with
	// its running clock, the provider's notice due an hour after awareness
	// (critical); inc2's clock was met, so it runs no more. Recorded overdue,
	// the clock shows so.
	const inc4 = "11111111-0000-4000-8000-000000000004"
	apr2 := april.Add(day + 10*hour)
	p.emit("incidents.incident", inc4, apr2, &incidentsv1.IncidentReported{
		IncidentId: inc4, ContractId: p.contract, CustomerOrgId: customer, ProviderOrgId: provider, ReporterOrgId: provider,
		Title: "incident 4", Severity: critical, AwareAt: ts(apr2), ReportedAt: ts(apr2),
		NotificationDeadlines: []*incidentsv1.NotificationDeadline{{Severity: critical, Within: durationpb.New(hour)}},
	})
	situation := func(pos uint64) *reportingv1.GetSituationResponse {
		t.Helper()
		return must[reportingv1.GetSituationResponse](t)(p.client(provider, "viewer").GetSituation(ctx, connect.NewRequest(&reportingv1.GetSituationRequest{ContractId: p.contract, MinPosition: pos})))
	}
	wantClock := &reportingv1.OpenClock{Kind: incidentsv1.ClockKind_CLOCK_KIND_PARTY_NOTIFICATION, PartyOrgId: provider, DueAt: ts(apr2.Add(hour))}
	last, err := p.store.LastPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	open := situation(last).GetOpenIncidents()
	if len(open) != 2 || open[0].GetIncidentId() != "11111111-0000-4000-8000-000000000002" || len(open[0].GetClocks()) != 0 ||
		open[1].GetIncidentId() != inc4 || len(open[1].GetClocks()) != 1 || !proto.Equal(open[1].GetClocks()[0], wantClock) {
		t.Fatalf("open incidents %v", open)
	}
	over := p.emit("incidents.incident", inc4, apr2.Add(hour+time.Second), &incidentsv1.ClockOverdue{
		IncidentId: inc4, ClockId: "party_notification/" + provider + "/1", Kind: wantClock.Kind, PartyOrgId: provider, DueAt: wantClock.DueAt, DetectedAt: ts(apr2.Add(hour + time.Second)),
	})
	wantClock.Overdue = true
	if open := situation(over).GetOpenIncidents(); len(open) != 2 || len(open[1].GetClocks()) != 1 || !proto.Equal(open[1].GetClocks()[0], wantClock) {
		t.Fatalf("open incidents after the overdue %v", open)
	}
	if got := p.kpis(customer, over); !proto.Equal(got, want) {
		t.Fatalf("April's incident changed March's KPIs:\n got %v\nwant %v", got, want)
	}
}

// TestReportLifecycle: generate -> download (HTML, PDF) -> deliver ->
// acknowledge; the content hash is stable for the same events and changes
// when an event of the period changes.
func TestReportLifecycle(t *testing.T) {
	p := start(t)
	p.fixture()
	p.clock.Advance(35 * day) // 3 April
	cust, prov, out := p.client(customer, "security-officer"), p.client(provider, "security-officer"), p.client(outsider, "org-admin")
	gen := func(c reportingv1connect.ReportingServiceClient, key string) *reportingv1.GenerateReportResponse {
		return must[reportingv1.GenerateReportResponse](t)(c.GenerateReport(ctx, connect.NewRequest(&reportingv1.GenerateReportRequest{
			ContractId: p.contract, PeriodStart: ts(march), PeriodEnd: ts(april), RequestId: key,
		})))
	}
	g := gen(prov, "march")
	if again := gen(prov, "march"); again.GetReportId() != g.GetReportId() {
		t.Fatalf("a retried request generated %s, then %s", g.GetReportId(), again.GetReportId())
	}
	second := gen(cust, "march-again")
	if second.GetReportId() == g.GetReportId() || second.GetContentHash() != g.GetContentHash() || len(g.GetContentHash()) != 64 {
		t.Fatalf("same events: reports %s (%s) and %s (%s)", g.GetReportId(), g.GetContentHash(), second.GetReportId(), second.GetContentHash())
	}
	rep := must[reportingv1.GetReportResponse](t)(cust.GetReport(ctx, connect.NewRequest(&reportingv1.GetReportRequest{ReportId: g.ReportId, MinPosition: g.Position}))).GetReport()
	if !proto.Equal(rep.GetKpis(), p.wantMarch()) || rep.GetStatus() != reportingv1.ReportStatus_REPORT_STATUS_GENERATED ||
		!rep.GetDeliveryDueAt().AsTime().Equal(p.clock.Now().Add(5*day)) {
		t.Fatalf("report %v", rep)
	}

	// An event of the period changes the next report's hash, not this one's.
	pos := p.emit("incidents.incident", "11111111-0000-4000-8000-000000000009", at(25, 0), &incidentsv1.IncidentReported{
		IncidentId: "11111111-0000-4000-8000-000000000009", ContractId: p.contract, CustomerOrgId: customer, ProviderOrgId: provider, ReporterOrgId: customer,
		Title: "late entry", Severity: low, AwareAt: ts(at(25, 0)), ReportedAt: ts(at(25, 0)),
	})
	if k := p.kpis(customer, pos); k.GetIncidents().GetReported() != 3 {
		t.Fatalf("reported after the new incident: %v", k.GetIncidents())
	}
	third := gen(prov, "march-3")
	if third.GetContentHash() == g.GetContentHash() {
		t.Fatal("an event of the period did not change the content hash")
	}
	if rep2 := must[reportingv1.GetReportResponse](t)(cust.GetReport(ctx, connect.NewRequest(&reportingv1.GetReportRequest{ReportId: g.ReportId, MinPosition: third.Position}))).GetReport(); rep2.GetContentHash() != g.GetContentHash() || !proto.Equal(rep2.GetKpis(), rep.GetKpis()) {
		t.Fatal("a generated report changed")
	}

	// Downloads: HTML, and a PDF that parses back with its KPI table.
	html := must[reportingv1.DownloadReportResponse](t)(cust.DownloadReport(ctx, connect.NewRequest(&reportingv1.DownloadReportRequest{ReportId: g.ReportId, Format: reportingv1.ReportFormat_REPORT_FORMAT_HTML})))
	if html.GetContentType() != "text/html; charset=utf-8" || !bytes.Contains(html.GetContent(), []byte("Due-date compliance")) || !bytes.Contains(html.GetContent(), []byte(g.GetContentHash())) {
		t.Fatalf("html %s: %s", html.GetContentType(), html.GetContent())
	}
	doc := must[reportingv1.DownloadReportResponse](t)(cust.DownloadReport(ctx, connect.NewRequest(&reportingv1.DownloadReportRequest{ReportId: g.ReportId, Format: reportingv1.ReportFormat_REPORT_FORMAT_PDF})))
	if doc.GetContentType() != "application/pdf" || !bytes.HasPrefix(doc.GetContent(), []byte("%PDF-")) {
		t.Fatalf("pdf %s", doc.GetContentType())
	}
	rd, err := pdf.NewReader(bytes.NewReader(doc.GetContent()), int64(len(doc.GetContent())))
	if err != nil {
		t.Fatal(err)
	}
	if rd.NumPage() != 1 {
		t.Fatalf("pdf has %d pages", rd.NumPage())
	}
	text, err := rd.GetPlainText()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := b.ReadFrom(text); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Security report", "Due-date compliance", "1 of 3 (33.33 %)", "Incidents by severity"} {
		if !strings.Contains(b.String(), s) {
			t.Fatalf("pdf text has no %q:\n%s", s, b.String())
		}
	}

	// Others see nothing; the customer does not deliver, the provider does not acknowledge.
	_, err = out.GetReport(ctx, connect.NewRequest(&reportingv1.GetReportRequest{ReportId: g.ReportId}))
	testkit.Code(t, connect.CodeNotFound, err)
	_, err = out.DownloadReport(ctx, connect.NewRequest(&reportingv1.DownloadReportRequest{ReportId: g.ReportId, Format: reportingv1.ReportFormat_REPORT_FORMAT_PDF}))
	testkit.Code(t, connect.CodeNotFound, err)
	_, err = out.DeliverReport(ctx, connect.NewRequest(&reportingv1.DeliverReportRequest{ReportId: g.ReportId}))
	testkit.Code(t, connect.CodeNotFound, err)
	if l := must[reportingv1.ListReportsResponse](t)(out.ListReports(ctx, connect.NewRequest(&reportingv1.ListReportsRequest{}))); len(l.GetReports()) != 0 {
		t.Fatalf("another org lists %v", l.GetReports())
	}
	_, err = cust.DeliverReport(ctx, connect.NewRequest(&reportingv1.DeliverReportRequest{ReportId: g.ReportId}))
	testkit.Code(t, connect.CodePermissionDenied, err)
	_, err = cust.AcknowledgeReport(ctx, connect.NewRequest(&reportingv1.AcknowledgeReportRequest{ReportId: g.ReportId}))
	testkit.Code(t, connect.CodeFailedPrecondition, err)
	_, err = out.GenerateReport(ctx, connect.NewRequest(&reportingv1.GenerateReportRequest{ContractId: p.contract, PeriodStart: ts(march), PeriodEnd: ts(april)}))
	testkit.Code(t, connect.CodeNotFound, err)

	must[reportingv1.DeliverReportResponse](t)(prov.DeliverReport(ctx, connect.NewRequest(&reportingv1.DeliverReportRequest{ReportId: g.ReportId})))
	_, err = prov.AcknowledgeReport(ctx, connect.NewRequest(&reportingv1.AcknowledgeReportRequest{ReportId: g.ReportId}))
	testkit.Code(t, connect.CodePermissionDenied, err)
	ack := must[reportingv1.AcknowledgeReportResponse](t)(cust.AcknowledgeReport(ctx, connect.NewRequest(&reportingv1.AcknowledgeReportRequest{ReportId: g.ReportId, Comments: "Patch compliance must improve."})))
	rep = must[reportingv1.GetReportResponse](t)(prov.GetReport(ctx, connect.NewRequest(&reportingv1.GetReportRequest{ReportId: g.ReportId, MinPosition: ack.Position}))).GetReport()
	if rep.GetStatus() != reportingv1.ReportStatus_REPORT_STATUS_ACKNOWLEDGED || rep.GetComments() != "Patch compliance must improve." || rep.GetDeliveredAt() == nil {
		t.Fatalf("acknowledged report %v", rep)
	}
	l := must[reportingv1.ListReportsResponse](t)(prov.ListReports(ctx, connect.NewRequest(&reportingv1.ListReportsRequest{ContractId: p.contract, PageSize: 2, MinPosition: ack.Position})))
	if len(l.GetReports()) != 2 || l.GetNextPageToken() == "" {
		t.Fatalf("first page %d reports, token %q", len(l.GetReports()), l.GetNextPageToken())
	}
	l2 := must[reportingv1.ListReportsResponse](t)(prov.ListReports(ctx, connect.NewRequest(&reportingv1.ListReportsRequest{ContractId: p.contract, PageSize: 2, PageToken: l.GetNextPageToken()})))
	if len(l2.GetReports()) != 1 || l2.GetNextPageToken() != "" {
		t.Fatalf("second page %d reports, token %q", len(l2.GetReports()), l2.GetNextPageToken())
	}
}

// TestScheduler: on the contract's monthly cadence the scheduler generates
// March's report once; undelivered past its due date (exactly at it, it is
// in time) it is recorded overdue once; delivered and not acknowledged in
// time, once more. A restarted instance records none of it again.
func TestScheduler(t *testing.T) {
	p := start(t)
	pos := p.fixture()
	p.kpis(customer, pos)     // the scheduler reads the read model as it is: let it catch up
	p.clock.Advance(33 * day) // 1 April 00:00
	tick := func(s *reporting.Service) int {
		t.Helper()
		n, err := s.Scheduler().Tick(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// March's report: the contract was signed on 27 February, before March ended.
	if n := tick(p.reporting); n != 1 {
		t.Fatalf("first tick appended %d", n)
	}
	// A fresh process on the same stream and database (its read model may
	// not show the report yet) generates no second one.
	restarted := p.newService()
	testkit.Serve(t, restarted)
	if n := tick(restarted); n != 0 {
		t.Fatalf("the restarted scheduler appended %d", n)
	}
	if n := tick(p.reporting); n != 0 {
		t.Fatalf("second tick appended %d", n)
	}
	cust, prov := p.client(customer, "viewer"), p.client(provider, "security-officer")
	list := func(pos uint64) []*reportingv1.Report {
		return must[reportingv1.ListReportsResponse](t)(cust.ListReports(ctx, connect.NewRequest(&reportingv1.ListReportsRequest{ContractId: p.contract, MinPosition: pos}))).GetReports()
	}
	reports := list(pos + 1)
	if len(reports) != 1 || !reports[0].GetPeriodStart().AsTime().Equal(march) || !reports[0].GetScheduled() || !proto.Equal(reports[0].GetKpis(), p.wantMarch()) {
		t.Fatalf("scheduled reports %v", reports)
	}
	id := reports[0].GetReportId()
	if due := reports[0].GetDeliveryDueAt().AsTime(); !due.Equal(april.Add(5 * day)) {
		t.Fatalf("delivery due %s, want 5 days after the period", due)
	}
	p.clock.Advance(5 * day) // exactly at the delivery due date: in time
	if n := tick(p.reporting); n != 0 {
		t.Fatalf("at the delivery due date the tick appended %d", n)
	}
	p.clock.Advance(time.Second)
	if n := tick(p.reporting); n != 1 {
		t.Fatalf("overdue tick appended %d", n)
	}
	if n := tick(p.reporting); n != 0 {
		t.Fatalf("second overdue tick appended %d", n)
	}
	if n := tick(restarted); n != 0 {
		t.Fatalf("the restarted scheduler recorded the delivery overdue again: %d", n)
	}
	d := must[reportingv1.DeliverReportResponse](t)(prov.DeliverReport(ctx, connect.NewRequest(&reportingv1.DeliverReportRequest{ReportId: id})))
	must[reportingv1.GetReportResponse](t)(cust.GetReport(ctx, connect.NewRequest(&reportingv1.GetReportRequest{ReportId: id, MinPosition: d.Position}))) // the scheduler reads the read model
	p.clock.Advance(10 * day)                                                                                                                             // exactly at the acknowledgement due date: in time
	if n := tick(p.reporting); n != 0 {
		t.Fatalf("at the acknowledgement due date the tick appended %d", n)
	}
	p.clock.Advance(time.Second)
	if n := tick(p.reporting); n != 1 {
		t.Fatalf("acknowledgement overdue tick appended %d", n)
	}
	if n := tick(p.reporting); n != 0 {
		t.Fatalf("second acknowledgement overdue tick appended %d", n)
	}
	if n := tick(restarted); n != 0 {
		t.Fatalf("the restarted scheduler recorded the acknowledgement overdue again: %d", n)
	}
	if n := testkit.CountEvents(t, p.store, "reporting.report", id, "jsm.reporting.v1.ReportOverdue"); n != 2 {
		t.Fatalf("%d ReportOverdue events, want 2 (delivery, acknowledgement)", n)
	}
	last, err := p.store.LastPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r := list(last)[0]
	if !r.GetDeliveryOverdue() || !r.GetAcknowledgementOverdue() || r.GetStatus() != reportingv1.ReportStatus_REPORT_STATUS_DELIVERED {
		t.Fatalf("report %v", r)
	}
	sit := must[reportingv1.GetSituationResponse](t)(cust.GetSituation(ctx, connect.NewRequest(&reportingv1.GetSituationRequest{ContractId: p.contract, MinPosition: last})))
	if s := sit.GetReports(); s.GetLatestReportId() != id || s.GetUnacknowledged() != 1 || s.GetOverdue() != 1 {
		t.Fatalf("reports status %v", s)
	}
}

// TestContentHashFollowsTheEvents: three platforms, each with its own
// stream and database: two append the same fixture and generate March's
// report at different times under different report ids, and get the same
// content hash; the third differs in one event of March (inc1's notice at
// 15:00, after its 14:00 deadline) and gets another. An event after March
// changes no report of March.
func TestContentHashFollowsTheEvents(t *testing.T) {
	generate := func(p *platform, key string) *reportingv1.GenerateReportResponse {
		t.Helper()
		return must[reportingv1.GenerateReportResponse](t)(p.client(provider, "contract-manager").GenerateReport(ctx, connect.NewRequest(&reportingv1.GenerateReportRequest{
			ContractId: p.contract, PeriodStart: ts(march), PeriodEnd: ts(april), RequestId: key,
		})))
	}
	a := start(t)
	a.fixture()
	a.clock.Advance(40 * day)
	ha := generate(a, "a")

	b := start(t)
	b.fixture()
	b.clock.Advance(60 * day)
	hb := generate(b, "b")
	if a.contract != b.contract || ha.GetReportId() == hb.GetReportId() {
		t.Fatalf("contracts %s and %s, reports %s and %s: want one contract id, two report ids", a.contract, b.contract, ha.GetReportId(), hb.GetReportId())
	}
	if ha.GetContentHash() != hb.GetContentHash() || len(ha.GetContentHash()) != 64 {
		t.Fatalf("the same events hash %s and %s", ha.GetContentHash(), hb.GetContentHash())
	}

	c := start(t)
	c.alter = func(m proto.Message) {
		if n, ok := m.(*incidentsv1.PartyNotified); ok && n.GetIncidentId() == "11111111-0000-4000-8000-000000000001" {
			n.NotifiedAt = ts(at(2, 15))
		}
	}
	pos := c.fixture()
	k := c.kpis(customer, pos).GetIncidents()
	if k.GetNotificationClocksMet() != 0 || k.GetMeanTimeToNotify().AsDuration() != 3*hour+30*time.Minute {
		t.Fatalf("incidents KPIs with the late notice %v", k)
	}
	c.clock.Advance(40 * day)
	if hc := generate(c, "a"); hc.GetContentHash() == ha.GetContentHash() {
		t.Fatalf("a changed event of the period kept the hash %s", hc.GetContentHash())
	}

	// Events after the period: a new incident and a remediation registered in April.
	a.emit("incidents.incident", "11111111-0000-4000-8000-000000000005", april.Add(hour), &incidentsv1.IncidentReported{
		IncidentId: "11111111-0000-4000-8000-000000000005", ContractId: a.contract, CustomerOrgId: customer, ProviderOrgId: provider, ReporterOrgId: customer,
		Title: "April", Severity: high, AwareAt: ts(april.Add(hour)), ReportedAt: ts(april.Add(hour)),
	})
	a.emit("patching.remediation", "22222222-0000-4000-8000-000000000005", april.Add(2*hour), &patchingv1.VulnerabilityRegistered{
		RemediationId: "22222222-0000-4000-8000-000000000005", ContractId: a.contract, CustomerOrgId: customer, ProviderOrgId: provider, CveId: "CVE-2026-0005",
		Severity: high, RegisteredAt: ts(april.Add(2 * hour)), DueAt: ts(april.Add(5 * day)),
	})
	if later := generate(a, "a-later"); later.GetContentHash() != ha.GetContentHash() {
		t.Fatalf("events after the period changed the hash: %s, before %s", later.GetContentHash(), ha.GetContentHash())
	}
}

// TestBadInputChangesNothing: an empty or reversed period, ids that are no
// UUIDs, no format and a foreign page token are invalid_argument, and
// append nothing.
func TestBadInputChangesNothing(t *testing.T) {
	p := start(t)
	pos := p.fixture()
	p.clock.Advance(35 * day)
	c := p.client(provider, "org-admin")
	g := must[reportingv1.GenerateReportResponse](t)(c.GenerateReport(ctx, connect.NewRequest(&reportingv1.GenerateReportRequest{ContractId: p.contract, PeriodStart: ts(march), PeriodEnd: ts(april)})))
	before, err := p.store.LastPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"report of an empty period": func() error {
			_, err := c.GenerateReport(ctx, connect.NewRequest(&reportingv1.GenerateReportRequest{ContractId: p.contract, PeriodStart: ts(april), PeriodEnd: ts(april)}))
			return err
		},
		"report of a reversed period": func() error {
			_, err := c.GenerateReport(ctx, connect.NewRequest(&reportingv1.GenerateReportRequest{ContractId: p.contract, PeriodStart: ts(april), PeriodEnd: ts(march)}))
			return err
		},
		"report without a period end": func() error {
			_, err := c.GenerateReport(ctx, connect.NewRequest(&reportingv1.GenerateReportRequest{ContractId: p.contract, PeriodStart: ts(march)}))
			return err
		},
		"report on a contract id that is no uuid": func() error {
			_, err := c.GenerateReport(ctx, connect.NewRequest(&reportingv1.GenerateReportRequest{ContractId: "nope", PeriodStart: ts(march), PeriodEnd: ts(april)}))
			return err
		},
		"KPIs of an empty period": func() error {
			_, err := c.GetKpis(ctx, connect.NewRequest(&reportingv1.GetKpisRequest{ContractId: p.contract, PeriodStart: ts(april), PeriodEnd: ts(april), MinPosition: pos}))
			return err
		},
		"download without a format": func() error {
			_, err := c.DownloadReport(ctx, connect.NewRequest(&reportingv1.DownloadReportRequest{ReportId: g.ReportId}))
			return err
		},
		"deliver a report id that is no uuid": func() error {
			_, err := c.DeliverReport(ctx, connect.NewRequest(&reportingv1.DeliverReportRequest{ReportId: "r1"}))
			return err
		},
		"bad page token": func() error {
			_, err := c.ListReports(ctx, connect.NewRequest(&reportingv1.ListReportsRequest{PageToken: "!!"}))
			return err
		},
	} {
		t.Run(name, func(t *testing.T) { testkit.Code(t, connect.CodeInvalidArgument, call()) })
	}
	_, err = c.DeliverReport(ctx, connect.NewRequest(&reportingv1.DeliverReportRequest{ReportId: "0198a5d2-7f6b-7c3e-9d4f-2a1b3c4d5e6f"}))
	testkit.Code(t, connect.CodeNotFound, err)
	after, err := p.store.LastPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Fatalf("rejected requests moved the stream from %d to %d", before, after)
	}
}
