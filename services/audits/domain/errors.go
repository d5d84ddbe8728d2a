package domain

import (
	"errors"
	"fmt"
)

// Domain errors. The API layer maps them to status codes in one place.
var (
	// ErrNotParty: the acting org is not a party to the contract.
	ErrNotParty = errors.New("org is not a party to the contract")
	// ErrWrongParty: the acting org is a party, but not the one allowed to
	// do this (the auditor's side starts, records findings, verifies and
	// closes; the owner implements; the other party agrees).
	ErrWrongParty = errors.New("party may not do this")
	// ErrContractNotActive: audits are planned on contracts in force only.
	ErrContractNotActive = errors.New("contract is not active")
	// ErrAuditRights: the plan is outside the contract's audit rights
	// (audits per year, notice period, on-site audits).
	ErrAuditRights = errors.New("outside the contract's audit rights")
	// ErrWrongStatus: the command does not fit the audit's, finding's or measure's status.
	ErrWrongStatus = errors.New("wrong status")
	// ErrTooEarly: an audit starts no earlier than the date its notice named.
	ErrTooEarly = errors.New("too early")
	// ErrMeasuresPending: a finding is closed once its measures are verified.
	ErrMeasuresPending = errors.New("measures pending")
	// ErrNoTemplate: check results need the contract's checklist.
	ErrNoTemplate = errors.New("no checklist template")
	// ErrAlreadyExists: an object with this id exists already.
	ErrAlreadyExists = errors.New("already exists")
	// ErrInvalid: the command is invalid; every ValidationError matches it.
	ErrInvalid = errors.New("invalid command")
)

// NotFoundError: the audit, finding, measure, checklist or contract does
// not exist (or is not visible to the caller). What names it: "audit",
// "finding", "measure", "checklist", "contract".
type NotFoundError struct {
	What string
	ID   string
}

func (e NotFoundError) Error() string {
	if e.ID == "" {
		return e.What + " not found"
	}
	return fmt.Sprintf("%s %s not found", e.What, e.ID)
}

// Is matches every NotFoundError when the target has no What.
func (e NotFoundError) Is(target error) bool {
	t, ok := target.(NotFoundError)
	return ok && (t.What == "" || t.What == e.What) && (t.ID == "" || t.ID == e.ID)
}

// ValidationError: a field of the command breaks a domain rule. It matches ErrInvalid.
type ValidationError struct {
	Field  string
	Reason string
}

func (e ValidationError) Error() string {
	if e.Field == "" {
		return "invalid command: " + e.Reason
	}
	return "invalid " + e.Field + ": " + e.Reason
}

// Is makes every ValidationError match ErrInvalid.
func (e ValidationError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, format string, args ...any) error {
	return ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}
