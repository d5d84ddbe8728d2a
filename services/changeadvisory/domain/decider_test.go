package domain_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	changeadvisoryv1 "github.com/jsmplatform/jsm/proto/gen/jsm/changeadvisory/v1"
	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
	"github.com/jsmplatform/jsm/services/changeadvisory/domain"
)

// ---- fixtures ---------------------------------------------------------------

const (
	changeID   = "chg-1"
	contractID = "con-1"
	title      = "Patch OpenSSL on the web tier"

	customer domain.OrgID = "org-customer"
	provider domain.OrgID = "org-provider"
	outsider domain.OrgID = "org-outsider"

	software = commonv1.ChangeCategory_CHANGE_CATEGORY_SOFTWARE
	hardware = commonv1.ChangeCategory_CHANGE_CATEGORY_HARDWARE

	statusRequested   = changeadvisoryv1.ChangeStatus_CHANGE_STATUS_REQUESTED
	statusInReview    = changeadvisoryv1.ChangeStatus_CHANGE_STATUS_IN_REVIEW
	statusApproved    = changeadvisoryv1.ChangeStatus_CHANGE_STATUS_APPROVED
	statusRejected    = changeadvisoryv1.ChangeStatus_CHANGE_STATUS_REJECTED
	statusImplemented = changeadvisoryv1.ChangeStatus_CHANGE_STATUS_IMPLEMENTED
	statusFailed      = changeadvisoryv1.ChangeStatus_CHANGE_STATUS_FAILED
	statusRolledBack  = changeadvisoryv1.ChangeStatus_CHANGE_STATUS_ROLLED_BACK
	statusClosed      = changeadvisoryv1.ChangeStatus_CHANGE_STATUS_CLOSED

	hour = time.Hour
	sec  = time.Second
	day  = 24 * time.Hour
)

var (
	// base is a Monday; the contract's maintenance window is Saturday 02:00-06:00 UTC.
	base     = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	saturday = time.Date(2026, 3, 7, 2, 0, 0, 0, time.UTC)
	links    = []domain.Link{{Kind: "patching.remediation", ID: "rem-1", Items: []string{"web-01", "web-02"}}}
)

func at(d time.Duration) time.Time { return base.Add(d) }

func by(org domain.OrgID, t time.Time) domain.By {
	return domain.By{Actor: domain.Actor{Org: org, User: string(org) + "-user"}, At: t}
}

// terms: software changes need the customer's approval; emergency changes
// are reviewed within 48 h.
func terms() domain.Contract {
	return domain.Contract{
		ID: contractID, Customer: customer, Provider: provider, InForce: true,
		CustomerApprovalCategories: []commonv1.ChangeCategory{software, commonv1.ChangeCategory_CHANGE_CATEGORY_SERVICE_SCOPE},
		MaintenanceWindows:         []domain.Window{{Weekday: 6, Start: "02:00", Duration: 4 * hour}},
		EmergencyReviewWithin:      48 * hour,
	}
}

// ---- commands ---------------------------------------------------------------

// request: the provider requests a software change inside the window, one hour of downtime.
func request(mods ...func(*domain.RequestChange)) *domain.RequestChange {
	c := &domain.RequestChange{
		By: by(provider, base), ChangeID: changeID, Contract: terms(),
		Title: title, Description: "CVE-2026-0001", Category: software, Risk: changeadvisoryv1.Risk_RISK_MEDIUM,
		Impact: "web tier restarts", PlannedStart: saturday, PlannedEnd: saturday.Add(2 * hour), ExpectedDowntime: hour,
		RollbackPlan: "reinstall the previous package", Links: links,
	}
	for _, m := range mods {
		m(c)
	}
	return c
}

func category(cat commonv1.ChangeCategory) func(*domain.RequestChange) {
	return func(c *domain.RequestChange) { c.Category = cat }
}

// outsideWindow plans the change for Monday noon.
func outsideWindow(c *domain.RequestChange) {
	c.PlannedStart, c.PlannedEnd = at(2*hour), at(4*hour)
}

func emergency(c *domain.RequestChange) { c.Emergency = true }

