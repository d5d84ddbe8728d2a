package app

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/jsmplatform/jsm/services/trail/ledger"
	"github.com/jsmplatform/jsm/services/trail/projection"
)

// Finding is the first thing an audit found wrong.
type Finding struct {
	Leaf     int64  // the entry's leaf index, -1 for a checkpoint
	Position uint64 // the entry's stream position, when there is one
	Reason   string
}

func (f *Finding) Error() string { return f.Reason }

// auditChunk is how many entries an audit reads per query.
const auditChunk = 5000

// Audit recomputes every stored entry's leaf and the whole tree from the
// entries and checks them against the stored leaf hashes and every signed
// checkpoint (signature and root). It returns the first finding, or nil
// when the stored log is intact. It reads the whole log as the service's
// own role, not on behalf of an org.
func (a *App) Audit(ctx context.Context) (*Finding, error) {
	tree := ledger.Hashes{}
	var n int64
	var after int64 // position
	for {
		// Leaves are numbered in stream order: reading by position (the
		// primary key) must meet them one after the other.
		rows, err := a.Pool.Query(ctx, `SELECT `+strings.Join(projection.Columns, ", ")+` FROM trail.entries
			WHERE position > $1 ORDER BY position LIMIT $2`, after, auditChunk)
		if err != nil {
			return nil, err
		}
		page, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (projection.Row, error) { return projection.Scan(r) })
		if err != nil {
			return nil, err
		}
		indexes := make([]int64, len(page))
		for i, r := range page {
			indexes[i] = tlog.StoredHashIndex(0, r.Index)
		}
		stored, err := projection.HashReader(ctx, a.Pool).ReadHashes(indexes)
		if err != nil {
			return &Finding{Leaf: n, Reason: fmt.Sprintf("stored leaf hashes: %v", err)}, nil
		}
		for i, r := range page {
			if r.Index != n {
				return &Finding{Leaf: n, Position: r.Event.Position, Reason: fmt.Sprintf("leaf %d out of place: the entry at position %d claims leaf %d (entries were deleted, inserted or moved)", n, r.Event.Position, r.Index)}, nil
			}
			leaf := r.Entry().LeafHash()
			if leaf != stored[i] {
				return &Finding{Leaf: n, Position: r.Event.Position, Reason: fmt.Sprintf("entry of leaf %d (position %d) does not match its leaf hash: it was changed or moved", n, r.Event.Position)}, nil
			}
			if _, err := tree.Append(n, leaf); err != nil {
				return nil, err
			}
			n++
			after = int64(r.Event.Position)
		}
		if len(page) < auditChunk {
			break
		}
	}
	size, err := a.treeSize(ctx)
	if err != nil {
		return nil, err
	}
	if n != size {
		return &Finding{Leaf: n, Reason: fmt.Sprintf("the tree has %d entries, the log %d: entries after leaf %d are missing", size, n, n-1)}, nil
	}
	rows, err := a.Pool.Query(ctx, `SELECT size, root, note FROM trail.tree_heads WHERE size <= $1 ORDER BY size`, n)
	if err != nil {
		return nil, err
	}
	heads, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Head, error) {
		var h Head
		var root []byte
		err := r.Scan(&h.Size, &root, &h.Note)
		h.Root = tlog.Hash(root)
		return h, err
	})
	if err != nil {
		return nil, err
	}
	// Heads in size order: the first that fails bounds a rewritten history
	// to the leaves between the last good checkpoint and its own size.
	var good int64
	for _, h := range heads {
		c, err := ledger.OpenCheckpoint(h.Note, a.Signer.VerifierKey())
		if err != nil {
			return &Finding{Leaf: -1, Reason: fmt.Sprintf("checkpoint of size %d: %v", h.Size, err)}, nil
		}
		root, err := tlog.TreeHash(c.Size, tree)
		if err != nil {
			return nil, err
		}
		if c.Size != h.Size || c.Root != h.Root || root != c.Root {
			return &Finding{Leaf: -1, Reason: fmt.Sprintf("checkpoint of size %d has root %s, the log gives %s: the history of leaves %d to %d was rewritten (the checkpoint of size %d still holds)",
				c.Size, c.Root, root, good, c.Size-1, good)}, nil
		}
		good = c.Size
	}
	return nil, nil
}
