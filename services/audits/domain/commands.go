package domain

import (
	"time"

	"github.com/jsmplatform/jsm/libs/decide"
	auditsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/audits/v1"
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

// PlanAudit plans an audit of a contract in force and gives the audited
// party notice of it. The actor is a party; the auditor is a party too
// (the actor's org when empty), the audited party is the other one.
type PlanAudit struct {
	By
	AuditID  string
	Contract Contract
	Type     auditsv1.AuditType
	Title    string
	Scope    string
	Auditor  OrgID
	StartsAt time.Time
	EndsAt   time.Time
}

// StartAudit starts a planned audit (the auditor's side), not before its start date.
type StartAudit struct {
	By
}

// CompleteAudit completes an audit in progress (the auditor's side).
type CompleteAudit struct {
	By
	Summary string
}

// RecordFinding records a finding of an audit in progress (the auditor's side).
type RecordFinding struct {
	By
	FindingID    string
	Severity     commonv1.Severity
	Level        auditsv1.NonconformityLevel
	Title        string
	ControlRef   string
	Description  string
	EvidenceRefs []string
	RootCause    string
}

// CloseFinding closes a finding whose measures are verified (the auditor's side).
type CloseFinding struct {
	By
	FindingID string
}

// ProposeMeasure proposes a measure against an open finding; either party
// proposes, the other agrees.
type ProposeMeasure struct {
	By
	FindingID   string
	MeasureID   string
	Owner       OrgID
	DueAt       time.Time
	Description string
}

// AgreeMeasure is the other party's agreement to a proposed measure.
type AgreeMeasure struct {
	By
	MeasureID string
}

// RejectMeasure is the other party's rejection of a proposed measure.
type RejectMeasure struct {
	By
	MeasureID string
	Reason    string
}

// RecordMeasureImplemented is the owner's record of an agreed measure
// carried out, with its evidence.
type RecordMeasureImplemented struct {
	By
	MeasureID    string
	EvidenceRefs []string
	Notes        string
}

// VerifyMeasure is the auditor's side's check of an implemented measure;
// not accepted, the measure goes back to its owner.
type VerifyMeasure struct {
	By
	MeasureID string
	Accepted  bool
	Comment   string
}

// MarkMeasureOverdue is the scheduler's: it records once that an agreed
// measure was not implemented by its due date. The platform gives it.
type MarkMeasureOverdue struct {
	By
	MeasureID string
}
