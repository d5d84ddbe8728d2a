package domain

import (
	"slices"
	"time"

	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
	"google.golang.org/protobuf/proto"
)

// Evolve applies event e to s and returns the new state. It is total: events
// of unknown types (and nil events) leave the state unchanged. It does not
// touch CreatedAt and UpdatedAt; the runner uses EvolveAt for that.
func Evolve(s State, e proto.Message) State {
	return EvolveAt(s, e, time.Time{})
}

// EvolveAt is Evolve with the event's envelope time: for an event it applies,
// it sets CreatedAt (on the first event) and UpdatedAt to at. A zero at leaves
// both alone.
func EvolveAt(s State, e proto.Message, at time.Time) State {
	next, applied := evolve(s, e)
	if !applied || at.IsZero() {
		return next
	}
	at = at.UTC()
	if next.CreatedAt.IsZero() {
		next.CreatedAt = at
	}
	next.UpdatedAt = at
	return next
}

// evolve never changes the slices or pointees of s: it copies what it changes,
// so earlier states stay valid.
func evolve(s State, e proto.Message) (State, bool) {
	switch e := e.(type) {
	case *contractsv1.ContractDrafted:
		if e == nil {
			return s, false
		}
		s.ID = ContractID(e.GetContractId())
		s.Customer = OrgID(e.GetCustomerOrgId())
		s.Provider = OrgID(e.GetProviderOrgId())
		s.Phase = contractsv1.Phase_PHASE_EXPLORE
		s.Current = TermsVersion{
			Version: e.GetTermsVersion(),
			Terms: Terms{
				Title:             e.GetTitle(),
				Reference:         e.GetReference(),
				ServicesInScope:   cloneSlice(e.GetServicesInScope()),
				CriticalFunction:  e.GetCriticalFunction(),
				TerminationNotice: durationFromProto(e.GetTerminationNotice()),
			},
		}
		s.InForce = nil
		s.Termination = nil
		return s, true

	case *contractsv1.RequirementAdded:
		if e == nil || e.GetRequirement() == nil {
			return s, false
		}
		r := RequirementFromProto(e.GetRequirement())
		return s.changeTerms(e.GetTermsVersion(), func(t *Terms) {
			t.Requirements = append(t.Requirements, r)
		}), true

	case *contractsv1.ContactAssigned:
		if e == nil || e.GetContact() == nil {
			return s, false
		}
		c := ContactFromProto(e.GetContact())
		return s.changeTerms(e.GetTermsVersion(), func(t *Terms) {
			i := slices.IndexFunc(t.Contacts, func(x Contact) bool { return x.Org == c.Org && x.Role == c.Role })
			if i >= 0 {
				t.Contacts[i] = c
				return
			}
			t.Contacts = append(t.Contacts, c)
		}), true

	case *contractsv1.SubcontractorAdded:
		if e == nil || e.GetSubcontractor() == nil {
			return s, false
		}
		sc := SubcontractorFromProto(e.GetSubcontractor())
		return s.changeTerms(e.GetTermsVersion(), func(t *Terms) {
			t.Subcontractors = append(t.Subcontractors, sc)
		}), true

	case *contractsv1.ServiceLevelsSet:
		if e == nil {
			return s, false
		}
		l := LevelsFromProto(e.GetServiceLevels())
		return s.changeTerms(e.GetTermsVersion(), func(t *Terms) {
			t.Levels = l
		}), true

	case *contractsv1.ContractSigned:
		if e == nil || e.GetTermsVersion() != s.Current.Version {
			return s, false
		}
		cur := s.Current.clone()
		cur.Signatures = append(cur.Signatures, Signature{
			Org:      OrgID(e.GetOrgId()),
			User:     e.GetSignedByUser(),
			SignedAt: timeFromProto(e.GetSignedAt()),
		})
		s.Current = cur
		if e.GetActivates() {
			inForce := cur.clone()
			s.InForce = &inForce
		}
		return s, true

	case *contractsv1.PhaseAdvanced:
		if e == nil {
			return s, false
		}
		s.Phase = e.GetTo()
		return s, true

	case *contractsv1.ContractTerminated:
		if e == nil {
			return s, false
		}
		s.Phase = contractsv1.Phase_PHASE_TERMINATED
		s.Termination = &Termination{
			Org:           OrgID(e.GetOrgId()),
			Reason:        e.GetReason(),
			EffectiveDate: timeFromProto(e.GetEffectiveDate()),
			TerminatedAt:  timeFromProto(e.GetTerminatedAt()),
		}
		return s, true

	default:
		return s, false
	}
}

// changeTerms applies change to the terms of the given version: a version
// above the current one starts it from a copy of the current terms without
// signatures; otherwise the current version is amended in place.
func (s State) changeTerms(version int32, change func(*Terms)) State {
	cur := s.Current.clone()
	if version > cur.Version {
		cur.Version = version
		cur.Signatures = nil
	}
	change(&cur.Terms)
	s.Current = cur
	return s
}
