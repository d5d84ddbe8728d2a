// Package domain is the webhook subscription aggregate as a pure decider:
// an org registers an endpoint for event types and contracts it is a
// party to, rotates its signing secret, disables and enables it. Only the
// owning org may change it; to any other org it does not exist.
package domain

import (
	"errors"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/jsmplatform/jsm/libs/decide"
	integrationv1 "github.com/jsmplatform/jsm/proto/gen/jsm/integration/v1"
)

type (
	OrgID           = decide.OrgID
	By              = decide.By
	Actor           = decide.Actor
	Meta            = decide.Meta
	NotFoundError   = decide.NotFoundError
	ValidationError = decide.ValidationError
)

// Errors every area shares.
var (
	ErrNotParty = decide.ErrNotParty
	ErrInvalid  = decide.ErrInvalid
)

// ErrAlreadyExists: a subscription with this id exists already (a
// register that is not a retry of the one that created it).
var ErrAlreadyExists = errors.New("subscription already exists")

// SubscriptionID names a subscription.
type SubscriptionID string

// State is a subscription as its events made it.
type State struct {
	ID            SubscriptionID
	Org           OrgID
	URL           string
	EventTypes    []string
	ContractIDs   []string
	Description   string
	Enabled       bool
	SecretVersion uint32
	// RotatedAt is when the secret last changed (zero: never).
	RotatedAt    time.Time
	RegisteredAt time.Time
	UpdatedAt    time.Time
}

// Exists reports whether the subscription was registered.
func (s State) Exists() bool { return s.ID != "" }

// Contract is what a command needs to know of a contract it names: its
// parties, as the service learned them (services/contracts/known).
type Contract struct {
	ID       string
	Customer OrgID
	Provider OrgID
	Known    bool
}

func (c Contract) has(org OrgID) bool {
	return c.Known && org != "" && (org == c.Customer || org == c.Provider)
}

// Command is any subscription command.
type Command = decide.Command

// Register subscribes URL to EventTypes and Contracts (empty: all).
type Register struct {
	decide.By
	ID          SubscriptionID
	URL         string
	EventTypes  []string
	Contracts   []Contract
	Description string
}

// RotateSecret issues the next secret version.
type RotateSecret struct{ decide.By }

// Disable stops deliveries.
type Disable struct {
	decide.By
	Reason string
}

// Enable resumes deliveries; the org must still be a party to the contracts.
type Enable struct {
	decide.By
	Contracts []Contract
}

// Decide checks cmd against the subscription s.
func Decide(s State, cmd Command) ([]proto.Message, error) {
	if decide.Missing(cmd) {
		return nil, decide.Invalid("command", "missing")
	}
	by := decide.ByOf(cmd)
	if x, ok := cmd.(*Register); ok {
		return register(s, by, x)
	}
	// Another org's subscription does not exist for the caller.
	if !s.Exists() || s.Org != by.Org {
		return nil, NotFoundError{What: "subscription", ID: string(s.ID)}
	}
	switch x := cmd.(type) {
	case *RotateSecret:
		return one(&integrationv1.SubscriptionSecretRotated{SubscriptionId: string(s.ID), SecretVersion: s.SecretVersion + 1})
	case *Disable:
		if !s.Enabled {
			return nil, nil
		}
		return one(&integrationv1.SubscriptionDisabled{SubscriptionId: string(s.ID), Reason: x.Reason})
	case *Enable:
		if err := parties(by.Org, x.Contracts); err != nil {
			return nil, err
		}
		if s.Enabled {
			return nil, nil
		}
		return one(&integrationv1.SubscriptionEnabled{SubscriptionId: string(s.ID)})
	default:
		return nil, decide.Invalid("command", "unknown command %T", cmd)
	}
}

func register(s State, by By, x *Register) ([]proto.Message, error) {
	if s.Exists() {
		if s.Org != by.Org {
			return nil, ErrAlreadyExists
		}
		// The same subscription registered again (a retried request): no-op.
		return nil, nil
	}
	if x.ID == "" {
		return nil, decide.Invalid("subscription_id", "missing")
	}
	if x.URL == "" {
		return nil, decide.Invalid("url", "missing")
	}
	if err := parties(by.Org, x.Contracts); err != nil {
		return nil, err
	}
	ids := make([]string, len(x.Contracts))
	for i, c := range x.Contracts {
		ids[i] = c.ID
	}
	return one(&integrationv1.SubscriptionRegistered{
		SubscriptionId: string(x.ID),
		OrgId:          string(by.Org),
		Url:            x.URL,
		EventTypes:     slices.Clone(x.EventTypes),
		ContractIds:    ids,
		Description:    x.Description,
		SecretVersion:  1,
	})
}

// parties refuses contracts org is not a party to, unknown ones included
// (so a caller cannot tell them apart).
func parties(org OrgID, contracts []Contract) error {
	for _, c := range contracts {
		if !c.has(org) {
			return NotFoundError{What: "contract", ID: c.ID}
		}
	}
	return nil
}

func one(m proto.Message) ([]proto.Message, error) { return []proto.Message{m}, nil }

// Evolve applies one event.
func Evolve(s State, m proto.Message, meta Meta) State {
	switch e := m.(type) {
	case *integrationv1.SubscriptionRegistered:
		s = State{
			ID:            SubscriptionID(e.GetSubscriptionId()),
			Org:           OrgID(e.GetOrgId()),
			URL:           e.GetUrl(),
			EventTypes:    slices.Clone(e.GetEventTypes()),
			ContractIDs:   slices.Clone(e.GetContractIds()),
			Description:   e.GetDescription(),
			Enabled:       true,
			SecretVersion: e.GetSecretVersion(),
			RegisteredAt:  meta.Time,
		}
	case *integrationv1.SubscriptionSecretRotated:
		s.SecretVersion = e.GetSecretVersion()
		s.RotatedAt = meta.Time
	case *integrationv1.SubscriptionDisabled:
		s.Enabled = false
	case *integrationv1.SubscriptionEnabled:
		s.Enabled = true
	default:
		return s
	}
	s.UpdatedAt = meta.Time
	return s
}
