package domain

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	changeadvisoryv1 "github.com/jsmplatform/jsm/proto/gen/jsm/changeadvisory/v1"
	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
)

var (
	statusRequested   = changeadvisoryv1.ChangeStatus_CHANGE_STATUS_REQUESTED
	statusInReview    = changeadvisoryv1.ChangeStatus_CHANGE_STATUS_IN_REVIEW
	statusApproved    = changeadvisoryv1.ChangeStatus_CHANGE_STATUS_APPROVED
	statusRejected    = changeadvisoryv1.ChangeStatus_CHANGE_STATUS_REJECTED
	statusImplemented = changeadvisoryv1.ChangeStatus_CHANGE_STATUS_IMPLEMENTED
	statusFailed      = changeadvisoryv1.ChangeStatus_CHANGE_STATUS_FAILED
	statusRolledBack  = changeadvisoryv1.ChangeStatus_CHANGE_STATUS_ROLLED_BACK
	statusClosed      = changeadvisoryv1.ChangeStatus_CHANGE_STATUS_CLOSED
)

// Decide checks cmd against s and returns the events it causes, or a domain
// error. No events and no error means the command changes nothing (it was
// given before, or asks for what is already so).
func Decide(s State, cmd Command) ([]proto.Message, error) {
	if Missing(cmd) {
		return nil, invalid("command", "missing")
	}
	if c, ok := cmd.(*RequestChange); ok {
		return decideRequest(s, c)
	}
	if !s.Exists() {
		return nil, NotFoundError{What: "change"}
	}
	if c, ok := cmd.(*MarkReviewOverdue); ok {
		return decideOverdue(s, c)
	}
	b := ByOf(cmd)
	if !s.IsParty(b.Org) {
		return nil, fmt.Errorf("org %q: %w", b.Org, ErrNotParty)
	}
	switch c := cmd.(type) {
	case *ScheduleReview:
		return decideSchedule(s, c)
	case *ApproveChange:
		return decideApprove(s, c)
	case *RejectChange:
		return decideReject(s, c)
	case *AgreeDowntime:
		return decideAgreeDowntime(s, c)
	case *RecordImplementation:
		return decideImplementation(s, c)
	case *RecordRollback:
		return decideRollback(s, c)
	case *ReviewEmergencyChange:
		return decideReview(s, c)
	case *CloseChange:
		return decideClose(s, c)
	default:
		return nil, invalid("command", "unknown command %T", cmd)
	}
}

