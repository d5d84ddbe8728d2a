package domain

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/jsmplatform/jsm/libs/decide"
	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
	incidentsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/incidents/v1"
)

// Decide checks cmd against s and returns the events it causes, or a domain
// error. No events and no error means the command changes nothing (it was
// given before, or asks for what is already so).
func Decide(s State, cmd Command) ([]proto.Message, error) {
	if decide.Missing(cmd) {
		return nil, invalid("command", "missing")
	}
	if c, ok := cmd.(*ReportIncident); ok {
		return decideReport(s, c)
	}
	if !s.Exists() {
		return nil, NotFoundError{What: "incident"}
	}
	if c, ok := cmd.(*MarkOverdue); ok {
		return decideOverdue(s, c)
	}
	b := ByOf(cmd)
	if !s.IsParty(b.Org) {
		return nil, fmt.Errorf("org %q: %w", b.Org, ErrNotParty)
	}
	switch c := cmd.(type) {
	case *AssessIncident:
		return decideAssess(s, c)
	case *ClassifyIncident:
		return decideClassify(s, c)
	case *NotifyParty:
		return decideNotify(s, c)
	case *AcknowledgeNotification:
		return decideAcknowledge(s, c)
	case *RecordRegulatorySubmission:
		return decideSubmission(s, c)
	case *AddTimelineEntry:
		return decideTimelineEntry(s, c)
	case *AssignTask:
		return decideAssignTask(s, c)
	case *CompleteTask:
		return decideCompleteTask(s, c)
	case *EscalateIncident:
		return decideEscalate(s, c)
	case *ContainIncident:
		return decideContain(s, c)
	case *ResolveIncident:
		return decideResolve(s, c)
	case *ReopenIncident:
		return decideReopen(s, c)
	case *RecordReview:
		return decideReview(s, c)
	case *CloseIncident:
		return decideClose(s, c)
	default:
		return nil, invalid("command", "unknown command %T", cmd)
	}
}

var (
	statusOpen      = incidentsv1.IncidentStatus_INCIDENT_STATUS_OPEN
	statusContained = incidentsv1.IncidentStatus_INCIDENT_STATUS_CONTAINED
	statusResolved  = incidentsv1.IncidentStatus_INCIDENT_STATUS_RESOLVED
	statusClosed    = incidentsv1.IncidentStatus_INCIDENT_STATUS_CLOSED
)

func decideReport(s State, c *ReportIncident) ([]proto.Message, error) {
	if s.Exists() {
		return nil, fmt.Errorf("incident %s: %w", s.ID, ErrAlreadyExists)
	}
	k := c.Contract
	switch {
	case blank(c.IncidentID):
		return nil, invalid("incident_id", "must not be empty")
	case k.ID == "":
		return nil, NotFoundError{What: "contract"}
	case !k.IsParty(c.Org):
		return nil, fmt.Errorf("org %q reporting on contract %s: %w", c.Org, k.ID, ErrNotParty)
	case !k.InForce:
		return nil, fmt.Errorf("contract %s has no terms in force: %w", k.ID, ErrContractNotActive)
	case !k.EndsAt.IsZero() && !c.At.Before(k.EndsAt):
		return nil, fmt.Errorf("contract %s ended %s: %w", k.ID, k.EndsAt.UTC().Format(time.RFC3339), ErrContractNotActive)
	case blank(c.Title):
		return nil, invalid("title", "must not be empty")
	case !validSeverity(c.Severity):
		return nil, invalid("severity", "must be critical, high, medium or low")
	case c.AwareAt.IsZero():
		return nil, invalid("aware_at", "must be set")
	case c.AwareAt.After(c.At):
		return nil, invalid("aware_at", "must not be in the future (%s is after %s)", stamp(c.AwareAt), stamp(c.At))
	}
	if err := distinct("affected_services", c.AffectedServices); err != nil {
		return nil, err
	}
	if err := distinct("affected_assets", c.AffectedAssets); err != nil {
		return nil, err
	}
	refs := make([]*incidentsv1.ExternalReference, len(c.ExternalRefs))
	for i, r := range c.ExternalRefs {
		if blank(r.System) || blank(r.ID) {
			return nil, invalid(fmt.Sprintf("external_references[%d]", i), "system and id must not be empty")
		}
		refs[i] = &incidentsv1.ExternalReference{System: r.System, Id: r.ID, Url: r.URL}
	}
	return one(&incidentsv1.IncidentReported{
		IncidentId:            c.IncidentID,
		ContractId:            k.ID,
		CustomerOrgId:         string(k.Customer),
		ProviderOrgId:         string(k.Provider),
		ReporterOrgId:         string(c.Org),
		Title:                 c.Title,
		Description:           c.Description,
		Severity:              c.Severity,
		Category:              c.Category,
		AffectedServices:      slices.Clone(c.AffectedServices),
		AffectedAssets:        slices.Clone(c.AffectedAssets),
		AwareAt:               timestamppb.New(c.AwareAt),
		ExternalReferences:    refs,
		NotificationDeadlines: DeadlinesToProto(k.Deadlines),
		ReportedAt:            timestamppb.New(c.At),
	}), nil
}

