package ledger_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/eventsig"
	"github.com/jsmplatform/jsm/services/trail/ledger"
)

// signedExport is an export as the trail writes it: entries signed by the
// contracts service's key, bodies rendered as data, JSON indented.
func signedExport(t *testing.T) (data []byte, trailKey string, signers *eventsig.Keys) {
	t.Helper()
	skey, vkey, err := eventsig.GenerateKey("contracts")
	if err != nil {
		t.Fatal(err)
	}
	contracts, err := eventsig.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	if signers, err = eventsig.ParseKeys(vkey); err != nil {
		t.Fatal(err)
	}
	s := signer(t, "jsm-trail")
	const n = 5
	hashes := ledger.Hashes{}
	var entries []ledger.ExportEntry
	for i := range n {
		body, err := structpb.NewStruct(map[string]any{"title": fmt.Sprintf("Managed SOC %d", i), "levels": float64(i + 2), "urgent": i%2 == 0})
		if err != nil {
			t.Fatal(err)
		}
		e, err := event.New(event.Envelope{
			ID: fmt.Sprintf("id-%d", i), Source: "/jsm/contracts", AggregateType: "contracts.contract",
			AggregateID: "c-1", Contract: "c-1", Parties: event.Parties{Customer: "acme", Provider: "itsec"},
			Actor: event.Actor{Org: "acme", User: "alice", Role: "org-admin"}, Correlation: "k-1", Causation: "cmd-1",
			Time:        time.Date(2026, 11, 23, 10, 0, i, 1234, time.UTC),
			TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		}, body)
		if err != nil {
			t.Fatal(err)
		}
		e.Position = uint64(10 + i)
		if err := contracts.Sign(&e); err != nil {
			t.Fatal(err)
		}
		entry := ledger.Entry{
			ID: e.ID, Position: e.Position, Type: e.Type, Source: e.Source, AggregateType: e.AggregateType,
			AggregateID: e.AggregateID, Contract: e.Contract, Customer: e.Parties.Customer, Provider: e.Parties.Provider,
			ActorOrg: e.Actor.Org, Actor: e.Actor.User, ActorRole: e.Actor.Role, Correlation: e.Correlation,
			Causation: e.Causation, SchemaVersion: int32(e.SchemaVersion), Time: e.Time, PayloadHash: ledger.PayloadHash(e.Data),
			TraceParent: e.TraceParent, Signer: e.Signer, Signature: e.Signature,
		}
		if _, err := hashes.Append(int64(i), entry.LeafHash()); err != nil {
			t.Fatal(err)
		}
		xe := ledger.ExportEntryOf(int64(i), entry, e.Data)
		if xe.Data, err = ledger.RenderData(xe); err != nil {
			t.Fatal(err)
		}
		entries = append(entries, xe)
	}
	root, err := tlog.TreeHash(n, hashes)
	if err != nil {
		t.Fatal(err)
	}
	note, err := s.Sign(ledger.Checkpoint{Origin: s.Name(), Size: n, Root: root})
	if err != nil {
		t.Fatal(err)
	}
	x := &ledger.Export{Format: ledger.ExportFormat, Origin: s.Name(), VerifierKey: s.VerifierKey(), Checkpoint: note,
		ExportedAt: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC), Filter: map[string]string{"contract_id": "c-1"}}
	for _, xe := range entries {
		if xe.Proof, err = tlog.ProveRecord(n, xe.LeafIndex, hashes); err != nil {
			t.Fatal(err)
		}
		x.Entries = append(x.Entries, xe)
	}
	if err := x.Seal(s, n, signers.VerifierKeys()); err != nil {
		t.Fatal(err)
	}
	if data, err = json.MarshalIndent(x, "", " "); err != nil {
		t.Fatal(err)
	}
	return data, s.VerifierKey(), signers
}

func verifyFile(data []byte, key string, signers *eventsig.Keys) error {
	x, err := ledger.ParseExport(data)
	if err != nil {
		return err
	}
	_, err = ledger.VerifyWith(x, ledger.VerifyOptions{Key: key, SignerKeys: signers, Render: ledger.RenderData})
	return err
}

