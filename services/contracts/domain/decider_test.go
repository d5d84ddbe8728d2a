package domain_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
	"github.com/jsmplatform/jsm/services/contracts/domain"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// ---- fixtures ---------------------------------------------------------------

const (
	id       domain.ContractID = "c-1"
	customer domain.OrgID      = "org-customer"
	provider domain.OrgID      = "org-provider"
	outsider domain.OrgID      = "org-outsider"
	notice                     = 90 * 24 * time.Hour
)

var (
	t0         = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	t1         = t0.Add(time.Hour)
	t2         = t0.Add(2 * time.Hour)
	byCustomer = domain.Actor{Org: customer, User: "alice"}
	byProvider = domain.Actor{Org: provider, User: "bob"}
	byOutsider = domain.Actor{Org: outsider, User: "mallory"}
)

func userOf(org domain.OrgID) string {
	switch org {
	case customer:
		return byCustomer.User
	case provider:
		return byProvider.User
	default:
		return byOutsider.User
	}
}

func draft(by domain.Actor) domain.DraftContract {
	return domain.DraftContract{
		Actor: by, ContractID: id, Customer: customer, Provider: provider,
		Title: "Managed SOC", Reference: "REF-2026-1", ServicesInScope: []string{"soc", "siem"},
		CriticalFunction: true, TerminationNotice: notice,
	}
}

func levels() domain.ServiceLevels {
	return domain.ServiceLevels{
		IncidentNotification: []domain.SeverityDeadline{
			{Severity: commonv1.Severity_SEVERITY_CRITICAL, Within: time.Hour},
			{Severity: commonv1.Severity_SEVERITY_HIGH, Within: 4 * time.Hour},
		},
		PatchDeadlines: []domain.SeverityDeadline{
			{Severity: commonv1.Severity_SEVERITY_CRITICAL, Within: 72 * time.Hour},
		},
		ReportCadence:               contractsv1.ReportCadence_REPORT_CADENCE_MONTHLY,
		AuditRights:                 domain.AuditRights{PerYear: 2, Notice: 14 * 24 * time.Hour, OnSite: true},
		CustomerApprovalCategories:  []commonv1.ChangeCategory{commonv1.ChangeCategory_CHANGE_CATEGORY_SERVICE_SCOPE},
		MaintenanceWindows:          []domain.MaintenanceWindow{{Weekday: 6, Start: "22:00", Duration: 4 * time.Hour, TimeZone: "Europe/Berlin"}},
		EmergencyChangeReviewWithin: 48 * time.Hour,
	}
}

func req(rid string) domain.Requirement {
	return domain.Requirement{ID: rid, StandardReference: "ISO27001:2022 A.5.20", Text: "encrypt " + rid}
}

func contact(org domain.OrgID, role, name string) domain.Contact {
	return domain.Contact{Org: org, Role: role, Name: name, Email: name + "@example.com"}
}

func sub(name string) domain.Subcontractor {
	return domain.Subcontractor{Name: name, Service: "hosting", Rank: 1}
}

// events, built by hand (not with the domain's mapping) where it matters

func drafted() *contractsv1.ContractDrafted {
	return &contractsv1.ContractDrafted{
		ContractId: string(id), CustomerOrgId: string(customer), ProviderOrgId: string(provider),
		Title: "Managed SOC", Reference: "REF-2026-1", ServicesInScope: []string{"soc", "siem"},
		CriticalFunction: true, TerminationNotice: durationpb.New(notice), TermsVersion: 1,
	}
}

func reqAdded(rid string, v int32) *contractsv1.RequirementAdded {
	return &contractsv1.RequirementAdded{
		ContractId: string(id), TermsVersion: v,
		Requirement: &contractsv1.Requirement{RequirementId: rid, StandardReference: "ISO27001:2022 A.5.20", Text: "encrypt " + rid},
	}
}

func contactAssigned(org domain.OrgID, role, name string, v int32) *contractsv1.ContactAssigned {
	return &contractsv1.ContactAssigned{
		ContractId: string(id), TermsVersion: v,
		Contact: &contractsv1.Contact{OrgId: string(org), Role: role, Name: name, Email: name + "@example.com"},
	}
}

func subAdded(name string, v int32) *contractsv1.SubcontractorAdded {
	return &contractsv1.SubcontractorAdded{
		ContractId: string(id), TermsVersion: v,
		Subcontractor: &contractsv1.Subcontractor{Name: name, Service: "hosting", Rank: 1},
	}
}

func levelsSet(v int32) *contractsv1.ServiceLevelsSet {
	return &contractsv1.ServiceLevelsSet{
		ContractId: string(id), TermsVersion: v,
		ServiceLevels: &contractsv1.ServiceLevels{
			IncidentNotification: []*contractsv1.SeverityDeadline{
				{Severity: commonv1.Severity_SEVERITY_CRITICAL, Within: durationpb.New(time.Hour)},
				{Severity: commonv1.Severity_SEVERITY_HIGH, Within: durationpb.New(4 * time.Hour)},
			},
			PatchDeadlines: []*contractsv1.SeverityDeadline{
				{Severity: commonv1.Severity_SEVERITY_CRITICAL, Within: durationpb.New(72 * time.Hour)},
			},
			ReportCadence:              contractsv1.ReportCadence_REPORT_CADENCE_MONTHLY,
			AuditRights:                &contractsv1.AuditRights{PerYear: 2, Notice: durationpb.New(14 * 24 * time.Hour), OnSite: true},
			CustomerApprovalCategories: []commonv1.ChangeCategory{commonv1.ChangeCategory_CHANGE_CATEGORY_SERVICE_SCOPE},
			MaintenanceWindows: []*contractsv1.MaintenanceWindow{
				{Weekday: 6, Start: "22:00", Duration: durationpb.New(4 * time.Hour), TimeZone: "Europe/Berlin"},
			},
			EmergencyChangeReviewWithin: durationpb.New(48 * time.Hour),
		},
	}
}

