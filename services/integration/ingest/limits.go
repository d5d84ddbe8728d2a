package ingest

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// MaxEventBytes bounds one event on NATS (the stream's message size).
const MaxEventBytes = 1 << 20

// Limits bound what one source may send over HTTP.
type Limits struct {
	// MaxBodyBytes bounds a request's body (default 1 MiB).
	MaxBodyBytes int64
	// MaxBatch bounds the events of a batch (default 500).
	MaxBatch int
	// RatePerSource is the steady number of requests per second a source
	// may send, with bursts of Burst (defaults 50 and 100).
	RatePerSource float64
	Burst         int
	// RotationGrace is how long a rotated secret's previous version still
	// authenticates (default 24h), so a source can be switched over.
	RotationGrace time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = 1 << 20
	}
	if l.MaxBatch <= 0 {
		l.MaxBatch = 500
	}
	if l.RatePerSource <= 0 {
		l.RatePerSource = 50
	}
	if l.Burst <= 0 {
		l.Burst = max(1, int(2*l.RatePerSource))
	}
	if l.RotationGrace <= 0 {
		l.RotationGrace = 24 * time.Hour
	}
	return l
}

// limiter is a token bucket per registered source (unknown ids never get
// one, so the map is bounded by the sources there are).
type limiter struct {
	limit rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

func newLimiter(perSecond float64, burst int) *limiter {
	return &limiter{limit: rate.Limit(perSecond), burst: burst, buckets: map[string]*rate.Limiter{}}
}

// allow takes a token of source's bucket, or says how long until one.
func (l *limiter) allow(source string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	b, ok := l.buckets[source]
	if !ok {
		b = rate.NewLimiter(l.limit, l.burst)
		l.buckets[source] = b
	}
	l.mu.Unlock()
	r := b.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}
