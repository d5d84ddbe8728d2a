package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	cejs "github.com/cloudevents/sdk-go/protocol/nats_jetstream/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/nats-io/nats.go"

	"github.com/jsmplatform/jsm/libs/es"
	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/poison"
	"github.com/jsmplatform/jsm/libs/reactor"
	"github.com/jsmplatform/jsm/libs/telemetry"
	integrationv1 "github.com/jsmplatform/jsm/proto/gen/jsm/integration/v1"
	"github.com/jsmplatform/jsm/services/integration/ingest/domain"
)

// Path is the ingest endpoint's pattern; {source} is the source id.
const Path = "POST /ingest/v1/sources/{source}/events"

// PathPrefix is where the host mounts Handler.
const PathPrefix = "/ingest/v1/sources/"

// Problem types (RFC 9457) are URIs under this prefix plus the slug.
const problemBase = "https://jsm.dev/problems/ingest/"

// problem is an RFC 9457 problem details body.
type problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// For a rejected event: which one, and for a batch every event's result.
	EventID string   `json:"event_id,omitempty"`
	Results []Result `json:"results,omitempty"`
}

func writeProblem(w http.ResponseWriter, p problem) {
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// Handler serves the ingest endpoint.
func (s *Sources) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(Path, s.receiveHTTP)
	return mux
}

// receiveHTTP takes one request of a source: one event (structured or
// binary mode) or a batch, each run through the same path as NATS.
//
// Answers: 200 with the result (a batch: {"results": [...]}) when every
// event was accepted; 4xx problem details when the request or an event was
// refused (a batch's accepted events stay accepted: resending it is safe);
// 503 when the platform could not be reached (send it again later).
func (s *Sources) receiveHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := telemetry.FromTraceParent(r.Context(), r.Header.Get("traceparent"))
	id := r.PathValue("source")
	// Nothing of the body is read before the caller has shown it may send:
	// the source must exist, a bearer token is checked from the headers, and
	// only a signed request of an enabled source, fresh by its timestamp,
	// has its body read (up to the limit) to check the signature.
	src, err := s.source(ctx, id)
	if err != nil {
		s.d.Logger.ErrorContext(ctx, "ingest: load source", "source", id, "err", err)
		writeProblem(w, problem{Type: problemBase + "unavailable", Status: http.StatusServiceUnavailable, Detail: "try again later"})
		return
	}
	now := s.d.Now()
	needBody, err := s.authenticateHeaders(src, r.Header, now)
	if !src.Exists() || err != nil || (needBody && !src.Enabled) {
		writeProblem(w, problem{Type: problemBase + "unauthenticated", Status: http.StatusUnauthorized, Detail: errUnauthenticated.Error()})
		return
	}
	if !needBody && !s.admit(w, src, now) {
		return // a token's caller is limited before its body is read
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.d.Limits.MaxBodyBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeProblem(w, problem{Type: problemBase + "too-large", Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("the body exceeds %d bytes", tooBig.Limit)})
		return
	}
	if err != nil {
		writeProblem(w, problem{Type: problemBase + "bad-request", Status: http.StatusBadRequest, Detail: "reading the body: " + err.Error()})
		return
	}
	if needBody {
		if err := s.authenticateSignature(src, r.Header, body, now); err != nil {
			writeProblem(w, problem{Type: problemBase + "unauthenticated", Status: http.StatusUnauthorized, Detail: errUnauthenticated.Error()})
			return
		}
		if !s.admit(w, src, now) {
			return
		}
	}
	req := r.Clone(ctx)
	req.Body = io.NopCloser(bytes.NewReader(body))
	batch := isBatch(r)
	var events []cloudevents.Event
	if batch {
		events, err = cehttp.NewEventsFromHTTPRequest(req)
		if err == nil && len(events) == 0 {
			err = errors.New("an empty batch")
		}
	} else {
		var e *cloudevents.Event
		if e, err = cehttp.NewEventFromHTTPRequest(req); err == nil {
			events = []cloudevents.Event{*e}
		}
	}
	for i := range events {
		if err == nil {
			err = validate(events[i])
		}
	}
	if err != nil {
		writeProblem(w, problem{Type: problemBase + "malformed-cloudevent", Status: http.StatusBadRequest, Detail: "not a CloudEvent 1.0: " + err.Error()})
		return
	}
	if len(events) > s.d.Limits.MaxBatch {
		writeProblem(w, problem{Type: problemBase + "too-large", Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("a batch holds at most %d events", s.d.Limits.MaxBatch)})
		return
	}
	results, failed, err := s.ingestAll(ctx, src, transportHTTP, events)
	if err != nil {
		s.d.Logger.WarnContext(ctx, "ingest: transient failure", "source", id, "event", failed, "err", err)
		w.Header().Set("Retry-After", "5")
		writeProblem(w, problem{Type: problemBase + "unavailable", Status: http.StatusServiceUnavailable, EventID: failed,
			Detail: "the platform could not take the event now; send it again (what was taken is answered as a duplicate)", Results: results})
		return
	}
	var rejected *Result
	for i := range results {
		if results[i].Status != 0 {
			rejected = &results[i]
			break
		}
	}
	switch {
	case rejected != nil && !batch:
		writeProblem(w, problem{Type: problemBase + rejected.ReasonType, Status: rejected.Status, Detail: rejected.Reason, EventID: rejected.EventID})
	case rejected != nil:
		writeProblem(w, problem{Type: problemBase + "batch-rejected", Status: http.StatusUnprocessableEntity, EventID: rejected.EventID,
			Detail: "some events were rejected (see results); the others were accepted", Results: results})
	case batch:
		writeJSON(w, map[string]any{"results": results})
	default:
		writeJSON(w, results[0])
	}
}

