// Package known is what other areas know of contracts: they learn each
// contract from its events into a table of their own, <schema>.contracts,
// and look it up when a command needs its parties or terms. Areas never
// read the contracts service's tables nor call it.
//
// The table, created by the area's own migration:
//
//	CREATE TABLE <schema>.contracts (
//	    contract_id     text PRIMARY KEY,
//	    customer_org_id text   NOT NULL,
//	    provider_org_id text   NOT NULL,
//	    state           jsonb  NOT NULL,
//	    position        bigint NOT NULL
//	);
package known

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/projection"
	"github.com/jsmplatform/jsm/services/contracts/domain"
	readmodel "github.com/jsmplatform/jsm/services/contracts/projection"
)

// AggregateType is the contract aggregate's subject part.
const AggregateType = readmodel.AggregateType

// Apply folds the contract events among events into <schema>.contracts,
// inside the caller's projection transaction.
func Apply(ctx context.Context, tx pgx.Tx, schema string, events []event.Event) error {
	table := pgx.Identifier{schema, "contracts"}.Sanitize()
	states := map[string]domain.State{}
	last := map[string]uint64{}
	var ids []string
	for _, e := range events {
		if e.AggregateType != AggregateType {
			continue
		}
		if _, ok := last[e.AggregateID]; !ok {
			ids = append(ids, e.AggregateID)
		}
		last[e.AggregateID] = e.Position
	}
	if len(ids) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, `SELECT contract_id, state FROM `+table+` WHERE contract_id = ANY($1)`, ids)
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
			return fmt.Errorf("contract %s: stored state: %w", id, err)
		}
		states[id] = s
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, e := range events {
		if e.AggregateType != AggregateType {
			continue
		}
		m, err := e.Decode()
		if err != nil {
			return fmt.Errorf("event %s at %d: %w", e.ID, e.Position, err)
		}
		states[e.AggregateID] = domain.EvolveAt(states[e.AggregateID], m, e.Time)
	}
	b := &pgx.Batch{}
	for _, id := range ids {
		s := states[id]
		raw, err := json.Marshal(s)
		if err != nil {
			return err
		}
		b.Queue(`INSERT INTO `+table+` (contract_id, customer_org_id, provider_org_id, state, position)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (contract_id) DO UPDATE SET customer_org_id = $2, provider_org_id = $3, state = $4, position = $5`,
			id, string(s.Customer), string(s.Provider), raw, last[id])
	}
	return tx.SendBatch(ctx, b).Close()
}

// Reset empties <schema>.contracts before a rebuild.
func Reset(ctx context.Context, tx pgx.Tx, schema string) error {
	_, err := tx.Exec(ctx, `TRUNCATE `+pgx.Identifier{schema, "contracts"}.Sanitize())
	return err
}

// Contracts looks contracts up in an area's table.
type Contracts struct {
	pool      *pgxpool.Pool
	store     *eventstore.Store
	projector *projection.Projector
	table     string
	maxWait   time.Duration

	mu    sync.Mutex
	cache map[string]decodedContract
}

// New returns the lookup of the area whose projector keeps <schema>.contracts.
func New(pool *pgxpool.Pool, store *eventstore.Store, projector *projection.Projector, schema string, maxWait time.Duration) *Contracts {
	return &Contracts{pool: pool, store: store, projector: projector, table: pgx.Identifier{schema, "contracts"}.Sanitize(), maxWait: maxWait}
}

// Get returns the contract as the stream has it now, and false if there is
// none; the state may be shared with other callers, who must not change it. It waits (bounded) until the projector has read the whole stream,
// so a client that signs new terms and then acts on them is served the new
// terms, not the ones before.
func (c *Contracts) Get(ctx context.Context, id string) (domain.State, bool, error) {
	last, err := c.store.LastPosition(ctx)
	if err != nil {
		return domain.State{}, false, err
	}
	if err := c.projector.WaitFor(ctx, last, c.maxWait); err != nil {
		return domain.State{}, false, fmt.Errorf("read model: %w", err)
	}
	// The row comes back without its state when it still is at the
	// position of the state decoded last time: decoding the JSON of every
	// contract a command names cost more than the rest of the lookup.
	cached, have := c.decoded(id)
	known := int64(-1)
	if have {
		known = cached.position
	}
	var (
		raw      []byte
		position int64
	)
	err = c.pool.QueryRow(ctx, `SELECT position, CASE WHEN position = $2 THEN NULL ELSE state END FROM `+c.table+` WHERE contract_id = $1`, id, known).Scan(&position, &raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.State{}, false, nil
	}
	if err != nil {
		return domain.State{}, false, fmt.Errorf("contract %s: %w", id, err)
	}
	if raw == nil && have {
		return cached.state, true, nil
	}
	var s domain.State
	if err := json.Unmarshal(raw, &s); err != nil {
		return domain.State{}, false, fmt.Errorf("contract %s: stored state: %w", id, err)
	}
	c.remember(id, decodedContract{position: position, state: s})
	return s, true, nil
}

// decodedCacheSize bounds the decoded states a lookup keeps.
const decodedCacheSize = 4096

type decodedContract struct {
	position int64
	state    domain.State
}

func (c *Contracts) decoded(id string) (decodedContract, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.cache[id]
	return d, ok
}

func (c *Contracts) remember(id string, d decodedContract) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cache == nil {
		c.cache = make(map[string]decodedContract)
	}
	if _, ok := c.cache[id]; !ok && len(c.cache) >= decodedCacheSize {
		for k := range c.cache { // any one: the cache only saves work
			delete(c.cache, k)
			break
		}
	}
	c.cache[id] = d
}

// InForce reports whether terms signed by both parties are in force at t:
// signed, and t before the termination's effective date if terminated.
func InForce(s domain.State, t time.Time) bool {
	return s.InForce != nil && (s.Termination == nil || t.Before(s.Termination.EffectiveDate))
}
