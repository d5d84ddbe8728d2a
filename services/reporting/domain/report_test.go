package domain_test

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
	reportingv1 "github.com/jsmplatform/jsm/proto/gen/jsm/reporting/v1"
	"github.com/jsmplatform/jsm/services/reporting/domain"
)

var (
	t0       = time.Date(2026, 4, 3, 10, 0, 0, 0, time.UTC)
	march    = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	april    = time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	contract = domain.Contract{ID: "c1", Customer: "acme", Provider: "itsec"}
	kpis     = &reportingv1.Kpis{ContractId: "c1", Changes: &reportingv1.ChangeKpis{Requested: 3}}
)

func by(org domain.OrgID, at time.Time) domain.By {
	return domain.By{Actor: domain.Actor{Org: org, User: "u"}, At: at}
}

// fold applies the events of cmds in turn, failing on an error.
func fold(t *testing.T, cmds ...domain.Command) domain.Report {
	t.Helper()
	var r domain.Report
	for i, c := range cmds {
		evs, err := domain.Decide(r, c)
		if err != nil {
			t.Fatalf("command %d (%T): %v", i, c, err)
		}
		for _, e := range evs {
			r = domain.Evolve(r, e, domain.Meta{Time: t0, Position: uint64(i + 1)})
		}
	}
	return r
}

func generate() *domain.GenerateReport {
	return &domain.GenerateReport{By: by("itsec", t0), ReportID: "r1", Contract: contract, PeriodStart: march, PeriodEnd: april, Kpis: kpis}
}

func TestDecide(t *testing.T) {
	generated := fold(t, generate())
	delivered := fold(t, generate(), &domain.DeliverReport{By: by("itsec", t0)})
	acked := fold(t, generate(), &domain.DeliverReport{By: by("itsec", t0)}, &domain.AcknowledgeReport{By: by("acme", t0), Comments: "ok"})
	for name, tc := range map[string]struct {
		state domain.Report
		cmd   domain.Command
		want  []proto.Message
		err   error
	}{
		"generate": {domain.Report{}, generate(), []proto.Message{&reportingv1.ReportGenerated{}}, nil},
		"generate by an outsider": {domain.Report{}, &domain.GenerateReport{By: by("evil", t0), ReportID: "r1", Contract: contract, PeriodStart: march, PeriodEnd: april, Kpis: kpis},
			nil, domain.ErrNotParty},
		"generate an empty period": {domain.Report{}, &domain.GenerateReport{By: by("acme", t0), ReportID: "r1", Contract: contract, PeriodStart: april, PeriodEnd: april, Kpis: kpis},
			nil, domain.ErrInvalid},
		"generate without contract": {domain.Report{}, &domain.GenerateReport{By: by("acme", t0), ReportID: "r1", PeriodStart: march, PeriodEnd: april, Kpis: kpis},
			nil, domain.NotFoundError{What: "contract"}},
		"generate twice":             {generated, generate(), nil, domain.ErrAlreadyExists},
		"scheduled twice":            {fold(t, &domain.GenerateReport{By: by("jsm", t0), ReportID: "r1", Contract: contract, PeriodStart: march, PeriodEnd: april, Kpis: kpis, Scheduled: true}), &domain.GenerateReport{By: by("jsm", t0), ReportID: "r1", Contract: contract, PeriodStart: march, PeriodEnd: april, Kpis: kpis, Scheduled: true}, nil, nil},
		"deliver unknown":            {domain.Report{}, &domain.DeliverReport{By: by("itsec", t0)}, nil, domain.NotFoundError{What: "report"}},
		"deliver":                    {generated, &domain.DeliverReport{By: by("itsec", t0)}, []proto.Message{&reportingv1.ReportDelivered{}}, nil},
		"deliver by the customer":    {generated, &domain.DeliverReport{By: by("acme", t0)}, nil, domain.ErrWrongParty},
		"deliver by an outsider":     {generated, &domain.DeliverReport{By: by("evil", t0)}, nil, domain.ErrNotParty},
		"deliver again":              {delivered, &domain.DeliverReport{By: by("itsec", t0)}, nil, nil},
		"acknowledge undelivered":    {generated, &domain.AcknowledgeReport{By: by("acme", t0)}, nil, domain.ErrWrongStatus},
		"acknowledge":                {delivered, &domain.AcknowledgeReport{By: by("acme", t0)}, []proto.Message{&reportingv1.ReportAcknowledged{}}, nil},
		"acknowledge by provider":    {delivered, &domain.AcknowledgeReport{By: by("itsec", t0)}, nil, domain.ErrWrongParty},
		"acknowledge again":          {acked, &domain.AcknowledgeReport{By: by("acme", t0)}, nil, nil},
		"delivery overdue too early": {generated, &domain.MarkReportOverdue{By: by("jsm", t0.Add(domain.DeliveryWithin)), Kind: reportingv1.OverdueKind_OVERDUE_KIND_DELIVERY}, nil, nil},
		"delivery overdue": {generated, &domain.MarkReportOverdue{By: by("jsm", t0.Add(domain.DeliveryWithin+time.Second)), Kind: reportingv1.OverdueKind_OVERDUE_KIND_DELIVERY},
			[]proto.Message{&reportingv1.ReportOverdue{}}, nil},
		"delivery overdue once delivered": {delivered, &domain.MarkReportOverdue{By: by("jsm", t0.Add(30*24*time.Hour)), Kind: reportingv1.OverdueKind_OVERDUE_KIND_DELIVERY}, nil, nil},
		"acknowledgement overdue": {delivered, &domain.MarkReportOverdue{By: by("jsm", t0.Add(domain.AcknowledgeWithin+time.Second)), Kind: reportingv1.OverdueKind_OVERDUE_KIND_ACKNOWLEDGEMENT},
			[]proto.Message{&reportingv1.ReportOverdue{}}, nil},
		"acknowledgement overdue once acknowledged": {acked, &domain.MarkReportOverdue{By: by("jsm", t0.Add(30*24*time.Hour)), Kind: reportingv1.OverdueKind_OVERDUE_KIND_ACKNOWLEDGEMENT}, nil, nil},
		"nil command": {generated, (*domain.DeliverReport)(nil), nil, domain.ErrInvalid},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := domain.Decide(tc.state, tc.cmd)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("events %v, want %d", got, len(tc.want))
			}
			for i := range got {
				if proto.MessageName(got[i]) != proto.MessageName(tc.want[i]) {
					t.Fatalf("event %d is %s, want %s", i, proto.MessageName(got[i]), proto.MessageName(tc.want[i]))
				}
			}
		})
	}
	// Overdue is recorded once: after the event the same command changes nothing.
	over := fold(t, generate(), &domain.MarkReportOverdue{By: by("jsm", t0.Add(6*24*time.Hour)), Kind: reportingv1.OverdueKind_OVERDUE_KIND_DELIVERY})
	if evs, _ := domain.Decide(over, &domain.MarkReportOverdue{By: by("jsm", t0.Add(7*24*time.Hour)), Kind: reportingv1.OverdueKind_OVERDUE_KIND_DELIVERY}); len(evs) != 0 || !over.DeliveryOverdue {
		t.Fatalf("second overdue %v", evs)
	}
}

