package poison_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/poison"
)

func TestDeterministic(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("connection reset by peer"), false},
		{fmt.Errorf("apply: %w", &pgconn.PgError{Code: "54000"}), true}, // index row too large
		{&pgconn.PgError{Code: "22001"}, true},                          // value too long
		{&pgconn.PgError{Code: "23505"}, true},                          // unique violation
		{&pgconn.PgError{Code: "40001"}, false},                         // serialization failure
		{&pgconn.PgError{Code: "57P01"}, false},                         // admin shutdown
		{&pgconn.PgError{Code: "JSM01"}, false},                         // a projector's stale-row check
		{fmt.Errorf("x: %w", event.ErrMalformed), true},
		{fmt.Errorf("x: %w", event.ErrUndecodable), true},
		{fmt.Errorf("x: %w", event.ErrOutOfBounds), true},
		{fmt.Errorf("x: %w", event.ErrNewerSchema), false}, // newer code reads it
	} {
		if got := poison.Deterministic(c.err); got != c.want {
			t.Errorf("Deterministic(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestReasonIsStorable(t *testing.T) {
	r := poison.Reason(errors.New("bad \x00 byte \xff and " + strings.Repeat("é", 2000)))
	if !utf8.ValidString(r) || strings.ContainsRune(r, 0) || len(r) > poison.MaxReason+len("…") {
		t.Fatalf("reason %q is not storable", r[:80])
	}
}
