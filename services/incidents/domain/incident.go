// Package domain holds the incidents area's aggregates as pure deciders: the
// incident, with its contractual and regulatory clocks, and the exercise.
// Decide checks a command against the state and returns the events it
// causes; Evolve folds events into state. Nothing here does I/O or reads a
// clock: time arrives in the commands and, for bookkeeping, in Meta.
//
// What the incident needs to know of its contract (the parties, whether it
// is in force, the notification deadlines) arrives in ReportIncident; the
// app layer takes it from the contracts this service learns from events.
package domain

import (
	"slices"
	"time"

	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
	incidentsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/incidents/v1"
)

// Regulatory deadlines (NIS2 Art. 23, DORA Art. 19 with its RTS).
const (
	NIS2EarlyWarningWithin = 24 * time.Hour
	NIS2NotificationWithin = 72 * time.Hour
	DORAInitialAfterClass  = 4 * time.Hour
	DORAInitialAfterAware  = 24 * time.Hour
	DORAIntermediateWithin = 72 * time.Hour
	finalReportMonthsLater = 1
)

// Deadline is the contract's notification deadline for one severity.
type Deadline struct {
	Severity commonv1.Severity `json:"severity,omitzero"`
	Within   time.Duration     `json:"within,omitzero"`
}

// Contract is what an incident needs to know about its contract when it is reported.
type Contract struct {
	ID       string
	Customer OrgID
	Provider OrgID
	// InForce: terms signed by both parties are in force.
	InForce bool
	// EndsAt is the termination's effective date; zero when not terminated.
	EndsAt time.Time
	// Notification deadlines of the terms in force.
	Deadlines []Deadline
}

// IsParty reports whether org is the customer or the provider.
func (c Contract) IsParty(org OrgID) bool {
	return org != "" && (org == c.Customer || org == c.Provider)
}

// Clock is one deadline the incident runs against.
type Clock struct {
	ID        string                `json:"id"`
	Kind      incidentsv1.ClockKind `json:"kind"`
	Party     OrgID                 `json:"party"`
	StartedAt time.Time             `json:"started_at,omitzero"`
	DueAt     time.Time             `json:"due_at"`
	MetAt     time.Time             `json:"met_at,omitzero"`
	// Overdue: a ClockOverdue event recorded that the deadline passed unmet.
	Overdue bool `json:"overdue,omitzero"`
}

// Met reports whether the clock has been met (in time or late).
func (c Clock) Met() bool { return !c.MetAt.IsZero() }

// PassedAt reports whether the deadline has passed unmet at t: exactly at
// the deadline it has not.
func (c Clock) PassedAt(t time.Time) bool { return !c.Met() && t.After(c.DueAt) }

// Classification is one party's regulatory classification.
type Classification struct {
	Org          OrgID     `json:"org"`
	Significant  bool      `json:"significant,omitzero"`
	Major        bool      `json:"major,omitzero"`
	Criteria     []string  `json:"criteria,omitzero"`
	ClassifiedAt time.Time `json:"classified_at"`
	// MajorSince is when the org first classified the incident major; the
	// DORA initial notification runs from it.
	MajorSince time.Time `json:"major_since,omitzero"`
}

// Notification is one notice from a party to the other.
type Notification struct {
	ID             string            `json:"id"`
	From           OrgID             `json:"from"`
	To             OrgID             `json:"to"`
	Channel        string            `json:"channel,omitzero"`
	Content        string            `json:"content,omitzero"`
	Severity       commonv1.Severity `json:"severity,omitzero"`
	NotifiedAt     time.Time         `json:"notified_at"`
	AcknowledgedAt time.Time         `json:"acknowledged_at,omitzero"`
}

// Submission is a report to an authority.
type Submission struct {
	Org         OrgID                      `json:"org"`
	Regime      incidentsv1.Regime         `json:"regime"`
	Kind        incidentsv1.SubmissionKind `json:"kind"`
	Reference   string                     `json:"reference,omitzero"`
	Authority   string                     `json:"authority,omitzero"`
	SubmittedAt time.Time                  `json:"submitted_at"`
}

// Task is work assigned to one party.
type Task struct {
	ID          string    `json:"id"`
	Title       string    `json:"title"`
	Assignee    OrgID     `json:"assignee"`
	DueAt       time.Time `json:"due_at"`
	CompletedAt time.Time `json:"completed_at,omitzero"`
	Note        string    `json:"note,omitzero"`
}

// Entry is one line of the incident's timeline.
type Entry struct {
	// ID is a party's own entry's id; recorded events have none.
	ID       string    `json:"id,omitzero"`
	At       time.Time `json:"at"`
	Org      OrgID     `json:"org,omitzero"`
	User     string    `json:"user,omitzero"`
	Kind     string    `json:"kind"`
	Text     string    `json:"text,omitzero"`
	Position uint64    `json:"position,omitzero"`
}

