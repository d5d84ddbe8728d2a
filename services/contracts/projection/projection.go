// Package projection keeps the contracts read model: events of the contract
// aggregate folded with the domain's own Evolve, so the read model and the
// command side can never disagree on what the events mean.
package projection

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/projection"
	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
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
//
// It remembers the states it folded, so a batch usually costs one statement:
// each row is written only if it still holds the position the remembered
// state was folded to. A row that does not (another instance wrote it, or a
// transaction rolled back) is read back and folded again in the same
// transaction.
type Contracts struct {
	states *states
}

// NewContracts returns the read model's handler, remembering up to size
// contracts (default 10k; it should exceed two catch-up batches' worth).
func NewContracts(size int) *Contracts {
	if size <= 0 {
		size = 10_000
	}
	lru, err := simplelru.NewLRU[string, memory](size, nil)
	if err != nil {
		panic(err) // only for a size <= 0
	}
	return &Contracts{states: &states{lru: lru}}
}

// row is a contract's folded state and the position it covers; pos 0 means
// the contract has no row yet.
type row struct {
	state domain.State
	pos   uint64
	view  []byte // the encoded contract message, when prepared
}

// states remembers contracts between batches. Batches are prepared in
// stream order while earlier ones are still being written, and a batch that
// must read a row learns its state only when it is written, after later
// batches may have been prepared: so each memory says through which stream
// position it has seen every event of its contract, and what a read learns
// is kept only if no later batch has touched the contract since.
type states struct {
	mu  sync.Mutex
	lru *simplelru.LRU[string, memory]
}

type memory struct {
	state   domain.State
	pos     uint64 // the contract's last event folded in
	through uint64 // every event of the contract up to here is folded in
	known   bool   // false: touched by a batch up to through, state not known
}

// base is the remembered state of id if a batch whose first event of id is
// at first can fold onto it.
func (s *states) base(id string, first uint64) (row, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.lru.Get(id)
	if !ok || !m.known || m.pos >= first {
		return row{}, false
	}
	return row{state: m.state, pos: m.pos}, true
}

// prepared records what a batch ending at through made of id: its state
// when known, else that its state is unknown from there.
func (s *states) prepared(id string, r *row, known bool, through uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := memory{through: through, known: known}
	if known {
		m.state, m.pos = r.state, r.pos
	}
	s.lru.Add(id, m)
}

// read records a state read and folded by a batch ending at through, unless
// a later batch touched the contract meanwhile (or its memory was dropped,
// which may have hidden such a touch).
func (s *states) read(id string, r *row, through uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, ok := s.lru.Peek(id); ok && m.through <= through {
		s.lru.Add(id, memory{state: r.state, pos: r.pos, through: through, known: true})
	}
}

func (s *states) forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lru.Purge()
}

// Apply folds a batch onto the rows as stored and writes each contract it
// touched once. It trusts nothing it remembers: the projector calls it when
// what was prepared turned out to be wrong.
func (c *Contracts) Apply(ctx context.Context, tx pgx.Tx, events []event.Event) error {
	b := c.prepare(events, false)
	if _, err := b.foldKnown(); err != nil {
		return err
	}
	return b.Apply(ctx, tx)
}

// Forget drops everything remembered.
func (c *Contracts) Forget() { c.states.forget() }

// Prepare folds the batch onto the remembered states, outside the
// transaction. Contracts neither remembered nor created in the batch are
// left for Apply to read.
func (c *Contracts) Prepare(events []event.Event) (projection.Prepared, error) {
	b := c.prepare(events, true)
	known, err := b.foldKnown()
	if err != nil {
		return nil, err
	}
	for id, r := range known {
		if b.changed(id) {
			view, err := encode(r)
			if err != nil {
				return nil, fmt.Errorf("contract %s: %w", id, err)
			}
			r.view = view
		}
	}
	// Remembered ahead of the commit: the next batch is prepared while this
	// one is written. Should the write fail, the position check of the next
	// write catches the difference.
	through := b.through()
	for id, r := range b.rows {
		_, isKnown := known[id]
		b.c.states.prepared(id, r, isKnown, through)
	}
	return b, nil
}

// through is the position of the batch's last event.
func (b *batch) through() uint64 { return b.events[len(b.events)-1].Position }

// prepare collects the contracts of a batch in order of appearance, each
// from memory when remembered and the memory holds it from before the batch,
// as new when the batch creates it, else to be read.
func (c *Contracts) prepare(events []event.Event, remembered bool) *batch {
	b := &batch{c: c, events: events, rows: map[string]*row{}, expected: map[string]uint64{}}
	for _, e := range events {
		if e.AggregateType != AggregateType {
			continue
		}
		if _, ok := b.rows[e.AggregateID]; ok {
			continue
		}
		r := &row{}
		var ok bool
		if remembered {
			*r, ok = c.states.base(e.AggregateID, e.Position)
		}
		if !ok && e.Type != draftedType {
			r.pos = unknown // read it
		}
		b.rows[e.AggregateID] = r
		b.ids = append(b.ids, e.AggregateID)
	}
	return b
}

