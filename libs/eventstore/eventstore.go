// Package eventstore keeps JSM events in one JetStream stream, JSM_EVENTS.
//
// An aggregate is a subject; its version is the stream sequence of its last
// event. Appends carry the expected version (optimistic concurrency) and the
// event id as Nats-Msg-Id (dedupe). A command's events are appended as one
// JetStream atomic batch when there are several.
package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/eventsig"
	"github.com/jsmplatform/jsm/libs/telemetry"
)

// DefaultStream is the name of the event stream.
const DefaultStream = "JSM_EVENTS"

// JetStream API error codes that mean "the aggregate moved on": the expected
// last subject sequence did not match (10071), or the replicated-stream
// variant of the same check (10164).
const (
	codeWrongLastSequence         = 10071
	codeWrongLastSequenceConstant = 10164
	codeBatchDuplicateMsgID       = 10201
	// A copy of the same event is being stored right now (replicated
	// streams): the sender learns the outcome by trying again.
	codeDuplicateInProcess = 10158
)

// ErrConflict matches every concurrency conflict (errors.Is).
var ErrConflict = errors.New("concurrency conflict")

// ConflictError says an append expected a version the aggregate no longer has.
type ConflictError struct {
	Subject  string
	Expected uint64
	Code     int
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("concurrency conflict on %s: expected version %d (code %d)", e.Subject, e.Expected, e.Code)
}

func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// ErrAlreadyStored matches an append whose events the stream holds already
// (errors.Is): a resent command. The events stored are those of the first
// send, which need not equal the resent ones in every field.
var ErrAlreadyStored = errors.New("events already stored")

// StoredError says where the events of a resent append were stored.
type StoredError struct {
	Subject  string
	Position uint64 // of the last event
}

func (e *StoredError) Error() string {
	return fmt.Sprintf("%s: events already stored, the last at %d", e.Subject, e.Position)
}

// Is makes errors.Is(err, ErrAlreadyStored) true.
func (e *StoredError) Is(target error) bool { return target == ErrAlreadyStored }

// Config describes the stream. The zero value is a development stream.
type Config struct {
	Stream string
	// Replicas is 1 in development and 3 in production.
	Replicas int
	// Duplicates is how long JetStream remembers event ids to drop a resent
	// copy. Commands carry deterministic event ids, so this covers client and
	// network retries; longer-range retries are caught by the runner's
	// memory of recent command ids. Default 10 minutes.
	Duplicates time.Duration
	// MemoryStorage is for tests only; the stream is file-backed otherwise.
	MemoryStorage bool
	// Signer signs every event appended (libs/eventsig), so the trail can
	// attribute it. Without one events go unsigned, which a trail with
	// pinned keys refuses to log: only tests and a trail without pinned
	// keys work unsigned.
	Signer *eventsig.Signer
}

// Store appends and reads events.
type Store struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	name   string
	signer *eventsig.Signer
}

