package domain

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/audits/v1"
	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
)

// Decide checks cmd against the audit s and returns the events it causes,
// or a domain error. No events and no error means the command changes
// nothing (it was given before, or asks for what is already so).
func Decide(s State, cmd Command) ([]proto.Message, error) {
	if Missing(cmd) {
		return nil, invalid("command", "missing")
	}
	if c, ok := cmd.(*PlanAudit); ok {
		return decidePlan(s, c)
	}
	if !s.Exists() {
		return nil, NotFoundError{What: "audit"}
	}
	if c, ok := cmd.(*MarkMeasureOverdue); ok {
		return decideOverdue(s, c)
	}
	b := ByOf(cmd)
	if !s.IsParty(b.Org) {
		return nil, fmt.Errorf("org %q: %w", b.Org, ErrNotParty)
	}
	switch c := cmd.(type) {
	case *StartAudit:
		return decideStart(s, c)
	case *CompleteAudit:
		return decideComplete(s, c)
	case *RecordFinding:
		return decideFinding(s, c)
	case *CloseFinding:
		return decideCloseFinding(s, c)
	case *ProposeMeasure:
		return decidePropose(s, c)
	case *AgreeMeasure:
		return decideAgree(s, c)
	case *RejectMeasure:
		return decideReject(s, c)
	case *RecordMeasureImplemented:
		return decideImplemented(s, c)
	case *VerifyMeasure:
		return decideVerify(s, c)
	default:
		return nil, invalid("command", "unknown command %T", cmd)
	}
}

func decidePlan(s State, c *PlanAudit) ([]proto.Message, error) {
	if s.Exists() {
		return nil, fmt.Errorf("audit %s: %w", s.ID, ErrAlreadyExists)
	}
	k := c.Contract
	auditor := c.Auditor
	if auditor == "" {
		auditor = c.Org
	}
	typ := c.Type
	if typ == auditsv1.AuditType_AUDIT_TYPE_UNSPECIFIED {
		typ = auditsv1.AuditType_AUDIT_TYPE_DOCUMENT_REVIEW
	}
	switch {
	case blank(c.AuditID):
		return nil, invalid("audit_id", "must not be empty")
	case k.ID == "":
		return nil, NotFoundError{What: "contract"}
	case !k.IsParty(c.Org):
		return nil, fmt.Errorf("org %q planning an audit on contract %s: %w", c.Org, k.ID, ErrNotParty)
	case !k.InForce:
		return nil, fmt.Errorf("contract %s has no terms in force: %w", k.ID, ErrContractNotActive)
	case blank(c.Title):
		return nil, invalid("title", "must not be empty")
	case !validAuditType(typ):
		return nil, invalid("type", "must be document review, on-site, penetration test or certification check")
	case !k.IsParty(auditor):
		return nil, invalid("auditor_org_id", "must be a party of the contract, got %q", auditor)
	case c.StartsAt.IsZero():
		return nil, invalid("starts_at", "must be given")
	case !c.EndsAt.IsZero() && c.EndsAt.Before(c.StartsAt):
		return nil, invalid("ends_at", "must not be before starts_at")
	case !k.EndsAt.IsZero() && !c.StartsAt.Before(k.EndsAt):
		return nil, fmt.Errorf("contract %s ends %s, before the audit: %w", k.ID, stamp(k.EndsAt), ErrContractNotActive)
	case c.StartsAt.Before(c.At.Add(k.Notice)):
		return nil, fmt.Errorf("starts %s, but the contract's notice of %s ends %s: %w", stamp(c.StartsAt), k.Notice, stamp(c.At.Add(k.Notice)), ErrAuditRights)
	case typ == auditsv1.AuditType_AUDIT_TYPE_ON_SITE && !k.OnSite:
		return nil, fmt.Errorf("contract %s allows no on-site audits: %w", k.ID, ErrAuditRights)
	case k.PerYear > 0 && k.PlannedInYear >= k.PerYear:
		return nil, fmt.Errorf("contract %s allows %d audits a year, %d planned in %d: %w", k.ID, k.PerYear, k.PlannedInYear, c.StartsAt.UTC().Year(), ErrAuditRights)
	}
	audited := k.Customer
	if auditor == k.Customer {
		audited = k.Provider
	}
	return []proto.Message{
		&auditsv1.AuditPlanned{
			AuditId:       c.AuditID,
			ContractId:    k.ID,
			CustomerOrgId: string(k.Customer),
			ProviderOrgId: string(k.Provider),
			PlannerOrgId:  string(c.Org),
			AuditorOrgId:  string(auditor),
			AuditedOrgId:  string(audited),
			Type:          typ,
			Title:         c.Title,
			Scope:         c.Scope,
			StartsAt:      ts(c.StartsAt),
			EndsAt:        ts(c.EndsAt),
		},
		&auditsv1.AuditNoticeGiven{
			AuditId:      c.AuditID,
			AuditedOrgId: string(audited),
			GivenAt:      ts(c.At),
			StartsAt:     ts(c.StartsAt),
			Notice:       durationpb.New(k.Notice),
		},
	}, nil
}

