package domain

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
	incidentsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/incidents/v1"
)

const (
	kindNotification = incidentsv1.ClockKind_CLOCK_KIND_PARTY_NOTIFICATION
	kindEarlyWarning = incidentsv1.ClockKind_CLOCK_KIND_NIS2_EARLY_WARNING
	kindNIS2Notice   = incidentsv1.ClockKind_CLOCK_KIND_NIS2_NOTIFICATION
	kindNIS2Final    = incidentsv1.ClockKind_CLOCK_KIND_NIS2_FINAL_REPORT
	kindDORAInitial  = incidentsv1.ClockKind_CLOCK_KIND_DORA_INITIAL
	kindDORAInterim  = incidentsv1.ClockKind_CLOCK_KIND_DORA_INTERMEDIATE
	kindDORAFinal    = incidentsv1.ClockKind_CLOCK_KIND_DORA_FINAL
	kindTask         = incidentsv1.ClockKind_CLOCK_KIND_TASK
)

var (
	nis2Kinds = []incidentsv1.ClockKind{kindEarlyWarning, kindNIS2Notice, kindNIS2Final}
	doraKinds = []incidentsv1.ClockKind{kindDORAInitial, kindDORAInterim, kindDORAFinal}
)

// submissionMeets lists the clocks a submission meets. A NIS2 notification
// also meets a missing early warning: the notification carries everything
// the early warning would have.
func submissionMeets(r incidentsv1.Regime, k incidentsv1.SubmissionKind) []incidentsv1.ClockKind {
	switch {
	case r == incidentsv1.Regime_REGIME_NIS2 && k == incidentsv1.SubmissionKind_SUBMISSION_KIND_EARLY_WARNING:
		return []incidentsv1.ClockKind{kindEarlyWarning}
	case r == incidentsv1.Regime_REGIME_NIS2 && k == incidentsv1.SubmissionKind_SUBMISSION_KIND_NOTIFICATION:
		return []incidentsv1.ClockKind{kindEarlyWarning, kindNIS2Notice}
	case r == incidentsv1.Regime_REGIME_NIS2 && k == incidentsv1.SubmissionKind_SUBMISSION_KIND_FINAL_REPORT:
		return []incidentsv1.ClockKind{kindNIS2Final}
	case r == incidentsv1.Regime_REGIME_DORA && k == incidentsv1.SubmissionKind_SUBMISSION_KIND_INITIAL:
		return []incidentsv1.ClockKind{kindDORAInitial}
	case r == incidentsv1.Regime_REGIME_DORA && k == incidentsv1.SubmissionKind_SUBMISSION_KIND_INTERMEDIATE:
		return []incidentsv1.ClockKind{kindDORAInterim}
	case r == incidentsv1.Regime_REGIME_DORA && k == incidentsv1.SubmissionKind_SUBMISSION_KIND_FINAL_REPORT:
		return []incidentsv1.ClockKind{kindDORAFinal}
	}
	return nil
}

func clockID(k incidentsv1.ClockKind, party OrgID) string {
	return strings.ToLower(strings.TrimPrefix(k.String(), "CLOCK_KIND_")) + "/" + string(party)
}

func taskClockID(task string) string { return "task/" + task }

