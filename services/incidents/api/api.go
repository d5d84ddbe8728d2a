// Package api is the Connect port of the incidents service: it decodes
// requests, takes the caller from the context, calls the app layer and maps
// results and errors. Field validation happened before, in the protovalidate
// interceptor.
package api

import (
	"context"
	"log/slog"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/jsmplatform/jsm/libs/rpc"
	incidentsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/incidents/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/incidents/v1/incidentsv1connect"
	"github.com/jsmplatform/jsm/services/incidents/app"
	"github.com/jsmplatform/jsm/services/incidents/domain"
)

// Server implements jsm.incidents.v1.IncidentService.
type Server struct {
	app app.Application
	log *slog.Logger
}

var _ incidentsv1connect.IncidentServiceHandler = (*Server)(nil)

// New returns the Connect server of the incidents service.
func New(a app.Application, log *slog.Logger) *Server {
	return &Server{app: a, log: log}
}

// idRequest is what every incident command request has.
type idRequest interface {
	GetIncidentId() string
	GetRequestId() string
}

// change runs cmd on the request's incident.
func change[T any, P interface {
	*T
	idRequest
}](ctx context.Context, s *Server, r *connect.Request[T], cmd domain.Command) (app.Result, error) {
	m := P(r.Msg)
	req, err := rpc.CommandRequest(ctx, r, m.GetRequestId())
	if err != nil {
		return app.Result{}, err
	}
	res, err := s.app.Commands.Change(ctx, req, m.GetIncidentId(), cmd)
	if err != nil {
		return app.Result{}, toConnect(ctx, s.log, err)
	}
	return res, nil
}

// item is change for commands that add an item with an id of its own.
func item[T any, P interface {
	*T
	idRequest
}](ctx context.Context, s *Server, r *connect.Request[T], kind string, cmd func(id string) domain.Command) (string, app.Result, error) {
	m := P(r.Msg)
	req, err := rpc.CommandRequest(ctx, r, m.GetRequestId())
	if err != nil {
		return "", app.Result{}, err
	}
	id := app.ItemID(kind, req)
	res, err := s.app.Commands.Change(ctx, req, m.GetIncidentId(), cmd(id))
	if err != nil {
		return "", app.Result{}, toConnect(ctx, s.log, err)
	}
	return id, res, nil
}

func callerOrg(ctx context.Context) (domain.OrgID, error) {
	org, err := rpc.CallerOrg(ctx)
	return domain.OrgID(org), err
}

func timeOf(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}

func (s *Server) ReportIncident(ctx context.Context, r *connect.Request[incidentsv1.ReportIncidentRequest]) (*connect.Response[incidentsv1.ReportIncidentResponse], error) {
	m := r.Msg
	req, err := rpc.CommandRequest(ctx, r, m.GetRequestId())
	if err != nil {
		return nil, err
	}
	cmd := &domain.ReportIncident{
		Title:            m.GetTitle(),
		Description:      m.GetDescription(),
		Severity:         m.GetSeverity(),
		Category:         m.GetCategory(),
		AffectedServices: m.GetAffectedServices(),
		AffectedAssets:   m.GetAffectedAssets(),
		AwareAt:          timeOf(m.GetAwareAt()),
	}
	for _, ref := range m.GetExternalReferences() {
		cmd.ExternalRefs = append(cmd.ExternalRefs, domain.ExternalRef{System: ref.GetSystem(), ID: ref.GetId(), URL: ref.GetUrl()})
	}
	res, err := s.app.Commands.Report(ctx, req, m.GetContractId(), cmd)
	if err != nil {
		return nil, toConnect(ctx, s.log, err)
	}
	return connect.NewResponse(&incidentsv1.ReportIncidentResponse{IncidentId: res.ID, Position: res.Position}), nil
}

func (s *Server) AssessIncident(ctx context.Context, r *connect.Request[incidentsv1.AssessIncidentRequest]) (*connect.Response[incidentsv1.AssessIncidentResponse], error) {
	res, err := change(ctx, s, r, &domain.AssessIncident{Severity: r.Msg.GetSeverity(), Category: r.Msg.GetCategory(), Rationale: r.Msg.GetRationale()})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&incidentsv1.AssessIncidentResponse{Position: res.Position}), nil
}

func (s *Server) ClassifyIncident(ctx context.Context, r *connect.Request[incidentsv1.ClassifyIncidentRequest]) (*connect.Response[incidentsv1.ClassifyIncidentResponse], error) {
	m := r.Msg
	res, err := change(ctx, s, r, &domain.ClassifyIncident{Significant: m.GetSignificant(), Major: m.GetMajor(), Criteria: m.GetCriteria(), AwareAt: timeOf(m.GetAwareAt())})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&incidentsv1.ClassifyIncidentResponse{Position: res.Position}), nil
}

