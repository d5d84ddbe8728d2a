package app

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/jsmplatform/jsm/services/trail/ledger"
	"github.com/jsmplatform/jsm/services/trail/projection"
)

// Inclusion is an entry with its inclusion proof.
type Inclusion struct {
	Row      projection.Row
	TreeSize int64
	Leaf     tlog.Hash
	Proof    tlog.RecordProof
}

// InclusionProof proves that org's entry at position is in the tree of
// size treeSize (0: the latest signed checkpoint, signed now if none
// covers the entry yet).
func (a *App) InclusionProof(ctx context.Context, org string, position uint64, treeSize int64) (Inclusion, error) {
	rows, err := a.rows(ctx, org, `SELECT `+strings.Join(projection.Columns, ", ")+` FROM trail.entries
		WHERE position = $1 AND (customer_org_id = $2 OR provider_org_id = $2)`, []any{int64(position), org})
	if err != nil {
		return Inclusion{}, fmt.Errorf("entry %d: %w", position, err)
	}
	if len(rows) == 0 {
		return Inclusion{}, fmt.Errorf("%w: no entry at position %d", ErrNotFound, position)
	}
	r := rows[0]
	if treeSize == 0 {
		h, err := a.Checkpoint(ctx, 0)
		if err != nil {
			return Inclusion{}, err
		}
		if h.Size <= r.Index {
			if h, err = a.Sign(ctx); err != nil {
				return Inclusion{}, err
			}
		}
		treeSize = h.Size
	}
	if treeSize <= r.Index {
		return Inclusion{}, invalid("tree_size %d does not include the entry at position %d (leaf %d)", treeSize, position, r.Index)
	}
	if err := a.checkSize(ctx, treeSize); err != nil {
		return Inclusion{}, err
	}
	proof, err := tlog.ProveRecord(treeSize, r.Index, projection.HashReader(ctx, a.Pool))
	if err != nil {
		return Inclusion{}, fmt.Errorf("prove leaf %d in %d: %w", r.Index, treeSize, err)
	}
	return Inclusion{Row: r, TreeSize: treeSize, Leaf: r.Entry().LeafHash(), Proof: proof}, nil
}

// Consistency is a consistency proof between two tree sizes.
type Consistency struct {
	First, Second int64
	Proof         tlog.TreeProof
	Note          string // the signed checkpoint of Second, if any
}

// ConsistencyProof proves the tree of size first is a prefix of the tree of
// size second (0: the latest signed checkpoint).
func (a *App) ConsistencyProof(ctx context.Context, first, second int64) (Consistency, error) {
	if second == 0 {
		h, err := a.Checkpoint(ctx, 0)
		if err != nil {
			return Consistency{}, err
		}
		second = h.Size
	}
	if first > second {
		return Consistency{}, invalid("first_size %d is larger than second_size %d", first, second)
	}
	if err := a.checkSize(ctx, second); err != nil {
		return Consistency{}, err
	}
	proof, err := tlog.ProveTree(second, first, projection.HashReader(ctx, a.Pool))
	if err != nil {
		return Consistency{}, fmt.Errorf("prove %d in %d: %w", first, second, err)
	}
	note, err := a.headOf(ctx, second)
	if err != nil {
		return Consistency{}, err
	}
	return Consistency{First: first, Second: second, Proof: proof, Note: note}, nil
}

// MaxExport bounds the events of one export.
const MaxExport = 10_000

// Exported is an export file and what it holds.
type Exported struct {
	Content  []byte
	Events   int
	TreeSize int64
}

// Export writes org's events matching f with their inclusion proofs against
// a signed checkpoint covering them, and a signed manifest of the entries.
func (a *App) Export(ctx context.Context, org string, f Filter, minPosition uint64) (Exported, error) {
	if err := a.wait(ctx, minPosition); err != nil {
		return Exported{}, err
	}
	sql, args := f.query(org, 0, MaxExport+1)
	rows, err := a.rows(ctx, org, sql, args)
	if err != nil {
		return Exported{}, fmt.Errorf("export: %w", err)
	}
	if len(rows) > MaxExport {
		return Exported{}, invalid("the filter matches more than %d events: narrow it (e.g. a time range)", MaxExport)
	}
	h, err := a.Checkpoint(ctx, 0)
	if err != nil {
		return Exported{}, err
	}
	if n := len(rows); n > 0 && h.Size <= rows[n-1].Index {
		if h, err = a.Sign(ctx); err != nil {
			return Exported{}, err
		}
	}
	x := &ledger.Export{
		Format: ledger.ExportFormat, Origin: a.Signer.Name(), VerifierKey: a.Signer.VerifierKey(),
		Checkpoint: h.Note, Filter: f.Map(), ExportedAt: a.Now().UTC(), Entries: make([]ledger.ExportEntry, 0, len(rows)),
	}
	reader := projection.CachingHashReader(ctx, a.Pool)
	for _, r := range rows {
		xe := ledger.ExportEntryOf(r.Index, r.Entry(), r.Event.Data)
		if xe.Proof, err = tlog.ProveRecord(h.Size, r.Index, reader); err != nil {
			return Exported{}, fmt.Errorf("prove leaf %d: %w", r.Index, err)
		}
		if data, err := EventJSON(r.Event); err == nil {
			xe.Data = data
		}
		x.Entries = append(x.Entries, xe)
	}
	if err := x.Seal(a.Signer, h.Size, a.SignerKeys.VerifierKeys()); err != nil {
		return Exported{}, err
	}
	out, err := json.MarshalIndent(x, "", " ")
	if err != nil {
		return Exported{}, err
	}
	return Exported{Content: out, Events: len(x.Entries), TreeSize: h.Size}, nil
}
