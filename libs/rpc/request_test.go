package rpc_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/rpc"
)

// FuzzRequestHeaders feeds the correlation and traceparent headers any
// authenticated caller can send. A correlation id is either refused
// invalid_argument or in its bounds; a traceparent out of its bounds is
// dropped, never passed on.
func FuzzRequestHeaders(f *testing.F) {
	f.Add("vuln-42", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Add(strings.Repeat("c", 6<<10), strings.Repeat("t", 6<<10))
	f.Add("a b", "\x00")
	f.Add("ünïcode", "")
	f.Add("", "00-0-0-0")
	f.Fuzz(func(t *testing.T, correlation, traceParent string) {
		h := http.Header{}
		h.Set(rpc.HeaderCorrelation, correlation)
		h.Set("traceparent", traceParent)
		corr, tp, err := rpc.RequestHeaders(h)
		if err != nil {
			if connect.CodeOf(err) != connect.CodeInvalidArgument || !errors.Is(err, event.ErrOutOfBounds) {
				t.Fatalf("refused with %v, want invalid_argument", err)
			}
			return
		}
		if event.CheckToken("correlation", corr, event.MaxRefLen) != nil || event.CheckToken("traceparent", tp, event.MaxTraceParentLen) != nil {
			t.Fatalf("passed on out of bounds: %q %q", corr, tp)
		}
		if len(correlation) > event.MaxRefLen {
			t.Fatalf("accepted a correlation id of %d bytes", len(correlation))
		}
	})
}