func (s *Server) NotifyParty(ctx context.Context, r *connect.Request[incidentsv1.NotifyPartyRequest]) (*connect.Response[incidentsv1.NotifyPartyResponse], error) {
	id, res, err := item(ctx, s, r, "notification", func(id string) domain.Command {
		return &domain.NotifyParty{NotificationID: id, Channel: r.Msg.GetChannel(), Content: r.Msg.GetContent()}
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&incidentsv1.NotifyPartyResponse{NotificationId: id, Position: res.Position}), nil
}

func (s *Server) AcknowledgeNotification(ctx context.Context, r *connect.Request[incidentsv1.AcknowledgeNotificationRequest]) (*connect.Response[incidentsv1.AcknowledgeNotificationResponse], error) {
	res, err := change(ctx, s, r, &domain.AcknowledgeNotification{NotificationID: r.Msg.GetNotificationId()})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&incidentsv1.AcknowledgeNotificationResponse{Position: res.Position}), nil
}

func (s *Server) RecordRegulatorySubmission(ctx context.Context, r *connect.Request[incidentsv1.RecordRegulatorySubmissionRequest]) (*connect.Response[incidentsv1.RecordRegulatorySubmissionResponse], error) {
	m := r.Msg
	res, err := change(ctx, s, r, &domain.RecordRegulatorySubmission{
		Regime: m.GetRegime(), Kind: m.GetKind(), Reference: m.GetReference(), Authority: m.GetAuthority(), SubmittedAt: timeOf(m.GetSubmittedAt()),
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&incidentsv1.RecordRegulatorySubmissionResponse{Position: res.Position}), nil
}

func (s *Server) AddTimelineEntry(ctx context.Context, r *connect.Request[incidentsv1.AddTimelineEntryRequest]) (*connect.Response[incidentsv1.AddTimelineEntryResponse], error) {
	_, res, err := item(ctx, s, r, "entry", func(id string) domain.Command {
		return &domain.AddTimelineEntry{EntryID: id, Text: r.Msg.GetText(), OccurredAt: timeOf(r.Msg.GetOccurredAt())}
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&incidentsv1.AddTimelineEntryResponse{Position: res.Position}), nil
}

func (s *Server) AssignTask(ctx context.Context, r *connect.Request[incidentsv1.AssignTaskRequest]) (*connect.Response[incidentsv1.AssignTaskResponse], error) {
	m := r.Msg
	id, res, err := item(ctx, s, r, "task", func(id string) domain.Command {
		return &domain.AssignTask{TaskID: id, Title: m.GetTitle(), Assignee: domain.OrgID(m.GetAssigneeOrgId()), DueAt: timeOf(m.GetDueAt())}
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&incidentsv1.AssignTaskResponse{TaskId: id, Position: res.Position}), nil
}

func (s *Server) CompleteTask(ctx context.Context, r *connect.Request[incidentsv1.CompleteTaskRequest]) (*connect.Response[incidentsv1.CompleteTaskResponse], error) {
	res, err := change(ctx, s, r, &domain.CompleteTask{TaskID: r.Msg.GetTaskId(), Note: r.Msg.GetNote()})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&incidentsv1.CompleteTaskResponse{Position: res.Position}), nil
}

func (s *Server) EscalateIncident(ctx context.Context, r *connect.Request[incidentsv1.EscalateIncidentRequest]) (*connect.Response[incidentsv1.EscalateIncidentResponse], error) {
	res, err := change(ctx, s, r, &domain.EscalateIncident{Reason: r.Msg.GetReason()})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&incidentsv1.EscalateIncidentResponse{Level: res.State.EscalationLevel, Position: res.Position}), nil
}

func (s *Server) ContainIncident(ctx context.Context, r *connect.Request[incidentsv1.ContainIncidentRequest]) (*connect.Response[incidentsv1.ContainIncidentResponse], error) {
	res, err := change(ctx, s, r, &domain.ContainIncident{Summary: r.Msg.GetSummary()})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&incidentsv1.ContainIncidentResponse{Position: res.Position}), nil
}

func (s *Server) ResolveIncident(ctx context.Context, r *connect.Request[incidentsv1.ResolveIncidentRequest]) (*connect.Response[incidentsv1.ResolveIncidentResponse], error) {
	res, err := change(ctx, s, r, &domain.ResolveIncident{Summary: r.Msg.GetSummary()})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&incidentsv1.ResolveIncidentResponse{Position: res.Position}), nil
}

func (s *Server) ReopenIncident(ctx context.Context, r *connect.Request[incidentsv1.ReopenIncidentRequest]) (*connect.Response[incidentsv1.ReopenIncidentResponse], error) {
	res, err := change(ctx, s, r, &domain.ReopenIncident{Reason: r.Msg.GetReason()})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&incidentsv1.ReopenIncidentResponse{Position: res.Position}), nil
}

