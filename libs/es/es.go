// Package es runs deciders: load an aggregate's state, decide on a command,
// append the resulting events with the version the decision was based on,
// and retry a bounded number of times when another writer got there first.
//
// Loading reads a snapshot (an in-process cache, then a KV bucket) and only
// the events after it, never the whole subject: a stale or missing snapshot
// costs time, never correctness, because the append checks the version.
//
// Snapshots are written behind the commands, not with each one: an aggregate
// changed since its last stored snapshot is written when it leaves the cache,
// at most one snapshot interval (default 2 s) after its change, and on Flush.
// Writing one per command would double the work JetStream does per command;
// the interval bounds how much of the stream a cold load after a crash reads
// (the cost of a load grows with the stream positions between the snapshot
// and the subject's last event).
package es

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/telemetry"
)

// SnapshotBucket is the KV bucket that holds aggregate snapshots.
const SnapshotBucket = "JSM_SNAPSHOTS"

// Decider is one aggregate type's pure logic.
type Decider[S, C any] struct {
	// AggregateType is "<area>.<aggregate>", the subject's middle part.
	AggregateType string
	// Initial is the state before the first event.
	Initial func() S
	// Decide checks a command against the state and returns new events.
	Decide func(S, C) ([]proto.Message, error)
	// Evolve applies one stored (or about to be stored) event.
	Evolve func(S, event.Event, proto.Message) S
	// Scope names the contract and parties of the aggregate in a state, so
	// every event carries them.
	Scope func(S) (contract string, parties event.Parties)
	// StateVersion changes when S changes shape: older snapshots are ignored.
	StateVersion int
}

// Command is a command with what the envelope needs.
type Command[C any] struct {
	// ID is the client's idempotency key; events derive their ids from it and
	// a command whose ID the aggregate has seen answers with its first result.
	ID          string
	AggregateID string
	Body        C
	Actor       event.Actor
	Correlation string
	TraceParent string
	// Contracts, when not nil, are the only contracts the command may act
	// on: one whose aggregate belongs to another is refused with
	// ErrContractNotAllowed and appends nothing.
	Contracts []string
}

// Result of a handled command.
type Result[S any] struct {
	Position  uint64 // position of the last event (or the aggregate's version if none)
	Events    []event.Event
	State     S
	Duplicate bool // the command had been handled before; nothing was appended
}

// ErrInvalidID rejects aggregate ids that cannot be a subject token.
var ErrInvalidID = errors.New("invalid aggregate id")

// ErrContractNotAllowed refuses a command on an aggregate of a contract its
// caller may not act on.
var ErrContractNotAllowed = errors.New("contract not allowed for this caller")

// recentCommands is how many command ids per aggregate are remembered.
const recentCommands = 16

type recent struct {
	Command  string `json:"c"`
	Position uint64 `json:"p"`
}

type snapshot[S any] struct {
	StateVersion int      `json:"sv"`
	Version      uint64   `json:"v"`
	State        S        `json:"s"`
	Recent       []recent `json:"r,omitempty"`
}

func (s *snapshot[S]) saw(cmd string) (uint64, bool) {
	for _, r := range s.Recent {
		if r.Command == cmd {
			return r.Position, true
		}
	}
	return 0, false
}

func (s *snapshot[S]) remember(cmd string, pos uint64) {
	if cmd == "" {
		return
	}
	if n := len(s.Recent); n > 0 && s.Recent[n-1].Command == cmd {
		s.Recent[n-1].Position = pos
		return
	}
	s.Recent = append(s.Recent, recent{Command: cmd, Position: pos})
	if len(s.Recent) > recentCommands {
		s.Recent = append([]recent(nil), s.Recent[len(s.Recent)-recentCommands:]...)
	}
}

// Runner handles commands of one aggregate type.
type Runner[S, C any] struct {
	store   *eventstore.Store
	dec     Decider[S, C]
	source  string
	kv      jetstream.KeyValue
	cache   *lru.Cache[string, snapshot[S]]
	retries int
	now     func() time.Time
	log     *slog.Logger
	every   time.Duration
	dirtyMu sync.Mutex
	dirty   map[string]struct{} // cache keys whose snapshot is newer than the stored one
	flushAt *time.Timer         // pending flush of dirty, if any
	// stripes serialise commands on one aggregate inside this process, so
	// concurrent callers queue instead of conflicting; conflicts then only
	// arise between processes, and the bounded retries absorb those.
	stripes [lockStripes]sync.Mutex
}

