// Package projection keeps the contracts read model: events of the contract
// aggregate folded with the domain's own Evolve, so the read model and the
// command side can never disagree on what the events mean.
package projection

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5"

	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/services/contracts/domain"
)

// Schema is the service's PostgreSQL schema.
const Schema = "contracts"

// AggregateType is the contract aggregate's subject part.
const AggregateType = "contracts.contract"

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

// Contracts projects contract events into contracts.contracts.
type Contracts struct{}

type row struct {
	state domain.State
	pos   uint64
}

// Apply folds a batch: it reads the rows of the contracts the batch touches,
// applies the events in memory and writes each contract once.
func (Contracts) Apply(ctx context.Context, tx pgx.Tx, events []event.Event) error {
	var ids []string
	touched := map[string]*row{}
	for _, e := range events {
		if e.AggregateType != AggregateType {
			continue
		}
		if _, ok := touched[e.AggregateID]; !ok {
			touched[e.AggregateID] = &row{}
			ids = append(ids, e.AggregateID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, `SELECT contract_id, state, position FROM contracts.contracts WHERE contract_id = ANY($1)`, ids)
	if err != nil {
		return fmt.Errorf("read contracts: %w", err)
	}
	for rows.Next() {
		var id string
		var state []byte
		var pos int64
		if err := rows.Scan(&id, &state, &pos); err != nil {
			return err
		}
		r := touched[id]
		if err := json.Unmarshal(state, &r.state); err != nil {
			return fmt.Errorf("contract %s: stored state: %w", id, err)
		}
		r.pos = uint64(pos)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read contracts: %w", err)
	}
	for _, e := range events {
		r, ok := touched[e.AggregateID]
		if !ok || e.AggregateType != AggregateType || e.Position <= r.pos {
			continue
		}
		msg, err := e.Decode()
		if err != nil {
			return err
		}
		r.state = domain.EvolveAt(r.state, msg, e.Time)
		r.pos = e.Position
	}
	n := len(ids)
	var (
		customers, providers, titles, states = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		statuses, phases                     = make([]int16, 0, n), make([]int16, 0, n)
		positions                            = make([]int64, 0, n)
		created, updated                     = make([]any, 0, n), make([]any, 0, n)
		keep                                 = make([]string, 0, n)
	)
	for _, id := range ids {
		r := touched[id]
		if !r.state.Exists() {
			continue // events of a contract never drafted: nothing to show
		}
		state, err := json.Marshal(r.state)
		if err != nil {
			return fmt.Errorf("contract %s: encode state: %w", id, err)
		}
		keep = append(keep, id)
		customers = append(customers, string(r.state.Customer))
		providers = append(providers, string(r.state.Provider))
		titles = append(titles, r.state.Effective().Terms.Title)
		statuses = append(statuses, int16(r.state.Status()))
		phases = append(phases, int16(r.state.Phase))
		states = append(states, string(state))
		positions = append(positions, int64(r.pos))
		created = append(created, r.state.CreatedAt)
		updated = append(updated, r.state.UpdatedAt)
	}
	_, err = tx.Exec(ctx, `
		INSERT INTO contracts.contracts AS c
			(contract_id, customer_org_id, provider_org_id, title, status, phase, state, position, created_at, updated_at)
		SELECT u.id, u.customer, u.provider, u.title, u.status, u.phase, u.state::jsonb, u.position, u.created, u.updated
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::smallint[], $6::smallint[], $7::text[], $8::bigint[], $9::timestamptz[], $10::timestamptz[])
			AS u(id, customer, provider, title, status, phase, state, position, created, updated)
		ON CONFLICT (contract_id) DO UPDATE SET
			title = excluded.title, status = excluded.status, phase = excluded.phase,
			state = excluded.state, position = excluded.position, updated_at = excluded.updated_at`,
		keep, customers, providers, titles, statuses, phases, states, positions, created, updated)
	if err != nil {
		return fmt.Errorf("write contracts: %w", err)
	}
	return nil
}

// Reset empties the read model for a rebuild.
func (Contracts) Reset(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `TRUNCATE contracts.contracts`)
	return err
}
