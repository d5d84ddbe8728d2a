package main

import (
	"github.com/jsmplatform/jsm/services/trail"
)

// newTrail builds the trail service of `jsm up`, its signing key kept in
// the data dir unless the environment names one (trail.FromEnv).
func newTrail(d serviceDeps) (*trail.Service, error) {
	deps, err := trail.FromEnv(trail.Deps{Store: d.Store, Pool: d.Pool, Logger: d.Logger}, d.DataDir)
	if err != nil {
		return nil, err
	}
	return trail.New(deps)
}
