package domain_test

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	auditsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/audits/v1"
	"github.com/jsmplatform/jsm/services/audits/domain"
)

const (
	backups = auditsv1.CheckItemKind_CHECK_ITEM_KIND_BACKUPS
	custom  = auditsv1.CheckItemKind_CHECK_ITEM_KIND_CUSTOM
	passed  = auditsv1.CheckOutcome_CHECK_OUTCOME_PASSED
	deviate = auditsv1.CheckOutcome_CHECK_OUTCOME_DEVIATION
)

func template(mods ...func(*domain.SetCheckTemplate)) *domain.SetCheckTemplate {
	c := &domain.SetCheckTemplate{By: by(customer, base), Contract: rights(), Interval: 90 * day,
		Items: []domain.CheckItem{{Key: "backups", Kind: backups}, {Key: "dr", Kind: custom, Title: "Disaster recovery drill"}}}
	for _, m := range mods {
		m(c)
	}
	return c
}

func templateSet() *auditsv1.CheckTemplateSet {
	return &auditsv1.CheckTemplateSet{ContractId: contractID, CustomerOrgId: string(customer), ProviderOrgId: string(provider), Interval: durationpb.New(90 * day),
		Items: []*auditsv1.CheckItem{{Key: "backups", Kind: backups, Title: "Backups"}, {Key: "dr", Kind: custom, Title: "Disaster recovery drill"}}}
}

func result(org domain.OrgID, outcome auditsv1.CheckOutcome) *domain.RecordCheckResult {
	return &domain.RecordCheckResult{By: by(org, at(day)), Contract: rights(), Period: "2026-Q1", ItemKey: "backups", Outcome: outcome, Note: "restore tested"}
}

func resultRecorded(org domain.OrgID, outcome auditsv1.CheckOutcome) *auditsv1.CheckResultRecorded {
	return &auditsv1.CheckResultRecorded{ContractId: contractID, Period: "2026-Q1", ItemKey: "backups", Outcome: outcome, Note: "restore tested", OrgId: string(org), RecordedAt: ts(at(day))}
}

func TestChecklist(t *testing.T) {
	cases := []struct {
		name  string
		given []proto.Message
		when  domain.Command
		then  []proto.Message
		err   error
	}{
		{name: "sets the template with default titles", when: template(), then: []proto.Message{templateSet()}},
		{name: "the same template again changes nothing", given: []proto.Message{templateSet()}, when: template()},
		{name: "unknown contract", when: template(func(c *domain.SetCheckTemplate) { c.Contract = domain.Contract{} }), err: domain.NotFoundError{What: "contract"}},
		{name: "outsider", when: template(func(c *domain.SetCheckTemplate) { c.By = by(outsider, base) }), err: domain.ErrNotParty},
		{name: "contract not in force", when: template(func(c *domain.SetCheckTemplate) { c.Contract.InForce = false }), err: domain.ErrContractNotActive},
		{name: "no items", when: template(func(c *domain.SetCheckTemplate) { c.Items = nil }), err: domain.ErrInvalid},
		{name: "duplicate key", when: template(func(c *domain.SetCheckTemplate) { c.Items[1].Key = "backups" }), err: domain.ErrInvalid},
		{name: "custom without title", when: template(func(c *domain.SetCheckTemplate) { c.Items[1].Title = "" }), err: domain.ErrInvalid},
		{name: "unknown kind", when: template(func(c *domain.SetCheckTemplate) { c.Items[0].Kind = 0 }), err: domain.ErrInvalid},
		{name: "negative interval", when: template(func(c *domain.SetCheckTemplate) { c.Interval = -time.Hour }), err: domain.ErrInvalid},

		{name: "records a result", given: []proto.Message{templateSet()}, when: result(provider, passed), then: []proto.Message{resultRecorded(provider, passed)}},
		{name: "the same result again changes nothing", given: []proto.Message{templateSet(), resultRecorded(provider, passed)}, when: result(customer, passed)},
		{name: "a corrected result", given: []proto.Message{templateSet(), resultRecorded(provider, passed)}, when: result(customer, deviate), then: []proto.Message{resultRecorded(customer, deviate)}},
		{name: "no template", when: result(provider, passed), err: domain.ErrNoTemplate},
		{name: "result by an outsider", given: []proto.Message{templateSet()}, when: func() domain.Command { c := result(provider, passed); c.By = by(outsider, base); return c }(), err: domain.ErrNotParty},
		{name: "unknown item", given: []proto.Message{templateSet()}, when: func() domain.Command { c := result(provider, passed); c.ItemKey = "x"; return c }(), err: domain.ErrInvalid},
		{name: "no outcome", given: []proto.Message{templateSet()}, when: result(provider, 0), err: domain.ErrInvalid},
		{name: "blank period", given: []proto.Message{templateSet()}, when: func() domain.Command { c := result(provider, passed); c.Period = ""; return c }(), err: domain.ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var s domain.Checklist
			for i, e := range c.given {
				s = domain.EvolveChecklist(s, e, domain.Meta{Time: base, Position: uint64(i + 1)})
			}
			got, err := domain.DecideChecklist(s, c.when)
			if c.err != nil || err != nil {
				if !errors.Is(err, c.err) || len(got) > 0 {
					t.Fatalf("got %v, %v; want error %v", got, err, c.err)
				}
				return
			}
			if len(got) != len(c.then) {
				t.Fatalf("got %v, want %v", got, c.then)
			}
			for i := range got {
				if !proto.Equal(got[i], c.then[i]) {
					t.Errorf("event %d: got %v, want %v", i, got[i], c.then[i])
				}
			}
		})
	}
}

func TestChecklistRuns(t *testing.T) {
	var s domain.Checklist
	s = domain.EvolveChecklist(s, templateSet(), domain.Meta{Time: base})
	if !s.NextDue().Equal(base) {
		t.Fatalf("first execution due %s, want when the template was set", s.NextDue())
	}
	for _, e := range []proto.Message{resultRecorded(provider, passed), resultRecorded(customer, deviate)} {
		s = domain.EvolveChecklist(s, e, domain.Meta{Time: base})
	}
	if want := at(day).Add(90 * day); !s.NextDue().Equal(want) {
		t.Fatalf("next execution due %s, want %s", s.NextDue(), want)
	}
	view := domain.ChecklistToProto(s)
	if len(view.GetRuns()) != 1 || len(view.GetRuns()[0].GetResults()) != 1 || view.GetRuns()[0].GetResults()[0].GetOutcome() != deviate || view.GetRuns()[0].GetComplete() {
		t.Fatalf("runs %v", view.GetRuns())
	}
}
