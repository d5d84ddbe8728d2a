package domain

import (
	"time"

	"github.com/jsmplatform/jsm/libs/decide"
	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
	incidentsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/incidents/v1"
)

// The decider's shared vocabulary (libs/decide).
type (
	// OrgID identifies an organisation.
	OrgID = decide.OrgID
	// Actor is the org and user on whose behalf a command is given.
	Actor = decide.Actor
	// Meta is what Evolve takes from an event's envelope.
	Meta = decide.Meta
	// By is who gives a command and when; every command embeds it.
	By = decide.By
	// Command is an instruction to an aggregate; commands are passed as pointers.
	Command = decide.Command
)

// Stamp sets who gives cmd and when.
func Stamp(cmd Command, a Actor, at time.Time) { decide.Stamp(cmd, a, at) }

// ByOf returns who gives cmd and when.
func ByOf(cmd Command) By { return decide.ByOf(cmd) }

// ReportIncident opens an incident on a contract in force; the actor is a party.
type ReportIncident struct {
	By
	IncidentID       string
	Contract         Contract
	Title            string
	Description      string
	Severity         commonv1.Severity
	Category         string
	AffectedServices []string
	AffectedAssets   []string
	AwareAt          time.Time
	ExternalRefs     []ExternalRef
}

// AssessIncident reassesses severity and category.
type AssessIncident struct {
	By
	Severity  commonv1.Severity
	Category  string // empty keeps it
	Rationale string
}

// ClassifyIncident records the actor's org's regulatory classification.
type ClassifyIncident struct {
	By
	Significant bool
	Major       bool
	Criteria    []string
	// AwareAt is when the org became aware, if the incident does not know yet.
	AwareAt time.Time
}

// NotifyParty records that the actor's org notified the other party.
type NotifyParty struct {
	By
	NotificationID string
	Channel        string
	Content        string
}

// AcknowledgeNotification records the recipient's receipt of a notification.
type AcknowledgeNotification struct {
	By
	NotificationID string
}

// RecordRegulatorySubmission records a report the actor's org made to an authority.
type RecordRegulatorySubmission struct {
	By
	Regime      incidentsv1.Regime
	Kind        incidentsv1.SubmissionKind
	Reference   string
	Authority   string
	SubmittedAt time.Time // zero means At
}

// AddTimelineEntry adds a party's own line to the timeline.
type AddTimelineEntry struct {
	By
	EntryID    string
	Text       string
	OccurredAt time.Time // zero means At
}

// AssignTask gives a party a task with a due date.
type AssignTask struct {
	By
	TaskID   string
	Title    string
	Assignee OrgID
	DueAt    time.Time
}

// CompleteTask is given by the assignee.
type CompleteTask struct {
	By
	TaskID string
	Note   string
}

// EscalateIncident raises the escalation level by one.
type EscalateIncident struct {
	By
	Reason string
}

// ContainIncident records that the incident is contained.
type ContainIncident struct {
	By
	Summary string
}

// ResolveIncident records that the incident is resolved.
type ResolveIncident struct {
	By
	Summary string
}

// ReopenIncident reopens a resolved or closed incident.
type ReopenIncident struct {
	By
	Reason string
}

// RecordReview records the post-incident review of a resolved incident.
type RecordReview struct {
	By
	RootCause        string
	LessonsLearned   []string
	FollowUpMeasures []string
}

// CloseIncident closes a resolved incident.
type CloseIncident struct {
	By
}

// MarkOverdue is the scheduler's: it records once that a clock passed unmet.
// It needs no party: the platform gives it.
type MarkOverdue struct {
	By
	ClockID string
}
