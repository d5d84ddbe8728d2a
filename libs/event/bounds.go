package event

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Bounds of the strings an envelope carries. Each one ends up in a NATS
// header, a primary key or a b-tree index (the trail indexes correlation
// ids, actors, aggregates and contracts), whose rows PostgreSQL limits to
// about 2.7 kB: a value past these bounds is refused where it enters (an API
// answers invalid_argument) and, should one reach the stream anyway, read
// back as not an event (ErrMalformed), never as a row no index can hold.
const (
	// MaxIDLen bounds ids: event, aggregate, contract and org ids.
	MaxIDLen = 128
	// MaxNameLen bounds names: type, source, aggregate type, actor, role.
	MaxNameLen = 256
	// MaxRefLen bounds correlation and causation ids. A causation is a
	// command id, "<org>/<user>/<command type>/<request id>", so it is
	// longer than a client's own key; a correlation defaults to it.
	MaxRefLen = 512
	// MaxClientRefLen bounds what a client chooses itself: its correlation
	// header, request ids and CloudEvent ids.
	MaxClientRefLen = 128
	// MaxTraceParentLen bounds traceparent (a W3C one is 55 characters).
	MaxTraceParentLen = 128
)

// ErrOutOfBounds marks a value too long or with characters its field does
// not allow. It is a bad input, never a reason to retry.
var ErrOutOfBounds = errors.New("value out of bounds")

// CheckToken checks an id-like value: at most max bytes of printable ASCII
// without spaces (what a header, a subject token or an index key holds
// without escaping). Empty is allowed: required fields are checked apart.
func CheckToken(field, v string, max int) error {
	if len(v) > max {
		return fmt.Errorf("%w: %s is %d bytes, at most %d", ErrOutOfBounds, field, len(v), max)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("%w: %s has byte 0x%02x at %d; allowed are printable ASCII characters without spaces", ErrOutOfBounds, field, c, i)
		}
	}
	return nil
}

// CheckName checks a human-facing name: at most max bytes of valid UTF-8
// without control characters (a header cannot carry a line break).
func CheckName(field, v string, max int) error {
	if len(v) > max {
		return fmt.Errorf("%w: %s is %d bytes, at most %d", ErrOutOfBounds, field, len(v), max)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrOutOfBounds, field)
	}
	for i, r := range v {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: %s has control character %U at %d", ErrOutOfBounds, field, r, i)
		}
	}
	return nil
}

// CheckClientRef checks a reference a client chooses itself (a correlation
// id header, a request id, a CloudEvent id).
func CheckClientRef(field, v string) error { return CheckToken(field, v, MaxClientRefLen) }

// Check reports the first field of the envelope out of its bounds.
func (env Envelope) Check() error {
	tokens := []struct {
		field, v string
		max      int
	}{
		{"id", env.ID, MaxIDLen},
		{"type", env.Type, MaxNameLen},
		{"source", env.Source, MaxNameLen},
		{"aggregate type", env.AggregateType, MaxNameLen},
		{"aggregate id", env.AggregateID, MaxIDLen},
		{"contract", env.Contract, MaxIDLen},
		{"customer", env.Parties.Customer, MaxIDLen},
		{"provider", env.Parties.Provider, MaxIDLen},
		{"actor org", env.Actor.Org, MaxIDLen},
		{"correlation", env.Correlation, MaxRefLen},
		{"causation", env.Causation, MaxRefLen},
		{"traceparent", env.TraceParent, MaxTraceParentLen},
	}
	for _, t := range tokens {
		if err := CheckToken(t.field, t.v, t.max); err != nil {
			return err
		}
	}
	if err := CheckName("actor", env.Actor.User, MaxNameLen); err != nil {
		return err
	}
	return CheckName("actor role", env.Actor.Role, MaxNameLen)
}