func decideAssess(s State, c *AssessIncident) ([]proto.Message, error) {
	if err := notClosed(s); err != nil {
		return nil, err
	}
	if !validSeverity(c.Severity) {
		return nil, invalid("severity", "must be critical, high, medium or low")
	}
	category := c.Category
	if category == "" {
		category = s.Category
	}
	if c.Severity == s.Severity && category == s.Category {
		return nil, nil
	}
	return one(&incidentsv1.IncidentAssessed{
		IncidentId:       s.ID,
		Severity:         c.Severity,
		Category:         category,
		Rationale:        c.Rationale,
		AssessedAt:       timestamppb.New(c.At),
		PreviousSeverity: s.Severity,
	}), nil
}

func decideClassify(s State, c *ClassifyIncident) ([]proto.Message, error) {
	_, known := s.Aware[c.Org]
	if !c.AwareAt.IsZero() && c.AwareAt.After(c.At) {
		return nil, invalid("aware_at", "must not be in the future (%s is after %s)", stamp(c.AwareAt), stamp(c.At))
	}
	if old, ok := s.ClassificationOf(c.Org); ok && old.Significant == c.Significant && old.Major == c.Major && slices.Equal(old.Criteria, c.Criteria) {
		return nil, nil
	}
	e := &incidentsv1.IncidentClassified{
		IncidentId:   s.ID,
		OrgId:        string(c.Org),
		Significant:  c.Significant,
		Major:        c.Major,
		Criteria:     slices.Clone(c.Criteria),
		ClassifiedAt: timestamppb.New(c.At),
	}
	if !known {
		aware := c.AwareAt
		if aware.IsZero() {
			aware = c.At
		}
		e.AwareAt = timestamppb.New(aware)
	}
	return one(e), nil
}

func decideNotify(s State, c *NotifyParty) ([]proto.Message, error) {
	switch {
	case blank(c.NotificationID):
		return nil, invalid("notification_id", "must not be empty")
	case blank(c.Channel):
		return nil, invalid("channel", "must not be empty")
	case blank(c.Content):
		return nil, invalid("content", "must not be empty")
	case slices.ContainsFunc(s.Notifications, func(n Notification) bool { return n.ID == c.NotificationID }):
		return nil, fmt.Errorf("notification %s: %w", c.NotificationID, ErrAlreadyExists)
	}
	out := lateFirst(s, c.At, func(k Clock) bool { return k.Kind == kindNotification && k.Party == c.Org && !k.Met() }, c.At)
	return append(out, &incidentsv1.PartyNotified{
		IncidentId:     s.ID,
		NotificationId: c.NotificationID,
		FromOrgId:      string(c.Org),
		ToOrgId:        string(s.Counterparty(c.Org)),
		Channel:        c.Channel,
		Content:        c.Content,
		Severity:       s.Severity,
		NotifiedAt:     timestamppb.New(c.At),
	}), nil
}

func decideAcknowledge(s State, c *AcknowledgeNotification) ([]proto.Message, error) {
	i := slices.IndexFunc(s.Notifications, func(n Notification) bool { return n.ID == c.NotificationID })
	if i < 0 {
		return nil, NotFoundError{What: "notification", ID: c.NotificationID}
	}
	n := s.Notifications[i]
	if n.To != c.Org {
		return nil, fmt.Errorf("only %q, the recipient, acknowledges notification %s: %w", n.To, n.ID, ErrWrongParty)
	}
	if !n.AcknowledgedAt.IsZero() {
		return nil, nil
	}
	return one(&incidentsv1.NotificationAcknowledged{
		IncidentId:     s.ID,
		NotificationId: n.ID,
		OrgId:          string(c.Org),
		AcknowledgedAt: timestamppb.New(c.At),
	}), nil
}

