// Package ledger is the pure part of the trail: the canonical encoding of an
// entry (what a Merkle leaf commits to), signed checkpoints in the C2SP
// tlog-checkpoint format, the export file and its offline verification, and
// the witness's consistency check. It does no I/O; the tree arithmetic is
// golang.org/x/mod/sumdb/tlog's and the signatures are sumdb/note's.
package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// Entry is what the trail commits to for one event: its envelope and the
// hash of its body. Every field a search filters on is covered, so a row
// changed in the database no longer matches its leaf.
type Entry struct {
	ID            string
	Position      uint64
	Type          string
	Source        string
	AggregateType string
	AggregateID   string
	Contract      string
	Customer      string
	Provider      string
	ActorOrg      string
	Actor         string
	ActorRole     string
	Correlation   string
	Causation     string
	SchemaVersion int32
	Time          time.Time // to the nanosecond
	PayloadHash   [sha256.Size]byte
	// Signer is the pinned key (libs/eventsig) whose Signature over the
	// event the trail checked before logging it, and TraceParent the trace
	// context the signature also covers. Empty when the trail pins no keys.
	TraceParent string
	Signer      string
	Signature   []byte
}

// PayloadHash is the SHA-256 of an event's stored body.
func PayloadHash(body []byte) [sha256.Size]byte { return sha256.Sum256(body) }

// canonicalTag names the encoding; a change of encoding is a new tag. An
// entry with a signer is encoded with signedTag: v1 and then the trace
// context, the signer and the signature, so the tree commits to who wrote
// each event; an unsigned entry keeps v1, and trees logged before
// signatures keep their roots.
const (
	canonicalTag = "jsm-trail-entry/v1"
	signedTag    = "jsm-trail-entry/v2"
)

// Canonical is the entry's unambiguous byte encoding: the tag, then every
// field as a length-prefixed string or a fixed-width integer, in a fixed
// order. Two different entries never encode the same.
func (e Entry) Canonical() []byte {
	b := make([]byte, 0, 256)
	str := func(s string) []byte {
		b = binary.AppendUvarint(b, uint64(len(s)))
		return append(b, s...)
	}
	if e.Signer == "" {
		b = str(canonicalTag)
	} else {
		b = str(signedTag)
	}
	b = str(e.ID)
	b = binary.BigEndian.AppendUint64(b, e.Position)
	b = str(e.Type)
	b = str(e.Source)
	b = str(e.AggregateType)
	b = str(e.AggregateID)
	b = str(e.Contract)
	b = str(e.Customer)
	b = str(e.Provider)
	b = str(e.ActorOrg)
	b = str(e.Actor)
	b = str(e.ActorRole)
	b = str(e.Correlation)
	b = str(e.Causation)
	b = binary.BigEndian.AppendUint32(b, uint32(e.SchemaVersion))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Time.UnixNano()))
	b = append(b, e.PayloadHash[:]...)
	if e.Signer == "" {
		return b
	}
	b = str(e.TraceParent)
	b = str(e.Signer)
	return str(string(e.Signature))
}

// LeafHash is the RFC 6962 leaf hash of the canonical encoding.
func (e Entry) LeafHash() tlog.Hash { return tlog.RecordHash(e.Canonical()) }

// Hashes is an in-memory tlog.HashReader: the stored hashes a tree needs,
// by stored-hash index. Appending only ever reads the frontier of the tree
// (its complete subtrees on the right edge) and what the same batch added,
// so a batch seeds it with the frontier and adds as it goes.
type Hashes map[int64]tlog.Hash

// ReadHashes implements tlog.HashReader.
func (h Hashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		v, ok := h[idx]
		if !ok {
			return nil, fmt.Errorf("ledger: stored hash %d is missing", idx)
		}
		out[i] = v
	}
	return out, nil
}

// Append adds the leaf of record n (the next one) and returns its stored
// hashes, which belong at stored indexes StoredHashIndex(0, n) onwards.
func (h Hashes) Append(n int64, leaf tlog.Hash) ([]tlog.Hash, error) {
	hs, err := tlog.StoredHashesForRecordHash(n, leaf, h)
	if err != nil {
		return nil, err
	}
	first := tlog.StoredHashIndex(0, n)
	for i, v := range hs {
		h[first+int64(i)] = v
	}
	return hs, nil
}

