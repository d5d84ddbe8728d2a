package domain

import (
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	incidentsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/incidents/v1"
)

// DeadlinesToProto maps notification deadlines to their messages.
func DeadlinesToProto(ds []Deadline) []*incidentsv1.NotificationDeadline {
	out := make([]*incidentsv1.NotificationDeadline, len(ds))
	for i, d := range ds {
		out[i] = &incidentsv1.NotificationDeadline{Severity: d.Severity, Within: durationpb.New(d.Within)}
	}
	return out
}

// DeadlinesFromProto maps deadline messages to the domain.
func DeadlinesFromProto(ms []*incidentsv1.NotificationDeadline) []Deadline {
	var out []Deadline
	for _, m := range ms {
		out = append(out, Deadline{Severity: m.GetSeverity(), Within: m.GetWithin().AsDuration()})
	}
	return out
}

// ToProto maps the incident to its API message; withTimeline false leaves
// the timeline out (lists).
func ToProto(s State, withTimeline bool) *incidentsv1.Incident {
	m := &incidentsv1.Incident{
		IncidentId:       s.ID,
		ContractId:       s.ContractID,
		Status:           s.Status,
		Severity:         s.Severity,
		CustomerOrgId:    string(s.Customer),
		ProviderOrgId:    string(s.Provider),
		ReporterOrgId:    string(s.Reporter),
		Title:            s.Title,
		Description:      s.Description,
		Category:         s.Category,
		AffectedServices: slices.Clone(s.AffectedServices),
		AffectedAssets:   slices.Clone(s.AffectedAssets),
		AwareAt:          ts(s.AwareAt),
		EscalationLevel:  s.EscalationLevel,
		Overdue:          s.Overdue(),
		Position:         s.Position,
		ReportedAt:       ts(s.ReportedAt),
		UpdatedAt:        ts(s.UpdatedAt),
	}
	for _, r := range s.ExternalRefs {
		m.ExternalReferences = append(m.ExternalReferences, &incidentsv1.ExternalReference{System: r.System, Id: r.ID, Url: r.URL})
	}
	for _, k := range s.Clocks {
		m.Clocks = append(m.Clocks, ClockToProto(k))
	}
	for _, c := range s.Classifications {
		m.Classifications = append(m.Classifications, &incidentsv1.Classification{
			OrgId: string(c.Org), Significant: c.Significant, Major: c.Major, Criteria: slices.Clone(c.Criteria),
			ClassifiedAt: ts(c.ClassifiedAt), AwareAt: ts(s.Aware[c.Org]),
		})
	}
	for _, n := range s.Notifications {
		m.Notifications = append(m.Notifications, &incidentsv1.Notification{
			NotificationId: n.ID, FromOrgId: string(n.From), ToOrgId: string(n.To), Channel: n.Channel, Content: n.Content,
			Severity: n.Severity, NotifiedAt: ts(n.NotifiedAt), AcknowledgedAt: ts(n.AcknowledgedAt),
		})
	}
	for _, x := range s.Submissions {
		m.Submissions = append(m.Submissions, &incidentsv1.Submission{
			OrgId: string(x.Org), Regime: x.Regime, Kind: x.Kind, Reference: x.Reference, Authority: x.Authority, SubmittedAt: ts(x.SubmittedAt),
		})
	}
	for _, t := range s.Tasks {
		m.Tasks = append(m.Tasks, &incidentsv1.Task{
			TaskId: t.ID, Title: t.Title, AssigneeOrgId: string(t.Assignee), DueAt: ts(t.DueAt), CompletedAt: ts(t.CompletedAt), Note: t.Note,
		})
	}
	if withTimeline {
		for _, e := range s.Timeline {
			m.Timeline = append(m.Timeline, &incidentsv1.TimelineEntry{At: ts(e.At), OrgId: string(e.Org), UserId: e.User, Kind: e.Kind, Text: e.Text, Position: e.Position})
		}
	}
	if r := s.Review; r != nil {
		m.Review = &incidentsv1.Review{
			RootCause: r.RootCause, LessonsLearned: slices.Clone(r.LessonsLearned), FollowUpMeasures: slices.Clone(r.FollowUpMeasures),
			ReviewedAt: ts(r.ReviewedAt), OrgId: string(r.Org),
		}
	}
	return m
}

// ClockToProto maps a clock to its message.
func ClockToProto(k Clock) *incidentsv1.Clock {
	return &incidentsv1.Clock{
		ClockId: k.ID, Kind: k.Kind, PartyOrgId: string(k.Party),
		StartedAt: ts(k.StartedAt), DueAt: ts(k.DueAt), MetAt: ts(k.MetAt), Overdue: k.Overdue,
	}
}

// ts leaves zero times unset.
func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