func signed(org domain.OrgID, v int32, activates bool, at time.Time) *contractsv1.ContractSigned {
	return &contractsv1.ContractSigned{
		ContractId: string(id), OrgId: string(org), TermsVersion: v, Activates: activates,
		SignedAt: timestamppb.New(at), SignedByUser: userOf(org),
	}
}

func advanced(from, to contractsv1.Phase) *contractsv1.PhaseAdvanced {
	return &contractsv1.PhaseAdvanced{ContractId: string(id), From: from, To: to}
}

func terminated(org domain.OrgID, effective, at time.Time) *contractsv1.ContractTerminated {
	return &contractsv1.ContractTerminated{
		ContractId: string(id), OrgId: string(org), Reason: "exit",
		EffectiveDate: timestamppb.New(effective), TerminatedAt: timestamppb.New(at),
	}
}

const (
	explore = contractsv1.Phase_PHASE_EXPLORE
	offer   = contractsv1.Phase_PHASE_OFFER
	decide  = contractsv1.Phase_PHASE_DECIDE
	migrate = contractsv1.Phase_PHASE_MIGRATE
	operate = contractsv1.Phase_PHASE_OPERATE
)

// histories
var (
	active = []proto.Message{ // v1 in force, phase decide
		drafted(), advanced(explore, offer), advanced(offer, decide),
		signed(customer, 1, false, t0), signed(provider, 1, true, t1),
	}
	operating = append(clip(active), advanced(decide, migrate), advanced(migrate, operate))
	ended     = append(clip(active), terminated(customer, t0.Add(notice), t0))
)

func clip(es []proto.Message) []proto.Message { return es[:len(es):len(es)] }

func with(base []proto.Message, more ...proto.Message) []proto.Message {
	return append(clip(base), more...)
}

// ---- given / when / then ----------------------------------------------------

type spec struct {
	name  string
	given []proto.Message
	when  domain.Command
	then  []proto.Message // expected events, when err is nil
	err   error           // expected error (errors.Is)
	field string          // expected ValidationError.Field, when err is ErrInvalid
	state func(t *testing.T, s domain.State)
}

func (c spec) run(t *testing.T) {
	t.Helper()
	var s domain.State
	for _, e := range c.given {
		s = domain.Evolve(s, e)
	}
	before := snapshot(t, s)

	got, err := domain.Decide(s, c.when)

	if c.err != nil {
		if !errors.Is(err, c.err) {
			t.Fatalf("error = %v, want %v", err, c.err)
		}
		if c.field != "" {
			var ve domain.ValidationError
			if !errors.As(err, &ve) || ve.Field != c.field {
				t.Fatalf("error = %v, want a validation error of field %q", err, c.field)
			}
		}
		if got != nil {
			t.Fatalf("events = %v alongside error %v", got, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if len(got) != len(c.then) {
		t.Fatalf("got %d events, want %d:\n%s", len(got), len(c.then), text(got))
	}
	for i := range got {
		if !proto.Equal(got[i], c.then[i]) {
			t.Fatalf("event %d:\n got %s\nwant %s", i, text(got[i:i+1]), text(c.then[i:i+1]))
		}
	}

	after := s
	for _, e := range got {
		after = domain.Evolve(after, e)
	}
	if snapshot(t, s) != before {
		t.Fatalf("decide or evolve changed the earlier state:\nbefore %s\nafter  %s", before, snapshot(t, s))
	}
	// The events as they come back from the store must evolve alike.
	fromWire := s
	for _, e := range got {
		fromWire = domain.Evolve(fromWire, wire(t, e))
	}
	if !reflect.DeepEqual(after, fromWire) {
		t.Fatalf("state from decoded events differs:\n%+v\n%+v", after, fromWire)
	}
	if c.state != nil {
		c.state(t, after)
	}
}

func wire(t *testing.T, e proto.Message) proto.Message {
	t.Helper()
	b, err := proto.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	m := e.ProtoReflect().New().Interface()
	if err := proto.Unmarshal(b, m); err != nil {
		t.Fatal(err)
	}
	return m
}

func snapshot(t *testing.T, s domain.State) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func text(es []proto.Message) string {
	var out string
	for _, e := range es {
		out += string(e.ProtoReflect().Descriptor().Name()) + "{" + prototext.MarshalOptions{}.Format(e) + "}\n"
	}
	return out
}

func runAll(t *testing.T, specs []spec) {
	t.Helper()
	for _, c := range specs {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t)
		})
	}
}

// ---- specs ------------------------------------------------------------------

