// Package reactor runs cross-area reactions on the Watermill router: a
// durable JetStream consumer on JSM_EVENTS delivers the events of chosen
// subjects to one handler, with Watermill's retry, recoverer and poison
// queue. A message that still fails after the retries goes to the
// dead-letter subject jsm.dlq.<reactor name> (stream JSM_DEADLETTER) with
// the reason in its headers, and the stream moves on.
//
// Handlers must be idempotent: JetStream delivers at least once, and a
// crash between a handler's command and the ack delivers the event again.
// Deriving the command's id from the event's id (CommandID) makes the
// second delivery a duplicate the es runner answers without appending.
//
// NewMessages consumes another stream's raw messages the same way (the
// ingest of CloudEvents published on NATS). A handler marks an error
// Permanent to dead-letter its message at once, without retries, and
// Transient to have it delivered again later instead of dead-lettered.
package reactor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmjs "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/jetstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/natsx"
	"github.com/jsmplatform/jsm/libs/poison"
	"github.com/jsmplatform/jsm/libs/startup"
	"github.com/jsmplatform/jsm/libs/telemetry"
)

// Handler reacts to one event.
type Handler func(ctx context.Context, e event.Event, m proto.Message) error

// Message is a raw message of the consumed stream.
type Message struct {
	Subject  string
	Header   nats.Header
	Data     []byte
	Position uint64
}

// MessageHandler handles one raw message.
type MessageHandler func(ctx context.Context, m Message) error

type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

type transient struct{ error }

func (t transient) Unwrap() error { return t.error }

// Permanent marks err as final: the message is not retried but goes to the
// dead letters at once.
func Permanent(err error) error { return permanent{err} }

// Transient marks err as passing: the message is retried and, if it still
// fails, delivered again later; it never goes to the dead letters.
func Transient(err error) error { return transient{err} }

func isPermanent(err error) bool { var p permanent; return errors.As(err, &p) }
func isTransient(err error) bool { var t transient; return errors.As(err, &t) }

// Config names a reactor and what it consumes.
type Config struct {
	// Name is the durable consumer's name and the dead-letter subject's last
	// token, e.g. "patching-reactions".
	Name string
	// Stream is the stream consumed; default the store's (JSM_EVENTS).
	Stream string
	// Subjects filter the stream, e.g. "jsm.evt.changeadvisory.change.>".
	Subjects []string
	// MaxRetries bounds the in-process retries of a failing event before it
	// is dead-lettered (default 5); InitialInterval is the first backoff
	// (default 100ms, doubling up to 5s).
	MaxRetries      int
	InitialInterval time.Duration
	// AckWait is how soon an event delivered to an instance that stopped or
	// died before acking it comes again (default 10s). A handler may run
	// longer: the reactor tells the server it is still at work.
	AckWait time.Duration
	Logger  *slog.Logger
}

// DeadLetterStream holds the dead-lettered messages of every reactor.
const DeadLetterStream = "JSM_DEADLETTER"

// DeadLetterSubject is where a reactor's poison messages go.
func DeadLetterSubject(name string) string { return "jsm.dlq." + name }

// Headers of the position an event had in JSM_EVENTS, carried in the
// Watermill message's metadata.
const metaPosition = "jsm-position"

// metaSubject is the subject a message had in the consumed stream.
const metaSubject = "jsm-subject"

// Reactor runs one handler on the Watermill router.
type Reactor struct {
	store       *eventstore.Store
	cfg         Config
	handle      func(*message.Message) error
	log         *slog.Logger
	running     chan struct{}
	runningOnce sync.Once
}

// New prepares a reactor on the store's NATS server and makes sure the
// dead-letter stream exists; Run connects and consumes.
func New(ctx context.Context, store *eventstore.Store, cfg Config, handle Handler) (*Reactor, error) {
	if handle == nil {
		return nil, errors.New("reactor: a handler is required")
	}
	r, err := newReactor(ctx, store, cfg)
	if err != nil {
		return nil, err
	}
	r.handle = func(msg *message.Message) error { return r.handleEvent(msg, handle) }
	return r, nil
}

