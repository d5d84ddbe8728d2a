package webhooks

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/jsmplatform/jsm/libs/telemetry"
	"github.com/jsmplatform/jsm/services/integration/secret"
)

// worker sends due deliveries. It is an outbox worker on PostgreSQL rather
// than a Watermill handler: a delivery may wait hours between attempts
// while later events of other aggregates go on, and must stay listable,
// redeliverable and replayable; all of that is state in rows, and
// Watermill's retry would hold its consumer instead. Deliveries are
// claimed with FOR UPDATE SKIP LOCKED and a lease, so instances share the
// work without sending a delivery twice at the same time, and one that
// dies mid-send leaves it due again once the lease expires.
type worker struct {
	pool   *pgxpool.Pool
	keys   secret.Keys
	http   *http.Client
	now    func() time.Time
	log    *slog.Logger
	cfg    Delivery
	wake   chan struct{}
	jitter func(time.Duration) time.Duration
}

// Delivery configures the worker.
type Delivery struct {
	// MaxAttempts bounds the attempts of a delivery before it fails for
	// good (default 8).
	MaxAttempts int
	// RetryBase is the wait after the first failed attempt; it doubles
	// with every further one (default 5s), up to RetryMax (default 1h),
	// with jitter: a wait d is drawn from [d/2, d).
	RetryBase time.Duration
	RetryMax  time.Duration
	// AttemptTimeout bounds one HTTP attempt (default 10s).
	AttemptTimeout time.Duration
	// PollEvery is how often the worker looks for due deliveries when
	// nothing woke it (default 1s).
	PollEvery time.Duration
	// Concurrency bounds the attempts in flight (default 8).
	Concurrency int
	// RotationGrace is how long after a rotation deliveries are signed
	// with the previous secret too (default 24h; negative: not at all).
	RotationGrace time.Duration
}

func (c Delivery) withDefaults() Delivery {
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 8
	}
	if c.RetryBase <= 0 {
		c.RetryBase = 5 * time.Second
	}
	if c.RetryMax <= 0 {
		c.RetryMax = time.Hour
	}
	if c.AttemptTimeout <= 0 {
		c.AttemptTimeout = 10 * time.Second
	}
	if c.PollEvery <= 0 {
		c.PollEvery = time.Second
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 8
	}
	if c.RotationGrace == 0 {
		c.RotationGrace = 24 * time.Hour
	}
	return c
}

// backoff is the wait after the n-th failed try (n >= 1).
func (w *worker) backoff(n int) time.Duration {
	d := w.cfg.RetryBase
	for i := 1; i < n && d < w.cfg.RetryMax; i++ {
		d *= 2
	}
	return w.jitter(min(d, w.cfg.RetryMax))
}

func equalJitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2)
}

