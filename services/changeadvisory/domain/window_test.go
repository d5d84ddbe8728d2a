package domain_test

import (
	"testing"
	"time"

	"github.com/jsmplatform/jsm/services/changeadvisory/domain"
)

func TestWindowContains(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	utc := func(y int, m time.Month, d, hh, mm int) time.Time { return time.Date(y, m, d, hh, mm, 0, 0, time.UTC) }
	ber := func(y int, m time.Month, d, hh, mm int) time.Time { return time.Date(y, m, d, hh, mm, 0, 0, berlin) }
	// 2026-03-02 is a Monday; 2026-03-08 a Sunday; Berlin moves to summer
	// time on 2026-03-29 (a Sunday) at 02:00.
	saturday := domain.Window{Weekday: 6, Start: "02:00", Duration: 4 * time.Hour}
	sundayNight := domain.Window{Weekday: 7, Start: "22:00", Duration: 4 * time.Hour} // crosses midnight into Monday
	berlinSunday := domain.Window{Weekday: 7, Start: "01:00", Duration: 4 * time.Hour, TimeZone: "Europe/Berlin"}
	for _, tc := range []struct {
		name       string
		w          domain.Window
		start, end time.Time
		want       bool
	}{
		{"inside", saturday, utc(2026, 3, 7, 3, 0), utc(2026, 3, 7, 4, 0), true},
		{"exactly the window", saturday, utc(2026, 3, 7, 2, 0), utc(2026, 3, 7, 6, 0), true},
		{"starts a minute early", saturday, utc(2026, 3, 7, 1, 59), utc(2026, 3, 7, 3, 0), false},
		{"ends a minute late", saturday, utc(2026, 3, 7, 5, 0), utc(2026, 3, 7, 6, 1), false},
		{"another weekday", saturday, utc(2026, 3, 6, 3, 0), utc(2026, 3, 6, 4, 0), false},
		{"a week later", saturday, utc(2026, 3, 14, 3, 0), utc(2026, 3, 14, 4, 0), true},
		{"across midnight, before it", sundayNight, utc(2026, 3, 8, 22, 30), utc(2026, 3, 8, 23, 30), true},
		{"across midnight, spanning it", sundayNight, utc(2026, 3, 8, 23, 0), utc(2026, 3, 9, 1, 0), true},
		{"across midnight, after it on Monday", sundayNight, utc(2026, 3, 9, 0, 30), utc(2026, 3, 9, 2, 0), true},
		{"across midnight, past its end", sundayNight, utc(2026, 3, 9, 1, 0), utc(2026, 3, 9, 2, 1), false},
		{"Monday night is not Sunday night", sundayNight, utc(2026, 3, 9, 22, 30), utc(2026, 3, 9, 23, 0), false},
		{"spanning two occurrences", saturday, utc(2026, 3, 7, 3, 0), utc(2026, 3, 14, 3, 0), false},
		{"in the window's zone (winter, UTC+1)", berlinSunday, ber(2026, 3, 8, 1, 0), ber(2026, 3, 8, 5, 0), true},
		{"UTC times of the Berlin window", berlinSunday, utc(2026, 3, 8, 0, 0), utc(2026, 3, 8, 4, 0), true},
		{"the UTC hours are not the window", berlinSunday, utc(2026, 3, 8, 1, 0), utc(2026, 3, 8, 5, 0), false},
		{"Saturday in UTC is Sunday in Berlin", berlinSunday, utc(2026, 3, 7, 23, 30), utc(2026, 3, 8, 1, 0), false},
		{"Saturday 23:59 UTC is Sunday 00:59 in Berlin: before 01:00", berlinSunday, utc(2026, 3, 7, 23, 59), utc(2026, 3, 8, 0, 30), false},
		{"Sunday 00:00 UTC is 01:00 in Berlin", berlinSunday, utc(2026, 3, 8, 0, 0), utc(2026, 3, 8, 0, 30), true},
		// On the day the clocks go forward the window still lasts 4 h of real
		// time from 01:00 CET (00:00 UTC), so it ends 04:00 UTC (06:00 CEST).
		{"daylight saving day, real hours", berlinSunday, utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 4, 0), true},
		{"daylight saving day, past the real end", berlinSunday, utc(2026, 3, 29, 3, 0), utc(2026, 3, 29, 4, 1), false},
		{"summer time: 01:00 CEST is 23:00 UTC", berlinSunday, utc(2026, 4, 4, 23, 0), utc(2026, 4, 5, 3, 0), true},
		{"end before start", saturday, utc(2026, 3, 7, 4, 0), utc(2026, 3, 7, 3, 0), false},
		{"unknown zone contains nothing", domain.Window{Weekday: 6, Start: "02:00", Duration: 4 * time.Hour, TimeZone: "Mars/Olympus"}, utc(2026, 3, 7, 3, 0), utc(2026, 3, 7, 4, 0), false},
		{"bad start contains nothing", domain.Window{Weekday: 6, Start: "late", Duration: 4 * time.Hour}, utc(2026, 3, 7, 3, 0), utc(2026, 3, 7, 4, 0), false},
		{"weekday out of range", domain.Window{Weekday: 8, Start: "02:00", Duration: 4 * time.Hour}, utc(2026, 3, 7, 3, 0), utc(2026, 3, 7, 4, 0), false},
		{"full day window", domain.Window{Weekday: 3, Start: "00:00", Duration: 24 * time.Hour}, utc(2026, 3, 4, 0, 0), utc(2026, 3, 5, 0, 0), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.w.Contains(tc.start, tc.end); got != tc.want {
				t.Fatalf("%+v contains [%s, %s] = %t, want %t", tc.w, tc.start, tc.end, got, tc.want)
			}
		})
	}
}

