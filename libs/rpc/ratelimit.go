package rpc

import (
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/time/rate"
)

// ipLimiter is a token bucket per client IP (the connection's peer address;
// forwarded-for headers are not trusted). Buckets idle for a while are
// forgotten.
type ipLimiter struct {
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

func newIPLimiter(perSecond float64, burst int) *ipLimiter {
	if burst <= 0 {
		burst = max(1, int(2*perSecond))
	}
	return &ipLimiter{limit: rate.Limit(perSecond), burst: burst, buckets: make(map[string]*bucket), lastSweep: time.Now()}
}

func (l *ipLimiter) allow(ip string, now time.Time) bool {
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
	b, ok := l.buckets[ip]
	if !ok {
		b = &bucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[ip] = b
	}
	b.seen = now
	return b.lim.AllowN(now, 1)
}

func (l *ipLimiter) wrap(next http.Handler) http.Handler {
	ew := connect.NewErrorWriter()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			ip = r.RemoteAddr
		}
		if !l.allow(ip, time.Now()) {
			w.Header().Set("Retry-After", "1")
			writeError(ew, w, r, connect.NewError(connect.CodeResourceExhausted, errors.New("rate limit exceeded")), http.StatusTooManyRequests)
			return
		}
		next.ServeHTTP(w, r)
	})
}