// Wake makes the worker look for due deliveries now.
func (w *worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run sends deliveries until ctx ends; attempts in flight finish first.
// It claims only as many deliveries as it has free slots, so a claimed
// delivery is sent at once (its lease runs from then) and a slow endpoint
// holds one slot, not the others.
func (w *worker) Run(ctx context.Context) error {
	t := time.NewTicker(w.cfg.PollEvery)
	defer t.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, w.cfg.Concurrency)
	for {
		if free := cap(slots) - len(slots); free > 0 {
			batch, err := w.claim(ctx, free)
			if err != nil && ctx.Err() == nil {
				w.log.WarnContext(ctx, "webhook deliveries", "err", err)
			}
			for _, c := range batch {
				slots <- struct{}{}
				wg.Add(1)
				go func() {
					defer wg.Done()
					// An attempt under way is finished and recorded even
					// when the worker is stopping, within its timeout.
					if err := w.attempt(context.WithoutCancel(ctx), c); err != nil {
						w.log.WarnContext(ctx, "webhook delivery", "delivery", c.id, "err", err)
					}
					<-slots
					w.Wake() // a slot is free, and the aggregate's next event may be due
				}()
			}
			if err == nil && len(batch) == free {
				continue // there may be more
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-w.wake:
		case <-t.C:
		}
	}
}

// claimed is a delivery a worker holds.
type claimed struct {
	id, subscription, org, url string
	version                    uint32
	// previous is the secret version before the last rotation while its
	// grace period lasts (0 when none): deliveries carry signatures of
	// both, so receivers can switch secrets without losing any.
	previous        uint32
	payload         []byte
	tries, attempts int
	// traceParent is the event's trace: each attempt is a span of it.
	traceParent, eventType, contract string
}

// claim leases up to n deliveries due now: at most one per aggregate of a
// subscription, the earliest pending one, and none of a disabled
// subscription.
func (w *worker) claim(ctx context.Context, n int) ([]claimed, error) {
	now := w.now()
	lease := now.Add(w.cfg.AttemptTimeout + 30*time.Second)
	rows, err := w.pool.Query(ctx, `
		WITH due AS (
			SELECT d.delivery_id FROM webhooks.deliveries d
			JOIN webhooks.subscriptions s ON s.subscription_id = d.subscription_id AND s.enabled
			WHERE d.status = 1 AND d.next_attempt_at <= $1 AND (d.lease_until IS NULL OR d.lease_until <= $1)
			  AND NOT EXISTS (
				SELECT 1 FROM webhooks.deliveries p
				WHERE p.subscription_id = d.subscription_id AND p.aggregate_type = d.aggregate_type
				  AND p.aggregate_id = d.aggregate_id AND p.status = 1 AND p.position < d.position)
			ORDER BY d.position
			LIMIT $3
			FOR UPDATE OF d SKIP LOCKED),
		claimed AS (
			UPDATE webhooks.deliveries d SET lease_until = $2
			FROM due WHERE d.delivery_id = due.delivery_id
			RETURNING d.delivery_id, d.subscription_id, d.org_id, d.payload, d.tries, d.attempts, d.trace_parent, d.event_type, d.contract_id)
		SELECT c.delivery_id, c.subscription_id, c.org_id, s.url, s.secret_version,
			CASE WHEN s.rotated_at > $1 - COALESCE(s.previous_grace_us, $4) * interval '1 microsecond' THEN s.secret_version - 1 ELSE 0 END,
			c.payload, c.tries, c.attempts, c.trace_parent, c.event_type, c.contract_id
		FROM claimed c JOIN webhooks.subscriptions s ON s.subscription_id = c.subscription_id`,
		now, lease, n, w.cfg.RotationGrace.Microseconds())
	if err != nil {
		return nil, fmt.Errorf("claim: %w", err)
	}
	batch, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (claimed, error) {
		var c claimed
		var version, previous int64
		err := r.Scan(&c.id, &c.subscription, &c.org, &c.url, &version, &previous, &c.payload, &c.tries, &c.attempts, &c.traceParent, &c.eventType, &c.contract)
		c.version, c.previous = uint32(version), uint32(previous)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("claim: %w", err)
	}
	return batch, nil
}

// attempt sends one delivery and records the outcome, in a span of the
// event's trace.
func (w *worker) attempt(ctx context.Context, c claimed) (err error) {
	ctx = telemetry.FromTraceParent(ctx, c.traceParent)
	ctx = telemetry.WithScope(ctx, telemetry.Scope{Contract: c.contract, Org: c.org})
	ctx, span := telemetry.Tracer().Start(ctx, "webhook deliver", trace.WithSpanKind(trace.SpanKindClient))
	started := w.now()
	code, errText := w.send(ctx, c, started)
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String("jsm.webhook.delivery", c.id),
			attribute.String("jsm.webhook.subscription", c.subscription),
			attribute.String("jsm.event.type", c.eventType),
			attribute.Int("jsm.webhook.attempt", c.attempts+1),
			attribute.Int("http.response.status_code", code),
		)
	}
	defer func() {
		if err == nil && errText != "" {
			span.SetStatus(codes.Error, errText)
		}
		telemetry.End(span, err)
	}()
	took := w.now().Sub(started)
	tries, attempts := c.tries+1, c.attempts+1
	status, next := statusPending, started
	var delivered *time.Time
	switch {
	case code >= 200 && code < 300:
		status, delivered = statusDelivered, &started
	case tries >= w.cfg.MaxAttempts:
		status = statusFailed
	default:
		next = started.Add(w.backoff(tries))
	}
	level := slog.LevelDebug
	if status != statusDelivered {
		level = slog.LevelInfo
	}
	w.log.Log(ctx, level, "webhook attempt", "delivery", c.id, "subscription", c.subscription, "attempt", attempts, "status_code", code, "err", errText, "status", status, "next", next)
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO webhooks.attempts (delivery_id, attempt, org_id, attempted_at, status_code, error, duration_ms)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
		c.id, attempts, c.org, started, code, errText, took.Milliseconds())
	b.Queue(`UPDATE webhooks.deliveries SET attempts = $2, tries = $3, status = $4, next_attempt_at = $5,
			last_attempt_at = $6, last_status_code = $7, last_error = $8, delivered_at = COALESCE($9, delivered_at), lease_until = NULL
		WHERE delivery_id = $1`,
		c.id, attempts, tries, status, next, started, code, errText, delivered)
	if err := w.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("record attempt of %s: %w", c.id, err)
	}
	return nil
}

