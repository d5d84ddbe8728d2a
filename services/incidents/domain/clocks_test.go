package domain_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/jsmplatform/jsm/services/incidents/domain"
)

// Clocks are checked on the state the events fold into. The reporter (the
// customer) became aware at base-1h; the contract gives 1 h for critical,
// 4 h for high, 24 h for medium and nothing for low.

// clockCase: after the commands, the clocks are exactly these.
type clockCase struct {
	name  string
	given []domain.Command
	want  []domain.Clock
	check func(t *testing.T, s domain.State)
}

func runClocks(t *testing.T, cases []clockCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := fold(t, c.given...)
			clocksAre(t, s, c.want...)
			if c.check != nil {
				c.check(t, s)
			}
		})
	}
}

func TestPartyNotificationClock(t *testing.T) {
	t.Parallel()
	noDeadlines := func(c *domain.ReportIncident) { c.Contract.Deadlines = nil }
	onlyCritical := func(c *domain.ReportIncident) {
		c.Contract.Deadlines = []domain.Deadline{{Severity: critical, Within: 30 * time.Minute}}
	}
	n1 := clock(notice1, kindNotification, customer, aware, aware.Add(4*hour))
	runClocks(t, []clockCase{
		{name: "critical: 1 h after awareness", given: history(report(severity(critical))), want: []domain.Clock{clock(notice1, kindNotification, customer, aware, aware.Add(hour))}},
		{name: "high: 4 h after awareness", given: history(report()), want: []domain.Clock{n1}},
		{name: "medium: 24 h after awareness", given: history(report(severity(medium))), want: []domain.Clock{clock(notice1, kindNotification, customer, aware, aware.Add(day))}},
		{name: "low: no deadline, no clock", given: history(report(severity(low)))},
		{name: "contract without deadlines", given: history(report(severity(critical), noDeadlines))},
		{name: "contract without one for the severity", given: history(report(onlyCritical))},
		{
			name: "the provider reports: the provider owes it", given: history(report(reportedBy(provider), severity(critical))),
			want: []domain.Clock{clock("party_notification/org-provider/1", kindNotification, provider, aware, aware.Add(hour))},
		},
		{name: "met by the reporter's notice", given: history(report(), notify(customer, at(hour), "n-1")), want: []domain.Clock{met(n1, at(hour))}},
		{name: "met exactly at the deadline", given: history(report(), notify(customer, at(3*hour), "n-1")), want: []domain.Clock{met(n1, at(3*hour))}},
		{name: "not met by the other party's notice", given: history(report(), notify(provider, at(hour), "n-1")), want: []domain.Clock{n1}},
		{
			name: "met by the first notice only", given: history(report(), notify(customer, at(hour), "n-1"), notify(customer, at(2*hour), "n-2")),
			want: []domain.Clock{met(n1, at(hour))},
		},
	})
}

