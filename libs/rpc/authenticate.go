package rpc

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/jsmplatform/jsm/libs/auth"
)

// authenticate checks the caller's token before the Connect handler reads
// the request: a Connect unary interceptor only runs once connect-go has
// read and decoded the whole body, so an anonymous client could make every
// replica read and parse megabytes before its 401. The path of a Connect,
// gRPC or gRPC-Web request is its procedure. Paths the policy does not list
// go on to the mux, which answers 404 without reading them (and the
// interceptor still denies a handler the policy forgot).
func authenticate(gate *auth.Gate, next http.Handler) http.Handler {
	ew := connect.NewErrorWriter()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		procedure := r.URL.Path
		if !gate.Knows(procedure) {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		ctx, err := gate.Authorize(r.Context(), procedure, r.Header)
		if err != nil {
			observe(procedure, start, err)
			ce := new(connect.Error)
			if !errors.As(err, &ce) {
				ce = connect.NewError(connect.CodeUnauthenticated, err)
			}
			// The body is left unread: net/http discards at most 256 KiB
			// of it to keep an HTTP/1.1 connection, else closes it; HTTP/2
			// resets the stream.
			writeError(ew, w, r, ce, httpStatus(ce.Code()))
			return
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func httpStatus(code connect.Code) int {
	if code == connect.CodeUnauthenticated {
		return http.StatusUnauthorized
	}
	return http.StatusForbidden
}

// withToken serves next only to requests bearing token; an empty token
// leaves next open.
func withToken(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="jsm-metrics"`)
			writeText(w, http.StatusUnauthorized, "unauthorized")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bodySlack is what a request body may hold beyond its one message: the
// gRPC envelope's prefix, with room to spare. Every JSM procedure takes one
// request message (streams are server-side only).
const bodySlack = 16 << 10

// limitBody stops reading a request body past n bytes, whatever the codec
// or compression: connect-go's own limit reads an oversized body to its end.
func limitBody(n int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, n)
		next.ServeHTTP(w, r)
	})
}
