package domain_test

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/audits/v1"
	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
	"github.com/jsmplatform/jsm/services/audits/domain"
)

// ---- fixtures ---------------------------------------------------------------

const (
	auditID    = "aud-1"
	contractID = "con-1"
	findingID  = "fnd-1"
	measureID  = "msr-1"

	customer domain.OrgID = "org-customer"
	provider domain.OrgID = "org-provider"
	outsider domain.OrgID = "org-outsider"

	day = 24 * time.Hour

	docReview = auditsv1.AuditType_AUDIT_TYPE_DOCUMENT_REVIEW
	onSite    = auditsv1.AuditType_AUDIT_TYPE_ON_SITE
	pentest   = auditsv1.AuditType_AUDIT_TYPE_PENETRATION_TEST
	high      = commonv1.Severity_SEVERITY_HIGH
	major     = auditsv1.NonconformityLevel_NONCONFORMITY_LEVEL_MAJOR
	minor     = auditsv1.NonconformityLevel_NONCONFORMITY_LEVEL_MINOR
	observe   = auditsv1.NonconformityLevel_NONCONFORMITY_LEVEL_OBSERVATION
)

var (
	base   = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	starts = base.Add(30 * day)
	due    = starts.Add(60 * day)
)

func at(d time.Duration) time.Time { return base.Add(d) }

func by(org domain.OrgID, t time.Time) domain.By {
	return domain.By{Actor: domain.Actor{Org: org, User: string(org) + "-user"}, At: t}
}

// rights: two audits a year, 14 days' notice, no on-site audits.
func rights() domain.Contract {
	return domain.Contract{ID: contractID, Customer: customer, Provider: provider, InForce: true, PerYear: 2, Notice: 14 * day}
}

func plan(mods ...func(*domain.PlanAudit)) *domain.PlanAudit {
	c := &domain.PlanAudit{By: by(customer, base), AuditID: auditID, Contract: rights(), Type: pentest, Title: "Annual pentest", Scope: "web tier", StartsAt: starts}
	for _, m := range mods {
		m(c)
	}
	return c
}

// ---- events -----------------------------------------------------------------