// Open creates or updates the stream and returns a store on it.
func Open(ctx context.Context, nc *nats.Conn, cfg Config) (*Store, error) {
	if cfg.Stream == "" {
		cfg.Stream = DefaultStream
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.Duplicates == 0 {
		cfg.Duplicates = 10 * time.Minute
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	storage := jetstream.FileStorage
	if cfg.MemoryStorage {
		storage = jetstream.MemoryStorage
	}
	want := jetstream.StreamConfig{
		Name:               cfg.Stream,
		Description:        "JSM events: the source of truth of every area",
		Subjects:           []string{event.SubjectPrefix + ".>"},
		Storage:            storage,
		Replicas:           cfg.Replicas,
		Retention:          jetstream.LimitsPolicy,
		Discard:            jetstream.DiscardNew,
		MaxMsgs:            -1,
		MaxBytes:           -1,
		MaxAge:             0,
		Duplicates:         cfg.Duplicates,
		DenyDelete:         true,
		DenyPurge:          true,
		AllowDirect:        true,
		AllowAtomicPublish: true,
	}
	stream, err := js.Stream(ctx, cfg.Stream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		stream, err = js.CreateStream(ctx, want)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) { // another instance was quicker
			stream, err = js.Stream(ctx, cfg.Stream)
		}
	case err == nil:
		stream, err = ensure(ctx, js, stream, want)
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", cfg.Stream, err)
	}
	return &Store{nc: nc, js: js, stream: stream, name: cfg.Stream, signer: cfg.Signer}, nil
}

// ensure makes an existing stream fit what the store relies on, and no more:
// every instance opens the one shared stream, so an instance started with
// other settings must not change its replicas (except up), limits or
// duplicate window, which are the operator's.
func ensure(ctx context.Context, js jetstream.JetStream, stream jetstream.Stream, want jetstream.StreamConfig) (jetstream.Stream, error) {
	have := stream.CachedInfo().Config
	next := have
	next.Replicas = max(have.Replicas, want.Replicas)
	next.Discard = jetstream.DiscardNew // never drop old events to make room
	next.DenyDelete, next.DenyPurge = true, true
	next.AllowDirect, next.AllowAtomicPublish = true, true
	if !slices.Contains(next.Subjects, want.Subjects[0]) {
		next.Subjects = append(slices.Clip(next.Subjects), want.Subjects[0])
	}
	if reflect.DeepEqual(next, have) {
		return stream, nil
	}
	return js.UpdateStream(ctx, next)
}

// WithSigner is the store signing its appends with signer: one stream and
// connection, a key per service (as when `jsm up` runs them all).
func (s *Store) WithSigner(signer *eventsig.Signer) *Store {
	c := *s
	c.signer = signer
	return &c
}

// Signer is the key the store signs with, nil when it signs nothing.
func (s *Store) Signer() *eventsig.Signer { return s.signer }

// Name is the stream's name.
func (s *Store) Name() string { return s.name }

// Replicas is the stream's replica count.
func (s *Store) Replicas() int { return s.stream.CachedInfo().Config.Replicas }

// JetStream is the JetStream context the store uses.
func (s *Store) JetStream() jetstream.JetStream { return s.js }

// Conn is the NATS connection the store uses.
func (s *Store) Conn() *nats.Conn { return s.nc }

// Append stores events of one aggregate after version expected (0: the
// aggregate must not exist yet) and returns the position of the last one.
// Several events are appended atomically. A resent append whose events are
// stored already (same event ids) stores nothing and returns a *StoredError
// with their position; a different version fails with a *ConflictError.
//
// The events carry the trace context of ctx (the append's own span) in
// their traceparent header, so whatever handles them joins the trace; with
// no span in ctx they keep the TraceParent they were given.
func (s *Store) Append(ctx context.Context, expected uint64, events ...event.Event) (pos uint64, err error) {
	if len(events) == 0 {
		return 0, errors.New("append: no events")
	}
	// What breaks the bounds would be read back as not an event by every
	// consumer (event.FromMsg): refuse it here, whatever let it through.
	for _, e := range events {
		if err := e.Envelope.Check(); err != nil {
			return 0, fmt.Errorf("append %s: %w", e.ID, err)
		}
	}
	ctx, span := telemetry.Tracer().Start(ctx, "append "+events[0].AggregateType, trace.WithSpanKind(trace.SpanKindProducer))
	defer func() {
		if errors.Is(err, ErrAlreadyStored) {
			telemetry.End(span, nil)
			return
		}
		telemetry.End(span, err)
		if err == nil {
			appended(events)
		}
	}()
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.destination.name", event.Subject(events[0].AggregateType, events[0].AggregateID)),
			attribute.String("jsm.event.type", events[0].Type),
			attribute.Int("messaging.batch.message_count", len(events)),
			attribute.Int64("jsm.expected_version", int64(expected)),
		)
		defer func() { span.SetAttributes(attribute.Int64("jsm.position", int64(pos))) }()
	}
	if tp := telemetry.TraceParent(ctx); tp != "" {
		for i := range events {
			events[i].TraceParent = tp
		}
	}
	// Signed last: the signature covers the trace context too.
	if s.signer != nil {
		for i := range events {
			if err := s.signer.Sign(&events[i]); err != nil {
				return 0, err
			}
		}
	}
	if len(events) == 1 {
		return s.appendOne(ctx, expected, events[0])
	}
	subject := event.Subject(events[0].AggregateType, events[0].AggregateID)
	for _, e := range events[1:] {
		if event.Subject(e.AggregateType, e.AggregateID) != subject {
			return 0, fmt.Errorf("append: events of several aggregates (%s and %s)", subject, event.Subject(e.AggregateType, e.AggregateID))
		}
	}
	return s.appendBatch(ctx, subject, expected, events)
}

// appended counts stored events by type, and the deadlines they say passed
// by area: an area's scheduler appends one ...Overdue event per deadline.
func appended(events []event.Event) {
	for _, e := range events {
		telemetry.EventsAppended.WithLabelValues(e.Type).Inc()
		if strings.HasSuffix(e.Type, "Overdue") {
			area, _, _ := strings.Cut(e.AggregateType, ".")
			telemetry.DeadlinesOverdue.WithLabelValues(area).Inc()
		}
	}
}