const lockStripes = 4096

func (r *Runner[S, C]) lock(key string) func() {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	m := &r.stripes[h.Sum32()%lockStripes]
	m.Lock()
	return m.Unlock
}

// Option configures a Runner.
type Option func(*options)

type options struct {
	retries   int
	cacheSize int
	now       func() time.Time
	log       *slog.Logger
	noKV      bool
	every     time.Duration
}

// WithRetries bounds how often a conflicting command is re-decided (default 5).
func WithRetries(n int) Option { return func(o *options) { o.retries = n } }

// WithCacheSize sets how many aggregate states are kept in memory (default 100k).
func WithCacheSize(n int) Option { return func(o *options) { o.cacheSize = n } }

// WithClock sets the clock that stamps events.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithSnapshotInterval bounds how long a changed aggregate's stored snapshot
// may lag behind its cached state (default 2 s).
func WithSnapshotInterval(d time.Duration) Option { return func(o *options) { o.every = d } }

// WithoutSnapshots keeps snapshots in memory only (tests of the slow path).
func WithoutSnapshots() Option { return func(o *options) { o.noKV = true } }

// NewRunner returns a runner appending to store as source (e.g. "/jsm/contracts").
func NewRunner[S, C any](ctx context.Context, store *eventstore.Store, source string, d Decider[S, C], opts ...Option) (*Runner[S, C], error) {
	if store == nil || d.Decide == nil || d.Evolve == nil || d.Initial == nil || d.Scope == nil || d.AggregateType == "" {
		return nil, errors.New("es: store, aggregate type, Initial, Decide, Evolve and Scope are required")
	}
	o := options{retries: 5, cacheSize: 100_000, now: time.Now, log: slog.Default(), every: 2 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	r := &Runner[S, C]{store: store, dec: d, source: source, retries: o.retries, now: o.now, log: o.log, every: o.every, dirty: map[string]struct{}{}}
	cache, err := lru.NewWithEvict(o.cacheSize, r.evicted)
	if err != nil {
		return nil, err
	}
	r.cache = cache
	if !o.noKV {
		kv, err := store.JetStream().CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      SnapshotBucket,
			Description: "latest state of each aggregate and the position it covers",
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    store.Replicas(), // as available as the stream it speeds up
		})
		if err != nil {
			return nil, fmt.Errorf("snapshot bucket: %w", err)
		}
		r.kv = kv
	}
	return r, nil
}

func validID(id string) bool {
	return id != "" && len(id) <= 128 && !strings.ContainsAny(id, ".*> \t\r\n")
}

func (r *Runner[S, C]) key(id string) string { return r.dec.AggregateType + "." + id }

