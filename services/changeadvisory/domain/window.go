package domain

import "time"

// Window is a recurring maintenance window of the contract: every ISO
// Weekday (1 = Monday ... 7 = Sunday) from the local time Start ("HH:MM")
// in TimeZone (IANA name; empty means UTC) for Duration (at most a day).
// A window may cross midnight: Sunday 22:00 for 4 h ends Monday 02:00.
type Window struct {
	Weekday  int32         `json:"weekday"`
	Start    string        `json:"start"`
	Duration time.Duration `json:"duration"`
	TimeZone string        `json:"time_zone,omitzero"`
}

// Contains reports whether [start, end] lies entirely inside one
// occurrence of the window. Occurrences are taken in the window's time
// zone, so they follow its daylight-saving changes; a window whose zone or
// start does not parse contains nothing.
func (w Window) Contains(start, end time.Time) bool {
	if end.Before(start) || w.Duration <= 0 || w.Weekday < 1 || w.Weekday > 7 {
		return false
	}
	loc, err := w.location()
	if err != nil {
		return false
	}
	start0, err := time.Parse("15:04", w.Start)
	if err != nil {
		return false
	}
	hh, mm := start0.Hour(), start0.Minute()
	local := start.In(loc)
	// An occurrence containing start began on start's local day or up to a
	// week before it (a window lasts at most a day; a week covers any
	// weekday and any length).
	for back := range 8 {
		day := time.Date(local.Year(), local.Month(), local.Day()-back, 12, 0, 0, 0, loc)
		if isoWeekday(day) != w.Weekday {
			continue
		}
		from := time.Date(day.Year(), day.Month(), day.Day(), hh, mm, 0, 0, loc)
		to := from.Add(w.Duration)
		if !start.Before(from) && !end.After(to) {
			return true
		}
	}
	return false
}

func (w Window) location() (*time.Location, error) {
	if w.TimeZone == "" {
		return time.UTC, nil
	}
	return time.LoadLocation(w.TimeZone)
}

func isoWeekday(t time.Time) int32 {
	if d := t.Weekday(); d != time.Sunday {
		return int32(d)
	}
	return 7
}

// InsideWindows reports whether [start, end] lies entirely inside one
// occurrence of one of the windows.
func InsideWindows(ws []Window, start, end time.Time) bool {
	for _, w := range ws {
		if w.Contains(start, end) {
			return true
		}
	}
	return false
}

// NeedsDowntimeAgreement reports whether the customer must agree to the
// downtime explicitly: there is downtime, and the planned window is unknown
// or not entirely inside one of the contract's maintenance windows.
func NeedsDowntimeAgreement(ws []Window, downtime time.Duration, start, end time.Time) bool {
	if downtime <= 0 {
		return false
	}
	if start.IsZero() || end.IsZero() {
		return true
	}
	return !InsideWindows(ws, start, end)
}
