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
	// do this (the provider delivers, the customer acknowledges).
	ErrWrongParty = errors.New("party may not do this")
	// ErrWrongStatus: the command does not fit the report's status.
	ErrWrongStatus = errors.New("wrong status")
	// ErrAlreadyExists: an object with this id exists already.
	ErrAlreadyExists = errors.New("already exists")
	// ErrInvalid: the command is invalid; every ValidationError matches it.
	ErrInvalid = errors.New("invalid command")
)

// NotFoundError: the report or contract does
// not exist (or is not visible to the caller). What names it: "report",
// "contract".
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