// Evolve applies one event to the state. It copies what it changes, so a
// state given to it is never altered (the runner's cache shares states).
func Evolve(s State, m proto.Message, meta Meta) State {
	s = s.clone()
	t := meta.Time
	entry := Entry{At: t, Org: meta.Actor.Org, User: meta.Actor.User, Kind: string(proto.MessageName(m)), Position: meta.Position}
	switch e := m.(type) {
	case *incidentsv1.IncidentReported:
		s = State{
			ID:               e.GetIncidentId(),
			ContractID:       e.GetContractId(),
			Customer:         OrgID(e.GetCustomerOrgId()),
			Provider:         OrgID(e.GetProviderOrgId()),
			Reporter:         OrgID(e.GetReporterOrgId()),
			Title:            e.GetTitle(),
			Description:      e.GetDescription(),
			Severity:         e.GetSeverity(),
			Category:         e.GetCategory(),
			AffectedServices: slices.Clone(e.GetAffectedServices()),
			AffectedAssets:   slices.Clone(e.GetAffectedAssets()),
			AwareAt:          e.GetAwareAt().AsTime(),
			Deadlines:        DeadlinesFromProto(e.GetNotificationDeadlines()),
			Status:           statusOpen,
			Aware:            map[OrgID]time.Time{OrgID(e.GetReporterOrgId()): e.GetAwareAt().AsTime()},
			ReportedAt:       e.GetReportedAt().AsTime(),
		}
		for _, r := range e.GetExternalReferences() {
			s.ExternalRefs = append(s.ExternalRefs, ExternalRef{System: r.GetSystem(), ID: r.GetId(), URL: r.GetUrl()})
		}
		if within, ok := deadlineFor(s.Deadlines, s.Severity); ok {
			s.startNotificationClock(s.AwareAt, within)
		}
		entry.Text = fmt.Sprintf("%s incident reported: %s", sevName(e.GetSeverity()), e.GetTitle())
	case *incidentsv1.IncidentAssessed:
		prev := s.Severity
		s.Severity, s.Category = e.GetSeverity(), e.GetCategory()
		at := e.GetAssessedAt().AsTime()
		if within, ok := deadlineFor(s.Deadlines, s.Severity); ok && moreSevere(s.Severity, prev) {
			s.restartNotificationClock(at, within)
		}
		entry.Text = fmt.Sprintf("assessed %s (was %s), category %q: %s", sevName(s.Severity), sevName(prev), s.Category, e.GetRationale())
	case *incidentsv1.IncidentClassified:
		s.classify(e)
		entry.Text = fmt.Sprintf("%s classified: significant (NIS2) %t, major (DORA) %t", e.GetOrgId(), e.GetSignificant(), e.GetMajor())
	case *incidentsv1.PartyNotified:
		at := e.GetNotifiedAt().AsTime()
		s.Notifications = append(s.Notifications, Notification{
			ID: e.GetNotificationId(), From: OrgID(e.GetFromOrgId()), To: OrgID(e.GetToOrgId()),
			Channel: e.GetChannel(), Content: e.GetContent(), Severity: e.GetSeverity(), NotifiedAt: at,
		})
		s.meet(at, func(k Clock) bool { return k.Kind == kindNotification && k.Party == OrgID(e.GetFromOrgId()) })
		if _, ok := s.Aware[OrgID(e.GetToOrgId())]; !ok {
			s.Aware[OrgID(e.GetToOrgId())] = at
		}
		entry.Text = fmt.Sprintf("%s notified %s by %s", e.GetFromOrgId(), e.GetToOrgId(), e.GetChannel())
	case *incidentsv1.NotificationAcknowledged:
		for i := range s.Notifications {
			if s.Notifications[i].ID == e.GetNotificationId() {
				s.Notifications[i].AcknowledgedAt = e.GetAcknowledgedAt().AsTime()
			}
		}
		entry.Text = fmt.Sprintf("%s acknowledged notification %s", e.GetOrgId(), e.GetNotificationId())
	case *incidentsv1.RegulatorySubmissionRecorded:
		s.submit(e)
		entry.Text = fmt.Sprintf("%s submitted the %s %s to %s, reference %s", e.GetOrgId(), e.GetRegime(), e.GetKind(), e.GetAuthority(), e.GetReference())
	case *incidentsv1.TimelineEntryAdded:
		entry.ID, entry.At, entry.Kind, entry.Text = e.GetEntryId(), e.GetOccurredAt().AsTime(), "note", e.GetText()
	case *incidentsv1.TaskAssigned:
		task := Task{ID: e.GetTaskId(), Title: e.GetTitle(), Assignee: OrgID(e.GetAssigneeOrgId()), DueAt: e.GetDueAt().AsTime()}
		s.Tasks = append(s.Tasks, task)
		s.Clocks = append(s.Clocks, Clock{ID: taskClockID(task.ID), Kind: kindTask, Party: task.Assignee, StartedAt: t, DueAt: task.DueAt})
		entry.Text = fmt.Sprintf("task %q assigned to %s, due %s", task.Title, task.Assignee, stamp(task.DueAt))
	case *incidentsv1.TaskCompleted:
		at := e.GetCompletedAt().AsTime()
		for i := range s.Tasks {
			if s.Tasks[i].ID == e.GetTaskId() {
				s.Tasks[i].CompletedAt, s.Tasks[i].Note = at, e.GetNote()
				entry.Text = fmt.Sprintf("task %q completed", s.Tasks[i].Title)
			}
		}
		s.meet(at, func(k Clock) bool { return k.ID == taskClockID(e.GetTaskId()) })
	case *incidentsv1.IncidentEscalated:
		s.EscalationLevel = e.GetLevel()
		entry.Text = fmt.Sprintf("escalated to level %d: %s", e.GetLevel(), e.GetReason())
	case *incidentsv1.IncidentContained:
		s.Status, entry.Text = statusContained, e.GetSummary()
	case *incidentsv1.IncidentResolved:
		s.Status, entry.Text = statusResolved, e.GetSummary()
	case *incidentsv1.IncidentReopened:
		s.Status, entry.Text = statusOpen, e.GetReason()
	case *incidentsv1.ReviewRecorded:
		s.Review = &Review{
			RootCause:        e.GetRootCause(),
			LessonsLearned:   slices.Clone(e.GetLessonsLearned()),
			FollowUpMeasures: slices.Clone(e.GetFollowUpMeasures()),
			ReviewedAt:       e.GetReviewedAt().AsTime(),
			Org:              meta.Actor.Org,
		}
		entry.Text = "root cause: " + e.GetRootCause()
	case *incidentsv1.IncidentClosed:
		s.Status = statusClosed
	case *incidentsv1.ClockOverdue:
		for i := range s.Clocks {
			if s.Clocks[i].ID == e.GetClockId() {
				s.Clocks[i].Overdue = true
			}
		}
		entry.Text = fmt.Sprintf("%s overdue for %s since %s", e.GetClockId(), e.GetPartyOrgId(), stamp(e.GetDueAt().AsTime()))
	default:
		return s // not an incident event: leave the state alone
	}
	s.Timeline = append(s.Timeline, entry)
	s.UpdatedAt = t
	if meta.Position > s.Position {
		s.Position = meta.Position
	}
	return s
}