func ts(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

func planned() *auditsv1.AuditPlanned {
	return &auditsv1.AuditPlanned{
		AuditId: auditID, ContractId: contractID, CustomerOrgId: string(customer), ProviderOrgId: string(provider),
		PlannerOrgId: string(customer), AuditorOrgId: string(customer), AuditedOrgId: string(provider),
		Type: pentest, Title: "Annual pentest", Scope: "web tier", StartsAt: ts(starts),
	}
}
func notice() *auditsv1.AuditNoticeGiven {
	return &auditsv1.AuditNoticeGiven{AuditId: auditID, AuditedOrgId: string(provider), GivenAt: ts(base), StartsAt: ts(starts), Notice: durationpb.New(14 * day)}
}
func started() *auditsv1.AuditStarted {
	return &auditsv1.AuditStarted{AuditId: auditID, StartedAt: ts(starts)}
}
func completed() *auditsv1.AuditCompleted {
	return &auditsv1.AuditCompleted{AuditId: auditID, CompletedAt: ts(starts.Add(day)), Summary: "done"}
}
func finding(level auditsv1.NonconformityLevel) *auditsv1.FindingRecorded {
	return &auditsv1.FindingRecorded{AuditId: auditID, FindingId: findingID, Severity: high, Level: level, Title: "Weak TLS", ControlRef: "ISO 27001:2022 A.8.24", EvidenceRefs: []string{"scan-1"}}
}
func proposed(org domain.OrgID) *auditsv1.MeasureProposed {
	return &auditsv1.MeasureProposed{AuditId: auditID, FindingId: findingID, MeasureId: measureID, ProposerOrgId: string(org), OwnerOrgId: string(provider), DueAt: ts(due), Description: "Disable TLS 1.0"}
}
func agreed(org domain.OrgID, t time.Time) *auditsv1.MeasureAgreed {
	return &auditsv1.MeasureAgreed{AuditId: auditID, MeasureId: measureID, OrgId: string(org), AgreedAt: ts(t)}
}
func implemented(t time.Time) *auditsv1.MeasureImplemented {
	return &auditsv1.MeasureImplemented{AuditId: auditID, MeasureId: measureID, ImplementedAt: ts(t), EvidenceRefs: []string{"config-diff"}}
}
func verified(ok bool, t time.Time) *auditsv1.MeasureVerified {
	return &auditsv1.MeasureVerified{AuditId: auditID, MeasureId: measureID, Accepted: ok, VerifiedAt: ts(t)}
}
func overdue() *auditsv1.MeasureOverdue {
	return &auditsv1.MeasureOverdue{AuditId: auditID, MeasureId: measureID, DueAt: ts(due), OwnerOrgId: string(provider)}
}

var (
	inProgress  = []proto.Message{planned(), notice(), started()}
	withFinding = append(inProgress[:3:3], finding(major))
	withProp    = append(withFinding[:4:4], proposed(customer))
	withAgreed  = append(withProp[:5:5], agreed(provider, starts.Add(2*day)))
	withImpl    = append(withAgreed[:6:6], implemented(starts.Add(10*day)))
	withVerif   = append(withImpl[:7:7], verified(true, starts.Add(12*day)))
)

// ---- the table ----------------------------------------------------------------

type tc struct {
	name  string
	given []proto.Message
	when  domain.Command
	then  []proto.Message
	err   error
}

func fold(events []proto.Message) domain.State {
	var s domain.State
	for i, e := range events {
		s = domain.Evolve(s, e, domain.Meta{Time: base, Position: uint64(i + 1)})
	}
	return s
}

func run(t *testing.T, cases []tc) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := domain.Decide(fold(c.given), c.when)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("error %v, want %v", err, c.err)
				}
				if len(got) > 0 {
					t.Fatalf("refused with events %v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if len(got) != len(c.then) {
				t.Fatalf("got %d events %v, want %d %v", len(got), got, len(c.then), c.then)
			}
			for i := range got {
				if !proto.Equal(got[i], c.then[i]) {
					t.Errorf("event %d:\n got %s\nwant %s", i, prototext.Format(got[i]), prototext.Format(c.then[i]))
				}
			}
		})
	}
}

