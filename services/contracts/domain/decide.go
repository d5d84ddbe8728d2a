package domain

import (
	"fmt"
	"slices"
	"strings"
	"time"

	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Decide checks c against s and returns the events c causes, or a domain
// error. It does not change s.
func Decide(s State, c Command) ([]proto.Message, error) {
	c, ok := deref(c)
	if !ok {
		return nil, invalid("command", "missing")
	}
	if d, ok := c.(DraftContract); ok {
		return decideDraft(s, d)
	}
	if !s.Exists() {
		return nil, NotFoundError{} // the id is the caller's: s is the zero state
	}
	a := c.actor()
	if !s.IsParty(a.Org) {
		return nil, fmt.Errorf("org %q: %w", a.Org, ErrNotParty)
	}
	if s.Termination != nil || s.Phase == contractsv1.Phase_PHASE_TERMINATED {
		return nil, fmt.Errorf("contract %s: %w", s.ID, ErrTerminated)
	}
	switch c := c.(type) {
	case AddRequirement:
		return decideAddRequirement(s, c)
	case AssignContact:
		return decideAssignContact(s, c)
	case AddSubcontractor:
		return decideAddSubcontractor(s, c)
	case SetServiceLevels:
		return decideSetServiceLevels(s, c)
	case SignContract:
		return decideSign(s, c)
	case AdvancePhase:
		return decideAdvancePhase(s, c)
	case TerminateContract:
		return decideTerminate(s, c)
	default:
		return nil, invalid("command", "unknown command %T", c)
	}
}

func decideDraft(s State, c DraftContract) ([]proto.Message, error) {
	if s.Exists() {
		return nil, fmt.Errorf("contract %s: %w", s.ID, ErrAlreadyExists)
	}
	switch {
	case blank(string(c.ContractID)):
		return nil, invalid("contract_id", "must not be empty")
	case blank(string(c.Customer)):
		return nil, invalid("customer", "must not be empty")
	case blank(string(c.Provider)):
		return nil, invalid("provider", "must not be empty")
	case c.Customer == c.Provider:
		return nil, invalid("provider", "must differ from the customer %q", c.Customer)
	}
	if c.Org != c.Customer && c.Org != c.Provider {
		return nil, fmt.Errorf("org %q drafting a contract between %q and %q: %w", c.Org, c.Customer, c.Provider, ErrNotParty)
	}
	if blank(c.Title) {
		return nil, invalid("title", "must not be empty")
	}
	if c.TerminationNotice < 0 {
		return nil, invalid("termination_notice", "must not be negative, got %s", c.TerminationNotice)
	}
	for i, svc := range c.ServicesInScope {
		if blank(svc) {
			return nil, invalid(fmt.Sprintf("services_in_scope[%d]", i), "must not be empty")
		}
		if slices.Contains(c.ServicesInScope[:i], svc) {
			return nil, invalid(fmt.Sprintf("services_in_scope[%d]", i), "duplicate service %q", svc)
		}
	}
	return events(&contractsv1.ContractDrafted{
		ContractId:        string(c.ContractID),
		CustomerOrgId:     string(c.Customer),
		ProviderOrgId:     string(c.Provider),
		Title:             c.Title,
		Reference:         c.Reference,
		ServicesInScope:   cloneSlice(c.ServicesInScope),
		CriticalFunction:  c.CriticalFunction,
		TerminationNotice: durationpb.New(c.TerminationNotice),
		TermsVersion:      1,
	}), nil
}

func decideAddRequirement(s State, c AddRequirement) ([]proto.Message, error) {
	r := c.Requirement
	switch {
	case blank(r.ID):
		return nil, invalid("requirement.id", "must not be empty")
	case blank(r.Text):
		return nil, invalid("requirement.text", "must not be empty")
	case slices.ContainsFunc(s.Current.Terms.Requirements, func(x Requirement) bool { return x.ID == r.ID }):
		return nil, invalid("requirement.id", "duplicate requirement id %q", r.ID)
	}
	return events(&contractsv1.RequirementAdded{
		ContractId:   string(s.ID),
		Requirement:  RequirementToProto(r),
		TermsVersion: s.changedTermsVersion(),
	}), nil
}

func decideAssignContact(s State, c AssignContact) ([]proto.Message, error) {
	ct := c.Contact
	switch {
	case !s.IsParty(ct.Org):
		return nil, invalid("contact.org", "org %q is not a party to the contract", ct.Org)
	case blank(ct.Role):
		return nil, invalid("contact.role", "must not be empty")
	case blank(ct.Name):
		return nil, invalid("contact.name", "must not be empty")
	}
	return events(&contractsv1.ContactAssigned{
		ContractId:   string(s.ID),
		Contact:      ContactToProto(ct),
		TermsVersion: s.changedTermsVersion(),
	}), nil
}

func decideAddSubcontractor(s State, c AddSubcontractor) ([]proto.Message, error) {
	if c.Org != s.Provider {
		return nil, fmt.Errorf("only the provider may add subcontractors, not org %q: %w", c.Org, ErrWrongParty)
	}
	sc := c.Subcontractor
	switch {
	case blank(sc.Name):
		return nil, invalid("subcontractor.name", "must not be empty")
	case blank(sc.Service):
		return nil, invalid("subcontractor.service", "must not be empty")
	case sc.Rank < 1:
		return nil, invalid("subcontractor.rank", "must be at least 1 (direct supplier), got %d", sc.Rank)
	case slices.ContainsFunc(s.Current.Terms.Subcontractors, func(x Subcontractor) bool {
		return x.Name == sc.Name && x.Service == sc.Service
	}):
		return nil, invalid("subcontractor", "duplicate subcontractor %q for service %q", sc.Name, sc.Service)
	}
	return events(&contractsv1.SubcontractorAdded{
		ContractId:    string(s.ID),
		Subcontractor: SubcontractorToProto(sc),
		TermsVersion:  s.changedTermsVersion(),
	}), nil
}

func decideSetServiceLevels(s State, c SetServiceLevels) ([]proto.Message, error) {
	if err := validateLevels(c.Levels); err != nil {
		return nil, err
	}
	return events(&contractsv1.ServiceLevelsSet{
		ContractId:    string(s.ID),
		ServiceLevels: LevelsToProto(c.Levels),
		TermsVersion:  s.changedTermsVersion(),
	}), nil
}

func validateLevels(l ServiceLevels) error {
	if err := validateDeadlines("service_levels.incident_notification", l.IncidentNotification); err != nil {
		return err
	}
	if err := validateDeadlines("service_levels.patch_deadlines", l.PatchDeadlines); err != nil {
		return err
	}
	if _, ok := contractsv1.ReportCadence_name[int32(l.ReportCadence)]; !ok {
		return invalid("service_levels.report_cadence", "unknown cadence %d", l.ReportCadence)
	}
	switch {
	case l.AuditRights.PerYear < 0:
		return invalid("service_levels.audit_rights.per_year", "must not be negative, got %d", l.AuditRights.PerYear)
	case l.AuditRights.Notice < 0:
		return invalid("service_levels.audit_rights.notice", "must not be negative, got %s", l.AuditRights.Notice)
	case l.EmergencyChangeReviewWithin < 0:
		return invalid("service_levels.emergency_change_review_within", "must not be negative, got %s", l.EmergencyChangeReviewWithin)
	}
	for i, cat := range l.CustomerApprovalCategories {
		field := fmt.Sprintf("service_levels.customer_approval_categories[%d]", i)
		if _, ok := commonv1.ChangeCategory_name[int32(cat)]; !ok || cat == commonv1.ChangeCategory_CHANGE_CATEGORY_UNSPECIFIED {
			return invalid(field, "unknown change category %d", cat)
		}
		if slices.Contains(l.CustomerApprovalCategories[:i], cat) {
			return invalid(field, "duplicate change category %s", cat)
		}
	}
	for i, w := range l.MaintenanceWindows {
		field := fmt.Sprintf("service_levels.maintenance_windows[%d]", i)
		if w.Weekday < 1 || w.Weekday > 7 {
			return invalid(field+".weekday", "must be an iso weekday 1 (monday) to 7 (sunday), got %d", w.Weekday)
		}
		if _, err := time.Parse("15:04", w.Start); err != nil || len(w.Start) != len("15:04") {
			return invalid(field+".start", "must be a local time hh:mm, got %q", w.Start)
		}
		if w.Duration <= 0 || w.Duration > 24*time.Hour {
			return invalid(field+".duration", "must be more than 0 and at most 24h, got %s", w.Duration)
		}
	}
	return nil
}

func validateDeadlines(field string, ds []SeverityDeadline) error {
	for i, d := range ds {
		f := fmt.Sprintf("%s[%d]", field, i)
		if _, ok := commonv1.Severity_name[int32(d.Severity)]; !ok || d.Severity == commonv1.Severity_SEVERITY_UNSPECIFIED {
			return invalid(f+".severity", "unknown severity %d", d.Severity)
		}
		if slices.ContainsFunc(ds[:i], func(x SeverityDeadline) bool { return x.Severity == d.Severity }) {
			return invalid(f+".severity", "duplicate severity %s", d.Severity)
		}
		if d.Within <= 0 {
			return invalid(f+".within", "must be positive, got %s", d.Within)
		}
	}
	return nil
}

func decideSign(s State, c SignContract) ([]proto.Message, error) {
	if c.At.IsZero() {
		return nil, invalid("at", "must be set")
	}
	if c.TermsVersion != 0 && c.TermsVersion != s.Current.Version {
		return nil, fmt.Errorf("signing version %d, current is %d: %w", c.TermsVersion, s.Current.Version, ErrVersionMismatch)
	}
	if s.Current.SignedBy(c.Org) {
		return nil, fmt.Errorf("org %q, version %d: %w", c.Org, s.Current.Version, ErrAlreadySigned)
	}
	return events(&contractsv1.ContractSigned{
		ContractId:   string(s.ID),
		OrgId:        string(c.Org),
		TermsVersion: s.Current.Version,
		Activates:    s.Current.SignedBy(s.Counterparty(c.Org)),
		SignedAt:     timestamppb.New(c.At),
		SignedByUser: c.User,
	}), nil
}

// phaseOrder is the lifecycle; PHASE_TERMINATED is reached only by termination.
var phaseOrder = []contractsv1.Phase{
	contractsv1.Phase_PHASE_EXPLORE,
	contractsv1.Phase_PHASE_OFFER,
	contractsv1.Phase_PHASE_DECIDE,
	contractsv1.Phase_PHASE_MIGRATE,
	contractsv1.Phase_PHASE_OPERATE,
}

// NextPhase returns the phase that follows p in the lifecycle, or false when
// p is the last one (operate) or not a lifecycle phase.
func NextPhase(p contractsv1.Phase) (contractsv1.Phase, bool) {
	i := slices.Index(phaseOrder, p)
	if i < 0 || i+1 >= len(phaseOrder) {
		return contractsv1.Phase_PHASE_UNSPECIFIED, false
	}
	return phaseOrder[i+1], true
}

func decideAdvancePhase(s State, c AdvancePhase) ([]proto.Message, error) {
	next, ok := NextPhase(s.Phase)
	if !ok {
		return nil, fmt.Errorf("%w: no phase follows %s", ErrWrongPhase, s.Phase)
	}
	if c.To != next {
		return nil, fmt.Errorf("%w: from %s the next phase is %s, not %s", ErrWrongPhase, s.Phase, next, c.To)
	}
	if (next == contractsv1.Phase_PHASE_MIGRATE || next == contractsv1.Phase_PHASE_OPERATE) && s.InForce == nil {
		return nil, fmt.Errorf("%w: %s needs terms signed by both parties in force", ErrWrongPhase, next)
	}
	return events(&contractsv1.PhaseAdvanced{ContractId: string(s.ID), From: s.Phase, To: next}), nil
}

func decideTerminate(s State, c TerminateContract) ([]proto.Message, error) {
	switch {
	case blank(c.Reason):
		return nil, invalid("reason", "must not be empty")
	case c.At.IsZero():
		return nil, invalid("at", "must be set")
	case c.EffectiveDate.IsZero():
		return nil, invalid("effective_date", "must be set")
	}
	notice := s.Effective().Terms.TerminationNotice
	if earliest := c.At.Add(notice); c.EffectiveDate.Before(earliest) {
		return nil, fmt.Errorf("%w: notice is %s, earliest effective date is %s, got %s",
			ErrNoticePeriod, notice, earliest.UTC().Format(time.RFC3339), c.EffectiveDate.UTC().Format(time.RFC3339))
	}
	return events(&contractsv1.ContractTerminated{
		ContractId:    string(s.ID),
		OrgId:         string(c.Org),
		Reason:        c.Reason,
		EffectiveDate: timestamppb.New(c.EffectiveDate),
		TerminatedAt:  timestamppb.New(c.At),
	}), nil
}

// changedTermsVersion is the terms version a change of the terms belongs to:
// the current version while nobody has signed it, else a new one.
func (s State) changedTermsVersion() int32 {
	if len(s.Current.Signatures) > 0 || (s.InForce != nil && s.InForce.Version >= s.Current.Version) {
		return s.Current.Version + 1
	}
	return s.Current.Version
}

func blank(s string) bool { return strings.TrimSpace(s) == "" }

func events(es ...proto.Message) []proto.Message { return es }