func decideRequest(s State, c *RequestChange) ([]proto.Message, error) {
	if s.Exists() {
		return nil, fmt.Errorf("change %s: %w", s.ID, ErrAlreadyExists)
	}
	k := c.Contract
	switch {
	case blank(c.ChangeID):
		return nil, invalid("change_id", "must not be empty")
	case k.ID == "":
		return nil, NotFoundError{What: "contract"}
	case !k.IsParty(c.Org):
		return nil, fmt.Errorf("org %q requesting a change on contract %s: %w", c.Org, k.ID, ErrNotParty)
	case !k.InForce:
		return nil, fmt.Errorf("contract %s has no terms in force: %w", k.ID, ErrContractNotActive)
	case !k.EndsAt.IsZero() && !c.At.Before(k.EndsAt):
		return nil, fmt.Errorf("contract %s ended %s: %w", k.ID, stamp(k.EndsAt), ErrContractNotActive)
	case blank(c.Title):
		return nil, invalid("title", "must not be empty")
	case !validCategory(c.Category):
		return nil, invalid("category", "must be hardware, software, service scope, resources or security configuration")
	case !validRisk(c.Risk):
		return nil, invalid("risk", "must be low, medium or high")
	case c.PlannedStart.IsZero() != c.PlannedEnd.IsZero():
		return nil, invalid("planned_end", "planned_start and planned_end are given together")
	case !c.PlannedStart.IsZero() && !c.PlannedEnd.After(c.PlannedStart):
		return nil, invalid("planned_end", "must be after planned_start")
	case c.ExpectedDowntime < 0:
		return nil, invalid("expected_downtime", "must not be negative")
	case !c.PlannedStart.IsZero() && c.ExpectedDowntime > c.PlannedEnd.Sub(c.PlannedStart):
		return nil, invalid("expected_downtime", "must fit into the planned window")
	}
	links := make([]*changeadvisoryv1.LinkedObject, len(c.Links))
	for i, l := range c.Links {
		field := fmt.Sprintf("links[%d]", i)
		if blank(l.Kind) || blank(l.ID) {
			return nil, invalid(field, "kind and id must not be empty")
		}
		if slices.ContainsFunc(c.Links[:i], func(o Link) bool { return o.Kind == l.Kind && o.ID == l.ID }) {
			return nil, invalid(field, "duplicate %s %s", l.Kind, l.ID)
		}
		if err := distinct(field+".items", l.Items); err != nil {
			return nil, err
		}
		links[i] = &changeadvisoryv1.LinkedObject{Kind: l.Kind, Id: l.ID, Items: slices.Clone(l.Items)}
	}
	risk := c.Risk
	if risk == changeadvisoryv1.Risk_RISK_UNSPECIFIED {
		risk = changeadvisoryv1.Risk_RISK_LOW
	}
	e := &changeadvisoryv1.ChangeRequested{
		ChangeId:               c.ChangeID,
		ContractId:             k.ID,
		CustomerOrgId:          string(k.Customer),
		ProviderOrgId:          string(k.Provider),
		RequesterOrgId:         string(c.Org),
		Title:                  c.Title,
		Description:            c.Description,
		Category:               c.Category,
		Risk:                   risk,
		Impact:                 c.Impact,
		PlannedStart:           ts(c.PlannedStart),
		PlannedEnd:             ts(c.PlannedEnd),
		RollbackPlan:           c.RollbackPlan,
		Links:                  links,
		Emergency:              c.Emergency,
		DowntimeNeedsAgreement: NeedsDowntimeAgreement(k.MaintenanceWindows, c.ExpectedDowntime, c.PlannedStart, c.PlannedEnd),
	}
	if c.ExpectedDowntime > 0 {
		e.ExpectedDowntime = durationpb.New(c.ExpectedDowntime)
	}
	if c.Emergency && k.EmergencyReviewWithin > 0 {
		e.EmergencyReviewWithin = durationpb.New(k.EmergencyReviewWithin)
	}
	for _, o := range k.RequiredApprovers(c.Category) {
		e.RequiredApproverOrgIds = append(e.RequiredApproverOrgIds, string(o))
	}
	return one(e), nil
}

// open reports whether the change still waits for its approvals.
func open(s State) bool { return s.Status == statusRequested || s.Status == statusInReview }

func decideSchedule(s State, c *ScheduleReview) ([]proto.Message, error) {
	if !open(s) {
		return nil, fmt.Errorf("%w: a review is scheduled for a requested change, this one is %s", ErrWrongStatus, StatusName(s.Status))
	}
	if c.ReviewAt.IsZero() {
		return nil, invalid("review_at", "must be set")
	}
	if c.ReviewAt.Equal(s.ReviewAt) && c.Note == s.ReviewNote {
		return nil, nil
	}
	return one(&changeadvisoryv1.ReviewScheduled{ChangeId: s.ID, ReviewAt: timestamppb.New(c.ReviewAt), Note: c.Note}), nil
}

func decideApprove(s State, c *ApproveChange) ([]proto.Message, error) {
	if !s.Requires(c.Org) {
		return nil, fmt.Errorf("org %q is not a required approver of change %s: %w", c.Org, s.ID, ErrWrongParty)
	}
	if s.ApprovedBy(c.Org) {
		return nil, nil
	}
	if !open(s) {
		return nil, fmt.Errorf("%w: only a requested change is approved, this one is %s", ErrWrongStatus, StatusName(s.Status))
	}
	given := &changeadvisoryv1.ChangeApprovalGiven{ChangeId: s.ID, OrgId: string(c.Org), Comment: c.Comment, ApprovedAt: timestamppb.New(c.At)}
	return approvedIfReady(s, c, given), nil
}

