package projection

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/poison"
	"github.com/jsmplatform/jsm/libs/telemetry"
)

// A projector that cannot apply an event the same way every time (see
// poison.Deterministic), or whose Config.Admit refuses it, sets the event
// aside in <schema>.quarantine with the reason, in the transaction that
// moves the checkpoint past it, and goes on. A rebuild makes the same
// decision at the same position, so the read model still equals its
// rebuild. Failures that may pass are retried from the checkpoint as before.

// Quarantined is an event a projection set aside.
type Quarantined struct {
	Projection string
	Position   uint64
	EventID    string // empty when the message was not an event at all
	Type       string
	Reason     string
	At         time.Time
}

// quarantineTable is created by Migrate in the projection's schema; every
// projection of the schema shares it.
const quarantineTable = "quarantine"

func quarantineDDL(schema string) string {
	return fmt.Sprintf(`
		CREATE TABLE IF NOT EXISTS %[1]s (
			projection     text NOT NULL,
			position       bigint NOT NULL,
			event_id       text NOT NULL,
			type           text NOT NULL,
			reason         text NOT NULL,
			quarantined_at timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY (projection, position)
		)`, pgx.Identifier{schema, quarantineTable}.Sanitize())
}

// quarantine is what the projector records of ev, refused for err. The
// envelope of a malformed message is not kept: it is what broke the bounds.
func quarantine(ev event.Event, err error) Quarantined {
	q := Quarantined{Position: ev.Position, Reason: poison.Reason(err)}
	if !errors.Is(err, event.ErrMalformed) {
		q.EventID, q.Type = ev.ID, ev.Type
	}
	return q
}

// read turns a consumed message into the event the batch carries. A
// message that is not an event, or an event Admit refuses, is carried as
// its position only (which every handler skips) with the reason it is set
// aside.
func (p *Projector) read(m jetstream.Msg) (pendingEvent, error) {
	e, n, err := eventstore.FromJetStream(m)
	if err != nil && !errors.Is(err, event.ErrMalformed) {
		return pendingEvent{}, err
	}
	if err == nil && p.cfg.Admit != nil {
		if aerr := p.cfg.Admit(e); aerr != nil {
			err = fmt.Errorf("refused: %w", aerr)
		}
	}
	if err != nil {
		q := quarantine(e, err)
		return pendingEvent{Event: event.Event{Position: e.Position}, pending: n, quarantine: &q}, nil
	}
	return pendingEvent{Event: e, pending: n}, nil
}

// applyEach applies the batch one event at a time, each in a savepoint of
// tx, and returns the events that fail deterministically, undone. It is how
// a batch that failed deterministically finds its poison event(s): only
// those are set aside, the rest of the batch is applied.
func (p *Projector) applyEach(ctx context.Context, tx pgx.Tx, batch []event.Event) ([]Quarantined, error) {
	var set []Quarantined
	for _, e := range batch {
		err := pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error {
			return p.h.Apply(ctx, sp, []event.Event{e})
		})
		switch {
		case err == nil:
		case poison.Deterministic(err):
			set = append(set, quarantine(e, err))
		default:
			return nil, fmt.Errorf("apply %d: %w", e.Position, err)
		}
	}
	return set, nil
}

// queueQuarantine adds the insert of qs to b.
func (p *Projector) queueQuarantine(b *pgx.Batch, qs []Quarantined) {
	if len(qs) > 0 {
		sql, args := p.quarantineInsert(qs)
		b.Queue(sql, args...)
	}
}

// recordQuarantine inserts qs in tx.
func (p *Projector) recordQuarantine(ctx context.Context, tx pgx.Tx, qs []Quarantined) error {
	if len(qs) == 0 {
		return nil
	}
	sql, args := p.quarantineInsert(qs)
	if _, err := tx.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	return nil
}

// quarantineInsert is one statement for the whole set. A rebuild reaching
// the same position again replaces the row.
func (p *Projector) quarantineInsert(qs []Quarantined) (string, []any) {
	pos := make([]int64, len(qs))
	ids, types, reasons := make([]string, len(qs)), make([]string, len(qs)), make([]string, len(qs))
	for i, q := range qs {
		pos[i], ids[i], types[i], reasons[i] = int64(q.Position), q.EventID, q.Type, q.Reason
	}
	return `INSERT INTO ` + pgx.Identifier{p.cfg.Schema, quarantineTable}.Sanitize() + ` (projection, position, event_id, type, reason)
		SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[])
		ON CONFLICT (projection, position) DO UPDATE
		SET event_id = excluded.event_id, type = excluded.type, reason = excluded.reason, quarantined_at = now()`,
		[]any{p.cfg.Name, pos, ids, types, reasons}
}

// announce logs and counts what a committed batch set aside.
func (p *Projector) announce(qs []Quarantined) {
	for _, q := range qs {
		p.cfg.Logger.Error("projection set an event aside in quarantine", "projection", p.cfg.Name,
			"position", q.Position, "event", q.EventID, "type", q.Type, "reason", q.Reason)
	}
	if len(qs) > 0 {
		telemetry.Quarantined.WithLabelValues(p.cfg.Name).Add(float64(len(qs)))
	}
}

// MaxListed bounds a listing of the quarantine: a flood of poison is told
// by the metric, and its first events say what it is.
const MaxListed = 1000

// Quarantined lists what this projection set aside (see ListQuarantine).
func (p *Projector) Quarantined(ctx context.Context) ([]Quarantined, error) {
	return ListQuarantine(ctx, p.pool, p.cfg.Schema, p.cfg.Name)
}

// Queryer is what ListQuarantine reads with (a pool, a connection or a tx).
type Queryer interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// ListQuarantine returns what the projections of schema set aside, in
// stream order, at most MaxListed; an empty name lists every projection of
// the schema.
func ListQuarantine(ctx context.Context, q Queryer, schema, name string) ([]Quarantined, error) {
	rows, err := q.Query(ctx, `SELECT projection, position, event_id, type, reason, quarantined_at
		FROM `+pgx.Identifier{schema, quarantineTable}.Sanitize()+`
		WHERE $1 = '' OR projection = $1 ORDER BY position, projection LIMIT $2`, name, MaxListed)
	var list []Quarantined
	if err == nil {
		list, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Quarantined, error) {
			var x Quarantined
			var pos int64
			err := r.Scan(&x.Projection, &pos, &x.EventID, &x.Type, &x.Reason, &x.At)
			x.Position = uint64(pos)
			return x, err
		})
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // no projection migrated in this schema yet
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list quarantine of %s: %w", schema, err)
	}
	return list, nil
}