// NewMessages is New for the raw messages of cfg.Stream.
func NewMessages(ctx context.Context, store *eventstore.Store, cfg Config, handle MessageHandler) (*Reactor, error) {
	if handle == nil {
		return nil, errors.New("reactor: a handler is required")
	}
	r, err := newReactor(ctx, store, cfg)
	if err != nil {
		return nil, err
	}
	r.handle = func(msg *message.Message) error { return settle(handle(msg.Context(), raw(msg))) }
	return r, nil
}

func newReactor(ctx context.Context, store *eventstore.Store, cfg Config) (*Reactor, error) {
	if cfg.Name == "" || len(cfg.Subjects) == 0 {
		return nil, errors.New("reactor: name and subjects are required")
	}
	if cfg.Stream == "" {
		cfg.Stream = store.Name()
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = 5
	}
	if cfg.InitialInterval == 0 {
		cfg.InitialInterval = 100 * time.Millisecond
	}
	if cfg.AckWait == 0 {
		cfg.AckWait = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if _, err := store.JetStream().CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:     DeadLetterStream,
		Subjects: []string{DeadLetterSubject(">")},
		Replicas: store.Replicas(),
	}); err != nil {
		return nil, fmt.Errorf("reactor: dead-letter stream: %w", err)
	}
	return &Reactor{store: store, cfg: cfg, log: cfg.Logger.With("reactor", cfg.Name), running: make(chan struct{})}, nil
}

// Run consumes until ctx ends. Until it consumes, it waits for what it
// needs with backoff: its connections and its durable consumer, which a
// cluster still forming (a peer offline, no stream leader yet) cannot
// create. Once it has consumed, a stop is an error: a service must not go
// on looking healthy without its reactions.
func (r *Reactor) Run(ctx context.Context) error {
	b := startup.Default
	b.Attempt = 0 // a try is the whole consumption; ctx ends it
	err := startup.RetryWith(ctx, b, r.log, "reactor "+r.cfg.Name, func(context.Context) error {
		err := r.consume(ctx)
		select {
		case <-r.running:
			return startup.Permanent(err)
		default:
			return err
		}
	})
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// consume runs one router until ctx ends or it fails. Watermill's
// subscriber and publisher close the connections they are given, so the
// reactor opens its own two.
func (r *Reactor) consume(ctx context.Context) error {
	// Every server the store's connection knows, not only the one it is on
	// (a reactor must start and reconnect while a cluster node is down),
	// as the same NATS user.
	subConn, err := natsx.Another(r.store.Conn(), "jsm-"+r.cfg.Name)
	if err != nil {
		return fmt.Errorf("reactor: connect: %w", err)
	}
	defer subConn.Close()
	pubConn, err := natsx.Another(r.store.Conn(), "jsm-"+r.cfg.Name+"-dlq")
	if err != nil {
		return fmt.Errorf("reactor: connect: %w", err)
	}
	defer pubConn.Close()
	// Watermill logs every message at info; that is our debug.
	wlog := watermill.NewSlogLoggerWithLevelMapping(r.log, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	sub, err := wmjs.NewSubscriber(wmjs.SubscriberConfig{
		Conn:   subConn,
		Logger: wlog,
		// Longer than a handler's retries take: past it the subscriber gives
		// the event up and it comes again.
		AckWaitTimeout:      handleTimeout,
		ResourceInitializer: durable(r.cfg.Stream, r.cfg),
		Unmarshaler:         unmarshaler{},
	})
	if err != nil {
		return err
	}
	pub, err := wmjs.NewPublisher(wmjs.PublisherConfig{Conn: pubConn, Logger: wlog})
	if err != nil {
		return err
	}
	// A handler cut short by shutdown did not fail: its event stays unacked
	// and comes again, instead of going to the dead letters.
	poisonQueue, err := middleware.PoisonQueueWithFilter(deadLetterCounter{pub, r.cfg.Name, r.log}, DeadLetterSubject(r.cfg.Name), func(err error) bool {
		return ctx.Err() == nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && !isTransient(err)
	})
	if err != nil {
		return err
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, wlog)
	if err != nil {
		return err
	}
	// Outermost first: a panic becomes an error, which is retried, and what
	// still fails is dead-lettered (and acked) instead of blocking the stream.
	router.AddMiddleware(
		poisonQueue,
		middleware.Retry{MaxRetries: r.cfg.MaxRetries, InitialInterval: r.cfg.InitialInterval, MaxInterval: 5 * time.Second, Multiplier: 2, Logger: wlog,
			ShouldRetry: func(p middleware.RetryParams) bool { return !isPermanent(p.Err) }}.Middleware,
		middleware.Recoverer,
	)
	router.AddConsumerHandler(r.cfg.Name, r.cfg.Subjects[0], sub, r.handle)
	go func() {
		select {
		case <-router.Running():
			r.runningOnce.Do(func() { close(r.running) })
		case <-ctx.Done():
		}
	}()
	err = router.Run(ctx)
	if ctx.Err() != nil {
		return nil
	}
	// The router also stops when its handler's subscription ends: a service
	// must not go on looking healthy without its reactions.
	return errors.Join(errors.New("reactor: stopped consuming"), err)
}

// handleMsg runs the handler in a span that continues the event's trace,
// so the command a reaction gives appends its events in that trace too.
// Each retry is a span of its own.
func (r *Reactor) handleEvent(msg *message.Message, handle Handler) (err error) {
	e, m, err := decode(msg)
	if err != nil {
		return settle(err)
	}
	ctx := telemetry.FromTraceParent(msg.Context(), e.TraceParent)
	ctx = telemetry.WithScope(ctx, telemetry.Scope{Contract: e.Contract, Org: e.Actor.Org})
	ctx, span := telemetry.Tracer().Start(ctx, "react "+r.cfg.Name, trace.WithSpanKind(trace.SpanKindConsumer))
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String("jsm.reactor", r.cfg.Name),
			attribute.String("jsm.event.type", e.Type),
			attribute.String("jsm.event.id", e.ID),
			attribute.Int64("jsm.position", int64(e.Position)),
		)
	}
	defer func() { telemetry.End(span, err) }()
	if err = handle(ctx, e, m); err != nil {
		r.log.DebugContext(ctx, "reaction failed", "event", e.ID, "type", e.Type, "err", err)
	}
	return settle(err)
}

