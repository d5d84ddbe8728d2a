package ledger

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// algCosignatureV1 is the signed-note signature type of a C2SP
// tlog-cosignature (timestamp || Ed25519 signature); x/mod/sumdb/note knows
// only type 1, a log's own Ed25519 signature.
const algCosignatureV1 = 4

// CosignatureVerifier checks a witness's cosignatures (c2sp.org/tlog-cosignature)
// with golang.org/x/mod/sumdb/note: pass it to note.Open beside the log's key.
type CosignatureVerifier struct {
	name string
	hash uint32
	key  ed25519.PublicKey
}

var _ note.Verifier = (*CosignatureVerifier)(nil)

// NewCosignatureVerifier reads a witness's verifier key
// (name+hash+base64(0x04 || Ed25519 public key)).
func NewCosignatureVerifier(vkey string) (*CosignatureVerifier, error) {
	name, rest, ok1 := strings.Cut(strings.TrimSpace(vkey), "+")
	hashText, keyText, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 || !validName(name) || len(hashText) != 8 {
		return nil, fmt.Errorf("witness key %q: want name+hash+key", vkey)
	}
	hash, err := strconv.ParseUint(hashText, 16, 32)
	if err != nil {
		return nil, fmt.Errorf("witness key %q: key hash: %w", vkey, err)
	}
	raw, err := base64.StdEncoding.DecodeString(keyText)
	if err != nil || len(raw) != 1+ed25519.PublicKeySize || raw[0] != algCosignatureV1 {
		return nil, fmt.Errorf("witness key %q: not a cosignature/v1 Ed25519 key", vkey)
	}
	if keyHash(name, raw) != uint32(hash) {
		return nil, fmt.Errorf("witness key %q: key hash does not match the key", vkey)
	}
	return &CosignatureVerifier{name: name, hash: uint32(hash), key: ed25519.PublicKey(raw[1:])}, nil
}

// Name is the witness's name.
func (v *CosignatureVerifier) Name() string { return v.name }

// KeyHash is the key's id in signature lines.
func (v *CosignatureVerifier) KeyHash() uint32 { return v.hash }

// Verify checks sig (8-byte big-endian timestamp || signature) over
// "cosignature/v1\ntime <t>\n" followed by the checkpoint text.
func (v *CosignatureVerifier) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	t := binary.BigEndian.Uint64(sig)
	m := fmt.Appendf(nil, "cosignature/v1\ntime %d\n", t)
	return ed25519.Verify(v.key, append(m, msg...), sig[8:])
}

func keyHash(name string, key []byte) uint32 {
	h := sha256.New()
	h.Write([]byte(name + "\n"))
	h.Write(key)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// validName is signed-note's rule for key names (and so for origins):
// non-empty UTF-8 without spaces or pluses.
func validName(name string) bool {
	return name != "" && utf8.ValidString(name) && strings.IndexFunc(name, unicode.IsSpace) < 0 && !strings.Contains(name, "+")
}

// ValidOrigin reports whether origin can name a log (and its key).
func ValidOrigin(origin string) error {
	if !validName(origin) {
		return fmt.Errorf("origin %q: want a non-empty name without spaces or '+', such as example.com/jsm/trail", origin)
	}
	return nil
}

// AddCheckpointRequest is the body of a c2sp.org/tlog-witness add-checkpoint
// request: the size the witness is known to hold, the consistency proof from
// it to the checkpoint's size, a blank line and the signed checkpoint.
func AddCheckpointRequest(oldSize int64, proof tlog.TreeProof, signed string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", oldSize)
	for _, h := range proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]) + "\n")
	}
	b.WriteString("\n")
	b.WriteString(signed)
	return b.Bytes()
}

// ErrBadWitnessReply marks a witness reply that does not follow the protocol.
var ErrBadWitnessReply = errors.New("bad witness reply")

// ParseKnownSize reads the body of a 409 reply: the tree size the witness
// holds for the log, one decimal line.
func ParseKnownSize(body []byte) (int64, error) {
	text := strings.TrimSuffix(string(body), "\n")
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != text {
		return 0, fmt.Errorf("%w: known size %q", ErrBadWitnessReply, text)
	}
	return n, nil
}

// Cosignature is one witness's signature line over a checkpoint.
type Cosignature struct {
	Witness string // the witness's name
	Line    string // "— <name> <base64>\n"
}

// OpenCosignature checks a 200 reply to add-checkpoint: the witness's
// signature lines over the signed checkpoint. It returns the line whose
// signature w's key verifies over the checkpoint's text.
func OpenCosignature(signed string, reply []byte, w *CosignatureVerifier) (Cosignature, error) {
	text, _, ok := strings.Cut(signed, "\n\n")
	if !ok {
		return Cosignature{}, fmt.Errorf("%w: checkpoint without signatures", ErrBadCheckpoint)
	}
	for line := range strings.Lines(string(reply)) {
		if !strings.HasPrefix(line, "— ") || !strings.HasSuffix(line, "\n") {
			continue
		}
		// Open the checkpoint text with this line alone: note checks the
		// name, key hash and signature.
		n, err := note.Open([]byte(text+"\n\n"+line), note.VerifierList(w))
		if err == nil && len(n.Sigs) == 1 {
			return Cosignature{Witness: w.Name(), Line: line}, nil
		}
	}
	return Cosignature{}, fmt.Errorf("%w: no valid cosignature of %s in %q", ErrBadWitnessReply, w.Name(), reply)
}

// Cosigned appends the witnesses' signature lines to a signed checkpoint:
// the note a reader opens with the log's key and the witness keys it trusts.
func Cosigned(signed string, lines []string) string {
	return signed + strings.Join(lines, "")
}
