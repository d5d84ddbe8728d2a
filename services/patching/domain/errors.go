package domain

import (
	"errors"

	"github.com/jsmplatform/jsm/libs/decide"
)

// Domain errors. The API layer maps them to status codes in one place.
var (
	// ErrWrongStatus: the command does not fit the remediation's state.
	ErrWrongStatus = errors.New("wrong remediation status")
	// ErrNoApprovedChange: a rollout goes only through an approved (or emergency) change.
	ErrNoApprovedChange = errors.New("no approved change covers this rollout")
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
