package ingest

import (
	"context"
	"errors"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/jsmplatform/jsm/libs/decide"
	"github.com/jsmplatform/jsm/libs/es"
	"github.com/jsmplatform/jsm/libs/rpc"
	integrationv1 "github.com/jsmplatform/jsm/proto/gen/jsm/integration/v1"
	"github.com/jsmplatform/jsm/services/integration/ingest/domain"
	"github.com/jsmplatform/jsm/services/integration/registration"
	"github.com/jsmplatform/jsm/services/integration/secret"
)

// The handlers below are the Connect port: decode, call, map. Field rules
// were checked by the protovalidate interceptor before.

var domainErrors = rpc.DomainErrors{Service: "integration.ingest", AlreadyExists: []error{domain.ErrAlreadyExists}}

func (s *Sources) toConnect(ctx context.Context, err error) error {
	return domainErrors.ToConnect(ctx, s.d.Logger, err)
}

func (s *Sources) RegisterSource(ctx context.Context, r *connect.Request[integrationv1.RegisterSourceRequest]) (*connect.Response[integrationv1.RegisterSourceResponse], error) {
	m := r.Msg
	req, err := rpc.CommandRequest(ctx, r, m.GetRequestId())
	if err != nil {
		return nil, err
	}
	contracts, err := s.lookup(ctx, m.GetContractIds())
	if err != nil {
		return nil, s.toConnect(ctx, err)
	}
	res, err := s.handle(ctx, req, m.GetSourceId(), &domain.Register{ID: domain.SourceID(m.GetSourceId()), Name: m.GetName(), Mapping: m.GetMapping(), Contracts: contracts})
	if err != nil {
		return nil, s.toConnect(ctx, err)
	}
	st := res.State
	out := &integrationv1.RegisterSourceResponse{Source: toProto(st), Position: res.Position}
	if appendedNow(res) {
		out.Secret = s.d.Keys.Derive(secret.ForSource, string(st.ID), st.SecretVersion)
	}
	return connect.NewResponse(out), nil
}

// appendedNow reports whether this very request changed the aggregate: a
// secret is shown to the request that issued it only, never again to a
// registration of an existing source or a replayed request_id (whoever
// holds a token of the org would otherwise read the live secret without a
// rotation or an event).
func appendedNow(res es.Result[domain.State]) bool {
	return !res.Duplicate && len(res.Events) > 0
}

func (s *Sources) RotateSourceSecret(ctx context.Context, r *connect.Request[integrationv1.RotateSourceSecretRequest]) (*connect.Response[integrationv1.RotateSourceSecretResponse], error) {
	cmd := &domain.RotateSecret{}
	if g := r.Msg.GetPreviousSecretGrace(); g != nil {
		grace := g.AsDuration()
		cmd.PreviousGrace = &grace
	}
	res, err := change(ctx, s, r, r.Msg.GetSourceId(), r.Msg.GetRequestId(), cmd)
	if err != nil {
		return nil, err
	}
	st := res.State
	if err := s.kickNATS(ctx, st.ID); err != nil {
		return nil, err
	}
	out := &integrationv1.RotateSourceSecretResponse{SecretVersion: st.SecretVersion, Position: res.Position}
	if appendedNow(res) {
		out.Secret = s.d.Keys.Derive(secret.ForSource, string(st.ID), st.SecretVersion)
	}
	return connect.NewResponse(out), nil
}

func (s *Sources) DisableSource(ctx context.Context, r *connect.Request[integrationv1.DisableSourceRequest]) (*connect.Response[integrationv1.DisableSourceResponse], error) {
	res, err := change(ctx, s, r, r.Msg.GetSourceId(), r.Msg.GetRequestId(), &domain.Disable{Reason: r.Msg.GetReason()})
	if err != nil {
		return nil, err
	}
	if err := s.kickNATS(ctx, res.State.ID); err != nil {
		return nil, err
	}
	return connect.NewResponse(&integrationv1.DisableSourceResponse{Position: res.Position}), nil
}

func (s *Sources) EnableSource(ctx context.Context, r *connect.Request[integrationv1.EnableSourceRequest]) (*connect.Response[integrationv1.EnableSourceResponse], error) {
	req, err := rpc.CommandRequest(ctx, r, r.Msg.GetRequestId())
	if err != nil {
		return nil, err
	}
	id := r.Msg.GetSourceId()
	st, _, err := s.runner.State(ctx, id)
	if err != nil {
		return nil, s.toConnect(ctx, err)
	}
	cmd := &domain.Enable{}
	if st.Org == domain.OrgID(req.Actor.Org) {
		// The org must still be a party to every contract of the source.
		if cmd.Contracts, err = s.lookup(ctx, st.ContractIDs); err != nil {
			return nil, s.toConnect(ctx, err)
		}
	}
	res, err := s.handle(ctx, req, id, cmd)
	if err != nil {
		return nil, s.toConnect(ctx, err)
	}
	return connect.NewResponse(&integrationv1.EnableSourceResponse{Position: res.Position}), nil
}

// kickNATS disconnects the source's NATS connections after a change of its
// credentials; when that fails the caller is told to retry (the command
// is done, and its retry disconnects them again).
func (s *Sources) kickNATS(ctx context.Context, id domain.SourceID) error {
	if err := s.kick(ctx, string(id)); err != nil {
		s.d.Logger.Error("disconnect source from nats", "source", id, "err", err)
		return connect.NewError(connect.CodeUnavailable, errors.New("done, but the source's NATS connections could not be closed yet: retry"))
	}
	return nil
}