func (s State) auditorOnly(b By, what string) error {
	if b.Org != s.Auditor {
		return fmt.Errorf("only the auditor %s %s: %w", s.Auditor, what, ErrWrongParty)
	}
	return nil
}

func decideStart(s State, c *StartAudit) ([]proto.Message, error) {
	if err := s.auditorOnly(c.By, "starts the audit"); err != nil {
		return nil, err
	}
	switch {
	case s.Status == auditInProgress:
		return nil, nil
	case s.Status != auditPlanned:
		return nil, fmt.Errorf("audit %s is %s: %w", s.ID, s.Status, ErrWrongStatus)
	case c.At.Before(s.StartsAt):
		return nil, fmt.Errorf("audit %s starts %s as announced: %w", s.ID, stamp(s.StartsAt), ErrTooEarly)
	}
	return one(&auditsv1.AuditStarted{AuditId: s.ID, StartedAt: ts(c.At)}), nil
}

func decideComplete(s State, c *CompleteAudit) ([]proto.Message, error) {
	if err := s.auditorOnly(c.By, "completes the audit"); err != nil {
		return nil, err
	}
	switch s.Status {
	case auditCompleted:
		return nil, nil
	case auditInProgress:
		return one(&auditsv1.AuditCompleted{AuditId: s.ID, CompletedAt: ts(c.At), Summary: c.Summary}), nil
	default:
		return nil, fmt.Errorf("audit %s is %s: %w", s.ID, s.Status, ErrWrongStatus)
	}
}

func decideFinding(s State, c *RecordFinding) ([]proto.Message, error) {
	if err := s.auditorOnly(c.By, "records findings"); err != nil {
		return nil, err
	}
	level := c.Level
	if level == auditsv1.NonconformityLevel_NONCONFORMITY_LEVEL_UNSPECIFIED {
		level = auditsv1.NonconformityLevel_NONCONFORMITY_LEVEL_MINOR
	}
	if _, _, ok := s.Finding(c.FindingID); ok {
		return nil, fmt.Errorf("finding %s: %w", c.FindingID, ErrAlreadyExists)
	}
	switch {
	case s.Status != auditInProgress:
		return nil, fmt.Errorf("audit %s is %s, findings are recorded while it is in progress: %w", s.ID, s.Status, ErrWrongStatus)
	case blank(c.FindingID):
		return nil, invalid("finding_id", "must not be empty")
	case !validSeverity(c.Severity):
		return nil, invalid("severity", "must be critical, high, medium or low")
	case !validLevel(level):
		return nil, invalid("level", "must be major, minor or observation")
	case blank(c.Title):
		return nil, invalid("title", "must not be empty")
	}
	if err := distinct("evidence_refs", c.EvidenceRefs); err != nil {
		return nil, err
	}
	return one(&auditsv1.FindingRecorded{
		AuditId: s.ID, FindingId: c.FindingID, Severity: c.Severity, Level: level, Title: c.Title,
		ControlRef: strings.TrimSpace(c.ControlRef), Description: c.Description,
		EvidenceRefs: slices.Clone(c.EvidenceRefs), RootCause: c.RootCause,
	}), nil
}