func TestReassessmentRestartsTheNotificationClock(t *testing.T) {
	t.Parallel()
	n1 := clock(notice1, kindNotification, customer, aware, at(3*hour)) // high: aware + 4 h
	noCritical := func(c *domain.ReportIncident) {
		c.Contract.Deadlines = []domain.Deadline{{Severity: high, Within: 4 * hour}}
	}
	runClocks(t, []clockCase{
		{
			name:  "higher, unmet, the new deadline is sooner",
			given: history(report(), assess(provider, at(30*time.Minute), critical)),
			want:  []domain.Clock{clock(notice1, kindNotification, customer, at(30*time.Minute), at(90*time.Minute))},
		},
		{
			name:  "higher, unmet, the old deadline is sooner",
			given: history(report(), assess(provider, at(2*hour+30*time.Minute), critical)),
			want:  []domain.Clock{n1},
		},
		{
			name:  "higher, unmet, both deadlines equal",
			given: history(report(), assess(provider, at(2*hour), critical)),
			want:  []domain.Clock{n1},
		},
		{
			name:  "medium to high, unmet",
			given: history(report(severity(medium)), assess(customer, at(hour), high)),
			want:  []domain.Clock{clock(notice1, kindNotification, customer, at(hour), at(5*hour))},
		},
		{
			name:  "higher, already met: notify again",
			given: history(report(), notify(customer, at(hour), "n-1"), assess(provider, at(2*hour), critical)),
			want: []domain.Clock{
				met(n1, at(hour)),
				clock(notice2, kindNotification, customer, at(2*hour), at(3*hour)),
			},
		},
		{
			name:  "the new clock is met by the next notice",
			given: history(report(), notify(customer, at(hour), "n-1"), assess(provider, at(2*hour), critical), notify(customer, at(2*hour+30*time.Minute), "n-2")),
			want: []domain.Clock{
				met(n1, at(hour)),
				met(clock(notice2, kindNotification, customer, at(2*hour), at(3*hour)), at(2*hour+30*time.Minute)),
			},
		},
		{
			name:  "higher twice after meeting each",
			given: history(report(severity(medium)), notify(customer, at(hour), "n-1"), assess(customer, at(2*hour), high), notify(customer, at(3*hour), "n-2"), assess(customer, at(4*hour), critical)),
			want: []domain.Clock{
				met(clock(notice1, kindNotification, customer, aware, aware.Add(day)), at(hour)),
				met(clock(notice2, kindNotification, customer, at(2*hour), at(6*hour)), at(3*hour)),
				clock("party_notification/org-customer/3", kindNotification, customer, at(4*hour), at(5*hour)),
			},
		},
		{
			name:  "lower changes nothing",
			given: history(report(), assess(provider, at(hour), medium)),
			want:  []domain.Clock{n1},
		},
		{
			name:  "lower after meeting changes nothing",
			given: history(report(), notify(customer, at(hour), "n-1"), assess(provider, at(2*hour), low)),
			want:  []domain.Clock{met(n1, at(hour))},
		},
		{
			name:  "lower, then back up: the earlier deadline stands",
			given: history(report(), assess(provider, at(hour), medium), assess(provider, at(2*hour), high)),
			want:  []domain.Clock{n1},
		},
		{
			name:  "category only changes nothing",
			given: history(report(), &domain.AssessIncident{By: by(customer, at(hour)), Severity: high, Category: "phishing"}),
			want:  []domain.Clock{n1},
		},
		{
			name:  "from low, without a clock, to high",
			given: history(report(severity(low)), assess(customer, at(2*hour), high)),
			want:  []domain.Clock{clock(notice1, kindNotification, customer, at(2*hour), at(6*hour))},
		},
		{
			name:  "from low, notified already, to high: a clock all the same",
			given: history(report(severity(low)), notify(customer, at(hour), "n-1"), assess(customer, at(2*hour), high)),
			want:  []domain.Clock{clock(notice1, kindNotification, customer, at(2*hour), at(6*hour))},
		},
		{
			name:  "to a severity the contract has no deadline for",
			given: history(report(noCritical), assess(customer, at(hour), critical)),
			want:  []domain.Clock{n1},
		},
		{
			name:  "higher, overdue and unmet: the missed deadline stays",
			given: history(report(), markOverdue(at(3*hour+sec), notice1), assess(customer, at(4*hour), critical)),
			want:  []domain.Clock{late(n1)},
		},
		{
			name:  "higher, met late: a new clock",
			given: history(report(), notify(customer, at(4*hour), "n-1"), assess(customer, at(5*hour), critical)),
			want:  []domain.Clock{late(met(n1, at(4*hour))), clock(notice2, kindNotification, customer, at(5*hour), at(6*hour))},
		},
	})
}

