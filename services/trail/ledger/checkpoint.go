package ledger

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Checkpoint is a signed tree head: the log's origin, its size and the
// root hash of the tree of that many entries.
type Checkpoint struct {
	Origin string
	Size   int64
	Root   tlog.Hash
}

// Body is the checkpoint's note text in the C2SP tlog-checkpoint format:
// origin, decimal size and base64 root, one per line.
func (c Checkpoint) Body() string {
	return c.Origin + "\n" + strconv.FormatInt(c.Size, 10) + "\n" + base64.StdEncoding.EncodeToString(c.Root[:]) + "\n"
}

// ErrBadCheckpoint marks a checkpoint that does not parse or verify.
var ErrBadCheckpoint = errors.New("bad checkpoint")

// ParseCheckpoint reads the body of a checkpoint note. Extension lines
// after the root are allowed and ignored, as the format says.
func ParseCheckpoint(text string) (Checkpoint, error) {
	lines := strings.SplitAfter(text, "\n")
	if len(lines) < 4 || !strings.HasSuffix(text, "\n") {
		return Checkpoint{}, fmt.Errorf("%w: want origin, size and root lines", ErrBadCheckpoint)
	}
	origin := strings.TrimSuffix(lines[0], "\n")
	if origin == "" {
		return Checkpoint{}, fmt.Errorf("%w: empty origin", ErrBadCheckpoint)
	}
	sizeText := strings.TrimSuffix(lines[1], "\n")
	size, err := strconv.ParseInt(sizeText, 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != sizeText {
		return Checkpoint{}, fmt.Errorf("%w: size %q", ErrBadCheckpoint, sizeText)
	}
	// Strict: a root whose padding bits are set decodes to the same hash
	// from another text, and a checkpoint has exactly one text.
	root, err := base64.StdEncoding.Strict().DecodeString(strings.TrimSuffix(lines[2], "\n"))
	if err != nil || len(root) != tlog.HashSize {
		return Checkpoint{}, fmt.Errorf("%w: root hash", ErrBadCheckpoint)
	}
	c := Checkpoint{Origin: origin, Size: size}
	copy(c.Root[:], root)
	return c, nil
}

// Signer signs checkpoints and manifests with one note key.
type Signer struct {
	signer   note.Signer
	verifier string
}

// GenerateKey returns a new Ed25519 note key pair named name.
func GenerateKey(name string) (skey, vkey string, err error) {
	return note.GenerateKey(rand.Reader, name)
}

// NewSigner reads a note signer key (PRIVATE+KEY+name+hash+key).
func NewSigner(skey string) (*Signer, error) {
	s, err := note.NewSigner(strings.TrimSpace(skey))
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	// The verifier key is derived, so the two can never disagree.
	vkey, err := verifierOf(strings.TrimSpace(skey))
	if err != nil {
		return nil, err
	}
	return &Signer{signer: s, verifier: vkey}, nil
}

// NewSignerFor reads a note signer key and signs as origin with it: the
// same Ed25519 key under the name the deployment gives its log (C2SP
// tlog-checkpoint: the key name is the origin). An empty origin keeps the
// key's own name.
func NewSignerFor(skey, origin string) (*Signer, error) {
	skey = strings.TrimSpace(skey)
	parts := strings.SplitN(skey, "+", 5)
	if origin == "" || (len(parts) == 5 && parts[2] == origin) {
		return NewSigner(skey)
	}
	if err := ValidOrigin(origin); err != nil {
		return nil, err
	}
	if len(parts) != 5 {
		return nil, errors.New("signing key: malformed")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 33 || raw[0] != 1 {
		return nil, errors.New("signing key: not an Ed25519 note key")
	}
	// The key hash covers the name: take it from the verifier key note
	// derives for the new name rather than hashing by hand.
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(origin, pub)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	vparts := strings.SplitN(vkey, "+", 3)
	return NewSigner(strings.Join([]string{"PRIVATE", "KEY", origin, vparts[1], parts[4]}, "+"))
}

// verifierOf derives the verifier key of a note signer key.
func verifierOf(skey string) (string, error) {
	// PRIVATE+KEY+<name>+<hash>+<base64(alg || seed)>
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 {
		return "", errors.New("signing key: malformed")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 33 || raw[0] != 1 {
		return "", errors.New("signing key: not an Ed25519 note key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	return note.NewEd25519VerifierKey(parts[2], pub)
}

// VerifierKeyFor is the verifier key of s's Ed25519 key under another
// name: what checks a checkpoint s's key signed before the deployment's
// origin changed.
func (s *Signer) VerifierKeyFor(origin string) (string, error) {
	if origin == s.Name() {
		return s.verifier, nil
	}
	parts := strings.SplitN(s.verifier, "+", 3) // name+hash+key; base64 may hold '+'
	if len(parts) != 3 {
		return "", errors.New("verifier key: malformed")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 1+ed25519.PublicKeySize {
		return "", errors.New("verifier key: malformed")
	}
	return note.NewEd25519VerifierKey(origin, ed25519.PublicKey(raw[1:]))
}

// VerifierKey is the public key that checks what s signs.
func (s *Signer) VerifierKey() string { return s.verifier }

// Name is the key's name, which is also the log's origin.
func (s *Signer) Name() string { return s.signer.Name() }

// Sign returns the signed note of c.
func (s *Signer) Sign(c Checkpoint) (string, error) {
	msg, err := note.Sign(&note.Note{Text: c.Body()}, s.signer)
	if err != nil {
		return "", fmt.Errorf("sign checkpoint: %w", err)
	}
	return string(msg), nil
}

// SignText signs any note text (an export's manifest).
func (s *Signer) SignText(text string) (string, error) {
	msg, err := note.Sign(&note.Note{Text: text}, s.signer)
	if err != nil {
		return "", fmt.Errorf("sign note: %w", err)
	}
	return string(msg), nil
}

// OpenNote checks a signed note against the verifier key and returns its text.
func OpenNote(signed, vkey string) (string, error) {
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return "", fmt.Errorf("verifier key: %w", err)
	}
	n, err := note.Open([]byte(signed), note.VerifierList(v))
	if err != nil {
		return "", fmt.Errorf("%w: signature: %v", ErrBadCheckpoint, err)
	}
	return n.Text, nil
}

// OpenCheckpoint verifies a signed checkpoint with vkey and parses it. The
// origin must be the key's name: a log signs only its own checkpoints.
func OpenCheckpoint(signed, vkey string) (Checkpoint, error) {
	text, err := OpenNote(signed, vkey)
	if err != nil {
		return Checkpoint{}, err
	}
	c, err := ParseCheckpoint(text)
	if err != nil {
		return Checkpoint{}, err
	}
	if name, _, _ := strings.Cut(strings.TrimSpace(vkey), "+"); name != c.Origin {
		return Checkpoint{}, fmt.Errorf("%w: origin %q signed by key %q", ErrBadCheckpoint, c.Origin, name)
	}
	return c, nil
}

// ErrInconsistent marks two checkpoints that cannot both be true of one
// append-only log: a split view, a rollback or a failed consistency proof.
var ErrInconsistent = errors.New("inconsistent checkpoints")

// CheckConsistency checks that newer extends older: the same size needs the
// same root (else the log showed two histories: a split view), a smaller
// size is a rollback, and a larger one needs a valid consistency proof.
func CheckConsistency(older, newer Checkpoint, proof tlog.TreeProof) error {
	switch {
	case older.Origin != newer.Origin:
		return fmt.Errorf("%w: origin %q, then %q", ErrInconsistent, older.Origin, newer.Origin)
	case newer.Size < older.Size:
		return fmt.Errorf("%w: the log shrank from %d to %d entries", ErrInconsistent, older.Size, newer.Size)
	case newer.Size == older.Size:
		if older.Root != newer.Root {
			return fmt.Errorf("%w: split view: two roots for size %d: %s and %s", ErrInconsistent, older.Size, older.Root, newer.Root)
		}
		return nil
	case older.Size == 0:
		return nil
	}
	if err := tlog.CheckTree(proof, newer.Size, newer.Root, older.Size, older.Root); err != nil {
		return fmt.Errorf("%w: size %d is not a prefix of size %d: %v", ErrInconsistent, older.Size, newer.Size, err)
	}
	return nil
}
