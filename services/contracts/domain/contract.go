// Package domain is the contract aggregate of the contracts service: a pure
// decider. Decide checks a command against the current state and returns the
// events it causes; Evolve folds events into state. Nothing here does I/O,
// takes a context or reads a clock: time arrives in the commands and, for the
// bookkeeping timestamps of State, from the event envelope (EvolveAt).
//
// Events are the generated protobuf messages of jsm.contracts.v1, so the
// decider can be plugged into the generic event-sourcing runner unchanged.
package domain

import (
	"encoding/json"
	"reflect"
	"slices"
	"time"

	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
)

// ContractID identifies a contract (the aggregate id).
type ContractID string

// OrgID identifies an organisation, the customer or the provider of a contract.
type OrgID string

// Actor is the org and user on whose behalf a command is given.
type Actor struct {
	Org  OrgID
	User string
}

// State is the contract as the events have made it. It is stored as a JSON
// snapshot for the command side and as the API message (ContractToProto) in
// the read model, so it holds plain Go values only and round-trips through
// both unchanged.
type State struct {
	ID       ContractID        `json:"id,omitzero"`
	Customer OrgID             `json:"customer,omitzero"`
	Provider OrgID             `json:"provider,omitzero"`
	Phase    contractsv1.Phase `json:"phase,omitzero"`
	// Current is the latest terms version with the signatures it has so far.
	Current TermsVersion `json:"current,omitzero"`
	// InForce is the latest version signed by both parties; nil until then.
	InForce     *TermsVersion `json:"in_force,omitzero"`
	Termination *Termination  `json:"termination,omitzero"`
	// CreatedAt and UpdatedAt are the envelope times of the first and the last
	// event, as given to EvolveAt; Evolve leaves them alone.
	CreatedAt time.Time `json:"created_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// stateJSON is State's stored form (the command side's snapshots). While
// the version in force is the current one, as for most active contracts, it
// is stored once: the terms are most of a contract's bytes.
type stateJSON struct {
	stateFields
	InForceIsCurrent bool `json:"in_force_is_current,omitzero"`
}

type stateFields State

// MarshalJSON stores the terms in force once when they are the current ones.
func (s State) MarshalJSON() ([]byte, error) {
	j := stateJSON{stateFields: stateFields(s)}
	if s.InForce != nil && s.InForce.Version == s.Current.Version && reflect.DeepEqual(*s.InForce, s.Current) {
		j.InForce, j.InForceIsCurrent = nil, true
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (s *State) UnmarshalJSON(data []byte) error {
	var j stateJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	*s = State(j.stateFields)
	if j.InForceIsCurrent {
		inForce := s.Current.clone()
		s.InForce = &inForce
	}
	return nil
}

// Exists reports whether the contract has been drafted.
func (s State) Exists() bool { return s.ID != "" }

// Status is DRAFT until a version is in force, then ACTIVE, and TERMINATED
// once the contract has been terminated. A contract that does not exist has
// no status (UNSPECIFIED).
func (s State) Status() contractsv1.ContractStatus {
	switch {
	case !s.Exists():
		return contractsv1.ContractStatus_CONTRACT_STATUS_UNSPECIFIED
	case s.Termination != nil:
		return contractsv1.ContractStatus_CONTRACT_STATUS_TERMINATED
	case s.InForce != nil:
		return contractsv1.ContractStatus_CONTRACT_STATUS_ACTIVE
	default:
		return contractsv1.ContractStatus_CONTRACT_STATUS_DRAFT
	}
}

// IsParty reports whether org is the customer or the provider of the contract.
func (s State) IsParty(org OrgID) bool {
	return org != "" && (org == s.Customer || org == s.Provider)
}

// Counterparty returns the other party of the contract, or "" when org is no party.
func (s State) Counterparty(org OrgID) OrgID {
	switch {
	case org == "":
		return ""
	case org == s.Customer:
		return s.Provider
	case org == s.Provider:
		return s.Customer
	default:
		return ""
	}
}

// Effective returns the terms version that governs the contract: the one in
// force, or the current draft while none is.
func (s State) Effective() TermsVersion {
	if s.InForce != nil {
		return *s.InForce
	}
	return s.Current
}

// TermsVersion is one numbered version of the terms with the signatures it got.
type TermsVersion struct {
	Version    int32       `json:"version,omitzero"`
	Terms      Terms       `json:"terms,omitzero"`
	Signatures []Signature `json:"signatures,omitzero"`
}

// SignedBy reports whether org has signed this version.
func (v TermsVersion) SignedBy(org OrgID) bool {
	return slices.ContainsFunc(v.Signatures, func(sig Signature) bool { return sig.Org == org })
}

func (v TermsVersion) clone() TermsVersion {
	return TermsVersion{Version: v.Version, Terms: v.Terms.clone(), Signatures: cloneSlice(v.Signatures)}
}

// Signature records that a user of an org signed a terms version.
type Signature struct {
	Org      OrgID     `json:"org,omitzero"`
	User     string    `json:"user,omitzero"`
	SignedAt time.Time `json:"signed_at,omitzero"`
}

// Terms are what the parties agree on and sign.
type Terms struct {
	Title             string          `json:"title,omitzero"`
	Reference         string          `json:"reference,omitzero"`
	ServicesInScope   []string        `json:"services_in_scope,omitzero"`
	CriticalFunction  bool            `json:"critical_function,omitzero"`
	TerminationNotice time.Duration   `json:"termination_notice,omitzero"`
	Requirements      []Requirement   `json:"requirements,omitzero"`
	Contacts          []Contact       `json:"contacts,omitzero"`
	Subcontractors    []Subcontractor `json:"subcontractors,omitzero"`
	Levels            ServiceLevels   `json:"levels,omitzero"`
}

func (t Terms) clone() Terms {
	t.ServicesInScope = cloneSlice(t.ServicesInScope)
	t.Requirements = cloneSlice(t.Requirements)
	t.Contacts = cloneSlice(t.Contacts)
	t.Subcontractors = cloneSlice(t.Subcontractors)
	t.Levels = t.Levels.clone()
	return t
}

// Requirement is a security requirement the provider must meet.
type Requirement struct {
	ID                string `json:"id,omitzero"`
	StandardReference string `json:"standard_reference,omitzero"`
	Text              string `json:"text,omitzero"`
}

// Contact is a named contact of one party for one role.
type Contact struct {
	Org   OrgID  `json:"org,omitzero"`
	Role  string `json:"role,omitzero"`
	Name  string `json:"name,omitzero"`
	Email string `json:"email,omitzero"`
	Phone string `json:"phone,omitzero"`
}

// Subcontractor is a supplier in the provider's chain; Rank 1 is a direct
// supplier of the provider, 2 its supplier, and so on.
type Subcontractor struct {
	Name    string `json:"name,omitzero"`
	Service string `json:"service,omitzero"`
	Rank    int32  `json:"rank,omitzero"`
}

// SeverityDeadline is a deadline for one severity.
type SeverityDeadline struct {
	Severity commonv1.Severity `json:"severity,omitzero"`
	Within   time.Duration     `json:"within,omitzero"`
}

// ServiceLevels are the obligations that drive the other areas.
type ServiceLevels struct {
	IncidentNotification        []SeverityDeadline        `json:"incident_notification,omitzero"`
	PatchDeadlines              []SeverityDeadline        `json:"patch_deadlines,omitzero"`
	ReportCadence               contractsv1.ReportCadence `json:"report_cadence,omitzero"`
	AuditRights                 AuditRights               `json:"audit_rights,omitzero"`
	CustomerApprovalCategories  []commonv1.ChangeCategory `json:"customer_approval_categories,omitzero"`
	MaintenanceWindows          []MaintenanceWindow       `json:"maintenance_windows,omitzero"`
	EmergencyChangeReviewWithin time.Duration             `json:"emergency_change_review_within,omitzero"`
}

// IncidentNotificationWithin returns the contractual deadline for notifying
// the other party of an incident of the given severity.
func (l ServiceLevels) IncidentNotificationWithin(sev commonv1.Severity) (time.Duration, bool) {
	return deadlineFor(l.IncidentNotification, sev)
}

// PatchWithin returns the contractual deadline for fixing a vulnerability of
// the given severity.
func (l ServiceLevels) PatchWithin(sev commonv1.Severity) (time.Duration, bool) {
	return deadlineFor(l.PatchDeadlines, sev)
}

// NeedsCustomerApproval reports whether changes of the category need the
// customer's approval.
func (l ServiceLevels) NeedsCustomerApproval(cat commonv1.ChangeCategory) bool {
	return slices.Contains(l.CustomerApprovalCategories, cat)
}

func deadlineFor(ds []SeverityDeadline, sev commonv1.Severity) (time.Duration, bool) {
	for _, d := range ds {
		if d.Severity == sev {
			return d.Within, true
		}
	}
	return 0, false
}

func (l ServiceLevels) clone() ServiceLevels {
	l.IncidentNotification = cloneSlice(l.IncidentNotification)
	l.PatchDeadlines = cloneSlice(l.PatchDeadlines)
	l.CustomerApprovalCategories = cloneSlice(l.CustomerApprovalCategories)
	l.MaintenanceWindows = cloneSlice(l.MaintenanceWindows)
	return l
}

// AuditRights is the customer's right to audit the provider.
type AuditRights struct {
	PerYear int32         `json:"per_year,omitzero"`
	Notice  time.Duration `json:"notice,omitzero"`
	OnSite  bool          `json:"on_site,omitzero"`
}

// MaintenanceWindow is a recurring window for agreed downtime. Weekday is the
// ISO weekday (1 = Monday ... 7 = Sunday), Start is local "HH:MM" in TimeZone
// (IANA name; empty means UTC).
type MaintenanceWindow struct {
	Weekday  int32         `json:"weekday,omitzero"`
	Start    string        `json:"start,omitzero"`
	Duration time.Duration `json:"duration,omitzero"`
	TimeZone string        `json:"time_zone,omitzero"`
}

// Termination records who terminated the contract, why, and from when.
type Termination struct {
	Org           OrgID     `json:"org,omitzero"`
	Reason        string    `json:"reason,omitzero"`
	EffectiveDate time.Time `json:"effective_date,omitzero"`
	TerminatedAt  time.Time `json:"terminated_at,omitzero"`
}

// cloneSlice copies s; empty slices become nil so that state built from
// commands, from decoded events and from JSON snapshots compares equal.
func cloneSlice[E any](s []E) []E {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}
