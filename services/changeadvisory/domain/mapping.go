package domain

import (
	"google.golang.org/protobuf/types/known/durationpb"

	changeadvisoryv1 "github.com/jsmplatform/jsm/proto/gen/jsm/changeadvisory/v1"
)

// ToProto maps the change to its API message.
func ToProto(s State) *changeadvisoryv1.Change {
	m := &changeadvisoryv1.Change{
		ChangeId:               s.ID,
		ContractId:             s.ContractID,
		Status:                 s.Status,
		CustomerOrgId:          string(s.Customer),
		ProviderOrgId:          string(s.Provider),
		RequesterOrgId:         string(s.Requester),
		Title:                  s.Title,
		Description:            s.Description,
		Category:               s.Category,
		Risk:                   s.Risk,
		Impact:                 s.Impact,
		PlannedStart:           ts(s.PlannedStart),
		PlannedEnd:             ts(s.PlannedEnd),
		RollbackPlan:           s.RollbackPlan,
		Links:                  LinksToProto(s.Links),
		Emergency:              s.Emergency,
		DowntimeNeedsAgreement: s.DowntimeNeedsAgreement,
		DowntimeAgreedAt:       ts(s.DowntimeAgreedAt),
		ReviewAt:               ts(s.ReviewAt),
		ReviewNote:             s.ReviewNote,
		ReviewDueAt:            ts(s.ReviewDueAt),
		ReviewOverdue:          s.ReviewOverdue,
		RequestedAt:            ts(s.RequestedAt),
		ApprovedAt:             ts(s.ApprovedAt),
		ClosedAt:               ts(s.ClosedAt),
		UpdatedAt:              ts(s.UpdatedAt),
		Position:               s.Position,
	}
	if s.ExpectedDowntime > 0 {
		m.ExpectedDowntime = durationpb.New(s.ExpectedDowntime)
	}
	for _, o := range s.RequiredApprovers {
		m.RequiredApproverOrgIds = append(m.RequiredApproverOrgIds, string(o))
	}
	for _, a := range s.Approvals {
		m.Approvals = append(m.Approvals, &changeadvisoryv1.Approval{OrgId: string(a.Org), Comment: a.Comment, ApprovedAt: ts(a.ApprovedAt)})
	}
	if r := s.Rejection; r != nil {
		m.Rejection = &changeadvisoryv1.Rejection{OrgId: string(r.Org), Reason: r.Reason, RejectedAt: ts(r.RejectedAt)}
	}
	if im := s.Implementation; im != nil {
		m.Implementation = &changeadvisoryv1.Implementation{Success: im.Success, Notes: im.Notes, ImplementedAt: ts(im.ImplementedAt)}
	}
	if r := s.Rollback; r != nil {
		m.Rollback = &changeadvisoryv1.Rollback{Reason: r.Reason, RolledBackAt: ts(r.RolledBackAt)}
	}
	for _, r := range s.Reviews {
		m.EmergencyReviews = append(m.EmergencyReviews, &changeadvisoryv1.EmergencyReview{OrgId: string(r.Org), Accepted: r.Accepted, Comment: r.Comment, ReviewedAt: ts(r.ReviewedAt)})
	}
	return m
}