func TestDraftContract(t *testing.T) {
	t.Parallel()
	noTitle := draft(byCustomer)
	noTitle.Title = "  "
	sameParties := draft(byCustomer)
	sameParties.Provider = customer
	negNotice := draft(byCustomer)
	negNotice.TerminationNotice = -time.Hour
	noID := draft(byCustomer)
	noID.ContractID = ""
	dupService := draft(byCustomer)
	dupService.ServicesInScope = []string{"soc", "soc"}
	noServices := draft(byProvider)
	noServices.ServicesInScope = []string{}
	noServices.TerminationNotice = 0
	bare := drafted()
	bare.ServicesInScope = nil
	bare.TerminationNotice = durationpb.New(0)

	runAll(t, []spec{
		{
			name: "customer drafts", when: draft(byCustomer), then: []proto.Message{drafted()},
			state: func(t *testing.T, s domain.State) {
				if !s.Exists() || s.ID != id || s.Phase != explore || s.Current.Version != 1 ||
					s.Current.Terms.Title != "Managed SOC" || s.Current.Terms.TerminationNotice != notice ||
					s.Status() != contractsv1.ContractStatus_CONTRACT_STATUS_DRAFT || s.InForce != nil {
					t.Fatalf("state = %+v", s)
				}
			},
		},
		{name: "provider drafts", when: draft(byProvider), then: []proto.Message{drafted()}},
		{name: "pointer command", when: ptr(draft(byProvider)), then: []proto.Message{drafted()}},
		{name: "without services or notice", when: noServices, then: []proto.Message{bare}},
		{name: "existing id", given: []proto.Message{drafted()}, when: draft(byCustomer), err: domain.ErrAlreadyExists},
		{name: "outsider", when: draft(byOutsider), err: domain.ErrNotParty},
		{name: "customer is provider", when: sameParties, err: domain.ErrInvalid, field: "provider"},
		{name: "empty title", when: noTitle, err: domain.ErrInvalid, field: "title"},
		{name: "negative notice", when: negNotice, err: domain.ErrInvalid, field: "termination_notice"},
		{name: "empty id", when: noID, err: domain.ErrInvalid, field: "contract_id"},
		{name: "duplicate service", when: dupService, err: domain.ErrInvalid, field: "services_in_scope[1]"},
	})
}

func TestCommandsNeedAnExistingContractAndAParty(t *testing.T) {
	t.Parallel()
	cmds := map[string]func(domain.Actor) domain.Command{
		"add requirement": func(a domain.Actor) domain.Command { return domain.AddRequirement{Actor: a, Requirement: req("R1")} },
		"assign contact": func(a domain.Actor) domain.Command {
			return domain.AssignContact{Actor: a, Contact: contact(customer, "ciso", "x")}
		},
		"add subcontractor":  func(a domain.Actor) domain.Command { return domain.AddSubcontractor{Actor: a, Subcontractor: sub("s")} },
		"set service levels": func(a domain.Actor) domain.Command { return domain.SetServiceLevels{Actor: a, Levels: levels()} },
		"sign":               func(a domain.Actor) domain.Command { return domain.SignContract{Actor: a, At: t0} },
		"advance phase":      func(a domain.Actor) domain.Command { return domain.AdvancePhase{Actor: a, To: offer} },
		"terminate": func(a domain.Actor) domain.Command {
			return domain.TerminateContract{Actor: a, Reason: "exit", At: t0, EffectiveDate: t0.Add(notice)}
		},
	}
	var specs []spec
	for name, cmd := range cmds {
		specs = append(specs,
			spec{name: name + " on a missing contract", when: cmd(byCustomer), err: domain.NotFoundError{}},
			spec{name: name + " by an outsider", given: []proto.Message{drafted()}, when: cmd(byOutsider), err: domain.ErrNotParty},
			spec{name: name + " after termination", given: ended, when: cmd(byProvider), err: domain.ErrTerminated},
		)
	}
	specs = append(specs,
		spec{name: "nil command", given: []proto.Message{drafted()}, when: nil, err: domain.ErrInvalid, field: "command"},
		spec{name: "nil pointer command", given: []proto.Message{drafted()}, when: (*domain.SignContract)(nil), err: domain.ErrInvalid},
	)
	runAll(t, specs)
}

func TestAddRequirement(t *testing.T) {
	t.Parallel()
	runAll(t, []spec{
		{
			name: "amends the unsigned draft", given: []proto.Message{drafted()},
			when: domain.AddRequirement{Actor: byCustomer, Requirement: req("R1")},
			then: []proto.Message{reqAdded("R1", 1)},
			state: func(t *testing.T, s domain.State) {
				if s.Current.Version != 1 || len(s.Current.Terms.Requirements) != 1 || s.Current.Terms.Requirements[0] != req("R1") {
					t.Fatalf("current = %+v", s.Current)
				}
			},
		},
		{
			name: "by the provider", given: []proto.Message{drafted(), reqAdded("R1", 1)},
			when: ptr(domain.AddRequirement{Actor: byProvider, Requirement: req("R2")}),
			then: []proto.Message{reqAdded("R2", 1)},
		},
		{
			name: "voids a one-sided signature by starting version 2", given: []proto.Message{drafted(), reqAdded("R1", 1), signed(customer, 1, false, t0)},
			when: domain.AddRequirement{Actor: byProvider, Requirement: req("R2")},
			then: []proto.Message{reqAdded("R2", 2)},
			state: func(t *testing.T, s domain.State) {
				if s.Current.Version != 2 || len(s.Current.Signatures) != 0 || len(s.Current.Terms.Requirements) != 2 || s.InForce != nil {
					t.Fatalf("state = %+v", s)
				}
			},
		},
		{
			name: "after activation starts version 2, version 1 stays in force", given: active,
			when: domain.AddRequirement{Actor: byCustomer, Requirement: req("R2")},
			then: []proto.Message{reqAdded("R2", 2)},
			state: func(t *testing.T, s domain.State) {
				if s.Current.Version != 2 || len(s.Current.Signatures) != 0 || len(s.Current.Terms.Requirements) != 1 {
					t.Fatalf("current = %+v", s.Current)
				}
				if s.InForce == nil || s.InForce.Version != 1 || len(s.InForce.Signatures) != 2 || len(s.InForce.Terms.Requirements) != 0 {
					t.Fatalf("in force = %+v", s.InForce)
				}
				if s.Status() != contractsv1.ContractStatus_CONTRACT_STATUS_ACTIVE {
					t.Fatalf("status = %s", s.Status())
				}
			},
		},
		{
			name: "on an unsigned version 2 amends it", given: with(active, reqAdded("R2", 2)),
			when: domain.AddRequirement{Actor: byCustomer, Requirement: req("R3")},
			then: []proto.Message{reqAdded("R3", 2)},
		},
		{
			name: "duplicate id", given: []proto.Message{drafted(), reqAdded("R1", 1)},
			when: domain.AddRequirement{Actor: byCustomer, Requirement: req("R1")},
			err:  domain.ErrInvalid, field: "requirement.id",
		},
		{
			name: "empty id", given: []proto.Message{drafted()},
			when: domain.AddRequirement{Actor: byCustomer, Requirement: domain.Requirement{Text: "x"}},
			err:  domain.ErrInvalid, field: "requirement.id",
		},
		{
			name: "empty text", given: []proto.Message{drafted()},
			when: domain.AddRequirement{Actor: byCustomer, Requirement: domain.Requirement{ID: "R1"}},
			err:  domain.ErrInvalid, field: "requirement.text",
		},
	})
}