func (s *State) startNotificationClock(from time.Time, within time.Duration) {
	n := 1 + len(slices.DeleteFunc(slices.Clone(s.Clocks), func(k Clock) bool { return k.Kind != kindNotification }))
	s.Clocks = append(s.Clocks, Clock{
		ID:        fmt.Sprintf("party_notification/%s/%d", s.Reporter, n),
		Kind:      kindNotification,
		Party:     s.Reporter,
		StartedAt: from,
		DueAt:     from.Add(within),
	})
}

// restartNotificationClock: a reassessment to a higher severity at `at`
// restarts the notification clock with the contract's deadline for the new
// severity. A notice still owed is owed by the earlier of the two
// deadlines; once the other party has been notified, it must be notified
// again of the higher severity.
func (s *State) restartNotificationClock(at time.Time, within time.Duration) {
	for i := len(s.Clocks) - 1; i >= 0; i-- {
		k := &s.Clocks[i]
		if k.Kind != kindNotification {
			continue
		}
		if !k.Met() {
			if due := at.Add(within); due.Before(k.DueAt) {
				k.DueAt, k.StartedAt = due, at
			}
			return
		}
		break
	}
	s.startNotificationClock(at, within)
}

func (s *State) classify(e *incidentsv1.IncidentClassified) {
	org := OrgID(e.GetOrgId())
	at := e.GetClassifiedAt().AsTime()
	if e.GetAwareAt() != nil {
		if _, ok := s.Aware[org]; !ok {
			s.Aware[org] = e.GetAwareAt().AsTime()
		}
	}
	aware := s.Aware[org]
	c := Classification{Org: org, Significant: e.GetSignificant(), Major: e.GetMajor(), Criteria: slices.Clone(e.GetCriteria()), ClassifiedAt: at}
	old, had := s.ClassificationOf(org)
	if had && old.Major {
		c.MajorSince = old.MajorSince
	}
	if c.Major && c.MajorSince.IsZero() {
		c.MajorSince = at
	}
	if had {
		s.Classifications[slices.IndexFunc(s.Classifications, func(x Classification) bool { return x.Org == org })] = c
	} else {
		s.Classifications = append(s.Classifications, c)
	}

	if c.Significant {
		s.ensureClock(kindEarlyWarning, org, aware, aware.Add(NIS2EarlyWarningWithin))
		s.ensureClock(kindNIS2Notice, org, aware, aware.Add(NIS2NotificationWithin))
	} else {
		s.dropPending(org, nis2Kinds)
	}
	if c.Major {
		due := c.MajorSince.Add(DORAInitialAfterClass)
		if latest := aware.Add(DORAInitialAfterAware); latest.Before(due) {
			due = latest
		}
		s.ensureClock(kindDORAInitial, org, c.MajorSince, due)
	} else {
		s.dropPending(org, doraKinds)
	}
}