func schedule(org domain.OrgID, t, review time.Time) *domain.ScheduleReview {
	return &domain.ScheduleReview{By: by(org, t), ReviewAt: review, Note: "CAB"}
}
func approve(org domain.OrgID, t time.Time) *domain.ApproveChange {
	return &domain.ApproveChange{By: by(org, t), Comment: "ok"}
}
func reject(org domain.OrgID, t time.Time) *domain.RejectChange {
	return &domain.RejectChange{By: by(org, t), Reason: "not now"}
}
func agree(org domain.OrgID, t time.Time) *domain.AgreeDowntime {
	return &domain.AgreeDowntime{By: by(org, t)}
}
func implement(org domain.OrgID, t time.Time, success bool) *domain.RecordImplementation {
	return &domain.RecordImplementation{By: by(org, t), Success: success, Notes: "done"}
}
func rollback(org domain.OrgID, t time.Time) *domain.RecordRollback {
	return &domain.RecordRollback{By: by(org, t), Reason: "broke logins"}
}
func review(org domain.OrgID, t time.Time) *domain.ReviewEmergencyChange {
	return &domain.ReviewEmergencyChange{By: by(org, t), Accepted: true, Comment: "justified"}
}
func closeChange(org domain.OrgID, t time.Time) *domain.CloseChange {
	return &domain.CloseChange{By: by(org, t)}
}
func markOverdue(t time.Time) *domain.MarkReviewOverdue {
	return &domain.MarkReviewOverdue{By: domain.By{At: t}}
}

// ---- events -----------------------------------------------------------------

