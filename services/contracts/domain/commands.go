package domain

import (
	"time"

	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
)

// Command is an instruction to the contract aggregate. The set is closed: only
// the command types of this package implement it. Every command carries the
// acting org and user; commands that need a time carry it, the decider never
// reads a clock.
type Command interface {
	actor() Actor
}

// ActorOf returns the org and user on whose behalf c is given.
func ActorOf(c Command) Actor {
	c, ok := deref(c)
	if !ok {
		return Actor{}
	}
	return c.actor()
}

// DraftContract starts a contract between a customer and a provider; the
// actor must be one of them. The drafted terms are version 1.
type DraftContract struct {
	Actor
	ContractID        ContractID
	Customer          OrgID
	Provider          OrgID
	Title             string
	Reference         string
	ServicesInScope   []string
	CriticalFunction  bool
	TerminationNotice time.Duration
}

// AddRequirement adds a security requirement to the terms.
type AddRequirement struct {
	Actor
	Requirement Requirement
}

// AssignContact names the contact of a party for a role, replacing any
// earlier contact of that party for that role.
type AssignContact struct {
	Actor
	Contact Contact
}

// AddSubcontractor adds a supplier of the provider to the terms; only the
// provider may do this.
type AddSubcontractor struct {
	Actor
	Subcontractor Subcontractor
}

// SetServiceLevels replaces the service levels of the terms as a whole.
type SetServiceLevels struct {
	Actor
	Levels ServiceLevels
}

// SignContract signs the current terms version on behalf of the actor's org.
// TermsVersion 0 means the current version; any other value must name it.
type SignContract struct {
	Actor
	TermsVersion int32
	At           time.Time
}

// AdvancePhase moves the contract one phase forward in the lifecycle.
type AdvancePhase struct {
	Actor
	To contractsv1.Phase
}

// TerminateContract ends the contract as of EffectiveDate, which must respect
// the agreed notice period counted from At.
type TerminateContract struct {
	Actor
	Reason        string
	EffectiveDate time.Time
	At            time.Time
}

func (c DraftContract) actor() Actor     { return c.Actor }
func (c AddRequirement) actor() Actor    { return c.Actor }
func (c AssignContact) actor() Actor     { return c.Actor }
func (c AddSubcontractor) actor() Actor  { return c.Actor }
func (c SetServiceLevels) actor() Actor  { return c.Actor }
func (c SignContract) actor() Actor      { return c.Actor }
func (c AdvancePhase) actor() Actor      { return c.Actor }
func (c TerminateContract) actor() Actor { return c.Actor }

// deref turns a pointer to a command into the command, so that Decide accepts
// both; it reports false for a nil command or a nil pointer.
func deref(c Command) (Command, bool) {
	switch p := c.(type) {
	case nil:
		return nil, false
	case *DraftContract:
		return derefPtr(p)
	case *AddRequirement:
		return derefPtr(p)
	case *AssignContact:
		return derefPtr(p)
	case *AddSubcontractor:
		return derefPtr(p)
	case *SetServiceLevels:
		return derefPtr(p)
	case *SignContract:
		return derefPtr(p)
	case *AdvancePhase:
		return derefPtr(p)
	case *TerminateContract:
		return derefPtr(p)
	default:
		return c, true
	}
}

func derefPtr[T Command](p *T) (Command, bool) {
	if p == nil {
		return nil, false
	}
	return *p, true
}
