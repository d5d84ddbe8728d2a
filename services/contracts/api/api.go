// Package api is the Connect port of the contracts service: it decodes
// requests, takes the caller from the context, calls the app layer and maps
// results and errors. Field validation happened before, in the protovalidate
// interceptor.
package api

import (
	"context"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/jsmplatform/jsm/libs/rpc"
	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1/contractsv1connect"
	"github.com/jsmplatform/jsm/services/contracts/app"
	"github.com/jsmplatform/jsm/services/contracts/domain"
)

// Server implements jsm.contracts.v1.ContractService.
type Server struct {
	app app.Application
	log *slog.Logger
}

var _ contractsv1connect.ContractServiceHandler = (*Server)(nil)

// New returns the Connect server of the contracts service.
func New(a app.Application, log *slog.Logger) *Server {
	return &Server{app: a, log: log}
}

func caller(ctx context.Context) (domain.OrgID, error) {
	org, err := rpc.CallerOrg(ctx)
	return domain.OrgID(org), err
}

func (s *Server) DraftContract(ctx context.Context, r *connect.Request[contractsv1.DraftContractRequest]) (*connect.Response[contractsv1.DraftContractResponse], error) {
	m := r.Msg
	req, err := rpc.CommandRequest(ctx, r, m.GetRequestId())
	if err != nil {
		return nil, err
	}
	if req.Actor.Org != m.GetCustomerOrgId() && req.Actor.Org != m.GetProviderOrgId() {
		return nil, toConnect(ctx, s.log, errDraftForOthers)
	}
	res, err := s.app.Commands.Draft(ctx, req, domain.DraftContract{
		Customer:          domain.OrgID(m.GetCustomerOrgId()),
		Provider:          domain.OrgID(m.GetProviderOrgId()),
		Title:             m.GetTitle(),
		Reference:         m.GetReference(),
		ServicesInScope:   m.GetServicesInScope(),
		CriticalFunction:  m.GetCriticalFunction(),
		TerminationNotice: m.GetTerminationNotice().AsDuration(),
	})
	if err != nil {
		return nil, toConnect(ctx, s.log, err)
	}
	return connect.NewResponse(&contractsv1.DraftContractResponse{ContractId: string(res.ContractID), Position: res.Position}), nil
}

// change runs a command on an existing contract and returns its position.
func (s *Server) change(ctx context.Context, req app.Request, id string, cmd domain.Command) (app.Result, error) {
	res, err := s.app.Commands.Change(ctx, req, domain.ContractID(id), cmd)
	if err != nil {
		return app.Result{}, toConnect(ctx, s.log, err)
	}
	return res, nil
}

func (s *Server) AddRequirement(ctx context.Context, r *connect.Request[contractsv1.AddRequirementRequest]) (*connect.Response[contractsv1.AddRequirementResponse], error) {
	req, err := rpc.CommandRequest(ctx, r, r.Msg.GetRequestId())
	if err != nil {
		return nil, err
	}
	res, err := s.change(ctx, req, r.Msg.GetContractId(), domain.AddRequirement{Requirement: domain.RequirementFromProto(r.Msg.GetRequirement())})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&contractsv1.AddRequirementResponse{Position: res.Position}), nil
}

func (s *Server) AssignContact(ctx context.Context, r *connect.Request[contractsv1.AssignContactRequest]) (*connect.Response[contractsv1.AssignContactResponse], error) {
	req, err := rpc.CommandRequest(ctx, r, r.Msg.GetRequestId())
	if err != nil {
		return nil, err
	}
	res, err := s.change(ctx, req, r.Msg.GetContractId(), domain.AssignContact{Contact: domain.ContactFromProto(r.Msg.GetContact())})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&contractsv1.AssignContactResponse{Position: res.Position}), nil
}

func (s *Server) AddSubcontractor(ctx context.Context, r *connect.Request[contractsv1.AddSubcontractorRequest]) (*connect.Response[contractsv1.AddSubcontractorResponse], error) {
	req, err := rpc.CommandRequest(ctx, r, r.Msg.GetRequestId())
	if err != nil {
		return nil, err
	}
	res, err := s.change(ctx, req, r.Msg.GetContractId(), domain.AddSubcontractor{Subcontractor: domain.SubcontractorFromProto(r.Msg.GetSubcontractor())})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&contractsv1.AddSubcontractorResponse{Position: res.Position}), nil
}