// Review is the post-incident review.
type Review struct {
	RootCause        string    `json:"root_cause"`
	LessonsLearned   []string  `json:"lessons_learned,omitzero"`
	FollowUpMeasures []string  `json:"follow_up_measures,omitzero"`
	ReviewedAt       time.Time `json:"reviewed_at"`
	Org              OrgID     `json:"org,omitzero"`
}

// ExternalRef points to the incident in another system.
type ExternalRef struct {
	System string `json:"system"`
	ID     string `json:"id"`
	URL    string `json:"url,omitzero"`
}

// State is the incident as its events have made it. It holds plain values
// only: it is the runner's JSON snapshot and the read model's row.
type State struct {
	ID               string                     `json:"id,omitzero"`
	ContractID       string                     `json:"contract_id,omitzero"`
	Customer         OrgID                      `json:"customer,omitzero"`
	Provider         OrgID                      `json:"provider,omitzero"`
	Reporter         OrgID                      `json:"reporter,omitzero"`
	Title            string                     `json:"title,omitzero"`
	Description      string                     `json:"description,omitzero"`
	Severity         commonv1.Severity          `json:"severity,omitzero"`
	Category         string                     `json:"category,omitzero"`
	AffectedServices []string                   `json:"affected_services,omitzero"`
	AffectedAssets   []string                   `json:"affected_assets,omitzero"`
	AwareAt          time.Time                  `json:"aware_at,omitzero"`
	ExternalRefs     []ExternalRef              `json:"external_refs,omitzero"`
	Deadlines        []Deadline                 `json:"deadlines,omitzero"`
	Status           incidentsv1.IncidentStatus `json:"status,omitzero"`
	EscalationLevel  int32                      `json:"escalation_level,omitzero"`
	// Aware is when each party became aware.
	Aware           map[OrgID]time.Time `json:"aware,omitzero"`
	Classifications []Classification    `json:"classifications,omitzero"`
	Clocks          []Clock             `json:"clocks,omitzero"`
	Notifications   []Notification      `json:"notifications,omitzero"`
	Submissions     []Submission        `json:"submissions,omitzero"`
	Tasks           []Task              `json:"tasks,omitzero"`
	Timeline        []Entry             `json:"timeline,omitzero"`
	Review          *Review             `json:"review,omitzero"`
	ReportedAt      time.Time           `json:"reported_at,omitzero"`
	UpdatedAt       time.Time           `json:"updated_at,omitzero"`
	Position        uint64              `json:"position,omitzero"`
}

// Exists reports whether the incident has been reported.
func (s State) Exists() bool { return s.ID != "" }

// IsParty reports whether org is a party to the incident's contract.
func (s State) IsParty(org OrgID) bool {
	return org != "" && (org == s.Customer || org == s.Provider)
}

// Counterparty returns the other party.
func (s State) Counterparty(org OrgID) OrgID {
	switch org {
	case s.Customer:
		return s.Provider
	case s.Provider:
		return s.Customer
	}
	return ""
}

// Clock returns the clock with the id.
func (s State) Clock(id string) (Clock, bool) {
	i := slices.IndexFunc(s.Clocks, func(c Clock) bool { return c.ID == id })
	if i < 0 {
		return Clock{}, false
	}
	return s.Clocks[i], true
}

// Overdue reports whether any clock is overdue and still unmet.
func (s State) Overdue() bool {
	return slices.ContainsFunc(s.Clocks, func(c Clock) bool { return c.Overdue && !c.Met() })
}

// ClassificationOf returns org's classification.
func (s State) ClassificationOf(org OrgID) (Classification, bool) {
	i := slices.IndexFunc(s.Classifications, func(c Classification) bool { return c.Org == org })
	if i < 0 {
		return Classification{}, false
	}
	return s.Classifications[i], true
}

// Regulated reports whether any party classified the incident significant or major.
func (s State) Regulated() bool {
	return slices.ContainsFunc(s.Classifications, func(c Classification) bool { return c.Significant || c.Major })
}

// deadlineFor returns the notification deadline for sev.
func deadlineFor(ds []Deadline, sev commonv1.Severity) (time.Duration, bool) {
	for _, d := range ds {
		if d.Severity == sev {
			return d.Within, true
		}
	}
	return 0, false
}

// moreSevere reports whether a is more severe than b (CRITICAL = 1 is the most).
func moreSevere(a, b commonv1.Severity) bool {
	return a != commonv1.Severity_SEVERITY_UNSPECIFIED && (b == commonv1.Severity_SEVERITY_UNSPECIFIED || a < b)
}

// monthAfter is the "one month after" of the regulations: the same day and
// time in the next month, or its last day when it has no such day (31
// January: 28 or 29 February).
func monthAfter(t time.Time) time.Time {
	t = t.UTC()
	next := t.AddDate(0, finalReportMonthsLater, 0)
	if next.Day() != t.Day() {
		next = time.Date(t.Year(), t.Month()+finalReportMonthsLater+1, 0, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
	}
	return next
}