func ptr[T any](v T) *T { return &v }

func TestAssignContact(t *testing.T) {
	t.Parallel()
	runAll(t, []spec{
		{
			name: "customer names its ciso", given: []proto.Message{drafted()},
			when: domain.AssignContact{Actor: byCustomer, Contact: contact(customer, "ciso", "ada")},
			then: []proto.Message{contactAssigned(customer, "ciso", "ada", 1)},
		},
		{
			name: "a party may name the other party's contact", given: []proto.Message{drafted()},
			when: domain.AssignContact{Actor: byCustomer, Contact: contact(provider, "incident-management", "bea")},
			then: []proto.Message{contactAssigned(provider, "incident-management", "bea", 1)},
		},
		{
			name: "same org and role replaces the contact",
			given: []proto.Message{
				drafted(), contactAssigned(customer, "ciso", "ada", 1),
				contactAssigned(provider, "ciso", "bea", 1), contactAssigned(customer, "help-desk", "cem", 1),
			},
			when: domain.AssignContact{Actor: byCustomer, Contact: contact(customer, "ciso", "dan")},
			then: []proto.Message{contactAssigned(customer, "ciso", "dan", 1)},
			state: func(t *testing.T, s domain.State) {
				want := []domain.Contact{contact(customer, "ciso", "dan"), contact(provider, "ciso", "bea"), contact(customer, "help-desk", "cem")}
				if !reflect.DeepEqual(s.Current.Terms.Contacts, want) {
					t.Fatalf("contacts = %+v", s.Current.Terms.Contacts)
				}
			},
		},
		{
			name: "after activation starts version 2", given: active,
			when: domain.AssignContact{Actor: byProvider, Contact: contact(provider, "ciso", "bea")},
			then: []proto.Message{contactAssigned(provider, "ciso", "bea", 2)},
		},
		{
			name: "contact of an outsider org", given: []proto.Message{drafted()},
			when: domain.AssignContact{Actor: byCustomer, Contact: contact(outsider, "ciso", "eve")},
			err:  domain.ErrInvalid, field: "contact.org",
		},
		{
			name: "empty role", given: []proto.Message{drafted()},
			when: domain.AssignContact{Actor: byCustomer, Contact: contact(customer, "", "ada")},
			err:  domain.ErrInvalid, field: "contact.role",
		},
		{
			name: "empty name", given: []proto.Message{drafted()},
			when: domain.AssignContact{Actor: byCustomer, Contact: domain.Contact{Org: customer, Role: "ciso"}},
			err:  domain.ErrInvalid, field: "contact.name",
		},
	})
}

func TestAddSubcontractor(t *testing.T) {
	t.Parallel()
	runAll(t, []spec{
		{
			name: "provider adds its supplier", given: []proto.Message{drafted()},
			when: domain.AddSubcontractor{Actor: byProvider, Subcontractor: sub("hoster")},
			then: []proto.Message{subAdded("hoster", 1)},
			state: func(t *testing.T, s domain.State) {
				if !reflect.DeepEqual(s.Current.Terms.Subcontractors, []domain.Subcontractor{sub("hoster")}) {
					t.Fatalf("subcontractors = %+v", s.Current.Terms.Subcontractors)
				}
			},
		},
		{
			name: "after activation starts version 2", given: active,
			when: domain.AddSubcontractor{Actor: byProvider, Subcontractor: sub("hoster")},
			then: []proto.Message{subAdded("hoster", 2)},
		},
		{
			name: "customer may not", given: []proto.Message{drafted()},
			when: domain.AddSubcontractor{Actor: byCustomer, Subcontractor: sub("hoster")},
			err:  domain.ErrWrongParty,
		},
		{
			name: "rank below 1", given: []proto.Message{drafted()},
			when: domain.AddSubcontractor{Actor: byProvider, Subcontractor: domain.Subcontractor{Name: "x", Service: "y"}},
			err:  domain.ErrInvalid, field: "subcontractor.rank",
		},
		{
			name: "empty name", given: []proto.Message{drafted()},
			when: domain.AddSubcontractor{Actor: byProvider, Subcontractor: domain.Subcontractor{Service: "y", Rank: 1}},
			err:  domain.ErrInvalid, field: "subcontractor.name",
		},
		{
			name: "duplicate", given: []proto.Message{drafted(), subAdded("hoster", 1)},
			when: domain.AddSubcontractor{Actor: byProvider, Subcontractor: sub("hoster")},
			err:  domain.ErrInvalid, field: "subcontractor",
		},
	})
}

