package app

import (
	"context"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/jsmplatform/jsm/libs/es"
	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/services/trail/projection"
)

// FromDecider makes an Aggregate of an area's decider: its events folded
// with the decider's own Evolve, from its Initial state, and shown with
// view (the area's read-model message at the last event's position).
func FromDecider[S, C any, M proto.Message](d es.Decider[S, C], view func(S, uint64) M) Aggregate {
	return func(events []event.Event) (proto.Message, error) {
		s := d.Initial()
		var pos uint64
		for _, e := range events {
			m, err := e.Decode()
			if err != nil {
				return nil, err
			}
			s, pos = d.Evolve(s, e, m), e.Position
		}
		return view(s, pos), nil
	}
}

// AggregateState is an aggregate as of a point of the stream.
type AggregateState struct {
	Position uint64 // of its last event folded in
	Events   int
	State    proto.Message
}

// AggregateAt rebuilds an aggregate of org's contracts from its events up
// to position (inclusive; 0 for any) and up to at (inclusive; zero for
// any), with the decider registered for its type.
func (a *App) AggregateAt(ctx context.Context, org, aggType, aggID string, position uint64, at time.Time, minPosition uint64) (AggregateState, error) {
	fold, ok := a.Aggregates[aggType]
	if !ok {
		known := make([]string, 0, len(a.Aggregates))
		for k := range a.Aggregates {
			known = append(known, k)
		}
		return AggregateState{}, invalid("aggregate_type %q has no decider here (known: %s)", aggType, strings.Join(known, ", "))
	}
	if err := a.wait(ctx, minPosition); err != nil {
		return AggregateState{}, err
	}
	args := []any{org, aggType, aggID, int64(position)}
	sql := `SELECT ` + strings.Join(projection.Columns, ", ") + ` FROM trail.entries
		WHERE (customer_org_id = $1 OR provider_org_id = $1) AND aggregate_type = $2 AND aggregate_id = $3
		  AND ($4 = 0 OR position <= $4)`
	if !at.IsZero() {
		args = append(args, at)
		sql += ` AND time <= $5`
	}
	rows, err := a.rows(ctx, org, sql+` ORDER BY position`, args)
	if err != nil {
		return AggregateState{}, fmt.Errorf("aggregate %s %s: %w", aggType, aggID, err)
	}
	if len(rows) == 0 {
		return AggregateState{}, fmt.Errorf("%w: %s %s", ErrNotFound, aggType, aggID)
	}
	events := make([]event.Event, len(rows))
	for i, r := range rows {
		events[i] = r.Event
	}
	state, err := fold(events)
	if err != nil {
		return AggregateState{}, fmt.Errorf("fold %s %s: %w", aggType, aggID, err)
	}
	return AggregateState{Position: events[len(events)-1].Position, Events: len(events), State: state}, nil
}
