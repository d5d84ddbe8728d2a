// Package domain is the webhook subscription aggregate as a pure decider:
// an org registers an endpoint for event types and contracts it is a
// party to, rotates its signing secret, disables and enables it. Only the
// owning org may change it; to any other org it does not exist.
package domain

import (
	"slices"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/jsmplatform/jsm/libs/decide"
	integrationv1 "github.com/jsmplatform/jsm/proto/gen/jsm/integration/v1"
	"github.com/jsmplatform/jsm/services/integration/registration"
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
var ErrAlreadyExists = registration.ErrAlreadyExists

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
	RotatedAt time.Time
	// PreviousGrace is how long after RotatedAt deliveries are still signed
	// with the previous secret, when the rotation chose it (else nil: the
	// deployment's).
	PreviousGrace *time.Duration
	RegisteredAt  time.Time
	UpdatedAt     time.Time
}

// Exists reports whether the subscription was registered.
func (s State) Exists() bool { return s.ID != "" }

// Contract is what a command needs to know of a contract it names: its
// parties, as the service learned them (services/contracts/known).
type Contract = registration.Contract

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

// The lifecycle's commands: a new secret version, stopping deliveries,
// and resuming them.
type (
	RotateSecret = registration.RotateSecret
	Disable      = registration.Disable
	Enable       = registration.Enable
)

// Decide checks cmd against the subscription s.
func Decide(s State, cmd Command) ([]proto.Message, error) {
	if x, ok := cmd.(*Register); ok && x != nil {
		return register(s, x)
	}
	return registration.Decide(s.owned(), cmd, events(s.ID))
}

func (s State) owned() registration.Owned {
	return registration.Owned{What: "subscription", ID: string(s.ID), Org: s.Org, Exists: s.Exists(), Enabled: s.Enabled, SecretVersion: s.SecretVersion}
}

func events(id SubscriptionID) registration.Events {
	return registration.Events{
		SecretRotated: func(v uint32, grace *time.Duration) proto.Message {
			e := &integrationv1.SubscriptionSecretRotated{SubscriptionId: string(id), SecretVersion: v}
			if grace != nil {
				e.PreviousSecretGrace = durationpb.New(*grace)
			}
			return e
		},
		Disabled: func(reason string) proto.Message {
			return &integrationv1.SubscriptionDisabled{SubscriptionId: string(id), Reason: reason}
		},
		Enabled: func() proto.Message { return &integrationv1.SubscriptionEnabled{SubscriptionId: string(id)} },
	}
}

func register(s State, x *Register) ([]proto.Message, error) {
	if again, err := registration.Registered(s.owned(), x.By); again || err != nil {
		return nil, err
	}
	if x.ID == "" {
		return nil, decide.Invalid("subscription_id", "missing")
	}
	if x.URL == "" {
		return nil, decide.Invalid("url", "missing")
	}
	if err := registration.Parties(x.By.Org, x.Contracts); err != nil {
		return nil, err
	}
	return []proto.Message{&integrationv1.SubscriptionRegistered{
		SubscriptionId: string(x.ID),
		OrgId:          string(x.By.Org),
		Url:            x.URL,
		EventTypes:     slices.Clone(x.EventTypes),
		ContractIds:    registration.IDs(x.Contracts),
		Description:    x.Description,
		SecretVersion:  1,
	}}, nil
}

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
		s.PreviousGrace = nil
		if e.PreviousSecretGrace != nil {
			grace := e.GetPreviousSecretGrace().AsDuration()
			s.PreviousGrace = &grace
		}
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