func TestNeedsDowntimeAgreement(t *testing.T) {
	ws := []domain.Window{
		{Weekday: 6, Start: "02:00", Duration: 4 * time.Hour},
		{Weekday: 7, Start: "22:00", Duration: 4 * time.Hour},
	}
	sat := time.Date(2026, 3, 7, 2, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		ws         []domain.Window
		downtime   time.Duration
		start, end time.Time
		want       bool
	}{
		{"no downtime, outside", ws, 0, sat.Add(-5 * time.Hour), sat.Add(-4 * time.Hour), false},
		{"downtime inside the first window", ws, time.Hour, sat, sat.Add(2 * time.Hour), false},
		{"downtime inside the second window", ws, time.Hour, sat.Add(44 * time.Hour), sat.Add(47 * time.Hour), false},
		{"downtime outside", ws, time.Hour, sat.Add(-5 * time.Hour), sat.Add(-4 * time.Hour), true},
		{"downtime partly outside", ws, time.Hour, sat.Add(3 * time.Hour), sat.Add(5 * time.Hour), true},
		{"downtime, no planned window", ws, time.Hour, time.Time{}, time.Time{}, true},
		{"downtime, contract has no windows", nil, time.Hour, sat, sat.Add(time.Hour), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := domain.NeedsDowntimeAgreement(tc.ws, tc.downtime, tc.start, tc.end); got != tc.want {
				t.Fatalf("got %t, want %t", got, tc.want)
			}
		})
	}
}

// FuzzWindowContains: any window the contract may hold (or not), any
// planned window: no panic, and a window that contains [start, end]
// contains every part of it.
func FuzzWindowContains(f *testing.F) {
	f.Add(int32(7), "22:00", int64(4*time.Hour), "Europe/Berlin", int64(1772920800), int64(3600))
	f.Add(int32(0), "25:61", int64(-1), "Nowhere/Else", int64(0), int64(-5))
	f.Fuzz(func(t *testing.T, weekday int32, start string, dur int64, zone string, from, length int64) {
		w := domain.Window{Weekday: weekday, Start: start, Duration: time.Duration(dur), TimeZone: zone}
		s := time.Unix(from%(1<<40), 0).UTC()
		e := s.Add(time.Duration(length%int64(48*time.Hour)) * time.Nanosecond)
		if !w.Contains(s, e) {
			return
		}
		mid := s.Add(e.Sub(s) / 2)
		if !w.Contains(s, mid) || !w.Contains(mid, e) {
			t.Fatalf("%+v contains [%s, %s] but not its halves", w, s, e)
		}
	})
}
