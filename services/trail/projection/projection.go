// Package projection appends every event of the stream to the trail and
// grows its Merkle tree in the same transaction as the projector's
// checkpoint, so the log, the tree and the checkpoint never disagree.
package projection

import (
	"cmp"
	"context"
	"embed"
	"fmt"
	"io/fs"
	"maps"
	"regexp"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/tlog"
	"golang.org/x/sync/errgroup"

	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/eventsig"
	"github.com/jsmplatform/jsm/services/trail/ledger"
)

// Schema is the service's PostgreSQL schema.
const Schema = "trail"

// Name is the projection's (and its checkpoint row's) name.
const Name = "trail"

//go:embed migrations/*.sql
var migrations embed.FS

//go:embed indexes.sql
var indexesSQL string

// Migrations are the trail's goose migrations.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}

// Log is the plain projection handler: it keeps nothing between batches.
// Builder, which remembers the tree, is what the service runs.
type Log struct {
	// Keys are the pinned keys of the services' event signatures. With
	// keys, an event is logged only when the key of its own area signed it
	// (its signer is then part of its entry); any other goes to
	// trail.unattributed. Without keys every event is logged, unattributed:
	// the policy of a development trail or a test, never of production.
	Keys *eventsig.Keys
	// SignedFrom is the first stream position whose events must be
	// signed: the events of a stream that was written before its services
	// signed are logged unattributed, as they were, so that the tree keeps
	// the roots it signed then. 0: every event must be signed.
	SignedFrom uint64
}

// Columns of trail.entries in the order Scan and the copy use them.
var Columns = []string{
	"position", "idx", "id", "type", "source", "aggregate_type", "aggregate_id", "contract_id",
	"customer_org_id", "provider_org_id", "actor_org_id", "actor", "actor_role",
	"correlation_id", "causation_id", "schema_version", "time", "nanos", "payload",
	"trace_parent", "signer", "signature",
}

// EntryOf is the canonical entry of an event.
func EntryOf(e event.Event) ledger.Entry {
	return ledger.Entry{
		ID: e.ID, Position: e.Position, Type: e.Type, Source: e.Source,
		AggregateType: e.AggregateType, AggregateID: e.AggregateID, Contract: e.Contract,
		Customer: e.Parties.Customer, Provider: e.Parties.Provider,
		ActorOrg: e.Actor.Org, Actor: e.Actor.User, ActorRole: e.Actor.Role,
		Correlation: e.Correlation, Causation: e.Causation, SchemaVersion: int32(e.SchemaVersion),
		Time:        e.Time.UTC(),
		PayloadHash: ledger.PayloadHash(e.Data),
		Signer:      e.Signer,
		Signature:   e.Signature,
		TraceParent: e.TraceParent,
	}
}

// encoded is a batch's rows, ready to be streamed into COPY.
type encoded struct {
	n          int    // entries
	entries    []byte // trail.entries (Columns)
	hashes     []byte // trail.hashes (first_record, hashes)
	quarantine []Quarantined
}

// build computes the rows of events appended to a tree of size with the
// given frontier, and the tree after them. It does not change frontier.
// An event that fails the signature policy of keys (see Log) is not
// logged: it comes back in the quarantine rows.
func build(policy Log, size int64, frontier ledger.Hashes, events []event.Event) (*encoded, *memory, error) {
	tree := ledger.NewAppender(size, frontier, len(events))
	// About 600 bytes an entry: one allocation.
	entries := newCopyData(640 * len(events))
	verdicts := verify(policy.Keys, events)
	var quarantine []Quarantined
	n := 0
	for i, e := range events {
		if e.ID == "" {
			continue // not an event (the projector passes its position only)
		}
		if policy.Keys == nil || e.Position < policy.SignedFrom {
			// Nothing pinned (or from before signatures): nothing can be
			// attributed, and an unchecked claim of a signer is not
			// recorded as if it were checked.
			e.Signer, e.Signature, e.TraceParent = "", nil, ""
		} else if err := verdicts[i]; err != nil {
			quarantine = append(quarantine, quarantined(e, err))
			continue
		}
		idx := tree.Size()
		entry := EntryOf(e)
		if _, err := tree.Append(entry.LeafHash()); err != nil {
			return nil, nil, fmt.Errorf("tree at %d: %w", idx, err)
		}
		n++

		// In the order of Columns.
		entries.row(len(Columns))
		entries.int64(int64(e.Position))
		entries.int64(idx)
		for _, s := range [...]string{e.ID, e.Type, e.Source, e.AggregateType, e.AggregateID, e.Contract,
			e.Parties.Customer, e.Parties.Provider, e.Actor.Org, e.Actor.User, e.Actor.Role, e.Correlation, e.Causation} {
			entries.text(s)
		}
		entries.int32(int32(e.SchemaVersion))
		entries.timestamptz(entry.Time)
		entries.int16(int16(entry.Time.Nanosecond() % 1000))
		entries.bytea(e.Data)
		entries.text(e.TraceParent)
		entries.text(e.Signer)
		entries.bytea(nonNil(e.Signature))
	}
	// Keep only the new tree's frontier: all the next batch reads.
	next, err := tree.Frontier()
	if err != nil {
		return nil, nil, fmt.Errorf("tree at %d: %w", tree.Size(), err)
	}
	return &encoded{n: n, entries: entries.bytes(), hashes: runs(size, tree.Size(), tree.Added(), RunRecords), quarantine: quarantine}, &memory{size: tree.Size(), frontier: next}, nil
}

