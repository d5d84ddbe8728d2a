package trail_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/jsmplatform/jsm/libs/auth"
	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/telemetry"
	"github.com/jsmplatform/jsm/libs/testkit"
	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
	trailv1 "github.com/jsmplatform/jsm/proto/gen/jsm/trail/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/trail/v1/trailv1connect"
	"github.com/jsmplatform/jsm/services/trail"
	"github.com/jsmplatform/jsm/services/trail/app"
	"github.com/jsmplatform/jsm/services/trail/ledger"
)

// litewitnessVersion pins the standard witness the trail is tested against:
// Filippo Valsorda's litewitness (C2SP tlog-witness, tlog-cosignature),
// built from its module through the Go module proxy and build cache.
const litewitnessVersion = "filippo.io/torchwood@v0.6.1"

// TestStandardWitnessCosigns runs the trail against a real litewitness: its
// checkpoints (under the deployment's origin) are cosigned, the cosigned
// checkpoint is served and verifies with the witness's key, a later one is
// cosigned through a consistency proof, a 409 is followed, and another tree
// under the same origin is refused.
func TestStandardWitnessCosigns(t *testing.T) {
	const origin = "jsm.example.com/trail"
	skey, _, err := ledger.GenerateKey("key-made-before-the-origin-was-set")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ledger.NewSignerFor(skey, origin)
	if err != nil {
		t.Fatal(err)
	}
	w := startLitewitness(t, origin, signer.VerifierKey())

	n := testkit.StartNATS(t)
	store, pool := n.Store(), testkit.PostgresPool(t)
	s, err := trail.New(trail.Deps{
		Store: store, Pool: pool, SigningKey: skey, Origin: origin, Witnesses: []app.Witness{w},
		ReadWait: 2 * time.Second, CheckpointEvery: 3, CheckpointInterval: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	client := serveTrail(t, s)

	// The first checkpoint: cosigned, served with the cosignature.
	first := cosignedAtLeast(t, client, appendDrafts(t, store, 3), 0)
	if first.Origin != origin || !strings.HasPrefix(first.CosignedCheckpoint, origin+"\n") {
		t.Fatalf("origin %q, cosigned checkpoint %q: want origin %q", first.Origin, first.CosignedCheckpoint, origin)
	}
	openCosigned(t, first, w)
	if got := cosignedSizeMetric(t, w.Verifier.Name()); got != float64(first.CosignedSize) {
		t.Fatalf("jsm_trail_witness_cosigned_size = %v, want %d", got, first.CosignedSize)
	}

	// A later checkpoint: the witness holds the first size and accepts the
	// larger one only with a valid consistency proof from it.
	second := cosignedAtLeast(t, client, appendDrafts(t, store, 4), first.CosignedSize)
	c2 := openCosigned(t, second, w)
	if c2.Size <= int64(first.CosignedSize) {
		t.Fatalf("second cosigned size %d, first %d", c2.Size, first.CosignedSize)
	}

	// Told the wrong old size, the trail learns the witness's from the 409
	// and proves consistency from there.
	head := app.Head{Checkpoint: c2, Note: second.Checkpoint}
	if second.Size != second.CosignedSize {
		t.Fatalf("latest checkpoint %d, cosigned %d: want the trail quiet", second.Size, second.CosignedSize)
	}
	if got, err := s.App().Submit(ctx, http.DefaultClient, w, head, 1); err != nil || got != c2.Size {
		t.Fatalf("submit with a stale old size: size %d, err %v", got, err)
	}

	// A fork: another tree under the same origin, signed with the log's
	// own key, extending the size the witness holds. The witness refuses it
	// (422), with the proof of the forked tree or with the real tree's.
	forkSize := c2.Size + 5
	forkHashes := treeOf(t, "another history", forkSize)
	forkRoot, err := tlog.TreeHash(forkSize, forkHashes)
	if err != nil {
		t.Fatal(err)
	}
	forkNote, err := signer.Sign(ledger.Checkpoint{Origin: origin, Size: forkSize, Root: forkRoot})
	if err != nil {
		t.Fatal(err)
	}
	proof, err := tlog.ProveTree(forkSize, c2.Size, forkHashes)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(w.URL+"/add-checkpoint", "", bytes.NewReader(ledger.AddCheckpointRequest(c2.Size, proof, forkNote)))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("forked checkpoint: status %d, want 422", resp.StatusCode)
	}
	sameSize, err := signer.Sign(ledger.Checkpoint{Origin: origin, Size: c2.Size, Root: tlog.RecordHash([]byte("split view"))})
	if err != nil {
		t.Fatal(err)
	}
	split, _ := ledger.ParseCheckpoint(strings.SplitN(sameSize, "\n\n", 2)[0] + "\n")
	if _, err := s.App().Submit(ctx, http.DefaultClient, w, app.Head{Checkpoint: split, Note: sameSize}, c2.Size); !errors.Is(err, app.ErrWitnessBadProof) {
		t.Fatalf("split view submitted: %v, want ErrWitnessBadProof", err)
	}

	// A log the witness does not follow: 403.
	other, err := ledger.NewSignerFor(skey, "other.example.com/trail")
	if err != nil {
		t.Fatal(err)
	}
	otherNote, err := other.Sign(ledger.Checkpoint{Origin: "other.example.com/trail", Size: c2.Size, Root: c2.Root})
	if err != nil {
		t.Fatal(err)
	}
	oc, _ := ledger.ParseCheckpoint(strings.SplitN(otherNote, "\n\n", 2)[0] + "\n")
	if _, err := s.App().Submit(ctx, http.DefaultClient, w, app.Head{Checkpoint: oc, Note: otherNote}, 0); !errors.Is(err, app.ErrWitnessUnknownLog) {
		t.Fatalf("unknown log submitted: %v, want ErrWitnessUnknownLog", err)
	}

	// The witness still holds the real tree: what it cosigned stays served.
	last := checkpoint(t, client, 0)
	if last.CosignedSize != uint64(c2.Size) {
		t.Fatalf("cosigned size after the refusals: %d, want %d", last.CosignedSize, c2.Size)
	}
	openCosigned(t, last, w)
}

// startLitewitness builds litewitness and witnessctl at the pinned version,
// registers the log (origin and verifier key) and starts the witness with
// its key in an in-process ssh-agent, as litewitness expects.
func startLitewitness(t *testing.T, origin, logKey string) app.Witness {
	t.Helper()
	bin := t.TempDir()
	for _, cmd := range []string{"litewitness", "witnessctl"} {
		run(t, bin, "go", "install", strings.Replace(litewitnessVersion, "@", "/cmd/"+cmd+"@", 1))
	}
	db := filepath.Join(t.TempDir(), "witness.db")
	run(t, "", filepath.Join(bin, "witnessctl"), "add-log", "-db", db, "-origin", origin)
	run(t, "", filepath.Join(bin, "witnessctl"), "add-key", "-db", db, "-origin", origin, "-key", logKey)

	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	sock, fingerprint := sshAgent(t, key)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	const name = "witness.example.org/test"
	var out bytes.Buffer
	cmd := exec.Command(filepath.Join(bin, "litewitness"), "-name", name, "-db", db, "-ssh-agent", sock, "-key", fingerprint, "-listen", addr)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("litewitness:\n%s", out.String())
		}
	})
	url := "http://" + addr
	for deadline := time.Now().Add(20 * time.Second); ; {
		resp, err := http.Get(url + "/")
		if err == nil {
			_ = resp.Body.Close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("litewitness exited:\n%s", out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("litewitness not listening on %s:\n%s", addr, out.String())
		}
	}
	// The witness's verifier key, from the spec (c2sp.org/tlog-cosignature):
	// name+hash+base64(0x04 || key), hash = SHA-256(name || "\n" || 0x04 || key)[:4].
	raw := append([]byte{4}, pub...)
	sum := sha256.Sum256(append([]byte(name+"\n"), raw...))
	w, err := app.NewWitness(url, fmt.Sprintf("%s+%x+%s", name, sum[:4], base64.StdEncoding.EncodeToString(raw)))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// sshAgent serves key from an in-process ssh-agent on a unix socket and
// returns the socket and the key's SHA256 fingerprint.
func sshAgent(t *testing.T, key ed25519.PrivateKey) (sock, fingerprint string) {
	t.Helper()
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: key}); err != nil {
		t.Fatal(err)
	}
	// A unix socket path must be short: t.TempDir's can exceed the limit.
	dir, err := os.MkdirTemp("", "lw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock = filepath.Join(dir, "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _ = agent.ServeAgent(keyring, c); _ = c.Close() }()
		}
	}()
	pub, err := ssh.NewPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return sock, ssh.FingerprintSHA256(pub)
}

