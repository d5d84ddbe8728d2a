package domain_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

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

// The decider's table: given the commands before (folded into the report),
// when one more command, then exactly these events, or this error.
type spec struct {
	name  string
	given []domain.Command
	when  domain.Command
	then  []proto.Message // nil: the command changes nothing
	err   error
	state func(t *testing.T, r domain.Report) // checks the report after the events
}

func runAll(t *testing.T, specs []spec) {
	t.Helper()
	for _, c := range specs {
		t.Run(c.name, func(t *testing.T) {
			r := fold(t, c.given...)
			got, err := domain.Decide(r, c.when)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("error %v, want %v", err, c.err)
				}
				if len(got) != 0 {
					t.Fatalf("refused with events %v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if len(got) != len(c.then) {
				t.Fatalf("got %d events %v, want %d %v", len(got), got, len(c.then), c.then)
			}
			for i := range got {
				if !proto.Equal(got[i], c.then[i]) {
					t.Fatalf("event %d:\n got %v\nwant %v", i, got[i], c.then[i])
				}
			}
			if c.state != nil {
				for _, e := range got {
					r = domain.Evolve(r, e, domain.Meta{Time: t0, Position: uint64(len(c.given) + 1)})
				}
				c.state(t, r)
			}
		})
	}
}

const day = 24 * time.Hour

