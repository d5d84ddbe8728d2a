// Package api is the Connect port of the change advisory service: it
// decodes requests, takes the caller from the context, calls the app layer
// and maps results and errors. Field validation happened before, in the
// protovalidate interceptor.
package api

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/jsmplatform/jsm/libs/auth"
	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/rpc"
	changeadvisoryv1 "github.com/jsmplatform/jsm/proto/gen/jsm/changeadvisory/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/changeadvisory/v1/changeadvisoryv1connect"
	"github.com/jsmplatform/jsm/services/changeadvisory/app"
	"github.com/jsmplatform/jsm/services/changeadvisory/domain"
)

// Server implements jsm.changeadvisory.v1.ChangeService.
type Server struct {
	app app.Application
	log *slog.Logger
}

var _ changeadvisoryv1connect.ChangeServiceHandler = (*Server)(nil)

// New returns the Connect server of the change advisory service.
func New(a app.Application, log *slog.Logger) *Server {
	return &Server{app: a, log: log}
}

func request[T any](ctx context.Context, r *connect.Request[T], requestID string) (app.Request, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return app.Request{}, connect.NewError(connect.CodeUnauthenticated, errors.New("no caller"))
	}
	// The same bounds as every other area's (rpc.CommandRequest).
	correlation, traceParent, err := rpc.RequestHeaders(r.Header())
	if err != nil {
		return app.Request{}, err
	}
	if err := event.CheckName("request_id", requestID, event.MaxClientRefLen); err != nil {
		return app.Request{}, connect.NewError(connect.CodeInvalidArgument, err)
	}
	return app.Request{
		Actor:       event.Actor{Org: p.Org, User: p.User, Role: strings.Join(p.Roles, ",")},
		ID:          requestID,
		Correlation: correlation,
		TraceParent: traceParent,
	}, nil
}

func caller(ctx context.Context) (domain.OrgID, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return "", connect.NewError(connect.CodeUnauthenticated, errors.New("no caller"))
	}
	return domain.OrgID(p.Org), nil
}

// idRequest is what every change command request has.
type idRequest interface {
	GetChangeId() string
	GetRequestId() string
}

// change runs cmd on the request's change.
func change[T any, P interface {
	*T
	idRequest
}](ctx context.Context, s *Server, r *connect.Request[T], cmd domain.Command) (app.Result, error) {
	m := P(r.Msg)
	req, err := request(ctx, r, m.GetRequestId())
	if err != nil {
		return app.Result{}, err
	}
	res, err := s.app.Commands.Change(ctx, req, m.GetChangeId(), cmd)
	if err != nil {
		return app.Result{}, toConnect(ctx, s.log, err)
	}
	return res, nil
}

func timeOf(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}

func (s *Server) RequestChange(ctx context.Context, r *connect.Request[changeadvisoryv1.RequestChangeRequest]) (*connect.Response[changeadvisoryv1.RequestChangeResponse], error) {
	m := r.Msg
	req, err := request(ctx, r, m.GetRequestId())
	if err != nil {
		return nil, err
	}
	cmd := &domain.RequestChange{
		Title:            m.GetTitle(),
		Description:      m.GetDescription(),
		Category:         m.GetCategory(),
		Risk:             m.GetRisk(),
		Impact:           m.GetImpact(),
		PlannedStart:     timeOf(m.GetPlannedStart()),
		PlannedEnd:       timeOf(m.GetPlannedEnd()),
		ExpectedDowntime: m.GetExpectedDowntime().AsDuration(),
		RollbackPlan:     m.GetRollbackPlan(),
		Links:            domain.LinksFromProto(m.GetLinks()),
		Emergency:        m.GetEmergency(),
	}
	res, err := s.app.Commands.Request(ctx, req, m.GetContractId(), cmd)
	if err != nil {
		return nil, toConnect(ctx, s.log, err)
	}
	return connect.NewResponse(&changeadvisoryv1.RequestChangeResponse{ChangeId: res.ID, Position: res.Position}), nil
}

func (s *Server) ScheduleReview(ctx context.Context, r *connect.Request[changeadvisoryv1.ScheduleReviewRequest]) (*connect.Response[changeadvisoryv1.ScheduleReviewResponse], error) {
	res, err := change(ctx, s, r, &domain.ScheduleReview{ReviewAt: timeOf(r.Msg.GetReviewAt()), Note: r.Msg.GetNote()})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&changeadvisoryv1.ScheduleReviewResponse{Position: res.Position}), nil
}

