package api

import (
	"context"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	trailv1 "github.com/jsmplatform/jsm/proto/gen/jsm/trail/v1"
)

// ListQuarantine lists the events the trail refused to log. The policy
// lets only the platform operator call it: the events are any org's.
func (s *Server) ListQuarantine(ctx context.Context, r *connect.Request[trailv1.ListQuarantineRequest]) (*connect.Response[trailv1.ListQuarantineResponse], error) {
	if _, err := caller(ctx); err != nil {
		return nil, err
	}
	qs, err := s.app.Quarantine(ctx, r.Msg.GetAfterPosition(), int(r.Msg.GetPageSize()))
	if err != nil {
		return nil, toConnect(ctx, s.log, err)
	}
	out := &trailv1.ListQuarantineResponse{Events: make([]*trailv1.QuarantinedEvent, len(qs))}
	for i, q := range qs {
		out.Events[i] = &trailv1.QuarantinedEvent{
			Position: q.Position, Id: q.ID, Type: q.Type, Source: q.Source,
			AggregateType: q.AggregateType, AggregateId: q.AggregateID, ActorOrgId: q.ActorOrg, Actor: q.Actor,
			Signer: q.Signer, Reason: string(q.Reason), Detail: q.Detail,
			Time: timestamppb.New(q.Time), QuarantinedAt: timestamppb.New(q.QuarantinedAt),
		}
	}
	return connect.NewResponse(out), nil
}
