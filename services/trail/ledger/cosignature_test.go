package ledger_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/jsmplatform/jsm/services/trail/ledger"
)

// cosigner signs cosignature/v1 lines by the spec (c2sp.org/tlog-cosignature),
// independently of the verifier under test.
type cosigner struct {
	name string
	key  ed25519.PrivateKey
	time uint64
}

func (c cosigner) vkey() string {
	raw := append([]byte{4}, c.key.Public().(ed25519.PublicKey)...)
	sum := sha256.Sum256(append([]byte(c.name+"\n"), raw...))
	return fmt.Sprintf("%s+%x+%s", c.name, sum[:4], base64.StdEncoding.EncodeToString(raw))
}

func (c cosigner) line(t *testing.T, text string) string {
	t.Helper()
	v, err := ledger.NewCosignatureVerifier(c.vkey())
	if err != nil {
		t.Fatal(err)
	}
	sig := binary.BigEndian.AppendUint64(nil, c.time)
	sig = append(sig, ed25519.Sign(c.key, fmt.Appendf(nil, "cosignature/v1\ntime %d\n%s", c.time, text))...)
	var hash [4]byte
	binary.BigEndian.PutUint32(hash[:], v.KeyHash())
	return "— " + c.name + " " + base64.StdEncoding.EncodeToString(append(hash[:], sig...)) + "\n"
}

func TestCosignatures(t *testing.T) {
	skey, _, err := ledger.GenerateKey("jsm.example.com/trail")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ledger.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	c := ledger.Checkpoint{Origin: s.Name(), Size: 7, Root: tlog.RecordHash([]byte("root"))}
	signed, err := s.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	_, wkey, _ := ed25519.GenerateKey(nil)
	w := cosigner{name: "witness.example.org", key: wkey, time: 1700000000}
	v, err := ledger.NewCosignatureVerifier(w.vkey())
	if err != nil {
		t.Fatal(err)
	}
	good := w.line(t, c.Body())

	got, err := ledger.OpenCosignature(signed, []byte("— other.example AAAA\n"+good), v)
	if err != nil || got.Line != good || got.Witness != w.name {
		t.Fatalf("OpenCosignature = %v, %v", got, err)
	}
	logKey, _ := note.NewVerifier(s.VerifierKey())
	n, err := note.Open([]byte(ledger.Cosigned(signed, []string{good})), note.VerifierList(logKey, v))
	if err != nil || len(n.Sigs) != 2 {
		t.Fatalf("open cosigned note: %v, %v", n, err)
	}

	_, other, _ := ed25519.GenerateKey(nil)
	for name, reply := range map[string]string{
		"empty":                  "",
		"another checkpoint":     w.line(t, ledger.Checkpoint{Origin: c.Origin, Size: 8, Root: c.Root}.Body()),
		"another key, same name": cosigner{name: w.name, key: other, time: 1}.line(t, c.Body()),
		"tampered time":          strings.Replace(good, good[len(good)-20:len(good)-10], strings.Repeat("A", 10), 1),
	} {
		if _, err := ledger.OpenCosignature(signed, []byte(reply), v); !errors.Is(err, ledger.ErrBadWitnessReply) {
			t.Errorf("%s: OpenCosignature = %v, want ErrBadWitnessReply", name, err)
		}
	}
}

