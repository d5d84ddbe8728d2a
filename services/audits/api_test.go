package audits_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/testkit"
	auditsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/audits/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/audits/v1/auditsv1connect"
	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1/contractsv1connect"
	"github.com/jsmplatform/jsm/services/audits"
	"github.com/jsmplatform/jsm/services/contracts"
)

func TestMain(m *testing.M) { testkit.Main(m) }

var ctx = context.Background()

const (
	customer = "acme"
	provider = "itsec"
	outsider = "evilcorp"

	day    = 24 * time.Hour
	notice = 14 * day

	pentest = auditsv1.AuditType_AUDIT_TYPE_PENETRATION_TEST
	onSite  = auditsv1.AuditType_AUDIT_TYPE_ON_SITE
	high    = commonv1.Severity_SEVERITY_HIGH
)

type platform struct {
	t      *testing.T
	store  *eventstore.Store
	pool   *pgxpool.Pool
	clock  *testkit.Clock
	audits *audits.Service
	srv    *testkit.Services
}

// start runs the contracts and audits services on a real NATS and
// PostgreSQL behind the production interceptors. The audits service runs
// on the test's clock (2 March 2026), its scheduler ticked by the tests.
func start(t *testing.T) *platform {
	t.Helper()
	n := testkit.StartNATS(t)
	p := &platform{t: t, store: n.Store(), pool: testkit.PostgresPool(t), clock: testkit.NewClock(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC))}
	c, err := contracts.New(ctx, contracts.Deps{Store: p.store, Pool: p.pool, ReadWait: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	p.audits = p.newService()
	p.srv = testkit.Serve(t, c, p.audits)
	return p
}

// newService builds one more instance of the audits service on the same
// stream, database and clock (a restart, or a second replica).
func (p *platform) newService() *audits.Service {
	svc, err := audits.New(ctx, audits.Deps{Store: p.store, Pool: p.pool, Now: p.clock.Now, ReadWait: 2 * time.Second, SchedulerEvery: -1})
	if err != nil {
		p.t.Fatal(err)
	}
	return svc
}

func (p *platform) client(org, role string) auditsv1connect.AuditServiceClient {
	return auditsv1connect.NewAuditServiceClient(http.DefaultClient, p.srv.URL, p.srv.As(org, role))
}

func must[T any](t *testing.T) func(*connect.Response[T], error) *T { return testkit.Must[T](t) }

// contract signs a contract between acme and itsec with audit rights:
// two audits a year, 14 days' notice, no on-site audits.
func (p *platform) contract() string {
	t := p.t
	t.Helper()
	c := contractsv1connect.NewContractServiceClient(http.DefaultClient, p.srv.URL, p.srv.As(customer, "org-admin"))
	pr := contractsv1connect.NewContractServiceClient(http.DefaultClient, p.srv.URL, p.srv.As(provider, "org-admin"))
	d := must[contractsv1.DraftContractResponse](t)(c.DraftContract(ctx, connect.NewRequest(&contractsv1.DraftContractRequest{
		CustomerOrgId: customer, ProviderOrgId: provider, Title: "Managed SOC",
	})))
	must[contractsv1.SetServiceLevelsResponse](t)(c.SetServiceLevels(ctx, connect.NewRequest(&contractsv1.SetServiceLevelsRequest{
		ContractId:  d.ContractId,
		AuditRights: &contractsv1.AuditRights{PerYear: 2, Notice: durationpb.New(notice)},
	})))
	must[contractsv1.SignContractResponse](t)(c.SignContract(ctx, connect.NewRequest(&contractsv1.SignContractRequest{ContractId: d.ContractId})))
	must[contractsv1.SignContractResponse](t)(pr.SignContract(ctx, connect.NewRequest(&contractsv1.SignContractRequest{ContractId: d.ContractId})))
	return d.ContractId
}

func (p *platform) get(org, id string, pos uint64) *auditsv1.Audit {
	p.t.Helper()
	return must[auditsv1.GetAuditResponse](p.t)(p.client(org, "viewer").GetAudit(ctx, connect.NewRequest(&auditsv1.GetAuditRequest{AuditId: id, MinPosition: pos}))).GetAudit()
}

// walk plans an audit with notice, starts it and records a finding with a
// measure proposed by the auditor and agreed by the provider, due in 30 days.
func (p *platform) walk(contractID string) (auditID, findingID, measureID string, pos uint64) {
	t := p.t
	t.Helper()
	aud, prov := p.client(customer, "auditor"), p.client(provider, "security-officer")
	planned := must[auditsv1.PlanAuditResponse](t)(aud.PlanAudit(ctx, connect.NewRequest(&auditsv1.PlanAuditRequest{
		ContractId: contractID, Title: "Annual penetration test", StartsAt: timestamppb.New(p.clock.Now().Add(notice)), Type: pentest, Scope: "internet-facing services",
	})))
	p.clock.Advance(notice)
	must[auditsv1.StartAuditResponse](t)(aud.StartAudit(ctx, connect.NewRequest(&auditsv1.StartAuditRequest{AuditId: planned.AuditId})))
	f := must[auditsv1.RecordFindingResponse](t)(aud.RecordFinding(ctx, connect.NewRequest(&auditsv1.RecordFindingRequest{
		AuditId: planned.AuditId, Severity: high, Title: "TLS 1.0 enabled", Level: auditsv1.NonconformityLevel_NONCONFORMITY_LEVEL_MAJOR,
		ControlRef: "ISO 27001:2022 A.8.24", Description: "The VPN gateway accepts TLS 1.0", EvidenceRefs: []string{"scan-2026-03-16.xml"}, RootCause: "legacy clients",
		RequestId: "finding",
	})))
	m := must[auditsv1.ProposeMeasureResponse](t)(aud.ProposeMeasure(ctx, connect.NewRequest(&auditsv1.ProposeMeasureRequest{
		AuditId: planned.AuditId, FindingId: f.FindingId, OwnerOrgId: provider, DueAt: timestamppb.New(p.clock.Now().Add(30 * day)), Description: "Disable TLS < 1.2",
		RequestId: "measure",
	})))
	a := must[auditsv1.AgreeMeasureResponse](t)(prov.AgreeMeasure(ctx, connect.NewRequest(&auditsv1.AgreeMeasureRequest{AuditId: planned.AuditId, MeasureId: m.MeasureId})))
	return planned.AuditId, f.FindingId, m.MeasureId, a.Position
}

// TestWalkThrough: plan -> notice -> start -> finding -> measure proposed and
// agreed -> implemented -> verified -> finding closed -> audit completed.
func TestWalkThrough(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	aud, prov, out := p.client(customer, "auditor"), p.client(provider, "security-officer"), p.client(outsider, "org-admin")

	// Plan: the provider is the audited party and gets notice.
	startsAt := p.clock.Now().Add(notice)
	planned := must[auditsv1.PlanAuditResponse](t)(aud.PlanAudit(ctx, connect.NewRequest(&auditsv1.PlanAuditRequest{
		ContractId: contractID, Title: "Annual penetration test", StartsAt: timestamppb.New(startsAt), Type: pentest, RequestId: "plan-1",
	})))
	again := must[auditsv1.PlanAuditResponse](t)(aud.PlanAudit(ctx, connect.NewRequest(&auditsv1.PlanAuditRequest{
		ContractId: contractID, Title: "Annual penetration test", StartsAt: timestamppb.New(startsAt), Type: pentest, RequestId: "plan-1",
	})))
	if again.AuditId != planned.AuditId || again.Position != planned.Position {
		t.Fatalf("retried plan %v, first %v", again, planned)
	}
	a := p.get(provider, planned.AuditId, planned.Position)
	if a.GetStatus() != auditsv1.AuditStatus_AUDIT_STATUS_PLANNED || a.GetAuditedOrgId() != provider || a.GetAuditorOrgId() != customer || !a.GetNoticeGivenAt().AsTime().Equal(p.clock.Now()) {
		t.Fatalf("planned audit %v", a)
	}

	// Others see nothing and change nothing.
	_, err := out.GetAudit(ctx, connect.NewRequest(&auditsv1.GetAuditRequest{AuditId: planned.AuditId}))
	testkit.Code(t, connect.CodeNotFound, err)
	_, err = out.StartAudit(ctx, connect.NewRequest(&auditsv1.StartAuditRequest{AuditId: planned.AuditId}))
	testkit.Code(t, connect.CodeNotFound, err)
	_, err = out.PlanAudit(ctx, connect.NewRequest(&auditsv1.PlanAuditRequest{ContractId: contractID, Title: "x", StartsAt: timestamppb.New(startsAt)}))
	testkit.Code(t, connect.CodeNotFound, err)
	if l := must[auditsv1.ListFindingsResponse](t)(out.ListFindings(ctx, connect.NewRequest(&auditsv1.ListFindingsRequest{}))); len(l.Findings) != 0 {
		t.Fatalf("outsider lists %v", l.Findings)
	}
	_, err = p.client(customer, "viewer").StartAudit(ctx, connect.NewRequest(&auditsv1.StartAuditRequest{AuditId: planned.AuditId}))
	testkit.Code(t, connect.CodePermissionDenied, err)

	// Start: not before the announced date, and by the auditor.
	_, err = aud.StartAudit(ctx, connect.NewRequest(&auditsv1.StartAuditRequest{AuditId: planned.AuditId}))
	testkit.Code(t, connect.CodeFailedPrecondition, err)
	p.clock.Advance(notice)
	_, err = prov.StartAudit(ctx, connect.NewRequest(&auditsv1.StartAuditRequest{AuditId: planned.AuditId}))
	testkit.Code(t, connect.CodePermissionDenied, err)
	must[auditsv1.StartAuditResponse](t)(aud.StartAudit(ctx, connect.NewRequest(&auditsv1.StartAuditRequest{AuditId: planned.AuditId})))

	// Finding, with a retried request answering with the same id.
	rf := &auditsv1.RecordFindingRequest{
		AuditId: planned.AuditId, Severity: high, Title: "TLS 1.0 enabled", Level: auditsv1.NonconformityLevel_NONCONFORMITY_LEVEL_MAJOR,
		ControlRef: "ISO 27001:2022 A.8.24", EvidenceRefs: []string{"scan.xml"}, RootCause: "legacy clients", RequestId: "finding-1",
	}
	f := must[auditsv1.RecordFindingResponse](t)(aud.RecordFinding(ctx, connect.NewRequest(rf)))
	if f2 := must[auditsv1.RecordFindingResponse](t)(aud.RecordFinding(ctx, connect.NewRequest(rf))); f2.FindingId != f.FindingId {
		t.Fatalf("retried finding %s, first %s", f2.FindingId, f.FindingId)
	}
	_, err = aud.RecordFinding(ctx, connect.NewRequest(&auditsv1.RecordFindingRequest{AuditId: planned.AuditId, Title: "no severity"}))
	testkit.Code(t, connect.CodeInvalidArgument, err)

	// Measure: proposed by the auditor, agreed by the provider (not by the proposer).
	m := must[auditsv1.ProposeMeasureResponse](t)(aud.ProposeMeasure(ctx, connect.NewRequest(&auditsv1.ProposeMeasureRequest{
		AuditId: planned.AuditId, FindingId: f.FindingId, OwnerOrgId: provider, DueAt: timestamppb.New(p.clock.Now().Add(30 * day)), Description: "Disable TLS < 1.2",
	})))
	_, err = aud.AgreeMeasure(ctx, connect.NewRequest(&auditsv1.AgreeMeasureRequest{AuditId: planned.AuditId, MeasureId: m.MeasureId}))
	testkit.Code(t, connect.CodePermissionDenied, err)
	_, err = aud.CloseFinding(ctx, connect.NewRequest(&auditsv1.CloseFindingRequest{AuditId: planned.AuditId, FindingId: f.FindingId}))
	testkit.Code(t, connect.CodeFailedPrecondition, err)
	must[auditsv1.AgreeMeasureResponse](t)(prov.AgreeMeasure(ctx, connect.NewRequest(&auditsv1.AgreeMeasureRequest{AuditId: planned.AuditId, MeasureId: m.MeasureId})))

	// Implemented by the owner with evidence, verified by the auditor.
	_, err = prov.RecordMeasureImplemented(ctx, connect.NewRequest(&auditsv1.RecordMeasureImplementedRequest{AuditId: planned.AuditId, MeasureId: m.MeasureId}))
	testkit.Code(t, connect.CodeInvalidArgument, err)
	p.clock.Advance(5 * day)
	must[auditsv1.RecordMeasureImplementedResponse](t)(prov.RecordMeasureImplemented(ctx, connect.NewRequest(&auditsv1.RecordMeasureImplementedRequest{
		AuditId: planned.AuditId, MeasureId: m.MeasureId, EvidenceRefs: []string{"CHG-4711", "sslscan-after.txt"}, Notes: "TLS 1.2+ only",
	})))
	_, err = prov.VerifyMeasure(ctx, connect.NewRequest(&auditsv1.VerifyMeasureRequest{AuditId: planned.AuditId, MeasureId: m.MeasureId, Accepted: true}))
	testkit.Code(t, connect.CodePermissionDenied, err)
	must[auditsv1.VerifyMeasureResponse](t)(aud.VerifyMeasure(ctx, connect.NewRequest(&auditsv1.VerifyMeasureRequest{AuditId: planned.AuditId, MeasureId: m.MeasureId, Accepted: true, Comment: "rescanned"})))

	// Finding closed, audit completed.
	must[auditsv1.CloseFindingResponse](t)(aud.CloseFinding(ctx, connect.NewRequest(&auditsv1.CloseFindingRequest{AuditId: planned.AuditId, FindingId: f.FindingId})))
	done := must[auditsv1.CompleteAuditResponse](t)(aud.CompleteAudit(ctx, connect.NewRequest(&auditsv1.CompleteAuditRequest{AuditId: planned.AuditId, Summary: "one major finding, fixed"})))

	a = p.get(provider, planned.AuditId, done.Position)
	if a.GetStatus() != auditsv1.AuditStatus_AUDIT_STATUS_COMPLETED || len(a.GetFindings()) != 1 {
		t.Fatalf("completed audit %v", a)
	}
	fnd := a.GetFindings()[0]
	if fnd.GetStatus() != auditsv1.FindingStatus_FINDING_STATUS_CLOSED || fnd.GetControlRef() != "ISO 27001:2022 A.8.24" || len(fnd.GetMeasures()) != 1 {
		t.Fatalf("finding %v", fnd)
	}
	ms := fnd.GetMeasures()[0]
	if ms.GetStatus() != auditsv1.MeasureStatus_MEASURE_STATUS_VERIFIED || ms.GetProposerOrgId() != customer || ms.GetCounterpartOrgId() != provider || len(ms.GetEvidenceRefs()) != 2 || ms.GetOverdue() {
		t.Fatalf("measure %v", ms)
	}
	closed := must[auditsv1.ListFindingsResponse](t)(prov.ListFindings(ctx, connect.NewRequest(&auditsv1.ListFindingsRequest{ContractId: contractID, Status: auditsv1.FindingStatus_FINDING_STATUS_CLOSED, MinPosition: done.Position})))
	if len(closed.Findings) != 1 || closed.Findings[0].GetFindingId() != f.FindingId {
		t.Fatalf("closed findings %v", closed.Findings)
	}
	list := must[auditsv1.ListAuditsResponse](t)(prov.ListAudits(ctx, connect.NewRequest(&auditsv1.ListAuditsRequest{ContractId: contractID, MinPosition: done.Position})))
	if len(list.Audits) != 1 {
		t.Fatalf("audits %v", list.Audits)
	}
}

// TestAuditRights: the contract's notice, on-site right and audits per
// calendar year bound the plans; a refused or invalid plan changes nothing.
func TestAuditRights(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	aud := p.client(customer, "auditor")
	planAt := func(at time.Time, typ auditsv1.AuditType) error {
		_, err := aud.PlanAudit(ctx, connect.NewRequest(&auditsv1.PlanAuditRequest{ContractId: contractID, Title: "Audit", StartsAt: timestamppb.New(at), Type: typ}))
		return err
	}
	now := p.clock.Now()
	testkit.Code(t, connect.CodeFailedPrecondition, planAt(now.Add(notice-time.Second), pentest))
	testkit.Code(t, connect.CodeFailedPrecondition, planAt(now.Add(notice), onSite))
	_, err := aud.PlanAudit(ctx, connect.NewRequest(&auditsv1.PlanAuditRequest{ContractId: contractID, StartsAt: timestamppb.New(now.Add(notice))}))
	testkit.Code(t, connect.CodeInvalidArgument, err)
	_, err = aud.PlanAudit(ctx, connect.NewRequest(&auditsv1.PlanAuditRequest{ContractId: contractID, Title: "x", StartsAt: timestamppb.New(now.Add(notice)), AuditorOrgId: outsider}))
	testkit.Code(t, connect.CodeInvalidArgument, err)
	_, err = aud.PlanAudit(ctx, connect.NewRequest(&auditsv1.PlanAuditRequest{ContractId: "6b3f1f9e-4f0d-4a43-9a8e-000000000000", Title: "x", StartsAt: timestamppb.New(now.Add(notice))}))
	testkit.Code(t, connect.CodeNotFound, err)

	if err := planAt(now.Add(notice), pentest); err != nil {
		t.Fatal(err)
	}
	if err := planAt(time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC), pentest); err != nil {
		t.Fatal(err)
	}
	testkit.Code(t, connect.CodeFailedPrecondition, planAt(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), pentest))
	next := must[auditsv1.PlanAuditResponse](t)(aud.PlanAudit(ctx, connect.NewRequest(&auditsv1.PlanAuditRequest{
		ContractId: contractID, Title: "Next year", StartsAt: timestamppb.New(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)),
	})))
	l := must[auditsv1.ListAuditsResponse](t)(aud.ListAudits(ctx, connect.NewRequest(&auditsv1.ListAuditsRequest{ContractId: contractID, PageSize: 2, MinPosition: next.Position})))
	if len(l.Audits) != 2 || l.NextPageToken == "" {
		t.Fatalf("first page %v", l)
	}
	l2 := must[auditsv1.ListAuditsResponse](t)(aud.ListAudits(ctx, connect.NewRequest(&auditsv1.ListAuditsRequest{ContractId: contractID, PageSize: 2, PageToken: l.NextPageToken})))
	if len(l2.Audits) != 1 || l2.NextPageToken != "" {
		t.Fatalf("second page %v", l2)
	}
	_, err = aud.ListAudits(ctx, connect.NewRequest(&auditsv1.ListAuditsRequest{PageToken: "garbage"}))
	testkit.Code(t, connect.CodeInvalidArgument, err)
}