func TestNIS2Clocks(t *testing.T) {
	t.Parallel()
	n1 := clock(notice1, kindNotification, customer, aware, at(3*hour))
	ew := clock(ewCust, kindEarlyWarning, customer, aware, aware.Add(24*hour))
	nt := clock(nis2Cust, kindNIS2Notice, customer, aware, aware.Add(72*hour))
	provAware := func(from time.Time) []domain.Clock {
		return []domain.Clock{
			clock(ewProv, kindEarlyWarning, provider, from, from.Add(24*hour)),
			clock(nis2Prov, kindNIS2Notice, provider, from, from.Add(72*hour)),
		}
	}
	withAware := classify(provider, at(3*hour), true, false)
	withAware.AwareAt = at(30 * time.Minute)
	ignoredAware := classify(provider, at(5*hour), true, false)
	ignoredAware.AwareAt = at(30 * time.Minute)

	runClocks(t, []clockCase{
		{name: "the reporter: 24 h and 72 h after its awareness", given: history(report(), classify(customer, at(2*hour), true, false)), want: []domain.Clock{n1, ew, nt}},
		{name: "not significant: none", given: history(report(), classify(customer, at(2*hour), false, false)), want: []domain.Clock{n1}},
		{name: "major only: no NIS2 clocks", given: history(report(severity(low)), classify(provider, at(2*hour), false, true, "x")), want: []domain.Clock{
			clock("dora_initial/org-provider", kindDORAInitial, provider, at(2*hour), at(6*hour)),
		}},
		{
			name:  "the other party: from the first notice it received",
			given: history(report(), notify(customer, at(hour), "n-1"), notify(customer, at(2*hour), "n-2"), classify(provider, at(5*hour), true, false)),
			want:  append([]domain.Clock{met(n1, at(hour))}, provAware(at(hour))...),
		},
		{
			name:  "the other party, notified: its own aware_at is ignored",
			given: history(report(), notify(customer, at(hour), "n-1"), ignoredAware),
			want:  append([]domain.Clock{met(n1, at(hour))}, provAware(at(hour))...),
		},
		{
			name:  "the other party, not notified: from the aware_at it gives",
			given: history(report(), withAware),
			want:  append([]domain.Clock{n1}, provAware(at(30*time.Minute))...),
		},
		{
			name:  "the other party, not notified, no aware_at: from its classification",
			given: history(report(), classify(provider, at(2*hour), true, false)),
			want:  append([]domain.Clock{n1}, provAware(at(2*hour))...),
		},
		{
			name:  "the other party's notice to the reporter does not move the reporter's awareness",
			given: history(report(), notify(provider, at(hour), "n-1"), classify(customer, at(2*hour), true, false)),
			want:  []domain.Clock{n1, ew, nt},
		},
		{
			name:  "the awareness learnt at classification stays",
			given: history(report(), classify(provider, at(2*hour), true, false), notify(customer, at(3*hour), "n-1"), classify(provider, at(4*hour), true, false, "users")),
			want:  append([]domain.Clock{met(n1, at(3*hour))}, provAware(at(2*hour))...),
		},
		{
			name:  "both parties run their own",
			given: history(report(), classify(customer, at(hour), true, false), classify(provider, at(2*hour), true, false)),
			want:  append([]domain.Clock{n1, ew, nt}, provAware(at(2*hour))...),
		},
		{
			name:  "the early warning meets its clock only",
			given: history(report(), classify(customer, at(hour), true, false), submit(customer, at(5*hour), nis2, earlyWarning)),
			want:  []domain.Clock{n1, met(ew, at(5*hour)), nt},
		},
		{
			name:  "the notification meets both and starts the final report, a month after it",
			given: history(report(), classify(customer, at(hour), true, false), submit(customer, at(5*hour), nis2, earlyWarning), submit(customer, at(50*hour), nis2, notification)),
			want: []domain.Clock{n1, met(ew, at(5*hour)), met(nt, at(50*hour)),
				clock(finCust, kindNIS2Final, customer, at(50*hour), time.Date(2026, 4, 4, 12, 0, 0, 0, time.UTC))},
		},
		{
			name:  "a notification without the early warning meets the early warning too",
			given: history(report(), classify(customer, at(hour), true, false), submit(customer, at(10*hour), nis2, notification)),
			want: []domain.Clock{n1, met(ew, at(10*hour)), met(nt, at(10*hour)),
				clock(finCust, kindNIS2Final, customer, at(10*hour), time.Date(2026, 4, 2, 20, 0, 0, 0, time.UTC))},
		},
		{
			name: "the final report runs from the submission time, not the recording time",
			given: history(report(), classify(customer, at(hour), true, false),
				submitted(customer, at(30*hour), at(20*hour), nis2, notification)),
			want: []domain.Clock{n1, met(ew, at(20*hour)), met(nt, at(20*hour)),
				clock(finCust, kindNIS2Final, customer, at(20*hour), time.Date(2026, 4, 3, 6, 0, 0, 0, time.UTC))},
		},
		{
			name: "the final report meets its clock",
			given: history(report(), classify(customer, at(hour), true, false), submit(customer, at(10*hour), nis2, notification),
				submit(customer, at(20*day), nis2, finalReport)),
			want: []domain.Clock{n1, met(ew, at(10*hour)), met(nt, at(10*hour)),
				met(clock(finCust, kindNIS2Final, customer, at(10*hour), time.Date(2026, 4, 2, 20, 0, 0, 0, time.UTC)), at(20*day))},
		},
		{
			name:  "one party's submission meets only its own clocks",
			given: history(report(), classify(customer, at(hour), true, false), classify(provider, at(2*hour), true, false), submit(provider, at(3*hour), nis2, earlyWarning)),
			want: append([]domain.Clock{n1, ew, nt},
				met(clock(ewProv, kindEarlyWarning, provider, at(2*hour), at(26*hour)), at(3*hour)), clock(nis2Prov, kindNIS2Notice, provider, at(2*hour), at(74*hour))),
		},
	})
}

