package domain_test

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/jsmplatform/jsm/libs/decide"
	integrationv1 "github.com/jsmplatform/jsm/proto/gen/jsm/integration/v1"
	"github.com/jsmplatform/jsm/services/integration/ingest/domain"
)

const (
	srcID              = "snow-prod"
	acme  domain.OrgID = "acme"
	itsec domain.OrgID = "itsec"
	evil  domain.OrgID = "evilcorp"
)

var now = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func by(org domain.OrgID) domain.By {
	return domain.By{Actor: decide.Actor{Org: org, User: string(org) + "-user"}, At: now}
}

var contract = domain.Contract{ID: "con-1", Customer: acme, Provider: itsec, Known: true}

func register(org domain.OrgID, contracts ...domain.Contract) *domain.Register {
	return &domain.Register{By: by(org), ID: srcID, Name: "ServiceNow prod", Mapping: integrationv1.Mapping_MAPPING_SERVICENOW, Contracts: contracts}
}

var (
	registered = &integrationv1.SourceRegistered{SourceId: srcID, OrgId: string(acme), Name: "ServiceNow prod", Mapping: integrationv1.Mapping_MAPPING_SERVICENOW, ContractIds: []string{"con-1"}, SecretVersion: 1}
	rotated    = &integrationv1.SourceSecretRotated{SourceId: srcID, SecretVersion: 2}
	disabled   = &integrationv1.SourceDisabled{SourceId: srcID, Reason: "migrating"}
	enabled    = &integrationv1.SourceEnabled{SourceId: srcID}
)

func TestDecide(t *testing.T) {
	for _, tc := range []struct {
		name  string
		given []proto.Message
		when  domain.Command
		then  []proto.Message
		err   error
	}{
		{name: "register", when: register(acme, contract), then: []proto.Message{registered}},
		{name: "register with the default mapping", when: &domain.Register{By: by(itsec), ID: srcID, Contracts: []domain.Contract{contract}},
			then: []proto.Message{&integrationv1.SourceRegistered{SourceId: srcID, OrgId: string(itsec), Mapping: integrationv1.Mapping_MAPPING_JSM, ContractIds: []string{"con-1"}, SecretVersion: 1}}},
		{name: "register twice is a no-op", given: []proto.Message{registered}, when: register(acme, contract)},
		{name: "register an id another org took", given: []proto.Message{registered}, when: register(evil), err: domain.ErrAlreadyExists},
		{name: "register without contracts", when: register(acme), err: decide.ErrInvalid},
		{name: "register on a contract of others", when: register(evil, contract), err: domain.NotFoundError{}},
		{name: "register on an unknown contract", when: register(acme, domain.Contract{ID: "con-x"}), err: domain.NotFoundError{}},
		{name: "register without id", when: &domain.Register{By: by(acme), Contracts: []domain.Contract{contract}}, err: decide.ErrInvalid},
		{name: "rotate", given: []proto.Message{registered}, when: &domain.RotateSecret{By: by(acme)}, then: []proto.Message{rotated}},
		{name: "rotate again", given: []proto.Message{registered, rotated}, when: &domain.RotateSecret{By: by(acme)}, then: []proto.Message{&integrationv1.SourceSecretRotated{SourceId: srcID, SecretVersion: 3}}},
		{name: "rotate the other party's", given: []proto.Message{registered}, when: &domain.RotateSecret{By: by(itsec)}, err: domain.NotFoundError{}},
		{name: "rotate unknown", when: &domain.RotateSecret{By: by(acme)}, err: domain.NotFoundError{}},
		{name: "disable", given: []proto.Message{registered}, when: &domain.Disable{By: by(acme), Reason: "migrating"}, then: []proto.Message{disabled}},
		{name: "disable twice is a no-op", given: []proto.Message{registered, disabled}, when: &domain.Disable{By: by(acme)}},
		{name: "disable another org's", given: []proto.Message{registered}, when: &domain.Disable{By: by(evil)}, err: domain.NotFoundError{}},
		{name: "enable", given: []proto.Message{registered, disabled}, when: &domain.Enable{By: by(acme), Contracts: []domain.Contract{contract}}, then: []proto.Message{enabled}},
		{name: "enable twice is a no-op", given: []proto.Message{registered, disabled, enabled}, when: &domain.Enable{By: by(acme), Contracts: []domain.Contract{contract}}},
		{name: "enable when no longer a party", given: []proto.Message{registered, disabled}, when: &domain.Enable{By: by(acme), Contracts: []domain.Contract{{ID: "con-1"}}}, err: domain.NotFoundError{}},
		{name: "missing command", given: []proto.Message{registered}, when: (*domain.Disable)(nil), err: decide.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s domain.State
			for _, e := range tc.given {
				s = domain.Evolve(s, e, decide.Meta{Time: now})
			}
			got, err := domain.Decide(s, tc.when)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("error %v, want %v", err, tc.err)
				}
				if got != nil {
					t.Fatalf("events %v with the error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if len(got) != len(tc.then) {
				t.Fatalf("events %v, want %v", got, tc.then)
			}
			for i := range got {
				if !proto.Equal(got[i], tc.then[i]) {
					t.Errorf("event %d: %v, want %v", i, got[i], tc.then[i])
				}
			}
		})
	}
}