func (s *Server) ApproveChange(ctx context.Context, r *connect.Request[changeadvisoryv1.ApproveChangeRequest]) (*connect.Response[changeadvisoryv1.ApproveChangeResponse], error) {
	res, err := change(ctx, s, r, &domain.ApproveChange{Comment: r.Msg.GetComment()})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&changeadvisoryv1.ApproveChangeResponse{Status: res.State.Status, Position: res.Position}), nil
}

func (s *Server) RejectChange(ctx context.Context, r *connect.Request[changeadvisoryv1.RejectChangeRequest]) (*connect.Response[changeadvisoryv1.RejectChangeResponse], error) {
	res, err := change(ctx, s, r, &domain.RejectChange{Reason: r.Msg.GetReason()})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&changeadvisoryv1.RejectChangeResponse{Position: res.Position}), nil
}

func (s *Server) AgreeDowntime(ctx context.Context, r *connect.Request[changeadvisoryv1.AgreeDowntimeRequest]) (*connect.Response[changeadvisoryv1.AgreeDowntimeResponse], error) {
	res, err := change(ctx, s, r, &domain.AgreeDowntime{})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&changeadvisoryv1.AgreeDowntimeResponse{Status: res.State.Status, Position: res.Position}), nil
}

func (s *Server) RecordImplementation(ctx context.Context, r *connect.Request[changeadvisoryv1.RecordImplementationRequest]) (*connect.Response[changeadvisoryv1.RecordImplementationResponse], error) {
	res, err := change(ctx, s, r, &domain.RecordImplementation{Success: r.Msg.GetSuccess(), Notes: r.Msg.GetNotes()})
	if err != nil {
		return nil, err
	}
	out := &changeadvisoryv1.RecordImplementationResponse{Position: res.Position}
	if !res.State.ReviewDueAt.IsZero() {
		out.ReviewDueAt = timestamppb.New(res.State.ReviewDueAt)
	}
	return connect.NewResponse(out), nil
}

func (s *Server) RecordRollback(ctx context.Context, r *connect.Request[changeadvisoryv1.RecordRollbackRequest]) (*connect.Response[changeadvisoryv1.RecordRollbackResponse], error) {
	res, err := change(ctx, s, r, &domain.RecordRollback{Reason: r.Msg.GetReason()})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&changeadvisoryv1.RecordRollbackResponse{Position: res.Position}), nil
}

func (s *Server) ReviewEmergencyChange(ctx context.Context, r *connect.Request[changeadvisoryv1.ReviewEmergencyChangeRequest]) (*connect.Response[changeadvisoryv1.ReviewEmergencyChangeResponse], error) {
	res, err := change(ctx, s, r, &domain.ReviewEmergencyChange{Accepted: r.Msg.GetAccepted(), Comment: r.Msg.GetComment()})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&changeadvisoryv1.ReviewEmergencyChangeResponse{Position: res.Position}), nil
}

func (s *Server) CloseChange(ctx context.Context, r *connect.Request[changeadvisoryv1.CloseChangeRequest]) (*connect.Response[changeadvisoryv1.CloseChangeResponse], error) {
	res, err := change(ctx, s, r, &domain.CloseChange{})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&changeadvisoryv1.CloseChangeResponse{Position: res.Position}), nil
}

func (s *Server) GetChange(ctx context.Context, r *connect.Request[changeadvisoryv1.GetChangeRequest]) (*connect.Response[changeadvisoryv1.GetChangeResponse], error) {
	org, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.app.Queries.Get(ctx, org, r.Msg.GetChangeId(), r.Msg.GetMinPosition())
	if err != nil {
		return nil, toConnect(ctx, s.log, err)
	}
	return connect.NewResponse(&changeadvisoryv1.GetChangeResponse{Change: c}), nil
}

func (s *Server) ListChanges(ctx context.Context, r *connect.Request[changeadvisoryv1.ListChangesRequest]) (*connect.Response[changeadvisoryv1.ListChangesResponse], error) {
	org, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	m := r.Msg
	list, next, err := s.app.Queries.List(ctx, org, app.ListFilter{
		ContractID:    m.GetContractId(),
		Status:        m.GetStatus(),
		EmergencyOnly: m.GetEmergencyOnly(),
		LinkedKind:    m.GetLinkedKind(),
		LinkedID:      m.GetLinkedId(),
		PageSize:      int(m.GetPageSize()),
		PageToken:     m.GetPageToken(),
		MinPosition:   m.GetMinPosition(),
	})
	if err != nil {
		return nil, toConnect(ctx, s.log, err)
	}
	return connect.NewResponse(&changeadvisoryv1.ListChangesResponse{Changes: list, NextPageToken: next}), nil
}