// TestEveryFieldOfAnExportIsVerified changes every value of an export
// file, one at a time, found by walking its JSON (so a field added to the
// format is covered without touching this test), and each line of the
// signed manifest: every change fails verification, and the failure names
// the entry and the field.
func TestEveryFieldOfAnExportIsVerified(t *testing.T) {
	data, key, signers := signedExport(t)
	if err := verifyFile(data, key, signers); err != nil {
		t.Fatalf("the export as written: %v", err)
	}
	// Also against the signer keys its own signed manifest lists.
	if err := verifyFile(data, key, nil); err != nil {
		t.Fatalf("the export against the keys of its manifest: %v", err)
	}
	var doc any
	if err := decodeNumbers(data, &doc); err != nil {
		t.Fatal(err)
	}
	flips := 0
	for _, leaf := range leaves(doc, nil) {
		changed := setAt(clone(t, doc), leaf.path, flip(leaf.value))
		out, err := json.MarshalIndent(changed, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		flips++
		checkFails(t, out, key, signers, leaf.path)
	}
	// Each line of the signed manifest, on its own.
	manifest := doc.(map[string]any)["manifest"].(string)
	lines := strings.SplitAfter(manifest, "\n")
	for i := range lines {
		if lines[i] == "" || lines[i] == "\n" {
			continue
		}
		changed := append([]string(nil), lines...)
		changed[i] = flip(changed[i]).(string)
		out, err := json.MarshalIndent(setAt(clone(t, doc), []any{"manifest"}, strings.Join(changed, "")), "", " ")
		if err != nil {
			t.Fatal(err)
		}
		flips++
		checkFails(t, out, key, signers, []any{"manifest"})
	}
	if flips < 5*20 {
		t.Fatalf("only %d values changed: the walk missed the entries", flips)
	}
}

// checkFails wants verification of the file to fail naming the entry (for
// a value under entries[i]) and the field.
func checkFails(t *testing.T, file []byte, key string, signers *eventsig.Keys, path []any) {
	t.Helper()
	err := verifyFile(file, key, signers)
	if err == nil {
		t.Errorf("changed %s: the export still verifies", pathText(path))
		return
	}
	msg := err.Error()
	if testing.Verbose() {
		t.Logf("changed %s: %s", pathText(path), msg)
	}
	want := []string{}
	if len(path) >= 3 && path[0] == "entries" {
		want = append(want, fmt.Sprintf("entry %d", path[1]), "field "+fieldText(path[2:]))
	} else {
		want = append(want, "field "+path[0].(string))
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("changed %s: verification says %q, which does not name %q", pathText(path), msg, w)
		}
	}
}

// fieldText is the field an entry's failure must name: the entry's field,
// or within data the JSON path (data.title), within a list the list.
func fieldText(path []any) string {
	name := path[0].(string)
	if name != "data" {
		return name
	}
	for _, p := range path[1:] {
		switch p := p.(type) {
		case string:
			name += "." + p
		case int:
			name += "[" + strconv.Itoa(p) + "]"
		}
	}
	return name
}

func pathText(path []any) string {
	var b strings.Builder
	for _, p := range path {
		fmt.Fprintf(&b, "/%v", p)
	}
	return b.String()
}

type leaf struct {
	path  []any
	value any
}

// leaves are every scalar value of a JSON document with its path.
func leaves(v any, path []any) []leaf {
	switch v := v.(type) {
	case map[string]any:
		var out []leaf
		for k, x := range v {
			out = append(out, leaves(x, append(append([]any(nil), path...), k))...)
		}
		return out
	case []any:
		var out []leaf
		for i, x := range v {
			out = append(out, leaves(x, append(append([]any(nil), path...), i))...)
		}
		return out
	default:
		return []leaf{{path, v}}
	}
}

// flip changes a value to another of the same JSON kind; a string keeps
// its form where it can (a digit for a digit, a letter for a letter), so
// the change is a real one and not only a parse error.
func flip(v any) any {
	switch v := v.(type) {
	case string:
		if v == "" {
			return "x"
		}
		r, size := utf8.DecodeRuneInString(v)
		switch {
		case r >= '0' && r <= '8', r >= 'a' && r <= 'y', r >= 'A' && r <= 'Y':
			r++
		case r == '9':
			r = '0'
		case r == 'z':
			r = 'a'
		case r == 'Z':
			r = 'A'
		default:
			r = 'x'
		}
		return string(r) + v[size:]
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return json.Number(strconv.FormatInt(n+1, 10))
		}
		f, _ := v.Float64()
		return json.Number(strconv.FormatFloat(f+1, 'g', -1, 64))
	case bool:
		return !v
	default:
		return "x" // null becomes a string
	}
}

func setAt(doc any, path []any, v any) any {
	if len(path) == 0 {
		return v
	}
	switch d := doc.(type) {
	case map[string]any:
		d[path[0].(string)] = setAt(d[path[0].(string)], path[1:], v)
	case []any:
		d[path[0].(int)] = setAt(d[path[0].(int)], path[1:], v)
	}
	return doc
}

func clone(t *testing.T, doc any) any {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := decodeNumbers(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func decodeNumbers(b []byte, v *any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

// A signature by a key the verifier does not pin, or by another area's
// pinned key, fails and names the signer.
func TestExportSignerIsCheckedAgainstPinnedKeys(t *testing.T) {
	data, key, _ := signedExport(t)
	_, otherContracts, err := eventsig.GenerateKey("contracts")
	if err != nil {
		t.Fatal(err)
	}
	_, incidents, err := eventsig.GenerateKey("incidents")
	if err != nil {
		t.Fatal(err)
	}
	for _, vkeys := range []string{otherContracts, incidents} {
		keys, err := eventsig.ParseKeys(vkeys)
		if err != nil {
			t.Fatal(err)
		}
		err = verifyFile(data, key, keys)
		if err == nil || !strings.Contains(err.Error(), "entry 0") || !strings.Contains(err.Error(), "field signer") {
			t.Errorf("pinned %s: verification says %v, want a failure of entry 0's signer", vkeys, err)
		}
	}
}
