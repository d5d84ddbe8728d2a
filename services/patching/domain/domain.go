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
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/jsmplatform/jsm/libs/decide"
	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
)

// The decider's shared vocabulary (libs/decide).
type (
	// OrgID identifies an organisation.
	OrgID = decide.OrgID
	// Actor is the org and user on whose behalf a command is given.
	Actor = decide.Actor
	// Meta is what Evolve takes from an event's envelope.
	Meta = decide.Meta
	// By is who gives a command and when; every command embeds it.
	By = decide.By
	// Command is an instruction to an aggregate; commands are passed as pointers.
	Command = decide.Command
)

// Stamp sets who gives cmd and when.
func Stamp(cmd Command, a Actor, at time.Time) { decide.Stamp(cmd, a, at) }

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