func (s *Server) RecordReview(ctx context.Context, r *connect.Request[incidentsv1.RecordReviewRequest]) (*connect.Response[incidentsv1.RecordReviewResponse], error) {
	m := r.Msg
	res, err := change(ctx, s, r, &domain.RecordReview{RootCause: m.GetRootCause(), LessonsLearned: m.GetLessonsLearned(), FollowUpMeasures: m.GetFollowUpMeasures()})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&incidentsv1.RecordReviewResponse{Position: res.Position}), nil
}

func (s *Server) CloseIncident(ctx context.Context, r *connect.Request[incidentsv1.CloseIncidentRequest]) (*connect.Response[incidentsv1.CloseIncidentResponse], error) {
	res, err := change(ctx, s, r, &domain.CloseIncident{})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&incidentsv1.CloseIncidentResponse{Position: res.Position}), nil
}

func (s *Server) GetIncident(ctx context.Context, r *connect.Request[incidentsv1.GetIncidentRequest]) (*connect.Response[incidentsv1.GetIncidentResponse], error) {
	org, err := callerOrg(ctx)
	if err != nil {
		return nil, err
	}
	inc, err := s.app.Queries.Get(ctx, org, r.Msg.GetIncidentId(), r.Msg.GetMinPosition())
	if err != nil {
		return nil, toConnect(ctx, s.log, err)
	}
	return connect.NewResponse(&incidentsv1.GetIncidentResponse{Incident: inc}), nil
}

func (s *Server) ListIncidents(ctx context.Context, r *connect.Request[incidentsv1.ListIncidentsRequest]) (*connect.Response[incidentsv1.ListIncidentsResponse], error) {
	org, err := callerOrg(ctx)
	if err != nil {
		return nil, err
	}
	m := r.Msg
	list, next, err := s.app.Queries.List(ctx, org, app.ListFilter{
		ContractID:   m.GetContractId(),
		Status:       m.GetStatus(),
		Severity:     m.GetSeverity(),
		OverdueOnly:  m.GetOverdueOnly(),
		OverdueClock: m.GetOverdueClock(),
		PageSize:     int(m.GetPageSize()),
		PageToken:    m.GetPageToken(),
		MinPosition:  m.GetMinPosition(),
	})
	if err != nil {
		return nil, toConnect(ctx, s.log, err)
	}
	return connect.NewResponse(&incidentsv1.ListIncidentsResponse{Incidents: list, NextPageToken: next}), nil
}

func (s *Server) ScheduleExercise(ctx context.Context, r *connect.Request[incidentsv1.ScheduleExerciseRequest]) (*connect.Response[incidentsv1.ScheduleExerciseResponse], error) {
	m := r.Msg
	req, err := rpc.CommandRequest(ctx, r, m.GetRequestId())
	if err != nil {
		return nil, err
	}
	id, pos, err := s.app.Commands.ScheduleExercise(ctx, req, m.GetContractId(), &domain.ScheduleExercise{
		Kind: m.GetKind(), Title: m.GetTitle(), Scenario: m.GetScenario(), ScheduledFor: timeOf(m.GetScheduledFor()),
	})
	if err != nil {
		return nil, toConnect(ctx, s.log, err)
	}
	return connect.NewResponse(&incidentsv1.ScheduleExerciseResponse{ExerciseId: id, Position: pos}), nil
}

func (s *Server) RecordExerciseResult(ctx context.Context, r *connect.Request[incidentsv1.RecordExerciseResultRequest]) (*connect.Response[incidentsv1.RecordExerciseResultResponse], error) {
	m := r.Msg
	req, err := rpc.CommandRequest(ctx, r, m.GetRequestId())
	if err != nil {
		return nil, err
	}
	pos, err := s.app.Commands.RecordExerciseResult(ctx, req, m.GetExerciseId(), &domain.RecordExerciseResult{
		Outcome: m.GetOutcome(), Summary: m.GetSummary(), Findings: m.GetFindings(), PerformedAt: timeOf(m.GetPerformedAt()),
	})
	if err != nil {
		return nil, toConnect(ctx, s.log, err)
	}
	return connect.NewResponse(&incidentsv1.RecordExerciseResultResponse{Position: pos}), nil
}

func (s *Server) ListExercises(ctx context.Context, r *connect.Request[incidentsv1.ListExercisesRequest]) (*connect.Response[incidentsv1.ListExercisesResponse], error) {
	org, err := callerOrg(ctx)
	if err != nil {
		return nil, err
	}
	m := r.Msg
	list, next, err := s.app.Queries.ListExercises(ctx, org, m.GetContractId(), int(m.GetPageSize()), m.GetPageToken(), m.GetMinPosition())
	if err != nil {
		return nil, toConnect(ctx, s.log, err)
	}
	return connect.NewResponse(&incidentsv1.ListExercisesResponse{Exercises: list, NextPageToken: next}), nil
}
