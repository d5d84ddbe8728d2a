package changeadvisory_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/jsmplatform/jsm/libs/auth"
	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/rpc"
	"github.com/jsmplatform/jsm/libs/testkit"
	changeadvisoryv1 "github.com/jsmplatform/jsm/proto/gen/jsm/changeadvisory/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/changeadvisory/v1/changeadvisoryv1connect"
	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1/contractsv1connect"
	"github.com/jsmplatform/jsm/services/changeadvisory"
	"github.com/jsmplatform/jsm/services/changeadvisory/app"
	"github.com/jsmplatform/jsm/services/changeadvisory/domain"
	readmodel "github.com/jsmplatform/jsm/services/changeadvisory/projection"
	"github.com/jsmplatform/jsm/services/contracts"
)

func TestMain(m *testing.M) { testkit.Main(m) }

var ctx = context.Background()

type platform struct {
	t       *testing.T
	store   *eventstore.Store
	pool    *pgxpool.Pool
	clock   *testkit.Clock
	changes *changeadvisory.Service
	srv     *testkit.Services
}

// start runs the contracts and change advisory services on a real NATS and
// PostgreSQL behind the production interceptors. The change advisory
// service runs on the test's clock, its scheduler ticked by the tests.
func start(t *testing.T) *platform {
	t.Helper()
	n := testkit.StartNATS(t)
	p := &platform{t: t, store: n.Store(), pool: testkit.PostgresPool(t), clock: testkit.NewClock(time.Now().UTC().Truncate(time.Second))}
	c, err := contracts.New(ctx, contracts.Deps{Store: p.store, Pool: p.pool, ReadWait: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	p.changes = p.newService()
	p.srv = testkit.Serve(t, c, p.changes)
	return p
}

// newService builds one more instance of the change advisory service on
// the same stream, database and clock (a restart, or a second replica).
func (p *platform) newService() *changeadvisory.Service {
	svc, err := changeadvisory.New(ctx, changeadvisory.Deps{Store: p.store, Pool: p.pool, Now: p.clock.Now, ReadWait: 2 * time.Second, SchedulerEvery: -1})
	if err != nil {
		p.t.Fatal(err)
	}
	return svc
}

func (p *platform) client(org string) changeadvisoryv1connect.ChangeServiceClient {
	return changeadvisoryv1connect.NewChangeServiceClient(http.DefaultClient, p.srv.URL, p.srv.As(org, "change-manager"))
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
	outsider = "evilcorp"

	software = commonv1.ChangeCategory_CHANGE_CATEGORY_SOFTWARE
	hardware = commonv1.ChangeCategory_CHANGE_CATEGORY_HARDWARE

	statusRequested  = changeadvisoryv1.ChangeStatus_CHANGE_STATUS_REQUESTED
	statusInReview   = changeadvisoryv1.ChangeStatus_CHANGE_STATUS_IN_REVIEW
	statusApproved   = changeadvisoryv1.ChangeStatus_CHANGE_STATUS_APPROVED
	statusRejected   = changeadvisoryv1.ChangeStatus_CHANGE_STATUS_REJECTED
	statusRolledBack = changeadvisoryv1.ChangeStatus_CHANGE_STATUS_ROLLED_BACK
	statusClosed     = changeadvisoryv1.ChangeStatus_CHANGE_STATUS_CLOSED

	reviewWithin = 48 * time.Hour
)

// contract drafts a contract between acme and itsec whose software changes
// need the customer's approval, with a maintenance window on Saturdays
// 02:00-06:00 UTC and emergency changes reviewed within 48 h, signed by both.
func (p *platform) contract() string {
	t := p.t
	t.Helper()
	c, pr := p.contracts(customer), p.contracts(provider)
	d := must[contractsv1.DraftContractResponse](t)(c.DraftContract(ctx, connect.NewRequest(&contractsv1.DraftContractRequest{
		CustomerOrgId: customer, ProviderOrgId: provider, Title: "Managed servers",
	})))
	must[contractsv1.SetServiceLevelsResponse](t)(c.SetServiceLevels(ctx, connect.NewRequest(&contractsv1.SetServiceLevelsRequest{
		ContractId:                  d.ContractId,
		CustomerApprovalCategories:  []commonv1.ChangeCategory{software},
		MaintenanceWindows:          []*contractsv1.MaintenanceWindow{{Weekday: 6, Start: "02:00", Duration: durationpb.New(4 * time.Hour)}},
		EmergencyChangeReviewWithin: durationpb.New(reviewWithin),
	})))
	must[contractsv1.SignContractResponse](t)(c.SignContract(ctx, connect.NewRequest(&contractsv1.SignContractRequest{ContractId: d.ContractId})))
	must[contractsv1.SignContractResponse](t)(pr.SignContract(ctx, connect.NewRequest(&contractsv1.SignContractRequest{ContractId: d.ContractId})))
	return d.ContractId
}

// saturday is the next Saturday 02:00 UTC at least a day after the clock.
func (p *platform) saturday() time.Time {
	d := p.clock.Now().Add(24 * time.Hour)
	d = time.Date(d.Year(), d.Month(), d.Day(), 2, 0, 0, 0, time.UTC)
	for d.Weekday() != time.Saturday {
		d = d.AddDate(0, 0, 1)
	}
	return d
}

// inWindow plans two hours inside the window with one hour of downtime.
func (p *platform) inWindow(r *changeadvisoryv1.RequestChangeRequest) {
	r.PlannedStart, r.PlannedEnd = timestamppb.New(p.saturday()), timestamppb.New(p.saturday().Add(2*time.Hour))
	r.ExpectedDowntime = durationpb.New(time.Hour)
}

// outOfWindow plans the same on the Sunday after.
func (p *platform) outOfWindow(r *changeadvisoryv1.RequestChangeRequest) {
	sunday := p.saturday().Add(24 * time.Hour)
	r.PlannedStart, r.PlannedEnd = timestamppb.New(sunday), timestamppb.New(sunday.Add(2*time.Hour))
	r.ExpectedDowntime = durationpb.New(time.Hour)
}

func (p *platform) request(org, contractID string, cat commonv1.ChangeCategory, mods ...func(*changeadvisoryv1.RequestChangeRequest)) *changeadvisoryv1.RequestChangeResponse {
	p.t.Helper()
	r := &changeadvisoryv1.RequestChangeRequest{
		ContractId: contractID, Title: "Patch OpenSSL on the web tier", Category: cat, Risk: changeadvisoryv1.Risk_RISK_MEDIUM,
		Impact: "web tier restarts", RollbackPlan: "reinstall the previous package",
		Links: []*changeadvisoryv1.LinkedObject{{Kind: "patching.remediation", Id: "rem-1", Items: []string{"web-01", "web-02"}}},
	}
	for _, m := range mods {
		m(r)
	}
	return must[changeadvisoryv1.RequestChangeResponse](p.t)(p.client(org).RequestChange(ctx, connect.NewRequest(r)))
}

func (p *platform) get(org, id string, minPosition uint64) *changeadvisoryv1.Change {
	p.t.Helper()
	return must[changeadvisoryv1.GetChangeResponse](p.t)(p.client(org).GetChange(ctx, connect.NewRequest(&changeadvisoryv1.GetChangeRequest{ChangeId: id, MinPosition: minPosition}))).Change
}

func (p *platform) approve(org, id string) *changeadvisoryv1.ApproveChangeResponse {
	p.t.Helper()
	return must[changeadvisoryv1.ApproveChangeResponse](p.t)(p.client(org).ApproveChange(ctx, connect.NewRequest(&changeadvisoryv1.ApproveChangeRequest{ChangeId: id, Comment: "ok"})))
}

func (p *platform) last() uint64 {
	p.t.Helper()
	n, err := p.store.LastPosition(ctx)
	if err != nil {
		p.t.Fatal(err)
	}
	return n
}

func countEvents(t *testing.T, store *eventstore.Store, id, typ string) int {
	t.Helper()
	return testkit.CountEvents(t, store, readmodel.ChangeType, id, typ)
}

func approvers(c *changeadvisoryv1.Change) []string {
	var out []string
	for _, a := range c.GetApprovals() {
		out = append(out, a.GetOrgId())
	}
	return out
}

func TestChangeWalkthrough(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	prov, cust := p.client(provider), p.client(customer)

	r := p.request(provider, contractID, software, p.inWindow)
	c := p.get(customer, r.ChangeId, r.Position)
	if c.GetStatus() != statusRequested || c.GetContractId() != contractID || c.GetRequesterOrgId() != provider ||
		!slices.Equal(c.GetRequiredApproverOrgIds(), []string{provider, customer}) || c.GetDowntimeNeedsAgreement() || c.GetEmergency() {
		t.Fatalf("requested change = %v", c)
	}

	review := p.clock.Now().Add(24 * time.Hour)
	s := must[changeadvisoryv1.ScheduleReviewResponse](t)(cust.ScheduleReview(ctx, connect.NewRequest(&changeadvisoryv1.ScheduleReviewRequest{ChangeId: r.ChangeId, ReviewAt: timestamppb.New(review), Note: "CAB"})))
	if c := p.get(provider, r.ChangeId, s.Position); c.GetStatus() != statusInReview || !c.GetReviewAt().AsTime().Equal(review) {
		t.Fatalf("after scheduling: %v", c)
	}

	a := p.approve(provider, r.ChangeId)
	if a.Status != statusInReview {
		t.Fatalf("provider's approval alone: %s, want in review", a.Status)
	}
	again := p.approve(provider, r.ChangeId) // approving twice is a no-op
	if again.Position != a.Position {
		t.Fatalf("second approval moved the position from %d to %d", a.Position, again.Position)
	}
	a = p.approve(customer, r.ChangeId)
	if a.Status != statusApproved {
		t.Fatalf("both approved: %s, want approved", a.Status)
	}
	c = p.get(customer, r.ChangeId, a.Position)
	if c.GetStatus() != statusApproved || !slices.Equal(approvers(c), []string{provider, customer}) || c.GetApprovedAt() == nil {
		t.Fatalf("approved change = %v", c)
	}
	for _, ap := range c.GetApprovals() {
		if ap.GetApprovedAt() == nil {
			t.Fatalf("approval without time: %v", ap)
		}
	}
	if n := countEvents(t, p.store, r.ChangeId, "jsm.changeadvisory.v1.ChangeApprovalGiven"); n != 2 {
		t.Fatalf("%d approvals recorded, want 2", n)
	}

	im := must[changeadvisoryv1.RecordImplementationResponse](t)(prov.RecordImplementation(ctx, connect.NewRequest(&changeadvisoryv1.RecordImplementationRequest{ChangeId: r.ChangeId, Success: true, Notes: "done"})))
	if im.ReviewDueAt != nil {
		t.Fatalf("an ordinary change has no review deadline: %v", im.ReviewDueAt)
	}
	rb := must[changeadvisoryv1.RecordRollbackResponse](t)(prov.RecordRollback(ctx, connect.NewRequest(&changeadvisoryv1.RecordRollbackRequest{ChangeId: r.ChangeId, Reason: "logins broke"})))
	if c := p.get(customer, r.ChangeId, rb.Position); c.GetStatus() != statusRolledBack || c.GetRollback().GetReason() != "logins broke" || !c.GetImplementation().GetSuccess() {
		t.Fatalf("rolled back change = %v", c)
	}
	cl := must[changeadvisoryv1.CloseChangeResponse](t)(cust.CloseChange(ctx, connect.NewRequest(&changeadvisoryv1.CloseChangeRequest{ChangeId: r.ChangeId})))
	live := p.get(provider, r.ChangeId, cl.Position)
	if live.GetStatus() != statusClosed || live.GetClosedAt() == nil {
		t.Fatalf("closed change = %v", live)
	}
	// The read model rebuilt from the stream shows the same change.
	if err := p.changes.Projector().Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	if rebuilt := p.get(provider, r.ChangeId, cl.Position); !proto.Equal(rebuilt, live) {
		t.Fatalf("after a rebuild:\n%v\nbefore:\n%v", rebuilt, live)
	}

	// Lists filter by contract, status, emergency and linked object.
	for _, tc := range []struct {
		req  *changeadvisoryv1.ListChangesRequest
		want int
	}{
		{&changeadvisoryv1.ListChangesRequest{ContractId: contractID}, 1},
		{&changeadvisoryv1.ListChangesRequest{Status: statusClosed}, 1},
		{&changeadvisoryv1.ListChangesRequest{Status: statusApproved}, 0},
		{&changeadvisoryv1.ListChangesRequest{EmergencyOnly: true}, 0},
		{&changeadvisoryv1.ListChangesRequest{LinkedKind: "patching.remediation", LinkedId: "rem-1"}, 1},
		{&changeadvisoryv1.ListChangesRequest{LinkedKind: "patching.remediation", LinkedId: "rem-2"}, 0},
	} {
		got := must[changeadvisoryv1.ListChangesResponse](t)(cust.ListChanges(ctx, connect.NewRequest(tc.req)))
		if len(got.Changes) != tc.want {
			t.Errorf("%v: %d changes, want %d", tc.req, len(got.Changes), tc.want)
		}
	}
}

func TestProviderAloneApprovesWhatTheContractDoesNotName(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	r := p.request(customer, contractID, hardware, p.inWindow)
	c := p.get(provider, r.ChangeId, r.Position)
	if !slices.Equal(c.GetRequiredApproverOrgIds(), []string{provider}) {
		t.Fatalf("required approvers %v, want the provider alone", c.GetRequiredApproverOrgIds())
	}
	_, err := p.client(customer).ApproveChange(ctx, connect.NewRequest(&changeadvisoryv1.ApproveChangeRequest{ChangeId: r.ChangeId}))
	code(t, connect.CodePermissionDenied, err)
	if a := p.approve(provider, r.ChangeId); a.Status != statusApproved {
		t.Fatalf("provider's approval: %s, want approved", a.Status)
	}
}

func TestCustomerRejectionStopsTheChange(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	r := p.request(provider, contractID, software, p.inWindow)
	p.approve(provider, r.ChangeId)
	rj := must[changeadvisoryv1.RejectChangeResponse](t)(p.client(customer).RejectChange(ctx, connect.NewRequest(&changeadvisoryv1.RejectChangeRequest{ChangeId: r.ChangeId, Reason: "quarter-end freeze"})))
	c := p.get(provider, r.ChangeId, rj.Position)
	if c.GetStatus() != statusRejected || c.GetRejection().GetOrgId() != customer || c.GetRejection().GetReason() != "quarter-end freeze" {
		t.Fatalf("rejected change = %v", c)
	}
	_, err := p.client(provider).RecordImplementation(ctx, connect.NewRequest(&changeadvisoryv1.RecordImplementationRequest{ChangeId: r.ChangeId, Success: true}))
	code(t, connect.CodeFailedPrecondition, err)
	_, err = p.client(customer).ApproveChange(ctx, connect.NewRequest(&changeadvisoryv1.ApproveChangeRequest{ChangeId: r.ChangeId}))
	code(t, connect.CodeFailedPrecondition, err)
	if n := countEvents(t, p.store, r.ChangeId, "jsm.changeadvisory.v1.ChangeApproved"); n != 0 {
		t.Fatalf("%d ChangeApproved events for a rejected change", n)
	}
}

func TestDowntimeOutsideWindowsNeedsAgreement(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	r := p.request(provider, contractID, software, p.outOfWindow)
	if c := p.get(customer, r.ChangeId, r.Position); !c.GetDowntimeNeedsAgreement() {
		t.Fatalf("downtime on a Sunday needs no agreement: %v", c)
	}
	p.approve(provider, r.ChangeId)
	if a := p.approve(customer, r.ChangeId); a.Status != statusRequested {
		t.Fatalf("both approved without agreed downtime: %s, want requested", a.Status)
	}
	_, err := p.client(provider).AgreeDowntime(ctx, connect.NewRequest(&changeadvisoryv1.AgreeDowntimeRequest{ChangeId: r.ChangeId}))
	code(t, connect.CodePermissionDenied, err)
	ag := must[changeadvisoryv1.AgreeDowntimeResponse](t)(p.client(customer).AgreeDowntime(ctx, connect.NewRequest(&changeadvisoryv1.AgreeDowntimeRequest{ChangeId: r.ChangeId})))
	if ag.Status != statusApproved {
		t.Fatalf("after the agreement: %s, want approved", ag.Status)
	}
	if c := p.get(provider, r.ChangeId, ag.Position); c.GetDowntimeAgreedAt() == nil || c.GetStatus() != statusApproved {
		t.Fatalf("agreed change = %v", c)
	}

	// Inside the window the same change needs no agreement, and asking for one fails.
	in := p.request(provider, contractID, software, p.inWindow)
	_, err = p.client(customer).AgreeDowntime(ctx, connect.NewRequest(&changeadvisoryv1.AgreeDowntimeRequest{ChangeId: in.ChangeId}))
	code(t, connect.CodeFailedPrecondition, err)
}

func TestEmergencyChangeReviewedLateIsOverdueOnce(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	r := p.request(provider, contractID, software, func(r *changeadvisoryv1.RequestChangeRequest) { r.Emergency = true })
	prov, cust := p.client(provider), p.client(customer)

	im := must[changeadvisoryv1.RecordImplementationResponse](t)(prov.RecordImplementation(ctx, connect.NewRequest(&changeadvisoryv1.RecordImplementationRequest{ChangeId: r.ChangeId, Success: true, Notes: "hotfix"})))
	due := p.clock.Now().Add(reviewWithin)
	if !im.GetReviewDueAt().AsTime().Equal(due) {
		t.Fatalf("review due %v, want %v", im.GetReviewDueAt().AsTime(), due)
	}
	_, err := cust.CloseChange(ctx, connect.NewRequest(&changeadvisoryv1.CloseChangeRequest{ChangeId: r.ChangeId}))
	code(t, connect.CodeFailedPrecondition, err) // the reviews are pending
	pr := must[changeadvisoryv1.ReviewEmergencyChangeResponse](t)(prov.ReviewEmergencyChange(ctx, connect.NewRequest(&changeadvisoryv1.ReviewEmergencyChangeRequest{ChangeId: r.ChangeId, Accepted: true})))
	p.get(provider, r.ChangeId, pr.Position) // the scheduler reads the read model

	tick := func(s *changeadvisory.Service) int {
		t.Helper()
		n, err := s.Scheduler().Tick(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	p.clock.Advance(due.Sub(p.clock.Now())) // exactly at the deadline: not overdue
	if n := tick(p.changes); n != 0 {
		t.Fatalf("at the deadline the scheduler recorded %d", n)
	}
	p.clock.Advance(time.Second)
	if n := tick(p.changes); n != 1 {
		t.Fatalf("one second after the deadline the scheduler recorded %d, want 1", n)
	}
	if n := tick(p.changes); n != 0 { // the read model may not show it yet
		t.Fatalf("a second tick recorded %d more", n)
	}
	restarted := p.newService() // a fresh process: no cache, same stream and database
	if n := tick(restarted); n != 0 {
		t.Fatalf("after a restart the scheduler recorded %d more", n)
	}
	// The customer reviews late: no second overdue event.
	p.clock.Advance(time.Hour)
	cr := must[changeadvisoryv1.ReviewEmergencyChangeResponse](t)(cust.ReviewEmergencyChange(ctx, connect.NewRequest(&changeadvisoryv1.ReviewEmergencyChangeRequest{ChangeId: r.ChangeId, Accepted: false, Comment: "should have waited"})))
	if n := countEvents(t, p.store, r.ChangeId, "jsm.changeadvisory.v1.EmergencyReviewOverdue"); n != 1 {
		t.Fatalf("%d EmergencyReviewOverdue events, want exactly 1", n)
	}
	c := p.get(customer, r.ChangeId, cr.Position)
	if !c.GetReviewOverdue() || len(c.GetEmergencyReviews()) != 2 || c.GetApprovedAt() != nil {
		t.Fatalf("reviewed change = %v", c)
	}
	evs, err := p.store.Load(ctx, readmodel.ChangeType, r.ChangeId, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Type == "jsm.changeadvisory.v1.EmergencyReviewOverdue" {
			m, err := e.Decode()
			if err != nil {
				t.Fatal(err)
			}
			if o := m.(*changeadvisoryv1.EmergencyReviewOverdue); !slices.Equal(o.GetMissingOrgIds(), []string{customer}) || !o.GetDueAt().AsTime().Equal(due) {
				t.Fatalf("overdue event = %v", o)
			}
			if e.Actor != app.SchedulerActor {
				t.Fatalf("overdue recorded by %v", e.Actor)
			}
		}
	}
	if n := tick(restarted); n != 0 {
		t.Fatalf("after both reviews the scheduler recorded %d more", n)
	}
	must[changeadvisoryv1.CloseChangeResponse](t)(cust.CloseChange(ctx, connect.NewRequest(&changeadvisoryv1.CloseChangeRequest{ChangeId: r.ChangeId})))
	got := must[changeadvisoryv1.ListChangesResponse](t)(cust.ListChanges(ctx, connect.NewRequest(&changeadvisoryv1.ListChangesRequest{EmergencyOnly: true, MinPosition: p.last()})))
	if len(got.Changes) != 1 || got.Changes[0].GetStatus() != statusClosed {
		t.Fatalf("emergency changes = %v", got.Changes)
	}
}

// TestRequestOnBehalfOfAParty is how the patching reactor opens a change: in
// process, as the platform acting for the provider.
func TestRequestOnBehalfOfAParty(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	req := app.Request{Actor: event.Actor{Org: provider, User: "patching-reactor", Role: "system"}, ID: "remediation/rem-7/release/1"}
	cmd := func() *domain.RequestChange {
		return &domain.RequestChange{
			Title: "Roll out patch for CVE-2026-1234", Category: software,
			Links: []domain.Link{{Kind: "patching.remediation", ID: "rem-7", Items: []string{"web-01"}}},
		}
	}
	first, err := p.changes.App().Commands.Request(ctx, req, contractID, cmd())
	if err != nil {
		t.Fatal(err)
	}
	second, err := p.changes.App().Commands.Request(ctx, req, contractID, cmd()) // redelivered
	if err != nil {
		t.Fatal(err)
	}
	if first.ID != second.ID || second.Appended != 0 {
		t.Fatalf("redelivered request: %+v then %+v", first, second)
	}
	c := p.get(customer, first.ID, first.Position)
	if c.GetRequesterOrgId() != provider || len(c.GetLinks()) != 1 || c.GetLinks()[0].GetId() != "rem-7" {
		t.Fatalf("reactor's change = %v", c)
	}
	out := app.Request{Actor: event.Actor{Org: outsider, User: "patching-reactor", Role: "system"}}
	_, err = p.changes.App().Commands.Request(ctx, out, contractID, cmd())
	if !errors.Is(err, domain.NotFoundError{What: "contract"}) {
		t.Fatalf("an outsider's request: %v, want contract not found", err)
	}
}

func TestRetriedRequestOpensOneChange(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	req := &changeadvisoryv1.RequestChangeRequest{ContractId: contractID, Title: "Add RAM", Category: hardware, RequestId: "itsm-42"}
	c := p.client(customer)
	first := must[changeadvisoryv1.RequestChangeResponse](t)(c.RequestChange(ctx, connect.NewRequest(req)))
	second := must[changeadvisoryv1.RequestChangeResponse](t)(c.RequestChange(ctx, connect.NewRequest(req)))
	if first.ChangeId != second.ChangeId || first.Position != second.Position {
		t.Fatalf("retry: %v then %v", first, second)
	}
}

func TestOtherOrgsSeeNothing(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	r := p.request(provider, contractID, software, p.inWindow)
	p.get(customer, r.ChangeId, r.Position)
	evil := p.client(outsider)

	_, err := evil.GetChange(ctx, connect.NewRequest(&changeadvisoryv1.GetChangeRequest{ChangeId: r.ChangeId, MinPosition: r.Position}))
	code(t, connect.CodeNotFound, err)
	_, err = evil.ApproveChange(ctx, connect.NewRequest(&changeadvisoryv1.ApproveChangeRequest{ChangeId: r.ChangeId}))
	code(t, connect.CodeNotFound, err)
	_, err = evil.RejectChange(ctx, connect.NewRequest(&changeadvisoryv1.RejectChangeRequest{ChangeId: r.ChangeId, Reason: "mine"}))
	code(t, connect.CodeNotFound, err)
	_, err = evil.RequestChange(ctx, connect.NewRequest(&changeadvisoryv1.RequestChangeRequest{ContractId: contractID, Title: "x", Category: software}))
	code(t, connect.CodeNotFound, err)
	list := must[changeadvisoryv1.ListChangesResponse](t)(evil.ListChanges(ctx, connect.NewRequest(&changeadvisoryv1.ListChangesRequest{MinPosition: r.Position})))
	if len(list.Changes) != 0 {
		t.Fatalf("an outsider lists %d changes", len(list.Changes))
	}
	// A change that does not exist answers alike.
	_, err = evil.GetChange(ctx, connect.NewRequest(&changeadvisoryv1.GetChangeRequest{ChangeId: event.NewID()}))
	code(t, connect.CodeNotFound, err)
}

func TestBadInputChangesNothing(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	r := p.request(provider, contractID, software, p.inWindow)
	c := p.client(provider)
	before := p.last()
	sat := p.saturday()
	for name, call := range map[string]func() error{
		"no title": func() error {
			_, err := c.RequestChange(ctx, connect.NewRequest(&changeadvisoryv1.RequestChangeRequest{ContractId: contractID, Category: software}))
			return err
		},
		"no category": func() error {
			_, err := c.RequestChange(ctx, connect.NewRequest(&changeadvisoryv1.RequestChangeRequest{ContractId: contractID, Title: "x"}))
			return err
		},
		"unknown category": func() error {
			_, err := c.RequestChange(ctx, connect.NewRequest(&changeadvisoryv1.RequestChangeRequest{ContractId: contractID, Title: "x", Category: 42}))
			return err
		},
		"contract id not a uuid": func() error {
			_, err := c.RequestChange(ctx, connect.NewRequest(&changeadvisoryv1.RequestChangeRequest{ContractId: "nope", Title: "x", Category: software}))
			return err
		},
		"end before start": func() error {
			_, err := c.RequestChange(ctx, connect.NewRequest(&changeadvisoryv1.RequestChangeRequest{ContractId: contractID, Title: "x", Category: software,
				PlannedStart: timestamppb.New(sat), PlannedEnd: timestamppb.New(sat.Add(-time.Hour))}))
			return err
		},
		"negative downtime": func() error {
			_, err := c.RequestChange(ctx, connect.NewRequest(&changeadvisoryv1.RequestChangeRequest{ContractId: contractID, Title: "x", Category: software, ExpectedDowntime: durationpb.New(-time.Hour)}))
			return err
		},
		"link without id": func() error {
			_, err := c.RequestChange(ctx, connect.NewRequest(&changeadvisoryv1.RequestChangeRequest{ContractId: contractID, Title: "x", Category: software,
				Links: []*changeadvisoryv1.LinkedObject{{Kind: "patching.remediation"}}}))
			return err
		},
		"reject without reason": func() error {
			_, err := c.RejectChange(ctx, connect.NewRequest(&changeadvisoryv1.RejectChangeRequest{ChangeId: r.ChangeId}))
			return err
		},
		"review without date": func() error {
			_, err := c.ScheduleReview(ctx, connect.NewRequest(&changeadvisoryv1.ScheduleReviewRequest{ChangeId: r.ChangeId}))
			return err
		},
		"change id not a uuid": func() error {
			_, err := c.ApproveChange(ctx, connect.NewRequest(&changeadvisoryv1.ApproveChangeRequest{ChangeId: "chg-1"}))
			return err
		},
		"half a linked-object filter": func() error {
			_, err := c.ListChanges(ctx, connect.NewRequest(&changeadvisoryv1.ListChangesRequest{LinkedKind: "patching.remediation"}))
			return err
		},
		"bad page token": func() error {
			_, err := c.ListChanges(ctx, connect.NewRequest(&changeadvisoryv1.ListChangesRequest{PageToken: "!!"}))
			return err
		},
	} {
		t.Run(name, func(t *testing.T) { code(t, connect.CodeInvalidArgument, call()) })
	}
	_, err := c.ApproveChange(ctx, connect.NewRequest(&changeadvisoryv1.ApproveChangeRequest{ChangeId: event.NewID()}))
	code(t, connect.CodeNotFound, err)
	if after := p.last(); after != before {
		t.Fatalf("bad input appended events: position %d -> %d", before, after)
	}
}

func TestListPagesNewestFirst(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	var ids []string
	for range 5 {
		ids = append(ids, p.request(customer, contractID, hardware).ChangeId)
		p.clock.Advance(time.Minute)
	}
	c := p.client(provider)
	var got []string
	token := ""
	for {
		page := must[changeadvisoryv1.ListChangesResponse](t)(c.ListChanges(ctx, connect.NewRequest(&changeadvisoryv1.ListChangesRequest{PageSize: 2, PageToken: token, MinPosition: p.last()})))
		for _, ch := range page.Changes {
			got = append(got, ch.GetChangeId())
		}
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	slices.Reverse(ids)
	if !slices.Equal(got, ids) {
		t.Fatalf("pages %v, want %v", got, ids)
	}
}

// An emergency change reviewed late before any scheduler tick: the late
// review records the overdue review first, once; the other party's late
// review and the scheduler record nothing more.
func TestEmergencyChangeReviewedLateBeforeTheScheduler(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	r := p.request(provider, contractID, software, func(r *changeadvisoryv1.RequestChangeRequest) { r.Emergency = true })
	prov, cust := p.client(provider), p.client(customer)
	im := must[changeadvisoryv1.RecordImplementationResponse](t)(prov.RecordImplementation(ctx, connect.NewRequest(&changeadvisoryv1.RecordImplementationRequest{ChangeId: r.ChangeId, Success: true})))
	p.clock.Advance(im.GetReviewDueAt().AsTime().Sub(p.clock.Now()) + time.Second)

	pr := must[changeadvisoryv1.ReviewEmergencyChangeResponse](t)(prov.ReviewEmergencyChange(ctx, connect.NewRequest(&changeadvisoryv1.ReviewEmergencyChangeRequest{ChangeId: r.ChangeId, Accepted: true})))
	cr := must[changeadvisoryv1.ReviewEmergencyChangeResponse](t)(cust.ReviewEmergencyChange(ctx, connect.NewRequest(&changeadvisoryv1.ReviewEmergencyChangeRequest{ChangeId: r.ChangeId, Accepted: true})))
	if cr.Position <= pr.Position {
		t.Fatalf("the customer's review at %d, the provider's at %d", cr.Position, pr.Position)
	}
	p.get(customer, r.ChangeId, cr.Position)
	if n, err := p.changes.Scheduler().Tick(ctx); err != nil || n != 0 {
		t.Fatalf("after the late reviews the scheduler recorded %d (%v)", n, err)
	}
	if n := countEvents(t, p.store, r.ChangeId, "jsm.changeadvisory.v1.EmergencyReviewOverdue"); n != 1 {
		t.Fatalf("%d EmergencyReviewOverdue events, want exactly 1", n)
	}
	evs, err := p.store.Load(ctx, readmodel.ChangeType, r.ChangeId, 0)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range evs {
		types = append(types, strings.TrimPrefix(e.Type, "jsm.changeadvisory.v1."))
	}
	if want := []string{"ChangeRequested", "ChangeImplemented", "EmergencyReviewOverdue", "EmergencyChangeReviewed", "EmergencyChangeReviewed"}; !slices.Equal(types, want) {
		t.Fatalf("events %v, want %v", types, want)
	}
	for _, e := range evs {
		if o, ok := decode(t, e).(*changeadvisoryv1.EmergencyReviewOverdue); ok && !slices.Equal(o.GetMissingOrgIds(), []string{customer, provider}) && !slices.Equal(o.GetMissingOrgIds(), []string{provider, customer}) {
			t.Fatalf("overdue event names %v missing, want both", o.GetMissingOrgIds())
		}
	}
	if c := p.get(customer, r.ChangeId, cr.Position); !c.GetReviewOverdue() || len(c.GetEmergencyReviews()) != 2 {
		t.Fatalf("change = %v", c)
	}
}

func decode(t *testing.T, e event.Event) proto.Message {
	t.Helper()
	m, err := e.Decode()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A command retried with the same request_id answers with its first
// result and appends nothing; the key belongs to its caller.
func TestRetriedImplementationAnswersAsFirst(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	r := p.request(provider, contractID, hardware, p.inWindow)
	p.approve(provider, r.ChangeId)
	req := &changeadvisoryv1.RecordImplementationRequest{ChangeId: r.ChangeId, Success: true, RequestId: "itsm-impl-9"}
	first := must[changeadvisoryv1.RecordImplementationResponse](t)(p.client(provider).RecordImplementation(ctx, connect.NewRequest(req)))
	again := must[changeadvisoryv1.RecordImplementationResponse](t)(p.client(provider).RecordImplementation(ctx, connect.NewRequest(req)))
	if first.Position != again.Position {
		t.Fatalf("retry at %d, first at %d", again.Position, first.Position)
	}
	if n := countEvents(t, p.store, r.ChangeId, "jsm.changeadvisory.v1.ChangeImplemented"); n != 1 {
		t.Fatalf("%d ChangeImplemented events, want 1", n)
	}
	// The same key from the other party is another request: a failure
	// after the recorded success is refused, and so it is without a key.
	failed := &changeadvisoryv1.RecordImplementationRequest{ChangeId: r.ChangeId, Success: false, RequestId: req.RequestId}
	_, err := p.client(customer).RecordImplementation(ctx, connect.NewRequest(failed))
	code(t, connect.CodeFailedPrecondition, err)
	failed.RequestId = ""
	_, err = p.client(provider).RecordImplementation(ctx, connect.NewRequest(failed))
	code(t, connect.CodeFailedPrecondition, err)
}

// Queries wait for min_position (read your writes); a position beyond the
// stream is a bad argument, and a read model that does not get there in
// time answers unavailable.
func TestReadsWaitForMinPosition(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	r := p.request(provider, contractID, hardware)
	if c := p.get(customer, r.ChangeId, r.Position); c.GetStatus() != statusRequested {
		t.Fatalf("change at %d: %v", r.Position, c)
	}
	_, err := p.client(customer).GetChange(ctx, connect.NewRequest(&changeadvisoryv1.GetChangeRequest{ChangeId: r.ChangeId, MinPosition: r.Position + 1000}))
	code(t, connect.CodeInvalidArgument, err)

	// An instance whose projector does not run never reaches the position.
	stalled := p.newService()
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := auth.NewVerifier(auth.VerifierConfig{Issuer: auth.DevIssuer, Audience: auth.DevAudience, Keys: []crypto.PublicKey{pub}})
	if err != nil {
		t.Fatal(err)
	}
	interceptors, err := rpc.Interceptors(verifier, stalled.Policy(), nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for _, h := range stalled.Handlers(interceptors) {
		mux.Handle(h.Path, h.Handler)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	tok, err := auth.Mint(key, auth.DevIssuer, auth.DevAudience, auth.Principal{Org: customer, User: "carol", Roles: []string{"viewer"}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	lagging := changeadvisoryv1connect.NewChangeServiceClient(http.DefaultClient, srv.URL, connect.WithInterceptors(testkit.Bearer(tok)))
	_, err = lagging.GetChange(ctx, connect.NewRequest(&changeadvisoryv1.GetChangeRequest{ChangeId: r.ChangeId, MinPosition: r.Position}))
	code(t, connect.CodeUnavailable, err)
	_, err = lagging.ListChanges(ctx, connect.NewRequest(&changeadvisoryv1.ListChangesRequest{MinPosition: r.Position}))
	code(t, connect.CodeUnavailable, err)
}