func TestPlanAudit(t *testing.T) {
	withAuditor := func(o domain.OrgID) func(*domain.PlanAudit) { return func(c *domain.PlanAudit) { c.Auditor = o } }
	providerAudits := planned()
	providerAudits.PlannerOrgId, providerAudits.AuditorOrgId, providerAudits.AuditedOrgId = string(customer), string(provider), string(customer)
	providerNotice := notice()
	providerNotice.AuditedOrgId = string(customer)
	docPlanned := planned()
	docPlanned.Type = docReview
	run(t, []tc{
		{name: "plans and gives notice", when: plan(), then: []proto.Message{planned(), notice()}},
		{name: "exactly at the notice period", when: plan(func(c *domain.PlanAudit) { c.StartsAt = base.Add(14 * day) }), then: func() []proto.Message {
			p, n := planned(), notice()
			p.StartsAt, n.StartsAt = ts(base.Add(14*day)), ts(base.Add(14*day))
			return []proto.Message{p, n}
		}()},
		{name: "the provider as auditor: the customer is audited", when: plan(withAuditor(provider)), then: []proto.Message{providerAudits, providerNotice}},
		{name: "unspecified type is a document review", when: plan(func(c *domain.PlanAudit) { c.Type = 0 }), then: []proto.Message{docPlanned, notice()}},
		{name: "second plan of an existing audit", given: inProgress[:2], when: plan(), err: domain.ErrAlreadyExists},
		{name: "unknown contract", when: plan(func(c *domain.PlanAudit) { c.Contract = domain.Contract{} }), err: domain.NotFoundError{What: "contract"}},
		{name: "outsider", when: plan(func(c *domain.PlanAudit) { c.By = by(outsider, base) }), err: domain.ErrNotParty},
		{name: "contract not in force", when: plan(func(c *domain.PlanAudit) { c.Contract.InForce = false }), err: domain.ErrContractNotActive},
		{name: "contract ends before the audit", when: plan(func(c *domain.PlanAudit) { c.Contract.EndsAt = starts }), err: domain.ErrContractNotActive},
		{name: "blank title", when: plan(func(c *domain.PlanAudit) { c.Title = " " }), err: domain.ErrInvalid},
		{name: "unknown type", when: plan(func(c *domain.PlanAudit) { c.Type = 99 }), err: domain.ErrInvalid},
		{name: "auditor not a party", when: plan(withAuditor(outsider)), err: domain.ErrInvalid},
		{name: "no start", when: plan(func(c *domain.PlanAudit) { c.StartsAt = time.Time{} }), err: domain.ErrInvalid},
		{name: "ends before it starts", when: plan(func(c *domain.PlanAudit) { c.EndsAt = starts.Add(-time.Hour) }), err: domain.ErrInvalid},
		{name: "short notice", when: plan(func(c *domain.PlanAudit) { c.StartsAt = base.Add(14*day - time.Second) }), err: domain.ErrAuditRights},
		{name: "on-site not allowed", when: plan(func(c *domain.PlanAudit) { c.Type = onSite }), err: domain.ErrAuditRights},
		{name: "on-site allowed", when: plan(func(c *domain.PlanAudit) { c.Type = onSite; c.Contract.OnSite = true }), then: func() []proto.Message {
			p := planned()
			p.Type = onSite
			return []proto.Message{p, notice()}
		}()},
		{name: "per year used up", when: plan(func(c *domain.PlanAudit) { c.Contract.PlannedInYear = 2 }), err: domain.ErrAuditRights},
		{name: "no per-year bound", when: plan(func(c *domain.PlanAudit) { c.Contract.PerYear, c.Contract.PlannedInYear = 0, 9 }), then: []proto.Message{planned(), notice()}},
		{name: "missing command", when: (*domain.PlanAudit)(nil), err: domain.ErrInvalid},
	})
}

func TestAuditLifecycle(t *testing.T) {
	run(t, []tc{
		{name: "start at the announced date", given: inProgress[:2], when: &domain.StartAudit{By: by(customer, starts)}, then: []proto.Message{started()}},
		{name: "start too early", given: inProgress[:2], when: &domain.StartAudit{By: by(customer, starts.Add(-time.Second))}, err: domain.ErrTooEarly},
		{name: "start by the audited party", given: inProgress[:2], when: &domain.StartAudit{By: by(provider, starts)}, err: domain.ErrWrongParty},
		{name: "start by an outsider", given: inProgress[:2], when: &domain.StartAudit{By: by(outsider, starts)}, err: domain.ErrNotParty},
		{name: "start twice changes nothing", given: inProgress, when: &domain.StartAudit{By: by(customer, starts)}},
		{name: "start a completed audit", given: append(inProgress[:3:3], completed()), when: &domain.StartAudit{By: by(customer, starts)}, err: domain.ErrWrongStatus},
		{name: "unknown audit", when: &domain.StartAudit{By: by(customer, starts)}, err: domain.NotFoundError{What: "audit"}},
		{name: "complete", given: inProgress, when: &domain.CompleteAudit{By: by(customer, starts.Add(day)), Summary: "done"}, then: []proto.Message{completed()}},
		{name: "complete twice changes nothing", given: append(inProgress[:3:3], completed()), when: &domain.CompleteAudit{By: by(customer, starts.Add(2*day))}},
		{name: "complete before the start", given: inProgress[:2], when: &domain.CompleteAudit{By: by(customer, starts)}, err: domain.ErrWrongStatus},
		{name: "complete by the audited party", given: inProgress, when: &domain.CompleteAudit{By: by(provider, starts)}, err: domain.ErrWrongParty},
	})
}

