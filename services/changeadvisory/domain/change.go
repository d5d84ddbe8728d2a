// Package domain holds the change advisory area's change aggregate as a pure
// decider. Decide checks a command against the state and returns the events
// it causes; Evolve folds events into state. Nothing here does I/O or reads
// a clock: time arrives in the commands and, for bookkeeping, in Meta.
//
// What a change needs to know of its contract (the parties, whether it is in
// force, which categories need the customer's approval, the maintenance
// windows, how soon an emergency change is reviewed) arrives in
// RequestChange; the app layer takes it from the contracts this service
// learns from events. The request fixes the approval rules for the change's
// life: later terms apply to later changes.
package domain

import (
	"slices"
	"time"

	changeadvisoryv1 "github.com/jsmplatform/jsm/proto/gen/jsm/changeadvisory/v1"
	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
)

// Contract is what a change needs to know about its contract when it is requested.
type Contract struct {
	ID       string
	Customer OrgID
	Provider OrgID
	// InForce: terms signed by both parties are in force.
	InForce bool
	// EndsAt is the termination's effective date; zero when not terminated.
	EndsAt time.Time
	// CustomerApprovalCategories are the categories that need the customer's approval.
	CustomerApprovalCategories []commonv1.ChangeCategory
	// MaintenanceWindows are the recurring windows in which downtime is agreed.
	MaintenanceWindows []Window
	// EmergencyReviewWithin is how soon after implementation both parties
	// review an emergency change; zero sets no deadline.
	EmergencyReviewWithin time.Duration
}

// IsParty reports whether org is the customer or the provider.
func (c Contract) IsParty(org OrgID) bool {
	return org != "" && (org == c.Customer || org == c.Provider)
}

// RequiredApprovers are the orgs whose approval a change of the category
// needs: the provider always, the customer when the contract names the category.
func (c Contract) RequiredApprovers(cat commonv1.ChangeCategory) []OrgID {
	out := []OrgID{c.Provider}
	if slices.Contains(c.CustomerApprovalCategories, cat) {
		out = append(out, c.Customer)
	}
	return out
}

// Link is an object of another area the change belongs to.
type Link struct {
	Kind  string   `json:"kind"`
	ID    string   `json:"id"`
	Items []string `json:"items,omitzero"`
}

// Approval is one required party's approval.
type Approval struct {
	Org        OrgID     `json:"org"`
	Comment    string    `json:"comment,omitzero"`
	ApprovedAt time.Time `json:"approved_at"`
}

// Rejection is the rejection that ended the change.
type Rejection struct {
	Org        OrgID     `json:"org"`
	Reason     string    `json:"reason"`
	RejectedAt time.Time `json:"rejected_at"`
}

// Implementation is the recorded outcome of carrying the change out.
type Implementation struct {
	Success       bool      `json:"success,omitzero"`
	Notes         string    `json:"notes,omitzero"`
	ImplementedAt time.Time `json:"implemented_at"`
}

// Rollback records that the change was rolled back.
type Rollback struct {
	Reason       string    `json:"reason"`
	RolledBackAt time.Time `json:"rolled_back_at"`
}

// Review is one party's review of an emergency change after the fact.
type Review struct {
	Org        OrgID     `json:"org"`
	Accepted   bool      `json:"accepted,omitzero"`
	Comment    string    `json:"comment,omitzero"`
	ReviewedAt time.Time `json:"reviewed_at"`
}

