package domain

import (
	"time"

	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Mapping between domain values and their protobuf messages. The FromProto
// functions accept nil and return the zero value; the ToProto functions always
// set every nested message (durations included), so that equal domain values
// give proto.Equal messages.

// RequirementToProto maps a requirement to its message.
func RequirementToProto(r Requirement) *contractsv1.Requirement {
	return &contractsv1.Requirement{RequirementId: r.ID, StandardReference: r.StandardReference, Text: r.Text}
}

// RequirementFromProto maps a requirement message to the domain.
func RequirementFromProto(m *contractsv1.Requirement) Requirement {
	return Requirement{ID: m.GetRequirementId(), StandardReference: m.GetStandardReference(), Text: m.GetText()}
}

// ContactToProto maps a contact to its message.
func ContactToProto(c Contact) *contractsv1.Contact {
	return &contractsv1.Contact{OrgId: string(c.Org), Role: c.Role, Name: c.Name, Email: c.Email, Phone: c.Phone}
}

// ContactFromProto maps a contact message to the domain.
func ContactFromProto(m *contractsv1.Contact) Contact {
	return Contact{Org: OrgID(m.GetOrgId()), Role: m.GetRole(), Name: m.GetName(), Email: m.GetEmail(), Phone: m.GetPhone()}
}

// SubcontractorToProto maps a subcontractor to its message.
func SubcontractorToProto(s Subcontractor) *contractsv1.Subcontractor {
	return &contractsv1.Subcontractor{Name: s.Name, Service: s.Service, Rank: s.Rank}
}

// SubcontractorFromProto maps a subcontractor message to the domain.
func SubcontractorFromProto(m *contractsv1.Subcontractor) Subcontractor {
	return Subcontractor{Name: m.GetName(), Service: m.GetService(), Rank: m.GetRank()}
}

// LevelsToProto maps service levels to their message.
func LevelsToProto(l ServiceLevels) *contractsv1.ServiceLevels {
	return &contractsv1.ServiceLevels{
		IncidentNotification: deadlinesToProto(l.IncidentNotification),
		PatchDeadlines:       deadlinesToProto(l.PatchDeadlines),
		ReportCadence:        l.ReportCadence,
		AuditRights: &contractsv1.AuditRights{
			PerYear: l.AuditRights.PerYear,
			Notice:  durationpb.New(l.AuditRights.Notice),
			OnSite:  l.AuditRights.OnSite,
		},
		CustomerApprovalCategories:  cloneSlice(l.CustomerApprovalCategories),
		MaintenanceWindows:          windowsToProto(l.MaintenanceWindows),
		EmergencyChangeReviewWithin: durationpb.New(l.EmergencyChangeReviewWithin),
	}
}

// LevelsFromProto maps a service-levels message to the domain.
func LevelsFromProto(m *contractsv1.ServiceLevels) ServiceLevels {
	return ServiceLevels{
		IncidentNotification: deadlinesFromProto(m.GetIncidentNotification()),
		PatchDeadlines:       deadlinesFromProto(m.GetPatchDeadlines()),
		ReportCadence:        m.GetReportCadence(),
		AuditRights: AuditRights{
			PerYear: m.GetAuditRights().GetPerYear(),
			Notice:  durationFromProto(m.GetAuditRights().GetNotice()),
			OnSite:  m.GetAuditRights().GetOnSite(),
		},
		CustomerApprovalCategories:  cloneSlice(m.GetCustomerApprovalCategories()),
		MaintenanceWindows:          windowsFromProto(m.GetMaintenanceWindows()),
		EmergencyChangeReviewWithin: durationFromProto(m.GetEmergencyChangeReviewWithin()),
	}
}

// TermsToProto maps terms to their message.
func TermsToProto(t Terms) *contractsv1.Terms {
	return &contractsv1.Terms{
		Title:             t.Title,
		Reference:         t.Reference,
		ServicesInScope:   cloneSlice(t.ServicesInScope),
		CriticalFunction:  t.CriticalFunction,
		TerminationNotice: durationpb.New(t.TerminationNotice),
		Requirements:      mapSlice(t.Requirements, RequirementToProto),
		Contacts:          mapSlice(t.Contacts, ContactToProto),
		Subcontractors:    mapSlice(t.Subcontractors, SubcontractorToProto),
		ServiceLevels:     LevelsToProto(t.Levels),
	}
}

// TermsFromProto maps a terms message to the domain.
func TermsFromProto(m *contractsv1.Terms) Terms {
	return Terms{
		Title:             m.GetTitle(),
		Reference:         m.GetReference(),
		ServicesInScope:   cloneSlice(m.GetServicesInScope()),
		CriticalFunction:  m.GetCriticalFunction(),
		TerminationNotice: durationFromProto(m.GetTerminationNotice()),
		Requirements:      mapSlice(m.GetRequirements(), RequirementFromProto),
		Contacts:          mapSlice(m.GetContacts(), ContactFromProto),
		Subcontractors:    mapSlice(m.GetSubcontractors(), SubcontractorFromProto),
		Levels:            LevelsFromProto(m.GetServiceLevels()),
	}
}

// TermsVersionFromProto maps a terms-version message to the domain.
func TermsVersionFromProto(m *contractsv1.TermsVersion) TermsVersion {
	return TermsVersion{
		Version:    m.GetVersion(),
		Terms:      TermsFromProto(m.GetTerms()),
		Signatures: mapSlice(m.GetSignatures(), SignatureFromProto),
	}
}

// SignatureFromProto maps a signature message to the domain.
func SignatureFromProto(m *contractsv1.Signature) Signature {
	return Signature{Org: OrgID(m.GetOrgId()), User: m.GetUserId(), SignedAt: timeFromProto(m.GetSignedAt())}
}

// TerminationFromProto maps a termination message to the domain; nil gives nil.
func TerminationFromProto(m *contractsv1.Termination) *Termination {
	if m == nil {
		return nil
	}
	return &Termination{
		Org:           OrgID(m.GetOrgId()),
		Reason:        m.GetReason(),
		EffectiveDate: timeFromProto(m.GetEffectiveDate()),
		TerminatedAt:  timeFromProto(m.GetTerminatedAt()),
	}
}

// ContractToProto is the contract as the API shows it, at the stream
// position of its last event. It holds the whole state: ContractFromProto
// gives it back.
func ContractToProto(s State, position uint64) *contractsv1.Contract {
	effective := s.Effective()
	out := &contractsv1.Contract{
		ContractId:    string(s.ID),
		CustomerOrgId: string(s.Customer),
		ProviderOrgId: string(s.Provider),
		Title:         effective.Terms.Title,
		Status:        s.Status(),
		Phase:         s.Phase,
		ServiceLevels: LevelsToProto(effective.Terms.Levels),
		Current:       TermsVersionToProto(s.Current),
		Termination:   TerminationToProto(s.Termination),
		Position:      position,
		CreatedAt:     timeToProto(s.CreatedAt),
		UpdatedAt:     timeToProto(s.UpdatedAt),
	}
	if s.InForce != nil {
		out.InForce = TermsVersionToProto(*s.InForce)
	}
	return out
}

// ContractFromProto is the state a contract message shows.
func ContractFromProto(m *contractsv1.Contract) State {
	s := State{
		ID:          ContractID(m.GetContractId()),
		Customer:    OrgID(m.GetCustomerOrgId()),
		Provider:    OrgID(m.GetProviderOrgId()),
		Phase:       m.GetPhase(),
		Current:     TermsVersionFromProto(m.GetCurrent()),
		Termination: TerminationFromProto(m.GetTermination()),
		CreatedAt:   timeFromProto(m.GetCreatedAt()),
		UpdatedAt:   timeFromProto(m.GetUpdatedAt()),
	}
	if m.GetInForce() != nil {
		inForce := TermsVersionFromProto(m.GetInForce())
		s.InForce = &inForce
	}
	return s
}

// TermsVersionToProto maps a terms version with its signatures to its message.
func TermsVersionToProto(v TermsVersion) *contractsv1.TermsVersion {
	return &contractsv1.TermsVersion{
		Version:    v.Version,
		Terms:      TermsToProto(v.Terms),
		Signatures: mapSlice(v.Signatures, SignatureToProto),
	}
}

// SignatureToProto maps a signature to its message.
func SignatureToProto(s Signature) *contractsv1.Signature {
	return &contractsv1.Signature{OrgId: string(s.Org), UserId: s.User, SignedAt: timeToProto(s.SignedAt)}
}

// TerminationToProto maps a termination to its message; nil gives nil.
func TerminationToProto(t *Termination) *contractsv1.Termination {
	if t == nil {
		return nil
	}
	return &contractsv1.Termination{
		OrgId:         string(t.Org),
		Reason:        t.Reason,
		EffectiveDate: timeToProto(t.EffectiveDate),
		TerminatedAt:  timeToProto(t.TerminatedAt),
	}
}

func deadlinesToProto(ds []SeverityDeadline) []*contractsv1.SeverityDeadline {
	return mapSlice(ds, func(d SeverityDeadline) *contractsv1.SeverityDeadline {
		return &contractsv1.SeverityDeadline{Severity: d.Severity, Within: durationpb.New(d.Within)}
	})
}

func deadlinesFromProto(ms []*contractsv1.SeverityDeadline) []SeverityDeadline {
	return mapSlice(ms, func(m *contractsv1.SeverityDeadline) SeverityDeadline {
		return SeverityDeadline{Severity: m.GetSeverity(), Within: durationFromProto(m.GetWithin())}
	})
}

func windowsToProto(ws []MaintenanceWindow) []*contractsv1.MaintenanceWindow {
	return mapSlice(ws, func(w MaintenanceWindow) *contractsv1.MaintenanceWindow {
		return &contractsv1.MaintenanceWindow{
			Weekday:  w.Weekday,
			Start:    w.Start,
			Duration: durationpb.New(w.Duration),
			TimeZone: w.TimeZone,
		}
	})
}

func windowsFromProto(ms []*contractsv1.MaintenanceWindow) []MaintenanceWindow {
	return mapSlice(ms, func(m *contractsv1.MaintenanceWindow) MaintenanceWindow {
		return MaintenanceWindow{
			Weekday:  m.GetWeekday(),
			Start:    m.GetStart(),
			Duration: durationFromProto(m.GetDuration()),
			TimeZone: m.GetTimeZone(),
		}
	})
}

// durationFromProto maps nil to 0.
func durationFromProto(d *durationpb.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return d.AsDuration()
}

// timeToProto maps the zero time to nil.
func timeToProto(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// timeFromProto maps nil to the zero time and everything else to UTC, so
// that state times survive a JSON round trip unchanged.
func timeFromProto(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

func mapSlice[E, F any](s []E, f func(E) F) []F {
	if len(s) == 0 {
		return nil
	}
	out := make([]F, len(s))
	for i, e := range s {
		out[i] = f(e)
	}
	return out
}
