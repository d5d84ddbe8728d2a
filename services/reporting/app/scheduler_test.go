package app

import (
	"testing"
	"time"

	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
	cdomain "github.com/jsmplatform/jsm/services/contracts/domain"
)

// TestDue: which contract gets the report of which period at a time. On
// 14 May 2026 the last closed month is April; a contract gets April's
// report when its terms in force have a cadence, it existed before 1 May
// and it was not terminated by 1 April.
func TestDue(t *testing.T) {
	now := time.Date(2026, 5, 14, 15, 0, 0, 0, time.UTC)
	apr, may := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	monthly := func(mods ...func(*cdomain.State)) cdomain.State {
		s := cdomain.State{CreatedAt: apr.AddDate(0, -2, 0), InForce: &cdomain.TermsVersion{Version: 1}}
		s.InForce.Terms.Levels.ReportCadence = contractsv1.ReportCadence_REPORT_CADENCE_MONTHLY
		for _, m := range mods {
			m(&s)
		}
		return s
	}
	created := func(at time.Time) func(*cdomain.State) { return func(s *cdomain.State) { s.CreatedAt = at } }
	terminated := func(at time.Time) func(*cdomain.State) {
		return func(s *cdomain.State) { s.Termination = &cdomain.Termination{EffectiveDate: at} }
	}
	for _, tc := range []struct {
		name string
		s    cdomain.State
		want bool
	}{
		{"monthly, in force since February", monthly(), true},
		{"no terms in force", cdomain.State{CreatedAt: apr.AddDate(0, -2, 0)}, false},
		{"no cadence", monthly(func(s *cdomain.State) { s.InForce.Terms.Levels.ReportCadence = 0 }), false},
		{"created during April", monthly(created(apr.Add(10 * 24 * time.Hour))), true},
		{"created one second before May", monthly(created(may.Add(-time.Second))), true},
		{"created exactly at April's end", monthly(created(may)), false},
		{"created in May", monthly(created(may.Add(24 * time.Hour))), false},
		{"terminated during April", monthly(terminated(apr.Add(24 * time.Hour))), true},
		{"terminated exactly at April's start", monthly(terminated(apr)), false},
		{"terminated in March", monthly(terminated(apr.Add(-24 * time.Hour))), false},
		{"termination without a date yet", monthly(terminated(time.Time{})), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start, end, ok := due(tc.s, now)
			if ok != tc.want {
				t.Fatalf("due = %t, want %t", ok, tc.want)
			}
			if ok && (!start.Equal(apr) || !end.Equal(may)) {
				t.Fatalf("period %s – %s, want April", start, end)
			}
		})
	}
}
