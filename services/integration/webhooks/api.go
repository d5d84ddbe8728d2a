package webhooks

import (
	"context"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/jsmplatform/jsm/libs/es"
	"github.com/jsmplatform/jsm/libs/rpc"
	integrationv1 "github.com/jsmplatform/jsm/proto/gen/jsm/integration/v1"
	"github.com/jsmplatform/jsm/services/integration/secret"
	"github.com/jsmplatform/jsm/services/integration/webhooks/domain"
)

// The handlers below are the Connect port: decode, call, map. Field rules
// were checked by the protovalidate interceptor before.

var domainErrors = rpc.DomainErrors{Service: "integration.webhooks", AlreadyExists: []error{domain.ErrAlreadyExists}}

func (s *Subscriptions) toConnect(ctx context.Context, err error) error {
	return domainErrors.ToConnect(ctx, s.d.Logger, err)
}

func (s *Subscriptions) RegisterSubscription(ctx context.Context, r *connect.Request[integrationv1.RegisterSubscriptionRequest]) (*connect.Response[integrationv1.RegisterSubscriptionResponse], error) {
	m := r.Msg
	req, err := rpc.CommandRequest(ctx, r, m.GetRequestId())
	if err != nil {
		return nil, err
	}
	res, err := s.register(ctx, req, &domain.Register{URL: m.GetUrl(), EventTypes: m.GetEventTypes(), Description: m.GetDescription()}, m.GetContractIds())
	if err != nil {
		return nil, s.toConnect(ctx, err)
	}
	st := res.State
	out := &integrationv1.RegisterSubscriptionResponse{Subscription: toProto(st), Position: res.Position}
	if appendedNow(res) {
		out.Secret = s.d.Keys.Derive(secret.ForSubscription, string(st.ID), st.SecretVersion)
	}
	return connect.NewResponse(out), nil
}

// appendedNow reports whether this very request changed the subscription:
// its secret is shown to the request that issued it only, never to a
// replayed request_id.
func appendedNow(res es.Result[domain.State]) bool {
	return !res.Duplicate && len(res.Events) > 0
}

func (s *Subscriptions) RotateSubscriptionSecret(ctx context.Context, r *connect.Request[integrationv1.RotateSubscriptionSecretRequest]) (*connect.Response[integrationv1.RotateSubscriptionSecretResponse], error) {
	cmd := &domain.RotateSecret{}
	if g := r.Msg.GetPreviousSecretGrace(); g != nil {
		grace := g.AsDuration()
		cmd.PreviousGrace = &grace
	}
	res, err := change(ctx, s, r, r.Msg.GetSubscriptionId(), r.Msg.GetRequestId(), cmd)
	if err != nil {
		return nil, err
	}
	st := res.State
	out := &integrationv1.RotateSubscriptionSecretResponse{SecretVersion: st.SecretVersion, Position: res.Position}
	if appendedNow(res) {
		out.Secret = s.d.Keys.Derive(secret.ForSubscription, string(st.ID), st.SecretVersion)
	}
	return connect.NewResponse(out), nil
}

func (s *Subscriptions) DisableSubscription(ctx context.Context, r *connect.Request[integrationv1.DisableSubscriptionRequest]) (*connect.Response[integrationv1.DisableSubscriptionResponse], error) {
	res, err := change(ctx, s, r, r.Msg.GetSubscriptionId(), r.Msg.GetRequestId(), &domain.Disable{Reason: r.Msg.GetReason()})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&integrationv1.DisableSubscriptionResponse{Position: res.Position}), nil
}

func (s *Subscriptions) EnableSubscription(ctx context.Context, r *connect.Request[integrationv1.EnableSubscriptionRequest]) (*connect.Response[integrationv1.EnableSubscriptionResponse], error) {
	req, err := rpc.CommandRequest(ctx, r, r.Msg.GetRequestId())
	if err != nil {
		return nil, err
	}
	res, err := s.enable(ctx, req, r.Msg.GetSubscriptionId())
	if err != nil {
		return nil, s.toConnect(ctx, err)
	}
	s.worker.Wake()
	return connect.NewResponse(&integrationv1.EnableSubscriptionResponse{Position: res.Position}), nil
}