// settle marks a failure no retry can cure (poison.Deterministic: a message
// that is not an event or does not decode, a value PostgreSQL refuses)
// Permanent, so it goes to the dead letters at once instead of after the
// retries; a handler's own Transient mark stands.
func settle(err error) error {
	if poison.Deterministic(err) && !isTransient(err) && !isPermanent(err) {
		return Permanent(err)
	}
	return err
}

// deadLetterCounter counts what the poison queue moves to the dead letters.
type deadLetterCounter struct {
	message.Publisher
	reactor string
	log     *slog.Logger
}

func (p deadLetterCounter) Publish(topic string, msgs ...*message.Message) error {
	err := p.Publisher.Publish(topic, msgs...)
	if err == nil {
		telemetry.DeadLettered.WithLabelValues(p.reactor).Add(float64(len(msgs)))
		for _, m := range msgs {
			p.log.Warn("reactor moved a message to the dead letters", "subject", topic, "position", m.Metadata.Get(metaPosition),
				"reason", m.Metadata.Get(middleware.ReasonForPoisonedKey))
		}
	}
	return err
}

// handleTimeout bounds one event's handling, retries included.
const handleTimeout = 3 * time.Minute

// Running is closed once the reactor consumes.
func (r *Reactor) Running() <-chan struct{} { return r.running }

// CommandID is the idempotency key of the command a reactor gives in
// answer to an event: the same event delivered again gives the same key.
func CommandID(reactor string, e event.Event) string { return reactor + "/" + e.ID }

