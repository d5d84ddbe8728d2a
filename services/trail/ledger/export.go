package ledger

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/eventsig"
)

// ExportFormat names the export file format. v2 signs every field of the
// file into its manifest (v1 left data, the filter and the export time
// unproven) and carries the services' signatures over the events.
const ExportFormat = "jsm-trail-export/v2"

// Export is an investigation file: entries with their bodies and inclusion
// proofs, the signed checkpoint the proofs are against, and a signed
// manifest that holds every other field of the file: the export's time
// and filter, the pinned event signer keys, and each entry's leaf index
// and canonical encoding in order. So an entry dropped, moved, added or
// changed in any field is caught, and the failure names the entry and the
// field. Data, the body rendered for people to read, is checked by
// rendering the proven payload again. It is JSON, self-contained and
// checkable offline.
type Export struct {
	Format      string            `json:"format"`
	Origin      string            `json:"origin"`
	VerifierKey string            `json:"verifier_key"`
	Checkpoint  string            `json:"checkpoint"`
	Manifest    string            `json:"manifest"`
	Filter      map[string]string `json:"filter,omitempty"`
	ExportedAt  time.Time         `json:"exported_at"`
	Entries     []ExportEntry     `json:"entries"`
}

// ExportEntry is one entry of an export: every field of the canonical
// entry, the event's body (binary protobuf, base64 in JSON), the body as
// JSON for people to read (Data, checked against the body), and its
// inclusion proof.
type ExportEntry struct {
	LeafIndex     int64           `json:"leaf_index"`
	Position      uint64          `json:"position"`
	ID            string          `json:"id"`
	Type          string          `json:"type"`
	Source        string          `json:"source,omitempty"`
	AggregateType string          `json:"aggregate_type,omitempty"`
	AggregateID   string          `json:"aggregate_id,omitempty"`
	ContractID    string          `json:"contract_id,omitempty"`
	CustomerOrgID string          `json:"customer_org_id,omitempty"`
	ProviderOrgID string          `json:"provider_org_id,omitempty"`
	ActorOrgID    string          `json:"actor_org_id,omitempty"`
	Actor         string          `json:"actor,omitempty"`
	ActorRole     string          `json:"actor_role,omitempty"`
	CorrelationID string          `json:"correlation_id,omitempty"`
	CausationID   string          `json:"causation_id,omitempty"`
	SchemaVersion int32           `json:"schema_version"`
	Time          time.Time       `json:"time"`
	TraceParent   string          `json:"trace_parent,omitempty"`
	Signer        string          `json:"signer,omitempty"`
	Signature     []byte          `json:"signature,omitempty"`
	Payload       []byte          `json:"payload"`
	Data          json.RawMessage `json:"data,omitempty"`
	Proof         []tlog.Hash     `json:"proof"`
}

// Entry is the canonical entry the export entry claims.
func (x ExportEntry) Entry() Entry {
	return Entry{
		ID: x.ID, Position: x.Position, Type: x.Type, Source: x.Source,
		AggregateType: x.AggregateType, AggregateID: x.AggregateID, Contract: x.ContractID,
		Customer: x.CustomerOrgID, Provider: x.ProviderOrgID,
		ActorOrg: x.ActorOrgID, Actor: x.Actor, ActorRole: x.ActorRole,
		Correlation: x.CorrelationID, Causation: x.CausationID, SchemaVersion: x.SchemaVersion,
		Time: x.Time, PayloadHash: PayloadHash(x.Payload),
		TraceParent: x.TraceParent, Signer: x.Signer, Signature: x.Signature,
	}
}

// Event is the event the export entry claims, as its signer signed it.
func (x ExportEntry) Event() event.Event {
	return event.Event{Envelope: event.Envelope{
		ID: x.ID, Type: x.Type, Source: x.Source, AggregateType: x.AggregateType, AggregateID: x.AggregateID,
		Contract: x.ContractID, Parties: event.Parties{Customer: x.CustomerOrgID, Provider: x.ProviderOrgID},
		Actor: event.Actor{Org: x.ActorOrgID, User: x.Actor, Role: x.ActorRole},
		Time:  x.Time, Correlation: x.CorrelationID, Causation: x.CausationID,
		SchemaVersion: int(x.SchemaVersion), TraceParent: x.TraceParent,
	}, Data: x.Payload, Position: x.Position, Signer: x.Signer, Signature: x.Signature}
}