func (s *State) submit(e *incidentsv1.RegulatorySubmissionRecorded) {
	org := OrgID(e.GetOrgId())
	at := e.GetSubmittedAt().AsTime()
	s.Submissions = append(s.Submissions, Submission{
		Org: org, Regime: e.GetRegime(), Kind: e.GetKind(), Reference: e.GetReference(), Authority: e.GetAuthority(), SubmittedAt: at,
	})
	met := submissionMeets(e.GetRegime(), e.GetKind())
	s.meet(at, func(k Clock) bool { return k.Party == org && slices.Contains(met, k.Kind) })
	switch {
	case slices.Contains(met, kindNIS2Notice):
		s.ensureClock(kindNIS2Final, org, at, monthAfter(at))
	case slices.Contains(met, kindDORAInitial):
		s.ensureClock(kindDORAInterim, org, at, at.Add(DORAIntermediateWithin))
	case slices.Contains(met, kindDORAInterim):
		// The final report is due a month after the last intermediate one.
		id := clockID(kindDORAFinal, org)
		if i := slices.IndexFunc(s.Clocks, func(k Clock) bool { return k.ID == id }); i >= 0 {
			if k := &s.Clocks[i]; !k.Met() && !k.Overdue {
				k.StartedAt, k.DueAt = at, monthAfter(at)
			}
			return
		}
		s.ensureClock(kindDORAFinal, org, at, monthAfter(at))
	}
}

// ensureClock adds the party's clock of a kind unless it has it.
func (s *State) ensureClock(kind incidentsv1.ClockKind, party OrgID, from, due time.Time) {
	id := clockID(kind, party)
	if slices.ContainsFunc(s.Clocks, func(k Clock) bool { return k.ID == id }) {
		return
	}
	s.Clocks = append(s.Clocks, Clock{ID: id, Kind: kind, Party: party, StartedAt: from, DueAt: due})
}

// dropPending removes the party's clocks of kinds that no longer apply,
// unless met or recorded overdue: those stay as history.
func (s *State) dropPending(party OrgID, kinds []incidentsv1.ClockKind) {
	s.Clocks = slices.DeleteFunc(s.Clocks, func(k Clock) bool {
		return k.Party == party && slices.Contains(kinds, k.Kind) && !k.Met() && !k.Overdue
	})
}

// meet marks the matching unmet clocks met at t.
func (s *State) meet(t time.Time, match func(Clock) bool) {
	for i := range s.Clocks {
		if k := &s.Clocks[i]; !k.Met() && match(*k) {
			k.MetAt = t
		}
	}
}

func (s State) clone() State {
	s.AffectedServices = slices.Clone(s.AffectedServices)
	s.AffectedAssets = slices.Clone(s.AffectedAssets)
	s.ExternalRefs = slices.Clone(s.ExternalRefs)
	s.Deadlines = slices.Clone(s.Deadlines)
	s.Aware = maps.Clone(s.Aware)
	s.Classifications = slices.Clone(s.Classifications)
	s.Clocks = slices.Clone(s.Clocks)
	s.Notifications = slices.Clone(s.Notifications)
	s.Submissions = slices.Clone(s.Submissions)
	s.Tasks = slices.Clone(s.Tasks)
	s.Timeline = slices.Clone(s.Timeline)
	if s.Review != nil {
		r := *s.Review
		s.Review = &r
	}
	if s.Aware == nil {
		s.Aware = map[OrgID]time.Time{}
	}
	return s
}

func sevName(sev commonv1.Severity) string {
	return strings.ToLower(strings.TrimPrefix(sev.String(), "SEVERITY_"))
}
