package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/reactor"
)

// The NATS transport: sources publish CloudEvents on
// jsm.ingest.<source>.<anything>, the stream JSM_INGEST keeps them, and
// the durable consumer "ingest" hands them to the same path as HTTP.
// Rejected ones go to jsm.dlq.ingest (stream JSM_DEADLETTER).
const (
	Stream        = "JSM_INGEST"
	SubjectPrefix = "jsm.ingest."
	ConsumerName  = "ingest"
)

// DeadLetterSubject is where rejected NATS messages go, with the reason in
// the headers Jsm-Ingest-Reason-Type and Jsm-Ingest-Reason.
var DeadLetterSubject = reactor.DeadLetterSubject(ConsumerName)

// Subject is where source publishes its events (any suffix after it).
func Subject(source string) string { return SubjectPrefix + source }

// sourceOf is the source a subject names, or "".
func sourceOf(subject string) string {
	rest, ok := strings.CutPrefix(subject, SubjectPrefix)
	if !ok {
		return ""
	}
	source, _, _ := strings.Cut(rest, ".")
	return source
}

// ensureStream creates JSM_INGEST, or leaves the one there as it is: an
// inbox of a week, deduplicated by message id (a publisher sets Nats-Msg-Id
// to the CloudEvent id) over two minutes, with the event stream's replicas.
func ensureStream(ctx context.Context, store *eventstore.Store) error {
	_, err := store.JetStream().CreateStream(ctx, jetstream.StreamConfig{
		Name:       Stream,
		Subjects:   []string{SubjectPrefix + ">"},
		Storage:    jetstream.FileStorage,
		Replicas:   store.Replicas(),
		MaxAge:     7 * 24 * time.Hour,
		Duplicates: 2 * time.Minute,
		MaxMsgSize: MaxEventBytes,
	})
	if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return fmt.Errorf("ingest stream: %w", err)
	}
	return nil
}