// ExportEntryOf fills an export entry from a canonical entry and its body.
func ExportEntryOf(idx int64, e Entry, payload []byte) ExportEntry {
	return ExportEntry{
		LeafIndex: idx, Position: e.Position, ID: e.ID, Type: e.Type, Source: e.Source,
		AggregateType: e.AggregateType, AggregateID: e.AggregateID, ContractID: e.Contract,
		CustomerOrgID: e.Customer, ProviderOrgID: e.Provider,
		ActorOrgID: e.ActorOrg, Actor: e.Actor, ActorRole: e.ActorRole,
		CorrelationID: e.Correlation, CausationID: e.Causation, SchemaVersion: e.SchemaVersion,
		Time: e.Time.UTC(), TraceParent: e.TraceParent, Signer: e.Signer, Signature: e.Signature,
		Payload: payload,
	}
}

// Seal signs the manifest of x with s: the checkpoint's origin and size
// (of tree size), the export's time and filter, the pinned event signer
// keys (verifier keys; none when the trail pins none) and each entry's
// leaf index and canonical encoding.
func (x *Export) Seal(s *Signer, size int64, signers []string) error {
	m := manifest{origin: x.Origin, size: size, exportedAt: x.ExportedAt.UTC(), filter: x.Filter, signers: signers}
	for _, e := range x.Entries {
		m.leaves = append(m.leaves, e.LeafIndex)
		m.entries = append(m.entries, e.Entry().Canonical())
	}
	text, err := m.text()
	if err != nil {
		return err
	}
	x.ExportedAt = m.exportedAt
	x.Manifest, err = s.SignText(text)
	return err
}

type manifest struct {
	origin     string
	size       int64
	exportedAt time.Time
	filter     map[string]string
	signers    []string
	leaves     []int64
	entries    [][]byte // canonical encodings
}

// text is the manifest: the format, the origin, the tree size, the export
// time, the filter (JSON), the signer keys, the number of entries, then
// one line per entry: its leaf index and its canonical encoding (base64).
func (m manifest) text() (string, error) {
	filter, err := json.Marshal(m.filter) // sorted keys: one text per filter
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n%s\n%d\n%s\n%s\n%s\n%d\n", ExportFormat, m.origin, m.size,
		m.exportedAt.Format(time.RFC3339Nano), filter, strings.Join(m.signers, " "), len(m.leaves))
	for i, idx := range m.leaves {
		fmt.Fprintf(&b, "%d %s\n", idx, base64.StdEncoding.EncodeToString(m.entries[i]))
	}
	return b.String(), nil
}

func parseManifest(text string) (manifest, error) {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 7 || lines[0] != ExportFormat {
		return manifest{}, errors.New("not a " + ExportFormat + " manifest")
	}
	m := manifest{origin: lines[1]}
	var err error
	if m.size, err = strconv.ParseInt(lines[2], 10, 64); err != nil || m.size < 0 {
		return manifest{}, fmt.Errorf("tree size %q", lines[2])
	}
	if m.exportedAt, err = time.Parse(time.RFC3339Nano, lines[3]); err != nil {
		return manifest{}, fmt.Errorf("export time %q", lines[3])
	}
	if err := json.Unmarshal([]byte(lines[4]), &m.filter); err != nil {
		return manifest{}, fmt.Errorf("filter %q", lines[4])
	}
	m.signers = strings.Fields(lines[5])
	n, err := strconv.Atoi(lines[6])
	if err != nil || n < 0 || n != len(lines)-7 {
		return manifest{}, fmt.Errorf("%q entries, %d listed", lines[6], len(lines)-7)
	}
	for _, l := range lines[7:] {
		idxText, enc, ok := strings.Cut(l, " ")
		idx, err := strconv.ParseInt(idxText, 10, 64)
		if !ok || err != nil || idx < 0 {
			return manifest{}, fmt.Errorf("line %q", l)
		}
		canonical, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			return manifest{}, fmt.Errorf("line %q: %v", l, err)
		}
		m.leaves, m.entries = append(m.leaves, idx), append(m.entries, canonical)
	}
	return m, nil
}

// maxExportBytes bounds what ParseExport reads.
const maxExportBytes = 1 << 30

