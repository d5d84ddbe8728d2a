// Package api is the Connect port of the patching service: it decodes
// requests, calls the app layer and maps results and errors. Field
// validation happened before, in the protovalidate interceptor.
package api

import (
	"context"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/jsmplatform/jsm/libs/rpc"
	patchingv1 "github.com/jsmplatform/jsm/proto/gen/jsm/patching/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/patching/v1/patchingv1connect"
	"github.com/jsmplatform/jsm/services/patching/app"
	"github.com/jsmplatform/jsm/services/patching/domain"
)

// Server implements jsm.patching.v1.PatchService.
type Server struct {
	app app.Application
	log *slog.Logger
}

var _ patchingv1connect.PatchServiceHandler = (*Server)(nil)

// New returns the Connect server of the patching service.
func New(a app.Application, log *slog.Logger) *Server { return &Server{app: a, log: log} }

type remediationRequest interface {
	GetRemediationId() string
	GetRequestId() string
}

// change runs cmd on the request's remediation.
func change[T any, P interface {
	*T
	remediationRequest
}](ctx context.Context, s *Server, r *connect.Request[T], cmd func(req app.Request) domain.Command) (app.Result, error) {
	m := P(r.Msg)
	req, err := rpc.CommandRequest(ctx, r, m.GetRequestId())
	if err != nil {
		return app.Result{}, err
	}
	res, err := s.app.Commands.Change(ctx, req, m.GetRemediationId(), cmd(req))
	if err != nil {
		return app.Result{}, toConnect(ctx, s.log, err)
	}
	return res, nil
}

func (s *Server) RegisterAssets(ctx context.Context, r *connect.Request[patchingv1.RegisterAssetsRequest]) (*connect.Response[patchingv1.RegisterAssetsResponse], error) {
	req, err := rpc.CommandRequest(ctx, r, r.Msg.GetRequestId())
	if err != nil {
		return nil, err
	}
	pos, err := s.app.Commands.RegisterAssets(ctx, req, r.Msg.GetContractId(), r.Msg.GetAssets())
	if err != nil {
		return nil, toConnect(ctx, s.log, err)
	}
	return connect.NewResponse(&patchingv1.RegisterAssetsResponse{Position: pos}), nil
}

func (s *Server) RetireAsset(ctx context.Context, r *connect.Request[patchingv1.RetireAssetRequest]) (*connect.Response[patchingv1.RetireAssetResponse], error) {
	req, err := rpc.CommandRequest(ctx, r, r.Msg.GetRequestId())
	if err != nil {
		return nil, err
	}
	ids := r.Msg.GetAssetIds()
	if id := r.Msg.GetAssetId(); id != "" {
		ids = append([]string{id}, ids...)
	}
	pos, err := s.app.Commands.RetireAssets(ctx, req, r.Msg.GetContractId(), ids, r.Msg.GetReason())
	if err != nil {
		return nil, toConnect(ctx, s.log, err)
	}
	return connect.NewResponse(&patchingv1.RetireAssetResponse{Position: pos}), nil
}

func (s *Server) RegisterVulnerability(ctx context.Context, r *connect.Request[patchingv1.RegisterVulnerabilityRequest]) (*connect.Response[patchingv1.RegisterVulnerabilityResponse], error) {
	m := r.Msg
	req, err := rpc.CommandRequest(ctx, r, m.GetRequestId())
	if err != nil {
		return nil, err
	}
	res, err := s.app.Commands.RegisterVulnerability(ctx, req, m.GetContractId(), &domain.RegisterVulnerability{
		CVE: m.GetCveId(), Severity: m.GetSeverity(), CVSS: m.GetCvssScore(), Vector: m.GetCvssVector(), KnownExploited: m.GetKnownExploited(),
		Product: m.GetProduct(), AffectedVersions: m.GetAffectedVersions(), Description: m.GetDescription(),
	})
	if err != nil {
		return nil, toConnect(ctx, s.log, err)
	}
	view := domain.ToProto(res.Remediation, true)
	out := &patchingv1.RegisterVulnerabilityResponse{RemediationId: view.GetRemediationId(), DueAt: view.GetDueAt(), Position: res.Position}
	for _, a := range view.GetAssets() {
		out.AffectedAssetIds = append(out.AffectedAssetIds, a.GetAssetId())
	}
	return connect.NewResponse(out), nil
}

