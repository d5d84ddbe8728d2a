package ledger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// ExportFormat names the export file format.
const ExportFormat = "jsm-trail-export/v1"

// Export is an investigation file: entries with their bodies and inclusion
// proofs, the signed checkpoint the proofs are against, and a signed
// manifest listing every entry's leaf index and hash in order, so that an
// entry dropped from or moved within the file is caught as well as a
// changed one. It is JSON, self-contained and checkable offline.
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
// entry, the event's body (binary protobuf, base64 in JSON) and its
// inclusion proof. Data is the body as JSON for people to read; it is not
// covered by the proof (the payload it was rendered from is).
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
	}
}

// ExportEntryOf fills an export entry from a canonical entry and its body.
func ExportEntryOf(idx int64, e Entry, payload []byte) ExportEntry {
	return ExportEntry{
		LeafIndex: idx, Position: e.Position, ID: e.ID, Type: e.Type, Source: e.Source,
		AggregateType: e.AggregateType, AggregateID: e.AggregateID, ContractID: e.Contract,
		CustomerOrgID: e.Customer, ProviderOrgID: e.Provider,
		ActorOrgID: e.ActorOrg, Actor: e.Actor, ActorRole: e.ActorRole,
		CorrelationID: e.Correlation, CausationID: e.Causation, SchemaVersion: e.SchemaVersion,
		Time: e.Time.UTC(), Payload: payload,
	}
}

// ManifestText lists the origin, the tree size, the number of entries and
// each entry's leaf index and leaf hash, one per line.
func ManifestText(origin string, size int64, leaves []int64, hashes []tlog.Hash) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n%s\n%d\n%d\n", ExportFormat, origin, size, len(leaves))
	for i, idx := range leaves {
		fmt.Fprintf(&b, "%d %s\n", idx, hashes[i])
	}
	return b.String()
}

type manifest struct {
	origin string
	size   int64
	leaves []int64
	hashes []tlog.Hash
}

func parseManifest(text string) (manifest, error) {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 4 || lines[0] != ExportFormat {
		return manifest{}, errors.New("manifest: not a " + ExportFormat + " manifest")
	}
	m := manifest{origin: lines[1]}
	var err error
	if m.size, err = strconv.ParseInt(lines[2], 10, 64); err != nil || m.size < 0 {
		return manifest{}, fmt.Errorf("manifest: tree size %q", lines[2])
	}
	n, err := strconv.Atoi(lines[3])
	if err != nil || n < 0 || n != len(lines)-4 {
		return manifest{}, fmt.Errorf("manifest: %q entries, %d listed", lines[3], len(lines)-4)
	}
	for _, l := range lines[4:] {
		idxText, hashText, ok := strings.Cut(l, " ")
		idx, err := strconv.ParseInt(idxText, 10, 64)
		if !ok || err != nil || idx < 0 {
			return manifest{}, fmt.Errorf("manifest: line %q", l)
		}
		h, err := tlog.ParseHash(hashText)
		if err != nil {
			return manifest{}, fmt.Errorf("manifest: line %q: %v", l, err)
		}
		m.leaves, m.hashes = append(m.leaves, idx), append(m.hashes, h)
	}
	return m, nil
}

// maxExportBytes bounds what ParseExport reads.
const maxExportBytes = 1 << 30

// ParseExport reads an export file.
func ParseExport(data []byte) (*Export, error) {
	if len(data) > maxExportBytes {
		return nil, errors.New("export: file too large")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var x Export
	if err := dec.Decode(&x); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if dec.More() {
		return nil, errors.New("export: data after the document")
	}
	if x.Format != ExportFormat {
		return nil, fmt.Errorf("export: format %q, want %q", x.Format, ExportFormat)
	}
	return &x, nil
}

// VerifyError locates the first thing in an export that fails.
type VerifyError struct {
	// Entry is the 0-based place of the failing entry in the file, -1 when
	// the checkpoint or the manifest itself fails.
	Entry    int
	Position uint64
	Reason   string
}

func (e *VerifyError) Error() string {
	if e.Entry < 0 {
		return e.Reason
	}
	return fmt.Sprintf("entry %d (position %d): %s", e.Entry, e.Position, e.Reason)
}

// Verify checks an export against the verifier key vkey (the key the
// caller trusts; the file's own key when empty): the checkpoint's
// signature, the manifest's signature, that the entries are exactly those
// the manifest lists and in its order, and each entry's inclusion proof
// against the checkpoint's root. It returns the checkpoint, or a
// *VerifyError naming the first failure.
func Verify(x *Export, vkey string) (Checkpoint, error) {
	if vkey == "" {
		vkey = x.VerifierKey
	}
	fail := func(i int, pos uint64, format string, args ...any) (Checkpoint, error) {
		return Checkpoint{}, &VerifyError{Entry: i, Position: pos, Reason: fmt.Sprintf(format, args...)}
	}
	c, err := OpenCheckpoint(x.Checkpoint, vkey)
	if err != nil {
		return fail(-1, 0, "checkpoint: %v", err)
	}
	text, err := OpenNote(x.Manifest, vkey)
	if err != nil {
		return fail(-1, 0, "manifest: %v", err)
	}
	m, err := parseManifest(text)
	if err != nil {
		return fail(-1, 0, "%v", err)
	}
	if m.origin != c.Origin || m.size != c.Size {
		return fail(-1, 0, "manifest is for %s size %d, checkpoint for %s size %d", m.origin, m.size, c.Origin, c.Size)
	}
	for i, e := range x.Entries {
		if i >= len(m.leaves) {
			return fail(i, e.Position, "not in the signed manifest (it lists %d entries): an entry was added", len(m.leaves))
		}
		leaf := e.Entry().LeafHash()
		if e.LeafIndex != m.leaves[i] {
			return fail(i, e.Position, "leaf %d where the signed manifest lists leaf %d: an entry was removed or moved", e.LeafIndex, m.leaves[i])
		}
		if leaf != m.hashes[i] {
			return fail(i, e.Position, "content differs from the signed manifest (leaf %d)", e.LeafIndex)
		}
		if e.LeafIndex >= c.Size {
			return fail(i, e.Position, "leaf %d beyond the checkpoint's %d entries", e.LeafIndex, c.Size)
		}
		if err := tlog.CheckRecord(e.Proof, c.Size, c.Root, e.LeafIndex, leaf); err != nil {
			return fail(i, e.Position, "inclusion proof of leaf %d fails: %v", e.LeafIndex, err)
		}
	}
	if len(x.Entries) < len(m.leaves) {
		return fail(len(x.Entries), 0, "missing: the signed manifest lists %d entries, the file has %d", len(m.leaves), len(x.Entries))
	}
	return c, nil
}