func record(mods ...func(*domain.RecordFinding)) *domain.RecordFinding {
	c := &domain.RecordFinding{By: by(customer, starts.Add(time.Hour)), FindingID: findingID, Severity: high, Level: major, Title: "Weak TLS", ControlRef: " ISO 27001:2022 A.8.24 ", EvidenceRefs: []string{"scan-1"}}
	for _, m := range mods {
		m(c)
	}
	return c
}

func TestRecordFinding(t *testing.T) {
	minorFinding := finding(minor)
	run(t, []tc{
		{name: "records", given: inProgress, when: record(), then: []proto.Message{finding(major)}},
		{name: "level defaults to minor", given: inProgress, when: record(func(c *domain.RecordFinding) { c.Level = 0 }), then: []proto.Message{minorFinding}},
		{name: "before the start", given: inProgress[:2], when: record(), err: domain.ErrWrongStatus},
		{name: "after completion", given: append(inProgress[:3:3], completed()), when: record(), err: domain.ErrWrongStatus},
		{name: "by the audited party", given: inProgress, when: record(func(c *domain.RecordFinding) { c.By = by(provider, starts) }), err: domain.ErrWrongParty},
		{name: "twice", given: withFinding, when: record(), err: domain.ErrAlreadyExists},
		{name: "no severity", given: inProgress, when: record(func(c *domain.RecordFinding) { c.Severity = 0 }), err: domain.ErrInvalid},
		{name: "unknown level", given: inProgress, when: record(func(c *domain.RecordFinding) { c.Level = 9 }), err: domain.ErrInvalid},
		{name: "blank title", given: inProgress, when: record(func(c *domain.RecordFinding) { c.Title = "" }), err: domain.ErrInvalid},
		{name: "duplicate evidence", given: inProgress, when: record(func(c *domain.RecordFinding) { c.EvidenceRefs = []string{"a", "a"} }), err: domain.ErrInvalid},
		{name: "blank id", given: inProgress, when: record(func(c *domain.RecordFinding) { c.FindingID = "" }), err: domain.ErrInvalid},
	})
}

func propose(org domain.OrgID, mods ...func(*domain.ProposeMeasure)) *domain.ProposeMeasure {
	c := &domain.ProposeMeasure{By: by(org, starts.Add(day)), FindingID: findingID, MeasureID: measureID, Owner: provider, DueAt: due, Description: "Disable TLS 1.0"}
	for _, m := range mods {
		m(c)
	}
	return c
}

