// Package projection keeps the audits service's read model: the audits,
// their findings and measures, the checklists, and the contracts the
// service learns from contract events.
package projection

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	"github.com/jsmplatform/jsm/libs/es"
	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/services/audits/domain"
	"github.com/jsmplatform/jsm/services/contracts/known"
)

// Schema is the service's PostgreSQL schema.
const Schema = "audits"

// Aggregate types (subject parts).
const (
	AuditType     = "audits.audit"
	ChecklistType = "audits.checklist"
)

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

// Handler projects the events of audits and checklists and learns the
// contracts (package known). A batch reads the rows it changes once, folds
// its events into them with the domain's Evolve and writes each changed
// row once.
type Handler struct{}

// Reset empties the read model before a rebuild.
func (Handler) Reset(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `TRUNCATE audits.audits, audits.findings, audits.measures, audits.checklists`); err != nil {
		return err
	}
	return known.Reset(ctx, tx, Schema)
}

// Apply folds a batch into the read model.
func (Handler) Apply(ctx context.Context, tx pgx.Tx, events []event.Event) error {
	if err := known.Apply(ctx, tx, Schema, events); err != nil {
		return err
	}
	audits, err := fold(ctx, tx, events, AuditType, `SELECT audit_id, state FROM audits.audits WHERE audit_id = ANY($1)`, domain.Evolve)
	if err != nil {
		return err
	}
	lists, err := fold(ctx, tx, events, ChecklistType, `SELECT contract_id, state FROM audits.checklists WHERE contract_id = ANY($1)`, domain.EvolveChecklist)
	if err != nil {
		return err
	}
	b := &pgx.Batch{}
	for _, s := range audits {
		if !s.Exists() {
			continue // events of an audit without its plan: nothing to show
		}
		if err := queueAudit(b, s); err != nil {
			return err
		}
	}
	for _, c := range lists {
		if !c.Exists() {
			continue
		}
		raw, err := json.Marshal(c)
		if err != nil {
			return err
		}
		b.Queue(`INSERT INTO audits.checklists (contract_id, customer_org_id, provider_org_id, state, position)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (contract_id) DO UPDATE SET state = $4, position = $5`,
			c.ContractID, string(c.Customer), string(c.Provider), raw, c.Position)
	}
	return tx.SendBatch(ctx, b).Close()
}

// fold reads the stored states of the batch's aggregates of type typ and
// folds the batch's events into them, in order.
func fold[S any](ctx context.Context, tx pgx.Tx, events []event.Event, typ, sql string, evolve func(S, proto.Message, domain.Meta) S) ([]S, error) {
	states := map[string]S{}
	var ids []string
	for _, e := range events {
		if e.AggregateType != typ {
			continue
		}
		if _, ok := states[e.AggregateID]; !ok {
			var zero S
			states[e.AggregateID] = zero
			ids = append(ids, e.AggregateID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := tx.Query(ctx, sql, ids)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id string
		var raw []byte
		if err := rows.Scan(&id, &raw); err != nil {
			return nil, err
		}
		var s S
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("%s %s: stored state: %w", typ, id, err)
		}
		states[id] = s
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, e := range events {
		if e.AggregateType != typ {
			continue
		}
		m, err := e.Decode()
		if err != nil {
			return nil, fmt.Errorf("event %s at %d: %w", e.ID, e.Position, err)
		}
		states[e.AggregateID] = evolve(states[e.AggregateID], m, es.MetaOf(e))
	}
	out := make([]S, len(ids))
	for i, id := range ids {
		out[i] = states[id]
	}
	return out, nil
}

func queueAudit(b *pgx.Batch, s domain.State) error {
	raw, err := json.Marshal(s)
	if err != nil {
		return err
	}
	b.Queue(`INSERT INTO audits.audits (audit_id, contract_id, customer_org_id, provider_org_id, status, starts_at, planned_at, state, position)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (audit_id) DO UPDATE SET status = $5, starts_at = $6, state = $8, position = $9`,
		s.ID, s.ContractID, string(s.Customer), string(s.Provider), int16(s.Status), s.StartsAt, s.PlannedAt, raw, s.Position)
	for _, f := range s.Findings {
		view, err := proto.Marshal(domain.FindingToProto(s, f))
		if err != nil {
			return err
		}
		overdue := false
		for _, m := range s.MeasuresOf(f.ID) {
			overdue = overdue || m.OverdueOpen()
		}
		b.Queue(`INSERT INTO audits.findings (finding_id, audit_id, contract_id, customer_org_id, provider_org_id, status, severity, overdue, recorded_at, finding)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
			ON CONFLICT (finding_id) DO UPDATE SET status = $6, overdue = $8, finding = $10`,
			f.ID, s.ID, s.ContractID, string(s.Customer), string(s.Provider), int16(f.Status), int16(f.Severity), overdue, f.RecordedAt, view)
	}
	for _, m := range s.Measures {
		b.Queue(`INSERT INTO audits.measures (measure_id, audit_id, due_at, overdue_pending) VALUES ($1, $2, $3, $4)
			ON CONFLICT (measure_id) DO UPDATE SET overdue_pending = $4`,
			m.ID, s.ID, m.DueAt, m.OverduePending())
	}
	return nil
}
