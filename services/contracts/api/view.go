package api

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
	"github.com/jsmplatform/jsm/services/contracts/app"
	"github.com/jsmplatform/jsm/services/contracts/domain"
)

func toProto(c app.Contract) *contractsv1.Contract {
	s := c.State
	effective := s.Effective()
	out := &contractsv1.Contract{
		ContractId:    string(s.ID),
		CustomerOrgId: string(s.Customer),
		ProviderOrgId: string(s.Provider),
		Title:         effective.Terms.Title,
		Status:        s.Status(),
		Phase:         s.Phase,
		ServiceLevels: domain.LevelsToProto(effective.Terms.Levels),
		Current:       domain.TermsVersionToProto(s.Current),
		Termination:   domain.TerminationToProto(s.Termination),
		Position:      c.Position,
		CreatedAt:     timestamppb.New(s.CreatedAt),
		UpdatedAt:     timestamppb.New(s.UpdatedAt),
	}
	if s.InForce != nil {
		out.InForce = domain.TermsVersionToProto(*s.InForce)
	}
	return out
}