// durable creates (or updates) the reactor's durable consumer on JSM_EVENTS.
// It starts at the beginning of the stream: a reactor deployed later still
// answers every event it exists for.
func durable(stream string, cfg Config) wmjs.ResourceInitializer {
	return func(ctx context.Context, js jetstream.JetStream, _ string) (jetstream.Consumer, func(context.Context, watermill.LoggerAdapter), error) {
		c, err := js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
			Durable:        cfg.Name,
			FilterSubjects: cfg.Subjects,
			AckPolicy:      jetstream.AckExplicitPolicy,
			DeliverPolicy:  jetstream.DeliverAllPolicy,
			AckWait:        cfg.AckWait,
			MaxAckPending:  1,
		})
		if err != nil {
			return nil, nil, err
		}
		return inProgress{c, cfg.AckWait}, nil, nil
	}
}

// inProgress wraps the watermill-nats subscriber's (v2.1.3) handling of
// each message. While the router works on it, the server hears every third
// of AckWait that it is in progress, so AckWait can be short and an event
// stranded by a stopped or dead instance comes again soon (a pull request
// outstanding when an instance stops still takes a message the instance
// never sees). When the subscriber lets go of a message unacked, it is
// nacked, so it comes again at once instead of after AckWait. And the
// subscriber closes its output channel while a delivery may still be
// sending on it, which panics ("send on closed channel") at shutdown; that
// panic is caught here, and its message nacked too. Handlers are
// idempotent, so a second delivery is harmless.
type inProgress struct {
	jetstream.Consumer
	ackWait time.Duration
}

func (c inProgress) Consume(handle jetstream.MessageHandler, opts ...jetstream.PullConsumeOpt) (jetstream.ConsumeContext, error) {
	return c.Consumer.Consume(func(m jetstream.Msg) {
		done := make(chan struct{})
		go func() {
			tick := time.NewTicker(c.ackWait / 3)
			defer tick.Stop()
			for {
				select {
				case <-done:
					return
				case <-tick.C:
					_ = m.InProgress()
				}
			}
		}()
		defer func() {
			close(done)
			if r := recover(); r != nil {
				if err, ok := r.(runtime.Error); !ok || err.Error() != "send on closed channel" {
					panic(r)
				}
			}
			_ = m.Nak() // ErrMsgAlreadyAckd when the handler acked or nacked it
		}()
		handle(m)
	}, opts...)
}

// unmarshaler keeps every header of the event and its stream position.
type unmarshaler struct{}

func (unmarshaler) Unmarshal(m jetstream.Msg) (*message.Message, error) {
	md, err := m.Metadata()
	if err != nil {
		return nil, err
	}
	wm := message.NewMessage(m.Headers().Get(nats.MsgIdHdr), m.Data())
	for k, v := range m.Headers() {
		// JetStream's own publish headers (expected stream and sequence,
		// batch markers) would refuse the dead-letter publish; the event id
		// stays, so dead-lettering an event twice stores it once.
		if len(v) > 0 && (k == nats.MsgIdHdr || !strings.HasPrefix(k, "Nats-")) {
			wm.Metadata.Set(k, v[0])
		}
	}
	wm.Metadata.Set(metaPosition, strconv.FormatUint(md.Sequence.Stream, 10))
	wm.Metadata.Set(metaSubject, m.Subject())
	return wm, nil
}

// raw is the stream's message a Watermill message carries: its headers as
// written (event headers are looked up verbatim), subject and position.
func raw(msg *message.Message) Message {
	pos, _ := strconv.ParseUint(msg.Metadata.Get(metaPosition), 10, 64)
	h := nats.Header{}
	for k, v := range msg.Metadata {
		if k != metaPosition && k != metaSubject {
			h[k] = []string{v}
		}
	}
	return Message{Subject: msg.Metadata.Get(metaSubject), Header: h, Data: msg.Payload, Position: pos}
}

func decode(msg *message.Message) (event.Event, proto.Message, error) {
	r := raw(msg)
	e, err := event.FromMsg(&nats.Msg{Header: r.Header, Data: r.Data}, r.Position)
	if err != nil {
		return event.Event{}, nil, err
	}
	m, err := e.Decode()
	if err != nil {
		return event.Event{}, nil, err
	}
	return e, m, nil
}