func decideAgreeDowntime(s State, c *AgreeDowntime) ([]proto.Message, error) {
	if c.Org != s.Customer {
		return nil, fmt.Errorf("only the customer %q agrees to downtime: %w", s.Customer, ErrWrongParty)
	}
	if !s.DowntimeNeedsAgreement {
		return nil, fmt.Errorf("change %s: %w", s.ID, ErrNoDowntimeAgreement)
	}
	if !s.DowntimeAgreedAt.IsZero() {
		return nil, nil
	}
	if !open(s) {
		return nil, fmt.Errorf("%w: downtime is agreed for a requested change, this one is %s", ErrWrongStatus, StatusName(s.Status))
	}
	agreed := &changeadvisoryv1.DowntimeAgreed{ChangeId: s.ID, OrgId: string(c.Org), AgreedAt: timestamppb.New(c.At)}
	return approvedIfReady(s, c, agreed), nil
}

// approvedIfReady returns e, followed by ChangeApproved when e completes
// what the change needs to be approved.
func approvedIfReady(s State, c Command, e proto.Message) []proto.Message {
	b := ByOf(c)
	next := Evolve(s, e, Meta{Time: b.At, Actor: b.Actor})
	if !next.readyToApprove() {
		return one(e)
	}
	return []proto.Message{e, &changeadvisoryv1.ChangeApproved{
		ChangeId: s.ID, ContractId: s.ContractID, Links: LinksToProto(s.Links), ApprovedAt: timestamppb.New(b.At),
	}}
}

func decideReject(s State, c *RejectChange) ([]proto.Message, error) {
	if !s.Requires(c.Org) {
		return nil, fmt.Errorf("org %q is not a required approver of change %s: %w", c.Org, s.ID, ErrWrongParty)
	}
	if s.Status == statusRejected {
		return nil, nil
	}
	if !open(s) {
		return nil, fmt.Errorf("%w: only a change not yet approved is rejected, this one is %s", ErrWrongStatus, StatusName(s.Status))
	}
	if blank(c.Reason) {
		return nil, invalid("reason", "must not be empty")
	}
	return one(&changeadvisoryv1.ChangeRejected{
		ChangeId: s.ID, ContractId: s.ContractID, OrgId: string(c.Org), Reason: c.Reason,
		Links: LinksToProto(s.Links), RejectedAt: timestamppb.New(c.At),
	}), nil
}

