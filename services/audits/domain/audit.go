// Package domain holds the audits area's aggregates as pure deciders: the
// audit (its plan, notice, start and completion, and inside it the findings
// and their measures) and the checklist of a contract's recurring checks
// (BSI IT-Grundschutz M 2.256). Decide checks a command against the state
// and returns the events it causes; Evolve folds events into state.
// Nothing here does I/O or reads a clock: time arrives in the commands and,
// for bookkeeping, in Meta.
//
// What an audit needs to know of its contract (the parties, whether it is
// in force, the audit rights, how many audits are planned in the year)
// arrives in PlanAudit; the app layer takes it from the contracts this
// service learns from events and from its read model.
package domain

import (
	"slices"
	"time"

	auditsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/audits/v1"
	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
)

// Contract is what an audit plan needs to know about its contract.
type Contract struct {
	ID       string
	Customer OrgID
	Provider OrgID
	// InForce: terms signed by both parties are in force.
	InForce bool
	// EndsAt is the termination's effective date; zero when not terminated.
	EndsAt time.Time
	// PerYear bounds the audits starting in one calendar year (UTC); zero: no bound.
	PerYear int
	// Notice is how long before its start an audit must be announced.
	Notice time.Duration
	// OnSite: on-site audits are allowed.
	OnSite bool
	// PlannedInYear counts the contract's audits already planned to start
	// in the calendar year of the new plan's start.
	PlannedInYear int
}

// IsParty reports whether org is the customer or the provider.
func (c Contract) IsParty(org OrgID) bool {
	return org != "" && (org == c.Customer || org == c.Provider)
}

// Measure is a measure against a finding, proposed by one party and agreed by the other.
type Measure struct {
	ID                  string                 `json:"id"`
	FindingID           string                 `json:"finding_id"`
	Status              auditsv1.MeasureStatus `json:"status"`
	Proposer            OrgID                  `json:"proposer"`
	Counterpart         OrgID                  `json:"counterpart,omitzero"`
	Owner               OrgID                  `json:"owner"`
	DueAt               time.Time              `json:"due_at"`
	Description         string                 `json:"description"`
	AgreedAt            time.Time              `json:"agreed_at,omitzero"`
	RejectionReason     string                 `json:"rejection_reason,omitzero"`
	ImplementedAt       time.Time              `json:"implemented_at,omitzero"`
	EvidenceRefs        []string               `json:"evidence_refs,omitzero"`
	ImplementationNotes string                 `json:"implementation_notes,omitzero"`
	VerifiedAt          time.Time              `json:"verified_at,omitzero"`
	VerificationComment string                 `json:"verification_comment,omitzero"`
	Overdue             bool                   `json:"overdue,omitzero"`
}

// OverduePending reports whether the measure is agreed (to implement) and
// its overdue due date is not recorded yet.
func (m Measure) OverduePending() bool {
	return m.Status == measureAgreed && !m.Overdue
}

// OverdueOpen reports whether the measure was recorded overdue and still
// waits for its implementation.
func (m Measure) OverdueOpen() bool { return m.Overdue && m.Status == measureAgreed }

// Finding is a finding of an audit with its measures.
type Finding struct {
	ID           string                      `json:"id"`
	Status       auditsv1.FindingStatus      `json:"status"`
	Severity     commonv1.Severity           `json:"severity"`
	Level        auditsv1.NonconformityLevel `json:"level"`
	Title        string                      `json:"title"`
	ControlRef   string                      `json:"control_ref,omitzero"`
	Description  string                      `json:"description,omitzero"`
	EvidenceRefs []string                    `json:"evidence_refs,omitzero"`
	RootCause    string                      `json:"root_cause,omitzero"`
	RecordedAt   time.Time                   `json:"recorded_at"`
	ClosedAt     time.Time                   `json:"closed_at,omitzero"`
}

