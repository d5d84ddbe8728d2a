package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/jsmplatform/jsm/libs/auth"
	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/projection"
	"github.com/jsmplatform/jsm/libs/rpc"
	adminv1 "github.com/jsmplatform/jsm/proto/gen/jsm/admin/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/admin/v1/adminv1connect"
)

// admin is jsm.admin.v1.AdminService: the host's own service over the
// projectors of the services it runs. A rebuild goes through the running
// projector (projection.Projector.Rebuild), so the platform keeps serving
// and no second process competes for the read model.
type admin struct {
	store      *eventstore.Store
	projectors []*projection.Projector
}

// withProjector is a service that has a read model.
type withProjector interface {
	Projector() *projection.Projector
}

func newAdmin(store *eventstore.Store, services []rpc.Service) *admin {
	a := &admin{store: store}
	for _, s := range services {
		if p, ok := s.(withProjector); ok {
			a.projectors = append(a.projectors, p.Projector())
		}
	}
	return a
}

var _ rpc.Service = (*admin)(nil)

func (a *admin) Name() string                  { return "admin" }
func (a *admin) Migrate(context.Context) error { return nil }
func (a *admin) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (a *admin) Policy() auth.Policy           { return adminPolicy() }
func (a *admin) Handlers(opts ...connect.HandlerOption) []rpc.Handler {
	path, h := adminv1connect.NewAdminServiceHandler(a, opts...)
	return []rpc.Handler{{Path: path, Service: adminv1connect.AdminServiceName, Handler: http.Handler(h)}}
}

// permAdmin is the permission of every admin procedure.
const permAdmin auth.Permission = "platform.admin"

// operatorRole may operate the platform; it is no role within an org.
const operatorRole = "platform-operator"

func adminPolicy() auth.Policy {
	return auth.Policy{
		Procedures: map[string]auth.Permission{
			adminv1connect.AdminServiceListProjectionsProcedure:   permAdmin,
			adminv1connect.AdminServiceRebuildProjectionProcedure: permAdmin,
			adminv1connect.AdminServiceListQuarantinedProcedure:   permAdmin,
		},
		Roles: map[string][]auth.Permission{operatorRole: {permAdmin}},
	}
}

func (a *admin) status(ctx context.Context, p *projection.Projector) (*adminv1.Projection, error) {
	last, err := a.store.LastPosition(ctx)
	if err != nil {
		return nil, connect.NewError(connect.CodeUnavailable, fmt.Errorf("stream position: %w", err))
	}
	return &adminv1.Projection{Name: p.Name(), Position: p.Position(), StreamPosition: last}, nil
}

func (a *admin) ListProjections(ctx context.Context, _ *connect.Request[adminv1.ListProjectionsRequest]) (*connect.Response[adminv1.ListProjectionsResponse], error) {
	out := &adminv1.ListProjectionsResponse{}
	for _, p := range a.projectors {
		st, err := a.status(ctx, p)
		if err != nil {
			return nil, err
		}
		out.Projections = append(out.Projections, st)
	}
	return connect.NewResponse(out), nil
}

func (a *admin) RebuildProjection(ctx context.Context, r *connect.Request[adminv1.RebuildProjectionRequest]) (*connect.Response[adminv1.RebuildProjectionResponse], error) {
	i := slices.IndexFunc(a.projectors, func(p *projection.Projector) bool { return p.Name() == r.Msg.GetName() })
	if i < 0 {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("no projection %q", r.Msg.GetName()))
	}
	p := a.projectors[i]
	if err := p.Rebuild(ctx); err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, connect.NewError(connect.CodeCanceled, err)
		}
		return nil, connect.NewError(connect.CodeInternal, fmt.Errorf("rebuild %s: %w", p.Name(), err))
	}
	st, err := a.status(ctx, p)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&adminv1.RebuildProjectionResponse{Projection: st}), nil
}

func (a *admin) ListQuarantined(ctx context.Context, r *connect.Request[adminv1.ListQuarantinedRequest]) (*connect.Response[adminv1.ListQuarantinedResponse], error) {
	out := &adminv1.ListQuarantinedResponse{}
	for _, p := range a.projectors {
		if name := r.Msg.GetProjection(); name != "" && p.Name() != name {
			continue
		}
		list, err := p.Quarantined(ctx)
		if err != nil {
			return nil, connect.NewError(connect.CodeUnavailable, err)
		}
		for _, q := range list {
			out.Events = append(out.Events, &adminv1.QuarantinedEvent{
				Projection: q.Projection, Position: q.Position, EventId: q.EventID, Type: q.Type, Reason: q.Reason,
				QuarantinedAt: timestamppb.New(q.At),
			})
		}
	}
	slices.SortStableFunc(out.Events, func(a, b *adminv1.QuarantinedEvent) int { return cmp.Compare(a.Position, b.Position) })
	return connect.NewResponse(out), nil
}
