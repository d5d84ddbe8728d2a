// Package domain is the ingest source aggregate as a pure decider: an org
// registers a source (an ITSM instance or scanner of its own) for
// contracts it is a party to, rotates the source's secret, disables and
// enables it. Only the owning org may change it; to any other org it does
// not exist. A source's id is chosen by the org and names it in the ingest
// URL and the NATS subject, so ids are unique across the platform.
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
	OrgID         = decide.OrgID
	By            = decide.By
	Meta          = decide.Meta
	NotFoundError = decide.NotFoundError
)

// ErrAlreadyExists: another org registered a source with this id.
var ErrAlreadyExists = errors.New("source id already taken")

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
	RotatedAt    time.Time
	RegisteredAt time.Time
	UpdatedAt    time.Time
}

// Exists reports whether the source was registered.
func (s State) Exists() bool { return s.ID != "" }

// Allows reports whether the source may write to contract.
func (s State) Allows(contract string) bool { return slices.Contains(s.ContractIDs, contract) }

// Contract is what a command needs to know of a contract it names.
type Contract struct {
	ID       string
	Customer OrgID
	Provider OrgID
	Known    bool
}

func (c Contract) has(org OrgID) bool {
	return c.Known && org != "" && (org == c.Customer || org == c.Provider)
}

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

// RotateSecret issues the next secret version.
type RotateSecret struct{ decide.By }

// Disable refuses the source's events from now on.
type Disable struct {
	decide.By
	Reason string
}

// Enable accepts them again; the org must still be a party to the contracts.
type Enable struct {
	decide.By
	Contracts []Contract
}

// Decide checks cmd against the source s.
func Decide(s State, cmd Command) ([]proto.Message, error) {
	if decide.Missing(cmd) {
		return nil, decide.Invalid("command", "missing")
	}
	by := decide.ByOf(cmd)
	if x, ok := cmd.(*Register); ok {
		return register(s, by, x)
	}
	if !s.Exists() || s.Org != by.Org {
		return nil, NotFoundError{What: "source", ID: string(s.ID)}
	}
	switch x := cmd.(type) {
	case *RotateSecret:
		return one(&integrationv1.SourceSecretRotated{SourceId: string(s.ID), SecretVersion: s.SecretVersion + 1})
	case *Disable:
		if !s.Enabled {
			return nil, nil
		}
		return one(&integrationv1.SourceDisabled{SourceId: string(s.ID), Reason: x.Reason})
	case *Enable:
		if err := parties(by.Org, x.Contracts); err != nil {
			return nil, err
		}
		if s.Enabled {
			return nil, nil
		}
		return one(&integrationv1.SourceEnabled{SourceId: string(s.ID)})
	default:
		return nil, decide.Invalid("command", "unknown command %T", cmd)
	}
}

func register(s State, by By, x *Register) ([]proto.Message, error) {
	if s.Exists() {
		if s.Org != by.Org {
			return nil, ErrAlreadyExists
		}
		// The same org registering its source again (a retried request): no-op.
		return nil, nil
	}
	if x.ID == "" {
		return nil, decide.Invalid("source_id", "missing")
	}
	if len(x.Contracts) == 0 {
		return nil, decide.Invalid("contract_ids", "a source writes to at least one contract")
	}
	if err := parties(by.Org, x.Contracts); err != nil {
		return nil, err
	}
	ids := make([]string, len(x.Contracts))
	for i, c := range x.Contracts {
		ids[i] = c.ID
	}
	mapping := x.Mapping
	if mapping == integrationv1.Mapping_MAPPING_UNSPECIFIED {
		mapping = integrationv1.Mapping_MAPPING_JSM
	}
	return one(&integrationv1.SourceRegistered{
		SourceId:      string(x.ID),
		OrgId:         string(by.Org),
		Name:          x.Name,
		Mapping:       mapping,
		ContractIds:   ids,
		SecretVersion: 1,
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