// change runs cmd on the caller's source id.
func change[T any](ctx context.Context, s *Sources, r *connect.Request[T], id, requestID string, cmd domain.Command) (es.Result[domain.State], error) {
	req, err := rpc.CommandRequest(ctx, r, requestID)
	if err != nil {
		return es.Result[domain.State]{}, err
	}
	res, err := s.handle(ctx, req, id, cmd)
	if err != nil {
		return res, s.toConnect(ctx, err)
	}
	return res, nil
}

// handle runs cmd on the source id for the request's caller.
func (s *Sources) handle(ctx context.Context, req es.Request, id string, cmd domain.Command) (es.Result[domain.State], error) {
	decide.Stamp(cmd, es.ActorOf(req), s.d.Now())
	res, err := s.runner.Handle(ctx, es.CommandFor(req, id, cmd))
	if err != nil && isNotFound(err) {
		err = domain.NotFoundError{What: "source", ID: id}
	}
	return res, err
}

func (s *Sources) lookup(ctx context.Context, ids []string) ([]domain.Contract, error) {
	return registration.Lookup(ctx, s.contracts, ids)
}

func (s *Sources) GetSource(ctx context.Context, r *connect.Request[integrationv1.GetSourceRequest]) (*connect.Response[integrationv1.GetSourceResponse], error) {
	org, err := rpc.CallerOrg(ctx)
	if err != nil {
		return nil, err
	}
	st, err := s.getSource(ctx, org, r.Msg.GetSourceId(), r.Msg.GetMinPosition())
	if err != nil {
		return nil, s.toConnect(ctx, err)
	}
	return connect.NewResponse(&integrationv1.GetSourceResponse{Source: toProto(st)}), nil
}

func (s *Sources) ListSources(ctx context.Context, r *connect.Request[integrationv1.ListSourcesRequest]) (*connect.Response[integrationv1.ListSourcesResponse], error) {
	org, err := rpc.CallerOrg(ctx)
	if err != nil {
		return nil, err
	}
	srcs, next, err := s.listSources(ctx, org, pageSize(r.Msg.GetPageSize()), r.Msg.GetPageToken(), r.Msg.GetMinPosition())
	if err != nil {
		return nil, s.toConnect(ctx, err)
	}
	out := &integrationv1.ListSourcesResponse{NextPageToken: next}
	for _, st := range srcs {
		out.Sources = append(out.Sources, toProto(st))
	}
	return connect.NewResponse(out), nil
}

func (s *Sources) ListIngestedEvents(ctx context.Context, r *connect.Request[integrationv1.ListIngestedEventsRequest]) (*connect.Response[integrationv1.ListIngestedEventsResponse], error) {
	m := r.Msg
	events, next, err := s.listEvents(ctx, m.GetSourceId(), m.GetOutcome(), m.GetPageSize(), m.GetPageToken(), m.GetMinPosition())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&integrationv1.ListIngestedEventsResponse{Events: events, NextPageToken: next}), nil
}

func (s *Sources) ListRejectedEvents(ctx context.Context, r *connect.Request[integrationv1.ListRejectedEventsRequest]) (*connect.Response[integrationv1.ListRejectedEventsResponse], error) {
	m := r.Msg
	events, next, err := s.listEvents(ctx, m.GetSourceId(), integrationv1.IngestOutcome_INGEST_OUTCOME_REJECTED, m.GetPageSize(), m.GetPageToken(), m.GetMinPosition())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&integrationv1.ListRejectedEventsResponse{Events: events, NextPageToken: next}), nil
}

func (s *Sources) listEvents(ctx context.Context, source string, outcome integrationv1.IngestOutcome, size int32, token string, minPosition uint64) ([]*integrationv1.IngestedEvent, string, error) {
	org, err := rpc.CallerOrg(ctx)
	if err != nil {
		return nil, "", err
	}
	rows, next, err := s.queryEvents(ctx, org, source, outcome, pageSize(size), token, minPosition)
	if err != nil {
		return nil, "", s.toConnect(ctx, err)
	}
	out := make([]*integrationv1.IngestedEvent, 0, len(rows))
	for _, res := range rows {
		out = append(out, res.toProto())
	}
	return out, next, nil
}

func toProto(st domain.State) *integrationv1.Source {
	status := integrationv1.SourceStatus_SOURCE_STATUS_ENABLED
	if !st.Enabled {
		status = integrationv1.SourceStatus_SOURCE_STATUS_DISABLED
	}
	return &integrationv1.Source{
		SourceId:      string(st.ID),
		OrgId:         string(st.Org),
		Name:          st.Name,
		Mapping:       st.Mapping,
		ContractIds:   st.ContractIDs,
		Status:        status,
		SecretVersion: st.SecretVersion,
		RegisteredAt:  timestamppb.New(st.RegisteredAt),
		UpdatedAt:     timestamppb.New(st.UpdatedAt),
	}
}

func (res Result) toProto() *integrationv1.IngestedEvent {
	e := &integrationv1.IngestedEvent{
		SourceId: res.SourceID, EventId: res.EventID, Type: res.Type, Subject: res.Subject,
		ReceivedAt: timestamppb.New(res.ReceivedAt), Transport: res.Transport, Outcome: res.Outcome,
		ContractId: res.ContractID, ObjectType: res.ObjectType, ObjectId: res.ObjectID, Position: res.Position,
		ReasonType: res.ReasonType, Reason: res.Reason, Original: res.Original,
	}
	if res.EventTime != nil {
		e.EventTime = timestamppb.New(*res.EventTime)
	}
	if !res.Ref.IsZero() {
		e.ExternalRef = &integrationv1.ExternalRef{System: res.Ref.System, Id: res.Ref.ID}
	}
	return e
}