// Frontier is the stored-hash indexes appending to a tree of size n reads:
// the roots of its complete subtrees, one per set bit of n.
func Frontier(n int64) []int64 {
	var out []int64
	for level := 0; n>>level > 0; level++ {
		if (n>>level)&1 == 1 {
			out = append(out, tlog.StoredHashIndex(level, (n>>level)-1))
		}
	}
	return out
}

// Appender grows a tree from its frontier. Appending reads only the
// frontier and the hashes appended since, which are consecutive stored
// indexes: a slice holds them, and a batch costs no map growth.
type Appender struct {
	frontier Hashes
	base     int64 // stored index of added[0]
	added    []tlog.Hash
	n        int64 // records in the tree
}

// NewAppender starts from a tree of n records and its frontier (see
// Frontier); room is how many records are likely to be appended.
func NewAppender(n int64, frontier Hashes, room int) *Appender {
	return &Appender{frontier: frontier, base: tlog.StoredHashIndex(0, n), added: make([]tlog.Hash, 0, 2*room), n: n}
}

// ReadHashes implements tlog.HashReader.
func (a *Appender) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		if k := idx - a.base; k >= 0 && k < int64(len(a.added)) {
			out[i] = a.added[k]
			continue
		}
		h, ok := a.frontier[idx]
		if !ok {
			return nil, fmt.Errorf("ledger: stored hash %d is missing", idx)
		}
		out[i] = h
	}
	return out, nil
}

// Append adds the next record's leaf and returns its stored hashes.
func (a *Appender) Append(leaf tlog.Hash) ([]tlog.Hash, error) {
	hs, err := tlog.StoredHashesForRecordHash(a.n, leaf, a)
	if err != nil {
		return nil, err
	}
	a.added = append(a.added, hs...)
	a.n++
	return hs, nil
}

// Size is the number of records in the tree.
func (a *Appender) Size() int64 { return a.n }

// Added is the stored hashes of the records appended, one after the other
// from stored index StoredHashIndex(0, n) of the tree's first size n. The
// slice is the appender's own: it must not be changed.
func (a *Appender) Added() []tlog.Hash { return a.added }

// Frontier is the frontier of the tree as it is now.
func (a *Appender) Frontier() (Hashes, error) {
	idx := Frontier(a.n)
	hs, err := a.ReadHashes(idx)
	if err != nil {
		return nil, err
	}
	out := make(Hashes, len(idx))
	for i, k := range idx {
		out[k] = hs[i]
	}
	return out, nil
}

// ParseCanonical reads an entry back from its canonical encoding. It
// accepts only what Canonical writes, so an entry read back encodes to the
// same bytes.
func ParseCanonical(b []byte) (Entry, error) {
	var e Entry
	bad := errors.New("ledger: malformed canonical entry")
	str := func() string {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			b = nil
			return ""
		}
		s := string(b[k : k+int(n)])
		b = b[k+int(n):]
		return s
	}
	fixed := func(n int) []byte {
		if len(b) < n {
			b = nil
			return make([]byte, n)
		}
		v := b[:n]
		b = b[n:]
		return v
	}
	tag := str()
	if tag != canonicalTag && tag != signedTag {
		return Entry{}, bad
	}
	e.ID = str()
	e.Position = binary.BigEndian.Uint64(fixed(8))
	for _, f := range []*string{&e.Type, &e.Source, &e.AggregateType, &e.AggregateID, &e.Contract, &e.Customer,
		&e.Provider, &e.ActorOrg, &e.Actor, &e.ActorRole, &e.Correlation, &e.Causation} {
		*f = str()
	}
	e.SchemaVersion = int32(binary.BigEndian.Uint32(fixed(4)))
	e.Time = time.Unix(0, int64(binary.BigEndian.Uint64(fixed(8)))).UTC()
	copy(e.PayloadHash[:], fixed(sha256.Size))
	if tag == signedTag {
		e.TraceParent, e.Signer = str(), str()
		e.Signature = []byte(str())
		if e.Signer == "" {
			return Entry{}, bad
		}
	}
	if b == nil || len(b) != 0 {
		return Entry{}, bad
	}
	return e, nil
}