// submissionKinds are the reports each regime knows, and the kind each
// needs submitted before it.
var submissionKinds = map[incidentsv1.Regime]map[incidentsv1.SubmissionKind]incidentsv1.SubmissionKind{
	incidentsv1.Regime_REGIME_NIS2: {
		incidentsv1.SubmissionKind_SUBMISSION_KIND_EARLY_WARNING: 0,
		incidentsv1.SubmissionKind_SUBMISSION_KIND_NOTIFICATION:  0,
		incidentsv1.SubmissionKind_SUBMISSION_KIND_FINAL_REPORT:  incidentsv1.SubmissionKind_SUBMISSION_KIND_NOTIFICATION,
	},
	incidentsv1.Regime_REGIME_DORA: {
		incidentsv1.SubmissionKind_SUBMISSION_KIND_INITIAL:      0,
		incidentsv1.SubmissionKind_SUBMISSION_KIND_INTERMEDIATE: incidentsv1.SubmissionKind_SUBMISSION_KIND_INITIAL,
		incidentsv1.SubmissionKind_SUBMISSION_KIND_FINAL_REPORT: incidentsv1.SubmissionKind_SUBMISSION_KIND_INTERMEDIATE,
	},
}

func decideSubmission(s State, c *RecordRegulatorySubmission) ([]proto.Message, error) {
	kinds, ok := submissionKinds[c.Regime]
	if !ok {
		return nil, invalid("regime", "must be NIS2 or DORA")
	}
	needs, ok := kinds[c.Kind]
	if !ok {
		return nil, invalid("kind", "%s is not a report under %s", c.Kind, c.Regime)
	}
	if blank(c.Reference) {
		return nil, invalid("reference", "must not be empty")
	}
	at := c.SubmittedAt
	if at.IsZero() {
		at = c.At
	}
	if at.After(c.At) {
		return nil, invalid("submitted_at", "must not be in the future (%s is after %s)", stamp(at), stamp(c.At))
	}
	if aware, ok := s.Aware[c.Org]; ok && at.Before(aware) {
		return nil, invalid("submitted_at", "must not be before the org became aware of the incident (%s)", stamp(aware))
	}
	cl, _ := s.ClassificationOf(c.Org)
	if (c.Regime == incidentsv1.Regime_REGIME_NIS2 && !cl.Significant) || (c.Regime == incidentsv1.Regime_REGIME_DORA && !cl.Major) {
		return nil, fmt.Errorf("org %q, %s: %w", c.Org, c.Regime, ErrNotClassified)
	}
	if needs != 0 && !slices.ContainsFunc(s.Submissions, func(x Submission) bool {
		return x.Org == c.Org && x.Regime == c.Regime && x.Kind == needs
	}) {
		return nil, fmt.Errorf("%s %s needs the %s first: %w", c.Regime, c.Kind, needs, ErrOutOfOrder)
	}
	met := submissionMeets(c.Regime, c.Kind)
	out := lateFirst(s, at, func(k Clock) bool { return k.Party == c.Org && slices.Contains(met, k.Kind) && !k.Met() }, c.At)
	return append(out, &incidentsv1.RegulatorySubmissionRecorded{
		IncidentId:  s.ID,
		OrgId:       string(c.Org),
		Regime:      c.Regime,
		Kind:        c.Kind,
		Reference:   c.Reference,
		Authority:   c.Authority,
		SubmittedAt: timestamppb.New(at),
	}), nil
}

func decideTimelineEntry(s State, c *AddTimelineEntry) ([]proto.Message, error) {
	at := c.OccurredAt
	if at.IsZero() {
		at = c.At
	}
	switch {
	case blank(c.EntryID):
		return nil, invalid("entry_id", "must not be empty")
	case blank(c.Text):
		return nil, invalid("text", "must not be empty")
	case at.After(c.At):
		return nil, invalid("occurred_at", "must not be in the future (%s is after %s)", stamp(at), stamp(c.At))
	case slices.ContainsFunc(s.Timeline, func(e Entry) bool { return e.ID == c.EntryID }):
		return nil, nil // a retried request: the entry is there
	}
	return one(&incidentsv1.TimelineEntryAdded{IncidentId: s.ID, EntryId: c.EntryID, Text: c.Text, OccurredAt: timestamppb.New(at)}), nil
}

