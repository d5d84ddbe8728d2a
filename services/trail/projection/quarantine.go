package projection

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/eventsig"
	"github.com/jsmplatform/jsm/libs/telemetry"
)

// Quarantined is an event the trail refused to log, and why.
type Quarantined struct {
	Position      uint64
	ID            string
	Type          string
	Source        string
	AggregateType string
	AggregateID   string
	ActorOrg      string
	Actor         string
	Signer        string // as the event claims it, unchecked
	Reason        eventsig.Reason
	Detail        string
	Time          time.Time // as the event claims it
	QuarantinedAt time.Time
}

// QuarantinedEvents counts the events the trail refused to log, by reason
// (eventsig.Reason): any rise means someone appended events no pinned key
// vouches for, or a service runs with a key the trail does not pin. A
// rebuild counts its decisions again.
var QuarantinedEvents = func() *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "jsm_trail_quarantined_events_total",
		Help: "Events the trail refused to log (unsigned, unknown signer, another area's signer, bad signature) and quarantined, by reason.",
	}, []string{"reason"})
	telemetry.Registry.MustRegister(c)
	return c
}()

func quarantined(e event.Event, err error) Quarantined {
	reason, detail := eventsig.ReasonOf(err), err.Error()
	if reason == "" {
		reason = eventsig.BadSignature
	}
	return Quarantined{
		Position: e.Position, ID: e.ID, Type: e.Type, Source: e.Source,
		AggregateType: e.AggregateType, AggregateID: e.AggregateID,
		ActorOrg: e.Actor.Org, Actor: e.Actor.User, Signer: e.Signer,
		Reason: reason, Detail: detail, Time: e.Time.UTC(),
	}
}

// verify checks the events' signatures on every core: it is the costly
// part of preparing a batch (an Ed25519 verification per event), done while
// the previous batch commits. The result is an error per event, nil for
// one that passes; nil slice when keys are nil.
func verify(keys *eventsig.Keys, events []event.Event) []error {
	if keys == nil {
		return nil
	}
	out := make([]error, len(events))
	workers := min(runtime.GOMAXPROCS(0), (len(events)+63)/64)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(events); i += workers {
				if events[i].ID != "" {
					out[i] = keys.Verify(events[i])
				}
			}
		})
	}
	wg.Wait()
	return out
}

// writeQuarantine records refused events. A position quarantined already
// (a batch applied again) is kept as it was and not counted again.
func writeQuarantine(ctx context.Context, tx pgx.Tx, qs []Quarantined) error {
	for _, q := range qs {
		tag, err := tx.Exec(ctx, `INSERT INTO trail.unattributed (position, id, type, source, aggregate_type, aggregate_id,
			actor_org_id, actor, signer, reason, detail, time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
			ON CONFLICT (position) DO NOTHING`,
			int64(q.Position), q.ID, q.Type, q.Source, q.AggregateType, q.AggregateID, q.ActorOrg, q.Actor, q.Signer,
			string(q.Reason), q.Detail, q.Time)
		if err != nil {
			return fmt.Errorf("quarantine event at %d: %w", q.Position, err)
		}
		if tag.RowsAffected() == 1 {
			QuarantinedEvents.WithLabelValues(string(q.Reason)).Inc()
		}
	}
	return nil
}

// ListQuarantine reads quarantined events after position after, oldest
// first, at most limit.
func ListQuarantine(ctx context.Context, q Querier, after uint64, limit int) ([]Quarantined, error) {
	rows, err := q.Query(ctx, `SELECT position, id, type, source, aggregate_type, aggregate_id, actor_org_id, actor,
		signer, reason, detail, time, quarantined_at FROM trail.unattributed WHERE position > $1 ORDER BY position LIMIT $2`,
		int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("list quarantine: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Quarantined, error) {
		var x Quarantined
		var pos int64
		var reason string
		err := r.Scan(&pos, &x.ID, &x.Type, &x.Source, &x.AggregateType, &x.AggregateID, &x.ActorOrg, &x.Actor,
			&x.Signer, &reason, &x.Detail, &x.Time, &x.QuarantinedAt)
		x.Position, x.Reason = uint64(pos), eventsig.Reason(reason)
		return x, err
	})
}

// nonNil is b, or an empty slice for nil: the column is NOT NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
