// Package decide is what every area's pure decider shares: who gives a
// command and when, and what Evolve takes from an event's envelope. It
// does no I/O and knows no area; the areas' domain packages alias its
// types.
package decide

import (
	"reflect"
	"time"
)

// OrgID identifies an organisation.
type OrgID string

// Actor is the org and user on whose behalf a command is given.
type Actor struct {
	Org  OrgID
	User string
}

// Meta is what Evolve takes from an event's envelope.
type Meta struct {
	Time     time.Time
	Actor    Actor
	Position uint64
}

// By is who gives a command and when; every command embeds it, and the
// decider never reads a clock.
type By struct {
	Actor
	At time.Time
}

// Header gives access to the command's By.
func (b *By) Header() *By { return b }

// Command is a command passed as a pointer, with its By.
type Command interface{ Header() *By }

// Stamp sets who gives cmd and when.
func Stamp(cmd Command, a Actor, at time.Time) { *cmd.Header() = By{Actor: a, At: at} }

// ByOf returns who gives cmd and when.
func ByOf(cmd Command) By { return *cmd.Header() }

// Missing reports whether cmd is nil or a nil pointer, which a decider
// refuses instead of panicking.
func Missing(cmd Command) bool {
	if cmd == nil {
		return true
	}
	v := reflect.ValueOf(cmd)
	return v.Kind() == reflect.Pointer && v.IsNil()
}