// foldKnown folds the batch onto the rows that need no reading and returns them.
func (b *batch) foldKnown() (map[string]*row, error) {
	known := make(map[string]*row, len(b.rows))
	for id, r := range b.rows {
		if r.pos != unknown {
			known[id] = r
		}
	}
	return known, b.fold(known)
}

// batch is a prepared batch: rows folded up to the batch's end, with the
// position each row is expected to hold in the table before the write.
type batch struct {
	c        *Contracts
	events   []event.Event
	ids      []string // in order of first appearance
	rows     map[string]*row
	expected map[string]uint64
}

// fold records each row's expected position and applies the events after it.
func (b *batch) fold(rows map[string]*row) error {
	for id, r := range rows {
		b.expected[id] = r.pos
	}
	for _, e := range b.events {
		r, ok := rows[e.AggregateID]
		if !ok || e.AggregateType != AggregateType || e.Position <= r.pos {
			continue
		}
		msg, err := e.Decode()
		if err != nil {
			return err
		}
		r.state = domain.EvolveAt(r.state, msg, e.Time)
		r.pos = e.Position
		r.view = nil
	}
	return nil
}

// Apply writes the batch in tx. A row the memory was wrong about (another
// instance wrote it, or a transaction rolled back) is read back and folded
// again from what it holds.
func (b *batch) Apply(ctx context.Context, tx pgx.Tx) error {
	unknowns := map[string]*row{}
	for id, r := range b.rows {
		if r.pos == unknown {
			unknowns[id] = r
		}
	}
	if err := b.reread(ctx, tx, unknowns); err != nil {
		return err
	}
	written, err := b.write(ctx, tx, b.ids)
	if err != nil {
		return err
	}
	if len(written) < len(b.ids) {
		var again []string
		stale := map[string]*row{}
		for _, id := range b.ids {
			if !written[id] {
				again = append(again, id)
				stale[id] = b.rows[id]
			}
		}
		if err := b.reread(ctx, tx, stale); err != nil {
			return err
		}
		// The transaction holds the checkpoint's lock, so no one else
		// writes these rows now: a miss here is a bug, not a race.
		rewritten, err := b.write(ctx, tx, again)
		if err != nil {
			return err
		}
		if len(rewritten) < len(again) {
			return fmt.Errorf("%d of %d contracts not written after reading them again", len(again)-len(rewritten), len(again))
		}
	}
	return nil
}

// reread replaces rows by what the table holds and folds the batch onto them.
func (b *batch) reread(ctx context.Context, tx pgx.Tx, rows map[string]*row) error {
	if len(rows) == 0 {
		return nil
	}
	ids := make([]string, 0, len(rows))
	for id, r := range rows {
		ids = append(ids, id)
		*r = row{}
	}
	res, err := tx.Query(ctx, `SELECT contract_id, view, position FROM contracts.contracts WHERE contract_id = ANY($1)`, ids)
	if err != nil {
		return fmt.Errorf("read contracts: %w", err)
	}
	defer res.Close()
	for res.Next() {
		var id string
		var view []byte
		var pos int64
		if err := res.Scan(&id, &view, &pos); err != nil {
			return err
		}
		var m contractsv1.Contract
		if err := proto.Unmarshal(view, &m); err != nil {
			return fmt.Errorf("contract %s: stored view: %w", id, err)
		}
		r := rows[id]
		r.state, r.pos = domain.ContractFromProto(&m), uint64(pos)
	}
	if err := res.Err(); err != nil {
		return fmt.Errorf("read contracts: %w", err)
	}
	if err := b.fold(rows); err != nil {
		return err
	}
	for id, r := range rows {
		b.c.states.read(id, r, b.through())
	}
	return nil
}

// unknown marks a row whose stored state must be read.
const unknown = ^uint64(0)

var draftedType = string((&contractsv1.ContractDrafted{}).ProtoReflect().Descriptor().FullName())

// columns are the values of the rows one statement writes.
type columns struct {
	ids, customers, providers, titles []string
	statuses, phases                  []int16
	views                             [][]byte
	positions, prev                   []int64
	created, updated                  []time.Time
}

// encode is the row's view: the contract message at the row's position.
func encode(r *row) ([]byte, error) {
	view, err := proto.Marshal(domain.ContractToProto(r.state, r.pos))
	if err != nil {
		return nil, fmt.Errorf("encode view: %w", err)
	}
	return view, nil
}

func (c *columns) add(id string, r *row, prev uint64) error {
	view := r.view
	if view == nil {
		var err error
		if view, err = encode(r); err != nil {
			return fmt.Errorf("contract %s: %w", id, err)
		}
	}
	c.ids = append(c.ids, id)
	c.customers = append(c.customers, string(r.state.Customer))
	c.providers = append(c.providers, string(r.state.Provider))
	c.titles = append(c.titles, r.state.Effective().Terms.Title)
	c.statuses = append(c.statuses, int16(r.state.Status()))
	c.phases = append(c.phases, int16(r.state.Phase))
	c.views = append(c.views, view)
	c.positions = append(c.positions, int64(r.pos))
	c.prev = append(c.prev, int64(prev))
	c.created = append(c.created, r.state.CreatedAt)
	c.updated = append(c.updated, r.state.UpdatedAt)
	return nil
}

