package domain_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
	incidentsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/incidents/v1"
	"github.com/jsmplatform/jsm/services/incidents/domain"
)

// ---- fixtures ---------------------------------------------------------------

const (
	incidentID = "inc-1"
	contractID = "con-1"
	title      = "Ransomware on the file server"

	customer domain.OrgID = "org-customer"
	provider domain.OrgID = "org-provider"
	outsider domain.OrgID = "org-outsider"

	critical = commonv1.Severity_SEVERITY_CRITICAL
	high     = commonv1.Severity_SEVERITY_HIGH
	medium   = commonv1.Severity_SEVERITY_MEDIUM
	low      = commonv1.Severity_SEVERITY_LOW

	nis2 = incidentsv1.Regime_REGIME_NIS2
	dora = incidentsv1.Regime_REGIME_DORA

	earlyWarning = incidentsv1.SubmissionKind_SUBMISSION_KIND_EARLY_WARNING
	notification = incidentsv1.SubmissionKind_SUBMISSION_KIND_NOTIFICATION
	initial      = incidentsv1.SubmissionKind_SUBMISSION_KIND_INITIAL
	intermediate = incidentsv1.SubmissionKind_SUBMISSION_KIND_INTERMEDIATE
	finalReport  = incidentsv1.SubmissionKind_SUBMISSION_KIND_FINAL_REPORT

	kindNotification = incidentsv1.ClockKind_CLOCK_KIND_PARTY_NOTIFICATION
	kindEarlyWarning = incidentsv1.ClockKind_CLOCK_KIND_NIS2_EARLY_WARNING
	kindNIS2Notice   = incidentsv1.ClockKind_CLOCK_KIND_NIS2_NOTIFICATION
	kindNIS2Final    = incidentsv1.ClockKind_CLOCK_KIND_NIS2_FINAL_REPORT
	kindDORAInitial  = incidentsv1.ClockKind_CLOCK_KIND_DORA_INITIAL
	kindDORAInterim  = incidentsv1.ClockKind_CLOCK_KIND_DORA_INTERMEDIATE
	kindDORAFinal    = incidentsv1.ClockKind_CLOCK_KIND_DORA_FINAL
	kindTask         = incidentsv1.ClockKind_CLOCK_KIND_TASK

	statusOpen      = incidentsv1.IncidentStatus_INCIDENT_STATUS_OPEN
	statusContained = incidentsv1.IncidentStatus_INCIDENT_STATUS_CONTAINED
	statusResolved  = incidentsv1.IncidentStatus_INCIDENT_STATUS_RESOLVED
	statusClosed    = incidentsv1.IncidentStatus_INCIDENT_STATUS_CLOSED

	// Clock ids as the domain names them.
	notice1  = "party_notification/org-customer/1"
	notice2  = "party_notification/org-customer/2"
	ewCust   = "nis2_early_warning/org-customer"
	nis2Cust = "nis2_notification/org-customer"
	finCust  = "nis2_final_report/org-customer"
	ewProv   = "nis2_early_warning/org-provider"
	nis2Prov = "nis2_notification/org-provider"
	doraInit = "dora_initial/org-customer"
	doraMid  = "dora_intermediate/org-customer"
	doraFin  = "dora_final/org-customer"
	task1    = "task/t-1"

	hour = time.Hour
	sec  = time.Second
	day  = 24 * time.Hour
)

var (
	// base is when the incident is reported; the reporter became aware an hour earlier.
	base  = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	aware = base.Add(-hour)
)

// at is base+d.
func at(d time.Duration) time.Time { return base.Add(d) }

func userOf(org domain.OrgID) string {
	switch org {
	case customer:
		return "alice"
	case provider:
		return "bob"
	default:
		return "mallory"
	}
}

func by(org domain.OrgID, t time.Time) domain.By {
	return domain.By{Actor: domain.Actor{Org: org, User: userOf(org)}, At: t}
}

// terms: notification within 1 h for critical, 4 h for high, 24 h for
// medium, no deadline for low.
func terms() domain.Contract {
	return domain.Contract{
		ID: contractID, Customer: customer, Provider: provider, InForce: true,
		Deadlines: []domain.Deadline{{Severity: critical, Within: hour}, {Severity: high, Within: 4 * hour}, {Severity: medium, Within: day}},
	}
}

// ---- commands ---------------------------------------------------------------

// report: the customer reports a high incident at base, aware since base-1h.
func report(mods ...func(*domain.ReportIncident)) *domain.ReportIncident {
	c := &domain.ReportIncident{
		By: by(customer, base), IncidentID: incidentID, Contract: terms(),
		Title: title, Description: "files encrypted on fs-01", Severity: high, Category: "malware",
		AffectedServices: []string{"file-share"}, AffectedAssets: []string{"fs-01", "fs-02"}, AwareAt: aware,
		ExternalRefs: []domain.ExternalRef{{System: "servicenow", ID: "INC0012345", URL: "https://itsm.example.com/INC0012345"}},
	}
	for _, m := range mods {
		m(c)
	}
	return c
}

func severity(sev commonv1.Severity) func(*domain.ReportIncident) {
	return func(c *domain.ReportIncident) { c.Severity = sev }
}

func reportedBy(org domain.OrgID) func(*domain.ReportIncident) {
	return func(c *domain.ReportIncident) { c.By = by(org, c.At) }
}

func assess(org domain.OrgID, t time.Time, sev commonv1.Severity) *domain.AssessIncident {
	return &domain.AssessIncident{By: by(org, t), Severity: sev, Rationale: "more hosts hit"}
}

func classify(org domain.OrgID, t time.Time, significant, major bool, criteria ...string) *domain.ClassifyIncident {
	return &domain.ClassifyIncident{By: by(org, t), Significant: significant, Major: major, Criteria: criteria}
}

func notify(org domain.OrgID, t time.Time, id string) *domain.NotifyParty {
	return &domain.NotifyParty{By: by(org, t), NotificationID: id, Channel: "email", Content: "we are hit"}
}

func ack(org domain.OrgID, t time.Time, id string) *domain.AcknowledgeNotification {
	return &domain.AcknowledgeNotification{By: by(org, t), NotificationID: id}
}

func submit(org domain.OrgID, t time.Time, r incidentsv1.Regime, k incidentsv1.SubmissionKind) *domain.RecordRegulatorySubmission {
	return &domain.RecordRegulatorySubmission{By: by(org, t), Regime: r, Kind: k, Reference: "REF-" + k.String(), Authority: "BSI"}
}

// submitted: recorded at t, submitted at when.
func submitted(org domain.OrgID, t, when time.Time, r incidentsv1.Regime, k incidentsv1.SubmissionKind) *domain.RecordRegulatorySubmission {
	c := submit(org, t, r, k)
	c.SubmittedAt = when
	return c
}

func assign(org domain.OrgID, t time.Time, task string, assignee domain.OrgID, due time.Time) *domain.AssignTask {
	return &domain.AssignTask{By: by(org, t), TaskID: task, Title: "restore " + task, Assignee: assignee, DueAt: due}
}

func complete(org domain.OrgID, t time.Time, task string) *domain.CompleteTask {
	return &domain.CompleteTask{By: by(org, t), TaskID: task, Note: "done"}
}

func escalate(org domain.OrgID, t time.Time) *domain.EscalateIncident {
	return &domain.EscalateIncident{By: by(org, t), Reason: "spreading"}
}

func contain(org domain.OrgID, t time.Time) *domain.ContainIncident {
	return &domain.ContainIncident{By: by(org, t), Summary: "isolated fs-01"}
}

func resolve(org domain.OrgID, t time.Time) *domain.ResolveIncident {
	return &domain.ResolveIncident{By: by(org, t), Summary: "restored from backup"}
}

func reopen(org domain.OrgID, t time.Time) *domain.ReopenIncident {
	return &domain.ReopenIncident{By: by(org, t), Reason: "reinfected"}
}

func review(org domain.OrgID, t time.Time) *domain.RecordReview {
	return &domain.RecordReview{By: by(org, t), RootCause: "phishing", LessonsLearned: []string{"train"}, FollowUpMeasures: []string{"mfa"}}
}

func closeIncident(org domain.OrgID, t time.Time) *domain.CloseIncident {
	return &domain.CloseIncident{By: by(org, t)}
}

// markOverdue is the scheduler's: no party.
func markOverdue(t time.Time, clock string) *domain.MarkOverdue {
	return &domain.MarkOverdue{By: domain.By{At: t}, ClockID: clock}
}

// ---- events, built by hand --------------------------------------------------

