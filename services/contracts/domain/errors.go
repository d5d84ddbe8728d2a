package domain

import (
	"errors"
	"fmt"
)

// Domain errors. The API layer maps them to status codes in one place; check
// them with errors.Is (sentinels, NotFoundError) or errors.As (ValidationError,
// NotFoundError). Errors returned by Decide wrap these with detail.
var (
	// ErrNotParty: the acting org is neither the customer nor the provider.
	ErrNotParty = errors.New("org is not a party to the contract")
	// ErrWrongParty: the acting org is a party, but not the one allowed to do this.
	ErrWrongParty = errors.New("party may not do this")
	// ErrWrongPhase: the command does not fit the contract's lifecycle phase.
	ErrWrongPhase = errors.New("wrong phase")
	// ErrAlreadySigned: the org has already signed the current terms version.
	ErrAlreadySigned = errors.New("terms version already signed by this org")
	// ErrAlreadyExists: a contract with this id has already been drafted.
	ErrAlreadyExists = errors.New("contract already exists")
	// ErrTerminated: the contract is terminated and cannot change any more.
	ErrTerminated = errors.New("contract is terminated")
	// ErrVersionMismatch: the command names a terms version that is not the current one.
	ErrVersionMismatch = errors.New("terms version is not the current version")
	// ErrNoticePeriod: the termination's effective date does not respect the notice period.
	ErrNoticePeriod = errors.New("effective date is within the notice period")
	// ErrInvalid: the command is invalid; every ValidationError matches it.
	ErrInvalid = errors.New("invalid command")
)

// NotFoundError: a command other than DraftContract was given for a contract
// that does not exist. Decide cannot know the id of a contract that does not
// exist (commands do not carry it), so it returns NotFoundError with an empty
// ID; the caller that loaded the state may fill it in.
//
// errors.Is(err, NotFoundError{}) matches a NotFoundError of any id;
// errors.Is(err, NotFoundError{ID: id}) matches that id only.
type NotFoundError struct {
	ID ContractID
}

func (e NotFoundError) Error() string {
	if e.ID == "" {
		return "contract not found"
	}
	return fmt.Sprintf("contract %s not found", e.ID)
}

// Is makes a NotFoundError without an id match every NotFoundError.
func (e NotFoundError) Is(target error) bool {
	t, ok := target.(NotFoundError)
	return ok && (t.ID == "" || t.ID == e.ID)
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
