package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/jsmplatform/jsm/libs/telemetry"

	integrationv1 "github.com/jsmplatform/jsm/proto/gen/jsm/integration/v1"
	"github.com/jsmplatform/jsm/services/integration/ingest/domain"
	"github.com/jsmplatform/jsm/services/integration/ingest/mapping"
)

// Transports, as the inbox names them.
const (
	transportHTTP = "http"
	transportNATS = "nats"
)

// Result is what became of one ingested event: the inbox row, and the
// HTTP answer's body.
type Result struct {
	SourceID    string                      `json:"source_id"`
	EventID     string                      `json:"event_id"`
	Type        string                      `json:"type"`
	Subject     string                      `json:"subject,omitempty"`
	EventTime   *time.Time                  `json:"-"`
	ReceivedAt  time.Time                   `json:"received_at"`
	Transport   string                      `json:"transport"`
	Outcome     integrationv1.IngestOutcome `json:"-"`
	OutcomeName string                      `json:"outcome"`
	// Duplicate: the event was received before; this is what it became then.
	Duplicate  bool        `json:"duplicate,omitempty"`
	Ref        mapping.Ref `json:"-"`
	ContractID string      `json:"contract_id,omitempty"`
	ObjectType string      `json:"object_type,omitempty"`
	ObjectID   string      `json:"object_id,omitempty"`
	Position   uint64      `json:"position,omitempty"`
	ReasonType string      `json:"reason_type,omitempty"`
	Reason     string      `json:"reason,omitempty"`
	// Status is the HTTP status of a rejection.
	Status   int    `json:"-"`
	Original []byte `json:"-"`
	// seq orders the inbox (its page tokens).
	seq int64
}

// rejection is a final refusal of an event: why, and its HTTP status.
type rejection struct {
	typ    string
	reason string
	status int
}

func (r *rejection) Error() string { return r.typ + ": " + r.reason }

// reject refuses an event for good, with a problem type slug.
func reject(typ, format string, args ...any) error {
	return &rejection{typ: typ, reason: fmt.Sprintf(format, args...), status: rejectStatus(typ)}
}

// rejectStatus is the HTTP status of a refusal: a source writing where it
// may not is forbidden; anything else about the event is unprocessable.
func rejectStatus(typ string) int {
	if typ == "contract-not-allowed" {
		return http.StatusForbidden
	}
	return http.StatusUnprocessableEntity
}

// ingest runs one event of src through the mapping and the platform and
// records the outcome in the inbox. A resent event (same source and id) is
// answered from the inbox. The error is a transient failure only: the
// event may be sent again; refusals are a Result with outcome REJECTED.
func (s *Sources) ingest(ctx context.Context, src domain.State, transport string, e cloudevents.Event) (Result, error) {
	return s.ingestMapped(ctx, src, transport, e, mapEvent(src, e))
}

// mapped is what an event's mapping made of it.
type mapped struct {
	act mapping.Action
	err error
}

func mapEvent(src domain.State, e cloudevents.Event) mapped {
	act, err := mapping.Map(src.Mapping, e)
	return mapped{act, err}
}

// ingestMapped is ingest of an event mapped already (a batch maps its
// events first, to order them by ticket).
func (s *Sources) ingestMapped(ctx context.Context, src domain.State, transport string, e cloudevents.Event, m mapped) (res Result, err error) {
	// A source that traces (the CloudEvents distributed tracing extension)
	// gets its trace continued into the platform's commands.
	if tp, ok := e.Extensions()["traceparent"].(string); ok && !trace.SpanContextFromContext(ctx).IsValid() {
		ctx = telemetry.FromTraceParent(ctx, tp)
	}
	ctx = telemetry.WithScope(ctx, telemetry.Scope{Contract: e.Subject(), Org: string(src.Org)})
	ctx, span := telemetry.Tracer().Start(ctx, "ingest "+e.Type(), trace.WithSpanKind(trace.SpanKindConsumer))
	if span.IsRecording() {
		span.SetAttributes(attribute.String("jsm.ingest.source", string(src.ID)), attribute.String("jsm.ingest.transport", transport),
			attribute.String("cloudevents.event_id", e.ID()), attribute.String("cloudevents.event_type", e.Type()))
		defer func() { span.SetAttributes(attribute.String("jsm.ingest.outcome", res.OutcomeName)) }()
	}
	defer func() { telemetry.End(span, err) }()
	if prev, ok, err := s.recorded(ctx, string(src.ID), e.ID()); err != nil || ok {
		prev.Duplicate = ok
		return prev, err
	}
	res = Result{
		SourceID: string(src.ID), EventID: e.ID(), Type: e.Type(), Subject: e.Subject(),
		ReceivedAt: s.d.Now(), Transport: transport, ContractID: e.Subject(),
	}
	if t := e.Time(); !t.IsZero() {
		t = t.UTC().Truncate(time.Microsecond)
		res.EventTime = &t
	}
	applied, err := s.apply(ctx, src, e.ID(), m)
	var rej *rejection
	switch {
	case errors.As(err, &rej):
		res.Outcome, res.ReasonType, res.Reason, res.Status = integrationv1.IngestOutcome_INGEST_OUTCOME_REJECTED, rej.typ, rej.reason, rej.status
		res.Original, _ = json.Marshal(e)
	case err != nil:
		return Result{}, err
	case applied.changed:
		res.Outcome = integrationv1.IngestOutcome_INGEST_OUTCOME_APPLIED
	default:
		res.Outcome = integrationv1.IngestOutcome_INGEST_OUTCOME_UNCHANGED
	}
	res.Ref, res.ObjectType, res.ObjectID, res.Position = applied.ref, applied.objectType, applied.objectID, applied.position
	if applied.contractID != "" {
		res.ContractID = applied.contractID
	}
	res.OutcomeName = outcomeName(res.Outcome)
	return s.record(ctx, src, res)
}