func decideAssignTask(s State, c *AssignTask) ([]proto.Message, error) {
	if err := notClosed(s); err != nil {
		return nil, err
	}
	switch {
	case blank(c.TaskID):
		return nil, invalid("task_id", "must not be empty")
	case blank(c.Title):
		return nil, invalid("title", "must not be empty")
	case !s.IsParty(c.Assignee):
		return nil, invalid("assignee_org_id", "org %q is not a party to the contract", c.Assignee)
	case !c.DueAt.After(c.At):
		return nil, invalid("due_at", "must be in the future")
	case slices.ContainsFunc(s.Tasks, func(t Task) bool { return t.ID == c.TaskID }):
		return nil, fmt.Errorf("task %s: %w", c.TaskID, ErrAlreadyExists)
	}
	return one(&incidentsv1.TaskAssigned{IncidentId: s.ID, TaskId: c.TaskID, Title: c.Title, AssigneeOrgId: string(c.Assignee), DueAt: timestamppb.New(c.DueAt)}), nil
}

func decideCompleteTask(s State, c *CompleteTask) ([]proto.Message, error) {
	i := slices.IndexFunc(s.Tasks, func(t Task) bool { return t.ID == c.TaskID })
	if i < 0 {
		return nil, NotFoundError{What: "task", ID: c.TaskID}
	}
	t := s.Tasks[i]
	if t.Assignee != c.Org {
		return nil, fmt.Errorf("task %s is assigned to %q: %w", t.ID, t.Assignee, ErrWrongParty)
	}
	if !t.CompletedAt.IsZero() {
		return nil, nil
	}
	out := lateFirst(s, c.At, func(k Clock) bool { return k.ID == taskClockID(t.ID) && !k.Met() }, c.At)
	return append(out, &incidentsv1.TaskCompleted{IncidentId: s.ID, TaskId: t.ID, Note: c.Note, CompletedAt: timestamppb.New(c.At)}), nil
}

func decideEscalate(s State, c *EscalateIncident) ([]proto.Message, error) {
	if s.Status == statusResolved || s.Status == statusClosed {
		return nil, fmt.Errorf("%w: a %s incident is not escalated; reopen it first", ErrWrongStatus, statusName(s.Status))
	}
	if blank(c.Reason) {
		return nil, invalid("reason", "must not be empty")
	}
	return one(&incidentsv1.IncidentEscalated{IncidentId: s.ID, Level: s.EscalationLevel + 1, Reason: c.Reason, EscalatedAt: timestamppb.New(c.At)}), nil
}

func decideContain(s State, c *ContainIncident) ([]proto.Message, error) {
	switch s.Status {
	case statusContained:
		return nil, nil
	case statusOpen:
	default:
		return nil, fmt.Errorf("%w: only an open incident is contained, this one is %s", ErrWrongStatus, statusName(s.Status))
	}
	if blank(c.Summary) {
		return nil, invalid("summary", "must not be empty")
	}
	return one(&incidentsv1.IncidentContained{IncidentId: s.ID, Summary: c.Summary, ContainedAt: timestamppb.New(c.At)}), nil
}

func decideResolve(s State, c *ResolveIncident) ([]proto.Message, error) {
	switch s.Status {
	case statusResolved:
		return nil, nil
	case statusOpen, statusContained:
	default:
		return nil, fmt.Errorf("%w: a %s incident is not resolved again; reopen it first", ErrWrongStatus, statusName(s.Status))
	}
	if blank(c.Summary) {
		return nil, invalid("summary", "must not be empty")
	}
	return one(&incidentsv1.IncidentResolved{IncidentId: s.ID, Summary: c.Summary, ResolvedAt: timestamppb.New(c.At)}), nil
}

