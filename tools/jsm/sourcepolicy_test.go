package main

import (
	"testing"

	"github.com/jsmplatform/jsm/libs/auth"
	"github.com/jsmplatform/jsm/services/audits"
	"github.com/jsmplatform/jsm/services/changeadvisory"
	"github.com/jsmplatform/jsm/services/contracts"
	"github.com/jsmplatform/jsm/services/incidents"
	"github.com/jsmplatform/jsm/services/integration"
	"github.com/jsmplatform/jsm/services/patching"
	"github.com/jsmplatform/jsm/services/reporting"
	"github.com/jsmplatform/jsm/services/trail"
)

// `jsm up` serves every area behind one verifier that trusts ingest's
// issuer for sources: a source's token (role itsm-source, and no other
// role, as the verifier holds it to) may call procedures of the areas
// ingest drives and none of the others.
func TestSourceRoleOnlyReachesTheAreasIngestDrives(t *testing.T) {
	for name, tc := range map[string]struct {
		policy auth.Policy
		driven bool
	}{
		"incidents":      {incidents.Policy(), true},
		"patching":       {patching.Policy(), true},
		"changeadvisory": {changeadvisory.Policy(), true},
		"contracts":      {contracts.Policy(), false},
		"audits":         {audits.Policy(), false},
		"reporting":      {reporting.Policy(), false},
		"trail":          {trail.Policy(), false},
		"integration":    {integration.Policy(), false},
		"admin":          {adminPolicy(), false},
	} {
		reached := 0
		for proc, perm := range tc.policy.Procedures {
			if perm != auth.Public && tc.policy.Allows([]string{auth.SourceRole}, perm) {
				reached++
				if !tc.driven {
					t.Errorf("%s: a source's token may call %s", name, proc)
				}
			}
		}
		if tc.driven && reached == 0 {
			t.Errorf("%s: a source's token may call nothing", name)
		}
	}
	// Merged as the host merges them, the roles of one area do not open
	// another's procedures to sources.
	merged := contracts.Policy().Merge(incidents.Policy(), patching.Policy(), changeadvisory.Policy(),
		audits.Policy(), reporting.Policy(), trail.Policy(), integration.Policy(), adminPolicy())
	for _, p := range []auth.Policy{contracts.Policy(), audits.Policy(), reporting.Policy(), trail.Policy(), integration.Policy(), adminPolicy()} {
		for proc, perm := range p.Procedures {
			if perm != auth.Public && merged.Allows([]string{auth.SourceRole}, perm) {
				t.Errorf("merged policy: a source's token may call %s", proc)
			}
		}
	}
}