// Handle decides cmd against the aggregate's current state and appends the
// events. Domain errors from Decide are returned as they are.
func (r *Runner[S, C]) Handle(ctx context.Context, cmd Command[C]) (res Result[S], err error) {
	// A command given without a span of its own (its RPC is not traced
	// here) still joins the trace its client sent.
	if cmd.TraceParent != "" && !trace.SpanContextFromContext(ctx).IsValid() {
		ctx = telemetry.FromTraceParent(ctx, cmd.TraceParent)
	}
	ctx, span := telemetry.Tracer().Start(ctx, "command "+r.dec.AggregateType)
	defer func() {
		if span.IsRecording() {
			span.SetAttributes(
				attribute.String("jsm.command", fmt.Sprintf("%T", cmd.Body)),
				attribute.String("jsm.aggregate_id", cmd.AggregateID),
				attribute.Int64("jsm.position", int64(res.Position)),
				attribute.Bool("jsm.duplicate", res.Duplicate),
			)
		}
		telemetry.End(span, err)
	}()
	if !validID(cmd.AggregateID) {
		return Result[S]{}, fmt.Errorf("%w: %q", ErrInvalidID, cmd.AggregateID)
	}
	defer r.lock(r.key(cmd.AggregateID))()
	var lastErr error
	fresh := false
	for attempt := 0; attempt <= r.retries; attempt++ {
		snap, cached, err := r.load(ctx, cmd.AggregateID, fresh)
		if err != nil {
			return Result[S]{}, err
		}
		if cmd.ID != "" {
			if pos, ok := snap.saw(cmd.ID); ok {
				return Result[S]{Position: pos, State: snap.State, Duplicate: true}, nil
			}
		}
		msgs, err := r.dec.Decide(snap.State, cmd.Body)
		if (err != nil || len(msgs) == 0) && cached {
			// A refusal or a no-op appends nothing, so no version check would
			// catch a cached state another instance has moved on from: decide
			// again on the stream's latest before answering.
			fresh = true
			attempt--
			continue
		}
		if err != nil {
			return Result[S]{}, err
		}
		if len(msgs) == 0 {
			return Result[S]{Position: snap.Version, State: snap.State}, nil
		}
		events, next, err := r.prepare(snap, cmd, msgs)
		if err != nil {
			return Result[S]{}, err
		}
		// The scope is known once the events are decided (the first event
		// of an aggregate names its contract), so the check is here, for
		// every aggregate of every area alike.
		if cmd.Contracts != nil && !slices.Contains(cmd.Contracts, events[0].Contract) {
			return Result[S]{}, fmt.Errorf("%w: %q", ErrContractNotAllowed, events[0].Contract)
		}
		pos, err := r.store.Append(ctx, snap.Version, events...)
		if errors.Is(err, eventstore.ErrConflict) {
			lastErr, fresh = err, true
			continue
		}
		if errors.Is(err, eventstore.ErrAlreadyStored) {
			// A resent command the stream already holds (its id is older than
			// the ids the snapshot remembers, or its first send timed out
			// after landing): answer with what the stream says.
			r.cache.Remove(r.key(cmd.AggregateID))
			latest, _, err := r.load(ctx, cmd.AggregateID, true)
			if err != nil {
				return Result[S]{}, err
			}
			return Result[S]{Position: pos, State: latest.State, Duplicate: true}, nil
		}
		if err != nil {
			return Result[S]{}, err
		}
		// An atomic batch is stored contiguously, ending at pos.
		first := pos - uint64(len(events)) + 1
		for i := range events {
			events[i].Position = first + uint64(i)
		}
		next.Version = pos
		next.remember(cmd.ID, pos)
		r.cache.Add(r.key(cmd.AggregateID), next)
		r.changed(r.key(cmd.AggregateID))
		return Result[S]{Position: pos, Events: events, State: next.State}, nil
	}
	return Result[S]{}, fmt.Errorf("gave up after %d attempts: %w", r.retries+1, lastErr)
}

// prepare wraps the decided messages in envelopes and evolves the state.
func (r *Runner[S, C]) prepare(snap snapshot[S], cmd Command[C], msgs []proto.Message) ([]event.Event, snapshot[S], error) {
	now := r.now().UTC()
	causation := cmd.ID
	if causation == "" {
		causation = event.NewID()
	}
	correlation := cmd.Correlation
	if correlation == "" {
		correlation = causation
	}
	next := snap
	next.Recent = append([]recent(nil), snap.Recent...)
	events := make([]event.Event, len(msgs))
	for i, m := range msgs {
		id := event.NewID()
		if cmd.ID != "" {
			id = event.DeriveID(r.key(cmd.AggregateID)+"/"+cmd.ID, i)
		}
		e, err := event.New(event.Envelope{
			ID:            id,
			Source:        r.source,
			AggregateType: r.dec.AggregateType,
			AggregateID:   cmd.AggregateID,
			Actor:         cmd.Actor,
			Time:          now,
			Correlation:   correlation,
			Causation:     causation,
			TraceParent:   cmd.TraceParent,
		}, m)
		if err != nil {
			return nil, next, err
		}
		next.State = r.dec.Evolve(next.State, e, m)
		events[i] = e
	}
	// The scope comes from the state after the events: the first event of an
	// aggregate is what names its contract and parties.
	contract, parties := r.dec.Scope(next.State)
	for i := range events {
		events[i].Contract = contract
		events[i].Parties = parties
	}
	return events, next, nil
}

// State returns an aggregate's current state and version (0 if it has no events).
func (r *Runner[S, C]) State(ctx context.Context, id string) (S, uint64, error) {
	if !validID(id) {
		var zero S
		return zero, 0, fmt.Errorf("%w: %q", ErrInvalidID, id)
	}
	snap, _, err := r.load(ctx, id, true)
	return snap.State, snap.Version, err
}