func decideReopen(s State, c *ReopenIncident) ([]proto.Message, error) {
	if s.Status != statusResolved && s.Status != statusClosed {
		return nil, fmt.Errorf("%w: only a resolved or closed incident is reopened, this one is %s", ErrWrongStatus, statusName(s.Status))
	}
	if blank(c.Reason) {
		return nil, invalid("reason", "must not be empty")
	}
	return one(&incidentsv1.IncidentReopened{IncidentId: s.ID, Reason: c.Reason, ReopenedAt: timestamppb.New(c.At)}), nil
}

func decideReview(s State, c *RecordReview) ([]proto.Message, error) {
	if s.Status != statusResolved {
		return nil, fmt.Errorf("%w: the review follows resolution, this incident is %s", ErrWrongStatus, statusName(s.Status))
	}
	if blank(c.RootCause) {
		return nil, invalid("root_cause", "must not be empty")
	}
	return one(&incidentsv1.ReviewRecorded{
		IncidentId:       s.ID,
		RootCause:        c.RootCause,
		LessonsLearned:   slices.Clone(c.LessonsLearned),
		FollowUpMeasures: slices.Clone(c.FollowUpMeasures),
		ReviewedAt:       timestamppb.New(c.At),
	}), nil
}

func decideClose(s State, c *CloseIncident) ([]proto.Message, error) {
	switch s.Status {
	case statusClosed:
		return nil, nil
	case statusResolved:
	default:
		return nil, fmt.Errorf("%w: only a resolved incident is closed, this one is %s", ErrWrongStatus, statusName(s.Status))
	}
	if s.Review == nil && (s.Severity == commonv1.Severity_SEVERITY_CRITICAL || s.Severity == commonv1.Severity_SEVERITY_HIGH || s.Regulated()) {
		return nil, fmt.Errorf("%s incident: %w", strings.ToLower(strings.TrimPrefix(s.Severity.String(), "SEVERITY_")), ErrReviewRequired)
	}
	return one(&incidentsv1.IncidentClosed{IncidentId: s.ID, ClosedAt: timestamppb.New(c.At)}), nil
}

func decideOverdue(s State, c *MarkOverdue) ([]proto.Message, error) {
	k, ok := s.Clock(c.ClockID)
	if !ok || k.Overdue || !k.PassedAt(c.At) {
		return nil, nil // gone, recorded already, met, or not due yet
	}
	return []proto.Message{overdue(s, k, c.At)}, nil
}

// lateFirst returns the ClockOverdue events a command meeting the clocks
// that match at metAt must record first: a deadline missed is recorded once,
// whether the scheduler saw it pass or the late answer did.
func lateFirst(s State, metAt time.Time, match func(Clock) bool, now time.Time) []proto.Message {
	var out []proto.Message
	for _, k := range s.Clocks {
		if match(k) && !k.Overdue && metAt.After(k.DueAt) {
			out = append(out, overdue(s, k, now))
		}
	}
	return out
}

func overdue(s State, k Clock, now time.Time) *incidentsv1.ClockOverdue {
	return &incidentsv1.ClockOverdue{
		IncidentId: s.ID,
		ClockId:    k.ID,
		Kind:       k.Kind,
		PartyOrgId: string(k.Party),
		DueAt:      timestamppb.New(k.DueAt),
		DetectedAt: timestamppb.New(now),
	}
}

func notClosed(s State) error {
	if s.Status == statusClosed {
		return fmt.Errorf("%w: the incident is closed; reopen it first", ErrWrongStatus)
	}
	return nil
}

func validSeverity(sev commonv1.Severity) bool {
	_, ok := commonv1.Severity_name[int32(sev)]
	return ok && sev != commonv1.Severity_SEVERITY_UNSPECIFIED
}

func statusName(st incidentsv1.IncidentStatus) string {
	return strings.ToLower(strings.TrimPrefix(st.String(), "INCIDENT_STATUS_"))
}

func distinct(field string, xs []string) error {
	for i, x := range xs {
		if blank(x) {
			return invalid(fmt.Sprintf("%s[%d]", field, i), "must not be empty")
		}
		if slices.Contains(xs[:i], x) {
			return invalid(fmt.Sprintf("%s[%d]", field, i), "duplicate %q", x)
		}
	}
	return nil
}

func blank(s string) bool { return strings.TrimSpace(s) == "" }

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func one(m proto.Message) []proto.Message { return []proto.Message{m} }
