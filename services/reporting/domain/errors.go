package domain

import (
	"errors"

	"github.com/jsmplatform/jsm/libs/decide"
)

// Domain errors. The API layer maps them to status codes in one place.
var (
	// ErrWrongStatus: the command does not fit the report's status.
	ErrWrongStatus = errors.New("wrong status")
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
