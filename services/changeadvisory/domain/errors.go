package domain

import (
	"errors"

	"github.com/jsmplatform/jsm/libs/decide"
)

// Domain errors. The API layer maps them to status codes in one place.
var (
	// ErrWrongStatus: the command does not fit the change's status.
	ErrWrongStatus = errors.New("wrong change status")
	// ErrNotEmergency: only emergency changes are reviewed after the fact.
	ErrNotEmergency = errors.New("not an emergency change")
	// ErrNoDowntimeAgreement: the change's downtime needs no agreement.
	ErrNoDowntimeAgreement = errors.New("the change's downtime needs no agreement")
	// ErrReviewPending: an emergency change is closed only once both parties
	// reviewed it or the missed review was recorded.
	ErrReviewPending = errors.New("emergency review pending")
	// ErrAlreadyExists: a change with this id exists already.
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