func ts(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

func reported() *incidentsv1.IncidentReported {
	return &incidentsv1.IncidentReported{
		IncidentId: incidentID, ContractId: contractID,
		CustomerOrgId: string(customer), ProviderOrgId: string(provider), ReporterOrgId: string(customer),
		Title: title, Description: "files encrypted on fs-01", Severity: high, Category: "malware",
		AffectedServices: []string{"file-share"}, AffectedAssets: []string{"fs-01", "fs-02"}, AwareAt: ts(aware),
		ExternalReferences: []*incidentsv1.ExternalReference{{System: "servicenow", Id: "INC0012345", Url: "https://itsm.example.com/INC0012345"}},
		NotificationDeadlines: []*incidentsv1.NotificationDeadline{
			{Severity: critical, Within: durationpb.New(hour)},
			{Severity: high, Within: durationpb.New(4 * hour)},
			{Severity: medium, Within: durationpb.New(day)},
		},
		ReportedAt: ts(base),
	}
}

func assessed(t time.Time, sev, prev commonv1.Severity, category string) *incidentsv1.IncidentAssessed {
	return &incidentsv1.IncidentAssessed{IncidentId: incidentID, Severity: sev, Category: category, Rationale: "more hosts hit", AssessedAt: ts(t), PreviousSeverity: prev}
}

func classified(org domain.OrgID, t time.Time, significant, major bool, awareAt *timestamppb.Timestamp, criteria ...string) *incidentsv1.IncidentClassified {
	return &incidentsv1.IncidentClassified{IncidentId: incidentID, OrgId: string(org), Significant: significant, Major: major, Criteria: criteria, ClassifiedAt: ts(t), AwareAt: awareAt}
}

func notified(id string, from, to domain.OrgID, sev commonv1.Severity, t time.Time) *incidentsv1.PartyNotified {
	return &incidentsv1.PartyNotified{IncidentId: incidentID, NotificationId: id, FromOrgId: string(from), ToOrgId: string(to), Channel: "email", Content: "we are hit", Severity: sev, NotifiedAt: ts(t)}
}

func submissionRecorded(org domain.OrgID, r incidentsv1.Regime, k incidentsv1.SubmissionKind, when time.Time) *incidentsv1.RegulatorySubmissionRecorded {
	return &incidentsv1.RegulatorySubmissionRecorded{IncidentId: incidentID, OrgId: string(org), Regime: r, Kind: k, Reference: "REF-" + k.String(), Authority: "BSI", SubmittedAt: ts(when)}
}

func taskCompleted(task string, t time.Time) *incidentsv1.TaskCompleted {
	return &incidentsv1.TaskCompleted{IncidentId: incidentID, TaskId: task, Note: "done", CompletedAt: ts(t)}
}

func clockOverdue(clock string, kind incidentsv1.ClockKind, party domain.OrgID, due, detected time.Time) *incidentsv1.ClockOverdue {
	return &incidentsv1.ClockOverdue{IncidentId: incidentID, ClockId: clock, Kind: kind, PartyOrgId: string(party), DueAt: ts(due), DetectedAt: ts(detected)}
}

// ---- given / when / then ----------------------------------------------------

// fold decides each command on the state so far and folds its events, the
// way the runner does; a command that fails fails the test.
func fold(t *testing.T, cmds ...domain.Command) domain.State {
	t.Helper()
	var s domain.State
	for i, cmd := range cmds {
		es, err := domain.Decide(s, cmd)
		if err != nil {
			t.Fatalf("given %d (%T): %v", i, cmd, err)
		}
		s = apply(s, cmd, es...)
	}
	return s
}

// apply folds es, given by cmd's actor at its time, at the next positions.
func apply(s domain.State, cmd domain.Command, es ...proto.Message) domain.State {
	b := domain.ByOf(cmd)
	for _, e := range es {
		s = domain.Evolve(s, e, domain.Meta{Time: b.At, Actor: b.Actor, Position: s.Position + 1})
	}
	return s
}

func history(cmds ...domain.Command) []domain.Command { return cmds }

type spec struct {
	name  string
	given []domain.Command
	when  domain.Command
	then  []proto.Message // expected events, when err is nil; none for a no-op
	err   error           // expected error (errors.Is)
	field string          // expected ValidationError.Field, when err is ErrInvalid
	state func(t *testing.T, s domain.State)
}

func (c spec) run(t *testing.T) {
	t.Helper()
	s := fold(t, c.given...)
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
			t.Fatalf("events %s alongside error %v", text(got), err)
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

	after := apply(s, c.when, got...)
	if now := snapshot(t, s); now != before {
		t.Fatalf("decide or evolve changed the earlier state:\nbefore %s\nafter  %s", before, now)
	}
	// The events as they come back from the store evolve alike.
	fromWire := s
	for _, e := range got {
		fromWire = apply(fromWire, c.when, wire(t, e))
	}
	if !reflect.DeepEqual(after, fromWire) {
		t.Fatalf("state from decoded events differs:\n%+v\n%+v", after, fromWire)
	}
	if c.state != nil {
		c.state(t, after)
	}
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

func snapshot(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func text(es []proto.Message) string {
	var out strings.Builder
	for _, e := range es {
		out.WriteString(string(e.ProtoReflect().Descriptor().Name()) + "{" + prototext.MarshalOptions{}.Format(e) + "}\n")
	}
	return out.String()
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// clockLine renders a clock for comparison: id kind party started due met overdue.
func clockLine(k domain.Clock) string {
	return fmt.Sprintf("%s %s %s started %s due %s met %s overdue %t",
		k.ID, k.Kind, k.Party, stamp(k.StartedAt), stamp(k.DueAt), stamp(k.MetAt), k.Overdue)
}

// clocksAre checks every clock of s, in order.
func clocksAre(t *testing.T, s domain.State, want ...domain.Clock) {
	t.Helper()
	var g, w []string
	for _, k := range s.Clocks {
		g = append(g, clockLine(k))
	}
	for _, k := range want {
		w = append(w, clockLine(k))
	}
	if strings.Join(g, "\n") != strings.Join(w, "\n") {
		t.Fatalf("clocks:\n%s\nwant:\n%s", strings.Join(g, "\n"), strings.Join(w, "\n"))
	}
}

// clock builds an expected clock.
func clock(id string, kind incidentsv1.ClockKind, party domain.OrgID, started, due time.Time) domain.Clock {
	return domain.Clock{ID: id, Kind: kind, Party: party, StartedAt: started, DueAt: due}
}

// met is k met at t.
func met(k domain.Clock, t time.Time) domain.Clock { k.MetAt = t; return k }

// late is k recorded overdue.
func late(k domain.Clock) domain.Clock { k.Overdue = true; return k }

// ---- report -----------------------------------------------------------------

func TestReportIncident(t *testing.T) {
	t.Parallel()
	byProvider := reported()
	byProvider.ReporterOrgId = string(provider)
	bare := &incidentsv1.IncidentReported{
		IncidentId: incidentID, ContractId: contractID, CustomerOrgId: string(customer), ProviderOrgId: string(provider),
		ReporterOrgId: string(customer), Title: title, Severity: low, AwareAt: ts(base), ReportedAt: ts(base),
	}
	noDeadlines := terms()
	noDeadlines.Deadlines = nil

	runAll(t, []spec{
		{
			name: "customer reports", when: report(), then: []proto.Message{reported()},
			state: func(t *testing.T, s domain.State) {
				if s.ID != incidentID || s.ContractID != contractID || s.Customer != customer || s.Provider != provider ||
					s.Reporter != customer || s.Status != statusOpen || s.Severity != high || s.Category != "malware" ||
					!s.AwareAt.Equal(aware) || !s.ReportedAt.Equal(base) || !s.UpdatedAt.Equal(base) || s.Position != 1 ||
					s.EscalationLevel != 0 || s.Review != nil {
					t.Fatalf("state = %+v", s)
				}
				if !reflect.DeepEqual(s.AffectedServices, []string{"file-share"}) || !reflect.DeepEqual(s.AffectedAssets, []string{"fs-01", "fs-02"}) ||
					!reflect.DeepEqual(s.ExternalRefs, []domain.ExternalRef{{System: "servicenow", ID: "INC0012345", URL: "https://itsm.example.com/INC0012345"}}) ||
					!reflect.DeepEqual(s.Deadlines, terms().Deadlines) {
					t.Fatalf("state = %+v", s)
				}
				if len(s.Aware) != 1 || !s.Aware[customer].Equal(aware) {
					t.Fatalf("aware = %v", s.Aware)
				}
				clocksAre(t, s, clock(notice1, kindNotification, customer, aware, aware.Add(4*hour)))
				want := domain.Entry{At: base, Org: customer, User: "alice", Kind: "jsm.incidents.v1.IncidentReported", Text: "high incident reported: " + title, Position: 1}
				if len(s.Timeline) != 1 || s.Timeline[0] != want {
					t.Fatalf("timeline = %+v, want %+v", s.Timeline, want)
				}
			},
		},
		{
			name: "provider reports and owes the notice", when: report(reportedBy(provider)), then: []proto.Message{byProvider},
			state: func(t *testing.T, s domain.State) {
				if s.Reporter != provider || len(s.Aware) != 1 || !s.Aware[provider].Equal(aware) {
					t.Fatalf("state = %+v", s)
				}
				clocksAre(t, s, clock("party_notification/org-provider/1", kindNotification, provider, aware, aware.Add(4*hour)))
			},
		},
		{
			name: "only what is required, aware at the report time",
			when: &domain.ReportIncident{By: by(customer, base), IncidentID: incidentID, Contract: noDeadlines, Title: title, Severity: low, AwareAt: base},
			then: []proto.Message{bare},
			state: func(t *testing.T, s domain.State) {
				if len(s.Clocks) != 0 || s.Deadlines != nil || s.ExternalRefs != nil {
					t.Fatalf("state = %+v", s)
				}
			},
		},
		{
			name: "contract ends one second after the report",
			when: report(func(c *domain.ReportIncident) { c.Contract.EndsAt = base.Add(sec) }), then: []proto.Message{reported()},
		},
		{name: "twice", given: history(report()), when: report(), err: domain.ErrAlreadyExists},
		{name: "outsider", when: report(reportedBy(outsider)), err: domain.ErrNotParty},
		{name: "no org", when: report(reportedBy("")), err: domain.ErrNotParty},
		{name: "unknown contract", when: report(func(c *domain.ReportIncident) { c.Contract = domain.Contract{} }), err: domain.NotFoundError{What: "contract"}},
		{name: "no terms in force", when: report(func(c *domain.ReportIncident) { c.Contract.InForce = false }), err: domain.ErrContractNotActive},
		{name: "contract ends at the report time", when: report(func(c *domain.ReportIncident) { c.Contract.EndsAt = base }), err: domain.ErrContractNotActive},
		{name: "contract ended", when: report(func(c *domain.ReportIncident) { c.Contract.EndsAt = base.Add(-day) }), err: domain.ErrContractNotActive},
		{name: "empty id", when: report(func(c *domain.ReportIncident) { c.IncidentID = " " }), err: domain.ErrInvalid, field: "incident_id"},
		{name: "empty title", when: report(func(c *domain.ReportIncident) { c.Title = "\t" }), err: domain.ErrInvalid, field: "title"},
		{name: "no severity", when: report(severity(commonv1.Severity_SEVERITY_UNSPECIFIED)), err: domain.ErrInvalid, field: "severity"},
		{name: "unknown severity", when: report(severity(99)), err: domain.ErrInvalid, field: "severity"},
		{name: "no aware_at", when: report(func(c *domain.ReportIncident) { c.AwareAt = time.Time{} }), err: domain.ErrInvalid, field: "aware_at"},
		{name: "aware_at in the future", when: report(func(c *domain.ReportIncident) { c.AwareAt = base.Add(sec) }), err: domain.ErrInvalid, field: "aware_at"},
		{
			name: "duplicate service", when: report(func(c *domain.ReportIncident) { c.AffectedServices = []string{"mail", "vpn", "mail"} }),
			err: domain.ErrInvalid, field: "affected_services[2]",
		},
		{
			name: "blank asset", when: report(func(c *domain.ReportIncident) { c.AffectedAssets = []string{" "} }),
			err: domain.ErrInvalid, field: "affected_assets[0]",
		},
		{
			name: "reference without id",
			when: report(func(c *domain.ReportIncident) {
				c.ExternalRefs = append(c.ExternalRefs, domain.ExternalRef{System: "jira"})
			}),
			err: domain.ErrInvalid, field: "external_references[1]",
		},
		{
			name: "reference without system",
			when: report(func(c *domain.ReportIncident) { c.ExternalRefs = []domain.ExternalRef{{ID: "X-1"}} }),
			err:  domain.ErrInvalid, field: "external_references[0]",
		},
	})
}

// bogus is a command the decider does not know.
type bogus struct{ domain.By }

func TestCommandsNeedAnIncidentAndAParty(t *testing.T) {
	t.Parallel()
	cmds := map[string]func(org domain.OrgID) domain.Command{
		"assess":      func(o domain.OrgID) domain.Command { return assess(o, at(hour), critical) },
		"classify":    func(o domain.OrgID) domain.Command { return classify(o, at(hour), true, false) },
		"notify":      func(o domain.OrgID) domain.Command { return notify(o, at(hour), "n-1") },
		"acknowledge": func(o domain.OrgID) domain.Command { return ack(o, at(hour), "n-1") },
		"submit":      func(o domain.OrgID) domain.Command { return submit(o, at(hour), nis2, earlyWarning) },
		"timeline": func(o domain.OrgID) domain.Command {
			return &domain.AddTimelineEntry{By: by(o, at(hour)), EntryID: "e-1", Text: "x"}
		},
		"assign task":   func(o domain.OrgID) domain.Command { return assign(o, at(hour), "t-1", provider, at(day)) },
		"complete task": func(o domain.OrgID) domain.Command { return complete(o, at(hour), "t-1") },
		"escalate":      func(o domain.OrgID) domain.Command { return escalate(o, at(hour)) },
		"contain":       func(o domain.OrgID) domain.Command { return contain(o, at(hour)) },
		"resolve":       func(o domain.OrgID) domain.Command { return resolve(o, at(hour)) },
		"reopen":        func(o domain.OrgID) domain.Command { return reopen(o, at(hour)) },
		"review":        func(o domain.OrgID) domain.Command { return review(o, at(hour)) },
		"close":         func(o domain.OrgID) domain.Command { return closeIncident(o, at(hour)) },
	}
	var specs []spec
	for name, cmd := range cmds {
		specs = append(specs,
			spec{name: name + " on a missing incident", when: cmd(customer), err: domain.NotFoundError{What: "incident"}},
			spec{name: name + " by an outsider", given: history(report()), when: cmd(outsider), err: domain.ErrNotParty},
			spec{name: name + " by no org", given: history(report()), when: cmd(""), err: domain.ErrNotParty},
		)
	}
	specs = append(specs,
		spec{name: "mark overdue on a missing incident", when: markOverdue(at(day), notice1), err: domain.NotFoundError{What: "incident"}},
		spec{name: "nil command", when: nil, err: domain.ErrInvalid, field: "command"},
		spec{name: "nil command on an incident", given: history(report()), when: nil, err: domain.ErrInvalid, field: "command"},
		spec{name: "nil report", when: (*domain.ReportIncident)(nil), err: domain.ErrInvalid, field: "command"},
		spec{name: "nil assessment", given: history(report()), when: (*domain.AssessIncident)(nil), err: domain.ErrInvalid, field: "command"},
		spec{name: "nil mark overdue", given: history(report()), when: (*domain.MarkOverdue)(nil), err: domain.ErrInvalid, field: "command"},
		spec{name: "unknown command", given: history(report()), when: &bogus{By: by(customer, at(hour))}, err: domain.ErrInvalid, field: "command"},
		spec{
			name: "exercise command", given: history(report()),
			when: &domain.ScheduleExercise{By: by(customer, at(hour)), ExerciseID: "x-1", Contract: terms(), Kind: 1, Title: "t", ScheduledFor: at(day)},
			err:  domain.ErrInvalid, field: "command",
		},
	)
	runAll(t, specs)
}

// ---- assessment and classification ------------------------------------------

func TestAssessIncident(t *testing.T) {
	t.Parallel()
	recategorise := assess(provider, at(hour), high)
	recategorise.Category = "data-breach"
	sameCategory := assess(customer, at(hour), high)
	sameCategory.Category = "malware"
	runAll(t, []spec{
		{
			name: "raises the severity, keeping the category", given: history(report()),
			when: assess(customer, at(hour), critical), then: []proto.Message{assessed(at(hour), critical, high, "malware")},
			state: func(t *testing.T, s domain.State) {
				if s.Severity != critical || s.Category != "malware" {
					t.Fatalf("severity %s, category %q", s.Severity, s.Category)
				}
				e := s.Timeline[len(s.Timeline)-1]
				if e.Kind != "jsm.incidents.v1.IncidentAssessed" || e.Text != `assessed critical (was high), category "malware": more hosts hit` {
					t.Fatalf("entry = %+v", e)
				}
			},
		},
		{
			name: "the other party lowers it", given: history(report()),
			when: assess(provider, at(hour), low), then: []proto.Message{assessed(at(hour), low, high, "malware")},
		},
		{
			name: "changes the category only", given: history(report()),
			when: recategorise, then: []proto.Message{assessed(at(hour), high, high, "data-breach")},
			state: func(t *testing.T, s domain.State) {
				if s.Category != "data-breach" || s.Severity != high {
					t.Fatalf("severity %s, category %q", s.Severity, s.Category)
				}
			},
		},
		{name: "same severity, no category", given: history(report()), when: assess(customer, at(hour), high)},
		{name: "same severity and category", given: history(report()), when: sameCategory},
		{
			name: "on a resolved incident", given: history(report(), resolve(customer, at(hour))),
			when: assess(customer, at(2*hour), medium), then: []proto.Message{assessed(at(2*hour), medium, high, "malware")},
		},
		{name: "no severity", given: history(report()), when: assess(customer, at(hour), 0), err: domain.ErrInvalid, field: "severity"},
		{name: "unknown severity", given: history(report()), when: assess(customer, at(hour), 7), err: domain.ErrInvalid, field: "severity"},
		{
			name: "closed", given: history(report(severity(low)), resolve(customer, at(hour)), closeIncident(customer, at(2*hour))),
			when: assess(customer, at(3*hour), high), err: domain.ErrWrongStatus,
		},
	})
}

func TestClassifyIncident(t *testing.T) {
	t.Parallel()
	withAware := classify(provider, at(2*hour), true, false)
	withAware.AwareAt = at(30 * time.Minute)
	knownAware := classify(provider, at(2*hour), true, false)
	knownAware.AwareAt = at(30 * time.Minute)
	future := classify(customer, at(hour), true, false)
	future.AwareAt = at(hour + sec)
	atNow := classify(provider, at(hour), false, true)
	atNow.AwareAt = at(hour)

	runAll(t, []spec{
		{
			name: "the reporter, whose awareness is known", given: history(report()),
			when: classify(customer, at(hour), true, true, "users", "duration"),
			then: []proto.Message{classified(customer, at(hour), true, true, nil, "users", "duration")},
			state: func(t *testing.T, s domain.State) {
				c, ok := s.ClassificationOf(customer)
				want := domain.Classification{Org: customer, Significant: true, Major: true, Criteria: []string{"users", "duration"}, ClassifiedAt: at(hour), MajorSince: at(hour)}
				if !ok || !reflect.DeepEqual(c, want) || !s.Regulated() {
					t.Fatalf("classification = %+v, want %+v", c, want)
				}
				if _, ok := s.ClassificationOf(provider); ok {
					t.Fatal("provider classified")
				}
			},
		},
		{
			name: "the other party, not yet aware: aware now", given: history(report()),
			when: classify(provider, at(2*hour), true, false),
			then: []proto.Message{classified(provider, at(2*hour), true, false, ts(at(2*hour)))},
			state: func(t *testing.T, s domain.State) {
				if !s.Aware[provider].Equal(at(2*hour)) || !s.Aware[customer].Equal(aware) {
					t.Fatalf("aware = %v", s.Aware)
				}
			},
		},
		{
			name: "the other party, saying when it became aware", given: history(report()),
			when: withAware, then: []proto.Message{classified(provider, at(2*hour), true, false, ts(at(30*time.Minute)))},
		},
		{
			name: "aware exactly now", given: history(report()),
			when: atNow, then: []proto.Message{classified(provider, at(hour), false, true, ts(at(hour)))},
		},
		{
			name: "the other party, notified: its awareness is known", given: history(report(), notify(customer, at(hour), "n-1")),
			when: knownAware, then: []proto.Message{classified(provider, at(2*hour), true, false, nil)},
			state: func(t *testing.T, s domain.State) {
				if !s.Aware[provider].Equal(at(hour)) {
					t.Fatalf("aware = %v", s.Aware)
				}
			},
		},
		{
			name: "same classification again", given: history(report(), classify(customer, at(hour), true, false, "users")),
			when: classify(customer, at(2*hour), true, false, "users"),
		},
		{
			name: "same flags, other criteria", given: history(report(), classify(customer, at(hour), true, false, "users")),
			when: classify(customer, at(2*hour), true, false, "users", "loss"), then: []proto.Message{classified(customer, at(2*hour), true, false, nil, "users", "loss")},
		},
		{
			name: "declassified", given: history(report(), classify(customer, at(hour), true, true)),
			when: classify(customer, at(2*hour), false, false), then: []proto.Message{classified(customer, at(2*hour), false, false, nil)},
			state: func(t *testing.T, s domain.State) {
				if s.Regulated() || len(s.Classifications) != 1 {
					t.Fatalf("classifications = %+v", s.Classifications)
				}
			},
		},
		{
			name: "first classification as neither", given: history(report()),
			when: classify(customer, at(hour), false, false), then: []proto.Message{classified(customer, at(hour), false, false, nil)},
		},
		{name: "aware_at in the future", given: history(report()), when: future, err: domain.ErrInvalid, field: "aware_at"},
	})
}

// ---- notification -----------------------------------------------------------

func TestNotifyParty(t *testing.T) {
	t.Parallel()
	noChannel := notify(customer, at(hour), "n-1")
	noChannel.Channel = ""
	noContent := notify(customer, at(hour), "n-1")
	noContent.Content = " "
	runAll(t, []spec{
		{
			name: "the reporter notifies the other party", given: history(report()),
			when: notify(customer, at(hour), "n-1"), then: []proto.Message{notified("n-1", customer, provider, high, at(hour))},
			state: func(t *testing.T, s domain.State) {
				want := []domain.Notification{{ID: "n-1", From: customer, To: provider, Channel: "email", Content: "we are hit", Severity: high, NotifiedAt: at(hour)}}
				if !reflect.DeepEqual(s.Notifications, want) {
					t.Fatalf("notifications = %+v", s.Notifications)
				}
				if !s.Aware[provider].Equal(at(hour)) {
					t.Fatalf("aware = %v", s.Aware)
				}
				clocksAre(t, s, met(clock(notice1, kindNotification, customer, aware, at(3*hour)), at(hour)))
			},
		},
		{
			name: "with the severity as assessed", given: history(report(), assess(provider, at(hour), critical)),
			when: notify(customer, at(hour), "n-1"), then: []proto.Message{notified("n-1", customer, provider, critical, at(hour))},
		},
		{
			name: "the other party notifies the reporter: the reporter's clock runs on", given: history(report()),
			when: notify(provider, at(hour), "n-1"), then: []proto.Message{notified("n-1", provider, customer, high, at(hour))},
			state: func(t *testing.T, s domain.State) {
				clocksAre(t, s, clock(notice1, kindNotification, customer, aware, at(3*hour)))
				if !s.Aware[customer].Equal(aware) || len(s.Aware) != 1 {
					t.Fatalf("aware = %v", s.Aware)
				}
			},
		},
		{name: "empty id", given: history(report()), when: notify(customer, at(hour), ""), err: domain.ErrInvalid, field: "notification_id"},
		{name: "empty channel", given: history(report()), when: noChannel, err: domain.ErrInvalid, field: "channel"},
		{name: "empty content", given: history(report()), when: noContent, err: domain.ErrInvalid, field: "content"},
		{
			name: "duplicate id", given: history(report(), notify(customer, at(hour), "n-1")),
			when: notify(provider, at(2*hour), "n-1"), err: domain.ErrAlreadyExists,
		},
	})
}

func TestAcknowledgeNotification(t *testing.T) {
	t.Parallel()
	notifiedOnce := history(report(), notify(customer, at(hour), "n-1"))
	runAll(t, []spec{
		{
			name: "the recipient acknowledges", given: notifiedOnce, when: ack(provider, at(2*hour), "n-1"),
			then: []proto.Message{&incidentsv1.NotificationAcknowledged{IncidentId: incidentID, NotificationId: "n-1", OrgId: string(provider), AcknowledgedAt: ts(at(2 * hour))}},
			state: func(t *testing.T, s domain.State) {
				if !s.Notifications[0].AcknowledgedAt.Equal(at(2 * hour)) {
					t.Fatalf("notification = %+v", s.Notifications[0])
				}
			},
		},
		{name: "again", given: with(notifiedOnce, ack(provider, at(2*hour), "n-1")), when: ack(provider, at(3*hour), "n-1")},
		{name: "the sender", given: notifiedOnce, when: ack(customer, at(2*hour), "n-1"), err: domain.ErrWrongParty},
		{name: "unknown notification", given: notifiedOnce, when: ack(provider, at(2*hour), "n-9"), err: domain.NotFoundError{What: "notification", ID: "n-9"}},
	})
}

// ---- regulatory submissions -------------------------------------------------

func TestRecordRegulatorySubmission(t *testing.T) {
	t.Parallel()
	significant := history(report(), classify(customer, at(hour), true, false))
	major := history(report(), classify(customer, at(hour), false, true))
	both := history(report(), classify(customer, at(hour), true, true))
	noRef := submit(customer, at(2*hour), nis2, earlyWarning)
	noRef.Reference = " "
	earlier := submitted(customer, at(5*hour), at(2*hour), nis2, earlyWarning)
	future := submitted(customer, at(5*hour), at(5*hour+sec), nis2, earlyWarning)

	runAll(t, []spec{
		{
			name: "NIS2 early warning", given: significant, when: submit(customer, at(2*hour), nis2, earlyWarning),
			then: []proto.Message{submissionRecorded(customer, nis2, earlyWarning, at(2*hour))},
			state: func(t *testing.T, s domain.State) {
				want := []domain.Submission{{Org: customer, Regime: nis2, Kind: earlyWarning, Reference: "REF-SUBMISSION_KIND_EARLY_WARNING", Authority: "BSI", SubmittedAt: at(2 * hour)}}
				if !reflect.DeepEqual(s.Submissions, want) {
					t.Fatalf("submissions = %+v", s.Submissions)
				}
			},
		},
		{name: "submitted earlier", given: significant, when: earlier, then: []proto.Message{submissionRecorded(customer, nis2, earlyWarning, at(2*hour))}},
		{name: "NIS2 notification without an early warning", given: significant, when: submit(customer, at(2*hour), nis2, notification), then: []proto.Message{submissionRecorded(customer, nis2, notification, at(2*hour))}},
		{
			name: "NIS2 final report after the notification", given: with(significant, submit(customer, at(2*hour), nis2, notification)),
			when: submit(customer, at(3*hour), nis2, finalReport), then: []proto.Message{submissionRecorded(customer, nis2, finalReport, at(3*hour))},
		},
		{name: "DORA initial", given: major, when: submit(customer, at(2*hour), dora, initial), then: []proto.Message{submissionRecorded(customer, dora, initial, at(2*hour))}},
		{
			name: "DORA intermediate after the initial", given: with(major, submit(customer, at(2*hour), dora, initial)),
			when: submit(customer, at(3*hour), dora, intermediate), then: []proto.Message{submissionRecorded(customer, dora, intermediate, at(3*hour))},
		},
		{
			name: "DORA final after an intermediate", given: with(major, submit(customer, at(2*hour), dora, initial), submit(customer, at(3*hour), dora, intermediate)),
			when: submit(customer, at(4*hour), dora, finalReport), then: []proto.Message{submissionRecorded(customer, dora, finalReport, at(4*hour))},
		},
		{name: "both regimes: NIS2", given: both, when: submit(customer, at(2*hour), nis2, earlyWarning), then: []proto.Message{submissionRecorded(customer, nis2, earlyWarning, at(2*hour))}},
		{name: "both regimes: DORA", given: both, when: submit(customer, at(2*hour), dora, initial), then: []proto.Message{submissionRecorded(customer, dora, initial, at(2*hour))}},
		{name: "submitted in the future", given: significant, when: future, err: domain.ErrInvalid, field: "submitted_at"},
		{name: "no regime", given: significant, when: submit(customer, at(2*hour), 0, earlyWarning), err: domain.ErrInvalid, field: "regime"},
		{name: "unknown regime", given: significant, when: submit(customer, at(2*hour), 9, earlyWarning), err: domain.ErrInvalid, field: "regime"},
		{name: "DORA kind under NIS2", given: both, when: submit(customer, at(2*hour), nis2, initial), err: domain.ErrInvalid, field: "kind"},
		{name: "NIS2 kind under DORA", given: both, when: submit(customer, at(2*hour), dora, earlyWarning), err: domain.ErrInvalid, field: "kind"},
		{name: "no kind", given: both, when: submit(customer, at(2*hour), dora, 0), err: domain.ErrInvalid, field: "kind"},
		{name: "no reference", given: significant, when: noRef, err: domain.ErrInvalid, field: "reference"},
		{name: "NIS2 unclassified", given: history(report()), when: submit(customer, at(2*hour), nis2, earlyWarning), err: domain.ErrNotClassified},
		{name: "NIS2 when only major", given: major, when: submit(customer, at(2*hour), nis2, earlyWarning), err: domain.ErrNotClassified},
		{name: "DORA when only significant", given: significant, when: submit(customer, at(2*hour), dora, initial), err: domain.ErrNotClassified},
		{name: "the other party's classification does not count", given: significant, when: submit(provider, at(2*hour), nis2, earlyWarning), err: domain.ErrNotClassified},
		{
			name: "NIS2 after declassification", given: with(significant, classify(customer, at(2*hour), false, false)),
			when: submit(customer, at(3*hour), nis2, earlyWarning), err: domain.ErrNotClassified,
		},
		{name: "NIS2 final before the notification", given: with(significant, submit(customer, at(2*hour), nis2, earlyWarning)), when: submit(customer, at(3*hour), nis2, finalReport), err: domain.ErrOutOfOrder},
		{name: "DORA intermediate before the initial", given: major, when: submit(customer, at(2*hour), dora, intermediate), err: domain.ErrOutOfOrder},
		{name: "DORA final before an intermediate", given: with(major, submit(customer, at(2*hour), dora, initial)), when: submit(customer, at(3*hour), dora, finalReport), err: domain.ErrOutOfOrder},
		{
			name:  "the other party's initial does not count",
			given: with(major, classify(provider, at(hour), false, true), submit(provider, at(2*hour), dora, initial)),
			when:  submit(customer, at(3*hour), dora, intermediate), err: domain.ErrOutOfOrder,
		},
	})
}

// ---- joint handling ---------------------------------------------------------

func TestAddTimelineEntry(t *testing.T) {
	t.Parallel()
	entry := func(org domain.OrgID, now, occurred time.Time, id, text string) *domain.AddTimelineEntry {
		return &domain.AddTimelineEntry{By: by(org, now), EntryID: id, Text: text, OccurredAt: occurred}
	}
	runAll(t, []spec{
		{
			name: "now", given: history(report()), when: entry(provider, at(hour), time.Time{}, "e-1", "firewall rule added"),
			then: []proto.Message{&incidentsv1.TimelineEntryAdded{IncidentId: incidentID, EntryId: "e-1", Text: "firewall rule added", OccurredAt: ts(at(hour))}},
			state: func(t *testing.T, s domain.State) {
				want := domain.Entry{ID: "e-1", At: at(hour), Org: provider, User: "bob", Kind: "note", Text: "firewall rule added", Position: 2}
				if len(s.Timeline) != 2 || s.Timeline[1] != want || !s.UpdatedAt.Equal(at(hour)) || s.Position != 2 {
					t.Fatalf("timeline = %+v", s.Timeline)
				}
			},
		},
		{
			name: "earlier", given: history(report()), when: entry(customer, at(hour), at(-2*hour), "e-1", "first alert"),
			then: []proto.Message{&incidentsv1.TimelineEntryAdded{IncidentId: incidentID, EntryId: "e-1", Text: "first alert", OccurredAt: ts(at(-2 * hour))}},
			state: func(t *testing.T, s domain.State) {
				if e := s.Timeline[1]; !e.At.Equal(at(-2*hour)) || e.Org != customer || !s.UpdatedAt.Equal(at(hour)) {
					t.Fatalf("entry = %+v, updated %s", e, s.UpdatedAt)
				}
			},
		},
		{name: "empty id", given: history(report()), when: entry(customer, at(hour), time.Time{}, "", "x"), err: domain.ErrInvalid, field: "entry_id"},
		{name: "empty text", given: history(report()), when: entry(customer, at(hour), time.Time{}, "e-1", " "), err: domain.ErrInvalid, field: "text"},
		{name: "in the future", given: history(report()), when: entry(customer, at(hour), at(hour+sec), "e-1", "x"), err: domain.ErrInvalid, field: "occurred_at"},
	})
}

func TestAssignTask(t *testing.T) {
	t.Parallel()
	noTitle := assign(customer, at(hour), "t-1", provider, at(day))
	noTitle.Title = ""
	runAll(t, []spec{
		{
			name: "to the other party", given: history(report()), when: assign(customer, at(hour), "t-1", provider, at(day)),
			then: []proto.Message{&incidentsv1.TaskAssigned{IncidentId: incidentID, TaskId: "t-1", Title: "restore t-1", AssigneeOrgId: string(provider), DueAt: ts(at(day))}},
			state: func(t *testing.T, s domain.State) {
				want := []domain.Task{{ID: "t-1", Title: "restore t-1", Assignee: provider, DueAt: at(day)}}
				if !reflect.DeepEqual(s.Tasks, want) {
					t.Fatalf("tasks = %+v", s.Tasks)
				}
			},
		},
		{
			name: "to itself, due one second later", given: history(report()), when: assign(provider, at(hour), "t-1", provider, at(hour+sec)),
			then: []proto.Message{&incidentsv1.TaskAssigned{IncidentId: incidentID, TaskId: "t-1", Title: "restore t-1", AssigneeOrgId: string(provider), DueAt: ts(at(hour + sec))}},
		},
		{name: "empty id", given: history(report()), when: assign(customer, at(hour), " ", provider, at(day)), err: domain.ErrInvalid, field: "task_id"},
		{name: "empty title", given: history(report()), when: noTitle, err: domain.ErrInvalid, field: "title"},
		{name: "to an outsider", given: history(report()), when: assign(customer, at(hour), "t-1", outsider, at(day)), err: domain.ErrInvalid, field: "assignee_org_id"},
		{name: "to nobody", given: history(report()), when: assign(customer, at(hour), "t-1", "", at(day)), err: domain.ErrInvalid, field: "assignee_org_id"},
		{name: "due now", given: history(report()), when: assign(customer, at(hour), "t-1", provider, at(hour)), err: domain.ErrInvalid, field: "due_at"},
		{name: "due in the past", given: history(report()), when: assign(customer, at(hour), "t-1", provider, at(0)), err: domain.ErrInvalid, field: "due_at"},
		{
			name: "duplicate id", given: history(report(), assign(customer, at(hour), "t-1", provider, at(day))),
			when: assign(provider, at(2*hour), "t-1", customer, at(day)), err: domain.ErrAlreadyExists,
		},
		{
			name: "closed", given: history(report(severity(low)), resolve(customer, at(hour)), closeIncident(customer, at(2*hour))),
			when: assign(customer, at(3*hour), "t-1", provider, at(day)), err: domain.ErrWrongStatus,
		},
	})
}

func TestCompleteTask(t *testing.T) {
	t.Parallel()
	assigned := history(report(), assign(customer, at(hour), "t-1", provider, at(day)))
	runAll(t, []spec{
		{
			name: "the assignee completes it", given: assigned, when: complete(provider, at(2*hour), "t-1"),
			then: []proto.Message{taskCompleted("t-1", at(2*hour))},
			state: func(t *testing.T, s domain.State) {
				want := []domain.Task{{ID: "t-1", Title: "restore t-1", Assignee: provider, DueAt: at(day), CompletedAt: at(2 * hour), Note: "done"}}
				if !reflect.DeepEqual(s.Tasks, want) {
					t.Fatalf("tasks = %+v", s.Tasks)
				}
				if e := s.Timeline[len(s.Timeline)-1]; e.Text != `task "restore t-1" completed` || e.Kind != "jsm.incidents.v1.TaskCompleted" {
					t.Fatalf("entry = %+v", e)
				}
			},
		},
		{name: "again", given: with(assigned, complete(provider, at(2*hour), "t-1")), when: complete(provider, at(3*hour), "t-1")},
		{name: "by the other party", given: assigned, when: complete(customer, at(2*hour), "t-1"), err: domain.ErrWrongParty},
		{name: "unknown task", given: assigned, when: complete(provider, at(2*hour), "t-2"), err: domain.NotFoundError{What: "task", ID: "t-2"}},
	})
}

func TestEscalateIncident(t *testing.T) {
	t.Parallel()
	escalated := func(level int32, t time.Time) *incidentsv1.IncidentEscalated {
		return &incidentsv1.IncidentEscalated{IncidentId: incidentID, Level: level, Reason: "spreading", EscalatedAt: ts(t)}
	}
	noReason := escalate(customer, at(hour))
	noReason.Reason = ""
	runAll(t, []spec{
		{
			name: "to level 1", given: history(report()), when: escalate(provider, at(hour)), then: []proto.Message{escalated(1, at(hour))},
			state: func(t *testing.T, s domain.State) {
				if s.EscalationLevel != 1 {
					t.Fatalf("level = %d", s.EscalationLevel)
				}
			},
		},
		{name: "to level 2", given: history(report(), escalate(provider, at(hour))), when: escalate(customer, at(2*hour)), then: []proto.Message{escalated(2, at(2*hour))}},
		{name: "contained", given: history(report(), contain(customer, at(hour))), when: escalate(customer, at(2*hour)), then: []proto.Message{escalated(1, at(2*hour))}},
		{name: "no reason", given: history(report()), when: noReason, err: domain.ErrInvalid, field: "reason"},
		{name: "resolved", given: history(report(), resolve(customer, at(hour))), when: escalate(customer, at(2*hour)), err: domain.ErrWrongStatus},
		{
			name: "closed", given: history(report(severity(low)), resolve(customer, at(hour)), closeIncident(customer, at(2*hour))),
			when: escalate(customer, at(3*hour)), err: domain.ErrWrongStatus,
		},
	})
}

func TestContainResolveReopen(t *testing.T) {
	t.Parallel()
	closed := history(report(severity(low)), resolve(customer, at(hour)), closeIncident(customer, at(2*hour)))
	status := func(want incidentsv1.IncidentStatus) func(*testing.T, domain.State) {
		return func(t *testing.T, s domain.State) {
			t.Helper()
			if s.Status != want {
				t.Fatalf("status = %s, want %s", s.Status, want)
			}
		}
	}
	blankContain := contain(customer, at(3*hour))
	blankContain.Summary = ""
	blankResolve := resolve(customer, at(3*hour))
	blankResolve.Summary = " "
	blankReopen := reopen(customer, at(3*hour))
	blankReopen.Reason = ""

	runAll(t, []spec{
		{
			name: "contain", given: history(report()), when: contain(provider, at(hour)),
			then:  []proto.Message{&incidentsv1.IncidentContained{IncidentId: incidentID, Summary: "isolated fs-01", ContainedAt: ts(at(hour))}},
			state: status(statusContained),
		},
		{name: "contain twice", given: history(report(), contain(provider, at(hour))), when: contain(customer, at(2*hour))},
		{name: "contain twice, even without a summary", given: history(report(), contain(provider, at(hour))), when: blankContain},
		{name: "contain without a summary", given: history(report()), when: blankContain, err: domain.ErrInvalid, field: "summary"},
		{name: "contain resolved", given: history(report(), resolve(customer, at(hour))), when: contain(customer, at(2*hour)), err: domain.ErrWrongStatus},
		{name: "contain closed", given: closed, when: contain(customer, at(3*hour)), err: domain.ErrWrongStatus},

		{
			name: "resolve open", given: history(report()), when: resolve(provider, at(hour)),
			then:  []proto.Message{&incidentsv1.IncidentResolved{IncidentId: incidentID, Summary: "restored from backup", ResolvedAt: ts(at(hour))}},
			state: status(statusResolved),
		},
		{
			name: "resolve contained", given: history(report(), contain(provider, at(hour))), when: resolve(provider, at(2*hour)),
			then:  []proto.Message{&incidentsv1.IncidentResolved{IncidentId: incidentID, Summary: "restored from backup", ResolvedAt: ts(at(2 * hour))}},
			state: status(statusResolved),
		},
		{name: "resolve twice", given: history(report(), resolve(provider, at(hour))), when: resolve(customer, at(2*hour))},
		{name: "resolve without a summary", given: history(report()), when: blankResolve, err: domain.ErrInvalid, field: "summary"},
		{name: "resolve closed", given: closed, when: resolve(customer, at(3*hour)), err: domain.ErrWrongStatus},

		{
			name: "reopen resolved", given: history(report(), resolve(provider, at(hour))), when: reopen(customer, at(2*hour)),
			then:  []proto.Message{&incidentsv1.IncidentReopened{IncidentId: incidentID, Reason: "reinfected", ReopenedAt: ts(at(2 * hour))}},
			state: status(statusOpen),
		},
		{
			name: "reopen closed", given: closed, when: reopen(provider, at(3*hour)),
			then:  []proto.Message{&incidentsv1.IncidentReopened{IncidentId: incidentID, Reason: "reinfected", ReopenedAt: ts(at(3 * hour))}},
			state: status(statusOpen),
		},
		{name: "reopen open", given: history(report()), when: reopen(customer, at(hour)), err: domain.ErrWrongStatus},
		{name: "reopen contained", given: history(report(), contain(provider, at(hour))), when: reopen(customer, at(2*hour)), err: domain.ErrWrongStatus},
		{name: "reopen without a reason", given: closed, when: blankReopen, err: domain.ErrInvalid, field: "reason"},
	})
}

func TestRecordReview(t *testing.T) {
	t.Parallel()
	resolved := history(report(), resolve(provider, at(hour)))
	noCause := review(customer, at(2*hour))
	noCause.RootCause = " "
	runAll(t, []spec{
		{
			name: "after resolution", given: resolved, when: review(provider, at(2*hour)),
			then: []proto.Message{&incidentsv1.ReviewRecorded{
				IncidentId: incidentID, RootCause: "phishing", LessonsLearned: []string{"train"}, FollowUpMeasures: []string{"mfa"}, ReviewedAt: ts(at(2 * hour)),
			}},
			state: func(t *testing.T, s domain.State) {
				want := &domain.Review{RootCause: "phishing", LessonsLearned: []string{"train"}, FollowUpMeasures: []string{"mfa"}, ReviewedAt: at(2 * hour), Org: provider}
				if !reflect.DeepEqual(s.Review, want) || s.Status != statusResolved {
					t.Fatalf("review = %+v, status %s", s.Review, s.Status)
				}
			},
		},
		{name: "without a root cause", given: resolved, when: noCause, err: domain.ErrInvalid, field: "root_cause"},
		{name: "open", given: history(report()), when: review(customer, at(hour)), err: domain.ErrWrongStatus},
		{name: "contained", given: history(report(), contain(customer, at(hour))), when: review(customer, at(2*hour)), err: domain.ErrWrongStatus},
		{name: "closed", given: with(resolved, review(customer, at(2*hour)), closeIncident(customer, at(3*hour))), when: review(customer, at(4*hour)), err: domain.ErrWrongStatus},
	})
}

func TestCloseIncident(t *testing.T) {
	t.Parallel()
	closedEvent := func(t time.Time) []proto.Message {
		return []proto.Message{&incidentsv1.IncidentClosed{IncidentId: incidentID, ClosedAt: ts(t)}}
	}
	resolvedAs := func(sev commonv1.Severity, more ...domain.Command) []domain.Command {
		return append(append(history(report(severity(sev))), more...), resolve(customer, at(5*hour)))
	}
	runAll(t, []spec{
		{
			name: "medium, unclassified, without a review", given: resolvedAs(medium), when: closeIncident(provider, at(6*hour)), then: closedEvent(at(6 * hour)),
			state: func(t *testing.T, s domain.State) {
				if s.Status != statusClosed {
					t.Fatalf("status = %s", s.Status)
				}
			},
		},
		{name: "low, unclassified, without a review", given: resolvedAs(low), when: closeIncident(customer, at(6*hour)), then: closedEvent(at(6 * hour))},
		{name: "low, classified neither", given: resolvedAs(low, classify(customer, at(hour), false, false)), when: closeIncident(customer, at(6*hour)), then: closedEvent(at(6 * hour))},
		{name: "critical without a review", given: resolvedAs(critical), when: closeIncident(customer, at(6*hour)), err: domain.ErrReviewRequired},
		{name: "high without a review", given: resolvedAs(high), when: closeIncident(customer, at(6*hour)), err: domain.ErrReviewRequired},
		{name: "reassessed high without a review", given: resolvedAs(low, assess(customer, at(hour), high)), when: closeIncident(customer, at(6*hour)), err: domain.ErrReviewRequired},
		{name: "low, significant for the other party", given: resolvedAs(low, classify(provider, at(hour), true, false)), when: closeIncident(customer, at(6*hour)), err: domain.ErrReviewRequired},
		{name: "medium, major", given: resolvedAs(medium, classify(customer, at(hour), false, true)), when: closeIncident(customer, at(6*hour)), err: domain.ErrReviewRequired},
		{
			name: "medium, declassified", given: resolvedAs(medium, classify(customer, at(hour), true, true), classify(customer, at(2*hour), false, false)),
			when: closeIncident(customer, at(6*hour)), then: closedEvent(at(6 * hour)),
		},
		{name: "critical with its review", given: with(resolvedAs(critical), review(customer, at(5*hour+sec))), when: closeIncident(customer, at(6*hour)), then: closedEvent(at(6 * hour))},
		{
			name: "major with its review", given: with(resolvedAs(low, classify(customer, at(hour), false, true)), review(provider, at(5*hour+sec))),
			when: closeIncident(customer, at(6*hour)), then: closedEvent(at(6 * hour)),
		},
		{name: "closed again", given: with(resolvedAs(low), closeIncident(customer, at(6*hour))), when: closeIncident(provider, at(7*hour))},
		{name: "open", given: history(report(severity(low))), when: closeIncident(customer, at(hour)), err: domain.ErrWrongStatus},
		{name: "contained", given: history(report(severity(low)), contain(customer, at(hour))), when: closeIncident(customer, at(2*hour)), err: domain.ErrWrongStatus},
		{
			name: "reopened", given: with(resolvedAs(low), closeIncident(customer, at(6*hour)), reopen(customer, at(7*hour))),
			when: closeIncident(customer, at(8*hour)), err: domain.ErrWrongStatus,
		},
	})
}

func with(base []domain.Command, more ...domain.Command) []domain.Command {
	return append(base[:len(base):len(base)], more...)
}

// ---- evolve, snapshots, mapping ---------------------------------------------

// everything is a history that touches every event type.
func everything() []domain.Command {
	return history(
		report(),
		assess(provider, at(30*time.Minute), critical),
		classify(customer, at(hour), true, true, "users"),
		notify(customer, at(2*hour), "n-1"),
		ack(provider, at(2*hour+time.Minute), "n-1"),
		classify(provider, at(3*hour), true, false),
		submit(customer, at(3*hour), nis2, earlyWarning),
		submit(customer, at(4*hour), dora, initial),
		&domain.AddTimelineEntry{By: by(provider, at(4*hour)), EntryID: "e-1", Text: "backups verified", OccurredAt: at(3 * hour)},
		assign(customer, at(4*hour), "t-1", provider, at(5*hour)),
		markOverdue(at(5*hour+sec), task1),
		complete(provider, at(6*hour), "t-1"),
		escalate(customer, at(6*hour)),
		contain(provider, at(7*hour)),
		markOverdue(at(4*day), nis2Cust),
		resolve(provider, at(5*day)),
		review(customer, at(5*day+hour)),
		closeIncident(customer, at(5*day+2*hour)),
	)
}

func TestEvolveNeverAltersItsInput(t *testing.T) {
	t.Parallel()
	var s domain.State
	for i, cmd := range everything() {
		es, err := domain.Decide(s, cmd)
		if err != nil {
			t.Fatalf("command %d (%T): %v", i, cmd, err)
		}
		for _, e := range es {
			before := snapshot(t, s)
			b := domain.ByOf(cmd)
			meta := domain.Meta{Time: b.At, Actor: b.Actor, Position: s.Position + 1}
			next := domain.Evolve(s, e, meta)
			if now := snapshot(t, s); now != before {
				t.Fatalf("evolving %s changed its input:\nbefore %s\nafter  %s", text([]proto.Message{e}), before, now)
			}
			if again := domain.Evolve(s, e, meta); !reflect.DeepEqual(again, next) {
				t.Fatalf("evolving %s twice from the same state differs", text([]proto.Message{e}))
			}
			// Changing the result leaves the input alone too.
			mutate(&next)
			if now := snapshot(t, s); now != before {
				t.Fatalf("the state after %s shares memory with its input", text([]proto.Message{e}))
			}
			s = domain.Evolve(s, e, meta)
		}
	}
	if s.Status != statusClosed || len(s.Timeline) != 19 {
		t.Fatalf("status %s, %d timeline entries", s.Status, len(s.Timeline))
	}
}

// mutate scribbles over everything a state holds by reference.
func mutate(s *domain.State) {
	for i := range s.AffectedServices {
		s.AffectedServices[i] = "x"
	}
	for i := range s.AffectedAssets {
		s.AffectedAssets[i] = "x"
	}
	for i := range s.ExternalRefs {
		s.ExternalRefs[i].ID = "x"
	}
	for i := range s.Deadlines {
		s.Deadlines[i].Within = 0
	}
	for k := range s.Aware {
		s.Aware[k] = time.Time{}
	}
	s.Aware["x"] = time.Time{}
	for i := range s.Classifications {
		s.Classifications[i].Major = !s.Classifications[i].Major
	}
	for i := range s.Clocks {
		s.Clocks[i].DueAt = time.Time{}
	}
	for i := range s.Notifications {
		s.Notifications[i].Channel = "x"
	}
	for i := range s.Submissions {
		s.Submissions[i].Reference = "x"
	}
	for i := range s.Tasks {
		s.Tasks[i].Title = "x"
	}
	for i := range s.Timeline {
		s.Timeline[i].Text = "x"
	}
	if s.Review != nil {
		s.Review.RootCause = "x"
	}
}

func TestEvolveIgnoresOtherMessages(t *testing.T) {
	t.Parallel()
	s := fold(t, report())
	meta := domain.Meta{Time: at(hour), Position: 9}
	for _, m := range []proto.Message{nil, durationpb.New(hour), &incidentsv1.ExerciseScheduled{ExerciseId: "x-1"}} {
		if got := domain.Evolve(s, m, meta); !reflect.DeepEqual(got, s) {
			t.Fatalf("%T changed the state:\n%+v\n%+v", m, got, s)
		}
	}
}

// An event folded with an older position (a replay of a snapshot's tail)
// does not move the state's position back.
func TestEvolveKeepsTheHighestPosition(t *testing.T) {
	t.Parallel()
	s := fold(t, report(), escalate(customer, at(hour)), escalate(customer, at(2*hour)))
	if s.Position != 3 {
		t.Fatalf("position = %d", s.Position)
	}
	e := &incidentsv1.IncidentEscalated{IncidentId: incidentID, Level: 3, Reason: "x", EscalatedAt: ts(at(3 * hour))}
	got := domain.Evolve(s, e, domain.Meta{Time: at(3 * hour), Actor: domain.Actor{Org: provider}, Position: 2})
	if got.Position != 3 || got.EscalationLevel != 3 || got.Timeline[3].Position != 2 || !got.UpdatedAt.Equal(at(3*hour)) {
		t.Fatalf("position %d, level %d, entry %+v", got.Position, got.EscalationLevel, got.Timeline[3])
	}
}

// TestStateJSONRoundTrip: the state is stored as a JSON snapshot; it comes
// back unchanged.
func TestStateJSONRoundTrip(t *testing.T) {
	t.Parallel()
	cmds := everything()
	for n := range len(cmds) + 1 {
		var s domain.State
		if n > 0 {
			s = fold(t, cmds[:n]...)
		}
		b := snapshot(t, s)
		var back domain.State
		if err := json.Unmarshal([]byte(b), &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, s) {
			t.Fatalf("after %d commands the round trip changed the state:\n%+v\n%+v", n, s, back)
		}
		if again := snapshot(t, back); again != b {
			t.Fatalf("json differs:\n%s\n%s", b, again)
		}
		// A snapshot folds on like the state it was taken from.
		if n > 0 && n < len(cmds) {
			es, err := domain.Decide(back, cmds[n])
			if err != nil {
				t.Fatalf("command %d on the snapshot: %v", n, err)
			}
			if got, want := apply(back, cmds[n], es...), fold(t, cmds[:n+1]...); !reflect.DeepEqual(got, want) {
				t.Fatalf("command %d on the snapshot:\n%+v\n%+v", n, got, want)
			}
		}
	}
}

func TestToProto(t *testing.T) {
	t.Parallel()
	s := fold(t, report(), classify(customer, at(hour), true, false), markOverdue(at(3*hour+sec), notice1))
	m := domain.ToProto(s, true)
	if m.GetIncidentId() != incidentID || m.GetContractId() != contractID || m.GetStatus() != statusOpen || m.GetSeverity() != high ||
		m.GetCustomerOrgId() != string(customer) || m.GetProviderOrgId() != string(provider) || m.GetReporterOrgId() != string(customer) ||
		m.GetTitle() != title || m.GetCategory() != "malware" || !m.GetAwareAt().AsTime().Equal(aware) || m.GetPosition() != 3 ||
		!m.GetReportedAt().AsTime().Equal(base) || !m.GetUpdatedAt().AsTime().Equal(at(3*hour+sec)) || len(m.GetExternalReferences()) != 1 {
		t.Fatalf("incident = %v", m)
	}
	if !m.GetOverdue() {
		t.Fatal("overdue notification clock not flagged")
	}
	wantClocks := []*incidentsv1.Clock{
		{ClockId: notice1, Kind: kindNotification, PartyOrgId: string(customer), StartedAt: ts(aware), DueAt: ts(at(3 * hour)), Overdue: true},
		{ClockId: ewCust, Kind: kindEarlyWarning, PartyOrgId: string(customer), StartedAt: ts(aware), DueAt: ts(aware.Add(24 * hour))},
		{ClockId: nis2Cust, Kind: kindNIS2Notice, PartyOrgId: string(customer), StartedAt: ts(aware), DueAt: ts(aware.Add(72 * hour))},
	}
	if len(m.GetClocks()) != len(wantClocks) {
		t.Fatalf("clocks = %v", m.GetClocks())
	}
	for i, k := range m.GetClocks() {
		if !proto.Equal(k, wantClocks[i]) {
			t.Fatalf("clock %d = %v, want %v", i, k, wantClocks[i])
		}
	}
	if k := m.GetClocks()[1]; k.GetMetAt() != nil {
		t.Fatalf("unmet clock has met_at %v", k.GetMetAt())
	}
	if c := m.GetClassifications(); len(c) != 1 || !c[0].GetSignificant() || !c[0].GetAwareAt().AsTime().Equal(aware) {
		t.Fatalf("classifications = %v", c)
	}
	if len(m.GetTimeline()) != 3 || len(m.GetTimeline()) != len(s.Timeline) ||
		m.GetTimeline()[2].GetKind() != "jsm.incidents.v1.ClockOverdue" || m.GetTimeline()[0].GetUserId() != "alice" || m.GetTimeline()[2].GetPosition() != 3 {
		t.Fatalf("timeline = %v", m.GetTimeline())
	}
	if l := domain.ToProto(s, false); l.GetTimeline() != nil || len(l.GetClocks()) != 3 {
		t.Fatalf("without timeline: %v", l)
	}

	// Met late: the clock stays overdue, the incident is not.
	s = fold(t, report(), markOverdue(at(3*hour+sec), notice1), notify(customer, at(4*hour), "n-1"), ack(provider, at(5*hour), "n-1"))
	m = domain.ToProto(s, true)
	if m.GetOverdue() || !m.GetClocks()[0].GetOverdue() || !m.GetClocks()[0].GetMetAt().AsTime().Equal(at(4*hour)) {
		t.Fatalf("met late: %v", m)
	}
	n := m.GetNotifications()
	if len(n) != 1 || n[0].GetNotificationId() != "n-1" || n[0].GetToOrgId() != string(provider) || !n[0].GetAcknowledgedAt().AsTime().Equal(at(5*hour)) {
		t.Fatalf("notifications = %v", n)
	}

	// Everything else is carried too.
	s = fold(t, everything()...)
	m = domain.ToProto(s, true)
	if len(m.GetSubmissions()) != 2 || len(m.GetTasks()) != 1 || !m.GetTasks()[0].GetCompletedAt().AsTime().Equal(at(6*hour)) ||
		m.GetReview().GetRootCause() != "phishing" || m.GetReview().GetOrgId() != string(customer) || m.GetEscalationLevel() != 1 ||
		m.GetStatus() != statusClosed || len(m.GetTimeline()) != len(s.Timeline) || len(m.GetClassifications()) != 2 ||
		!m.GetClassifications()[1].GetAwareAt().AsTime().Equal(at(2*hour)) {
		t.Fatalf("incident = %v", m)
	}
	// And the empty state maps to an empty message without zero timestamps.
	if e := domain.ToProto(domain.State{}, true); e.GetAwareAt() != nil || e.GetReportedAt() != nil || e.GetClocks() != nil {
		t.Fatalf("empty = %v", e)
	}
}

func TestDeadlinesMapping(t *testing.T) {
	t.Parallel()
	ds := terms().Deadlines
	if got := domain.DeadlinesFromProto(domain.DeadlinesToProto(ds)); !reflect.DeepEqual(got, ds) {
		t.Fatalf("deadlines = %+v", got)
	}
	if got := domain.DeadlinesFromProto(nil); got != nil {
		t.Fatalf("nil deadlines = %+v", got)
	}
}

func TestStateHelpers(t *testing.T) {
	t.Parallel()
	s := fold(t, report())
	if !s.Exists() || (domain.State{}).Exists() {
		t.Fatal("Exists is wrong")
	}
	if !s.IsParty(customer) || !s.IsParty(provider) || s.IsParty(outsider) || s.IsParty("") {
		t.Fatal("IsParty is wrong")
	}
	if s.Counterparty(customer) != provider || s.Counterparty(provider) != customer || s.Counterparty(outsider) != "" {
		t.Fatal("Counterparty is wrong")
	}
	if k, ok := s.Clock(notice1); !ok || k.Kind != kindNotification {
		t.Fatalf("Clock(%s) = %+v, %t", notice1, k, ok)
	}
	if _, ok := s.Clock("nope"); ok {
		t.Fatal("unknown clock found")
	}
	k, _ := s.Clock(notice1)
	if k.PassedAt(k.DueAt) || !k.PassedAt(k.DueAt.Add(time.Nanosecond)) {
		t.Fatal("PassedAt is wrong at the deadline")
	}
	k.MetAt = k.DueAt.Add(hour)
	if k.PassedAt(k.DueAt.Add(2*hour)) || !k.Met() {
		t.Fatal("a met clock has passed")
	}
	c := domain.Contract{Customer: customer, Provider: provider}
	if !c.IsParty(customer) || !c.IsParty(provider) || c.IsParty(outsider) || c.IsParty("") {
		t.Fatal("Contract.IsParty is wrong")
	}
	cmd := assess(provider, at(hour), low)
	if got := domain.ByOf(cmd); got != by(provider, at(hour)) {
		t.Fatalf("ByOf = %+v", got)
	}
	domain.Stamp(cmd, domain.Actor{Org: customer, User: "carol"}, at(2*hour))
	if cmd.Org != customer || cmd.User != "carol" || !cmd.At.Equal(at(2*hour)) {
		t.Fatalf("Stamp: %+v", cmd.By)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	err := error(domain.NotFoundError{What: "task", ID: "t-1"})
	if !errors.Is(err, domain.NotFoundError{}) || !errors.Is(err, domain.NotFoundError{What: "task"}) ||
		!errors.Is(err, domain.NotFoundError{ID: "t-1"}) || errors.Is(err, domain.NotFoundError{What: "notification"}) ||
		errors.Is(err, domain.NotFoundError{What: "task", ID: "t-2"}) || errors.Is(err, domain.ErrInvalid) {
		t.Fatal("NotFoundError does not match as documented")
	}
	if err.Error() != "task t-1 not found" || (domain.NotFoundError{What: "incident"}).Error() != "incident not found" {
		t.Fatalf("message = %q", err)
	}
	_, err = domain.Decide(fold(t, report()), notify(customer, at(hour), ""))
	var ve domain.ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, domain.ErrInvalid) || errors.Is(err, domain.ErrNotParty) {
		t.Fatalf("error = %v", err)
	}
	if err.Error() != "invalid notification_id: must not be empty" {
		t.Fatalf("message = %q", err)
	}
	_, err = domain.Decide(fold(t, report()), assess(outsider, at(hour), low))
	if err == nil || err.Error() != `org "org-outsider": org is not a party to the contract` {
		t.Fatalf("message = %v", err)
	}
}

// A submission cannot predate the org's awareness (it would meet a clock
// "in time" that had not started), and a retried timeline entry is not
// added twice.
func TestBackdatingAndRetriedEntries(t *testing.T) {
	t.Parallel()
	s := fold(t, report(), classify(provider, at(2*hour), true, false))
	early := submit(provider, at(3*hour), nis2, earlyWarning)
	early.SubmittedAt = at(-time.Hour)
	if _, err := domain.Decide(s, early); !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("a submission before the org's awareness: %v, want invalid", err)
	}
	entry := &domain.AddTimelineEntry{By: by(provider, at(hour)), EntryID: "e-1", Text: "firewall rule added"}
	s = fold(t, report(), entry)
	evs, err := domain.Decide(s, entry)
	if err != nil || len(evs) != 0 {
		t.Fatalf("the same entry again: %v, %v; want nothing", evs, err)
	}
}