func TestSetServiceLevels(t *testing.T) {
	t.Parallel()
	mutate := func(f func(*domain.ServiceLevels)) domain.SetServiceLevels {
		l := levels()
		f(&l)
		return domain.SetServiceLevels{Actor: byCustomer, Levels: l}
	}
	smaller := domain.ServiceLevels{
		IncidentNotification: []domain.SeverityDeadline{{Severity: commonv1.Severity_SEVERITY_LOW, Within: 24 * time.Hour}},
	}
	runAll(t, []spec{
		{
			name: "customer sets them", given: []proto.Message{drafted()},
			when: domain.SetServiceLevels{Actor: byCustomer, Levels: levels()},
			then: []proto.Message{levelsSet(1)},
			state: func(t *testing.T, s domain.State) {
				if !reflect.DeepEqual(s.Current.Terms.Levels, levels()) {
					t.Fatalf("levels = %+v", s.Current.Terms.Levels)
				}
				if d, ok := s.Current.Terms.Levels.IncidentNotificationWithin(commonv1.Severity_SEVERITY_HIGH); !ok || d != 4*time.Hour {
					t.Fatalf("incident notification for high = %s, %v", d, ok)
				}
			},
		},
		{
			name: "replace the whole set", given: []proto.Message{drafted(), levelsSet(1)},
			when: domain.SetServiceLevels{Actor: byProvider, Levels: smaller},
			then: []proto.Message{&contractsv1.ServiceLevelsSet{ContractId: string(id), TermsVersion: 1, ServiceLevels: domain.LevelsToProto(smaller)}},
			state: func(t *testing.T, s domain.State) {
				if !reflect.DeepEqual(s.Current.Terms.Levels, smaller) {
					t.Fatalf("levels = %+v", s.Current.Terms.Levels)
				}
			},
		},
		{
			name: "after a signature starts a new version", given: []proto.Message{drafted(), levelsSet(1), signed(provider, 1, false, t0)},
			when: domain.SetServiceLevels{Actor: byCustomer, Levels: levels()},
			then: []proto.Message{levelsSet(2)},
		},
		{
			name: "duplicate severity in incident notification", given: []proto.Message{drafted()},
			when: mutate(func(l *domain.ServiceLevels) {
				l.IncidentNotification = append(l.IncidentNotification, domain.SeverityDeadline{Severity: commonv1.Severity_SEVERITY_CRITICAL, Within: 2 * time.Hour})
			}),
			err: domain.ErrInvalid, field: "service_levels.incident_notification[2].severity",
		},
		{
			name: "duplicate severity in patch deadlines", given: []proto.Message{drafted()},
			when: mutate(func(l *domain.ServiceLevels) {
				l.PatchDeadlines = append(l.PatchDeadlines, domain.SeverityDeadline{Severity: commonv1.Severity_SEVERITY_CRITICAL, Within: time.Hour})
			}),
			err: domain.ErrInvalid, field: "service_levels.patch_deadlines[1].severity",
		},
		{
			name: "zero deadline", given: []proto.Message{drafted()},
			when: mutate(func(l *domain.ServiceLevels) { l.PatchDeadlines[0].Within = 0 }),
			err:  domain.ErrInvalid, field: "service_levels.patch_deadlines[0].within",
		},
		{
			name: "unspecified severity", given: []proto.Message{drafted()},
			when: mutate(func(l *domain.ServiceLevels) {
				l.IncidentNotification[1].Severity = commonv1.Severity_SEVERITY_UNSPECIFIED
			}),
			err: domain.ErrInvalid, field: "service_levels.incident_notification[1].severity",
		},
		{
			name: "maintenance window of no duration", given: []proto.Message{drafted()},
			when: mutate(func(l *domain.ServiceLevels) { l.MaintenanceWindows[0].Duration = 0 }),
			err:  domain.ErrInvalid, field: "service_levels.maintenance_windows[0].duration",
		},
		{
			name: "maintenance window start not hh:mm", given: []proto.Message{drafted()},
			when: mutate(func(l *domain.ServiceLevels) { l.MaintenanceWindows[0].Start = "7:00" }),
			err:  domain.ErrInvalid, field: "service_levels.maintenance_windows[0].start",
		},
		{
			name: "maintenance window weekday 0", given: []proto.Message{drafted()},
			when: mutate(func(l *domain.ServiceLevels) { l.MaintenanceWindows[0].Weekday = 0 }),
			err:  domain.ErrInvalid, field: "service_levels.maintenance_windows[0].weekday",
		},
		{
			name: "duplicate approval category", given: []proto.Message{drafted()},
			when: mutate(func(l *domain.ServiceLevels) {
				l.CustomerApprovalCategories = append(l.CustomerApprovalCategories, l.CustomerApprovalCategories[0])
			}),
			err: domain.ErrInvalid, field: "service_levels.customer_approval_categories[1]",
		},
		{
			name: "negative audit notice", given: []proto.Message{drafted()},
			when: mutate(func(l *domain.ServiceLevels) { l.AuditRights.Notice = -time.Hour }),
			err:  domain.ErrInvalid, field: "service_levels.audit_rights.notice",
		},
	})
}