func (s *Store) appendOne(ctx context.Context, expected uint64, e event.Event) (uint64, error) {
	m := e.Msg()
	m.Header[jetstream.ExpectedStreamHeader] = []string{s.name}
	m.Header[jetstream.ExpectedLastSubjSeqHeader] = []string{strconv.FormatUint(expected, 10)}
	ack, err := s.js.PublishMsg(ctx, m)
	if err == nil && ack.Duplicate {
		// The dedupe window dropped it: stored before, at ack.Sequence.
		return ack.Sequence, &StoredError{Subject: m.Subject, Position: ack.Sequence}
	}
	if err == nil {
		return ack.Sequence, nil
	}
	err = s.appendError(m.Subject, expected, err)
	if errors.Is(err, ErrConflict) {
		// JetStream checks the expected version before the dedupe window, so
		// a resent event that was stored the first time looks like a conflict.
		if pos, ok := s.stored(ctx, m.Subject, expected, e.ID); ok {
			return pos, &StoredError{Subject: m.Subject, Position: pos}
		}
	}
	return 0, err
}

// stored finds the position of event id among the subject's events after expected.
func (s *Store) stored(ctx context.Context, subject string, expected uint64, id string) (uint64, bool) {
	events, err := s.loadSubject(ctx, subject, expected)
	if err != nil {
		return 0, false
	}
	for _, e := range events {
		if e.ID == id {
			return e.Position, true
		}
	}
	return 0, false
}

type batchAck struct {
	Stream string    `json:"stream"`
	Seq    uint64    `json:"seq"`
	Batch  string    `json:"batch"`
	Count  int       `json:"count"`
	Error  *apiError `json:"error"`
}

type apiError struct {
	Code        int    `json:"code"`
	ErrCode     int    `json:"err_code"`
	Description string `json:"description"`
}

// appendBatch speaks the atomic batch protocol (ADR-50) directly: every
// message carries the batch id and its sequence in the batch, only the first
// carries the expected subject sequence, the last commits and is answered.
func (s *Store) appendBatch(ctx context.Context, subject string, expected uint64, events []event.Event) (uint64, error) {
	id := nuid.Next()
	for i, e := range events {
		m := e.Msg()
		m.Header["Nats-Batch-Id"] = []string{id}
		m.Header["Nats-Batch-Sequence"] = []string{strconv.Itoa(i + 1)}
		m.Header[jetstream.ExpectedStreamHeader] = []string{s.name}
		if i == 0 {
			m.Header[jetstream.ExpectedLastSubjSeqHeader] = []string{strconv.FormatUint(expected, 10)}
		}
		if i < len(events)-1 {
			if err := s.nc.PublishMsg(m); err != nil {
				return 0, fmt.Errorf("append batch %s: %w", subject, err)
			}
			continue
		}
		m.Header["Nats-Batch-Commit"] = []string{"1"}
		reqCtx, cancel := bounded(ctx)
		resp, err := s.nc.RequestMsgWithContext(reqCtx, m)
		cancel()
		if err != nil {
			return 0, fmt.Errorf("append batch %s: %w", subject, err)
		}
		var ack batchAck
		if err := json.Unmarshal(resp.Data, &ack); err != nil {
			return 0, fmt.Errorf("append batch %s: bad ack %q: %w", subject, resp.Data, err)
		}
		if ack.Error == nil {
			if ack.Count != len(events) {
				return 0, fmt.Errorf("append batch %s: committed %d of %d events", subject, ack.Count, len(events))
			}
			return ack.Seq, nil
		}
		switch ack.Error.ErrCode {
		case codeWrongLastSequence, codeWrongLastSequenceConstant, codeDuplicateInProcess:
			if pos, ok := s.stored(ctx, subject, expected, events[len(events)-1].ID); ok {
				return pos, &StoredError{Subject: subject, Position: pos}
			}
			return 0, &ConflictError{Subject: subject, Expected: expected, Code: ack.Error.ErrCode}
		case codeBatchDuplicateMsgID:
			// A resent batch: it was committed before, maybe long before the
			// version it now follows. Find where its last event went.
			return s.confirmCommitted(ctx, subject, events)
		}
		return 0, fmt.Errorf("append batch %s: %s (code %d)", subject, ack.Error.Description, ack.Error.ErrCode)
	}
	panic("unreachable")
}

func (s *Store) confirmCommitted(ctx context.Context, subject string, events []event.Event) (uint64, error) {
	last := events[len(events)-1].ID
	if pos, ok := s.stored(ctx, subject, 0, last); ok {
		return pos, &StoredError{Subject: subject, Position: pos}
	}
	return 0, fmt.Errorf("resent batch %s: its event ids are known but its last event %s is not stored", subject, last)
}

func (s *Store) appendError(subject string, expected uint64, err error) error {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case codeWrongLastSequence, codeWrongLastSequenceConstant, codeDuplicateInProcess:
			return &ConflictError{Subject: subject, Expected: expected, Code: int(apiErr.ErrorCode)}
		}
	}
	return fmt.Errorf("append %s: %w", subject, err)
}

