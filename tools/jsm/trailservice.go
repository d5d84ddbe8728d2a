package main

import (
	"strings"

	"github.com/jsmplatform/jsm/libs/eventsig"
	"github.com/jsmplatform/jsm/services/trail"
)

// newTrail builds the trail service of `jsm up`, its signing key kept in
// the data dir unless the environment names one (trail.FromEnv). It pins
// the services' event signer keys unless JSM_TRAIL_SIGNER_KEYS names
// others: `jsm up` logs only events its own services signed.
func newTrail(d serviceDeps) (*trail.Service, error) {
	deps, err := trail.FromEnv(trail.Deps{Store: d.Store, Pool: d.Pool, Logger: d.Logger}, d.DataDir)
	if err != nil {
		return nil, err
	}
	if deps.SignerKeys.Len() == 0 {
		if deps.SignerKeys, err = eventsig.ParseKeys(strings.Join(d.SignerKeys, " ")); err != nil {
			return nil, err
		}
	}
	return trail.New(deps)
}