func TestSignContract(t *testing.T) {
	t.Parallel()
	sign := func(by domain.Actor, v int32, at time.Time) domain.SignContract {
		return domain.SignContract{Actor: by, TermsVersion: v, At: at}
	}
	runAll(t, []spec{
		{
			name: "first signature does not activate", given: []proto.Message{drafted(), levelsSet(1)},
			when: sign(byCustomer, 0, t0),
			then: []proto.Message{signed(customer, 1, false, t0)},
			state: func(t *testing.T, s domain.State) {
				if s.InForce != nil || s.Status() != contractsv1.ContractStatus_CONTRACT_STATUS_DRAFT || !s.Current.SignedBy(customer) {
					t.Fatalf("state = %+v", s)
				}
			},
		},
		{
			name: "second signature of the same version activates", given: []proto.Message{drafted(), levelsSet(1), signed(customer, 1, false, t0)},
			when: sign(byProvider, 1, t1),
			then: []proto.Message{signed(provider, 1, true, t1)},
			state: func(t *testing.T, s domain.State) {
				if s.Status() != contractsv1.ContractStatus_CONTRACT_STATUS_ACTIVE || s.InForce == nil {
					t.Fatalf("state = %+v", s)
				}
				if !reflect.DeepEqual(*s.InForce, s.Current) || s.InForce.Version != 1 || len(s.InForce.Signatures) != 2 {
					t.Fatalf("in force = %+v, current = %+v", s.InForce, s.Current)
				}
				want := domain.Signature{Org: provider, User: "bob", SignedAt: t1}
				if s.InForce.Signatures[1] != want {
					t.Fatalf("signature = %+v, want %+v", s.InForce.Signatures[1], want)
				}
				if s.Phase != explore {
					t.Fatalf("signing moved the phase to %s", s.Phase)
				}
			},
		},
		{
			name: "a signature voided by a change does not count", given: []proto.Message{drafted(), signed(customer, 1, false, t0), reqAdded("R1", 2)},
			when: sign(byProvider, 0, t1),
			then: []proto.Message{signed(provider, 2, false, t1)},
			state: func(t *testing.T, s domain.State) {
				if s.InForce != nil {
					t.Fatalf("in force = %+v", s.InForce)
				}
			},
		},
		{
			name:  "signing version 2 by both replaces the version in force",
			given: with(active, reqAdded("R1", 2), signed(provider, 2, false, t2)),
			when:  sign(byCustomer, 2, t2),
			then:  []proto.Message{signed(customer, 2, true, t2)},
			state: func(t *testing.T, s domain.State) {
				if s.InForce == nil || s.InForce.Version != 2 || len(s.InForce.Terms.Requirements) != 1 || len(s.InForce.Signatures) != 2 {
					t.Fatalf("in force = %+v", s.InForce)
				}
			},
		},
		{
			name: "version 1 after version 2 started", given: with(active, reqAdded("R1", 2)),
			when: sign(byCustomer, 1, t2), err: domain.ErrVersionMismatch,
		},
		{
			name: "a future version", given: []proto.Message{drafted()},
			when: sign(byCustomer, 2, t2), err: domain.ErrVersionMismatch,
		},
		{
			name: "twice by the same org", given: []proto.Message{drafted(), signed(customer, 1, false, t0)},
			when: sign(domain.Actor{Org: customer, User: "carol"}, 0, t1), err: domain.ErrAlreadySigned,
		},
		{
			name: "a version already in force", given: active,
			when: sign(byProvider, 0, t2), err: domain.ErrAlreadySigned,
		},
		{
			name: "without time", given: []proto.Message{drafted()},
			when: sign(byProvider, 0, time.Time{}), err: domain.ErrInvalid, field: "at",
		},
	})
}

func TestAdvancePhase(t *testing.T) {
	t.Parallel()
	to := func(by domain.Actor, p contractsv1.Phase) domain.AdvancePhase {
		return domain.AdvancePhase{Actor: by, To: p}
	}
	draftAtDecide := []proto.Message{drafted(), advanced(explore, offer), advanced(offer, decide)}
	runAll(t, []spec{
		{
			name: "explore to offer", given: []proto.Message{drafted()},
			when: to(byCustomer, offer), then: []proto.Message{advanced(explore, offer)},
			state: func(t *testing.T, s domain.State) {
				if s.Phase != offer {
					t.Fatalf("phase = %s", s.Phase)
				}
			},
		},
		{
			name: "offer to decide", given: []proto.Message{drafted(), advanced(explore, offer)},
			when: to(byProvider, decide), then: []proto.Message{advanced(offer, decide)},
		},
		{name: "decide to migrate when active", given: active, when: to(byProvider, migrate), then: []proto.Message{advanced(decide, migrate)}},
		{
			name: "migrate to operate", given: with(active, advanced(decide, migrate)),
			when: to(byCustomer, operate), then: []proto.Message{advanced(migrate, operate)},
		},
		{
			name: "migrate and operate stay open while version 2 is unsigned", given: with(active, reqAdded("R1", 2)),
			when: to(byCustomer, migrate), then: []proto.Message{advanced(decide, migrate)},
		},
		{name: "decide to migrate without terms in force", given: draftAtDecide, when: to(byCustomer, migrate), err: domain.ErrWrongPhase},
		{
			name: "decide to migrate with one signature", given: with(draftAtDecide, signed(customer, 1, false, t0)),
			when: to(byCustomer, migrate), err: domain.ErrWrongPhase,
		},
		{name: "skipping a phase", given: []proto.Message{drafted()}, when: to(byCustomer, decide), err: domain.ErrWrongPhase},
		{name: "backwards", given: []proto.Message{drafted(), advanced(explore, offer)}, when: to(byCustomer, explore), err: domain.ErrWrongPhase},
		{name: "staying", given: []proto.Message{drafted()}, when: to(byCustomer, explore), err: domain.ErrWrongPhase},
		{name: "to terminated", given: operating, when: to(byCustomer, contractsv1.Phase_PHASE_TERMINATED), err: domain.ErrWrongPhase},
		{name: "beyond operate", given: operating, when: to(byCustomer, contractsv1.Phase(7)), err: domain.ErrWrongPhase},
		{name: "unspecified", given: []proto.Message{drafted()}, when: to(byCustomer, contractsv1.Phase_PHASE_UNSPECIFIED), err: domain.ErrWrongPhase},
	})
}