func run(t *testing.T, gobin string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	if gobin != "" {
		// Outside any module or workspace, into gobin; the build cache
		// keeps it quick after the first time.
		cmd.Dir = gobin
		cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOWORK=off", "GOFLAGS=")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// serveTrail runs s behind the production auth interceptor and returns an
// auditor's client.
func serveTrail(t *testing.T, s *trail.Service) trailv1connect.TrailServiceClient {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.VerifierConfig{Issuer: auth.DevIssuer, Audience: auth.DevAudience, Keys: []crypto.PublicKey{pub}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = s.Run(runCtx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	mux := http.NewServeMux()
	for _, h := range s.Handlers(connect.WithInterceptors(auth.NewInterceptor(v, s.Policy()))) {
		mux.Handle(h.Path, h.Handler)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	tok, err := auth.Mint(key, auth.DevIssuer, auth.DevAudience, auth.Principal{Org: "acme", User: "ana", Roles: []string{"auditor"}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return trailv1connect.NewTrailServiceClient(http.DefaultClient, srv.URL, connect.WithInterceptors(&headers{token: tok}))
}

// appendDrafts appends n events and returns the last position.
func appendDrafts(t *testing.T, store interface {
	Append(context.Context, uint64, ...event.Event) (uint64, error)
}, n int) uint64 {
	t.Helper()
	var pos uint64
	for range n {
		id := event.NewID()
		e, err := event.New(event.Envelope{
			ID: event.NewID(), Source: "/jsm/contracts", AggregateType: "contracts.contract", AggregateID: id, Contract: id,
			Parties: event.Parties{Customer: "acme", Provider: "itsec"}, Actor: event.Actor{Org: "acme", User: "ana"}, Time: time.Now(),
		}, &contractsv1.ContractDrafted{ContractId: id, CustomerOrgId: "acme", ProviderOrgId: "itsec", Title: "witnessed"})
		if err != nil {
			t.Fatal(err)
		}
		if pos, err = store.Append(ctx, 0, e); err != nil {
			t.Fatal(err)
		}
	}
	return pos
}

func checkpoint(t *testing.T, c trailv1connect.TrailServiceClient, minPosition uint64) *trailv1.GetCheckpointResponse {
	t.Helper()
	return must[trailv1.GetCheckpointResponse](t)(c.GetCheckpoint(ctx, connect.NewRequest(&trailv1.GetCheckpointRequest{MinPosition: minPosition})))
}

// cosignedAtLeast waits until a checkpoint covering pos is cosigned at a
// size beyond above.
func cosignedAtLeast(t *testing.T, c trailv1connect.TrailServiceClient, pos, above uint64) *trailv1.GetCheckpointResponse {
	t.Helper()
	checkpoint(t, c, pos)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r := checkpoint(t, c, 0)
		if r.CosignedSize > above && r.CosignedSize == r.Size {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("no cosigned checkpoint above %d: %v", above, r)
		}
	}
}

// openCosigned checks the served cosigned checkpoint with the trail's key
// and the witness's, through golang.org/x/mod/sumdb/note.
func openCosigned(t *testing.T, r *trailv1.GetCheckpointResponse, w app.Witness) ledger.Checkpoint {
	t.Helper()
	logKey, err := note.NewVerifier(r.VerifierKey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open([]byte(r.CosignedCheckpoint), note.VerifierList(logKey, w.Verifier))
	if err != nil {
		t.Fatalf("open cosigned checkpoint: %v\n%s", err, r.CosignedCheckpoint)
	}
	if len(n.Sigs) != 2 || n.Sigs[1].Name != w.Verifier.Name() && n.Sigs[0].Name != w.Verifier.Name() {
		t.Fatalf("cosigned checkpoint verified by %v, want the log and %s", n.Sigs, w.Verifier.Name())
	}
	c, err := ledger.ParseCheckpoint(n.Text)
	if err != nil {
		t.Fatal(err)
	}
	if uint64(c.Size) != r.CosignedSize {
		t.Fatalf("cosigned checkpoint of size %d, served as %d", c.Size, r.CosignedSize)
	}
	// The witness's signature does not verify over any other checkpoint.
	forged := strings.Replace(r.CosignedCheckpoint, fmt.Sprintf("\n%d\n", c.Size), fmt.Sprintf("\n%d\n", c.Size+1), 1)
	if _, err := note.Open([]byte(forged), note.VerifierList(w.Verifier)); err == nil {
		t.Fatal("a cosignature verified over another checkpoint")
	}
	return c
}

// treeOf is the tree of size leaves made from seed, as a hash reader.
func treeOf(t *testing.T, seed string, size int64) tlog.HashReaderFunc {
	t.Helper()
	var stored []tlog.Hash
	for i := range size {
		hashes, err := tlog.StoredHashes(i, []byte(fmt.Sprintf("%s %d", seed, i)), tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(idx))
			for j, x := range idx {
				out[j] = stored[x]
			}
			return out, nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, hashes...)
	}
	return func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for j, x := range idx {
			out[j] = stored[x]
		}
		return out, nil
	}
}

// cosignedSizeMetric reads jsm_trail_witness_cosigned_size of a witness.
func cosignedSizeMetric(t *testing.T, witness string) float64 {
	t.Helper()
	families, err := telemetry.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "jsm_trail_witness_cosigned_size" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "witness" && l.GetValue() == witness {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no jsm_trail_witness_cosigned_size for %s", witness)
	return 0
}