func decideCloseFinding(s State, c *CloseFinding) ([]proto.Message, error) {
	if err := s.auditorOnly(c.By, "closes findings"); err != nil {
		return nil, err
	}
	f, _, ok := s.Finding(c.FindingID)
	if !ok {
		return nil, NotFoundError{What: "finding", ID: c.FindingID}
	}
	if f.Status == findingClosed {
		return nil, nil
	}
	verified := 0
	for _, m := range s.MeasuresOf(f.ID) {
		switch m.Status {
		case measureVerified:
			verified++
		case measureRejected:
		default:
			return nil, fmt.Errorf("measure %s is %s: %w", m.ID, m.Status, ErrMeasuresPending)
		}
	}
	if verified == 0 && f.Level != auditsv1.NonconformityLevel_NONCONFORMITY_LEVEL_OBSERVATION {
		return nil, fmt.Errorf("finding %s is a nonconformity without a verified measure: %w", f.ID, ErrMeasuresPending)
	}
	return one(&auditsv1.FindingClosed{AuditId: s.ID, FindingId: f.ID, ClosedAt: ts(c.At)}), nil
}

func decidePropose(s State, c *ProposeMeasure) ([]proto.Message, error) {
	f, _, ok := s.Finding(c.FindingID)
	if !ok {
		return nil, NotFoundError{What: "finding", ID: c.FindingID}
	}
	if _, _, ok := s.Measure(c.MeasureID); ok {
		return nil, fmt.Errorf("measure %s: %w", c.MeasureID, ErrAlreadyExists)
	}
	switch {
	case f.Status != findingOpen:
		return nil, fmt.Errorf("finding %s is closed: %w", f.ID, ErrWrongStatus)
	case blank(c.MeasureID):
		return nil, invalid("measure_id", "must not be empty")
	case !s.IsParty(c.Owner):
		return nil, invalid("owner_org_id", "must be a party of the contract, got %q", c.Owner)
	case c.DueAt.IsZero():
		return nil, invalid("due_at", "must be given")
	case !c.DueAt.After(c.At):
		return nil, invalid("due_at", "must be in the future, got %s", stamp(c.DueAt))
	case blank(c.Description):
		return nil, invalid("description", "must not be empty")
	}
	return one(&auditsv1.MeasureProposed{
		AuditId: s.ID, FindingId: f.ID, MeasureId: c.MeasureID, ProposerOrgId: string(c.Org),
		OwnerOrgId: string(c.Owner), DueAt: ts(c.DueAt), Description: c.Description,
	}), nil
}

func (s State) measure(id string) (Measure, error) {
	m, _, ok := s.Measure(id)
	if !ok {
		return Measure{}, NotFoundError{What: "measure", ID: id}
	}
	return m, nil
}

func decideAgree(s State, c *AgreeMeasure) ([]proto.Message, error) {
	m, err := s.measure(c.MeasureID)
	if err != nil {
		return nil, err
	}
	if c.Org == m.Proposer {
		return nil, fmt.Errorf("measure %s: the other party agrees to a proposal: %w", m.ID, ErrWrongParty)
	}
	switch m.Status {
	case measureProposed:
		return one(&auditsv1.MeasureAgreed{AuditId: s.ID, MeasureId: m.ID, OrgId: string(c.Org), AgreedAt: ts(c.At)}), nil
	case measureRejected:
		return nil, fmt.Errorf("measure %s was rejected: %w", m.ID, ErrWrongStatus)
	default:
		return nil, nil // agreed already
	}
}

