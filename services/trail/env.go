package trail

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jsmplatform/jsm/libs/eventsig"
	"github.com/jsmplatform/jsm/services/trail/app"
	"github.com/jsmplatform/jsm/services/trail/ledger"
)

// FromEnv completes d from the environment: the checkpoint signing key is
// $JSM_TRAIL_SIGNING_KEY (a note signer key), else the one kept in keyDir
// (created on first start; no keyDir: the key is required);
// $JSM_TRAIL_CHECKPOINT_EVERY (entries) and $JSM_TRAIL_CHECKPOINT_INTERVAL
// (a duration) set how often it signs. The log's origin is
// $JSM_TRAIL_ORIGIN, else derived from $JSM_PUBLIC_URL, else the name of
// the key (a key created here is named with a random origin, kept with it).
// $JSM_TRAIL_WITNESSES lists the witnesses to submit checkpoints to;
// $JSM_TRAIL_SIGNER_KEYS are the pinned event signer keys.
func FromEnv(d Deps, keyDir string) (Deps, error) {
	origin, err := originFromEnv()
	if err != nil {
		return d, err
	}
	d.Origin = origin
	d.SigningKey = os.Getenv("JSM_TRAIL_SIGNING_KEY")
	if d.SigningKey == "" {
		if keyDir == "" {
			return d, errors.New("JSM_TRAIL_SIGNING_KEY is required")
		}
		if origin == "" {
			origin = NewOrigin()
		}
		if d.SigningKey, err = LoadOrCreateKey(keyDir, origin); err != nil {
			return d, err
		}
	}
	keys, err := eventsig.ParseKeys(os.Getenv("JSM_TRAIL_SIGNER_KEYS"))
	if err != nil {
		return d, fmt.Errorf("JSM_TRAIL_SIGNER_KEYS: %w", err)
	}
	d.SignerKeys = keys
	if v := os.Getenv("JSM_TRAIL_SIGNATURES_FROM"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return d, fmt.Errorf("JSM_TRAIL_SIGNATURES_FROM=%q: want a stream position", v)
		}
		d.SignaturesFrom = n
	}
	if v := os.Getenv("JSM_TRAIL_CHECKPOINT_EVERY"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return d, fmt.Errorf("JSM_TRAIL_CHECKPOINT_EVERY=%q: want a positive number of entries", v)
		}
		d.CheckpointEvery = n
	}
	if v := os.Getenv("JSM_TRAIL_CHECKPOINT_INTERVAL"); v != "" {
		t, err := time.ParseDuration(v)
		if err != nil || t <= 0 {
			return d, fmt.Errorf("JSM_TRAIL_CHECKPOINT_INTERVAL=%q: want a duration such as 10s", v)
		}
		d.CheckpointInterval = t
	}
	if d.Witnesses, err = ParseWitnesses(os.Getenv("JSM_TRAIL_WITNESSES")); err != nil {
		return d, fmt.Errorf("JSM_TRAIL_WITNESSES: %w", err)
	}
	return d, nil
}

// originFromEnv is $JSM_TRAIL_ORIGIN, else the origin of $JSM_PUBLIC_URL,
// else empty.
func originFromEnv() (string, error) {
	if v := os.Getenv("JSM_TRAIL_ORIGIN"); v != "" {
		if err := ledger.ValidOrigin(v); err != nil {
			return "", fmt.Errorf("JSM_TRAIL_ORIGIN: %w", err)
		}
		return v, nil
	}
	if v := os.Getenv("JSM_PUBLIC_URL"); v != "" {
		o, err := OriginFromURL(v)
		if err != nil {
			return "", fmt.Errorf("JSM_PUBLIC_URL: %w", err)
		}
		return o, nil
	}
	return "", nil
}

// OriginFromURL is the log's origin under the platform's public base URL:
// schema-less, as C2SP tlog-checkpoint asks, with "/trail" appended
// (https://jsm.example.com/ gives jsm.example.com/trail).
func OriginFromURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("%q: want an absolute http(s) URL", raw)
	}
	origin := strings.ToLower(u.Host) + strings.TrimSuffix(u.EscapedPath(), "/") + "/trail"
	if err := ledger.ValidOrigin(origin); err != nil {
		return "", err
	}
	return origin, nil
}

// NewOrigin is a random origin for a deployment that names none: unique, so
// a witness following two logs tells them apart.
func NewOrigin() string {
	return "jsm-trail/" + strings.ToLower(rand.Text())
}

// ParseWitnesses reads a list of witnesses, "<url> <verifier key>" each,
// separated by commas or new lines.
func ParseWitnesses(list string) ([]app.Witness, error) {
	var out []app.Witness
	seen := map[string]bool{}
	for entry := range strings.FieldsFuncSeq(list, func(r rune) bool { return r == ',' || r == '\n' }) {
		fields := strings.Fields(entry)
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 {
			return nil, fmt.Errorf("%q: want \"<url> <verifier key>\"", strings.TrimSpace(entry))
		}
		w, err := app.NewWitness(fields[0], fields[1])
		if err != nil {
			return nil, err
		}
		if seen[w.Key] {
			return nil, fmt.Errorf("witness %s listed twice", w.Verifier.Name())
		}
		seen[w.Key] = true
		out = append(out, w)
	}
	return out, nil
}