// load returns the newest state it can: from the cache (unless fresh is
// asked for), else from the KV snapshot, then the events after it. It also
// tells whether the state came from the cache alone, unchecked against the
// stream.
func (r *Runner[S, C]) load(ctx context.Context, id string, fresh bool) (snapshot[S], bool, error) {
	key := r.key(id)
	if !fresh {
		if s, ok := r.cache.Get(key); ok {
			return s, true, nil
		}
	}
	snap := snapshot[S]{StateVersion: r.dec.StateVersion, State: r.dec.Initial()}
	if cached, ok := r.cache.Get(key); ok {
		snap = cached
	} else if r.kv != nil {
		if entry, err := r.kv.Get(ctx, key); err == nil {
			var stored snapshot[S]
			if err := json.Unmarshal(entry.Value(), &stored); err == nil && stored.StateVersion == r.dec.StateVersion {
				snap = stored
			} else if err != nil {
				r.log.WarnContext(ctx, "ignoring unreadable snapshot", "key", key, "err", err)
			}
		} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
			// Snapshots only save time: without one, read the whole subject.
			r.log.WarnContext(ctx, "snapshot unavailable, loading from the stream", "key", key, "err", err)
		}
	}
	events, err := r.store.Load(ctx, r.dec.AggregateType, id, snap.Version)
	if err != nil {
		return snap, false, err
	}
	for _, e := range events {
		if e.Type == "" { // not an event: only the version moves
			snap.Version = e.Position
			continue
		}
		m, err := e.Decode()
		if err != nil {
			return snap, false, fmt.Errorf("load %s: %w", key, err)
		}
		snap.State = r.dec.Evolve(snap.State, e, m)
		snap.Version = e.Position
		snap.remember(e.Causation, e.Position)
	}
	r.cache.Add(key, snap)
	if len(events) > 0 {
		r.changed(key)
	}
	return snap, false, nil
}

// changed marks a cached snapshot as newer than the stored one and makes
// sure a flush is due.
func (r *Runner[S, C]) changed(key string) {
	if r.kv == nil {
		return
	}
	r.dirtyMu.Lock()
	defer r.dirtyMu.Unlock()
	r.dirty[key] = struct{}{}
	if r.flushAt == nil {
		r.flushAt = time.AfterFunc(r.every, r.flushDirty)
	}
}

// takeDirty reports whether key was dirty and clears its mark.
func (r *Runner[S, C]) takeDirty(key string) bool {
	r.dirtyMu.Lock()
	defer r.dirtyMu.Unlock()
	_, ok := r.dirty[key]
	delete(r.dirty, key)
	return ok
}

// evicted saves a snapshot leaving the cache if it was not stored yet.
func (r *Runner[S, C]) evicted(key string, snap snapshot[S]) {
	if r.takeDirty(key) {
		r.saveAsync(key, snap)
	}
}

// flushDirty saves the cached snapshot of every dirty aggregate.
func (r *Runner[S, C]) flushDirty() {
	r.dirtyMu.Lock()
	keys := r.dirty
	r.dirty = make(map[string]struct{}, len(keys))
	r.flushAt = nil
	r.dirtyMu.Unlock()
	for key := range keys {
		if snap, ok := r.cache.Peek(key); ok {
			r.saveAsync(key, snap)
		}
	}
}

// Flush stores every snapshot not stored yet and waits until JetStream has
// them (or ctx ends). Call it on shutdown so the next start loads quickly.
func (r *Runner[S, C]) Flush(ctx context.Context) error {
	if r.kv == nil {
		return nil
	}
	r.dirtyMu.Lock()
	if r.flushAt != nil {
		r.flushAt.Stop()
	}
	r.dirtyMu.Unlock()
	r.flushDirty()
	select {
	case <-r.store.JetStream().PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("flush snapshots: %w", ctx.Err())
	}
}

// saveAsync writes the snapshot without waiting for the ack: losing one
// only makes a later cold load read a few more events.
func (r *Runner[S, C]) saveAsync(key string, snap snapshot[S]) {
	data, err := json.Marshal(snap)
	if err != nil {
		r.log.Warn("snapshot not encodable", "aggregate", key, "err", err)
		return
	}
	if _, err := r.store.JetStream().PublishAsync("$KV."+SnapshotBucket+"."+key, data); err != nil {
		r.log.Debug("snapshot not saved", "aggregate", key, "err", err)
	}
}
