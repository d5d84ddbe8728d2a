package trail

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/jsmplatform/jsm/libs/eventsig"
)

// FromEnv completes d from the environment: the checkpoint signing key is
// $JSM_TRAIL_SIGNING_KEY (a note signer key), else the one kept in keyDir
// (created on first start; no keyDir: the key is required);
// $JSM_TRAIL_CHECKPOINT_EVERY (entries) and $JSM_TRAIL_CHECKPOINT_INTERVAL
// (a duration) set how often it signs; $JSM_TRAIL_SIGNER_KEYS are the
// pinned event signer keys.
func FromEnv(d Deps, keyDir string) (Deps, error) {
	d.SigningKey = os.Getenv("JSM_TRAIL_SIGNING_KEY")
	if d.SigningKey == "" {
		if keyDir == "" {
			return d, errors.New("JSM_TRAIL_SIGNING_KEY is required")
		}
		var err error
		if d.SigningKey, err = LoadOrCreateKey(keyDir, Origin); err != nil {
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
	return d, nil
}
