package ingest

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/jsmplatform/jsm/libs/es"
	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/services/contracts/known"
	"github.com/jsmplatform/jsm/services/integration/ingest/domain"
)

// sourcesProjection is the read model of the ingest schema: the contracts
// the service knows and the sources, folded in stream order.
type sourcesProjection struct{}

func (sourcesProjection) Reset(ctx context.Context, tx pgx.Tx) error {
	// events and refs stay: they record what was received.
	if _, err := tx.Exec(ctx, `TRUNCATE ingest.sources`); err != nil {
		return err
	}
	return known.Reset(ctx, tx, Schema)
}

func (sourcesProjection) Apply(ctx context.Context, tx pgx.Tx, events []event.Event) error {
	if err := known.Apply(ctx, tx, Schema, events); err != nil {
		return err
	}
	states := map[domain.SourceID]domain.State{}
	changed := map[domain.SourceID]uint64{}
	for _, e := range events {
		if e.Type == "" || e.AggregateType != AggregateType {
			continue
		}
		m, err := e.Decode()
		if err != nil {
			return err
		}
		id := domain.SourceID(e.AggregateID)
		s, ok := states[id]
		if !ok {
			if s, err = loadSource(ctx, tx, id); err != nil {
				return err
			}
		}
		states[id] = domain.Evolve(s, m, es.MetaOf(e))
		changed[id] = e.Position
	}
	b := &pgx.Batch{}
	for id, pos := range changed {
		s := states[id]
		raw, err := json.Marshal(s)
		if err != nil {
			return err
		}
		b.Queue(`INSERT INTO ingest.sources (source_id, org_id, registered_at, state, position) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (source_id) DO UPDATE SET state = $4, position = $5`,
			string(id), string(s.Org), s.RegisteredAt, raw, int64(pos))
	}
	return tx.SendBatch(ctx, b).Close()
}

func loadSource(ctx context.Context, tx pgx.Tx, id domain.SourceID) (domain.State, error) {
	var raw []byte
	err := tx.QueryRow(ctx, `SELECT state FROM ingest.sources WHERE source_id = $1`, string(id)).Scan(&raw)
	if err == pgx.ErrNoRows {
		return domain.State{}, nil
	}
	if err != nil {
		return domain.State{}, fmt.Errorf("source %s: %w", id, err)
	}
	var s domain.State
	return s, json.Unmarshal(raw, &s)
}
