package rpc_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/jsmplatform/jsm/libs/rpc"
)

// /metrics counts RPCs by procedure and outcome, beside the health endpoints.
func TestHostServesRPCMetrics(t *testing.T) {
	f := start(t, rpc.HostConfig{}, &echoService{})
	ctx := t.Context()
	waitFor(t, "ready", func() bool { return f.get(t, "/readyz") == http.StatusOK })
	if err := f.echo(ctx, f.token, "hi"); err != nil {
		t.Fatal(err)
	}
	if err := f.echo(ctx, "", "who?"); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("no token: %v", err)
	}
	resp, err := http.Get(f.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics = %d", resp.StatusCode)
	}
	for _, want := range []string{
		`jsm_rpc_requests_total{code="ok",procedure="/test.v1.EchoService/Echo"}`,
		`jsm_rpc_requests_total{code="unauthenticated",procedure="/test.v1.EchoService/Echo"}`,
		`jsm_rpc_duration_seconds_bucket{procedure="/test.v1.EchoService/Echo",le="0.005"}`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
