package rpc

import (
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/time/rate"

	"github.com/jsmplatform/jsm/libs/auth"
)

// limiter is a token bucket per key: the client IP before authentication,
// the caller's org after it. Buckets idle for a while are forgotten.
type limiter struct {
	limit rate.Limit
	burst int

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

const idleBucket = 5 * time.Minute

func newLimiter(perSecond float64, burst int) *limiter {
	if burst <= 0 {
		burst = max(1, int(2*perSecond))
	}
	return &limiter{limit: rate.Limit(perSecond), burst: burst, buckets: make(map[string]*bucket), lastSweep: time.Now()}
}

func (l *limiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) > idleBucket {
		for k, b := range l.buckets {
			if now.Sub(b.seen) > idleBucket {
				delete(l.buckets, k)
			}
		}
		l.lastSweep = now
	}
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[key] = b
	}
	b.seen = now
	return b.lim.AllowN(now, 1)
}

// wrap limits the requests by the key keyOf gives; a request without a key
// (a public procedure, before any token) passes.
func (l *limiter) wrap(next http.Handler, keyOf func(*http.Request) string) http.Handler {
	ew := connect.NewErrorWriter()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if key := keyOf(r); key != "" && !l.allow(key, time.Now()) {
			w.Header().Set("Retry-After", "1")
			writeError(ew, w, r, connect.NewError(connect.CodeResourceExhausted, errors.New("rate limit exceeded")), http.StatusTooManyRequests)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// peerIP is the connection's peer address; forwarded-for headers are not
// trusted.
func peerIP(r *http.Request) string {
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return ip
}

// orgOf is the authenticated caller's org.
func orgOf(r *http.Request) string {
	if p, ok := auth.FromContext(r.Context()); ok {
		return p.Org
	}
	return ""
}
