// Package eventsig signs the events a service appends and checks them
// against pinned public keys, so that the trail can say which service
// wrote an event and refuse one that nobody it trusts wrote.
//
// A signature is Ed25519 over Message: a tagged, position-free encoding of
// every envelope field and the SHA-256 of the body. Keys are sumdb/note
// keys (signer "PRIVATE+KEY+<name>+<hash>+<data>", verifier
// "<name>+<hash>+<data>"): the same well-kept format as the trail's
// checkpoint keys. A key's name is the area it may sign for: the key named
// "contracts" signs aggregates "contracts.*" and nothing else.
package eventsig

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/jsmplatform/jsm/libs/event"
)

// messageTag names the encoding; a change of encoding is a new tag.
const messageTag = "jsm-event-signature/v1"

// Message is what a signature covers: the tag, then every envelope field as
// a length-prefixed string or a fixed-width integer in a fixed order, then
// the body's SHA-256. The stream position is not in it: it is known only
// once the event is stored.
func Message(e event.Event) []byte {
	b := make([]byte, 0, 320)
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	str(messageTag)
	for _, s := range [...]string{e.ID, e.Type, e.Source, e.AggregateType, e.AggregateID, e.Contract,
		e.Parties.Customer, e.Parties.Provider, e.Actor.Org, e.Actor.User, e.Actor.Role,
		e.Correlation, e.Causation, e.TraceParent} {
		str(s)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(e.SchemaVersion))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Time.UnixNano()))
	h := sha256.Sum256(e.Data)
	return append(b, h[:]...)
}

// Area is the area of an aggregate type: "contracts" of "contracts.contract".
func Area(aggregateType string) string {
	area, _, _ := strings.Cut(aggregateType, ".")
	return area
}

// GenerateKey returns a new signer key and its verifier key for the area name.
func GenerateKey(name string) (skey, vkey string, err error) {
	if !areaName.MatchString(name) {
		return "", "", fmt.Errorf("event signing key: %q is not an area name", name)
	}
	return note.GenerateKey(rand.Reader, name)
}

var areaName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)

// Signer signs events with one service's key.
type Signer struct {
	s  note.Signer
	id string
}

// NewSigner reads a signer key (PRIVATE+KEY+<name>+<hash>+<data>).
func NewSigner(skey string) (*Signer, error) {
	s, err := note.NewSigner(strings.TrimSpace(skey))
	if err != nil {
		return nil, fmt.Errorf("event signing key: %w", err)
	}
	return &Signer{s: s, id: keyID(s.Name(), s.KeyHash())}, nil
}

// ID is the key's id as the jsm-signer header carries it: "<name>+<hash>".
func (s *Signer) ID() string { return s.id }

// Name is the key's name, the area it signs for.
func (s *Signer) Name() string { return s.s.Name() }

// Sign sets the event's signer and signature over its envelope and body as
// they are now: anything changed afterwards breaks the signature.
func (s *Signer) Sign(e *event.Event) error {
	sig, err := s.s.Sign(Message(*e))
	if err != nil {
		return fmt.Errorf("sign event %s: %w", e.ID, err)
	}
	e.Signer, e.Signature = s.id, sig
	return nil
}

func keyID(name string, hash uint32) string { return fmt.Sprintf("%s+%08x", name, hash) }

// Reason is why an event fails verification; it is a metric label, so a
// short fixed word.
type Reason string

// The reasons an event is refused.
const (
	Unsigned      Reason = "unsigned"       // no signer or no signature
	UnknownSigner Reason = "unknown_signer" // a key that is not pinned
	BadSignature  Reason = "bad_signature"  // the signature does not match the event
	WrongArea     Reason = "wrong_area"     // a pinned key of another area
)

// Error says why an event failed verification.
type Error struct {
	Reason Reason
	Detail string
}

func (e *Error) Error() string { return string(e.Reason) + ": " + e.Detail }

// Keys are the pinned verifier keys, by key id.
type Keys struct {
	byID  map[string]note.Verifier
	texts map[string]string // the verifier keys as given
}

// ParseKeys reads verifier keys ("<name>+<hash>+<data>") separated by
// spaces, commas or new lines. Several keys of one name (a rotation) are
// fine; the same key twice is not.
func ParseKeys(list string) (*Keys, error) {
	k := &Keys{byID: map[string]note.Verifier{}, texts: map[string]string{}}
	for _, vkey := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' || r == ';' }) {
		v, err := note.NewVerifier(vkey)
		if err != nil {
			return nil, fmt.Errorf("event verifier key %q: %w", vkey, err)
		}
		id := keyID(v.Name(), v.KeyHash())
		if _, dup := k.byID[id]; dup {
			return nil, fmt.Errorf("event verifier key %s is listed twice", id)
		}
		k.byID[id], k.texts[id] = v, vkey
	}
	return k, nil
}

// Len is the number of pinned keys.
func (k *Keys) Len() int {
	if k == nil {
		return 0
	}
	return len(k.byID)
}

// IDs are the pinned keys' ids, sorted.
func (k *Keys) IDs() []string {
	if k == nil {
		return nil
	}
	ids := make([]string, 0, len(k.byID))
	for id := range k.byID {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// VerifierKeys are the pinned verifier keys as given, sorted by key id.
func (k *Keys) VerifierKeys() []string {
	var out []string
	for _, id := range k.IDs() {
		out = append(out, k.texts[id])
	}
	return out
}

// Verify checks that e is signed by a pinned key whose name is e's area,
// and that the signature covers e as it is. It returns an *Error.
func (k *Keys) Verify(e event.Event) error {
	if e.Signer == "" || len(e.Signature) == 0 {
		return &Error{Reason: Unsigned, Detail: "the event carries no signature"}
	}
	var v note.Verifier
	if k != nil {
		v = k.byID[e.Signer]
	}
	if v == nil {
		return &Error{Reason: UnknownSigner, Detail: fmt.Sprintf("signer %q is not a pinned key", e.Signer)}
	}
	if area := Area(e.AggregateType); v.Name() != area {
		return &Error{Reason: WrongArea, Detail: fmt.Sprintf("signer %q may sign area %q, not %q", e.Signer, v.Name(), area)}
	}
	if !v.Verify(Message(e), e.Signature) {
		return &Error{Reason: BadSignature, Detail: fmt.Sprintf("the signature of %q does not match the event", e.Signer)}
	}
	return nil
}

// ReasonOf is the reason of a verification error, "" for another error.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}
