// Package api is the Connect port of the audits service: it decodes
// requests, calls the app layer and maps results and errors. Field
// validation happened before, in the protovalidate interceptor.
package api

import (
	"context"
	"log/slog"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/jsmplatform/jsm/libs/rpc"
	auditsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/audits/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/audits/v1/auditsv1connect"
	"github.com/jsmplatform/jsm/services/audits/app"
	"github.com/jsmplatform/jsm/services/audits/domain"
)

// Server implements jsm.audits.v1.AuditService.
type Server struct {
	app app.Application
	log *slog.Logger
}

var _ auditsv1connect.AuditServiceHandler = (*Server)(nil)

// New returns the Connect server of the audits service.
func New(a app.Application, log *slog.Logger) *Server { return &Server{app: a, log: log} }

type auditRequest interface {
	GetAuditId() string
	GetRequestId() string
}

// change runs cmd on the request's audit.
func change[T any, P interface {
	*T
	auditRequest
}](ctx context.Context, s *Server, r *connect.Request[T], cmd domain.Command) (app.Result, error) {
	m := P(r.Msg)
	req, err := rpc.CommandRequest(ctx, r, m.GetRequestId())
	if err != nil {
		return app.Result{}, err
	}
	res, err := s.app.Commands.Audit(ctx, req, m.GetAuditId(), cmd)
	if err != nil {
		return app.Result{}, toConnect(ctx, s.log, err)
	}
	return res, nil
}

type contractRequest interface {
	GetContractId() string
	GetRequestId() string
}

// checklist runs cmd on the checklist of the request's contract.
func checklist[T any, P interface {
	*T
	contractRequest
}](ctx context.Context, s *Server, r *connect.Request[T], cmd domain.Command) (uint64, error) {
	m := P(r.Msg)
	req, err := rpc.CommandRequest(ctx, r, m.GetRequestId())
	if err != nil {
		return 0, err
	}
	pos, err := s.app.Commands.Checklist(ctx, req, m.GetContractId(), cmd)
	if err != nil {
		return 0, toConnect(ctx, s.log, err)
	}
	return pos, nil
}

func timeOf(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}

func (s *Server) PlanAudit(ctx context.Context, r *connect.Request[auditsv1.PlanAuditRequest]) (*connect.Response[auditsv1.PlanAuditResponse], error) {
	m := r.Msg
	req, err := rpc.CommandRequest(ctx, r, m.GetRequestId())
	if err != nil {
		return nil, err
	}
	res, err := s.app.Commands.Plan(ctx, req, m.GetContractId(), &domain.PlanAudit{
		Type: m.GetType(), Title: m.GetTitle(), Scope: m.GetScope(), Auditor: domain.OrgID(m.GetAuditorOrgId()),
		StartsAt: timeOf(m.GetStartsAt()), EndsAt: timeOf(m.GetEndsAt()),
	})
	if err != nil {
		return nil, toConnect(ctx, s.log, err)
	}
	return connect.NewResponse(&auditsv1.PlanAuditResponse{AuditId: res.ID, Position: res.Position}), nil
}

func (s *Server) StartAudit(ctx context.Context, r *connect.Request[auditsv1.StartAuditRequest]) (*connect.Response[auditsv1.StartAuditResponse], error) {
	res, err := change(ctx, s, r, &domain.StartAudit{})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&auditsv1.StartAuditResponse{Position: res.Position}), nil
}

func (s *Server) CompleteAudit(ctx context.Context, r *connect.Request[auditsv1.CompleteAuditRequest]) (*connect.Response[auditsv1.CompleteAuditResponse], error) {
	res, err := change(ctx, s, r, &domain.CompleteAudit{Summary: r.Msg.GetSummary()})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&auditsv1.CompleteAuditResponse{Position: res.Position}), nil
}

func (s *Server) RecordFinding(ctx context.Context, r *connect.Request[auditsv1.RecordFindingRequest]) (*connect.Response[auditsv1.RecordFindingResponse], error) {
	m := r.Msg
	res, err := change(ctx, s, r, &domain.RecordFinding{
		Severity: m.GetSeverity(), Level: m.GetLevel(), Title: m.GetTitle(), ControlRef: m.GetControlRef(),
		Description: m.GetDescription(), EvidenceRefs: m.GetEvidenceRefs(), RootCause: m.GetRootCause(),
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&auditsv1.RecordFindingResponse{FindingId: res.ID, Position: res.Position}), nil
}

func (s *Server) CloseFinding(ctx context.Context, r *connect.Request[auditsv1.CloseFindingRequest]) (*connect.Response[auditsv1.CloseFindingResponse], error) {
	res, err := change(ctx, s, r, &domain.CloseFinding{FindingID: r.Msg.GetFindingId()})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&auditsv1.CloseFindingResponse{Position: res.Position}), nil
}

func (s *Server) ProposeMeasure(ctx context.Context, r *connect.Request[auditsv1.ProposeMeasureRequest]) (*connect.Response[auditsv1.ProposeMeasureResponse], error) {
	m := r.Msg
	res, err := change(ctx, s, r, &domain.ProposeMeasure{
		FindingID: m.GetFindingId(), Owner: domain.OrgID(m.GetOwnerOrgId()), DueAt: timeOf(m.GetDueAt()), Description: m.GetDescription(),
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&auditsv1.ProposeMeasureResponse{MeasureId: res.ID, Position: res.Position}), nil
}

func (s *Server) AgreeMeasure(ctx context.Context, r *connect.Request[auditsv1.AgreeMeasureRequest]) (*connect.Response[auditsv1.AgreeMeasureResponse], error) {
	res, err := change(ctx, s, r, &domain.AgreeMeasure{MeasureID: r.Msg.GetMeasureId()})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&auditsv1.AgreeMeasureResponse{Position: res.Position}), nil
}

