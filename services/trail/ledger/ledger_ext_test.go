package ledger_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/jsmplatform/jsm/services/trail/ledger"
)

// log is a small trail built in memory: entries, bodies and the tree.
type log struct {
	entries  []ledger.Entry
	payloads [][]byte
	hashes   ledger.Hashes
}

func newLog(t testing.TB, n int) *log {
	t.Helper()
	l := &log{hashes: ledger.Hashes{}}
	base := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for i := range n {
		payload := fmt.Appendf(nil, "body of event %d", i)
		e := ledger.Entry{
			ID: fmt.Sprintf("id-%d", i), Position: uint64(i + 1), Type: "jsm.contracts.v1.ContractDrafted",
			AggregateType: "contracts.contract", AggregateID: fmt.Sprintf("c-%d", i%3), Contract: fmt.Sprintf("c-%d", i%3),
			Customer: "acme", Provider: "itsec", ActorOrg: "acme", Actor: "alice", SchemaVersion: 1,
			Time: base.Add(time.Duration(i) * time.Second), PayloadHash: ledger.PayloadHash(payload),
		}
		if _, err := l.hashes.Append(int64(i), e.LeafHash()); err != nil {
			t.Fatal(err)
		}
		l.entries, l.payloads = append(l.entries, e), append(l.payloads, payload)
	}
	return l
}

func (l *log) root(t testing.TB, size int64) tlog.Hash {
	t.Helper()
	h, err := tlog.TreeHash(size, l.hashes)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (l *log) export(t testing.TB, s *ledger.Signer, size int64, picks ...int) *ledger.Export {
	t.Helper()
	c := ledger.Checkpoint{Origin: s.Name(), Size: size, Root: l.root(t, size)}
	signed, err := s.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	x := &ledger.Export{Format: ledger.ExportFormat, Origin: s.Name(), VerifierKey: s.VerifierKey(), Checkpoint: signed,
		ExportedAt: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC), Filter: map[string]string{"contract_id": "c-1"}}
	for _, i := range picks {
		proof, err := tlog.ProveRecord(size, int64(i), l.hashes)
		if err != nil {
			t.Fatal(err)
		}
		xe := ledger.ExportEntryOf(int64(i), l.entries[i], l.payloads[i])
		xe.Proof = proof
		x.Entries = append(x.Entries, xe)
	}
	if err := x.Seal(s, size, nil); err != nil {
		t.Fatal(err)
	}
	return x
}