// One month after is the same day and time of the next month, or its last
// day: 31 January + 1 month is 28 February (2026 is no leap year).
func TestNIS2FinalReportAtTheEndOfAMonth(t *testing.T) {
	t.Parallel()
	jan30 := time.Date(2026, 1, 30, 8, 0, 0, 0, time.UTC)
	r := report(func(c *domain.ReportIncident) { c.By.At, c.AwareAt = jan30, jan30; c.Severity = low })
	s := fold(t, r, classify(customer, jan30.Add(hour), true, false), submit(customer, time.Date(2026, 1, 31, 9, 0, 0, 0, time.UTC), nis2, notification))
	k, ok := s.Clock(finCust)
	if !ok || !k.DueAt.Equal(time.Date(2026, 2, 28, 9, 0, 0, 0, time.UTC)) || !k.StartedAt.Equal(time.Date(2026, 1, 31, 9, 0, 0, 0, time.UTC)) {
		t.Fatalf("final report clock = %s", clockLine(k))
	}
}

func TestDORAClocks(t *testing.T) {
	t.Parallel()
	n1 := clock(notice1, kindNotification, customer, aware, at(3*hour))
	// aware = base-1h; classified major at base+1h: 4 h after it (base+5h)
	// comes before 24 h after awareness (base+23h).
	init := clock(doraInit, kindDORAInitial, customer, at(hour), at(5*hour))
	major := history(report(), classify(customer, at(hour), false, true, "clients"))
	reported := func(more ...domain.Command) []domain.Command { return with(major, more...) }

	runClocks(t, []clockCase{
		{name: "initial: 4 h after classification", given: major, want: []domain.Clock{n1, init}},
		{
			name:  "initial: at most 24 h after awareness",
			given: history(report(), classify(customer, at(22*hour), false, true)),
			want:  []domain.Clock{n1, clock(doraInit, kindDORAInitial, customer, at(22*hour), aware.Add(24*hour))},
		},
		{
			name:  "initial: both limits equal",
			given: history(report(), classify(customer, at(19*hour), false, true)),
			want:  []domain.Clock{n1, clock(doraInit, kindDORAInitial, customer, at(19*hour), at(23*hour))},
		},
		{
			name:  "initial: classified a day late, due at once",
			given: history(report(), classify(customer, at(30*hour), false, true)),
			want:  []domain.Clock{n1, clock(doraInit, kindDORAInitial, customer, at(30*hour), at(23*hour))},
		},
		{
			name:  "the other party: from its own awareness and classification",
			given: history(report(), notify(customer, at(2*hour), "n-1"), classify(provider, at(25*hour), false, true)),
			want:  []domain.Clock{met(n1, at(2*hour)), clock("dora_initial/org-provider", kindDORAInitial, provider, at(25*hour), at(26*hour))},
		},
		{
			name:  "the initial starts the intermediate, 72 h after it",
			given: reported(submit(customer, at(3*hour), dora, initial)),
			want:  []domain.Clock{n1, met(init, at(3*hour)), clock(doraMid, kindDORAInterim, customer, at(3*hour), at(75*hour))},
		},
		{
			name:  "the intermediate starts the final, a month after it",
			given: reported(submit(customer, at(3*hour), dora, initial), submit(customer, at(50*hour), dora, intermediate)),
			want: []domain.Clock{n1, met(init, at(3*hour)), met(clock(doraMid, kindDORAInterim, customer, at(3*hour), at(75*hour)), at(50*hour)),
				clock(doraFin, kindDORAFinal, customer, at(50*hour), time.Date(2026, 4, 4, 12, 0, 0, 0, time.UTC))},
		},
		{
			name: "the final runs a month after the last intermediate",
			given: reported(submit(customer, at(3*hour), dora, initial), submit(customer, at(50*hour), dora, intermediate),
				submit(customer, at(100*hour), dora, intermediate), submit(customer, at(8*day), dora, intermediate)),
			want: []domain.Clock{n1, met(init, at(3*hour)), met(clock(doraMid, kindDORAInterim, customer, at(3*hour), at(75*hour)), at(50*hour)),
				clock(doraFin, kindDORAFinal, customer, at(8*day), time.Date(2026, 4, 10, 10, 0, 0, 0, time.UTC))},
		},
		{
			name: "an intermediate after the final changes nothing",
			given: reported(submit(customer, at(3*hour), dora, initial), submit(customer, at(50*hour), dora, intermediate),
				submit(customer, at(6*day), dora, finalReport), submit(customer, at(7*day), dora, intermediate)),
			want: []domain.Clock{n1, met(init, at(3*hour)), met(clock(doraMid, kindDORAInterim, customer, at(3*hour), at(75*hour)), at(50*hour)),
				met(clock(doraFin, kindDORAFinal, customer, at(50*hour), time.Date(2026, 4, 4, 12, 0, 0, 0, time.UTC)), at(6*day))},
		},
		{
			name: "an intermediate after the final was recorded overdue changes nothing",
			given: reported(submit(customer, at(3*hour), dora, initial), submit(customer, at(50*hour), dora, intermediate),
				markOverdue(time.Date(2026, 4, 4, 12, 0, 1, 0, time.UTC), doraFin),
				submit(customer, time.Date(2026, 4, 5, 0, 0, 0, 0, time.UTC), dora, intermediate)),
			want: []domain.Clock{n1, met(init, at(3*hour)), met(clock(doraMid, kindDORAInterim, customer, at(3*hour), at(75*hour)), at(50*hour)),
				late(clock(doraFin, kindDORAFinal, customer, at(50*hour), time.Date(2026, 4, 4, 12, 0, 0, 0, time.UTC)))},
		},
		{
			name:  "reclassified major: the first major time stays",
			given: reported(classify(customer, at(3*hour), false, true, "clients", "reputation")),
			want:  []domain.Clock{n1, init},
			check: func(t *testing.T, s domain.State) {
				c, _ := s.ClassificationOf(customer)
				if !c.MajorSince.Equal(at(hour)) || !c.ClassifiedAt.Equal(at(3*hour)) || len(c.Criteria) != 2 {
					t.Fatalf("classification = %+v", c)
				}
			},
		},
		{
			name:  "significant, then also major: NIS2 clocks stay, DORA runs from the major classification",
			given: history(report(), classify(customer, at(hour), true, false), classify(customer, at(6*hour), true, true)),
			want: []domain.Clock{n1, clock(ewCust, kindEarlyWarning, customer, aware, at(23*hour)), clock(nis2Cust, kindNIS2Notice, customer, aware, at(71*hour)),
				clock(doraInit, kindDORAInitial, customer, at(6*hour), at(10*hour))},
			check: func(t *testing.T, s domain.State) {
				if c, _ := s.ClassificationOf(customer); !c.MajorSince.Equal(at(6 * hour)) {
					t.Fatalf("classification = %+v", c)
				}
			},
		},
	})
}