func (s *Server) RejectMeasure(ctx context.Context, r *connect.Request[auditsv1.RejectMeasureRequest]) (*connect.Response[auditsv1.RejectMeasureResponse], error) {
	res, err := change(ctx, s, r, &domain.RejectMeasure{MeasureID: r.Msg.GetMeasureId(), Reason: r.Msg.GetReason()})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&auditsv1.RejectMeasureResponse{Position: res.Position}), nil
}

func (s *Server) RecordMeasureImplemented(ctx context.Context, r *connect.Request[auditsv1.RecordMeasureImplementedRequest]) (*connect.Response[auditsv1.RecordMeasureImplementedResponse], error) {
	m := r.Msg
	res, err := change(ctx, s, r, &domain.RecordMeasureImplemented{MeasureID: m.GetMeasureId(), EvidenceRefs: m.GetEvidenceRefs(), Notes: m.GetNotes()})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&auditsv1.RecordMeasureImplementedResponse{Position: res.Position}), nil
}

func (s *Server) VerifyMeasure(ctx context.Context, r *connect.Request[auditsv1.VerifyMeasureRequest]) (*connect.Response[auditsv1.VerifyMeasureResponse], error) {
	m := r.Msg
	res, err := change(ctx, s, r, &domain.VerifyMeasure{MeasureID: m.GetMeasureId(), Accepted: m.GetAccepted(), Comment: m.GetComment()})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&auditsv1.VerifyMeasureResponse{Position: res.Position}), nil
}

func (s *Server) SetCheckTemplate(ctx context.Context, r *connect.Request[auditsv1.SetCheckTemplateRequest]) (*connect.Response[auditsv1.SetCheckTemplateResponse], error) {
	cmd := &domain.SetCheckTemplate{Interval: r.Msg.GetInterval().AsDuration()}
	for _, it := range r.Msg.GetItems() {
		cmd.Items = append(cmd.Items, domain.CheckItem{Key: it.GetKey(), Kind: it.GetKind(), Title: it.GetTitle()})
	}
	pos, err := checklist(ctx, s, r, cmd)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&auditsv1.SetCheckTemplateResponse{Position: pos}), nil
}

func (s *Server) RecordCheckResult(ctx context.Context, r *connect.Request[auditsv1.RecordCheckResultRequest]) (*connect.Response[auditsv1.RecordCheckResultResponse], error) {
	m := r.Msg
	pos, err := checklist(ctx, s, r, &domain.RecordCheckResult{
		Period: m.GetPeriod(), ItemKey: m.GetItemKey(), Outcome: m.GetOutcome(), Note: m.GetNote(), EvidenceRefs: m.GetEvidenceRefs(),
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&auditsv1.RecordCheckResultResponse{Position: pos}), nil
}

func (s *Server) GetAudit(ctx context.Context, r *connect.Request[auditsv1.GetAuditRequest]) (*connect.Response[auditsv1.GetAuditResponse], error) {
	org, err := rpc.CallerOrg(ctx)
	if err != nil {
		return nil, err
	}
	a, err := s.app.Queries.Get(ctx, domain.OrgID(org), r.Msg.GetAuditId(), r.Msg.GetMinPosition())
	if err != nil {
		return nil, toConnect(ctx, s.log, err)
	}
	return connect.NewResponse(&auditsv1.GetAuditResponse{Audit: a}), nil
}

func (s *Server) ListAudits(ctx context.Context, r *connect.Request[auditsv1.ListAuditsRequest]) (*connect.Response[auditsv1.ListAuditsResponse], error) {
	org, err := rpc.CallerOrg(ctx)
	if err != nil {
		return nil, err
	}
	m := r.Msg
	out, next, err := s.app.Queries.List(ctx, domain.OrgID(org), app.AuditFilter{ContractID: m.GetContractId(), Status: m.GetStatus()},
		app.Page{Size: int(m.GetPageSize()), Token: m.GetPageToken(), MinPosition: m.GetMinPosition()})
	if err != nil {
		return nil, toConnect(ctx, s.log, err)
	}
	return connect.NewResponse(&auditsv1.ListAuditsResponse{Audits: out, NextPageToken: next}), nil
}

func (s *Server) ListFindings(ctx context.Context, r *connect.Request[auditsv1.ListFindingsRequest]) (*connect.Response[auditsv1.ListFindingsResponse], error) {
	org, err := rpc.CallerOrg(ctx)
	if err != nil {
		return nil, err
	}
	m := r.Msg
	out, next, err := s.app.Queries.Findings(ctx, domain.OrgID(org),
		app.FindingFilter{AuditID: m.GetAuditId(), ContractID: m.GetContractId(), Status: m.GetStatus(), Severity: m.GetSeverity(), OverdueOnly: m.GetOverdueOnly()},
		app.Page{Size: int(m.GetPageSize()), Token: m.GetPageToken(), MinPosition: m.GetMinPosition()})
	if err != nil {
		return nil, toConnect(ctx, s.log, err)
	}
	return connect.NewResponse(&auditsv1.ListFindingsResponse{Findings: out, NextPageToken: next}), nil
}

func (s *Server) ListChecks(ctx context.Context, r *connect.Request[auditsv1.ListChecksRequest]) (*connect.Response[auditsv1.ListChecksResponse], error) {
	org, err := rpc.CallerOrg(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.app.Queries.Checklist(ctx, domain.OrgID(org), r.Msg.GetContractId(), r.Msg.GetMinPosition())
	if err != nil {
		return nil, toConnect(ctx, s.log, err)
	}
	return connect.NewResponse(&auditsv1.ListChecksResponse{Checklist: c}), nil
}