func signer(t testing.TB, name string) *ledger.Signer {
	t.Helper()
	skey, _, err := ledger.GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ledger.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// roundTrip writes and reads the file, as verify does from disk.
func roundTrip(t testing.TB, x *ledger.Export) *ledger.Export {
	t.Helper()
	data, err := json.Marshal(x)
	if err != nil {
		t.Fatal(err)
	}
	y, err := ledger.ParseExport(data)
	if err != nil {
		t.Fatal(err)
	}
	return y
}

func TestExportVerifies(t *testing.T) {
	s := signer(t, "jsm-trail")
	l := newLog(t, 37)
	x := roundTrip(t, l.export(t, s, 37, 0, 5, 17, 36))
	c, err := ledger.Verify(x, s.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	if c.Size != 37 || c.Root != l.root(t, 37) {
		t.Fatalf("checkpoint %+v", c)
	}
}

// wantFailure checks that verification fails at entry `at`.
func wantFailure(t *testing.T, x *ledger.Export, vkey string, at int, reason string) {
	t.Helper()
	_, err := ledger.Verify(x, vkey)
	var ve *ledger.VerifyError
	if !errors.As(err, &ve) {
		t.Fatalf("verify: got %v, want a located failure", err)
	}
	if ve.Entry != at || !strings.Contains(ve.Error(), reason) {
		t.Fatalf("verify failed at entry %d (%s), want entry %d (%s)", ve.Entry, ve.Error(), at, reason)
	}
}

func TestTamperingIsDetectedAndLocated(t *testing.T) {
	s := signer(t, "jsm-trail")
	l := newLog(t, 20)
	fresh := func() *ledger.Export { return roundTrip(t, l.export(t, s, 20, 1, 2, 3, 4, 9)) }

	t.Run("changed byte in a payload", func(t *testing.T) {
		x := fresh()
		x.Entries[2].Payload[0] ^= 1
		wantFailure(t, x, s.VerifierKey(), 2, "differs from the signed entry")
	})
	t.Run("changed metadata", func(t *testing.T) {
		x := fresh()
		x.Entries[3].ActorOrgID = "itsec"
		wantFailure(t, x, s.VerifierKey(), 3, "differs from the signed entry")
	})
	t.Run("deleted entry", func(t *testing.T) {
		x := fresh()
		x.Entries = append(x.Entries[:1], x.Entries[2:]...)
		wantFailure(t, x, s.VerifierKey(), 1, "removed or moved")
	})
	t.Run("deleted last entry", func(t *testing.T) {
		x := fresh()
		x.Entries = x.Entries[:4]
		wantFailure(t, x, s.VerifierKey(), 4, "missing")
	})
	t.Run("two entries swapped", func(t *testing.T) {
		x := fresh()
		x.Entries[1], x.Entries[2] = x.Entries[2], x.Entries[1]
		wantFailure(t, x, s.VerifierKey(), 1, "removed or moved")
	})
	t.Run("proof of another leaf", func(t *testing.T) {
		x := fresh()
		x.Entries[0].Proof = x.Entries[1].Proof
		wantFailure(t, x, s.VerifierKey(), 0, "inclusion proof")
	})
	t.Run("checkpoint signed by another key", func(t *testing.T) {
		other := signer(t, "jsm-trail")
		x := fresh()
		forged, err := other.Sign(ledger.Checkpoint{Origin: "jsm-trail", Size: 20, Root: l.root(t, 20)})
		if err != nil {
			t.Fatal(err)
		}
		x.Checkpoint = forged
		wantFailure(t, x, s.VerifierKey(), -1, "field checkpoint")
		x.VerifierKey = other.VerifierKey()
		wantFailure(t, x, s.VerifierKey(), -1, "not the key you trust")
	})
	t.Run("manifest signed by another key", func(t *testing.T) {
		other := signer(t, "jsm-trail")
		x := fresh()
		y := fresh()
		if err := y.Seal(other, 20, nil); err != nil {
			t.Fatal(err)
		}
		x.Manifest = y.Manifest
		wantFailure(t, x, s.VerifierKey(), -1, "field manifest")
	})
}

func TestConsistency(t *testing.T) {
	s := signer(t, "jsm-trail")
	l := newLog(t, 50)
	cp := func(n int64) ledger.Checkpoint {
		return ledger.Checkpoint{Origin: s.Name(), Size: n, Root: l.root(t, n)}
	}
	proof, err := tlog.ProveTree(50, 13, l.hashes)
	if err != nil {
		t.Fatal(err)
	}
	if err := ledger.CheckConsistency(cp(13), cp(50), proof); err != nil {
		t.Fatalf("consistent checkpoints: %v", err)
	}
	other := newLog(t, 50)
	other.entries[3].Actor = "mallory" // a rewritten history
	other.hashes = ledger.Hashes{}
	for i, e := range other.entries {
		if _, err := other.hashes.Append(int64(i), e.LeafHash()); err != nil {
			t.Fatal(err)
		}
	}
	forked := ledger.Checkpoint{Origin: s.Name(), Size: 50, Root: other.root(t, 50)}
	forkProof, err := tlog.ProveTree(50, 13, other.hashes)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		older, newer ledger.Checkpoint
		proof        tlog.TreeProof
	}{
		"split view: two roots for one size": {cp(50), forked, nil},
		"rewritten prefix":                   {cp(13), forked, forkProof},
		"rollback":                           {cp(50), cp(13), nil},
	} {
		if err := ledger.CheckConsistency(c.older, c.newer, c.proof); !errors.Is(err, ledger.ErrInconsistent) {
			t.Errorf("%s: got %v, want ErrInconsistent", name, err)
		}
	}
}

func TestCheckpointRoundTrip(t *testing.T) {
	s := signer(t, "jsm-trail")
	l := newLog(t, 9)
	c := ledger.Checkpoint{Origin: s.Name(), Size: 9, Root: l.root(t, 9)}
	signed, err := s.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ledger.OpenCheckpoint(signed, s.VerifierKey())
	if err != nil || got != c {
		t.Fatalf("open: %+v, %v", got, err)
	}
	if !strings.HasPrefix(signed, "jsm-trail\n9\n") || !strings.Contains(signed, "\n\n— jsm-trail ") {
		t.Fatalf("not a C2SP checkpoint note:\n%s", signed)
	}
	// A log signs only checkpoints of its own origin.
	other := signer(t, "other-log")
	mis, err := other.Sign(ledger.Checkpoint{Origin: "jsm-trail", Size: 9, Root: c.Root})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ledger.OpenCheckpoint(mis, other.VerifierKey()); !errors.Is(err, ledger.ErrBadCheckpoint) {
		t.Fatalf("origin not the key's name: %v", err)
	}
}

func FuzzParseCheckpoint(f *testing.F) {
	f.Add("jsm-trail\n9\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")
	f.Add("jsm-trail\n09\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nextension\n")
	f.Add("\n-1\n\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, text string) {
		c, err := ledger.ParseCheckpoint(text)
		if err != nil {
			return
		}
		// What parses re-encodes to the same first three lines.
		if !strings.HasPrefix(text, c.Body()) {
			t.Fatalf("%q parsed as %+v, which encodes as %q", text, c, c.Body())
		}
	})
}

func FuzzParseExport(f *testing.F) {
	s := signer(f, "jsm-trail")
	l := newLog(f, 5)
	good, err := json.Marshal(l.export(f, s, 5, 0, 3))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"format":"jsm-trail-export/v1","entries":[{"leaf_index":-1,"proof":["x"]}]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		x, err := ledger.ParseExport(data)
		if err != nil {
			return
		}
		// Whatever parses verifies or fails cleanly, never panics; and
		// only the untouched file verifies.
		if _, err := ledger.Verify(x, s.VerifierKey()); err == nil && string(data) != string(good) {
			y, _ := json.Marshal(x)
			if string(y) != string(good) {
				t.Fatalf("a changed export verified:\n%s", data)
			}
		}
	})
}

// Growing a tree batch by batch from each batch's frontier gives the
// same tree as growing it whole.
func TestAppenderMatchesWholeTree(t *testing.T) {
	l := newLog(t, 300)
	size, frontier := int64(0), ledger.Hashes{}
	for _, batch := range []int{1, 2, 5, 64, 100, 3, 125} {
		a := ledger.NewAppender(size, frontier, batch)
		for range batch {
			want, _ := tlog.StoredHashesForRecordHash(a.Size(), l.entries[a.Size()].LeafHash(), l.hashes)
			got, err := a.Append(l.entries[a.Size()].LeafHash())
			if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("record %d: stored hashes %v (%v), want %v", a.Size(), got, err, want)
			}
		}
		var err error
		size = a.Size()
		if frontier, err = a.Frontier(); err != nil {
			t.Fatal(err)
		}
		root, err := tlog.TreeHash(size, frontier)
		if err != nil || root != l.root(t, size) {
			t.Fatalf("root at %d from the frontier: %v, %v", size, root, err)
		}
	}
}
