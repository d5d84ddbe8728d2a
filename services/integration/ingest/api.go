// Package ingest turns the CloudEvents that ITSM tools and scanners publish
// (over HTTP and NATS) into platform commands.
package ingest

import (
	"context"

	"connectrpc.com/connect"

	integrationv1 "github.com/jsmplatform/jsm/proto/gen/jsm/integration/v1"
)

// Sources implements the ingest half of jsm.integration.v1.IntegrationService.
type Sources struct{}

func (*Sources) RegisterSource(context.Context, *connect.Request[integrationv1.RegisterSourceRequest]) (*connect.Response[integrationv1.RegisterSourceResponse], error) {
	return nil, connect.NewError(connect.CodeUnimplemented, nil)
}

func (*Sources) RotateSourceSecret(context.Context, *connect.Request[integrationv1.RotateSourceSecretRequest]) (*connect.Response[integrationv1.RotateSourceSecretResponse], error) {
	return nil, connect.NewError(connect.CodeUnimplemented, nil)
}

func (*Sources) DisableSource(context.Context, *connect.Request[integrationv1.DisableSourceRequest]) (*connect.Response[integrationv1.DisableSourceResponse], error) {
	return nil, connect.NewError(connect.CodeUnimplemented, nil)
}

func (*Sources) EnableSource(context.Context, *connect.Request[integrationv1.EnableSourceRequest]) (*connect.Response[integrationv1.EnableSourceResponse], error) {
	return nil, connect.NewError(connect.CodeUnimplemented, nil)
}

func (*Sources) GetSource(context.Context, *connect.Request[integrationv1.GetSourceRequest]) (*connect.Response[integrationv1.GetSourceResponse], error) {
	return nil, connect.NewError(connect.CodeUnimplemented, nil)
}

func (*Sources) ListSources(context.Context, *connect.Request[integrationv1.ListSourcesRequest]) (*connect.Response[integrationv1.ListSourcesResponse], error) {
	return nil, connect.NewError(connect.CodeUnimplemented, nil)
}

func (*Sources) ListIngestedEvents(context.Context, *connect.Request[integrationv1.ListIngestedEventsRequest]) (*connect.Response[integrationv1.ListIngestedEventsResponse], error) {
	return nil, connect.NewError(connect.CodeUnimplemented, nil)
}

func (*Sources) ListRejectedEvents(context.Context, *connect.Request[integrationv1.ListRejectedEventsRequest]) (*connect.Response[integrationv1.ListRejectedEventsResponse], error) {
	return nil, connect.NewError(connect.CodeUnimplemented, nil)
}