// ParseExport reads an export file. Every field of the file and of each
// entry is read on its own and must be written exactly as an export writes
// it (the value written back gives the same JSON): two spellings of one
// value, such as base64 with stray bits, would let a file differ from what
// was proven while it still verifies. A failure is a *VerifyError naming
// the entry and the field.
func ParseExport(data []byte) (*Export, error) {
	if len(data) > maxExportBytes {
		return nil, errors.New("export: file too large")
	}
	var x Export
	var entries []json.RawMessage
	top := fields(&x)
	top["entries"] = reflect.ValueOf(&entries).Elem()
	if err := decodeObject(data, top, -1); err != nil {
		return nil, err
	}
	if x.Format != ExportFormat {
		return nil, &VerifyError{Entry: -1, Field: "format", Reason: fmt.Sprintf("%q, want %q", x.Format, ExportFormat)}
	}
	x.Entries = make([]ExportEntry, len(entries))
	for i, raw := range entries {
		if err := decodeObject(raw, fields(&x.Entries[i]), i); err != nil {
			return nil, err
		}
	}
	return &x, nil
}

// fields are the JSON fields of the struct *ptr, by name.
func fields(ptr any) map[string]reflect.Value {
	v := reflect.ValueOf(ptr).Elem()
	out := map[string]reflect.Value{}
	for i := range v.NumField() {
		name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out[name] = v.Field(i)
		}
	}
	return out
}

// decodeObject decodes the JSON object data into the fields, each on its
// own, refusing unknown and repeated names and values not written the way
// encoding/json writes them.
func decodeObject(data []byte, into map[string]reflect.Value, entry int) error {
	fail := func(field, format string, args ...any) error {
		return &VerifyError{Entry: entry, Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return fail("", "not a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return fail("", "%v", err)
		}
		name, _ := t.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fail(name, "%v", err)
		}
		f, ok := into[name]
		switch {
		case !ok:
			return fail(name, "unknown field")
		case seen[name]:
			return fail(name, "given twice")
		}
		seen[name] = true
		if err := json.Unmarshal(raw, f.Addr().Interface()); err != nil {
			return fail(name, "%v", err)
		}
		if _, list := f.Interface().([]json.RawMessage); list {
			continue // the entries, each decoded on its own
		}
		again, err := json.Marshal(f.Interface())
		if err != nil {
			return fail(name, "%v", err)
		}
		var written bytes.Buffer
		if err := json.Compact(&written, raw); err != nil || !bytes.Equal(written.Bytes(), again) {
			return fail(name, "not written as an export writes it (%s reads back as %s)", clip(raw), clip(again))
		}
	}
	if _, err := dec.Token(); err != nil {
		return fail("", "%v", err)
	}
	if dec.More() {
		return fail("", "data after the document")
	}
	if _, err := dec.Token(); err != io.EOF {
		return fail("", "data after the document")
	}
	return nil
}

func clip(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "…"
	}
	return string(b)
}

// VerifyError locates the first thing in an export that fails.
type VerifyError struct {
	// Entry is the 0-based place of the failing entry in the file, -1 when
	// a field of the file itself (the checkpoint, the manifest) fails.
	Entry    int
	Position uint64
	// Field is the JSON name of the failing field, when one is to blame.
	Field  string
	Reason string
}

func (e *VerifyError) Error() string {
	where := ""
	switch {
	case e.Entry >= 0 && e.Position > 0:
		where = fmt.Sprintf("entry %d (position %d)", e.Entry, e.Position)
	case e.Entry >= 0:
		where = fmt.Sprintf("entry %d", e.Entry)
	}
	if e.Field != "" {
		if where != "" {
			where += ", "
		}
		where += "field " + e.Field
	}
	if where == "" {
		return e.Reason
	}
	return where + ": " + e.Reason
}

// Renderer renders an event's payload as the JSON an export's data holds;
// an error when it cannot (an event type it does not know).
type Renderer func(x ExportEntry) (json.RawMessage, error)

// VerifyOptions are what the verifier trusts and how it checks data.
type VerifyOptions struct {
	// Key is the trail's verifier key the caller trusts; empty: the file's
	// own key, which proves only that the file is intact.
	Key string
	// SignerKeys are the event signer keys the caller pins; nil: the keys
	// listed in the signed manifest (as trustworthy as Key).
	SignerKeys *eventsig.Keys
	// Render re-renders data from the payload; nil: RenderData, which
	// knows the event types linked into the program.
	Render Renderer
}

