// Package domain holds the patching area's aggregates as pure deciders: the
// inventory of a contract's assets, and the remediation of one
// vulnerability on one contract, from the affected assets through a patch
// released, a change approved and the rollout to the verified fix, against
// the contract's patch deadline. Nothing here does I/O or reads a clock.
//
// What a command needs from outside (the contract's parties and deadlines,
// the assets an inventory query matched) arrives in the command; the app
// layer looks it up.
package domain

import (
	"reflect"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
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

// By is who gives a command and when; every command embeds it.
type By struct {
	Actor
	At time.Time
}

func (b *By) by() *By { return b }

// Command is an instruction to an aggregate of this package; commands are
// passed as pointers.
type Command interface{ by() *By }

// Stamp sets who gives cmd and when.
func Stamp(cmd Command, a Actor, at time.Time) { *cmd.by() = By{Actor: a, At: at} }

// missing reports a nil command, also a typed nil pointer.
func missing(cmd Command) bool {
	if cmd == nil {
		return true
	}
	v := reflect.ValueOf(cmd)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// Deadline is the contract's patch deadline for one severity.
type Deadline struct {
	Severity commonv1.Severity `json:"severity,omitzero"`
	Within   time.Duration     `json:"within,omitzero"`
}

// Contract is what patching needs to know about a contract.
type Contract struct {
	ID       string
	Customer OrgID
	Provider OrgID
	// InForce: terms signed by both parties are in force (and not ended).
	InForce bool
	// PatchDeadlines of the terms in force.
	PatchDeadlines []Deadline
}

// IsParty reports whether org is the customer or the provider.
func (c Contract) IsParty(org OrgID) bool {
	return org != "" && (org == c.Customer || org == c.Provider)
}

// Check tells whether org may act on the contract: it exists, org is a party
// and terms are in force.
func (c Contract) Check(org OrgID) error {
	switch {
	case c.ID == "":
		return NotFoundError{What: "contract"}
	case !c.IsParty(org):
		return ErrNotParty
	case !c.InForce:
		return ErrContractNotActive
	}
	return nil
}

func blank(s string) bool { return strings.TrimSpace(s) == "" }

func one(m proto.Message) []proto.Message { return []proto.Message{m} }