// send posts the payload signed per Standard Webhooks; it returns the
// receiver's status (0 when it could not be reached) and what went wrong.
func (w *worker) send(ctx context.Context, c claimed, at time.Time) (int, string) {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.AttemptTimeout)
	defer cancel()
	sig, err := w.sign(c, c.version, at)
	if err != nil {
		return 0, err.Error()
	}
	if c.previous > 0 {
		old, err := w.sign(c, c.previous, at)
		if err != nil {
			return 0, err.Error()
		}
		sig += " " + old
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(c.payload))
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "jsm-webhooks/1")
	req.Header.Set(standardwebhooks.HeaderWebhookID, c.id)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(at.Unix(), 10))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, sig)
	if tp := telemetry.TraceParent(ctx); tp != "" {
		req.Header.Set("traceparent", tp) // the receiver may continue the trace
	}
	resp, err := w.http.Do(req)
	if err != nil {
		return 0, transportReason(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, ""
	}
	return resp.StatusCode, statusReason(resp.StatusCode)
}

// statusReason is what an org reads of a refused attempt: the status code
// and its standard text, never the endpoint's body or reason phrase, which
// could carry what an internal service answered (an org points a webhook
// wherever it likes).
func statusReason(code int) string {
	if text := http.StatusText(code); text != "" {
		return fmt.Sprintf("%d %s", code, text)
	}
	return strconv.Itoa(code)
}

// transportReason names the class of a failed request without its
// addresses, ports or the resolver's and TLS library's words, which would
// tell an org about the network around the platform.
func transportReason(err error) string {
	var dnsErr *net.DNSError
	var tlsErr *tls.CertificateVerificationError
	var recordErr tls.RecordHeaderError
	switch {
	case errors.Is(err, errPrivateTarget):
		return "address is not public"
	case errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err):
		return "timed out"
	case errors.As(err, &dnsErr):
		return "name not resolved"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	case errors.As(err, &tlsErr) || errors.As(err, &recordErr):
		return "TLS handshake failed"
	default:
		return "request failed"
	}
}

// sign is the "v1,<base64>" signature of c with the secret of version.
func (w *worker) sign(c claimed, version uint32, at time.Time) (string, error) {
	wh, err := standardwebhooks.NewWebhookRaw(w.keys.Raw(secret.ForSubscription, c.subscription, version))
	if err != nil {
		return "", err
	}
	return wh.Sign(c.id, at, c.payload)
}