func TestMeasures(t *testing.T) {
	closedFinding := append(withFinding[:4:4], &auditsv1.FindingClosed{AuditId: auditID, FindingId: findingID})
	rejected := append(withProp[:5:5], &auditsv1.MeasureRejected{AuditId: auditID, MeasureId: measureID, OrgId: string(provider), Reason: "too costly"})
	implement := func(org domain.OrgID, t time.Time) *domain.RecordMeasureImplemented {
		return &domain.RecordMeasureImplemented{By: by(org, t), MeasureID: measureID, EvidenceRefs: []string{"config-diff"}}
	}
	verify := func(org domain.OrgID, ok bool, t time.Time) *domain.VerifyMeasure {
		return &domain.VerifyMeasure{By: by(org, t), MeasureID: measureID, Accepted: ok}
	}
	run(t, []tc{
		{name: "propose", given: withFinding, when: propose(customer), then: []proto.Message{proposed(customer)}},
		{name: "propose by the audited party", given: withFinding, when: propose(provider), then: []proto.Message{proposed(provider)}},
		{name: "propose on a closed finding", given: closedFinding, when: propose(customer), err: domain.ErrWrongStatus},
		{name: "propose on an unknown finding", given: withFinding, when: propose(customer, func(c *domain.ProposeMeasure) { c.FindingID = "x" }), err: domain.NotFoundError{What: "finding"}},
		{name: "propose twice", given: withProp, when: propose(customer), err: domain.ErrAlreadyExists},
		{name: "owner not a party", given: withFinding, when: propose(customer, func(c *domain.ProposeMeasure) { c.Owner = outsider }), err: domain.ErrInvalid},
		{name: "due in the past", given: withFinding, when: propose(customer, func(c *domain.ProposeMeasure) { c.DueAt = starts }), err: domain.ErrInvalid},
		{name: "no description", given: withFinding, when: propose(customer, func(c *domain.ProposeMeasure) { c.Description = "" }), err: domain.ErrInvalid},
		{name: "propose by an outsider", given: withFinding, when: propose(outsider), err: domain.ErrNotParty},

		{name: "the other party agrees", given: withProp, when: &domain.AgreeMeasure{By: by(provider, starts.Add(2*day)), MeasureID: measureID}, then: []proto.Message{agreed(provider, starts.Add(2*day))}},
		{name: "the proposer cannot agree", given: withProp, when: &domain.AgreeMeasure{By: by(customer, starts), MeasureID: measureID}, err: domain.ErrWrongParty},
		{name: "agree twice changes nothing", given: withAgreed, when: &domain.AgreeMeasure{By: by(provider, starts), MeasureID: measureID}},
		{name: "agree to a rejected one", given: rejected, when: &domain.AgreeMeasure{By: by(provider, starts), MeasureID: measureID}, err: domain.ErrWrongStatus},
		{name: "agree to an unknown one", given: withProp, when: &domain.AgreeMeasure{By: by(provider, starts), MeasureID: "x"}, err: domain.NotFoundError{What: "measure"}},
		{name: "reject", given: withProp, when: &domain.RejectMeasure{By: by(provider, starts), MeasureID: measureID, Reason: "too costly"}, then: rejected[5:]},
		{name: "reject without reason", given: withProp, when: &domain.RejectMeasure{By: by(provider, starts), MeasureID: measureID}, err: domain.ErrInvalid},
		{name: "reject own proposal", given: withProp, when: &domain.RejectMeasure{By: by(customer, starts), MeasureID: measureID, Reason: "x"}, err: domain.ErrWrongParty},
		{name: "reject an agreed one", given: withAgreed, when: &domain.RejectMeasure{By: by(provider, starts), MeasureID: measureID, Reason: "x"}, err: domain.ErrWrongStatus},

		{name: "owner implements", given: withAgreed, when: implement(provider, starts.Add(10*day)), then: []proto.Message{implemented(starts.Add(10 * day))}},
		{name: "implemented exactly at due is in time", given: withAgreed, when: implement(provider, due), then: []proto.Message{implemented(due)}},
		{name: "implemented late records overdue first", given: withAgreed, when: implement(provider, due.Add(time.Second)), then: []proto.Message{overdue(), implemented(due.Add(time.Second))}},
		{name: "implemented late after the scheduler", given: append(withAgreed[:6:6], overdue()), when: implement(provider, due.Add(day)), then: []proto.Message{implemented(due.Add(day))}},
		{name: "not the owner", given: withAgreed, when: implement(customer, starts), err: domain.ErrWrongParty},
		{name: "not agreed yet", given: withProp, when: implement(provider, starts), err: domain.ErrWrongStatus},
		{name: "no evidence", given: withAgreed, when: &domain.RecordMeasureImplemented{By: by(provider, starts), MeasureID: measureID}, err: domain.ErrInvalid},
		{name: "implemented twice changes nothing", given: withImpl, when: implement(provider, starts.Add(11*day))},

		{name: "auditor verifies", given: withImpl, when: verify(customer, true, starts.Add(12*day)), then: []proto.Message{verified(true, starts.Add(12*day))}},
		{name: "auditor sends it back", given: withImpl, when: verify(customer, false, starts.Add(12*day)), then: []proto.Message{verified(false, starts.Add(12*day))}},
		{name: "the audited party cannot verify", given: withImpl, when: verify(provider, true, starts), err: domain.ErrWrongParty},
		{name: "verify before implementation", given: withAgreed, when: verify(customer, true, starts), err: domain.ErrWrongStatus},
		{name: "verify twice changes nothing", given: withVerif, when: verify(customer, true, starts.Add(13*day))},
		{name: "sent back, implemented again", given: append(withImpl[:7:7], verified(false, starts.Add(12*day))), when: implement(provider, starts.Add(13*day)), then: []proto.Message{implemented(starts.Add(13 * day))}},
	})
}

