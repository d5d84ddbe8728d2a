package svcmain_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/jsmplatform/jsm/libs/auth"
	"github.com/jsmplatform/jsm/libs/rpc"
	"github.com/jsmplatform/jsm/libs/svcmain"
	"github.com/jsmplatform/jsm/libs/testkit"
)

const echoProcedure = "/test.v1.EchoService/Echo"

// echo is the smallest service svcmain can run.
type echo struct{}

func (echo) Name() string                  { return "echo" }
func (echo) Migrate(context.Context) error { return nil }
func (echo) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (echo) Policy() auth.Policy {
	return auth.Policy{Procedures: map[string]auth.Permission{echoProcedure: "echo"}, Roles: map[string][]auth.Permission{"user": {"echo"}}}
}
func (echo) Handlers(opts ...connect.HandlerOption) []rpc.Handler {
	h := connect.NewUnaryHandler(echoProcedure,
		func(_ context.Context, req *connect.Request[wrapperspb.StringValue]) (*connect.Response[wrapperspb.StringValue], error) {
			return connect.NewResponse(req.Msg), nil
		}, opts...)
	return []rpc.Handler{{Path: echoProcedure, Service: "test.v1.EchoService", Handler: h}}
}

// A service run alone limits the rate of its callers with no setting given,
// and serves neither /metrics nor gRPC reflection unless told to.
func TestStandaloneServiceLimitsByDefault(t *testing.T) {
	nats := testkit.StartNATS(t)
	dsn := testkit.Postgres(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()

	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "jwt.pub")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}

	done := make(chan error, 1)
	go func() {
		build := func(context.Context, svcmain.Deps) (rpc.Service, error) { return echo{}, nil }
		done <- svcmain.Run("echo", addr, build, slog.New(slog.NewTextHandler(testWriter{t}, nil)), []string{"--nats-url", nats.URL(), "--pg-dsn", dsn, "--jwt-public-key", keyFile})
	}()
	stopped := false
	t.Cleanup(func() {
		if stopped {
			return
		}
		// Run stops on SIGINT, which it catches while it runs.
		_ = syscall.Kill(syscall.Getpid(), syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("the service did not stop")
		}
	})
	base := "http://" + addr
	status := func(method, path, contentType string) int {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(""))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	deadline := time.Now().Add(30 * time.Second)
	for status(http.MethodGet, "/readyz", "") != http.StatusOK {
		select {
		case err := <-done:
			stopped = true
			t.Fatalf("the service stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the service never became ready")
		}
		time.Sleep(20 * time.Millisecond)
	}

	if code := status(http.MethodGet, "/metrics", ""); code != http.StatusNotFound {
		t.Errorf("/metrics by default: %d, want 404", code)
	}
	if code := status(http.MethodPost, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", "application/grpc"); code != http.StatusNotFound {
		t.Errorf("reflection by default: %d, want 404", code)
	}

	// A flood from one address is cut off: far more calls than the default
	// burst, faster than the default rate refills it.
	var limited, unauthenticated atomic.Int64
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for range 60 {
				switch status(http.MethodPost, echoProcedure, "application/json") {
				case http.StatusTooManyRequests:
					limited.Add(1)
				case http.StatusUnauthorized:
					unauthenticated.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if limited.Load() == 0 || unauthenticated.Load() == 0 {
		t.Fatalf("1200 calls from one address: %d refused for the rate, %d unauthenticated; want both", limited.Load(), unauthenticated.Load())
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