func (s *Server) SetServiceLevels(ctx context.Context, r *connect.Request[contractsv1.SetServiceLevelsRequest]) (*connect.Response[contractsv1.SetServiceLevelsResponse], error) {
	m := r.Msg
	req, err := rpc.CommandRequest(ctx, r, m.GetRequestId())
	if err != nil {
		return nil, err
	}
	levels := domain.LevelsFromProto(&contractsv1.ServiceLevels{
		IncidentNotification:        m.GetIncidentNotification(),
		PatchDeadlines:              m.GetPatchDeadlines(),
		ReportCadence:               m.GetReportCadence(),
		AuditRights:                 m.GetAuditRights(),
		CustomerApprovalCategories:  m.GetCustomerApprovalCategories(),
		MaintenanceWindows:          m.GetMaintenanceWindows(),
		EmergencyChangeReviewWithin: m.GetEmergencyChangeReviewWithin(),
	})
	res, err := s.change(ctx, req, m.GetContractId(), domain.SetServiceLevels{Levels: levels})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&contractsv1.SetServiceLevelsResponse{Position: res.Position}), nil
}

func (s *Server) SignContract(ctx context.Context, r *connect.Request[contractsv1.SignContractRequest]) (*connect.Response[contractsv1.SignContractResponse], error) {
	req, err := rpc.CommandRequest(ctx, r, r.Msg.GetRequestId())
	if err != nil {
		return nil, err
	}
	res, err := s.change(ctx, req, r.Msg.GetContractId(), domain.SignContract{TermsVersion: r.Msg.GetTermsVersion(), At: s.app.Commands.Now()})
	if err != nil {
		return nil, err
	}
	activated := res.State.InForce != nil && res.State.InForce.Version == res.State.Current.Version &&
		len(res.State.InForce.Signatures) == 2 && res.State.InForce.SignedBy(domain.OrgID(req.Actor.Org))
	return connect.NewResponse(&contractsv1.SignContractResponse{Position: res.Position, Activated: activated}), nil
}

func (s *Server) AdvancePhase(ctx context.Context, r *connect.Request[contractsv1.AdvancePhaseRequest]) (*connect.Response[contractsv1.AdvancePhaseResponse], error) {
	req, err := rpc.CommandRequest(ctx, r, r.Msg.GetRequestId())
	if err != nil {
		return nil, err
	}
	res, err := s.change(ctx, req, r.Msg.GetContractId(), domain.AdvancePhase{To: r.Msg.GetPhase()})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&contractsv1.AdvancePhaseResponse{Position: res.Position}), nil
}

func (s *Server) TerminateContract(ctx context.Context, r *connect.Request[contractsv1.TerminateContractRequest]) (*connect.Response[contractsv1.TerminateContractResponse], error) {
	req, err := rpc.CommandRequest(ctx, r, r.Msg.GetRequestId())
	if err != nil {
		return nil, err
	}
	res, err := s.change(ctx, req, r.Msg.GetContractId(), domain.TerminateContract{
		Reason:        r.Msg.GetReason(),
		EffectiveDate: r.Msg.GetEffectiveDate().AsTime(),
		At:            s.app.Commands.Now(),
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&contractsv1.TerminateContractResponse{Position: res.Position}), nil
}

func (s *Server) GetContract(ctx context.Context, r *connect.Request[contractsv1.GetContractRequest]) (*connect.Response[contractsv1.GetContractResponse], error) {
	org, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.app.Queries.Get(ctx, org, domain.ContractID(r.Msg.GetContractId()), r.Msg.GetMinPosition())
	if err != nil {
		return nil, toConnect(ctx, s.log, err)
	}
	return connect.NewResponse(&contractsv1.GetContractResponse{Contract: c}), nil
}

func (s *Server) ListContracts(ctx context.Context, r *connect.Request[contractsv1.ListContractsRequest]) (*connect.Response[contractsv1.ListContractsResponse], error) {
	org, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	m := r.Msg
	list, next, err := s.app.Queries.List(ctx, org, app.ListFilter{
		Status:       m.GetStatus(),
		Phase:        m.GetPhase(),
		Counterparty: domain.OrgID(m.GetCounterpartyOrgId()),
		PageSize:     int(m.GetPageSize()),
		PageToken:    m.GetPageToken(),
		MinPosition:  m.GetMinPosition(),
	})
	if err != nil {
		return nil, toConnect(ctx, s.log, err)
	}
	return connect.NewResponse(&contractsv1.ListContractsResponse{Contracts: list, NextPageToken: next}), nil
}