func TestContentHashAndDueDates(t *testing.T) {
	r := fold(t, generate())
	h, _, err := domain.ContentHash(proto.Clone(kpis).(*reportingv1.Kpis))
	if err != nil {
		t.Fatal(err)
	}
	if r.ContentHash != h || len(h) != 64 {
		t.Fatalf("hash %s, want %s", r.ContentHash, h)
	}
	other := proto.Clone(kpis).(*reportingv1.Kpis)
	other.Changes.Requested = 4
	if h2, _, _ := domain.ContentHash(other); h2 == h {
		t.Fatal("different KPIs hash the same")
	}
	// Generated after the period: delivery is due 5 days after generation.
	if !r.DeliveryDueAt.Equal(t0.Add(domain.DeliveryWithin)) {
		t.Fatalf("delivery due %v", r.DeliveryDueAt)
	}
	d := fold(t, generate(), &domain.DeliverReport{By: by("itsec", t0.Add(time.Hour))})
	if !d.AcknowledgementDueAt.Equal(t0.Add(time.Hour + domain.AcknowledgeWithin)) {
		t.Fatalf("acknowledgement due %v", d.AcknowledgementDueAt)
	}
}

func TestPeriods(t *testing.T) {
	at := time.Date(2026, 5, 14, 15, 0, 0, 0, time.UTC) // a Thursday
	for _, tc := range []struct {
		c          contractsv1.ReportCadence
		start, end time.Time
	}{
		{contractsv1.ReportCadence_REPORT_CADENCE_WEEKLY, time.Date(2026, 5, 4, 0, 0, 0, 0, time.UTC), time.Date(2026, 5, 11, 0, 0, 0, 0, time.UTC)},
		{contractsv1.ReportCadence_REPORT_CADENCE_MONTHLY, time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)},
		{contractsv1.ReportCadence_REPORT_CADENCE_QUARTERLY, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)},
		{contractsv1.ReportCadence_REPORT_CADENCE_ANNUAL, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		s, e, ok := domain.LastClosedPeriod(tc.c, at)
		if !ok || !s.Equal(tc.start) || !e.Equal(tc.end) {
			t.Errorf("%s: %v – %v, want %v – %v", tc.c, s, e, tc.start, tc.end)
		}
	}
	if _, _, ok := domain.LastClosedPeriod(contractsv1.ReportCadence_REPORT_CADENCE_UNSPECIFIED, at); ok {
		t.Error("no cadence has a period")
	}
}