func TestDeclassification(t *testing.T) {
	t.Parallel()
	n1 := clock(notice1, kindNotification, customer, aware, at(3*hour))
	ew := clock(ewCust, kindEarlyWarning, customer, aware, at(23*hour))
	nt := clock(nis2Cust, kindNIS2Notice, customer, aware, at(71*hour))
	init := clock(doraInit, kindDORAInitial, customer, at(hour), at(5*hour))
	both := history(report(), classify(customer, at(hour), true, true))

	runClocks(t, []clockCase{
		{
			name:  "pending clocks go, met and overdue ones stay",
			given: with(both, submit(customer, at(2*hour), nis2, earlyWarning), markOverdue(at(5*hour+sec), doraInit), classify(customer, at(6*hour), false, false)),
			want:  []domain.Clock{n1, met(ew, at(2*hour)), late(init)},
			check: func(t *testing.T, s domain.State) {
				if !s.Overdue() {
					t.Fatal("the overdue initial notification no longer counts")
				}
			},
		},
		{
			name:  "overdue and met late stays",
			given: with(both, submit(customer, at(6*hour), dora, initial), classify(customer, at(7*hour), true, false)),
			want:  []domain.Clock{n1, ew, nt, late(met(init, at(6*hour)))},
		},
		{
			name:  "no longer major: the pending intermediate goes, NIS2 stays",
			given: with(both, submit(customer, at(2*hour), dora, initial), classify(customer, at(3*hour), true, false)),
			want:  []domain.Clock{n1, ew, nt, met(init, at(2*hour))},
		},
		{
			name:  "no longer significant: the pending final report goes",
			given: with(both, submit(customer, at(2*hour), nis2, notification), classify(customer, at(3*hour), false, true)),
			want:  []domain.Clock{n1, met(ew, at(2*hour)), met(nt, at(2*hour)), init},
		},
		{
			name:  "the party notification clock is not regulatory",
			given: with(both, classify(customer, at(2*hour), false, false)),
			want:  []domain.Clock{n1},
		},
		{
			name:  "the other party's clocks stay",
			given: with(both, classify(provider, at(2*hour), true, false), classify(customer, at(3*hour), false, false)),
			want: []domain.Clock{n1,
				clock(ewProv, kindEarlyWarning, provider, at(2*hour), at(26*hour)), clock(nis2Prov, kindNIS2Notice, provider, at(2*hour), at(74*hour))},
		},
		{
			name:  "significant again: the clocks come back from the awareness",
			given: with(both, classify(customer, at(2*hour), false, false), classify(customer, at(3*hour), true, false)),
			want:  []domain.Clock{n1, ew, nt},
		},
		{
			// Declassification dropped the pending initial notification; a
			// new classification as major starts a new one from it.
			name:  "major again after declassification: a new initial clock",
			given: with(both, classify(customer, at(2*hour), false, false), classify(customer, at(3*hour), false, true)),
			want:  []domain.Clock{n1, clock(doraInit, kindDORAInitial, customer, at(3*hour), at(7*hour))},
		},
	})
}