func TestTerminateContract(t *testing.T) {
	t.Parallel()
	terminate := func(by domain.Actor, effective, at time.Time) domain.TerminateContract {
		return domain.TerminateContract{Actor: by, Reason: "exit", EffectiveDate: effective, At: at}
	}
	shortNotice := drafted()
	shortNotice.TerminationNotice = nil
	runAll(t, []spec{
		{
			name: "customer terminates with exactly the notice", given: operating,
			when: terminate(byCustomer, t0.Add(notice), t0),
			then: []proto.Message{terminated(customer, t0.Add(notice), t0)},
			state: func(t *testing.T, s domain.State) {
				want := domain.Termination{Org: customer, Reason: "exit", EffectiveDate: t0.Add(notice), TerminatedAt: t0}
				if s.Phase != contractsv1.Phase_PHASE_TERMINATED || s.Status() != contractsv1.ContractStatus_CONTRACT_STATUS_TERMINATED ||
					s.Termination == nil || *s.Termination != want {
					t.Fatalf("state = %+v, termination = %+v", s, s.Termination)
				}
			},
		},
		{
			name: "provider abandons a draft", given: []proto.Message{drafted()},
			when: terminate(byProvider, t0.Add(notice+time.Hour), t0),
			then: []proto.Message{terminated(provider, t0.Add(notice+time.Hour), t0)},
		},
		{
			name: "no notice agreed: effective at once", given: []proto.Message{shortNotice},
			when: terminate(byProvider, t0, t0),
			then: []proto.Message{terminated(provider, t0, t0)},
		},
		{
			name: "within the notice period", given: operating,
			when: terminate(byCustomer, t0.Add(notice-time.Second), t0), err: domain.ErrNoticePeriod,
		},
		{
			name: "effective date in the past", given: operating,
			when: terminate(byCustomer, t0.Add(-time.Hour), t0), err: domain.ErrNoticePeriod,
		},
		{name: "twice", given: ended, when: terminate(byProvider, t2.Add(notice), t2), err: domain.ErrTerminated},
		{
			name: "without reason", given: operating,
			when: domain.TerminateContract{Actor: byCustomer, EffectiveDate: t0.Add(notice), At: t0},
			err:  domain.ErrInvalid, field: "reason",
		},
		{
			name: "without time", given: operating,
			when: terminate(byCustomer, t0.Add(notice), time.Time{}), err: domain.ErrInvalid, field: "at",
		},
	})
}

// ---- evolve, state and errors -------------------------------------------------

func TestEvolveIgnoresUnknownEvents(t *testing.T) {
	t.Parallel()
	s := fold(active...)
	for _, e := range []proto.Message{nil, durationpb.New(time.Hour), (*contractsv1.ContractSigned)(nil), &contractsv1.RequirementAdded{}} {
		if got := domain.EvolveAt(s, e, t2); !reflect.DeepEqual(got, s) {
			t.Fatalf("%T changed the state:\n%+v\n%+v", e, got, s)
		}
	}
}

func TestEvolveAtTimestamps(t *testing.T) {
	t.Parallel()
	berlin := time.FixedZone("CET", 3600)
	s := domain.EvolveAt(domain.State{}, drafted(), t0.In(berlin))
	s = domain.EvolveAt(s, reqAdded("R1", 1), t1)
	s = domain.Evolve(s, reqAdded("R2", 1))
	if !s.CreatedAt.Equal(t0) || s.CreatedAt.Location() != time.UTC || s.UpdatedAt != t1 {
		t.Fatalf("created %v, updated %v", s.CreatedAt, s.UpdatedAt)
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		given []proto.Message
		want  contractsv1.ContractStatus
	}{
		{nil, contractsv1.ContractStatus_CONTRACT_STATUS_UNSPECIFIED},
		{[]proto.Message{drafted()}, contractsv1.ContractStatus_CONTRACT_STATUS_DRAFT},
		{active, contractsv1.ContractStatus_CONTRACT_STATUS_ACTIVE},
		{with(active, reqAdded("R1", 2)), contractsv1.ContractStatus_CONTRACT_STATUS_ACTIVE},
		{ended, contractsv1.ContractStatus_CONTRACT_STATUS_TERMINATED},
	} {
		if got := fold(c.given...).Status(); got != c.want {
			t.Errorf("status after %d events = %s, want %s", len(c.given), got, c.want)
		}
	}
}