// changed reports whether a contract's row needs writing: it exists and the
// batch moved it past where the table should have it.
func (b *batch) changed(id string) bool {
	r := b.rows[id]
	return r.state.Exists() && r.pos != b.expected[id]
}

// split sorts the rows of ids into new contracts and changed ones; the
// rest (nothing to show, or nothing new) need no write.
func (b *batch) split(ids []string) (inserts, updates columns, unchanged []string, err error) {
	for _, id := range ids {
		r := b.rows[id]
		prev := b.expected[id]
		switch {
		case !b.changed(id):
			unchanged = append(unchanged, id)
		case prev == 0:
			err = inserts.add(id, r, prev)
		default:
			err = updates.add(id, r, prev)
		}
		if err != nil {
			return columns{}, columns{}, nil, err
		}
	}
	return inserts, updates, unchanged, nil
}

// A new contract is written only if it has no row yet, a known one only if
// its row still holds the expected position.
const (
	insertNew = `
		INSERT INTO contracts.contracts
			(contract_id, customer_org_id, provider_org_id, title, status, phase, view, position, created_at, updated_at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::smallint[], $6::smallint[], $7::bytea[], $8::bigint[], $9::timestamptz[], $10::timestamptz[])
		ON CONFLICT (contract_id) DO NOTHING
		RETURNING contract_id`
	updateKnown = `
		UPDATE contracts.contracts AS c SET
			title = u.title, status = u.status, phase = u.phase,
			view = u.view, position = u.position, updated_at = u.updated
		FROM unnest($1::text[], $2::text[], $3::smallint[], $4::smallint[], $5::bytea[], $6::bigint[], $7::timestamptz[], $8::bigint[])
			AS u(id, title, status, phase, view, position, updated, prev)
		WHERE c.contract_id = u.id AND c.position = u.prev
		RETURNING c.contract_id`
)

func (c *columns) insertArgs() []any {
	return []any{c.ids, c.customers, c.providers, c.titles, c.statuses, c.phases, c.views, c.positions, c.created, c.updated}
}

func (c *columns) updateArgs() []any {
	return []any{c.ids, c.titles, c.statuses, c.phases, c.views, c.positions, c.updated, c.prev}
}

// Queue writes the batch in the projector's one round trip when every row
// it touches was remembered or is new; each statement fails the transaction if
// it wrote fewer rows than expected.
func (b *batch) Queue(q *pgx.Batch) bool {
	for _, r := range b.rows {
		if r.pos == unknown {
			return false
		}
	}
	inserts, updates, _, err := b.split(b.ids)
	if err != nil {
		return false // Apply reports it
	}
	if n := len(inserts.ids); n > 0 {
		q.Queue(insertNewExpected, append(inserts.insertArgs(), n)...)
	}
	if n := len(updates.ids); n > 0 {
		q.Queue(updateKnownExpected, append(updates.updateArgs(), n)...)
	}
	return true
}

// expecting wraps a writing statement with nargs parameters so that it
// fails its transaction unless it wrote as many rows as its last parameter.
func expecting(sql, what string, nargs int) string {
	return fmt.Sprintf(`WITH w AS (%s) SELECT contracts.projection_expect('%s', (SELECT count(*) FROM w), $%d)`, sql, what, nargs+1)
}

var (
	insertNewExpected   = expecting(insertNew, "new contracts", 10)
	updateKnownExpected = expecting(updateKnown, "changed contracts", 8)
)

// write stores the rows of ids and reports which it wrote (or had nothing
// to write for); both statements go in one round trip.
func (b *batch) write(ctx context.Context, tx pgx.Tx, ids []string) (map[string]bool, error) {
	inserts, updates, unchanged, err := b.split(ids)
	if err != nil {
		return nil, err
	}
	written := make(map[string]bool, len(ids))
	for _, id := range unchanged {
		written[id] = true
	}
	collect := func(rows pgx.Rows) error {
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			written[id] = true
		}
		return rows.Err()
	}
	q := &pgx.Batch{}
	if len(inserts.ids) > 0 {
		q.Queue(insertNew, inserts.insertArgs()...).Query(collect)
	}
	if len(updates.ids) > 0 {
		q.Queue(updateKnown, updates.updateArgs()...).Query(collect)
	}
	if q.Len() == 0 {
		return written, nil
	}
	if err := tx.SendBatch(ctx, q).Close(); err != nil {
		return nil, fmt.Errorf("write contracts: %w", err)
	}
	return written, nil
}

// Reset empties the read model for a rebuild.
func (c *Contracts) Reset(ctx context.Context, tx pgx.Tx) error {
	c.Forget()
	_, err := tx.Exec(ctx, `TRUNCATE contracts.contracts`)
	return err
}