// apply gives the commands of the event eventID, mapped as m.
func (s *Sources) apply(ctx context.Context, src domain.State, eventID string, m mapped) (applied, error) {
	act, err := m.act, m.err
	if r, ok := mapping.IsReject(err); ok {
		return applied{}, reject(r.Type, "%s", r.Reason)
	}
	if err != nil {
		return applied{}, reject("unmappable", "%v", err)
	}
	if !src.Allows(act.ContractID) {
		return applied{ref: act.Ref}, reject("contract-not-allowed", "source %s may not write to contract %s", src.ID, act.ContractID)
	}
	return s.exec.run(ctx, src, eventID, act)
}

func outcomeName(o integrationv1.IngestOutcome) string {
	switch o {
	case integrationv1.IngestOutcome_INGEST_OUTCOME_APPLIED:
		return "applied"
	case integrationv1.IngestOutcome_INGEST_OUTCOME_UNCHANGED:
		return "unchanged"
	case integrationv1.IngestOutcome_INGEST_OUTCOME_REJECTED:
		return "rejected"
	}
	return "unspecified"
}

// inboxColumns are what record writes; a read adds seq.
const inboxColumns = `source_id, event_id, type, subject, event_time, received_at, transport, outcome,
	ref_system, ref_id, contract_id, object_type, object_id, position, reason_type, reason, original`

const inboxRead = inboxColumns + `, seq`

func scanResult(r pgx.CollectableRow) (Result, error) {
	var res Result
	var pos int64
	var outcome int16
	err := r.Scan(&res.SourceID, &res.EventID, &res.Type, &res.Subject, &res.EventTime, &res.ReceivedAt, &res.Transport, &outcome,
		&res.Ref.System, &res.Ref.ID, &res.ContractID, &res.ObjectType, &res.ObjectID, &pos, &res.ReasonType, &res.Reason, &res.Original, &res.seq)
	res.Position = uint64(pos)
	res.Outcome = integrationv1.IngestOutcome(outcome)
	res.OutcomeName = outcomeName(res.Outcome)
	if res.Outcome == integrationv1.IngestOutcome_INGEST_OUTCOME_REJECTED {
		res.Status = rejectStatus(res.ReasonType)
	}
	return res, err
}

// recorded is the inbox row of a source's event, if it has one.
func (s *Sources) recorded(ctx context.Context, source, eventID string) (Result, bool, error) {
	rows, err := s.d.Pool.Query(ctx, `SELECT `+inboxRead+` FROM ingest.events WHERE source_id = $1 AND event_id = $2`, source, eventID)
	if err != nil {
		return Result{}, false, err
	}
	res, err := pgx.CollectExactlyOneRow(rows, scanResult)
	if errors.Is(err, pgx.ErrNoRows) {
		return Result{}, false, nil
	}
	return res, err == nil, err
}

// record writes res to the inbox; when another delivery of the same event
// got there first, its row is the answer.
func (s *Sources) record(ctx context.Context, src domain.State, res Result) (Result, error) {
	tag, err := s.d.Pool.Exec(ctx, `INSERT INTO ingest.events (`+inboxColumns+`, org_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
		ON CONFLICT (source_id, event_id) DO NOTHING`,
		res.SourceID, res.EventID, res.Type, res.Subject, res.EventTime, res.ReceivedAt, res.Transport, int16(res.Outcome),
		res.Ref.System, res.Ref.ID, res.ContractID, res.ObjectType, res.ObjectID, int64(res.Position), res.ReasonType, res.Reason, res.Original,
		string(src.Org))
	if err != nil {
		return Result{}, fmt.Errorf("record ingested event: %w", err)
	}
	if tag.RowsAffected() == 0 {
		prev, _, err := s.recorded(ctx, res.SourceID, res.EventID)
		prev.Duplicate = true
		return prev, err
	}
	telemetry.Ingested.WithLabelValues(res.Transport, res.OutcomeName).Inc()
	return res, nil
}