func TestIsParty(t *testing.T) {
	t.Parallel()
	s := fold(drafted())
	if !s.IsParty(customer) || !s.IsParty(provider) || s.IsParty(outsider) || s.IsParty("") {
		t.Fatal("IsParty is wrong")
	}
	if domain.ActorOf(domain.SignContract{Actor: byProvider}) != byProvider || domain.ActorOf(nil) != (domain.Actor{}) {
		t.Fatal("ActorOf is wrong")
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	err := error(domain.NotFoundError{ID: id})
	if !errors.Is(err, domain.NotFoundError{}) || !errors.Is(err, domain.NotFoundError{ID: id}) || errors.Is(err, domain.NotFoundError{ID: "other"}) {
		t.Fatal("NotFoundError does not match as documented")
	}
	if err.Error() != "contract c-1 not found" {
		t.Fatalf("message = %q", err)
	}
	var ve domain.ValidationError
	_, err = domain.Decide(fold(drafted()), domain.AddRequirement{Actor: byCustomer, Requirement: domain.Requirement{ID: "R1"}})
	if !errors.As(err, &ve) || !errors.Is(err, domain.ErrInvalid) || errors.Is(err, domain.ErrNotParty) {
		t.Fatalf("error = %v", err)
	}
	if err.Error() != "invalid requirement.text: must not be empty" {
		t.Fatalf("message = %q", err)
	}
}

// TestStateJSONRoundTrip: the state after a full lifecycle survives the JSON
// snapshot unchanged.
func TestStateJSONRoundTrip(t *testing.T) {
	t.Parallel()
	history := with(operating,
		contactAssigned(customer, "ciso", "ada", 2), contactAssigned(provider, "ciso", "bea", 2),
		subAdded("hoster", 2), levelsSet(2), reqAdded("R1", 2),
		signed(provider, 2, false, t2), signed(customer, 2, true, t2.Add(time.Minute)),
		reqAdded("R2", 3),
		terminated(provider, t2.Add(2*notice), t2.Add(time.Hour)),
	)
	var s domain.State
	for i, e := range history {
		s = domain.EvolveAt(s, e, t0.Add(time.Duration(i)*time.Minute))
	}
	if s.InForce == nil || s.InForce.Version != 2 || s.Current.Version != 3 || s.Termination == nil {
		t.Fatalf("unexpected state %+v", s)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back domain.State
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, s) {
		t.Fatalf("round trip changed the state:\n%+v\n%+v", s, back)
	}
	b2, err := json.Marshal(back)
	if err != nil {
		t.Fatal(err)
	}
	if string(b2) != string(b) {
		t.Fatalf("json differs:\n%s\n%s", b, b2)
	}
	// An empty state round-trips too.
	var empty domain.State
	if err := json.Unmarshal([]byte(snapshot(t, domain.State{})), &empty); err != nil || !reflect.DeepEqual(empty, domain.State{}) {
		t.Fatalf("empty state: %+v, %v", empty, err)
	}
}

func TestStateJSONStoresTermsInForceOnce(t *testing.T) {
	var s domain.State
	for i, e := range with(operating, reqAdded("R1", 2), signed(provider, 2, false, t2), signed(customer, 2, true, t2)) {
		s = domain.EvolveAt(s, e, t0.Add(time.Duration(i)*time.Minute))
	}
	if s.InForce == nil || s.InForce.Version != s.Current.Version {
		t.Fatalf("want the current version in force: %+v", s)
	}
	b := snapshot(t, s)
	if strings.Contains(b, `"in_force":`) || !strings.Contains(b, `"in_force_is_current":true`) {
		t.Fatalf("terms in force stored twice: %s", b)
	}
	var back domain.State
	if err := json.Unmarshal([]byte(b), &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, s) {
		t.Fatalf("round trip changed the state:\n%+v\n%+v", s, back)
	}
	// The copy is the state's own: changing it leaves the current terms alone.
	back.InForce.Terms.Requirements[0].Text = "changed"
	if back.Current.Terms.Requirements[0].Text == "changed" {
		t.Fatal("in force and current share their requirements")
	}
}

func TestMappingRoundTrip(t *testing.T) {
	t.Parallel()
	if got := domain.LevelsFromProto(domain.LevelsToProto(levels())); !reflect.DeepEqual(got, levels()) {
		t.Fatalf("levels: %+v", got)
	}
	if got := domain.LevelsFromProto(nil); !reflect.DeepEqual(got, domain.ServiceLevels{}) {
		t.Fatalf("nil levels: %+v", got)
	}
	if got := domain.ContactFromProto(domain.ContactToProto(contact(customer, "ciso", "ada"))); got != contact(customer, "ciso", "ada") {
		t.Fatalf("contact: %+v", got)
	}
	if got := domain.RequirementFromProto(domain.RequirementToProto(req("R1"))); got != req("R1") {
		t.Fatalf("requirement: %+v", got)
	}
	if got := domain.SubcontractorFromProto(domain.SubcontractorToProto(sub("s"))); got != sub("s") {
		t.Fatalf("subcontractor: %+v", got)
	}
}

// The read model stores a contract as its API message, and folds further
// events onto the state it gives back: the round trip must lose nothing.
func TestContractMessageRoundTrip(t *testing.T) {
	t.Parallel()
	history := with(operating,
		contactAssigned(customer, "ciso", "ada", 2), subAdded("hoster", 2), levelsSet(2), reqAdded("R1", 2),
		signed(provider, 2, false, t2), signed(customer, 2, true, t2.Add(time.Minute)),
		reqAdded("R2", 3), signed(provider, 3, false, t2.Add(2*time.Minute)),
		terminated(provider, t2.Add(2*notice), t2.Add(time.Hour)),
	)
	for n := range len(history) + 1 {
		var s domain.State
		for i, e := range history[:n] {
			s = domain.EvolveAt(s, e, t0.Add(time.Duration(i)*time.Minute))
		}
		b, err := proto.Marshal(domain.ContractToProto(s, 42))
		if err != nil {
			t.Fatal(err)
		}
		var m contractsv1.Contract
		if err := proto.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if got := domain.ContractFromProto(&m); !reflect.DeepEqual(got, s) {
			t.Fatalf("after %d events the round trip changed the state:\n%+v\n%+v", n, s, got)
		}
		if m.GetPosition() != 42 {
			t.Fatalf("position %d, want 42", m.GetPosition())
		}
	}
}

func fold(es ...proto.Message) domain.State {
	var s domain.State
	for _, e := range es {
		s = domain.Evolve(s, e)
	}
	return s
}