func tsp(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

// generated is the ReportGenerated of generate(): after the period, so the
// delivery is due 5 days after the generation.
func generated() *reportingv1.ReportGenerated {
	return &reportingv1.ReportGenerated{
		ReportId: "r1", ContractId: "c1", CustomerOrgId: "acme", ProviderOrgId: "itsec",
		PeriodStart: tsp(march), PeriodEnd: tsp(april), Kpis: kpis, ContentHash: kpisHash,
		GeneratedAt: tsp(t0), DeliveryDueAt: tsp(t0.Add(5 * day)),
	}
}

func deliver(org domain.OrgID, at time.Time) *domain.DeliverReport {
	return &domain.DeliverReport{By: by(org, at)}
}

func acknowledge(org domain.OrgID, at time.Time, comments string) *domain.AcknowledgeReport {
	return &domain.AcknowledgeReport{By: by(org, at), Comments: comments}
}

func markOverdue(kind reportingv1.OverdueKind, at time.Time) *domain.MarkReportOverdue {
	return &domain.MarkReportOverdue{By: by("jsm", at), Kind: kind}
}

func overdue(kind reportingv1.OverdueKind, due, at time.Time) *reportingv1.ReportOverdue {
	return &reportingv1.ReportOverdue{ReportId: "r1", Kind: kind, DueAt: tsp(due), DetectedAt: tsp(at)}
}

const (
	deliveryKind = reportingv1.OverdueKind_OVERDUE_KIND_DELIVERY
	ackKind      = reportingv1.OverdueKind_OVERDUE_KIND_ACKNOWLEDGEMENT
)

// kpisHash is the hex SHA-256 of kpis' deterministic binary protobuf
// encoding (0a 02 "c1" 32 02 08 03: field 1 "c1", field 6 {field 1: 3}),
// computed by hand with sha256sum and pinned so that a change of
// the canonical encoding shows.
const kpisHash = "a1d0f72de647663f175c254d45d39971cf7daa968acdd4b2e4476c9a45623c63"

func TestDecide(t *testing.T) {
	deliveredAt, ackedAt := t0.Add(time.Hour), t0.Add(2*time.Hour)
	delivered := []domain.Command{generate(), deliver("itsec", deliveredAt)}
	acked := append(delivered[:2:2], acknowledge("acme", ackedAt, "ok"))
	deliveryDue, ackDue := t0.Add(5*day), deliveredAt.Add(10*day)
	status := func(want reportingv1.ReportStatus) func(*testing.T, domain.Report) {
		return func(t *testing.T, r domain.Report) {
			t.Helper()
			if r.Status != want {
				t.Fatalf("status %s, want %s", r.Status, want)
			}
		}
	}
	early := generate()
	early.By = by("acme", time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC))
	earlyGenerated := generated()
	earlyGenerated.GeneratedAt, earlyGenerated.DeliveryDueAt = tsp(early.At), tsp(april.Add(5*day))
	scheduled := generate()
	scheduled.By, scheduled.Scheduled = by("jsm", t0), true
	scheduledGenerated := generated()
	scheduledGenerated.Scheduled = true
	with := func(mod func(*domain.GenerateReport)) *domain.GenerateReport { c := generate(); mod(c); return c }

	runAll(t, []spec{
		// GenerateReport
		{name: "generate after the period: delivery due 5 days after generation", when: generate(), then: []proto.Message{generated()}, state: func(t *testing.T, r domain.Report) {
			if r.Status != reportingv1.ReportStatus_REPORT_STATUS_GENERATED || r.ContentHash != kpisHash || !r.DeliveryDueAt.Equal(deliveryDue) || !r.DeliveryPending() {
				t.Fatalf("report %+v", r)
			}
			if k, err := r.KpisOf(); err != nil || !proto.Equal(k, kpis) {
				t.Fatalf("frozen kpis %v (%v)", k, err)
			}
		}},
		{name: "generate before the period ends: delivery due 5 days after its end", when: early, then: []proto.Message{earlyGenerated}},
		{name: "the customer generates", when: with(func(c *domain.GenerateReport) { c.By = by("acme", t0) }), then: []proto.Message{generated()}},
		{name: "the scheduler generates, though no party", when: scheduled, then: []proto.Message{scheduledGenerated}},
		{name: "the scheduler again changes nothing", given: []domain.Command{scheduled}, when: scheduled},
		{name: "the scheduler over a requested report of the same id", given: []domain.Command{generate()}, when: scheduled, err: domain.ErrAlreadyExists},
		{name: "generate twice", given: []domain.Command{generate()}, when: generate(), err: domain.ErrAlreadyExists},
		{name: "generate by an outsider", when: with(func(c *domain.GenerateReport) { c.By = by("evil", t0) }), err: domain.ErrNotParty},
		{name: "generate without contract", when: with(func(c *domain.GenerateReport) { c.Contract = domain.Contract{} }), err: domain.NotFoundError{What: "contract"}},
		{name: "generate an empty period", when: with(func(c *domain.GenerateReport) { c.PeriodStart = april }), err: domain.ErrInvalid},
		{name: "generate a period ending before it starts", when: with(func(c *domain.GenerateReport) { c.PeriodStart, c.PeriodEnd = april, march }), err: domain.ErrInvalid},
		{name: "generate without a period", when: with(func(c *domain.GenerateReport) { c.PeriodStart = time.Time{} }), err: domain.ErrInvalid},
		{name: "generate without a report id", when: with(func(c *domain.GenerateReport) { c.ReportID = " " }), err: domain.ErrInvalid},
		{name: "generate without KPIs", when: with(func(c *domain.GenerateReport) { c.Kpis = nil }), err: domain.ErrInvalid},

		// DeliverReport
		{
			name: "the provider delivers: acknowledgement due 10 days later", given: []domain.Command{generate()}, when: deliver("itsec", deliveredAt),
			then:  []proto.Message{&reportingv1.ReportDelivered{ReportId: "r1", OrgId: "itsec", DeliveredAt: tsp(deliveredAt), AcknowledgementDueAt: tsp(ackDue)}},
			state: status(reportingv1.ReportStatus_REPORT_STATUS_DELIVERED),
		},
		{
			name: "delivered late, after its overdue", given: []domain.Command{generate(), markOverdue(deliveryKind, deliveryDue.Add(time.Second))}, when: deliver("itsec", deliveryDue.Add(day)),
			then: []proto.Message{&reportingv1.ReportDelivered{ReportId: "r1", OrgId: "itsec", DeliveredAt: tsp(deliveryDue.Add(day)), AcknowledgementDueAt: tsp(deliveryDue.Add(11 * day))}},
		},
		{name: "deliver unknown", when: deliver("itsec", t0), err: domain.NotFoundError{What: "report"}},
		{name: "deliver by the customer", given: []domain.Command{generate()}, when: deliver("acme", t0), err: domain.ErrWrongParty},
		{name: "deliver by an outsider", given: []domain.Command{generate()}, when: deliver("evil", t0), err: domain.ErrNotParty},
		{name: "deliver again changes nothing", given: delivered, when: deliver("itsec", t0.Add(day))},
		{name: "deliver an acknowledged report changes nothing", given: acked, when: deliver("itsec", t0.Add(day))},

		// AcknowledgeReport
		{
			name: "the customer acknowledges with comments", given: delivered, when: acknowledge("acme", ackedAt, "  Patch compliance must improve.\n"),
			then:  []proto.Message{&reportingv1.ReportAcknowledged{ReportId: "r1", OrgId: "acme", Comments: "Patch compliance must improve.", AcknowledgedAt: tsp(ackedAt)}},
			state: status(reportingv1.ReportStatus_REPORT_STATUS_ACKNOWLEDGED),
		},
		{
			name: "acknowledge without comments", given: delivered, when: acknowledge("acme", ackedAt, ""),
			then: []proto.Message{&reportingv1.ReportAcknowledged{ReportId: "r1", OrgId: "acme", AcknowledgedAt: tsp(ackedAt)}},
		},
		{name: "acknowledge unknown", when: acknowledge("acme", t0, ""), err: domain.NotFoundError{What: "report"}},
		{name: "acknowledge undelivered", given: []domain.Command{generate()}, when: acknowledge("acme", t0, ""), err: domain.ErrWrongStatus},
		{name: "acknowledge by the provider", given: delivered, when: acknowledge("itsec", t0, ""), err: domain.ErrWrongParty},
		{name: "acknowledge by an outsider", given: delivered, when: acknowledge("evil", t0, ""), err: domain.ErrNotParty},
		{name: "acknowledge with too long comments", given: delivered, when: acknowledge("acme", t0, strings.Repeat("x", 20001)), err: domain.ErrInvalid},
		{name: "acknowledge again changes nothing", given: acked, when: acknowledge("acme", t0.Add(day), "again")},

		// MarkReportOverdue
		{name: "delivery exactly at its due date is in time", given: []domain.Command{generate()}, when: markOverdue(deliveryKind, deliveryDue)},
		{
			name: "delivery one second after its due date", given: []domain.Command{generate()}, when: markOverdue(deliveryKind, deliveryDue.Add(time.Second)),
			then: []proto.Message{overdue(deliveryKind, deliveryDue, deliveryDue.Add(time.Second))},
			state: func(t *testing.T, r domain.Report) {
				if !r.DeliveryOverdue || r.DeliveryPending() || r.Status != reportingv1.ReportStatus_REPORT_STATUS_GENERATED {
					t.Fatalf("report %+v", r)
				}
			},
		},
		{name: "delivery overdue recorded once", given: []domain.Command{generate(), markOverdue(deliveryKind, deliveryDue.Add(time.Second))}, when: markOverdue(deliveryKind, deliveryDue.Add(day))},
		{name: "delivery overdue once delivered", given: delivered, when: markOverdue(deliveryKind, deliveryDue.Add(day))},
		{name: "acknowledgement before delivery has no due date", given: []domain.Command{generate()}, when: markOverdue(ackKind, t0.Add(30*day))},
		{name: "acknowledgement exactly at its due date is in time", given: delivered, when: markOverdue(ackKind, ackDue)},
		{
			name: "acknowledgement one second after its due date", given: delivered, when: markOverdue(ackKind, ackDue.Add(time.Second)),
			then: []proto.Message{overdue(ackKind, ackDue, ackDue.Add(time.Second))},
			state: func(t *testing.T, r domain.Report) {
				if !r.AcknowledgementOverdue || r.AcknowledgementPending() || r.Status != reportingv1.ReportStatus_REPORT_STATUS_DELIVERED {
					t.Fatalf("report %+v", r)
				}
			},
		},
		{name: "acknowledgement overdue recorded once", given: append(delivered[:2:2], markOverdue(ackKind, ackDue.Add(time.Second))), when: markOverdue(ackKind, ackDue.Add(day))},
		{name: "acknowledgement overdue once acknowledged", given: acked, when: markOverdue(ackKind, ackDue.Add(day))},
		{name: "overdue of an unknown kind", given: []domain.Command{generate()}, when: markOverdue(reportingv1.OverdueKind_OVERDUE_KIND_UNSPECIFIED, t0.Add(30*day)), err: domain.ErrInvalid},
		{name: "overdue of an unknown report", when: markOverdue(deliveryKind, t0.Add(30*day)), err: domain.NotFoundError{What: "report"}},

		{name: "nil command", given: []domain.Command{generate()}, when: (*domain.DeliverReport)(nil), err: domain.ErrInvalid},
		{name: "unknown command", given: []domain.Command{generate()}, when: &bogus{By: by("itsec", t0)}, err: domain.ErrInvalid},
	})
}

// bogus is a command the decider does not know.
type bogus struct{ domain.By }

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
