// Package startup waits for what a service needs before it can serve: the
// NATS connection, its JetStream streams, consumers and buckets, and
// PostgreSQL with its migrations. A dependency that is not there yet (a
// server still starting, a cluster still forming its groups, a database
// still recovering) is tried again with capped exponential backoff and
// jitter until it answers or the service is told to stop; a wrong setting
// fails at once.
package startup

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Backoff is how long Retry waits between tries: Initial, then each wait
// Multiplier times the last, capped at Max, each randomised by ±Jitter
// (a fraction) so instances started together do not retry in step.
type Backoff struct {
	Initial    time.Duration
	Max        time.Duration
	Multiplier float64
	Jitter     float64
	// Attempt bounds one try (none when not positive): a JetStream request
	// to a cluster that lost its leader can otherwise wait long, but a long
	// migration must not be cut short.
	Attempt time.Duration
}

// Default is the backoff of start-up waits: 250 ms doubling up to 10 s,
// ±30 %, a try bounded by 30 s.
var Default = Backoff{Initial: 250 * time.Millisecond, Max: 10 * time.Second, Multiplier: 2, Jitter: 0.3, Attempt: 30 * time.Second}

// newBackOff is b as cenkalti/backoff's policy.
func (b Backoff) newBackOff() backoff.BackOff {
	e := backoff.NewExponentialBackOff()
	e.InitialInterval, e.MaxInterval = b.Initial, b.Max
	e.Multiplier, e.RandomizationFactor = b.Multiplier, b.Jitter
	return e
}

// Retry runs try until it succeeds, fails with an error that is not
// Transient, or ctx ends, waiting Default's backoff between tries. Each
// retry is logged at warn with its reason, naming what waits (e.g.
// "postgres"); see RetryWith.
func Retry(ctx context.Context, log *slog.Logger, what string, try func(context.Context) error) error {
	return RetryWith(ctx, Default, log, what, try)
}

// RetryWith is Retry with its own backoff. It never gives up on a transient
// error: a service waits for its dependencies as long as it runs, reporting
// not ready meanwhile. The log stays bounded: every retry is logged for the
// first quietAfter tries and whenever the reason changes, then once every
// quietEvery.
func RetryWith(ctx context.Context, b Backoff, log *slog.Logger, what string, try func(context.Context) error) error {
	if log == nil {
		log = slog.Default()
	}
	var (
		tries      int
		lastReason string
		lastLogged time.Time
		started    = time.Now()
	)
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		tries++
		err := b.try(ctx, try)
		if err == nil {
			if tries > 1 {
				log.Info(what+" ready", "tries", tries, "waited", time.Since(started).Round(time.Millisecond))
			}
			return struct{}{}, nil
		}
		if ctx.Err() != nil || !Transient(err) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	},
		backoff.WithBackOff(b.newBackOff()),
		backoff.WithMaxElapsedTime(0), // never give up; ctx stops the wait
		backoff.WithNotify(func(err error, next time.Duration) {
			reason := err.Error()
			if tries <= quietAfter || reason != lastReason || time.Since(lastLogged) >= quietEvery {
				log.Warn(what+" not ready, retrying", "err", err, "try", tries, "in", next.Round(time.Millisecond))
				lastLogged = time.Now()
			}
			lastReason = reason
		}),
	)
	return err
}

func (b Backoff) try(ctx context.Context, try func(context.Context) error) error {
	if b.Attempt <= 0 {
		return try(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, b.Attempt)
	defer cancel()
	return try(ctx)
}

const (
	quietAfter = 5
	quietEvery = time.Minute
)

// permanentError marks an error no retry can cure.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that no retry cures, so Retry returns it at
// once even if it wraps an error Transient would wait on.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// notReadyError marks a dependency found not ready yet.
type notReadyError struct{ err error }

func (e *notReadyError) Error() string { return e.err.Error() }
func (e *notReadyError) Unwrap() error { return e.err }

// NotReady marks err as a dependency that is not ready yet (e.g. a NATS
// connection still trying its servers), so Retry waits on it.
func NotReady(err error) error {
	if err == nil {
		return nil
	}
	return &notReadyError{err}
}

// configCodes are JetStream API error codes that say the request itself is
// wrong (a setting, not the state of the cluster): trying again gives the
// same answer. Every other API error, e.g. 10005 "no suitable peers for
// placement" (a peer offline), 10008 "JetStream system temporarily
// unavailable", 10023 "insufficient resources" while peers report in,
// 10118 "stream is offline", is what a forming cluster answers.
var configCodes = map[jetstream.ErrorCode]bool{
	10025: true, // invalid JSON
	10052: true, // stream config invalid
	10058: true, // stream name in use with a different configuration
	10061: true, // replicas cannot be updated
	10065: true, // subjects overlap with an existing stream
	10074: true, // replicas > 1 not supported in non-clustered mode
	10078: true, // consumer config required
	10094: true, // consumer policy invalid
	10106: true, // durable replaced with a different config
	10113: true, // account requires max bytes
	10126: true, // consumer replicas exceed the stream's
	10133: true, // negative replicas
	10138: true, // overlapping consumer filters
}

// natsUnavailable are nats.go's errors for a server or cluster that does
// not answer (yet).
var natsUnavailable = []error{
	nats.ErrTimeout, nats.ErrNoResponders, nats.ErrNoServers, nats.ErrConnectionClosed,
	nats.ErrConnectionReconnecting, nats.ErrDisconnected, nats.ErrStaleConnection,
	nats.ErrConnectionDraining, jetstream.ErrServerShutdown,
}

// Transient reports whether err says a dependency is not up or not ready
// yet, so that trying again later may succeed: a refused, reset or timed
// out connection, a name that does not resolve yet, NATS with no server or
// no responder, a JetStream API error about the cluster's state,
// PostgreSQL starting, shutting down, in recovery or out of connections.
// Anything else is a wrong setting or a bug, which waiting does not cure: a
// DSN that does not parse, a role or password PostgreSQL refuses, a
// migration with an error, a stream configuration JetStream refuses, a
// NATS permission missing, a service setting that is missing or wrong.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	var perm *permanentError
	if errors.As(err, &perm) {
		return false
	}
	var notReady *notReadyError
	if errors.As(err, &notReady) {
		return true
	}
	var parseErr *pgconn.ParseConfigError
	if errors.As(err, &parseErr) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return transientSQLState(pgErr.Code)
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return !configCodes[apiErr.ErrorCode]
	}
	for _, target := range natsUnavailable {
		if errors.Is(err, target) {
			return true
		}
	}
	var netErr net.Error
	var connectErr *pgconn.ConnectError
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) || errors.As(err, &connectErr) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || pgconn.Timeout(err)
}

// transientSQLState reports whether PostgreSQL's answer is about its state
// rather than the request: connection exceptions (08), a serialisation
// failure or deadlock (40), too many connections or a full disk (53), a
// server starting, shutting down or in recovery (57), a system error (58),
// a lock not available (55P03).
func transientSQLState(code string) bool {
	if len(code) != 5 {
		return true
	}
	switch code[:2] {
	case "08", "40", "53", "57", "58":
		return true
	}
	return code == "55P03"
}