func decideImplementation(s State, c *RecordImplementation) ([]proto.Message, error) {
	if im := s.Implementation; im != nil {
		if im.Success == c.Success && s.Status != statusClosed {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: the implementation is recorded already, the change is %s", ErrWrongStatus, StatusName(s.Status))
	}
	if s.Status != statusApproved && !(s.Emergency && open(s)) {
		return nil, fmt.Errorf("%w: only an approved change (or an emergency change) is implemented, this one is %s", ErrWrongStatus, StatusName(s.Status))
	}
	e := &changeadvisoryv1.ChangeImplemented{
		ChangeId: s.ID, ContractId: s.ContractID, Success: c.Success, Notes: c.Notes,
		Links: LinksToProto(s.Links), ImplementedAt: timestamppb.New(c.At),
	}
	if s.Emergency && s.EmergencyReviewWithin > 0 {
		e.ReviewDueAt = timestamppb.New(c.At.Add(s.EmergencyReviewWithin))
	}
	return one(e), nil
}

func decideRollback(s State, c *RecordRollback) ([]proto.Message, error) {
	switch s.Status {
	case statusRolledBack:
		return nil, nil
	case statusImplemented, statusFailed:
	default:
		return nil, fmt.Errorf("%w: only an implemented or failed change is rolled back, this one is %s", ErrWrongStatus, StatusName(s.Status))
	}
	if blank(c.Reason) {
		return nil, invalid("reason", "must not be empty")
	}
	return one(&changeadvisoryv1.ChangeRolledBack{
		ChangeId: s.ID, ContractId: s.ContractID, Reason: c.Reason, Links: LinksToProto(s.Links), RolledBackAt: timestamppb.New(c.At),
	}), nil
}

func decideReview(s State, c *ReviewEmergencyChange) ([]proto.Message, error) {
	if !s.Emergency {
		return nil, fmt.Errorf("change %s: %w", s.ID, ErrNotEmergency)
	}
	if s.ReviewedBy(c.Org) {
		return nil, nil
	}
	if s.Implementation == nil || s.Status == statusClosed {
		return nil, fmt.Errorf("%w: an emergency change is reviewed once implemented and before it is closed, this one is %s", ErrWrongStatus, StatusName(s.Status))
	}
	var out []proto.Message
	// A review given late records the missed deadline first, once, whether
	// the scheduler saw it pass or not.
	if !s.ReviewOverdue && !s.ReviewDueAt.IsZero() && c.At.After(s.ReviewDueAt) {
		out = append(out, overdue(s, c.At))
	}
	return append(out, &changeadvisoryv1.EmergencyChangeReviewed{
		ChangeId: s.ID, OrgId: string(c.Org), Accepted: c.Accepted, Comment: c.Comment, ReviewedAt: timestamppb.New(c.At),
	}), nil
}

func decideClose(s State, c *CloseChange) ([]proto.Message, error) {
	switch s.Status {
	case statusClosed:
		return nil, nil
	case statusImplemented, statusFailed, statusRolledBack, statusRejected:
	default:
		return nil, fmt.Errorf("%w: a change is closed once implemented, failed, rolled back or rejected, this one is %s", ErrWrongStatus, StatusName(s.Status))
	}
	if !s.ReviewSettled() {
		return nil, fmt.Errorf("change %s waits for the review of %s: %w", s.ID, orgList(s.MissingReviews()), ErrReviewPending)
	}
	return one(&changeadvisoryv1.ChangeClosed{ChangeId: s.ID, ContractId: s.ContractID, Links: LinksToProto(s.Links), ClosedAt: timestamppb.New(c.At)}), nil
}

// decideOverdue records the missed emergency review once: not before the
// deadline has passed (exactly at it the review is still in time), and
// not when both parties reviewed or it is recorded already.
func decideOverdue(s State, c *MarkReviewOverdue) ([]proto.Message, error) {
	if !s.ReviewPending() || s.ReviewDueAt.IsZero() || !c.At.After(s.ReviewDueAt) {
		return nil, nil
	}
	return one(overdue(s, c.At)), nil
}

func overdue(s State, now time.Time) *changeadvisoryv1.EmergencyReviewOverdue {
	e := &changeadvisoryv1.EmergencyReviewOverdue{ChangeId: s.ID, DueAt: timestamppb.New(s.ReviewDueAt), DetectedAt: timestamppb.New(now)}
	for _, o := range s.MissingReviews() {
		e.MissingOrgIds = append(e.MissingOrgIds, string(o))
	}
	return e
}

func validCategory(c commonv1.ChangeCategory) bool {
	_, ok := commonv1.ChangeCategory_name[int32(c)]
	return ok && c != commonv1.ChangeCategory_CHANGE_CATEGORY_UNSPECIFIED
}

func validRisk(r changeadvisoryv1.Risk) bool {
	_, ok := changeadvisoryv1.Risk_name[int32(r)]
	return ok
}

// StatusName is the status in lower case, e.g. "in_review".
func StatusName(st changeadvisoryv1.ChangeStatus) string {
	return strings.ToLower(strings.TrimPrefix(st.String(), "CHANGE_STATUS_"))
}

func orgList(os []OrgID) string {
	s := make([]string, len(os))
	for i, o := range os {
		s[i] = string(o)
	}
	return strings.Join(s, ", ")
}

func distinct(field string, xs []string) error {
	for i, x := range xs {
		if blank(x) {
			return invalid(fmt.Sprintf("%s[%d]", field, i), "must not be empty")
		}
		if slices.Contains(xs[:i], x) {
			return invalid(fmt.Sprintf("%s[%d]", field, i), "duplicate %q", x)
		}
	}
	return nil
}

func blank(s string) bool { return strings.TrimSpace(s) == "" }

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func one(m proto.Message) []proto.Message { return []proto.Message{m} }