// Verify checks an export against the verifier key vkey (see
// VerifyOptions.Key), trusting the signer keys of its manifest and
// rendering data with RenderData: see VerifyWith.
func Verify(x *Export, vkey string) (Checkpoint, error) {
	return VerifyWith(x, VerifyOptions{Key: vkey})
}

// VerifyWith checks everything an export holds: the checkpoint's and the
// manifest's signatures under the trusted key; that the file's fields are
// those the manifest signs; that the entries are exactly those the
// manifest lists, in its order, each field equal to the signed canonical
// entry; each entry's inclusion proof against the checkpoint's root; each
// event's signature under the pinned signer keys (of its own area); and
// each entry's data against its payload rendered again. It returns the
// checkpoint, or a *VerifyError naming the entry and the field of the
// first failure.
func VerifyWith(x *Export, o VerifyOptions) (Checkpoint, error) {
	vkey := o.Key
	fail := func(i int, pos uint64, field, format string, args ...any) (Checkpoint, error) {
		return Checkpoint{}, &VerifyError{Entry: i, Position: pos, Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case vkey == "":
		vkey = x.VerifierKey
	case x.VerifierKey != vkey:
		return fail(-1, 0, "verifier_key", "%q is not the key you trust (%q)", x.VerifierKey, vkey)
	}
	c, err := OpenCheckpoint(x.Checkpoint, vkey)
	if err != nil {
		return fail(-1, 0, "checkpoint", "%v", err)
	}
	text, err := OpenNote(x.Manifest, vkey)
	if err != nil {
		return fail(-1, 0, "manifest", "%v", err)
	}
	m, err := parseManifest(text)
	if err != nil {
		return fail(-1, 0, "manifest", "%v", err)
	}
	switch {
	case m.origin != c.Origin || m.size != c.Size:
		return fail(-1, 0, "manifest", "for %s size %d, the checkpoint for %s size %d", m.origin, m.size, c.Origin, c.Size)
	case x.Origin != c.Origin:
		return fail(-1, 0, "origin", "%q, the signed checkpoint's is %q", x.Origin, c.Origin)
	case !x.ExportedAt.Equal(m.exportedAt) || x.ExportedAt.Location() != time.UTC:
		return fail(-1, 0, "exported_at", "%s, the signed manifest says %s", x.ExportedAt.Format(time.RFC3339Nano), m.exportedAt.Format(time.RFC3339Nano))
	case !maps.Equal(x.Filter, m.filter):
		return fail(-1, 0, "filter", "%v, the signed manifest says %v", x.Filter, m.filter)
	}
	signers := o.SignerKeys
	if signers == nil {
		if signers, err = eventsig.ParseKeys(strings.Join(m.signers, " ")); err != nil {
			return fail(-1, 0, "manifest", "signer keys: %v", err)
		}
	}
	for i, e := range x.Entries {
		if i >= len(m.leaves) {
			return fail(i, e.Position, "", "not in the signed manifest (it lists %d entries): an entry was added", len(m.leaves))
		}
		if e.LeafIndex != m.leaves[i] {
			return fail(i, e.Position, "leaf_index", "leaf %d where the signed manifest lists leaf %d: an entry was removed or moved", e.LeafIndex, m.leaves[i])
		}
		want, err := ParseCanonical(m.entries[i])
		if err != nil {
			return fail(i, e.Position, "", "the signed manifest's entry: %v", err)
		}
		if field, ok := firstDifference(e, want); !ok {
			return fail(i, e.Position, field, "differs from the signed entry")
		}
		if e.LeafIndex >= c.Size {
			return fail(i, e.Position, "leaf_index", "leaf %d beyond the checkpoint's %d entries", e.LeafIndex, c.Size)
		}
		if err := tlog.CheckRecord(e.Proof, c.Size, c.Root, e.LeafIndex, tlog.RecordHash(m.entries[i])); err != nil {
			return fail(i, e.Position, "proof", "inclusion proof of leaf %d fails: %v", e.LeafIndex, err)
		}
		if field, err := checkSigner(e, signers); err != nil {
			return fail(i, e.Position, field, "%v", err)
		}
		if field, err := checkData(e, o.Render); err != nil {
			return fail(i, e.Position, field, "%v", err)
		}
	}
	if len(x.Entries) < len(m.leaves) {
		return fail(len(x.Entries), 0, "entries", "missing: the signed manifest lists %d entries, the file has %d", len(m.leaves), len(x.Entries))
	}
	return c, nil
}

// firstDifference compares an export entry's fields with the signed
// canonical entry and names the first that differs (its JSON name).
func firstDifference(x ExportEntry, want Entry) (string, bool) {
	got := x.Entry()
	for _, f := range []struct {
		name string
		same bool
	}{
		{"position", got.Position == want.Position},
		{"id", got.ID == want.ID},
		{"type", got.Type == want.Type},
		{"source", got.Source == want.Source},
		{"aggregate_type", got.AggregateType == want.AggregateType},
		{"aggregate_id", got.AggregateID == want.AggregateID},
		{"contract_id", got.Contract == want.Contract},
		{"customer_org_id", got.Customer == want.Customer},
		{"provider_org_id", got.Provider == want.Provider},
		{"actor_org_id", got.ActorOrg == want.ActorOrg},
		{"actor", got.Actor == want.Actor},
		{"actor_role", got.ActorRole == want.ActorRole},
		{"correlation_id", got.Correlation == want.Correlation},
		{"causation_id", got.Causation == want.Causation},
		{"schema_version", got.SchemaVersion == want.SchemaVersion},
		{"time", got.Time.Equal(want.Time) && got.Time.Location() == time.UTC},
		{"payload", got.PayloadHash == want.PayloadHash},
		{"trace_parent", got.TraceParent == want.TraceParent},
		{"signer", got.Signer == want.Signer},
		{"signature", bytes.Equal(got.Signature, want.Signature)},
	} {
		if !f.same {
			return f.name, false
		}
	}
	// Whatever the field list above misses, the encodings catch.
	if !bytes.Equal(got.Canonical(), want.Canonical()) {
		return "entry", false
	}
	return "", true
}

// checkSigner checks the event's signature under the pinned keys: a
// signed entry must verify, and with keys pinned an unsigned one fails.
func checkSigner(x ExportEntry, keys *eventsig.Keys) (string, error) {
	if x.Signer == "" && keys.Len() == 0 {
		return "", nil // a trail that pins no keys logs unattributed events
	}
	err := keys.Verify(x.Event())
	switch eventsig.ReasonOf(err) {
	case "":
		return "", err
	case eventsig.BadSignature:
		return "signature", err
	default:
		return "signer", err
	}
}

// checkData checks data, the body rendered for people, against the
// payload rendered again, as JSON values (the rendering's spacing is not
// stable), naming the first path that differs.
func checkData(x ExportEntry, render Renderer) (string, error) {
	if len(x.Data) == 0 {
		return "", nil
	}
	if render == nil {
		render = RenderData
	}
	want, err := render(x)
	if err != nil {
		return "data", fmt.Errorf("cannot be checked: %w", err)
	}
	var a, b any
	if err := unmarshalNumbers(x.Data, &a); err != nil {
		return "data", err
	}
	if err := unmarshalNumbers(want, &b); err != nil {
		return "data", fmt.Errorf("rendering the payload: %w", err)
	}
	if path, same := sameJSON(a, b, "data"); !same {
		return path, fmt.Errorf("differs from the payload rendered again")
	}
	return "", nil
}

func unmarshalNumbers(data []byte, v *any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return dec.Decode(v)
}

// sameJSON compares two decoded JSON values and names the first path
// where they differ.
func sameJSON(a, b any, path string) (string, bool) {
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			return path, false
		}
		for _, k := range slices.Sorted(maps.Keys(av)) {
			if _, ok := bv[k]; !ok {
				return path + "." + k, false
			}
			if p, same := sameJSON(av[k], bv[k], path+"."+k); !same {
				return p, false
			}
		}
		for k := range bv {
			if _, ok := av[k]; !ok {
				return path + "." + k, false
			}
		}
		return "", true
	case []any:
		bv, ok := b.([]any)
		if !ok || len(av) != len(bv) {
			return path, false
		}
		for i := range av {
			if p, same := sameJSON(av[i], bv[i], fmt.Sprintf("%s[%d]", path, i)); !same {
				return p, false
			}
		}
		return "", true
	default:
		return path, a == b
	}
}

// RenderData is the trail's rendering of an entry's payload as data:
// protojson of the decoded (and upcast) body. It knows the event types
// linked into the program that calls it.
func RenderData(x ExportEntry) (json.RawMessage, error) {
	m, err := x.Event().Decode()
	if err != nil {
		return nil, err
	}
	return protojson.Marshal(m)
}