// State is the change as its events have made it. It holds plain values
// only: it is the runner's JSON snapshot and the read model's row.
type State struct {
	ID                     string                        `json:"id,omitzero"`
	ContractID             string                        `json:"contract_id,omitzero"`
	Customer               OrgID                         `json:"customer,omitzero"`
	Provider               OrgID                         `json:"provider,omitzero"`
	Requester              OrgID                         `json:"requester,omitzero"`
	Title                  string                        `json:"title,omitzero"`
	Description            string                        `json:"description,omitzero"`
	Category               commonv1.ChangeCategory       `json:"category,omitzero"`
	Risk                   changeadvisoryv1.Risk         `json:"risk,omitzero"`
	Impact                 string                        `json:"impact,omitzero"`
	PlannedStart           time.Time                     `json:"planned_start,omitzero"`
	PlannedEnd             time.Time                     `json:"planned_end,omitzero"`
	ExpectedDowntime       time.Duration                 `json:"expected_downtime,omitzero"`
	RollbackPlan           string                        `json:"rollback_plan,omitzero"`
	Links                  []Link                        `json:"links,omitzero"`
	Emergency              bool                          `json:"emergency,omitzero"`
	RequiredApprovers      []OrgID                       `json:"required_approvers,omitzero"`
	DowntimeNeedsAgreement bool                          `json:"downtime_needs_agreement,omitzero"`
	EmergencyReviewWithin  time.Duration                 `json:"emergency_review_within,omitzero"`
	Status                 changeadvisoryv1.ChangeStatus `json:"status,omitzero"`
	Approvals              []Approval                    `json:"approvals,omitzero"`
	DowntimeAgreedAt       time.Time                     `json:"downtime_agreed_at,omitzero"`
	ReviewAt               time.Time                     `json:"review_at,omitzero"`
	ReviewNote             string                        `json:"review_note,omitzero"`
	Rejection              *Rejection                    `json:"rejection,omitzero"`
	Implementation         *Implementation               `json:"implementation,omitzero"`
	Rollback               *Rollback                     `json:"rollback,omitzero"`
	ReviewDueAt            time.Time                     `json:"review_due_at,omitzero"`
	Reviews                []Review                      `json:"reviews,omitzero"`
	ReviewOverdue          bool                          `json:"review_overdue,omitzero"`
	RequestedAt            time.Time                     `json:"requested_at,omitzero"`
	ApprovedAt             time.Time                     `json:"approved_at,omitzero"`
	ClosedAt               time.Time                     `json:"closed_at,omitzero"`
	UpdatedAt              time.Time                     `json:"updated_at,omitzero"`
	Position               uint64                        `json:"position,omitzero"`
}

// Exists reports whether the change has been requested.
func (s State) Exists() bool { return s.ID != "" }

// IsParty reports whether org is a party to the change's contract.
func (s State) IsParty(org OrgID) bool {
	return org != "" && (org == s.Customer || org == s.Provider)
}

// Requires reports whether org's approval is required.
func (s State) Requires(org OrgID) bool { return slices.Contains(s.RequiredApprovers, org) }

// ApprovedBy reports whether org has approved.
func (s State) ApprovedBy(org OrgID) bool {
	return slices.ContainsFunc(s.Approvals, func(a Approval) bool { return a.Org == org })
}

// ReviewedBy reports whether org has reviewed the emergency change.
func (s State) ReviewedBy(org OrgID) bool {
	return slices.ContainsFunc(s.Reviews, func(r Review) bool { return r.Org == org })
}

// MissingReviews are the parties that have not reviewed the emergency change yet.
func (s State) MissingReviews() []OrgID {
	var out []OrgID
	for _, o := range []OrgID{s.Provider, s.Customer} {
		if !s.ReviewedBy(o) {
			out = append(out, o)
		}
	}
	return out
}

// ReviewPending reports whether an implemented emergency change still
// waits for a party's review and its overdue review is not recorded.
func (s State) ReviewPending() bool {
	return s.Emergency && s.Implementation != nil && len(s.MissingReviews()) > 0 && !s.ReviewOverdue
}

// ReviewSettled reports whether an implemented emergency change may be
// closed: both parties reviewed it, or the missed review was recorded.
func (s State) ReviewSettled() bool {
	return !s.Emergency || s.Implementation == nil || len(s.MissingReviews()) == 0 || s.ReviewOverdue
}

// readyToApprove reports whether every required party approved and the
// downtime is agreed where it needs to be.
func (s State) readyToApprove() bool {
	for _, o := range s.RequiredApprovers {
		if !s.ApprovedBy(o) {
			return false
		}
	}
	return !s.DowntimeNeedsAgreement || !s.DowntimeAgreedAt.IsZero()
}

func (s State) clone() State {
	s.Links = slices.Clone(s.Links)
	s.RequiredApprovers = slices.Clone(s.RequiredApprovers)
	s.Approvals = slices.Clone(s.Approvals)
	s.Reviews = slices.Clone(s.Reviews)
	return s
}
