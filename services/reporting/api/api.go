// Package api is the Connect port of the reporting service: it decodes
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
	reportingv1 "github.com/jsmplatform/jsm/proto/gen/jsm/reporting/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/reporting/v1/reportingv1connect"
	"github.com/jsmplatform/jsm/services/reporting/app"
	"github.com/jsmplatform/jsm/services/reporting/domain"
)

// Server implements jsm.reporting.v1.ReportingService.
type Server struct {
	app app.Application
	log *slog.Logger
}

var _ reportingv1connect.ReportingServiceHandler = (*Server)(nil)

// New returns the Connect server of the reporting service.
func New(a app.Application, log *slog.Logger) *Server { return &Server{app: a, log: log} }

func timeOf(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}

func caller[T any](ctx context.Context, _ *connect.Request[T]) (domain.OrgID, error) {
	org, err := rpc.CallerOrg(ctx)
	return domain.OrgID(org), err
}

func (s *Server) GetKpis(ctx context.Context, r *connect.Request[reportingv1.GetKpisRequest]) (*connect.Response[reportingv1.GetKpisResponse], error) {
	org, err := caller(ctx, r)
	if err != nil {
		return nil, err
	}
	m := r.Msg
	k, err := s.app.Queries.Kpis(ctx, org, m.GetContractId(), timeOf(m.GetPeriodStart()), timeOf(m.GetPeriodEnd()), m.GetMinPosition())
	if err != nil {
		return nil, toConnect(ctx, s.log, err)
	}
	return connect.NewResponse(&reportingv1.GetKpisResponse{Kpis: k}), nil
}

func (s *Server) GetSituation(ctx context.Context, r *connect.Request[reportingv1.GetSituationRequest]) (*connect.Response[reportingv1.GetSituationResponse], error) {
	org, err := caller(ctx, r)
	if err != nil {
		return nil, err
	}
	sit, err := s.app.Queries.Situation(ctx, org, r.Msg.GetContractId(), r.Msg.GetMinPosition())
	if err != nil {
		return nil, toConnect(ctx, s.log, err)
	}
	return connect.NewResponse(sit), nil
}

func (s *Server) GenerateReport(ctx context.Context, r *connect.Request[reportingv1.GenerateReportRequest]) (*connect.Response[reportingv1.GenerateReportResponse], error) {
	m := r.Msg
	req, err := rpc.CommandRequest(ctx, r, m.GetRequestId())
	if err != nil {
		return nil, err
	}
	res, err := s.app.Commands.Generate(ctx, req, m.GetContractId(), timeOf(m.GetPeriodStart()), timeOf(m.GetPeriodEnd()))
	if err != nil {
		return nil, toConnect(ctx, s.log, err)
	}
	return connect.NewResponse(&reportingv1.GenerateReportResponse{ReportId: res.ID, Position: res.Position, ContentHash: res.State.ContentHash}), nil
}

func (s *Server) GetReport(ctx context.Context, r *connect.Request[reportingv1.GetReportRequest]) (*connect.Response[reportingv1.GetReportResponse], error) {
	org, err := caller(ctx, r)
	if err != nil {
		return nil, err
	}
	rep, err := s.app.Queries.Get(ctx, org, r.Msg.GetReportId(), r.Msg.GetMinPosition())
	if err != nil {
		return nil, toConnect(ctx, s.log, err)
	}
	return connect.NewResponse(&reportingv1.GetReportResponse{Report: domain.ToProto(rep)}), nil
}

func (s *Server) ListReports(ctx context.Context, r *connect.Request[reportingv1.ListReportsRequest]) (*connect.Response[reportingv1.ListReportsResponse], error) {
	org, err := caller(ctx, r)
	if err != nil {
		return nil, err
	}
	m := r.Msg
	list, next, err := s.app.Queries.List(ctx, org, app.ReportFilter{ContractID: m.GetContractId(), Status: m.GetStatus()},
		app.Page{Size: int(m.GetPageSize()), Token: m.GetPageToken(), MinPosition: m.GetMinPosition()})
	if err != nil {
		return nil, toConnect(ctx, s.log, err)
	}
	return connect.NewResponse(&reportingv1.ListReportsResponse{Reports: list, NextPageToken: next}), nil
}

func (s *Server) DownloadReport(ctx context.Context, r *connect.Request[reportingv1.DownloadReportRequest]) (*connect.Response[reportingv1.DownloadReportResponse], error) {
	org, err := caller(ctx, r)
	if err != nil {
		return nil, err
	}
	b, typ, err := s.app.Queries.Download(ctx, org, r.Msg.GetReportId(), r.Msg.GetFormat(), r.Msg.GetMinPosition())
	if err != nil {
		return nil, toConnect(ctx, s.log, err)
	}
	return connect.NewResponse(&reportingv1.DownloadReportResponse{Content: b, ContentType: typ}), nil
}

type reportRequest interface {
	GetReportId() string
	GetRequestId() string
}

// change runs cmd on the request's report.
func change[T any, P interface {
	*T
	reportRequest
}](ctx context.Context, s *Server, r *connect.Request[T], cmd domain.Command) (app.Result, error) {
	m := P(r.Msg)
	req, err := rpc.CommandRequest(ctx, r, m.GetRequestId())
	if err != nil {
		return app.Result{}, err
	}
	res, err := s.app.Commands.Report(ctx, req, m.GetReportId(), cmd)
	if err != nil {
		return app.Result{}, toConnect(ctx, s.log, err)
	}
	return res, nil
}

func (s *Server) DeliverReport(ctx context.Context, r *connect.Request[reportingv1.DeliverReportRequest]) (*connect.Response[reportingv1.DeliverReportResponse], error) {
	res, err := change(ctx, s, r, &domain.DeliverReport{})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&reportingv1.DeliverReportResponse{Position: res.Position}), nil
}

func (s *Server) AcknowledgeReport(ctx context.Context, r *connect.Request[reportingv1.AcknowledgeReportRequest]) (*connect.Response[reportingv1.AcknowledgeReportResponse], error) {
	res, err := change(ctx, s, r, &domain.AcknowledgeReport{Comments: r.Msg.GetComments()})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&reportingv1.AcknowledgeReportResponse{Position: res.Position}), nil
}