// decodeNATS reads the CloudEvent of a JSM_INGEST message (binary or
// structured mode) and validates it.
func decodeNATS(ctx context.Context, m reactor.Message) (*cloudevents.Event, error) {
	e, err := binding.ToEvent(ctx, cejs.NewMessage(&nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data}))
	if err == nil {
		err = validate(*e)
	}
	if err != nil {
		return nil, fmt.Errorf("malformed-cloudevent: not a CloudEvent 1.0: %w", err)
	}
	return e, nil
}

// validate checks a CloudEvent as the spec does, and the attributes that
// reach the inbox's key, its rows and the platform's headers against the
// platform's bounds (libs/event): the id is the inbox's primary key and
// part of every command's correlation id.
func validate(e cloudevents.Event) error {
	if err := e.Validate(); err != nil {
		return err
	}
	if err := event.CheckClientRef("id", e.ID()); err != nil {
		return err
	}
	if err := event.CheckName("source", e.Source(), event.MaxNameLen); err != nil {
		return err
	}
	if err := event.CheckToken("type", e.Type(), event.MaxNameLen); err != nil {
		return err
	}
	return event.CheckName("subject", e.Subject(), event.MaxNameLen)
}

// admit applies the source's rate limit and its being enabled to an
// authenticated request; false when it answered. Only after
// authentication: someone who only knows the source's id cannot use up its
// rate (the host bounds requests per client address).
func (s *Sources) admit(w http.ResponseWriter, src domain.State, now time.Time) bool {
	if ok, wait := s.limiter.allow(string(src.ID), now); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		writeProblem(w, problem{Type: problemBase + "rate-limited", Status: http.StatusTooManyRequests, Detail: "too many requests from this source"})
		return false
	}
	if !src.Enabled {
		writeProblem(w, problem{Type: problemBase + "source-disabled", Status: http.StatusForbidden, Detail: "the source is disabled"})
		return false
	}
	return true
}

func isBatch(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == cloudevents.ApplicationCloudEventsBatchJSON
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// source is the source's latest state (from the stream, not the read
// model: a source registered a moment ago can publish at once).
func (s *Sources) source(ctx context.Context, id string) (domain.State, error) {
	st, _, err := s.runner.State(ctx, id)
	if errors.Is(err, es.ErrInvalidID) {
		return domain.State{}, nil // no source can have it
	}
	return st, err
}

// receiveNATS takes one message of JSM_INGEST. What is rejected goes to
// the dead letters (the poison queue adds the reason); a transient failure
// is retried and the message delivered again later.
func (s *Sources) receiveNATS(ctx context.Context, m reactor.Message) error {
	id := sourceOf(m.Subject)
	src, err := s.source(ctx, id)
	if err != nil {
		return reactor.Transient(err)
	}
	if !src.Exists() {
		return reactor.Permanent(fmt.Errorf("unknown-source: no source %q", id))
	}
	if !src.Enabled {
		return reactor.Permanent(fmt.Errorf("source-disabled: source %s is disabled", id))
	}
	e, err := decodeNATS(ctx, m)
	if err != nil {
		return reactor.Permanent(err)
	}
	res, err := s.ingest(ctx, src, transportNATS, *e)
	if poison.Deterministic(err) {
		// Retrying it would hold every later message of every source.
		return reactor.Permanent(fmt.Errorf("unprocessable: %w", err))
	}
	if err != nil {
		return reactor.Transient(err)
	}
	if res.Outcome == integrationv1.IngestOutcome_INGEST_OUTCOME_REJECTED && !res.Duplicate {
		return reactor.Permanent(fmt.Errorf("%s: %s", res.ReasonType, res.Reason))
	}
	return nil
}
