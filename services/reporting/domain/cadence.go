package domain

import (
	"time"

	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
)

// PeriodOf returns the reporting period of the cadence that contains t,
// boundaries in UTC: weeks start on Monday, months, quarters and years on
// their first day. ok is false for no cadence.
func PeriodOf(c contractsv1.ReportCadence, t time.Time) (start, end time.Time, ok bool) {
	t = t.UTC()
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	switch c {
	case contractsv1.ReportCadence_REPORT_CADENCE_WEEKLY:
		start = day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
		return start, start.AddDate(0, 0, 7), true
	case contractsv1.ReportCadence_REPORT_CADENCE_MONTHLY:
		start = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 1, 0), true
	case contractsv1.ReportCadence_REPORT_CADENCE_QUARTERLY:
		start = time.Date(t.Year(), t.Month()-(t.Month()-1)%3, 1, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 3, 0), true
	case contractsv1.ReportCadence_REPORT_CADENCE_ANNUAL:
		start = time.Date(t.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(1, 0, 0), true
	}
	return time.Time{}, time.Time{}, false
}

// LastClosedPeriod is the latest period of the cadence that ended at or before t.
func LastClosedPeriod(c contractsv1.ReportCadence, t time.Time) (start, end time.Time, ok bool) {
	cur, _, ok := PeriodOf(c, t)
	if !ok {
		return cur, cur, false
	}
	start, end, _ = PeriodOf(c, cur.Add(-time.Nanosecond))
	return start, end, true
}