func TestCosignatureVerifierKeys(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	good := cosigner{name: "w.example", key: key}.vkey()
	name, rest, _ := strings.Cut(good, "+")
	hash, b64, _ := strings.Cut(rest, "+")
	raw, _ := base64.StdEncoding.DecodeString(b64)
	ed := base64.StdEncoding.EncodeToString(append([]byte{1}, raw[1:]...))
	for _, tc := range []struct {
		vkey string
		ok   bool
	}{
		{good, true},
		{name + "+" + hash + "+" + ed, false},        // a log's Ed25519 key, not a cosignature key
		{"other.example+" + hash + "+" + b64, false}, // hash of another name
		{name + "+" + hash, false},                   // no key
		{"with space+" + hash + "+" + b64, false},    // invalid name
		{name + "+zzzzzzzz+" + b64, false},           // hash not hex
		{name + "+" + hash + "+" + b64[:20], false},  // short key
	} {
		_, err := ledger.NewCosignatureVerifier(tc.vkey)
		if (err == nil) != tc.ok {
			t.Errorf("NewCosignatureVerifier(%q) = %v, want ok %v", tc.vkey, err, tc.ok)
		}
	}
}

func TestSignerForOrigin(t *testing.T) {
	skey, _, err := ledger.GenerateKey("jsm-trail")
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := ledger.NewSigner(skey)
	for _, tc := range []struct {
		origin, want string
		ok           bool
	}{
		{"", "jsm-trail", true},
		{"jsm-trail", "jsm-trail", true},
		{"jsm.example.com/trail", "jsm.example.com/trail", true},
		{"with space", "", false},
		{"a+b", "", false},
	} {
		s, err := ledger.NewSignerFor(skey, tc.origin)
		if (err == nil) != tc.ok {
			t.Fatalf("NewSignerFor(%q) = %v, want ok %v", tc.origin, err, tc.ok)
		}
		if err != nil {
			continue
		}
		c := ledger.Checkpoint{Origin: s.Name(), Size: 1, Root: tlog.RecordHash([]byte("x"))}
		signed, err := s.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := ledger.OpenCheckpoint(signed, s.VerifierKey()); err != nil || got.Origin != tc.want || s.Name() != tc.want {
			t.Fatalf("origin %q: checkpoint %v, %v", tc.origin, got, err)
		}
		// The same Ed25519 key under the new name, which checks what the
		// key signed under its old name.
		if a, b := lastField(s.VerifierKey()), lastField(plain.VerifierKey()); a != b {
			t.Fatalf("origin %q: key %s, want %s", tc.origin, a, b)
		}
		oldNote, err := plain.Sign(ledger.Checkpoint{Origin: plain.Name(), Size: 2, Root: c.Root})
		if err != nil {
			t.Fatal(err)
		}
		vkey, err := s.VerifierKeyFor(plain.Name())
		if err != nil || vkey != plain.VerifierKey() {
			t.Fatalf("origin %q: VerifierKeyFor(%q) = %q, %v; want %q", tc.origin, plain.Name(), vkey, err, plain.VerifierKey())
		}
		if _, err := ledger.OpenCheckpoint(oldNote, vkey); err != nil {
			t.Fatal(err)
		}
	}
}

// lastField is a verifier key's key (name+hash+key; base64 may hold '+').
func lastField(vkey string) string { return strings.SplitN(vkey, "+", 3)[2] }

func TestWitnessProtocolText(t *testing.T) {
	h := tlog.RecordHash([]byte("a"))
	got := string(ledger.AddCheckpointRequest(3, tlog.TreeProof{h, h}, "o\n5\nR\n\n— o sig\n"))
	b := base64.StdEncoding.EncodeToString(h[:])
	if want := "old 3\n" + b + "\n" + b + "\n\no\n5\nR\n\n— o sig\n"; got != want {
		t.Fatalf("request = %q, want %q", got, want)
	}
	for _, tc := range []struct {
		body string
		want int64
		ok   bool
	}{
		{"12\n", 12, true}, {"0\n", 0, true}, {"12", 12, true},
		{"", 0, false}, {"-1\n", 0, false}, {"012\n", 0, false}, {"12 \n", 0, false}, {"x\n", 0, false},
	} {
		n, err := ledger.ParseKnownSize([]byte(tc.body))
		if (err == nil) != tc.ok || n != tc.want {
			t.Errorf("ParseKnownSize(%q) = %d, %v", tc.body, n, err)
		}
	}
}
