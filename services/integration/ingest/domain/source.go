// Package domain is the ingest source aggregate as a pure decider: an org
// registers a source (an ITSM instance or scanner of its own) for
// contracts it is a party to, rotates the source's secret, disables and
// enables it. Only the owning org may change it; to any other org it does
// not exist. A source's id is chosen by the org and names it in the ingest
// URL and the NATS subject, so ids are unique across the platform.
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
	OrgID         = decide.OrgID
	By            = decide.By
	Meta          = decide.Meta
	NotFoundError = decide.NotFoundError
)

// ErrAlreadyExists: another org registered a source with this id.
var ErrAlreadyExists = registration.ErrAlreadyExists

// SourceID names a source.
type SourceID string

// State is a source as its events made it.
type State struct {
	ID            SourceID
	Org           OrgID
	Name          string
	Mapping       integrationv1.Mapping
	ContractIDs   []string
	Enabled       bool
	SecretVersion uint32
	// RotatedAt is when the secret last changed (zero: never).
	RotatedAt time.Time
	// PreviousGrace is how long the previous secret stays valid after
	// RotatedAt, when the rotation chose it (else nil: the deployment's).
	PreviousGrace *time.Duration
	RegisteredAt  time.Time
	UpdatedAt     time.Time
}

// PreviousUntil is when the previous secret stops being valid, given the
// deployment's grace period.
func (s State) PreviousUntil(defaultGrace time.Duration) time.Time {
	if s.SecretVersion < 2 {
		return time.Time{}
	}
	grace := defaultGrace
	if s.PreviousGrace != nil {
		grace = *s.PreviousGrace
	}
	return s.RotatedAt.Add(grace)
}

// Exists reports whether the source was registered.
func (s State) Exists() bool { return s.ID != "" }

// Allows reports whether the source may write to contract.
func (s State) Allows(contract string) bool { return slices.Contains(s.ContractIDs, contract) }

// Contract is what a command needs to know of a contract it names.
type Contract = registration.Contract

// Command is any source command.
type Command = decide.Command

// Register registers the source ID for Contracts.
type Register struct {
	decide.By
	ID        SourceID
	Name      string
	Mapping   integrationv1.Mapping
	Contracts []Contract
}

// The lifecycle's commands: a new secret version, refusing the source's
// events from now on, and accepting them again.
type (
	RotateSecret = registration.RotateSecret
	Disable      = registration.Disable
	Enable       = registration.Enable
)

// Decide checks cmd against the source s.
func Decide(s State, cmd Command) ([]proto.Message, error) {
	if x, ok := cmd.(*Register); ok && x != nil {
		return register(s, x)
	}
	return registration.Decide(s.owned(), cmd, events(s.ID))
}

func (s State) owned() registration.Owned {
	return registration.Owned{What: "source", ID: string(s.ID), Org: s.Org, Exists: s.Exists(), Enabled: s.Enabled, SecretVersion: s.SecretVersion}
}

func events(id SourceID) registration.Events {
	return registration.Events{
		SecretRotated: func(v uint32, grace *time.Duration) proto.Message {
			e := &integrationv1.SourceSecretRotated{SourceId: string(id), SecretVersion: v}
			if grace != nil {
				e.PreviousSecretGrace = durationpb.New(*grace)
			}
			return e
		},
		Disabled: func(reason string) proto.Message {
			return &integrationv1.SourceDisabled{SourceId: string(id), Reason: reason}
		},
		Enabled: func() proto.Message { return &integrationv1.SourceEnabled{SourceId: string(id)} },
	}
}

func register(s State, x *Register) ([]proto.Message, error) {
	if again, err := registration.Registered(s.owned(), x.By); again || err != nil {
		return nil, err
	}
	if x.ID == "" {
		return nil, decide.Invalid("source_id", "missing")
	}
	if len(x.Contracts) == 0 {
		return nil, decide.Invalid("contract_ids", "a source writes to at least one contract")
	}
	if err := registration.Parties(x.By.Org, x.Contracts); err != nil {
		return nil, err
	}
	mapping := x.Mapping
	if mapping == integrationv1.Mapping_MAPPING_UNSPECIFIED {
		mapping = integrationv1.Mapping_MAPPING_JSM
	}
	return []proto.Message{&integrationv1.SourceRegistered{
		SourceId:      string(x.ID),
		OrgId:         string(x.By.Org),
		Name:          x.Name,
		Mapping:       mapping,
		ContractIds:   registration.IDs(x.Contracts),
		SecretVersion: 1,
	}}, nil
}

// Evolve applies one event.
func Evolve(s State, m proto.Message, meta Meta) State {
	switch e := m.(type) {
	case *integrationv1.SourceRegistered:
		s = State{
			ID:            SourceID(e.GetSourceId()),
			Org:           OrgID(e.GetOrgId()),
			Name:          e.GetName(),
			Mapping:       e.GetMapping(),
			ContractIDs:   slices.Clone(e.GetContractIds()),
			Enabled:       true,
			SecretVersion: e.GetSecretVersion(),
			RegisteredAt:  meta.Time,
		}
	case *integrationv1.SourceSecretRotated:
		s.SecretVersion = e.GetSecretVersion()
		s.RotatedAt = meta.Time
		s.PreviousGrace = nil
		if e.PreviousSecretGrace != nil {
			grace := e.GetPreviousSecretGrace().AsDuration()
			s.PreviousGrace = &grace
		}
	case *integrationv1.SourceDisabled:
		s.Enabled = false
	case *integrationv1.SourceEnabled:
		s.Enabled = true
	default:
		return s
	}
	s.UpdatedAt = meta.Time
	return s
}
