// Package webhooks delivers platform events to the orgs' webhook endpoints,
// signed per the Standard Webhooks specification.
package webhooks

import (
	"context"

	"connectrpc.com/connect"

	integrationv1 "github.com/jsmplatform/jsm/proto/gen/jsm/integration/v1"
)

// Subscriptions implements the webhooks half of jsm.integration.v1.IntegrationService.
type Subscriptions struct{}

func (*Subscriptions) RegisterSubscription(context.Context, *connect.Request[integrationv1.RegisterSubscriptionRequest]) (*connect.Response[integrationv1.RegisterSubscriptionResponse], error) {
	return nil, connect.NewError(connect.CodeUnimplemented, nil)
}

func (*Subscriptions) RotateSubscriptionSecret(context.Context, *connect.Request[integrationv1.RotateSubscriptionSecretRequest]) (*connect.Response[integrationv1.RotateSubscriptionSecretResponse], error) {
	return nil, connect.NewError(connect.CodeUnimplemented, nil)
}

func (*Subscriptions) DisableSubscription(context.Context, *connect.Request[integrationv1.DisableSubscriptionRequest]) (*connect.Response[integrationv1.DisableSubscriptionResponse], error) {
	return nil, connect.NewError(connect.CodeUnimplemented, nil)
}

func (*Subscriptions) EnableSubscription(context.Context, *connect.Request[integrationv1.EnableSubscriptionRequest]) (*connect.Response[integrationv1.EnableSubscriptionResponse], error) {
	return nil, connect.NewError(connect.CodeUnimplemented, nil)
}

func (*Subscriptions) ListSubscriptions(context.Context, *connect.Request[integrationv1.ListSubscriptionsRequest]) (*connect.Response[integrationv1.ListSubscriptionsResponse], error) {
	return nil, connect.NewError(connect.CodeUnimplemented, nil)
}

func (*Subscriptions) ListDeliveries(context.Context, *connect.Request[integrationv1.ListDeliveriesRequest]) (*connect.Response[integrationv1.ListDeliveriesResponse], error) {
	return nil, connect.NewError(connect.CodeUnimplemented, nil)
}

func (*Subscriptions) RedeliverDelivery(context.Context, *connect.Request[integrationv1.RedeliverDeliveryRequest]) (*connect.Response[integrationv1.RedeliverDeliveryResponse], error) {
	return nil, connect.NewError(connect.CodeUnimplemented, nil)
}

func (*Subscriptions) ReplayDeliveries(context.Context, *connect.Request[integrationv1.ReplayDeliveriesRequest]) (*connect.Response[integrationv1.ReplayDeliveriesResponse], error) {
	return nil, connect.NewError(connect.CodeUnimplemented, nil)
}
