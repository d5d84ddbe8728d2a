// Package projection keeps the incidents service's read model: incidents
// with their clocks, exercises, and the contracts the service learns from
// contract events.
package projection

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	"github.com/jsmplatform/jsm/libs/es"
	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/services/contracts/known"
	"github.com/jsmplatform/jsm/services/incidents/domain"
)

// Schema is the service's PostgreSQL schema.
const Schema = "incidents"

// Aggregate types of the area (subject parts).
const (
	IncidentType = "incidents.incident"
	ExerciseType = "incidents.exercise"
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

// Handler projects the events of incidents and exercises, and learns the
// contracts (package known). A
// batch reads the rows it changes once, folds its events into them with
// the domain's Evolve and writes each changed row once.
type Handler struct{}

// Reset empties the read model before a rebuild.
func (Handler) Reset(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `TRUNCATE incidents.clocks, incidents.incidents, incidents.exercises`); err != nil {
		return err
	}
	return known.Reset(ctx, tx, Schema)
}

type decoded struct {
	e event.Event
	m proto.Message
}

// Apply folds a batch into the read model.
func (Handler) Apply(ctx context.Context, tx pgx.Tx, events []event.Event) error {
	byType := map[string][]decoded{}
	for _, e := range events {
		if e.AggregateType != IncidentType && e.AggregateType != ExerciseType {
			continue // contract events go to known.Apply
		}
		m, err := e.Decode()
		if err != nil {
			return fmt.Errorf("event %s at %d: %w", e.ID, e.Position, err)
		}
		byType[e.AggregateType] = append(byType[e.AggregateType], decoded{e, m})
	}
	if err := known.Apply(ctx, tx, Schema, events); err != nil {
		return err
	}
	if err := applyIncidents(ctx, tx, byType[IncidentType]); err != nil {
		return err
	}
	return applyExercises(ctx, tx, byType[ExerciseType])
}

// fold loads the rows of the aggregates in ds (by id, in table), folds
// the events in order and returns the changed states in first-seen order.
func fold[S any](ctx context.Context, tx pgx.Tx, table, idColumn string, ds []decoded, evolve func(S, decoded) S) ([]string, map[string]S, error) {
	states := map[string]S{}
	var ids []string
	for _, d := range ds {
		if _, ok := states[d.e.AggregateID]; !ok {
			var zero S
			states[d.e.AggregateID] = zero
			ids = append(ids, d.e.AggregateID)
		}
	}
	if len(ids) == 0 {
		return nil, nil, nil
	}
	rows, err := tx.Query(ctx, `SELECT `+idColumn+`, state FROM `+table+` WHERE `+idColumn+` = ANY($1)`, ids)
	if err != nil {
		return nil, nil, err
	}
	for rows.Next() {
		var id string
		var raw []byte
		if err := rows.Scan(&id, &raw); err != nil {
			return nil, nil, err
		}
		var s S
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, nil, fmt.Errorf("%s %s: stored state: %w", table, id, err)
		}
		states[id] = s
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	for _, d := range ds {
		states[d.e.AggregateID] = evolve(states[d.e.AggregateID], d)
	}
	return ids, states, nil
}

func applyIncidents(ctx context.Context, tx pgx.Tx, ds []decoded) error {
	ids, states, err := fold(ctx, tx, "incidents.incidents", "incident_id", ds, func(s domain.State, d decoded) domain.State {
		return domain.Evolve(s, d.m, es.MetaOf(d.e))
	})
	if err != nil {
		return err
	}
	b := &pgx.Batch{}
	for _, id := range ids {
		s := states[id]
		if !s.Exists() {
			continue // events of an incident without its report: nothing to show
		}
		raw, err := json.Marshal(s)
		if err != nil {
			return err
		}
		b.Queue(`INSERT INTO incidents.incidents (incident_id, contract_id, customer_org_id, provider_org_id, status, severity, overdue, reported_at, state, position)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
			ON CONFLICT (incident_id) DO UPDATE SET status = $5, severity = $6, overdue = $7, state = $9, position = $10`,
			s.ID, s.ContractID, string(s.Customer), string(s.Provider), int16(s.Status), int16(s.Severity), s.Overdue(), s.ReportedAt, raw, s.Position)
		b.Queue(`DELETE FROM incidents.clocks WHERE incident_id = $1`, s.ID)
		for _, k := range s.Clocks {
			var met *time.Time // NULL until met
			if k.Met() {
				met = &k.MetAt
			}
			b.Queue(`INSERT INTO incidents.clocks (incident_id, clock_id, kind, party_org_id, customer_org_id, provider_org_id, due_at, met_at, overdue)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
				s.ID, k.ID, int16(k.Kind), string(k.Party), string(s.Customer), string(s.Provider), k.DueAt, met, k.Overdue)
		}
	}
	return tx.SendBatch(ctx, b).Close()
}

func applyExercises(ctx context.Context, tx pgx.Tx, ds []decoded) error {
	ids, states, err := fold(ctx, tx, "incidents.exercises", "exercise_id", ds, func(x domain.Exercise, d decoded) domain.Exercise {
		return domain.EvolveExercise(x, d.m, es.MetaOf(d.e))
	})
	if err != nil {
		return err
	}
	b := &pgx.Batch{}
	for _, id := range ids {
		x := states[id]
		if x.ID == "" {
			continue
		}
		raw, err := json.Marshal(x)
		if err != nil {
			return err
		}
		b.Queue(`INSERT INTO incidents.exercises (exercise_id, contract_id, customer_org_id, provider_org_id, scheduled_for, state, position)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (exercise_id) DO UPDATE SET state = $6, position = $7`,
			x.ID, x.ContractID, string(x.Customer), string(x.Provider), x.ScheduledFor, raw, x.Position)
	}
	return tx.SendBatch(ctx, b).Close()
}
