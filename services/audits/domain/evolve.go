package domain

import (
	"slices"

	"google.golang.org/protobuf/proto"

	auditsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/audits/v1"
)

// Evolve applies one event to the audit. It copies what it changes, so a
// state given to it is never altered (the runner's cache shares states).
// Unknown events change nothing but the bookkeeping.
func Evolve(s State, m proto.Message, meta Meta) State {
	s = s.clone()
	switch e := m.(type) {
	case *auditsv1.AuditPlanned:
		s = State{
			ID:         e.GetAuditId(),
			ContractID: e.GetContractId(),
			Customer:   OrgID(e.GetCustomerOrgId()),
			Provider:   OrgID(e.GetProviderOrgId()),
			Planner:    OrgID(e.GetPlannerOrgId()),
			Auditor:    OrgID(e.GetAuditorOrgId()),
			Audited:    OrgID(e.GetAuditedOrgId()),
			Type:       e.GetType(),
			Title:      e.GetTitle(),
			Scope:      e.GetScope(),
			StartsAt:   timeOf(e.GetStartsAt()),
			EndsAt:     timeOf(e.GetEndsAt()),
			Status:     auditPlanned,
			PlannedAt:  meta.Time,
		}
	case *auditsv1.AuditNoticeGiven:
		s.NoticeGivenAt = timeOf(e.GetGivenAt())
	case *auditsv1.AuditStarted:
		s.Status, s.StartedAt = auditInProgress, timeOf(e.GetStartedAt())
	case *auditsv1.AuditCompleted:
		s.Status, s.CompletedAt, s.Summary = auditCompleted, timeOf(e.GetCompletedAt()), e.GetSummary()
	case *auditsv1.FindingRecorded:
		s.Findings = append(s.Findings, Finding{
			ID: e.GetFindingId(), Status: findingOpen, Severity: e.GetSeverity(), Level: e.GetLevel(), Title: e.GetTitle(),
			ControlRef: e.GetControlRef(), Description: e.GetDescription(), EvidenceRefs: slices.Clone(e.GetEvidenceRefs()),
			RootCause: e.GetRootCause(), RecordedAt: meta.Time,
		})
	case *auditsv1.FindingClosed:
		if _, i, ok := s.Finding(e.GetFindingId()); ok {
			s.Findings[i].Status, s.Findings[i].ClosedAt = findingClosed, timeOf(e.GetClosedAt())
		}
	case *auditsv1.MeasureProposed:
		s.Measures = append(s.Measures, Measure{
			ID: e.GetMeasureId(), FindingID: e.GetFindingId(), Status: measureProposed, Proposer: OrgID(e.GetProposerOrgId()),
			Owner: OrgID(e.GetOwnerOrgId()), DueAt: timeOf(e.GetDueAt()), Description: e.GetDescription(),
		})
	default:
		s = evolveMeasure(s, m)
	}
	s.UpdatedAt = meta.Time
	if meta.Position > 0 {
		s.Position = meta.Position
	}
	return s
}

// evolveMeasure applies the events that change one measure; s is a clone.
func evolveMeasure(s State, m proto.Message) State {
	id, ok := m.(interface{ GetMeasureId() string })
	if !ok {
		return s
	}
	_, i, found := s.Measure(id.GetMeasureId())
	if !found {
		return s
	}
	x := &s.Measures[i]
	switch e := m.(type) {
	case *auditsv1.MeasureAgreed:
		x.Status, x.Counterpart, x.AgreedAt = measureAgreed, OrgID(e.GetOrgId()), timeOf(e.GetAgreedAt())
	case *auditsv1.MeasureRejected:
		x.Status, x.Counterpart, x.RejectionReason = measureRejected, OrgID(e.GetOrgId()), e.GetReason()
	case *auditsv1.MeasureImplemented:
		x.Status, x.ImplementedAt = measureImplemented, timeOf(e.GetImplementedAt())
		x.EvidenceRefs, x.ImplementationNotes = slices.Clone(e.GetEvidenceRefs()), e.GetNotes()
	case *auditsv1.MeasureVerified:
		x.VerificationComment = e.GetComment()
		if e.GetAccepted() {
			x.Status, x.VerifiedAt = measureVerified, timeOf(e.GetVerifiedAt())
		} else {
			x.Status = measureAgreed // back to the owner
		}
	case *auditsv1.MeasureOverdue:
		x.Overdue = true
	}
	return s
}