func TestOverdue(t *testing.T) {
	mark := func(t time.Time) *domain.MarkMeasureOverdue {
		return &domain.MarkMeasureOverdue{By: domain.By{Actor: domain.Actor{Org: "jsm", User: "scheduler"}, At: t}, MeasureID: measureID}
	}
	run(t, []tc{
		{name: "exactly at due it is not overdue", given: withAgreed, when: mark(due)},
		{name: "one second after it is", given: withAgreed, when: mark(due.Add(time.Second)), then: []proto.Message{overdue()}},
		{name: "recorded once", given: append(withAgreed[:6:6], overdue()), when: mark(due.Add(day))},
		{name: "implemented in time", given: withImpl, when: mark(due.Add(day))},
		{name: "not agreed: no due date runs", given: withProp, when: mark(due.Add(day))},
		{name: "unknown measure", given: withAgreed, when: &domain.MarkMeasureOverdue{By: by("jsm", due), MeasureID: "x"}, err: domain.NotFoundError{What: "measure"}},
	})
}

func TestCloseFinding(t *testing.T) {
	closeIt := func(org domain.OrgID) *domain.CloseFinding {
		return &domain.CloseFinding{By: by(org, starts.Add(20*day)), FindingID: findingID}
	}
	closed := &auditsv1.FindingClosed{AuditId: auditID, FindingId: findingID, ClosedAt: ts(starts.Add(20 * day))}
	obs := append(inProgress[:3:3], finding(observe))
	run(t, []tc{
		{name: "closes once its measures are verified", given: withVerif, when: closeIt(customer), then: []proto.Message{closed}},
		{name: "closes after the audit completed", given: append(withVerif[:8:8], completed()), when: closeIt(customer), then: []proto.Message{closed}},
		{name: "an observation closes without measures", given: obs, when: closeIt(customer), then: []proto.Message{closed}},
		{name: "a nonconformity needs a verified measure", given: withFinding, when: closeIt(customer), err: domain.ErrMeasuresPending},
		{name: "a proposal pending", given: withProp, when: closeIt(customer), err: domain.ErrMeasuresPending},
		{name: "implemented, not verified", given: withImpl, when: closeIt(customer), err: domain.ErrMeasuresPending},
		{name: "by the audited party", given: withVerif, when: closeIt(provider), err: domain.ErrWrongParty},
		{name: "unknown finding", given: withVerif, when: &domain.CloseFinding{By: by(customer, starts), FindingID: "x"}, err: domain.NotFoundError{What: "finding"}},
		{name: "twice changes nothing", given: append(withVerif[:8:8], closed), when: closeIt(customer)},
	})
}

func TestEvolveWalkThrough(t *testing.T) {
	s := fold(append(withVerif[:8:8], &auditsv1.FindingClosed{AuditId: auditID, FindingId: findingID, ClosedAt: ts(starts.Add(20 * day))}, completed()))
	f, _, ok := s.Finding(findingID)
	m, _, _ := s.Measure(measureID)
	switch {
	case s.Status != auditsv1.AuditStatus_AUDIT_STATUS_COMPLETED, !ok, f.Status != auditsv1.FindingStatus_FINDING_STATUS_CLOSED:
		t.Fatalf("state %+v", s)
	case m.Status != auditsv1.MeasureStatus_MEASURE_STATUS_VERIFIED, m.Proposer != customer, m.Counterpart != provider:
		t.Fatalf("measure %+v", m)
	case !s.NoticeGivenAt.Equal(base), s.Position != 10:
		t.Fatalf("bookkeeping %+v", s)
	}
	if !fold(withAgreed).NextDue().Equal(due) || !fold(withImpl).NextDue().IsZero() {
		t.Fatal("next due")
	}
}
