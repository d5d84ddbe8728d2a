package domain

import (
	"slices"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	changeadvisoryv1 "github.com/jsmplatform/jsm/proto/gen/jsm/changeadvisory/v1"
)

// Evolve applies one event to the state. It copies what it changes, so a
// state given to it is never altered (the runner's cache shares states).
// Unknown events change nothing but the bookkeeping.
func Evolve(s State, m proto.Message, meta Meta) State {
	s = s.clone()
	switch e := m.(type) {
	case *changeadvisoryv1.ChangeRequested:
		s = State{
			ID:                     e.GetChangeId(),
			ContractID:             e.GetContractId(),
			Customer:               OrgID(e.GetCustomerOrgId()),
			Provider:               OrgID(e.GetProviderOrgId()),
			Requester:              OrgID(e.GetRequesterOrgId()),
			Title:                  e.GetTitle(),
			Description:            e.GetDescription(),
			Category:               e.GetCategory(),
			Risk:                   e.GetRisk(),
			Impact:                 e.GetImpact(),
			PlannedStart:           timeOf(e.GetPlannedStart()),
			PlannedEnd:             timeOf(e.GetPlannedEnd()),
			ExpectedDowntime:       e.GetExpectedDowntime().AsDuration(),
			RollbackPlan:           e.GetRollbackPlan(),
			Links:                  LinksFromProto(e.GetLinks()),
			Emergency:              e.GetEmergency(),
			DowntimeNeedsAgreement: e.GetDowntimeNeedsAgreement(),
			EmergencyReviewWithin:  e.GetEmergencyReviewWithin().AsDuration(),
			Status:                 statusRequested,
			RequestedAt:            meta.Time,
		}
		for _, o := range e.GetRequiredApproverOrgIds() {
			s.RequiredApprovers = append(s.RequiredApprovers, OrgID(o))
		}
	case *changeadvisoryv1.ReviewScheduled:
		s.ReviewAt, s.ReviewNote = timeOf(e.GetReviewAt()), e.GetNote()
		s.Status = statusInReview
	case *changeadvisoryv1.ChangeApprovalGiven:
		s.Approvals = append(s.Approvals, Approval{Org: OrgID(e.GetOrgId()), Comment: e.GetComment(), ApprovedAt: timeOf(e.GetApprovedAt())})
	case *changeadvisoryv1.DowntimeAgreed:
		s.DowntimeAgreedAt = timeOf(e.GetAgreedAt())
	case *changeadvisoryv1.ChangeApproved:
		s.Status, s.ApprovedAt = statusApproved, timeOf(e.GetApprovedAt())
	case *changeadvisoryv1.ChangeRejected:
		s.Status = statusRejected
		s.Rejection = &Rejection{Org: OrgID(e.GetOrgId()), Reason: e.GetReason(), RejectedAt: timeOf(e.GetRejectedAt())}
	case *changeadvisoryv1.ChangeImplemented:
		s.Status = statusImplemented
		if !e.GetSuccess() {
			s.Status = statusFailed
		}
		s.Implementation = &Implementation{Success: e.GetSuccess(), Notes: e.GetNotes(), ImplementedAt: timeOf(e.GetImplementedAt())}
		s.ReviewDueAt = timeOf(e.GetReviewDueAt())
	case *changeadvisoryv1.ChangeRolledBack:
		s.Status = statusRolledBack
		s.Rollback = &Rollback{Reason: e.GetReason(), RolledBackAt: timeOf(e.GetRolledBackAt())}
	case *changeadvisoryv1.EmergencyChangeReviewed:
		s.Reviews = append(s.Reviews, Review{Org: OrgID(e.GetOrgId()), Accepted: e.GetAccepted(), Comment: e.GetComment(), ReviewedAt: timeOf(e.GetReviewedAt())})
	case *changeadvisoryv1.EmergencyReviewOverdue:
		s.ReviewOverdue = true
	case *changeadvisoryv1.ChangeClosed:
		s.Status, s.ClosedAt = statusClosed, timeOf(e.GetClosedAt())
	}
	s.UpdatedAt = meta.Time
	if meta.Position > 0 {
		s.Position = meta.Position
	}
	return s
}

// LinksFromProto maps linked objects to the domain.
func LinksFromProto(ms []*changeadvisoryv1.LinkedObject) []Link {
	var out []Link
	for _, m := range ms {
		out = append(out, Link{Kind: m.GetKind(), ID: m.GetId(), Items: slices.Clone(m.GetItems())})
	}
	return out
}

// LinksToProto maps links to their messages.
func LinksToProto(ls []Link) []*changeadvisoryv1.LinkedObject {
	var out []*changeadvisoryv1.LinkedObject
	for _, l := range ls {
		out = append(out, &changeadvisoryv1.LinkedObject{Kind: l.Kind, Id: l.ID, Items: slices.Clone(l.Items)})
	}
	return out
}

func timeOf(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}

// ts leaves zero times unset.
func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
