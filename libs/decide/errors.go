package decide

import (
	"errors"
	"fmt"
)

// Errors every area's decider gives; the areas alias them, and each API
// maps them to status codes in one place.
var (
	// ErrNotParty: the acting org is not a party to the contract.
	ErrNotParty = errors.New("org is not a party to the contract")
	// ErrWrongParty: the acting org is a party, but not the one allowed to do this.
	ErrWrongParty = errors.New("party may not do this")
	// ErrContractNotActive: the contract has no terms in force.
	ErrContractNotActive = errors.New("contract is not active")
	// ErrInvalid: the command is invalid; every ValidationError matches it.
	ErrInvalid = errors.New("invalid command")
)

// NotFoundError: what a command names does not exist (or is not visible to
// the caller). What names the kind: "incident", "contract", "task", ...
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

// Is matches every NotFoundError when the target has no What (and of any
// id when it has no ID).
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

// Invalid is a ValidationError of field.
func Invalid(field, format string, args ...any) error {
	return ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// HideContract answers for a contract the caller is no party to as for
// one that does not exist, so a caller cannot probe which contracts exist.
func HideContract(err error, id string) error {
	if errors.Is(err, ErrNotParty) || errors.Is(err, NotFoundError{What: "contract"}) {
		return NotFoundError{What: "contract", ID: id}
	}
	return err
}
