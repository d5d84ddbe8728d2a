// Package projection keeps the change advisory service's read model: the
// changes, and the contracts the service learns from contract events.
package projection

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jsmplatform/jsm/libs/es"
	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/services/changeadvisory/domain"
	"github.com/jsmplatform/jsm/services/contracts/known"
)

// Schema is the service's PostgreSQL schema.
const Schema = "changeadvisory"

// ChangeType is the change aggregate's type (subject part).
const ChangeType = "changeadvisory.change"

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations are the read model's goose migrations.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}

// Handler projects the events of changes and learns the contracts
// (package known). A batch reads the rows it changes once, folds its
// events into them with the domain's Evolve and writes each changed row once.
type Handler struct{}

// Reset empties the read model before a rebuild.
func (Handler) Reset(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `TRUNCATE changeadvisory.changes`); err != nil {
		return err
	}
	return known.Reset(ctx, tx, Schema)
}

// Apply folds a batch into the read model.
func (Handler) Apply(ctx context.Context, tx pgx.Tx, events []event.Event) error {
	if err := known.Apply(ctx, tx, Schema, events); err != nil {
		return err
	}
	states := map[string]domain.State{}
	var ids []string
	for _, e := range events {
		if e.AggregateType != ChangeType {
			continue // contract events went to known.Apply
		}
		if _, ok := states[e.AggregateID]; !ok {
			states[e.AggregateID] = domain.State{}
			ids = append(ids, e.AggregateID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, `SELECT change_id, state FROM changeadvisory.changes WHERE change_id = ANY($1)`, ids)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id string
		var raw []byte
		if err := rows.Scan(&id, &raw); err != nil {
			return err
		}
		var s domain.State
		if err := json.Unmarshal(raw, &s); err != nil {
			return fmt.Errorf("change %s: stored state: %w", id, err)
		}
		states[id] = s
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, e := range events {
		if e.AggregateType != ChangeType {
			continue
		}
		m, err := e.Decode()
		if err != nil {
			return fmt.Errorf("event %s at %d: %w", e.ID, e.Position, err)
		}
		states[e.AggregateID] = domain.Evolve(states[e.AggregateID], m, es.MetaOf(e))
	}
	b := &pgx.Batch{}
	for _, id := range ids {
		s := states[id]
		if !s.Exists() {
			continue // events of a change without its request: nothing to show
		}
		raw, err := json.Marshal(s)
		if err != nil {
			return err
		}
		type ref struct {
			Kind string `json:"kind"`
			ID   string `json:"id"`
		}
		refs := make([]ref, len(s.Links))
		for i, l := range s.Links {
			refs[i] = ref{Kind: l.Kind, ID: l.ID}
		}
		links, err := json.Marshal(refs)
		if err != nil {
			return err
		}
		var due *time.Time // NULL without a deadline
		if !s.ReviewDueAt.IsZero() {
			due = &s.ReviewDueAt
		}
		b.Queue(`INSERT INTO changeadvisory.changes (change_id, contract_id, customer_org_id, provider_org_id, status, emergency, links, review_pending, review_due_at, requested_at, state, position)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
			ON CONFLICT (change_id) DO UPDATE SET status = $5, review_pending = $8, review_due_at = $9, state = $11, position = $12`,
			s.ID, s.ContractID, string(s.Customer), string(s.Provider), int16(s.Status), s.Emergency, links, s.ReviewPending(), due, s.RequestedAt, raw, s.Position)
	}
	return tx.SendBatch(ctx, b).Close()
}
