package domain

import (
	"slices"

	"google.golang.org/protobuf/types/known/durationpb"

	auditsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/audits/v1"
)

// ToProto maps the audit to its API message, findings and measures included.
func ToProto(s State) *auditsv1.Audit {
	m := &auditsv1.Audit{
		AuditId:       s.ID,
		ContractId:    s.ContractID,
		Status:        s.Status,
		CustomerOrgId: string(s.Customer),
		ProviderOrgId: string(s.Provider),
		PlannerOrgId:  string(s.Planner),
		AuditorOrgId:  string(s.Auditor),
		AuditedOrgId:  string(s.Audited),
		Type:          s.Type,
		Title:         s.Title,
		Scope:         s.Scope,
		StartsAt:      ts(s.StartsAt),
		EndsAt:        ts(s.EndsAt),
		NoticeGivenAt: ts(s.NoticeGivenAt),
		StartedAt:     ts(s.StartedAt),
		CompletedAt:   ts(s.CompletedAt),
		Summary:       s.Summary,
		PlannedAt:     ts(s.PlannedAt),
		UpdatedAt:     ts(s.UpdatedAt),
		Position:      s.Position,
	}
	for _, f := range s.Findings {
		m.Findings = append(m.Findings, FindingToProto(s, f))
	}
	return m
}

// FindingToProto maps one finding of the audit s with its measures.
func FindingToProto(s State, f Finding) *auditsv1.Finding {
	m := &auditsv1.Finding{
		FindingId:    f.ID,
		AuditId:      s.ID,
		ContractId:   s.ContractID,
		Status:       f.Status,
		Severity:     f.Severity,
		Level:        f.Level,
		Title:        f.Title,
		ControlRef:   f.ControlRef,
		Description:  f.Description,
		EvidenceRefs: slices.Clone(f.EvidenceRefs),
		RootCause:    f.RootCause,
		RecordedAt:   ts(f.RecordedAt),
		ClosedAt:     ts(f.ClosedAt),
	}
	for _, x := range s.MeasuresOf(f.ID) {
		m.Measures = append(m.Measures, &auditsv1.Measure{
			MeasureId:           x.ID,
			FindingId:           x.FindingID,
			Status:              x.Status,
			ProposerOrgId:       string(x.Proposer),
			CounterpartOrgId:    string(x.Counterpart),
			OwnerOrgId:          string(x.Owner),
			DueAt:               ts(x.DueAt),
			Description:         x.Description,
			AgreedAt:            ts(x.AgreedAt),
			RejectionReason:     x.RejectionReason,
			ImplementedAt:       ts(x.ImplementedAt),
			EvidenceRefs:        slices.Clone(x.EvidenceRefs),
			ImplementationNotes: x.ImplementationNotes,
			VerifiedAt:          ts(x.VerifiedAt),
			VerificationComment: x.VerificationComment,
			Overdue:             x.Overdue,
		})
	}
	return m
}

// ChecklistToProto maps the checklist, its results grouped by execution in
// the order the executions began.
func ChecklistToProto(c Checklist) *auditsv1.Checklist {
	m := &auditsv1.Checklist{ContractId: c.ContractID, Position: c.Position, NextDueAt: ts(c.NextDue())}
	for _, it := range c.Items {
		m.Items = append(m.Items, &auditsv1.CheckItem{Key: it.Key, Kind: it.Kind, Title: it.Title})
	}
	if c.Interval > 0 {
		m.Interval = durationpb.New(c.Interval)
	}
	runs := map[string]*auditsv1.CheckRun{}
	for _, r := range c.Results {
		run, ok := runs[r.Period]
		if !ok {
			run = &auditsv1.CheckRun{Period: r.Period}
			runs[r.Period] = run
			m.Runs = append(m.Runs, run)
		}
		run.Results = append(run.Results, &auditsv1.CheckResult{
			Period: r.Period, ItemKey: r.ItemKey, Outcome: r.Outcome, Note: r.Note,
			EvidenceRefs: slices.Clone(r.EvidenceRefs), OrgId: string(r.Org), RecordedAt: ts(r.RecordedAt),
		})
	}
	for _, run := range m.Runs {
		run.Complete = len(c.Items) > 0
		for _, it := range c.Items {
			if !slices.ContainsFunc(run.Results, func(r *auditsv1.CheckResult) bool { return r.GetItemKey() == it.Key }) {
				run.Complete = false
			}
		}
	}
	return m
}