// State is the audit as its events have made it. It holds plain values
// only: it is the runner's JSON snapshot and the read model's row.
type State struct {
	ID            string               `json:"id,omitzero"`
	ContractID    string               `json:"contract_id,omitzero"`
	Customer      OrgID                `json:"customer,omitzero"`
	Provider      OrgID                `json:"provider,omitzero"`
	Planner       OrgID                `json:"planner,omitzero"`
	Auditor       OrgID                `json:"auditor,omitzero"`
	Audited       OrgID                `json:"audited,omitzero"`
	Type          auditsv1.AuditType   `json:"type,omitzero"`
	Title         string               `json:"title,omitzero"`
	Scope         string               `json:"scope,omitzero"`
	StartsAt      time.Time            `json:"starts_at,omitzero"`
	EndsAt        time.Time            `json:"ends_at,omitzero"`
	Status        auditsv1.AuditStatus `json:"status,omitzero"`
	NoticeGivenAt time.Time            `json:"notice_given_at,omitzero"`
	StartedAt     time.Time            `json:"started_at,omitzero"`
	CompletedAt   time.Time            `json:"completed_at,omitzero"`
	Summary       string               `json:"summary,omitzero"`
	Findings      []Finding            `json:"findings,omitzero"`
	Measures      []Measure            `json:"measures,omitzero"`
	PlannedAt     time.Time            `json:"planned_at,omitzero"`
	UpdatedAt     time.Time            `json:"updated_at,omitzero"`
	Position      uint64               `json:"position,omitzero"`
}

// Exists reports whether the audit has been planned.
func (s State) Exists() bool { return s.ID != "" }

// IsParty reports whether org is a party to the audit's contract.
func (s State) IsParty(org OrgID) bool {
	return org != "" && (org == s.Customer || org == s.Provider)
}

// Other is the party that is not org.
func (s State) Other(org OrgID) OrgID {
	if org == s.Customer {
		return s.Provider
	}
	return s.Customer
}

// Finding returns the finding with the id.
func (s State) Finding(id string) (Finding, int, bool) {
	i := slices.IndexFunc(s.Findings, func(f Finding) bool { return f.ID == id })
	if i < 0 {
		return Finding{}, -1, false
	}
	return s.Findings[i], i, true
}

// Measure returns the measure with the id.
func (s State) Measure(id string) (Measure, int, bool) {
	i := slices.IndexFunc(s.Measures, func(m Measure) bool { return m.ID == id })
	if i < 0 {
		return Measure{}, -1, false
	}
	return s.Measures[i], i, true
}

// MeasuresOf are the measures of a finding.
func (s State) MeasuresOf(findingID string) []Measure {
	var out []Measure
	for _, m := range s.Measures {
		if m.FindingID == findingID {
			out = append(out, m)
		}
	}
	return out
}

// NextDue is the earliest due date of the measures whose overdue is not
// recorded and could be (agreed, not implemented); zero if none.
func (s State) NextDue() time.Time {
	var due time.Time
	for _, m := range s.Measures {
		if m.OverduePending() && (due.IsZero() || m.DueAt.Before(due)) {
			due = m.DueAt
		}
	}
	return due
}

func (s State) clone() State {
	s.Findings = slices.Clone(s.Findings)
	s.Measures = slices.Clone(s.Measures)
	return s
}

var (
	auditPlanned    = auditsv1.AuditStatus_AUDIT_STATUS_PLANNED
	auditInProgress = auditsv1.AuditStatus_AUDIT_STATUS_IN_PROGRESS
	auditCompleted  = auditsv1.AuditStatus_AUDIT_STATUS_COMPLETED

	findingOpen   = auditsv1.FindingStatus_FINDING_STATUS_OPEN
	findingClosed = auditsv1.FindingStatus_FINDING_STATUS_CLOSED

	measureProposed    = auditsv1.MeasureStatus_MEASURE_STATUS_PROPOSED
	measureAgreed      = auditsv1.MeasureStatus_MEASURE_STATUS_AGREED
	measureRejected    = auditsv1.MeasureStatus_MEASURE_STATUS_REJECTED
	measureImplemented = auditsv1.MeasureStatus_MEASURE_STATUS_IMPLEMENTED
	measureVerified    = auditsv1.MeasureStatus_MEASURE_STATUS_VERIFIED
)
