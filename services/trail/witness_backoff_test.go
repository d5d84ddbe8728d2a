package trail_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jsmplatform/jsm/libs/testkit"
	"github.com/jsmplatform/jsm/services/trail"
	"github.com/jsmplatform/jsm/services/trail/app"
	"github.com/jsmplatform/jsm/services/trail/ledger"
)

// TestWitnessRetriesWithBackoff: a witness that fails is retried after a
// wait that doubles, and its cosignature is stored once it answers.
func TestWitnessRetriesWithBackoff(t *testing.T) {
	skey, _, err := ledger.GenerateKey("backoff.example.com/trail")
	if err != nil {
		t.Fatal(err)
	}
	_, wkey, _ := ed25519.GenerateKey(nil)
	const name = "flaky.example.org"
	raw := append([]byte{4}, wkey.Public().(ed25519.PublicKey)...)
	sum := sha256.Sum256(append([]byte(name+"\n"), raw...))
	vkey := fmt.Sprintf("%s+%x+%s", name, sum[:4], base64.StdEncoding.EncodeToString(raw))

	// Fails three times (503, then 404, then 503), then cosigns.
	var mu sync.Mutex
	var at []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		at = append(at, time.Now())
		n := len(at)
		mu.Unlock()
		switch {
		case r.URL.Path != "/add-checkpoint":
			http.NotFound(w, r)
		case n == 1 || n == 3:
			http.Error(w, "busy", http.StatusServiceUnavailable)
		case n == 2:
			http.NotFound(w, r)
		default:
			_, signed, _ := strings.Cut(string(body), "\n\n")
			text, _, _ := strings.Cut(signed, "\n\n")
			text += "\n"
			sig := binary.BigEndian.AppendUint64(nil, 1700000000)
			sig = append(sig, ed25519.Sign(wkey, fmt.Appendf(nil, "cosignature/v1\ntime 1700000000\n%s", text))...)
			_, _ = fmt.Fprintf(w, "— %s %s\n", name, base64.StdEncoding.EncodeToString(append(sum[:4:4], sig...)))
		}
	}))
	t.Cleanup(srv.Close)
	w, err := app.NewWitness(srv.URL, vkey)
	if err != nil {
		t.Fatal(err)
	}

	n := testkit.StartNATS(t)
	store, pool := n.Store(), testkit.PostgresPool(t)
	// No witnesses in the deps: this test runs WitnessEvery itself, with
	// short waits.
	s, err := trail.New(trail.Deps{Store: store, Pool: pool, SigningKey: skey, ReadWait: 2 * time.Second, CheckpointEvery: 2, CheckpointInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	client := serveTrail(t, s)
	pos := appendDrafts(t, store, 2)
	head := checkpoint(t, client, pos)

	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		_ = s.App().WitnessEvery(runCtx, w, app.Witnessing{
			Client: http.DefaultClient, Poll: 10 * time.Millisecond, MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second, Log: slog.Default(),
		})
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })

	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r := checkpoint(t, client, 0)
		if r.CosignedSize == head.Size {
			openCosigned(t, r, w)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not cosigned: %v", r)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(at) != 4 {
		t.Fatalf("%d requests, want 4 (three failures, then the cosignature)", len(at))
	}
	for i, want := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond} {
		if gap := at[i+1].Sub(at[i]); gap < want {
			t.Errorf("retry %d after %v, want at least %v", i+1, gap, want)
		}
	}
}