func TestTaskClock(t *testing.T) {
	t.Parallel()
	k := clock(task1, kindTask, provider, at(hour), at(day))
	runClocks(t, []clockCase{
		{name: "assigning starts it", given: history(report(severity(low)), assign(customer, at(hour), "t-1", provider, at(day))), want: []domain.Clock{k}},
		{name: "completing meets it", given: history(report(severity(low)), assign(customer, at(hour), "t-1", provider, at(day)), complete(provider, at(2*hour), "t-1")), want: []domain.Clock{met(k, at(2*hour))}},
		{
			name: "each task its own",
			given: history(report(severity(low)), assign(customer, at(hour), "t-1", provider, at(day)), assign(provider, at(2*hour), "t-2", customer, at(2*day)),
				complete(customer, at(3*hour), "t-2")),
			want: []domain.Clock{k, met(clock("task/t-2", kindTask, customer, at(2*hour), at(2*day)), at(3*hour))},
		},
	})
}

// ---- overdue ----------------------------------------------------------------

func TestMarkOverdue(t *testing.T) {
	t.Parallel()
	due := at(3 * hour) // the high notification clock
	assigned := history(report(severity(low)), assign(customer, at(hour), "t-1", provider, at(day)))
	significant := history(report(), classify(customer, at(hour), true, true))
	overdueState := func(id string) func(*testing.T, domain.State) {
		return func(t *testing.T, s domain.State) {
			t.Helper()
			k, ok := s.Clock(id)
			if !ok || !k.Overdue || k.Met() || !s.Overdue() {
				t.Fatalf("clock = %s, incident overdue %t", clockLine(k), s.Overdue())
			}
			if e := s.Timeline[len(s.Timeline)-1]; e.Kind != "jsm.incidents.v1.ClockOverdue" || e.Org != "" {
				t.Fatalf("entry = %+v", e)
			}
		}
	}
	runAll(t, []spec{
		{name: "exactly at the deadline", given: history(report()), when: markOverdue(due, notice1)},
		{name: "before the deadline", given: history(report()), when: markOverdue(due.Add(-sec), notice1)},
		{
			name: "one second after", given: history(report()), when: markOverdue(due.Add(sec), notice1),
			then:  []proto.Message{clockOverdue(notice1, kindNotification, customer, due, due.Add(sec))},
			state: overdueState(notice1),
		},
		{name: "a second time", given: history(report(), markOverdue(due.Add(sec), notice1)), when: markOverdue(due.Add(hour), notice1)},
		{name: "a second time, after a restart, days later", given: history(report(), markOverdue(due.Add(sec), notice1)), when: markOverdue(due.Add(10*day), notice1)},
		{name: "met in time", given: history(report(), notify(customer, at(hour), "n-1")), when: markOverdue(due.Add(sec), notice1)},
		{name: "met late", given: history(report(), notify(customer, due.Add(time.Minute), "n-1")), when: markOverdue(due.Add(hour), notice1)},
		{name: "unknown clock", given: history(report()), when: markOverdue(due.Add(sec), "nope")},
		{
			name: "a clock declassification dropped", given: with(significant, classify(customer, at(2*hour), false, false)),
			when: markOverdue(at(24*hour), ewCust),
		},
		{
			name: "NIS2 early warning", given: significant, when: markOverdue(at(23*hour+sec), ewCust),
			then:  []proto.Message{clockOverdue(ewCust, kindEarlyWarning, customer, at(23*hour), at(23*hour+sec))},
			state: overdueState(ewCust),
		},
		{name: "NIS2 early warning at its deadline", given: significant, when: markOverdue(at(23*hour), ewCust)},
		{
			name: "NIS2 notification", given: significant, when: markOverdue(at(72*hour), nis2Cust),
			then: []proto.Message{clockOverdue(nis2Cust, kindNIS2Notice, customer, at(71*hour), at(72*hour))},
		},
		{
			name: "DORA initial", given: significant, when: markOverdue(at(5*hour+sec), doraInit),
			then: []proto.Message{clockOverdue(doraInit, kindDORAInitial, customer, at(5*hour), at(5*hour+sec))},
		},
		{
			name: "DORA intermediate", given: with(significant, submit(customer, at(2*hour), dora, initial)), when: markOverdue(at(74*hour+sec), doraMid),
			then: []proto.Message{clockOverdue(doraMid, kindDORAInterim, customer, at(74*hour), at(74*hour+sec))},
		},
		{name: "task at its due date", given: assigned, when: markOverdue(at(day), task1)},
		{
			name: "task one second after", given: assigned, when: markOverdue(at(day+sec), task1),
			then:  []proto.Message{clockOverdue(task1, kindTask, provider, at(day), at(day+sec))},
			state: overdueState(task1),
		},
		{name: "task completed", given: with(assigned, complete(provider, at(2*hour), "t-1")), when: markOverdue(at(day+sec), task1)},
		{
			name: "on a closed incident", given: history(report(severity(low)), assign(customer, at(hour), "t-1", provider, at(day)), resolve(customer, at(2*hour)), closeIncident(customer, at(3*hour))),
			when: markOverdue(at(day+sec), task1), then: []proto.Message{clockOverdue(task1, kindTask, provider, at(day), at(day+sec))},
		},
	})
}

