// Package registration is the lifecycle an org's sources and webhook
// subscriptions share as aggregates: the org owns one, registers it for
// contracts it is a party to, rotates its secret, disables and enables it;
// to any other org it does not exist. Each aggregate's domain package
// decides its own registration and events; the rest is decided here.
package registration

import (
	"context"
	"errors"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/jsmplatform/jsm/libs/auth"
	"github.com/jsmplatform/jsm/libs/decide"
	"github.com/jsmplatform/jsm/services/contracts/known"
)

// Source is the CloudEvents source of the integration service's events.
const Source = "/jsm/integration"

// PermRead lets a role read an org's sources, inbox, subscriptions and
// deliveries.
const PermRead auth.Permission = "integration.read"

// ErrAlreadyExists: another org registered one with this id.
var ErrAlreadyExists = errors.New("id already taken")

// Contract is what a command needs to know of a contract it names: its
// parties, as the service learned them (services/contracts/known).
type Contract struct {
	ID       string
	Customer decide.OrgID
	Provider decide.OrgID
	Known    bool
}

// Has reports whether org is a party to the contract.
func (c Contract) Has(org decide.OrgID) bool {
	return c.Known && org != "" && (org == c.Customer || org == c.Provider)
}

// Parties refuses contracts org is not a party to, unknown ones included
// (so a caller cannot tell them apart).
func Parties(org decide.OrgID, contracts []Contract) error {
	for _, c := range contracts {
		if !c.Has(org) {
			return decide.NotFoundError{What: "contract", ID: c.ID}
		}
	}
	return nil
}

// IDs are the contracts' ids.
func IDs(contracts []Contract) []string {
	ids := make([]string, len(contracts))
	for i, c := range contracts {
		ids[i] = c.ID
	}
	return ids
}

// RotateSecret issues the next secret version. PreviousGrace, when set, is
// how long the previous secret stays valid (0: revoked at once); nil leaves
// the deployment's grace period.
type RotateSecret struct {
	decide.By
	PreviousGrace *time.Duration
}

// Disable stops it.
type Disable struct {
	decide.By
	Reason string
}

// Enable starts it again; the org must still be a party to the contracts.
type Enable struct {
	decide.By
	Contracts []Contract
}

// Owned is what the lifecycle looks at of an aggregate's state.
type Owned struct {
	// What names the kind in errors ("source", "subscription").
	What          string
	ID            string
	Org           decide.OrgID
	Exists        bool
	Enabled       bool
	SecretVersion uint32
}

// Events make the aggregate's own events of the lifecycle.
type Events struct {
	SecretRotated func(version uint32, previousGrace *time.Duration) proto.Message
	Disabled      func(reason string) proto.Message
	Enabled       func() proto.Message
}

// Registered decides a registration of an aggregate that exists: the
// owner registering it again (a retried request) changes nothing; another
// org cannot take the id. It reports false when the aggregate is new.
func Registered(o Owned, by decide.By) (bool, error) {
	switch {
	case !o.Exists:
		return false, nil
	case o.Org != by.Org:
		return true, ErrAlreadyExists
	}
	return true, nil
}

// Decide decides a lifecycle command on o.
func Decide(o Owned, cmd decide.Command, ev Events) ([]proto.Message, error) {
	if decide.Missing(cmd) {
		return nil, decide.Invalid("command", "missing")
	}
	by := decide.ByOf(cmd)
	if !o.Exists || o.Org != by.Org {
		return nil, decide.NotFoundError{What: o.What, ID: o.ID}
	}
	switch x := cmd.(type) {
	case *RotateSecret:
		if x.PreviousGrace != nil && *x.PreviousGrace < 0 {
			return nil, decide.Invalid("previous_secret_grace", "negative")
		}
		return one(ev.SecretRotated(o.SecretVersion+1, x.PreviousGrace))
	case *Disable:
		if !o.Enabled {
			return nil, nil
		}
		return one(ev.Disabled(x.Reason))
	case *Enable:
		if err := Parties(by.Org, x.Contracts); err != nil {
			return nil, err
		}
		if o.Enabled {
			return nil, nil
		}
		return one(ev.Enabled())
	default:
		return nil, decide.Invalid("command", "unknown command %T", cmd)
	}
}

func one(m proto.Message) ([]proto.Message, error) { return []proto.Message{m}, nil }

// Lookup is what contracts knows of the contracts ids.
func Lookup(ctx context.Context, contracts *known.Contracts, ids []string) ([]Contract, error) {
	out := make([]Contract, 0, len(ids))
	for _, id := range ids {
		c, ok, err := contracts.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, Contract{ID: id, Customer: decide.OrgID(c.Customer), Provider: decide.OrgID(c.Provider), Known: ok})
	}
	return out, nil
}
