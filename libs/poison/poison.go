// Package poison tells the failures no retry can cure from passing ones, so
// that a consumer sets a poison message aside and goes on instead of
// retrying it forever and holding up everything behind it.
package poison

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/jsmplatform/jsm/libs/event"
)

// Deterministic reports whether err fails the same way on every try: a
// message that is not an event or breaks its bounds, a body that does not
// decode, or a PostgreSQL error of class 22 (data exception: a value too
// long, out of range, badly encoded), 23 (integrity constraint violation)
// or 54 (program limit exceeded: an index row too large). Everything else
// (connections, timeouts, serialization failures, locks, a projector's
// own stale-row check) may pass and is retried.
func Deterministic(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, event.ErrMalformed) || errors.Is(err, event.ErrUndecodable) || errors.Is(err, event.ErrOutOfBounds) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && len(pgErr.Code) == 5 {
		switch pgErr.Code[:2] {
		case "22", "23", "54":
			return true
		}
	}
	return false
}

// MaxReason bounds the reason kept with a quarantined message: an error's
// text may quote the hostile value it refused.
const MaxReason = 1024

// Reason is err's text as a database text column takes it: valid UTF-8
// without NUL bytes (PostgreSQL refuses either, and a reason that cannot be
// recorded would stall the consumer as surely as its poison), cut to
// MaxReason bytes at a rune boundary.
func Reason(err error) string {
	s := strings.ReplaceAll(strings.ToValidUTF8(err.Error(), "\uFFFD"), "\x00", `\x00`)
	if len(s) <= MaxReason {
		return s
	}
	cut := MaxReason
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}