// change runs cmd on the caller's subscription id.
func change[T any](ctx context.Context, s *Subscriptions, r *connect.Request[T], id, requestID string, cmd domain.Command) (es.Result[domain.State], error) {
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

func (s *Subscriptions) ListSubscriptions(ctx context.Context, r *connect.Request[integrationv1.ListSubscriptionsRequest]) (*connect.Response[integrationv1.ListSubscriptionsResponse], error) {
	org, err := rpc.CallerOrg(ctx)
	if err != nil {
		return nil, err
	}
	subs, next, err := s.listSubscriptions(ctx, org, pageSize(r.Msg.GetPageSize()), r.Msg.GetPageToken(), r.Msg.GetMinPosition())
	if err != nil {
		return nil, s.toConnect(ctx, err)
	}
	out := &integrationv1.ListSubscriptionsResponse{NextPageToken: next}
	for _, st := range subs {
		out.Subscriptions = append(out.Subscriptions, toProto(st))
	}
	return connect.NewResponse(out), nil
}

func (s *Subscriptions) ListDeliveries(ctx context.Context, r *connect.Request[integrationv1.ListDeliveriesRequest]) (*connect.Response[integrationv1.ListDeliveriesResponse], error) {
	org, err := rpc.CallerOrg(ctx)
	if err != nil {
		return nil, err
	}
	m := r.Msg
	rows, next, err := s.listDeliveries(ctx, org, m.GetSubscriptionId(), int16(m.GetStatus()), m.GetFromPosition(), pageSize(m.GetPageSize()), m.GetPageToken(), m.GetMinPosition())
	if err != nil {
		return nil, s.toConnect(ctx, err)
	}
	out := &integrationv1.ListDeliveriesResponse{NextPageToken: next}
	for _, d := range rows {
		out.Deliveries = append(out.Deliveries, deliveryToProto(d))
	}
	return connect.NewResponse(out), nil
}

func (s *Subscriptions) RedeliverDelivery(ctx context.Context, r *connect.Request[integrationv1.RedeliverDeliveryRequest]) (*connect.Response[integrationv1.RedeliverDeliveryResponse], error) {
	org, err := rpc.CallerOrg(ctx)
	if err != nil {
		return nil, err
	}
	d, err := s.redeliver(ctx, org, r.Msg.GetSubscriptionId(), r.Msg.GetDeliveryId())
	if err != nil {
		return nil, s.toConnect(ctx, err)
	}
	return connect.NewResponse(&integrationv1.RedeliverDeliveryResponse{Delivery: deliveryToProto(d)}), nil
}

func (s *Subscriptions) ReplayDeliveries(ctx context.Context, r *connect.Request[integrationv1.ReplayDeliveriesRequest]) (*connect.Response[integrationv1.ReplayDeliveriesResponse], error) {
	req, err := rpc.CommandRequest(ctx, r, r.Msg.GetRequestId())
	if err != nil {
		return nil, err
	}
	n, err := s.replay(ctx, req, r.Msg.GetSubscriptionId(), r.Msg.GetFromPosition())
	if err != nil {
		return nil, s.toConnect(ctx, err)
	}
	return connect.NewResponse(&integrationv1.ReplayDeliveriesResponse{Queued: uint32(n)}), nil
}

func toProto(s domain.State) *integrationv1.Subscription {
	status := integrationv1.SubscriptionStatus_SUBSCRIPTION_STATUS_DISABLED
	if s.Enabled {
		status = integrationv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ENABLED
	}
	return &integrationv1.Subscription{
		SubscriptionId: string(s.ID),
		OrgId:          string(s.Org),
		Url:            s.URL,
		EventTypes:     s.EventTypes,
		ContractIds:    s.ContractIDs,
		Status:         status,
		SecretVersion:  s.SecretVersion,
		Description:    s.Description,
		RegisteredAt:   ts(&s.RegisteredAt),
		UpdatedAt:      ts(&s.UpdatedAt),
	}
}

func deliveryToProto(d deliveryRow) *integrationv1.Delivery {
	return &integrationv1.Delivery{
		DeliveryId:     d.ID,
		SubscriptionId: d.Subscription,
		EventId:        d.EventID,
		EventType:      d.EventType,
		ContractId:     d.Contract,
		AggregateId:    d.Aggregate,
		Position:       uint64(d.Position),
		Status:         integrationv1.DeliveryStatus(d.Status),
		Attempts:       uint32(d.Attempts),
		LastAttemptAt:  ts(d.LastAttemptAt),
		NextAttemptAt:  ts(d.NextAttemptAt),
		LastStatusCode: d.LastStatusCode,
		LastError:      d.LastError,
		DeliveredAt:    ts(d.DeliveredAt),
	}
}

func ts(t *time.Time) *timestamppb.Timestamp {
	if t == nil || t.IsZero() {
		return nil
	}
	return timestamppb.New(*t)
}