func decideReject(s State, c *RejectMeasure) ([]proto.Message, error) {
	m, err := s.measure(c.MeasureID)
	if err != nil {
		return nil, err
	}
	if c.Org == m.Proposer {
		return nil, fmt.Errorf("measure %s: the other party rejects a proposal: %w", m.ID, ErrWrongParty)
	}
	switch m.Status {
	case measureRejected:
		return nil, nil
	case measureProposed:
		if blank(c.Reason) {
			return nil, invalid("reason", "must not be empty")
		}
		return one(&auditsv1.MeasureRejected{AuditId: s.ID, MeasureId: m.ID, OrgId: string(c.Org), Reason: c.Reason}), nil
	default:
		return nil, fmt.Errorf("measure %s is %s: %w", m.ID, m.Status, ErrWrongStatus)
	}
}

func decideImplemented(s State, c *RecordMeasureImplemented) ([]proto.Message, error) {
	m, err := s.measure(c.MeasureID)
	if err != nil {
		return nil, err
	}
	if c.Org != m.Owner {
		return nil, fmt.Errorf("measure %s: only its owner %s implements it: %w", m.ID, m.Owner, ErrWrongParty)
	}
	switch m.Status {
	case measureImplemented, measureVerified:
		return nil, nil
	case measureAgreed:
	default:
		return nil, fmt.Errorf("measure %s is %s: %w", m.ID, m.Status, ErrWrongStatus)
	}
	if len(c.EvidenceRefs) == 0 {
		return nil, invalid("evidence_refs", "name at least one piece of evidence")
	}
	if err := distinct("evidence_refs", c.EvidenceRefs); err != nil {
		return nil, err
	}
	var out []proto.Message
	if c.At.After(m.DueAt) && !m.Overdue {
		out = append(out, overdue(s, m)) // late: the missed due date is recorded first
	}
	return append(out, &auditsv1.MeasureImplemented{
		AuditId: s.ID, MeasureId: m.ID, ImplementedAt: ts(c.At), EvidenceRefs: slices.Clone(c.EvidenceRefs), Notes: c.Notes,
	}), nil
}

func decideVerify(s State, c *VerifyMeasure) ([]proto.Message, error) {
	m, err := s.measure(c.MeasureID)
	if err != nil {
		return nil, err
	}
	if err := s.auditorOnly(c.By, "verifies measures"); err != nil {
		return nil, err
	}
	switch m.Status {
	case measureVerified:
		return nil, nil
	case measureImplemented:
		return one(&auditsv1.MeasureVerified{AuditId: s.ID, MeasureId: m.ID, Accepted: c.Accepted, Comment: c.Comment, VerifiedAt: ts(c.At)}), nil
	default:
		return nil, fmt.Errorf("measure %s is %s: %w", m.ID, m.Status, ErrWrongStatus)
	}
}

// decideOverdue records a missed due date once: not before it has passed
// (exactly at it the measure is still in time), and not when the measure is
// implemented or its overdue is recorded already.
func decideOverdue(s State, c *MarkMeasureOverdue) ([]proto.Message, error) {
	m, err := s.measure(c.MeasureID)
	if err != nil {
		return nil, err
	}
	if !m.OverduePending() || !c.At.After(m.DueAt) {
		return nil, nil
	}
	return one(overdue(s, m)), nil
}

func overdue(s State, m Measure) *auditsv1.MeasureOverdue {
	return &auditsv1.MeasureOverdue{AuditId: s.ID, MeasureId: m.ID, DueAt: ts(m.DueAt), OwnerOrgId: string(m.Owner)}
}

func validAuditType(t auditsv1.AuditType) bool {
	return t >= auditsv1.AuditType_AUDIT_TYPE_DOCUMENT_REVIEW && t <= auditsv1.AuditType_AUDIT_TYPE_CERTIFICATION_CHECK
}

func validSeverity(s commonv1.Severity) bool {
	return s >= commonv1.Severity_SEVERITY_CRITICAL && s <= commonv1.Severity_SEVERITY_LOW
}

func validLevel(l auditsv1.NonconformityLevel) bool {
	return l >= auditsv1.NonconformityLevel_NONCONFORMITY_LEVEL_MAJOR && l <= auditsv1.NonconformityLevel_NONCONFORMITY_LEVEL_OBSERVATION
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