// Load reads the events of one aggregate stored after position after, in
// order. A message on the subject that is not an event comes back as an
// Event holding only its position (no Type): no part of the aggregate, but
// the aggregate's version moves past it.
func (s *Store) Load(ctx context.Context, aggregateType, aggregateID string, after uint64) ([]event.Event, error) {
	return s.loadSubject(ctx, event.Subject(aggregateType, aggregateID), after)
}

// Version is the position of an aggregate's last event, 0 if it has none.
func (s *Store) Version(ctx context.Context, aggregateType, aggregateID string) (uint64, error) {
	m, err := s.stream.GetLastMsgForSubject(ctx, event.Subject(aggregateType, aggregateID))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("version of %s.%s: %w", aggregateType, aggregateID, err)
	}
	return m.Sequence, nil
}

// LastPosition is the position of the newest event in the stream.
func (s *Store) LastPosition(ctx context.Context) (uint64, error) {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream info: %w", err)
	}
	return info.State.LastSeq, nil
}

// directBatch is how many messages one batched direct get asks for.
const directBatch = 256

type directGetRequest struct {
	Seq        uint64 `json:"seq"`
	NextBySubj string `json:"next_by_subj"`
	Batch      int    `json:"batch"`
}

// loadSubject uses batched direct gets: from a recent position they cost a
// fraction of a millisecond, where a consumer filtered on the subject would
// scan the stream.
func (s *Store) loadSubject(ctx context.Context, subject string, after uint64) ([]event.Event, error) {
	ctx, cancel := bounded(ctx)
	defer cancel()
	inbox := s.nc.NewInbox()
	// A channel the size of one batch and its end: SubscribeSync would
	// allocate room for 64k messages on every load.
	replies := make(chan *nats.Msg, directBatch+1)
	sub, err := s.nc.ChanSubscribe(inbox, replies)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", subject, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	api := "$JS.API.DIRECT.GET." + s.name
	var out []event.Event
	from := after + 1
	for {
		req, _ := json.Marshal(directGetRequest{Seq: from, NextBySubj: subject, Batch: directBatch})
		if err := s.nc.PublishRequest(api, inbox, req); err != nil {
			return nil, fmt.Errorf("load %s: %w", subject, err)
		}
		got, pending := 0, -1 // pending: matching messages after the last one, when the server says
	batch:
		for {
			var m *nats.Msg
			select {
			case m = <-replies:
			case <-ctx.Done():
				return nil, fmt.Errorf("load %s: %w", subject, ctx.Err())
			}
			if status := m.Header.Get("Status"); status != "" {
				switch status {
				case "204", "404": // end of batch, no (more) messages
				default:
					return nil, fmt.Errorf("load %s: direct get status %s %s", subject, status, m.Header.Get("Description"))
				}
				break batch
			}
			seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("load %s: bad sequence header: %w", subject, err)
			}
			got++
			from = seq + 1
			if n, err := strconv.Atoi(m.Header.Get("Nats-Num-Pending")); err == nil {
				pending = n
			}
			e, err := event.FromMsg(m, seq)
			if errors.Is(err, event.ErrMalformed) {
				// Not an event (published there by hand): no part of the
				// aggregate, but its position is the subject's version now.
				// Refusing the load would block every command on it.
				e, err = event.Event{Position: seq}, nil
			}
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
		// The server may end a batch early (its byte limit): go on until it
		// says nothing matching is left.
		if got == 0 || pending == 0 || (pending < 0 && got < directBatch) {
			return out, nil
		}
	}
}

// requestTimeout bounds a request to JetStream whose caller set no deadline:
// a lost reply must not hold the aggregate's lock forever.
const requestTimeout = 10 * time.Second

func bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, requestTimeout)
}

// OrderedConsumer returns an ordered consumer starting at position from
// (1 = the beginning), optionally filtered to subjects. It keeps no state on
// the server and the client restarts it transparently after a gap.
func (s *Store) OrderedConsumer(ctx context.Context, from uint64, subjects ...string) (jetstream.Consumer, error) {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: subjects}
	if from <= 1 {
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	} else {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = from
	}
	c, err := s.js.OrderedConsumer(ctx, s.name, cfg)
	if err != nil {
		return nil, fmt.Errorf("ordered consumer from %d: %w", from, err)
	}
	return c, nil
}

// FromJetStream turns a consumed message into an event with its position and
// the number of messages still pending after it. For a message that is not
// an event (event.ErrMalformed) the event holds only the position.
func FromJetStream(m jetstream.Msg) (event.Event, uint64, error) {
	md, err := m.Metadata()
	if err != nil {
		return event.Event{}, 0, fmt.Errorf("message metadata: %w", err)
	}
	e, err := event.FromMsg(&nats.Msg{Subject: m.Subject(), Header: nats.Header(m.Headers()), Data: m.Data()}, md.Sequence.Stream)
	e.Position = md.Sequence.Stream // also for a message that is not an event
	return e, md.NumPending, err
}