// RunRecords is the most records a row of trail.hashes holds. Rows end at
// multiples of it (and where a batch ends): a row of 32 records is about
// 2 kB of hashes, three to a page, and costs PostgreSQL about what a row of
// one record did, for a thirtieth of the rows.
const RunRecords = 32

// runs is the rows of trail.hashes (first_record, hashes) of records from
// to to, whose stored hashes are added, one after the other, in runs of up
// to per records.
func runs(from, to int64, added []tlog.Hash, per int64) []byte {
	d := newCopyData(int((to-from)/per+2)*12 + len(added)*tlog.HashSize)
	base := tlog.StoredHashIndex(0, from)
	for first := from; first < to; {
		end := min(to, (first/per+1)*per)
		d.row(2)
		d.int64(first)
		d.hashes(added[tlog.StoredHashIndex(0, first)-base : tlog.StoredHashIndex(0, end)-base])
		first = end
	}
	return d.bytes()
}

// Apply appends the batch's events to trail.entries and their stored
// hashes to trail.hashes, and moves the tree's size, reading the tree's
// size and frontier in tx (which the projector holds after locking its
// checkpoint, so instances take turns).
func (l Log) Apply(ctx context.Context, tx pgx.Tx, events []event.Event) error {
	var size int64
	if err := tx.QueryRow(ctx, `SELECT size FROM trail.tree FOR UPDATE`).Scan(&size); err != nil {
		return fmt.Errorf("tree size: %w", err)
	}
	frontier, err := ReadFrontier(ctx, tx, size)
	if err != nil {
		return err
	}
	c, next, err := build(l, size, frontier, events)
	if err != nil {
		return err
	}
	return write(ctx, tx, c, next.size)
}

// write appends the rows and moves the tree's size to size.
func write(ctx context.Context, tx pgx.Tx, r *encoded, size int64) error {
	if err := writeQuarantine(ctx, tx, r.quarantine); err != nil {
		return err
	}
	if r.n == 0 {
		return nil
	}
	if err := copyFrom(ctx, tx, "entries", Columns, r.entries); err != nil {
		return fmt.Errorf("append entries: %w", err)
	}
	if err := copyFrom(ctx, tx, "hashes", []string{"first_record", "hashes"}, r.hashes); err != nil {
		return fmt.Errorf("append hashes: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE trail.tree SET size = $1`, size); err != nil {
		return fmt.Errorf("tree size: %w", err)
	}
	return nil
}

// Reset empties the log and its tree for a rebuild, and drops the search
// indexes until it has caught up (see BuildIndexes). The signed
// checkpoints stay: the rebuilt tree must match them.
func (Log) Reset(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `TRUNCATE trail.entries, trail.hashes, trail.unattributed; UPDATE trail.tree SET size = 0`)
	if err != nil {
		return err
	}
	for _, name := range indexNames() {
		if _, err := tx.Exec(ctx, `DROP INDEX IF EXISTS `+pgx.Identifier{Schema, name}.Sanitize()); err != nil {
			return err
		}
	}
	return nil
}

var indexStatement = regexp.MustCompile(`(?m)^CREATE (?:UNIQUE )?INDEX IF NOT EXISTS (\w+) ON [^;]*;`)

// indexes are the search indexes of indexes.sql: name and statement.
func indexes() [][2]string {
	var out [][2]string
	for _, m := range indexStatement.FindAllStringSubmatch(indexesSQL, -1) {
		out = append(out, [2]string{m[1], m[0]})
	}
	return out
}

func indexNames() []string {
	var out []string
	for _, ix := range indexes() {
		out = append(out, ix[0])
	}
	return out
}

// MissingIndexes reports whether any search index is missing.
func MissingIndexes(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (bool, error) {
	var n int
	err := q.QueryRow(ctx, `SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND indexname = ANY($2)`, Schema, indexNames()).Scan(&n)
	return n < len(indexNames()), err
}

// BuildIndexes creates the search indexes that are missing, two at a time
// (a build keeps one core busy), each holding off appends (not reads)
// while it runs. Instances building at once take turns per index.
func BuildIndexes(ctx context.Context, pool *pgxpool.Pool) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(2)
	for _, ix := range indexes() {
		g.Go(func() error {
			return pgx.BeginFunc(gctx, pool, func(tx pgx.Tx) error {
				// Sorting in memory rather than in temporary files.
				_, err := tx.Exec(gctx, `SELECT pg_advisory_xact_lock(hashtext('jsm.trail.index.' || $1)), set_config('maintenance_work_mem', '256MB', true)`, ix[0])
				if err != nil {
					return err
				}
				if _, err := tx.Exec(gctx, ix[1]); err != nil {
					return fmt.Errorf("index %s: %w", ix[0], err)
				}
				return nil
			})
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// A bulk-loaded table has no statistics yet: without them the planner
	// may walk the primary key for a contract's few events.
	_, err := pool.Exec(ctx, `ANALYZE trail.entries`)
	return err
}

// Querier is a pool, a connection or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// HashReader reads stored hashes from trail.hashes.
func HashReader(ctx context.Context, q Querier) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		got, err := readHashes(ctx, q, indexes)
		if err != nil {
			return nil, err
		}
		return got.ReadHashes(indexes)
	})
}

