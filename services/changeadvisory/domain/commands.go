package domain

import (
	"reflect"
	"time"

	changeadvisoryv1 "github.com/jsmplatform/jsm/proto/gen/jsm/changeadvisory/v1"
	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
)

// By is who gives a command and when; every command embeds it.
type By struct {
	Actor
	At time.Time
}

func (b *By) by() *By { return b }

// Command is an instruction to a change; commands are passed as pointers.
// The set is closed: only this package's command types implement it.
type Command interface{ by() *By }

// Missing reports whether cmd is nil or a nil pointer (which Stamp cannot stamp).
func Missing(cmd Command) bool {
	if cmd == nil {
		return true
	}
	v := reflect.ValueOf(cmd)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// Stamp sets who gives cmd and when.
func Stamp(cmd Command, a Actor, at time.Time) { *cmd.by() = By{Actor: a, At: at} }

// ByOf returns who gives cmd and when.
func ByOf(cmd Command) By { return *cmd.by() }

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