func TestEvolve(t *testing.T) {
	s := domain.State{}
	for _, e := range []proto.Message{registered, rotated, disabled} {
		s = domain.Evolve(s, e, decide.Meta{Time: now})
	}
	if s.ID != srcID || s.Org != acme || s.Enabled || s.SecretVersion != 2 || !s.RotatedAt.Equal(now) || !s.Allows("con-1") || s.Allows("con-2") {
		t.Fatalf("state %+v", s)
	}
}

// The previous secret is valid for the grace the rotation chose (0: not at
// all), else the deployment's; a later rotation without one goes back to
// the deployment's.
func TestPreviousSecretGrace(t *testing.T) {
	rotated := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const deployment = 24 * time.Hour
	zero, hour := time.Duration(0), time.Hour
	for name, tc := range map[string]struct {
		grace *time.Duration
		want  time.Time
	}{
		"deployment's": {nil, rotated.Add(deployment)},
		"revoked":      {&zero, rotated},
		"an hour":      {&hour, rotated.Add(time.Hour)},
	} {
		s := domain.Evolve(domain.State{}, &integrationv1.SourceRegistered{SourceId: "s", OrgId: string(acme), ContractIds: []string{"c"}, SecretVersion: 1}, domain.Meta{Time: rotated.Add(-time.Hour)})
		if got := s.PreviousUntil(deployment); !got.IsZero() {
			t.Errorf("%s: before any rotation, previous valid until %v", name, got)
		}
		evs, err := domain.Decide(s, &domain.RotateSecret{By: by(acme), PreviousGrace: tc.grace})
		if err != nil || len(evs) != 1 {
			t.Fatalf("%s: %v %v", name, evs, err)
		}
		s = domain.Evolve(s, evs[0], domain.Meta{Time: rotated})
		if got := s.PreviousUntil(deployment); !got.Equal(tc.want) {
			t.Errorf("%s: previous valid until %v, want %v", name, got, tc.want)
		}
		evs, _ = domain.Decide(s, &domain.RotateSecret{By: by(acme)})
		s = domain.Evolve(s, evs[0], domain.Meta{Time: rotated.Add(time.Minute)})
		if got := s.PreviousUntil(deployment); !got.Equal(rotated.Add(time.Minute + deployment)) {
			t.Errorf("%s: a later rotation without a grace: %v", name, got)
		}
	}
	minus := -time.Second
	s := domain.Evolve(domain.State{}, &integrationv1.SourceRegistered{SourceId: "s", OrgId: string(acme), ContractIds: []string{"c"}, SecretVersion: 1}, domain.Meta{Time: rotated})
	if _, err := domain.Decide(s, &domain.RotateSecret{By: by(acme), PreviousGrace: &minus}); err == nil {
		t.Error("a negative grace was accepted")
	}
}
