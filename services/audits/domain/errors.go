package domain

import (
	"errors"

	"github.com/jsmplatform/jsm/libs/decide"
)

// Domain errors. The API layer maps them to status codes in one place.
var (
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
)

// Errors every area shares (libs/decide).
var (
	ErrNotParty          = decide.ErrNotParty
	ErrWrongParty        = decide.ErrWrongParty
	ErrContractNotActive = decide.ErrContractNotActive
	ErrInvalid           = decide.ErrInvalid
)

type (
	// NotFoundError: what a command names does not exist (or is not visible).
	NotFoundError = decide.NotFoundError
	// ValidationError: a field of the command breaks a domain rule; it matches ErrInvalid.
	ValidationError = decide.ValidationError
)

func invalid(field, format string, args ...any) error { return decide.Invalid(field, format, args...) }