// CachingHashReader is HashReader keeping every hash it read: proofs of
// many entries of one tree (an export) share most of their nodes.
func CachingHashReader(ctx context.Context, q Querier) tlog.HashReader {
	cache := ledger.Hashes{}
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		var missing []int64
		for _, idx := range indexes {
			if _, ok := cache[idx]; !ok {
				missing = append(missing, idx)
			}
		}
		got, err := readHashes(ctx, q, missing)
		if err != nil {
			return nil, err
		}
		maps.Copy(cache, got)
		return cache.ReadHashes(indexes)
	})
}

// ReadFrontier returns the stored hashes appending to a tree of size n needs.
func ReadFrontier(ctx context.Context, q Querier, n int64) (ledger.Hashes, error) {
	got, err := readHashes(ctx, q, ledger.Frontier(n))
	if err != nil {
		return nil, fmt.Errorf("tree frontier at %d: %w", n, err)
	}
	return got, nil
}

// readHashes reads stored hashes by stored-hash index. The node at level L
// and index k is stored by the record that completes it, (k+1)<<L - 1, in
// the row of trail.hashes of the run that holds that record: the row with
// the greatest first record not after it, whose hashes start at stored
// index StoredHashIndex(0, first record).
func readHashes(ctx context.Context, q Querier, indexes []int64) (ledger.Hashes, error) {
	out := make(ledger.Hashes, len(indexes))
	if len(indexes) == 0 {
		return out, nil
	}
	records := make([]int64, len(indexes))
	for i, idx := range indexes {
		level, k := tlog.SplitStoredHashIndex(idx)
		records[i] = (k+1)<<level - 1
	}
	rows, err := q.Query(ctx, `SELECT first_record, hashes FROM trail.hashes WHERE first_record IN (
		SELECT (SELECT max(first_record) FROM trail.hashes WHERE first_record <= r) FROM unnest($1::bigint[]) r)
		ORDER BY first_record`, slices.Compact(slices.Sorted(slices.Values(records))))
	if err != nil {
		return nil, err
	}
	type run struct {
		first, base int64 // first record, its stored index
		hashes      []byte
	}
	var runs []run
	for rows.Next() {
		var r run
		if err := rows.Scan(&r.first, &r.hashes); err != nil {
			rows.Close()
			return nil, err
		}
		if len(r.hashes)%tlog.HashSize != 0 {
			rows.Close()
			return nil, fmt.Errorf("stored hashes of records from %d: %d bytes, not whole hashes", r.first, len(r.hashes))
		}
		r.base = tlog.StoredHashIndex(0, r.first)
		runs = append(runs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i, idx := range indexes {
		// The last run starting at or before the record.
		j, found := slices.BinarySearchFunc(runs, records[i], func(r run, rec int64) int { return cmp.Compare(r.first, rec) })
		if !found {
			j--
		}
		if j < 0 {
			continue // missing: ReadHashes says which
		}
		r := runs[j]
		off := (idx - r.base) * tlog.HashSize
		if off+tlog.HashSize > int64(len(r.hashes)) {
			continue // past the run's end: missing
		}
		out[idx] = tlog.Hash(r.hashes[off : off+tlog.HashSize])
	}
	return out, nil
}

// Row is one stored entry.
type Row struct {
	Event event.Event
	Index int64
}

// Entry is the row's canonical entry.
func (r Row) Entry() ledger.Entry { return EntryOf(r.Event) }

// Scan reads a row selected with Columns.
func Scan(rows interface{ Scan(...any) error }) (Row, error) {
	var r Row
	var pos int64
	var sv int32
	var nanos int16
	e := &r.Event
	err := rows.Scan(&pos, &r.Index, &e.ID, &e.Type, &e.Source, &e.AggregateType, &e.AggregateID, &e.Contract,
		&e.Parties.Customer, &e.Parties.Provider, &e.Actor.Org, &e.Actor.User, &e.Actor.Role,
		&e.Correlation, &e.Causation, &sv, &e.Time, &nanos, &e.Data,
		&e.TraceParent, &e.Signer, &e.Signature)
	e.Position, e.SchemaVersion = uint64(pos), int(sv)
	e.Time = e.Time.UTC().Add(time.Duration(nanos))
	return r, err
}