// TestOverdueMeasureRecordedOnce: exactly at the due date nothing, one
// second after it once, and never again, also after a restart.
func TestOverdueMeasureRecordedOnce(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	auditID, _, _, pos := p.walk(contractID)
	p.get(customer, auditID, pos) // the scheduler reads the read model
	tick := func(s *audits.Service) int {
		t.Helper()
		n, err := s.Scheduler().Tick(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	p.clock.Advance(30 * day)
	if n := tick(p.audits); n != 0 {
		t.Fatalf("at the due date: %d recorded", n)
	}
	p.clock.Advance(time.Second)
	if n := tick(p.audits); n != 1 {
		t.Fatalf("one second after: %d recorded", n)
	}
	if n := tick(p.audits); n != 0 {
		t.Fatalf("again: %d recorded", n)
	}
	if n := tick(p.newService()); n != 0 {
		t.Fatalf("after a restart: %d recorded", n)
	}
	last, err := p.store.LastPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	view := p.client(provider, "viewer")
	over := must[auditsv1.ListFindingsResponse](t)(view.ListFindings(ctx, connect.NewRequest(&auditsv1.ListFindingsRequest{OverdueOnly: true, MinPosition: last})))
	if len(over.Findings) != 1 || !over.Findings[0].GetMeasures()[0].GetOverdue() {
		t.Fatalf("overdue findings %v", over.Findings)
	}
	if n := tick(p.newService()); n != 0 {
		t.Fatalf("after the read model caught up: %d recorded", n)
	}

	// Implemented late: the measure stays overdue, the finding leaves the overdue list.
	impl := must[auditsv1.RecordMeasureImplementedResponse](t)(p.client(provider, "security-officer").RecordMeasureImplemented(ctx, connect.NewRequest(&auditsv1.RecordMeasureImplementedRequest{
		AuditId: auditID, MeasureId: over.Findings[0].GetMeasures()[0].GetMeasureId(), EvidenceRefs: []string{"CHG-4712"},
	})))
	if l := must[auditsv1.ListFindingsResponse](t)(view.ListFindings(ctx, connect.NewRequest(&auditsv1.ListFindingsRequest{OverdueOnly: true, MinPosition: impl.Position}))); len(l.Findings) != 0 {
		t.Fatalf("overdue findings after the late implementation %v", l.Findings)
	}
	if m := p.get(customer, auditID, impl.Position).GetFindings()[0].GetMeasures()[0]; !m.GetOverdue() || m.GetStatus() != auditsv1.MeasureStatus_MEASURE_STATUS_IMPLEMENTED {
		t.Fatalf("measure implemented late %v", m)
	}
	if n := testkit.CountEvents(t, p.store, "audits.audit", auditID, "jsm.audits.v1.MeasureOverdue"); n != 1 {
		t.Fatalf("%d MeasureOverdue events, want 1", n)
	}
}

// TestRequestIDsNameObjectsWithinTheirAudit: the same key on two audits
// names two findings and two measures.
func TestRequestIDsNameObjectsWithinTheirAudit(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	a1, f1, m1, _ := p.walk(contractID)
	a2, f2, m2, pos := p.walk(contractID)
	if a1 == a2 || f1 == f2 || m1 == m2 {
		t.Fatalf("ids %s %s %s and %s %s %s", a1, f1, m1, a2, f2, m2)
	}
	l := must[auditsv1.ListFindingsResponse](t)(p.client(customer, "viewer").ListFindings(ctx, connect.NewRequest(&auditsv1.ListFindingsRequest{ContractId: contractID, MinPosition: pos})))
	if len(l.Findings) != 2 || l.Findings[0].GetAuditId() != a2 || l.Findings[1].GetAuditId() != a1 {
		t.Fatalf("findings %v", l.Findings)
	}
}

// TestChecks: a contract's M 2.256 checklist and one execution's results.
func TestChecks(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	cust, prov, out := p.client(customer, "auditor"), p.client(provider, "security-officer"), p.client(outsider, "org-admin")
	items := []*auditsv1.CheckItemInput{
		{Key: "audits", Kind: auditsv1.CheckItemKind_CHECK_ITEM_KIND_AGREED_AUDITS_DONE},
		{Key: "measures", Kind: auditsv1.CheckItemKind_CHECK_ITEM_KIND_MEASURES_STATUS},
		{Key: "maintenance", Kind: auditsv1.CheckItemKind_CHECK_ITEM_KIND_MAINTENANCE_STATUS},
		{Key: "rights", Kind: auditsv1.CheckItemKind_CHECK_ITEM_KIND_RIGHTS_ASSIGNMENT},
		{Key: "staff", Kind: auditsv1.CheckItemKind_CHECK_ITEM_KIND_UNREPORTED_STAFF},
		{Key: "availability", Kind: auditsv1.CheckItemKind_CHECK_ITEM_KIND_AVAILABILITY_QUALITY},
		{Key: "backups", Kind: auditsv1.CheckItemKind_CHECK_ITEM_KIND_BACKUPS},
		{Key: "dr", Kind: auditsv1.CheckItemKind_CHECK_ITEM_KIND_CUSTOM, Title: "Disaster recovery drill"},
	}
	result := func(c auditsv1connect.AuditServiceClient, key string, outcome auditsv1.CheckOutcome) (*connect.Response[auditsv1.RecordCheckResultResponse], error) {
		return c.RecordCheckResult(ctx, connect.NewRequest(&auditsv1.RecordCheckResultRequest{ContractId: contractID, Period: "2026-Q1", ItemKey: key, Outcome: outcome, Note: "checked"}))
	}
	_, err := result(prov, "backups", auditsv1.CheckOutcome_CHECK_OUTCOME_PASSED)
	testkit.Code(t, connect.CodeFailedPrecondition, err)
	_, err = out.SetCheckTemplate(ctx, connect.NewRequest(&auditsv1.SetCheckTemplateRequest{ContractId: contractID, Items: items}))
	testkit.Code(t, connect.CodeNotFound, err)
	must[auditsv1.SetCheckTemplateResponse](t)(cust.SetCheckTemplate(ctx, connect.NewRequest(&auditsv1.SetCheckTemplateRequest{ContractId: contractID, Items: items, Interval: durationpb.New(90 * day)})))
	_, err = result(prov, "nope", auditsv1.CheckOutcome_CHECK_OUTCOME_PASSED)
	testkit.Code(t, connect.CodeInvalidArgument, err)
	_, err = result(out, "backups", auditsv1.CheckOutcome_CHECK_OUTCOME_PASSED)
	testkit.Code(t, connect.CodeNotFound, err)
	var pos uint64
	for i, it := range items {
		outcome := auditsv1.CheckOutcome_CHECK_OUTCOME_PASSED
		if i == 4 {
			outcome = auditsv1.CheckOutcome_CHECK_OUTCOME_DEVIATION
		}
		who := prov
		if i%2 == 0 {
			who = cust
		}
		pos = must[auditsv1.RecordCheckResultResponse](t)(result(who, it.Key, outcome)).Position
	}
	c := must[auditsv1.ListChecksResponse](t)(prov.ListChecks(ctx, connect.NewRequest(&auditsv1.ListChecksRequest{ContractId: contractID, MinPosition: pos}))).GetChecklist()
	if !c.GetNextDueAt().AsTime().Equal(p.clock.Now().Add(90 * day)) {
		t.Fatalf("next execution due %s", c.GetNextDueAt().AsTime())
	}
	if len(c.GetItems()) != 8 || c.GetItems()[6].GetTitle() != "Backups" || len(c.GetRuns()) != 1 || !c.GetRuns()[0].GetComplete() || len(c.GetRuns()[0].GetResults()) != 8 {
		t.Fatalf("checklist %v", c)
	}
	_, err = out.ListChecks(ctx, connect.NewRequest(&auditsv1.ListChecksRequest{ContractId: contractID}))
	testkit.Code(t, connect.CodeNotFound, err)
}