func ts(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

func pbLinks() []*changeadvisoryv1.LinkedObject {
	return []*changeadvisoryv1.LinkedObject{{Kind: "patching.remediation", Id: "rem-1", Items: []string{"web-01", "web-02"}}}
}

func requested(mods ...func(*changeadvisoryv1.ChangeRequested)) *changeadvisoryv1.ChangeRequested {
	e := &changeadvisoryv1.ChangeRequested{
		ChangeId: changeID, ContractId: contractID, CustomerOrgId: string(customer), ProviderOrgId: string(provider), RequesterOrgId: string(provider),
		Title: title, Description: "CVE-2026-0001", Category: software, Risk: changeadvisoryv1.Risk_RISK_MEDIUM, Impact: "web tier restarts",
		PlannedStart: ts(saturday), PlannedEnd: ts(saturday.Add(2 * hour)), ExpectedDowntime: durationpb.New(hour),
		RollbackPlan: "reinstall the previous package", Links: pbLinks(),
		RequiredApproverOrgIds: []string{string(provider), string(customer)},
	}
	for _, m := range mods {
		m(e)
	}
	return e
}

func approvalGiven(org domain.OrgID, t time.Time) *changeadvisoryv1.ChangeApprovalGiven {
	return &changeadvisoryv1.ChangeApprovalGiven{ChangeId: changeID, OrgId: string(org), Comment: "ok", ApprovedAt: ts(t)}
}
func approved(t time.Time) *changeadvisoryv1.ChangeApproved {
	return &changeadvisoryv1.ChangeApproved{ChangeId: changeID, ContractId: contractID, Links: pbLinks(), ApprovedAt: ts(t)}
}
func downtimeAgreed(t time.Time) *changeadvisoryv1.DowntimeAgreed {
	return &changeadvisoryv1.DowntimeAgreed{ChangeId: changeID, OrgId: string(customer), AgreedAt: ts(t)}
}
func implemented(t time.Time, success bool, due *timestamppb.Timestamp) *changeadvisoryv1.ChangeImplemented {
	return &changeadvisoryv1.ChangeImplemented{ChangeId: changeID, ContractId: contractID, Success: success, Notes: "done", Links: pbLinks(), ImplementedAt: ts(t), ReviewDueAt: due}
}
func reviewed(org domain.OrgID, t time.Time) *changeadvisoryv1.EmergencyChangeReviewed {
	return &changeadvisoryv1.EmergencyChangeReviewed{ChangeId: changeID, OrgId: string(org), Accepted: true, Comment: "justified", ReviewedAt: ts(t)}
}
func reviewOverdue(due, detected time.Time, missing ...domain.OrgID) *changeadvisoryv1.EmergencyReviewOverdue {
	e := &changeadvisoryv1.EmergencyReviewOverdue{ChangeId: changeID, DueAt: ts(due), DetectedAt: ts(detected)}
	for _, o := range missing {
		e.MissingOrgIds = append(e.MissingOrgIds, string(o))
	}
	return e
}

// ---- given / when / then ----------------------------------------------------

func fold(t *testing.T, cmds ...domain.Command) domain.State {
	t.Helper()
	var s domain.State
	for i, cmd := range cmds {
		es, err := domain.Decide(s, cmd)
		if err != nil {
			t.Fatalf("given %d (%T): %v", i, cmd, err)
		}
		s = apply(s, cmd, es...)
	}
	return s
}

func apply(s domain.State, cmd domain.Command, es ...proto.Message) domain.State {
	b := domain.ByOf(cmd)
	for _, e := range es {
		s = domain.Evolve(s, e, domain.Meta{Time: b.At, Actor: b.Actor, Position: s.Position + 1})
	}
	return s
}

func history(cmds ...domain.Command) []domain.Command { return cmds }

type spec struct {
	name  string
	given []domain.Command
	when  domain.Command
	then  []proto.Message
	err   error
	field string
	state func(t *testing.T, s domain.State)
}

func (c spec) run(t *testing.T) {
	t.Helper()
	s := fold(t, c.given...)
	before := snapshot(t, s)
	got, err := domain.Decide(s, c.when)
	if c.err != nil {
		if !errors.Is(err, c.err) {
			t.Fatalf("error = %v, want %v", err, c.err)
		}
		if c.field != "" {
			var ve domain.ValidationError
			if !errors.As(err, &ve) || ve.Field != c.field {
				t.Fatalf("error = %v, want a validation error of field %q", err, c.field)
			}
		}
		if got != nil {
			t.Fatalf("events %s alongside error %v", text(got), err)
		}
		return
	}
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if len(got) != len(c.then) {
		t.Fatalf("got %d events, want %d:\n%s", len(got), len(c.then), text(got))
	}
	for i := range got {
		if !proto.Equal(got[i], c.then[i]) {
			t.Fatalf("event %d:\n got %s\nwant %s", i, text(got[i:i+1]), text(c.then[i:i+1]))
		}
	}
	after := apply(s, c.when, got...)
	if now := snapshot(t, s); now != before {
		t.Fatalf("decide or evolve changed the earlier state:\nbefore %s\nafter  %s", before, now)
	}
	fromWire := s
	for _, e := range got {
		fromWire = apply(fromWire, c.when, wire(t, e))
	}
	if !reflect.DeepEqual(after, fromWire) {
		t.Fatalf("state from decoded events differs:\n%+v\n%+v", after, fromWire)
	}
	// The state survives its JSON snapshot.
	var back domain.State
	if err := json.Unmarshal([]byte(snapshot(t, after)), &back); err != nil || snapshot(t, back) != snapshot(t, after) {
		t.Fatalf("state does not survive JSON: %v", err)
	}
	if c.state != nil {
		c.state(t, after)
	}
}

func snapshot(t *testing.T, s domain.State) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func wire(t *testing.T, m proto.Message) proto.Message {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	out := m.ProtoReflect().New().Interface()
	if err := proto.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func text(ms []proto.Message) string {
	s := ""
	for _, m := range ms {
		s += string(proto.MessageName(m)) + " {" + prototext.MarshalOptions{}.Format(m) + "}\n"
	}
	return s
}

func status(want changeadvisoryv1.ChangeStatus) func(*testing.T, domain.State) {
	return func(t *testing.T, s domain.State) {
		t.Helper()
		if s.Status != want {
			t.Fatalf("status %s, want %s", s.Status, want)
		}
	}
}

func run(t *testing.T, specs []spec) {
	for _, c := range specs {
		t.Run(c.name, c.run)
	}
}

// ---- request ----------------------------------------------------------------

func TestRequestChange(t *testing.T) {
	ended := terms()
	ended.EndsAt = base
	notInForce := terms()
	notInForce.InForce = false
	run(t, []spec{
		{name: "provider requests a software change: both approve", when: request(), then: []proto.Message{requested()}, state: status(statusRequested)},
		{name: "customer requests", when: request(func(c *domain.RequestChange) { c.By = by(customer, base) }),
			then: []proto.Message{requested(func(e *changeadvisoryv1.ChangeRequested) { e.RequesterOrgId = string(customer) })}},
		{name: "a category the contract does not name: provider alone", when: request(category(hardware)),
			then: []proto.Message{requested(func(e *changeadvisoryv1.ChangeRequested) {
				e.Category = hardware
				e.RequiredApproverOrgIds = []string{string(provider)}
			})}},
		{name: "downtime outside the windows needs agreement", when: request(outsideWindow),
			then: []proto.Message{requested(func(e *changeadvisoryv1.ChangeRequested) {
				e.PlannedStart, e.PlannedEnd = ts(at(2*hour)), ts(at(4*hour))
				e.DowntimeNeedsAgreement = true
			})}},
		{name: "no downtime outside the windows needs none", when: request(outsideWindow, func(c *domain.RequestChange) { c.ExpectedDowntime = 0 }),
			then: []proto.Message{requested(func(e *changeadvisoryv1.ChangeRequested) {
				e.PlannedStart, e.PlannedEnd = ts(at(2*hour)), ts(at(4*hour))
				e.ExpectedDowntime = nil
			})}},
		{name: "downtime without a planned window needs agreement", when: request(func(c *domain.RequestChange) { c.PlannedStart, c.PlannedEnd = time.Time{}, time.Time{} }),
			then: []proto.Message{requested(func(e *changeadvisoryv1.ChangeRequested) {
				e.PlannedStart, e.PlannedEnd = nil, nil
				e.DowntimeNeedsAgreement = true
			})}},
		{name: "emergency carries the review period", when: request(emergency),
			then: []proto.Message{requested(func(e *changeadvisoryv1.ChangeRequested) {
				e.Emergency = true
				e.EmergencyReviewWithin = durationpb.New(48 * hour)
			})}},
		{name: "unspecified risk is low", when: request(func(c *domain.RequestChange) { c.Risk = 0 }),
			then: []proto.Message{requested(func(e *changeadvisoryv1.ChangeRequested) { e.Risk = changeadvisoryv1.Risk_RISK_LOW })}},
		{name: "the platform on the provider's behalf", when: request(func(c *domain.RequestChange) {
			c.By = domain.By{Actor: domain.Actor{Org: provider, User: "patching-reactor"}, At: base}
		}), then: []proto.Message{requested()}},
		{name: "twice", given: history(request()), when: request(), err: domain.ErrAlreadyExists},
		{name: "outsider", when: request(func(c *domain.RequestChange) { c.By = by(outsider, base) }), err: domain.ErrNotParty},
		{name: "unknown contract", when: request(func(c *domain.RequestChange) { c.Contract = domain.Contract{} }), err: domain.NotFoundError{What: "contract"}},
		{name: "contract not in force", when: request(func(c *domain.RequestChange) { c.Contract = notInForce }), err: domain.ErrContractNotActive},
		{name: "contract ended", when: request(func(c *domain.RequestChange) { c.Contract = ended }), err: domain.ErrContractNotActive},
		{name: "no id", when: request(func(c *domain.RequestChange) { c.ChangeID = "" }), err: domain.ErrInvalid, field: "change_id"},
		{name: "blank title", when: request(func(c *domain.RequestChange) { c.Title = " " }), err: domain.ErrInvalid, field: "title"},
		{name: "no category", when: request(category(0)), err: domain.ErrInvalid, field: "category"},
		{name: "unknown category", when: request(category(99)), err: domain.ErrInvalid, field: "category"},
		{name: "unknown risk", when: request(func(c *domain.RequestChange) { c.Risk = 9 }), err: domain.ErrInvalid, field: "risk"},
		{name: "start without end", when: request(func(c *domain.RequestChange) { c.PlannedEnd = time.Time{} }), err: domain.ErrInvalid, field: "planned_end"},
		{name: "end before start", when: request(func(c *domain.RequestChange) { c.PlannedEnd = c.PlannedStart }), err: domain.ErrInvalid, field: "planned_end"},
		{name: "negative downtime", when: request(func(c *domain.RequestChange) { c.ExpectedDowntime = -sec }), err: domain.ErrInvalid, field: "expected_downtime"},
		{name: "downtime longer than the window", when: request(func(c *domain.RequestChange) { c.ExpectedDowntime = 3 * hour }), err: domain.ErrInvalid, field: "expected_downtime"},
		{name: "link without id", when: request(func(c *domain.RequestChange) { c.Links = []domain.Link{{Kind: "patching.remediation"}} }), err: domain.ErrInvalid, field: "links[0]"},
		{name: "duplicate link", when: request(func(c *domain.RequestChange) { c.Links = append(links, links...) }), err: domain.ErrInvalid, field: "links[1]"},
		{name: "duplicate item", when: request(func(c *domain.RequestChange) {
			c.Links = []domain.Link{{Kind: "patching.remediation", ID: "rem-1", Items: []string{"a", "a"}}}
		}), err: domain.ErrInvalid, field: "links[0].items[1]"},
		{name: "nil command", when: (*domain.RequestChange)(nil), err: domain.ErrInvalid},
	})
}

// ---- review, approvals, rejection, downtime -----------------------------------

func TestApprovals(t *testing.T) {
	hw := request(category(hardware))
	run(t, []spec{
		{name: "CAB review scheduled", given: history(request()), when: schedule(customer, at(hour), at(day)),
			then: []proto.Message{&changeadvisoryv1.ReviewScheduled{ChangeId: changeID, ReviewAt: ts(at(day)), Note: "CAB"}}, state: status(statusInReview)},
		{name: "review moved", given: history(request(), schedule(customer, at(hour), at(day))), when: schedule(provider, at(2*hour), at(2*day)),
			then: []proto.Message{&changeadvisoryv1.ReviewScheduled{ChangeId: changeID, ReviewAt: ts(at(2 * day)), Note: "CAB"}}, state: status(statusInReview)},
		{name: "same review again: no-op", given: history(request(), schedule(customer, at(hour), at(day))), when: schedule(provider, at(2*hour), at(day))},
		{name: "review without date", given: history(request()), when: schedule(customer, at(hour), time.Time{}), err: domain.ErrInvalid, field: "review_at"},
		{name: "review of an approved change", given: history(hw, approve(provider, at(hour))), when: schedule(customer, at(2*hour), at(day)), err: domain.ErrWrongStatus},
		{name: "review by an outsider", given: history(request()), when: schedule(outsider, at(hour), at(day)), err: domain.ErrNotParty},

		{name: "first of two approvals", given: history(request()), when: approve(provider, at(hour)),
			then: []proto.Message{approvalGiven(provider, at(hour))}, state: status(statusRequested)},
		{name: "second approval approves", given: history(request(), approve(provider, at(hour))), when: approve(customer, at(2*hour)),
			then: []proto.Message{approvalGiven(customer, at(2*hour)), approved(at(2 * hour))}, state: status(statusApproved)},
		{name: "approval in review", given: history(request(), schedule(customer, at(hour), at(day)), approve(customer, at(day))), when: approve(provider, at(day+hour)),
			then: []proto.Message{approvalGiven(provider, at(day+hour)), approved(at(day + hour))}, state: status(statusApproved)},
		{name: "provider alone approves what the contract does not name", given: history(hw), when: approve(provider, at(hour)),
			then: []proto.Message{approvalGiven(provider, at(hour)), approved(at(hour))}, state: status(statusApproved)},
		{name: "approving twice: no-op", given: history(request(), approve(provider, at(hour))), when: approve(provider, at(2*hour))},
		{name: "approving an approved change again: no-op", given: history(hw, approve(provider, at(hour))), when: approve(provider, at(2*hour))},
		{name: "customer not required", given: history(hw), when: approve(customer, at(hour)), err: domain.ErrWrongParty},
		{name: "outsider approves", given: history(request()), when: approve(outsider, at(hour)), err: domain.ErrNotParty},
		{name: "approval of a rejected change", given: history(request(), reject(customer, at(hour))), when: approve(provider, at(2*hour)), err: domain.ErrWrongStatus},
		{name: "unknown change", when: approve(provider, at(hour)), err: domain.NotFoundError{What: "change"}},

		{name: "customer rejects", given: history(request(), approve(provider, at(hour))), when: reject(customer, at(2*hour)),
			then:  []proto.Message{&changeadvisoryv1.ChangeRejected{ChangeId: changeID, ContractId: contractID, OrgId: string(customer), Reason: "not now", Links: pbLinks(), RejectedAt: ts(at(2 * hour))}},
			state: status(statusRejected)},
		{name: "provider rejects in review", given: history(request(), schedule(customer, at(hour), at(day))), when: reject(provider, at(day)),
			then:  []proto.Message{&changeadvisoryv1.ChangeRejected{ChangeId: changeID, ContractId: contractID, OrgId: string(provider), Reason: "not now", Links: pbLinks(), RejectedAt: ts(at(day))}},
			state: status(statusRejected)},
		{name: "rejecting twice: no-op", given: history(request(), reject(customer, at(hour))), when: reject(provider, at(2*hour))},
		{name: "rejection without reason", given: history(request()), when: &domain.RejectChange{By: by(customer, at(hour))}, err: domain.ErrInvalid, field: "reason"},
		{name: "rejection by a party not required", given: history(hw), when: reject(customer, at(hour)), err: domain.ErrWrongParty},
		{name: "rejection after approval", given: history(hw, approve(provider, at(hour))), when: reject(provider, at(2*hour)), err: domain.ErrWrongStatus},
	})
}

func TestDowntimeAgreement(t *testing.T) {
	out := request(outsideWindow)
	hwOut := request(outsideWindow, category(hardware))
	run(t, []spec{
		{name: "all approvals but no agreement: not approved", given: history(out, approve(provider, at(hour))), when: approve(customer, at(2*hour)),
			then: []proto.Message{approvalGiven(customer, at(2*hour))}, state: status(statusRequested)},
		{name: "agreement last approves", given: history(out, approve(provider, at(hour)), approve(customer, at(2*hour))), when: agree(customer, at(3*hour)),
			then: []proto.Message{downtimeAgreed(at(3 * hour)), approved(at(3 * hour))}, state: status(statusApproved)},
		{name: "agreement first, approval last approves", given: history(out, agree(customer, at(hour)), approve(customer, at(2*hour))), when: approve(provider, at(3*hour)),
			then: []proto.Message{approvalGiven(provider, at(3*hour)), approved(at(3 * hour))}, state: status(statusApproved)},
		{name: "the customer agrees even when only the provider approves", given: history(hwOut, approve(provider, at(hour))), when: agree(customer, at(2*hour)),
			then: []proto.Message{downtimeAgreed(at(2 * hour)), approved(at(2 * hour))}, state: status(statusApproved)},
		{name: "agreeing twice: no-op", given: history(out, agree(customer, at(hour))), when: agree(customer, at(2*hour))},
		{name: "the provider does not agree for the customer", given: history(out), when: agree(provider, at(hour)), err: domain.ErrWrongParty},
		{name: "nothing to agree inside the window", given: history(request()), when: agree(customer, at(hour)), err: domain.ErrNoDowntimeAgreement},
		{name: "agreement to a rejected change", given: history(out, reject(customer, at(hour))), when: agree(customer, at(2*hour)), err: domain.ErrWrongStatus},
	})
}

// ---- implementation, rollback, close ------------------------------------------

func TestImplementation(t *testing.T) {
	hw := request(category(hardware))
	ok := history(hw, approve(provider, at(hour)))
	run(t, []spec{
		{name: "approved change implemented", given: ok, when: implement(provider, at(day), true),
			then: []proto.Message{implemented(at(day), true, nil)}, state: status(statusImplemented)},
		{name: "approved change failed", given: ok, when: implement(provider, at(day), false),
			then: []proto.Message{implemented(at(day), false, nil)}, state: status(statusFailed)},
		{name: "recorded twice: no-op", given: history(hw, approve(provider, at(hour)), implement(provider, at(day), true)), when: implement(provider, at(day+hour), true)},
		{name: "recorded again with another outcome", given: history(hw, approve(provider, at(hour)), implement(provider, at(day), true)), when: implement(provider, at(day+hour), false), err: domain.ErrWrongStatus},
		{name: "not approved", given: history(request(), approve(provider, at(hour))), when: implement(provider, at(day), true), err: domain.ErrWrongStatus},
		{name: "rejected", given: history(request(), reject(customer, at(hour))), when: implement(provider, at(day), true), err: domain.ErrWrongStatus},
		{name: "outsider", given: ok, when: implement(outsider, at(day), true), err: domain.ErrNotParty},

		{name: "rolled back after implementation", given: history(hw, approve(provider, at(hour)), implement(provider, at(day), true)), when: rollback(provider, at(day+hour)),
			then:  []proto.Message{&changeadvisoryv1.ChangeRolledBack{ChangeId: changeID, ContractId: contractID, Reason: "broke logins", Links: pbLinks(), RolledBackAt: ts(at(day + hour))}},
			state: status(statusRolledBack)},
		{name: "rolled back after failure", given: history(hw, approve(provider, at(hour)), implement(provider, at(day), false)), when: rollback(customer, at(day+hour)),
			then:  []proto.Message{&changeadvisoryv1.ChangeRolledBack{ChangeId: changeID, ContractId: contractID, Reason: "broke logins", Links: pbLinks(), RolledBackAt: ts(at(day + hour))}},
			state: status(statusRolledBack)},
		{name: "rolled back twice: no-op", given: history(hw, approve(provider, at(hour)), implement(provider, at(day), false), rollback(provider, at(day+hour))), when: rollback(provider, at(day+2*hour))},
		{name: "rollback before implementation", given: ok, when: rollback(provider, at(day)), err: domain.ErrWrongStatus},
		{name: "rollback without reason", given: history(hw, approve(provider, at(hour)), implement(provider, at(day), true)), when: &domain.RecordRollback{By: by(provider, at(day))}, err: domain.ErrInvalid, field: "reason"},

		{name: "close implemented", given: history(hw, approve(provider, at(hour)), implement(provider, at(day), true)), when: closeChange(customer, at(2*day)),
			then: []proto.Message{&changeadvisoryv1.ChangeClosed{ChangeId: changeID, ContractId: contractID, Links: pbLinks(), ClosedAt: ts(at(2 * day))}}, state: status(statusClosed)},
		{name: "close rolled back", given: history(hw, approve(provider, at(hour)), implement(provider, at(day), false), rollback(provider, at(day+hour))), when: closeChange(provider, at(2*day)),
			then: []proto.Message{&changeadvisoryv1.ChangeClosed{ChangeId: changeID, ContractId: contractID, Links: pbLinks(), ClosedAt: ts(at(2 * day))}}, state: status(statusClosed)},
		{name: "close rejected", given: history(request(), reject(customer, at(hour))), when: closeChange(provider, at(2*hour)),
			then: []proto.Message{&changeadvisoryv1.ChangeClosed{ChangeId: changeID, ContractId: contractID, Links: pbLinks(), ClosedAt: ts(at(2 * hour))}}, state: status(statusClosed)},
		{name: "close twice: no-op", given: history(request(), reject(customer, at(hour)), closeChange(provider, at(2*hour))), when: closeChange(customer, at(3*hour))},
		{name: "close an approved change", given: ok, when: closeChange(provider, at(day)), err: domain.ErrWrongStatus},
		{name: "close a requested change", given: history(request()), when: closeChange(provider, at(day)), err: domain.ErrWrongStatus},
		{name: "implementation of a closed change", given: history(hw, approve(provider, at(hour)), implement(provider, at(day), true), closeChange(provider, at(2*day))), when: implement(provider, at(3*day), true), err: domain.ErrWrongStatus},
	})
}

// ---- emergency changes ---------------------------------------------------------

func TestEmergencyChange(t *testing.T) {
	em := request(emergency)
	due := at(day + 48*hour)
	done := history(em, implement(provider, at(day), true))
	run(t, []spec{
		{name: "implemented before approval", given: history(em), when: implement(provider, at(day), true),
			then: []proto.Message{implemented(at(day), true, ts(due))}, state: func(t *testing.T, s domain.State) {
				if s.Status != statusImplemented || !s.ReviewDueAt.Equal(due) || !s.ReviewPending() {
					t.Fatalf("state %+v", s)
				}
			}},
		{name: "implemented in review", given: history(em, schedule(customer, at(hour), at(day))), when: implement(provider, at(day), false),
			then: []proto.Message{implemented(at(day), false, ts(due))}, state: status(statusFailed)},
		{name: "implemented after approval still reviewed", given: history(request(emergency, category(hardware)), approve(provider, at(hour))), when: implement(provider, at(day), true),
			then: []proto.Message{implemented(at(day), true, ts(due))}},
		{name: "without a contractual period: no deadline", given: history(request(emergency, func(c *domain.RequestChange) { c.Contract.EmergencyReviewWithin = 0 })), when: implement(provider, at(day), true),
			then: []proto.Message{implemented(at(day), true, nil)}},
		{name: "emergency rejected first is not implemented", given: history(em, reject(customer, at(hour))), when: implement(provider, at(day), true), err: domain.ErrWrongStatus},

		{name: "reviewed in time", given: done, when: review(customer, at(2*day)), then: []proto.Message{reviewed(customer, at(2*day))}},
		{name: "reviewed exactly at the deadline: in time", given: done, when: review(customer, due), then: []proto.Message{reviewed(customer, due)}},
		{name: "reviewed late: the overdue review is recorded first", given: done, when: review(customer, due.Add(sec)),
			then: []proto.Message{reviewOverdue(due, due.Add(sec), provider, customer), reviewed(customer, due.Add(sec))}},
		{name: "reviewed late after the scheduler: no second overdue", given: history(em, implement(provider, at(day), true), markOverdue(due.Add(sec))), when: review(customer, due.Add(hour)),
			then: []proto.Message{reviewed(customer, due.Add(hour))}},
		{name: "reviewing twice: no-op", given: history(em, implement(provider, at(day), true), review(customer, at(2*day))), when: review(customer, at(2*day+hour))},
		{name: "review before implementation", given: history(em), when: review(customer, at(hour)), err: domain.ErrWrongStatus},
		{name: "review of an ordinary change", given: history(request(category(hardware)), approve(provider, at(hour)), implement(provider, at(day), true)), when: review(customer, at(2*day)), err: domain.ErrNotEmergency},
		{name: "review by an outsider", given: done, when: review(outsider, at(2*day)), err: domain.ErrNotParty},

		{name: "scheduler: exactly at the deadline not overdue", given: done, when: markOverdue(due)},
		{name: "scheduler: one second after, overdue", given: done, when: markOverdue(due.Add(sec)),
			then: []proto.Message{reviewOverdue(due, due.Add(sec), provider, customer)}, state: func(t *testing.T, s domain.State) {
				if !s.ReviewOverdue || s.ReviewPending() {
					t.Fatalf("state %+v", s)
				}
			}},
		{name: "scheduler: names only the missing party", given: history(em, implement(provider, at(day), true), review(provider, at(2*day))), when: markOverdue(due.Add(sec)),
			then: []proto.Message{reviewOverdue(due, due.Add(sec), customer)}},
		{name: "scheduler: recorded once", given: history(em, implement(provider, at(day), true), markOverdue(due.Add(sec))), when: markOverdue(due.Add(hour))},
		{name: "scheduler: both reviewed", given: history(em, implement(provider, at(day), true), review(provider, at(2*day)), review(customer, at(2*day))), when: markOverdue(due.Add(hour))},
		{name: "scheduler: not implemented", given: history(em), when: markOverdue(due.Add(hour))},
		{name: "scheduler: no deadline", given: history(request(emergency, func(c *domain.RequestChange) { c.Contract.EmergencyReviewWithin = 0 }), implement(provider, at(day), true)), when: markOverdue(due.Add(day))},
		{name: "scheduler: unknown change", when: markOverdue(due), err: domain.NotFoundError{What: "change"}},

		{name: "close waits for the reviews", given: history(em, implement(provider, at(day), true), review(provider, at(2*day))), when: closeChange(provider, at(2*day)), err: domain.ErrReviewPending},
		{name: "close after both reviews", given: history(em, implement(provider, at(day), true), review(provider, at(2*day)), review(customer, at(2*day))), when: closeChange(provider, at(2*day+hour)),
			then: []proto.Message{&changeadvisoryv1.ChangeClosed{ChangeId: changeID, ContractId: contractID, Links: pbLinks(), ClosedAt: ts(at(2*day + hour))}}},
		{name: "close after the review was recorded overdue", given: history(em, implement(provider, at(day), true), markOverdue(due.Add(sec))), when: closeChange(provider, due.Add(hour)),
			then: []proto.Message{&changeadvisoryv1.ChangeClosed{ChangeId: changeID, ContractId: contractID, Links: pbLinks(), ClosedAt: ts(due.Add(hour))}}},
		{name: "a rejected emergency change closes without review", given: history(em, reject(customer, at(hour))), when: closeChange(provider, at(2*hour)),
			then: []proto.Message{&changeadvisoryv1.ChangeClosed{ChangeId: changeID, ContractId: contractID, Links: pbLinks(), ClosedAt: ts(at(2 * hour))}}},
		{name: "no review of a closed change", given: history(em, implement(provider, at(day), true), markOverdue(due.Add(sec)), closeChange(provider, due.Add(hour))), when: review(customer, due.Add(2*hour)), err: domain.ErrWrongStatus},
	})
}

func TestEvolveIgnoresUnknownEvents(t *testing.T) {
	s := fold(t, request())
	next := domain.Evolve(s, &changeadvisoryv1.LinkedObject{}, domain.Meta{Time: at(hour), Position: 9})
	if next.Status != s.Status || next.Position != 9 {
		t.Fatalf("state %+v", next)
	}
}
