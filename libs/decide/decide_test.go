package decide_test

import (
	"testing"
	"time"

	"github.com/jsmplatform/jsm/libs/decide"
)

type doIt struct {
	decide.By
	What string
}

func TestStampAndMissing(t *testing.T) {
	c := &doIt{What: "x"}
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	decide.Stamp(c, decide.Actor{Org: "acme", User: "alice"}, at)
	if b := decide.ByOf(c); b.Org != "acme" || b.User != "alice" || !b.At.Equal(at) || c.What != "x" {
		t.Fatalf("stamped %+v", c)
	}
	var nilCmd *doIt
	for name, tc := range map[string]struct {
		cmd  decide.Command
		want bool
	}{"nil": {nil, true}, "nil pointer": {nilCmd, true}, "command": {c, false}} {
		if got := decide.Missing(tc.cmd); got != tc.want {
			t.Errorf("%s: Missing = %t, want %t", name, got, tc.want)
		}
	}
}
