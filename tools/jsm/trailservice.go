package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/jsmplatform/jsm/services/trail"
)

// newTrail builds the trail service of `jsm up`. Its checkpoint signing key
// is $JSM_TRAIL_SIGNING_KEY (a note signer key), else the one kept in the
// data dir (created on first start); $JSM_TRAIL_CHECKPOINT_EVERY (entries)
// and $JSM_TRAIL_CHECKPOINT_INTERVAL (a duration) set how often it signs.
func newTrail(d serviceDeps) (*trail.Service, error) {
	key := os.Getenv("JSM_TRAIL_SIGNING_KEY")
	if key == "" {
		var err error
		if key, err = trail.LoadOrCreateKey(d.DataDir, trail.Origin); err != nil {
			return nil, err
		}
	}
	deps := trail.Deps{Store: d.Store, Pool: d.Pool, Logger: d.Logger, SigningKey: key}
	if v := os.Getenv("JSM_TRAIL_CHECKPOINT_EVERY"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("JSM_TRAIL_CHECKPOINT_EVERY=%q: want a positive number of entries", v)
		}
		deps.CheckpointEvery = n
	}
	if v := os.Getenv("JSM_TRAIL_CHECKPOINT_INTERVAL"); v != "" {
		t, err := time.ParseDuration(v)
		if err != nil || t <= 0 {
			return nil, fmt.Errorf("JSM_TRAIL_CHECKPOINT_INTERVAL=%q: want a duration such as 10s", v)
		}
		deps.CheckpointInterval = t
	}
	return trail.New(deps)
}
