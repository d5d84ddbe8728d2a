package domain

import (
	"time"

	"github.com/jsmplatform/jsm/libs/decide"
	changeadvisoryv1 "github.com/jsmplatform/jsm/proto/gen/jsm/changeadvisory/v1"
	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
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

// Missing reports whether cmd is nil or a nil pointer (which Stamp cannot stamp).
func Missing(cmd Command) bool { return decide.Missing(cmd) }

// Stamp sets who gives cmd and when.
func Stamp(cmd Command, a Actor, at time.Time) { decide.Stamp(cmd, a, at) }

// ByOf returns who gives cmd and when.
func ByOf(cmd Command) By { return decide.ByOf(cmd) }

// RequestChange opens a change on a contract in force; the actor is a
// party (a person of either org, or the platform on a party's behalf, as
// the patching reactor does for the provider).
type RequestChange struct {
	By
	ChangeID    string
	Contract    Contract
	Title       string
	Description string
	Category    commonv1.ChangeCategory
	// Risk: unspecified means low.
	Risk   changeadvisoryv1.Risk
	Impact string
	// PlannedStart and PlannedEnd: both or neither.
	PlannedStart     time.Time
	PlannedEnd       time.Time
	ExpectedDowntime time.Duration
	RollbackPlan     string
	Links            []Link
	Emergency        bool
}

// ScheduleReview sets (or moves) the change advisory board's review.
type ScheduleReview struct {
	By
	ReviewAt time.Time
	Note     string
}

// ApproveChange is a required party's approval.
type ApproveChange struct {
	By
	Comment string
}

// RejectChange is a required party's rejection, before the change is approved.
type RejectChange struct {
	By
	Reason string
}

// AgreeDowntime is the customer's agreement to downtime outside the
// contract's maintenance windows.
type AgreeDowntime struct {
	By
}

// RecordImplementation records that the change was carried out,
// successfully or not.
type RecordImplementation struct {
	By
	Success bool
	Notes   string
}

// RecordRollback records that an implemented (or failed) change was rolled back.
type RecordRollback struct {
	By
	Reason string
}

// ReviewEmergencyChange is one party's review of an implemented emergency change.
type ReviewEmergencyChange struct {
	By
	Accepted bool
	Comment  string
}

// CloseChange closes a change that was implemented, failed, rolled back or rejected.
type CloseChange struct {
	By
}

// MarkReviewOverdue is the scheduler's: it records once that an emergency
// change's review was not done in time. The platform gives it, not a party.
type MarkReviewOverdue struct {
	By
}