// A late answer records the missed deadline itself, once, before it meets the
// clock: unless the scheduler has recorded it already.
func TestLateAnswersRecordTheOverdueFirst(t *testing.T) {
	t.Parallel()
	due := at(3 * hour)
	significant := history(report(), classify(customer, at(hour), true, false))
	major := history(report(), classify(customer, at(hour), false, true))
	assigned := history(report(severity(low)), assign(customer, at(hour), "t-1", provider, at(day)))
	n1 := clock(notice1, kindNotification, customer, aware, due)
	ew := clock(ewCust, kindEarlyWarning, customer, aware, at(23*hour))
	nt := clock(nis2Cust, kindNIS2Notice, customer, aware, at(71*hour))
	clocks := func(want ...domain.Clock) func(*testing.T, domain.State) {
		return func(t *testing.T, s domain.State) { t.Helper(); clocksAre(t, s, want...) }
	}

	runAll(t, []spec{
		{
			name: "notice at the deadline", given: history(report()), when: notify(customer, due, "n-1"),
			then:  []proto.Message{notified("n-1", customer, provider, high, due)},
			state: clocks(met(n1, due)),
		},
		{
			name: "notice one second late", given: history(report()), when: notify(customer, due.Add(sec), "n-1"),
			then: []proto.Message{
				clockOverdue(notice1, kindNotification, customer, due, due.Add(sec)),
				notified("n-1", customer, provider, high, due.Add(sec)),
			},
			state: func(t *testing.T, s domain.State) {
				clocksAre(t, s, late(met(n1, due.Add(sec))))
				if s.Overdue() {
					t.Fatal("a clock met late still makes the incident overdue")
				}
			},
		},
		{
			name: "notice late, the scheduler was first", given: history(report(), markOverdue(due.Add(sec), notice1)), when: notify(customer, due.Add(hour), "n-1"),
			then:  []proto.Message{notified("n-1", customer, provider, high, due.Add(hour))},
			state: clocks(late(met(n1, due.Add(hour)))),
		},
		{
			name: "the other party's late notice meets no clock", given: history(report()), when: notify(provider, due.Add(hour), "n-1"),
			then: []proto.Message{notified("n-1", provider, customer, high, due.Add(hour))},
		},
		{
			name: "a second notice after the deadline", given: history(report(), notify(customer, at(hour), "n-1")), when: notify(customer, due.Add(hour), "n-2"),
			then: []proto.Message{notified("n-2", customer, provider, high, due.Add(hour))},
		},
		{
			name: "early warning at the deadline", given: significant, when: submit(customer, at(23*hour), nis2, earlyWarning),
			then: []proto.Message{submissionRecorded(customer, nis2, earlyWarning, at(23*hour))},
		},
		{
			name: "early warning one second late", given: significant, when: submit(customer, at(23*hour+sec), nis2, earlyWarning),
			then: []proto.Message{
				clockOverdue(ewCust, kindEarlyWarning, customer, at(23*hour), at(23*hour+sec)),
				submissionRecorded(customer, nis2, earlyWarning, at(23*hour+sec)),
			},
		},
		{
			name: "notification late for the early warning only", given: significant, when: submit(customer, at(30*hour), nis2, notification),
			then: []proto.Message{
				clockOverdue(ewCust, kindEarlyWarning, customer, at(23*hour), at(30*hour)),
				submissionRecorded(customer, nis2, notification, at(30*hour)),
			},
			state: clocks(n1, late(met(ew, at(30*hour))), met(nt, at(30*hour)),
				clock(finCust, kindNIS2Final, customer, at(30*hour), time.Date(2026, 4, 3, 16, 0, 0, 0, time.UTC))),
		},
		{
			name: "notification late for both", given: significant, when: submit(customer, at(80*hour), nis2, notification),
			then: []proto.Message{
				clockOverdue(ewCust, kindEarlyWarning, customer, at(23*hour), at(80*hour)),
				clockOverdue(nis2Cust, kindNIS2Notice, customer, at(71*hour), at(80*hour)),
				submissionRecorded(customer, nis2, notification, at(80*hour)),
			},
		},
		{
			name: "notification late for both, the early warning recorded already", given: with(significant, markOverdue(at(24*hour), ewCust)),
			when: submit(customer, at(80*hour), nis2, notification),
			then: []proto.Message{
				clockOverdue(nis2Cust, kindNIS2Notice, customer, at(71*hour), at(80*hour)),
				submissionRecorded(customer, nis2, notification, at(80*hour)),
			},
		},
		{
			name: "submitted before the deadline, recorded after it: on time", given: significant,
			when: submitted(customer, at(30*hour), at(20*hour), nis2, earlyWarning),
			then: []proto.Message{submissionRecorded(customer, nis2, earlyWarning, at(20*hour))},
			state: func(t *testing.T, s domain.State) {
				clocksAre(t, s, n1, met(ew, at(20*hour)), nt)
			},
		},
		{
			name: "submitted exactly at the deadline, recorded after it: on time", given: significant,
			when: submitted(customer, at(30*hour), at(23*hour), nis2, earlyWarning),
			then: []proto.Message{submissionRecorded(customer, nis2, earlyWarning, at(23*hour))},
		},
		{
			name: "submitted late, recorded later: detected when recorded", given: significant,
			when: submitted(customer, at(30*hour), at(25*hour), nis2, earlyWarning),
			then: []proto.Message{
				clockOverdue(ewCust, kindEarlyWarning, customer, at(23*hour), at(30*hour)),
				submissionRecorded(customer, nis2, earlyWarning, at(25*hour)),
			},
		},
		{
			name: "submitted in time, recorded after the scheduler marked it", given: with(significant, markOverdue(at(24*hour), ewCust)),
			when: submitted(customer, at(30*hour), at(20*hour), nis2, earlyWarning),
			then: []proto.Message{submissionRecorded(customer, nis2, earlyWarning, at(20*hour))},
			state: func(t *testing.T, s domain.State) {
				clocksAre(t, s, n1, late(met(ew, at(20*hour))), nt)
				if s.Overdue() {
					t.Fatal("incident overdue after its clock was met")
				}
			},
		},
		{
			name: "DORA initial late", given: major, when: submit(customer, at(6*hour), dora, initial),
			then: []proto.Message{
				clockOverdue(doraInit, kindDORAInitial, customer, at(5*hour), at(6*hour)),
				submissionRecorded(customer, dora, initial, at(6*hour)),
			},
		},
		{
			name: "DORA intermediate late", given: with(major, submit(customer, at(2*hour), dora, initial)), when: submit(customer, at(80*hour), dora, intermediate),
			then: []proto.Message{
				clockOverdue(doraMid, kindDORAInterim, customer, at(74*hour), at(80*hour)),
				submissionRecorded(customer, dora, intermediate, at(80*hour)),
			},
		},
		{
			name: "task at its due date", given: assigned, when: complete(provider, at(day), "t-1"),
			then: []proto.Message{taskCompleted("t-1", at(day))},
		},
		{
			name: "task one second late", given: assigned, when: complete(provider, at(day+sec), "t-1"),
			then:  []proto.Message{clockOverdue(task1, kindTask, provider, at(day), at(day+sec)), taskCompleted("t-1", at(day+sec))},
			state: clocks(late(met(clock(task1, kindTask, provider, at(hour), at(day)), at(day+sec)))),
		},
		{
			name: "task late, the scheduler was first", given: with(assigned, markOverdue(at(day+sec), task1)), when: complete(provider, at(2*day), "t-1"),
			then: []proto.Message{taskCompleted("t-1", at(2*day))},
		},
	})
}

// The overdue flag of the incident follows its clocks.
func TestIncidentOverdue(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		given []domain.Command
		want  bool
	}{
		{"no clocks", history(report(severity(low))), false},
		{"past the deadline, not recorded yet", history(report(), notify(provider, at(5*hour), "n-1")), false},
		{"recorded", history(report(), markOverdue(at(3*hour+sec), notice1)), true},
		{"recorded, then met", history(report(), markOverdue(at(3*hour+sec), notice1), notify(customer, at(4*hour), "n-1")), false},
		{"one met, another recorded", history(report(), notify(customer, at(hour), "n-1"), assess(customer, at(2*hour), critical), markOverdue(at(3*hour+sec), notice2)), true},
	} {
		if got := fold(t, c.given...).Overdue(); got != c.want {
			t.Errorf("%s: overdue = %t, want %t", c.name, got, c.want)
		}
	}
}