func (s *Server) ReleasePatch(ctx context.Context, r *connect.Request[patchingv1.ReleasePatchRequest]) (*connect.Response[patchingv1.ReleasePatchResponse], error) {
	m := r.Msg
	res, err := change(ctx, s, r, func(app.Request) domain.Command {
		return &domain.ReleasePatch{Kind: m.GetKind(), Reference: m.GetReference(), Description: m.GetDescription(), TestSummary: m.GetTestSummary(), Emergency: m.GetEmergency()}
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&patchingv1.ReleasePatchResponse{Position: res.Position}), nil
}

func (s *Server) RecordPatchApplied(ctx context.Context, r *connect.Request[patchingv1.RecordPatchAppliedRequest]) (*connect.Response[patchingv1.RecordPatchAppliedResponse], error) {
	m := r.Msg
	res, err := change(ctx, s, r, func(app.Request) domain.Command {
		return &domain.RecordPatchApplied{ChangeID: m.GetChangeId(), Assets: m.GetAssetIds(), Backup: m.GetBackupReference()}
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&patchingv1.RecordPatchAppliedResponse{Position: res.Position}), nil
}

func (s *Server) RecordPatchRollback(ctx context.Context, r *connect.Request[patchingv1.RecordPatchRollbackRequest]) (*connect.Response[patchingv1.RecordPatchRollbackResponse], error) {
	m := r.Msg
	res, err := change(ctx, s, r, func(app.Request) domain.Command {
		return &domain.RecordPatchRollback{Assets: m.GetAssetIds(), Reason: m.GetReason()}
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&patchingv1.RecordPatchRollbackResponse{Position: res.Position}), nil
}

func (s *Server) VerifyPatch(ctx context.Context, r *connect.Request[patchingv1.VerifyPatchRequest]) (*connect.Response[patchingv1.VerifyPatchResponse], error) {
	m := r.Msg
	res, err := change(ctx, s, r, func(app.Request) domain.Command {
		return &domain.VerifyPatch{Assets: m.GetAssetIds(), Success: m.GetSuccess(), Notes: m.GetNotes()}
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&patchingv1.VerifyPatchResponse{Status: res.Remediation.Status(), Position: res.Position}), nil
}

func (s *Server) RequestDeferral(ctx context.Context, r *connect.Request[patchingv1.RequestDeferralRequest]) (*connect.Response[patchingv1.RequestDeferralResponse], error) {
	m := r.Msg
	var id string
	res, err := change(ctx, s, r, func(req app.Request) domain.Command {
		id = app.ItemID("deferral", req)
		return &domain.RequestDeferral{DeferralID: id, Reason: m.GetReason(), Risk: m.GetRisk(), Until: m.GetUntil().AsTime()}
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&patchingv1.RequestDeferralResponse{DeferralId: id, Position: res.Position}), nil
}

func (s *Server) DecideDeferral(ctx context.Context, r *connect.Request[patchingv1.DecideDeferralRequest]) (*connect.Response[patchingv1.DecideDeferralResponse], error) {
	m := r.Msg
	res, err := change(ctx, s, r, func(app.Request) domain.Command {
		return &domain.DecideDeferral{DeferralID: m.GetDeferralId(), Accept: m.GetAccept(), Comment: m.GetComment()}
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&patchingv1.DecideDeferralResponse{Position: res.Position}), nil
}

func (s *Server) GetRemediation(ctx context.Context, r *connect.Request[patchingv1.GetRemediationRequest]) (*connect.Response[patchingv1.GetRemediationResponse], error) {
	org, err := rpc.CallerOrg(ctx)
	if err != nil {
		return nil, err
	}
	rem, err := s.app.Queries.Get(ctx, domain.OrgID(org), r.Msg.GetRemediationId(), r.Msg.GetMinPosition())
	if err != nil {
		return nil, toConnect(ctx, s.log, err)
	}
	return connect.NewResponse(&patchingv1.GetRemediationResponse{Remediation: rem}), nil
}

func (s *Server) ListRemediations(ctx context.Context, r *connect.Request[patchingv1.ListRemediationsRequest]) (*connect.Response[patchingv1.ListRemediationsResponse], error) {
	org, err := rpc.CallerOrg(ctx)
	if err != nil {
		return nil, err
	}
	m := r.Msg
	f := app.RegisterFilter{
		ContractID: m.GetContractId(), Status: m.GetStatus(), Severity: m.GetSeverity(), AssetID: m.GetAssetId(),
		OverdueOnly: m.GetOverdueOnly(), PageSize: int(m.GetPageSize()), PageToken: m.GetPageToken(), MinPosition: m.GetMinPosition(),
	}
	if m.GetDueBefore() != nil {
		f.DueBefore = m.GetDueBefore().AsTime()
	}
	list, next, err := s.app.Queries.List(ctx, domain.OrgID(org), f)
	if err != nil {
		return nil, toConnect(ctx, s.log, err)
	}
	return connect.NewResponse(&patchingv1.ListRemediationsResponse{Remediations: list, NextPageToken: next}), nil
}

func (s *Server) ListAssets(ctx context.Context, r *connect.Request[patchingv1.ListAssetsRequest]) (*connect.Response[patchingv1.ListAssetsResponse], error) {
	org, err := rpc.CallerOrg(ctx)
	if err != nil {
		return nil, err
	}
	m := r.Msg
	list, next, err := s.app.Queries.Assets(ctx, domain.OrgID(org), m.GetContractId(), m.GetIncludeRetired(), int(m.GetPageSize()), m.GetPageToken(), m.GetMinPosition())
	if err != nil {
		return nil, toConnect(ctx, s.log, err)
	}
	return connect.NewResponse(&patchingv1.ListAssetsResponse{Assets: list, NextPageToken: next}), nil
}
