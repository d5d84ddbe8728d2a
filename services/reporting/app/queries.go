package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/jsmplatform/jsm/libs/cursor"
	"github.com/jsmplatform/jsm/libs/pgdb"
	"github.com/jsmplatform/jsm/libs/projection"
	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
	incidentsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/incidents/v1"
	reportingv1 "github.com/jsmplatform/jsm/proto/gen/jsm/reporting/v1"
	cdomain "github.com/jsmplatform/jsm/services/contracts/domain"
	"github.com/jsmplatform/jsm/services/reporting/domain"
	readmodel "github.com/jsmplatform/jsm/services/reporting/projection"
)

// Queries reads KPIs, the situation and reports, always on behalf of one org.
type Queries struct {
	pool      *pgxpool.Pool
	projector *projection.Projector
	maxWait   time.Duration
}

// NewQueries returns the query handlers; a read with a min position waits
// for the projector at most maxWait.
func NewQueries(pool *pgxpool.Pool, projector *projection.Projector, maxWait time.Duration) (*Queries, error) {
	if pool == nil || projector == nil {
		return nil, errors.New("app: pool and projector are required")
	}
	return &Queries{pool: pool, projector: projector, maxWait: maxWait}, nil
}

func (q *Queries) wait(ctx context.Context, minPosition uint64) error {
	if err := q.projector.WaitFor(ctx, minPosition, q.maxWait); err != nil {
		return fmt.Errorf("read model: %w", err)
	}
	return nil
}

// contract returns a contract the org is a party to; any other is not found.
func (q *Queries) contract(ctx context.Context, org domain.OrgID, id string) (cdomain.State, error) {
	var raw []byte
	err := q.pool.QueryRow(ctx, `SELECT state FROM reporting.contracts WHERE contract_id = $1 AND $2 IN (customer_org_id, provider_org_id)`, id, string(org)).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return cdomain.State{}, domain.NotFoundError{What: "contract", ID: id}
	}
	if err != nil {
		return cdomain.State{}, fmt.Errorf("contract %s: %w", id, err)
	}
	var s cdomain.State
	if err := json.Unmarshal(raw, &s); err != nil {
		return s, fmt.Errorf("contract %s: stored state: %w", id, err)
	}
	return s, nil
}

// Kpis returns the KPIs of a contract the org is a party to for the period [start, end).
func (q *Queries) Kpis(ctx context.Context, org domain.OrgID, contractID string, start, end time.Time, minPosition uint64) (*reportingv1.Kpis, error) {
	if !end.After(start) {
		return nil, domain.ValidationError{Field: "period_end", Reason: "must be after period_start"}
	}
	if err := q.wait(ctx, minPosition); err != nil {
		return nil, err
	}
	s, err := q.contract(ctx, org, contractID)
	if err != nil {
		return nil, err
	}
	return q.kpis(ctx, string(org), s, start.UTC(), end.UTC())
}

// read runs one query as org and scans each row.
func (q *Queries) read(ctx context.Context, org, sql string, args []any, scan []any, each func()) error {
	return pgdb.ReadAs(ctx, q.pool, readmodel.Schema, org, sql, args, func(rows pgx.Rows) error {
		_, err := pgx.ForEachRow(rows, scan, func() error { each(); return nil })
		return err
	})
}

func seconds(f *float64) *durationpb.Duration {
	if f == nil {
		return nil
	}
	return durationpb.New(time.Duration(math.Round(*f)) * time.Second)
}

func percent(n, of int32) float64 {
	if of == 0 {
		return 100
	}
	return math.Round(float64(n)*10000/float64(of)) / 100
}

// kpis computes the KPIs of contract s for [start, end) from the facts, as org.
func (q *Queries) kpis(ctx context.Context, org string, s cdomain.State, start, end time.Time) (*reportingv1.Kpis, error) {
	id := string(s.ID)
	args := []any{id, start, end}
	k := &reportingv1.Kpis{
		ContractId: id, PeriodStart: timestamppb.New(start), PeriodEnd: timestamppb.New(end),
		Incidents: &reportingv1.IncidentKpis{}, Patching: &reportingv1.PatchingKpis{}, Changes: &reportingv1.ChangeKpis{}, Audits: &reportingv1.AuditKpis{},
		Contract: &reportingv1.ContractKpis{
			Title: s.Current.Terms.Title, Phase: s.Phase.String(), InForce: s.InForce != nil,
			CustomerOrgId: string(s.Customer), ProviderOrgId: string(s.Provider),
		},
	}
	if s.InForce != nil {
		k.Contract.ReportCadence = s.InForce.Terms.Levels.ReportCadence
		k.Contract.Title = s.InForce.Terms.Title
	}
	var sev int16
	var n int32
	var f *float64
	inc := k.Incidents
	err := q.read(ctx, org, `SELECT severity, count(*)::int FROM reporting.incidents
		WHERE contract_id = $1 AND reported_at >= $2 AND reported_at < $3 GROUP BY severity ORDER BY severity`, args,
		[]any{&sev, &n}, func() {
			inc.ReportedBySeverity = append(inc.ReportedBySeverity, &reportingv1.SeverityCount{Severity: commonv1.Severity(sev), Count: n})
			inc.Reported += n
		})
	if err == nil {
		err = q.read(ctx, org, `SELECT avg(EXTRACT(EPOCH FROM notified_at - aware_at))::float8 FROM reporting.incidents
			WHERE contract_id = $1 AND reported_at >= $2 AND reported_at < $3 AND notified_at IS NOT NULL`, args,
			[]any{&f}, func() { inc.MeanTimeToNotify = seconds(f) })
	}
	if err == nil {
		err = q.read(ctx, org, `SELECT count(*)::int, avg(EXTRACT(EPOCH FROM resolved_at - aware_at))::float8 FROM reporting.incidents
			WHERE contract_id = $1 AND resolved_at >= $2 AND resolved_at < $3`, args,
			[]any{&inc.Resolved, &f}, func() { inc.MeanTimeToResolve = seconds(f) })
	}
	if err == nil {
		err = q.read(ctx, org, `SELECT count(*)::int, (count(*) FILTER (WHERE met_at <= due_at))::int FROM reporting.clocks
			WHERE contract_id = $1 AND kind = $4 AND due_at >= $2 AND due_at < $3`, append(args, int16(incidentsv1.ClockKind_CLOCK_KIND_PARTY_NOTIFICATION)),
			[]any{&inc.NotificationClocksDue, &inc.NotificationClocksMet}, func() {})
	}
	inc.NotificationDeadlinesMetPercent = percent(inc.NotificationClocksMet, inc.NotificationClocksDue)
	p := k.Patching
	if err == nil {
		err = q.read(ctx, org, `SELECT
				(count(*) FILTER (WHERE due_at >= $2 AND due_at < $3))::int,
				(count(*) FILTER (WHERE due_at >= $2 AND due_at < $3 AND patched_at <= due_at))::int,
				(count(*) FILTER (WHERE registered_at < $3 AND (closed_at IS NULL OR closed_at >= $3)))::int,
				(count(*) FILTER (WHERE overdue_at < $3 AND (closed_at IS NULL OR closed_at >= $3)))::int
			FROM reporting.remediations WHERE contract_id = $1`, args,
			[]any{&p.Due, &p.PatchedOnTime, &p.Open, &p.Overdue}, func() {})
	}
	p.DueDateCompliancePercent = percent(p.PatchedOnTime, p.Due)
	if err == nil {
		err = q.read(ctx, org, `SELECT severity, count(*)::int,
				(percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM patched_at - registered_at)))::float8
			FROM reporting.remediations WHERE contract_id = $1 AND patched_at >= $2 AND patched_at < $3
			GROUP BY severity ORDER BY severity`, args,
			[]any{&sev, &n, &f}, func() {
				p.MedianTimeToPatch = append(p.MedianTimeToPatch, &reportingv1.SeverityDuration{Severity: commonv1.Severity(sev), Count: n, Duration: seconds(f)})
			})
	}
	c := k.Changes
	if err == nil {
		err = q.read(ctx, org, `SELECT
				(count(*) FILTER (WHERE requested_at >= $2 AND requested_at < $3))::int,
				(count(*) FILTER (WHERE approved_at >= $2 AND approved_at < $3))::int,
				(count(*) FILTER (WHERE rejected_at >= $2 AND rejected_at < $3))::int,
				(count(*) FILTER (WHERE emergency AND requested_at >= $2 AND requested_at < $3))::int,
				(count(*) FILTER (WHERE failed_at >= $2 AND failed_at < $3))::int
			FROM reporting.changes WHERE contract_id = $1`, args,
			[]any{&c.Requested, &c.Approved, &c.Rejected, &c.Emergency, &c.Failed}, func() {})
	}
	a := k.Audits
	if err == nil {
		err = q.read(ctx, org, `SELECT severity, count(*)::int FROM reporting.findings
			WHERE contract_id = $1 AND recorded_at < $3 AND (closed_at IS NULL OR closed_at >= $3) AND $2::timestamptz IS NOT NULL
			GROUP BY severity ORDER BY severity`, args,
			[]any{&sev, &n}, func() {
				a.OpenFindingsBySeverity = append(a.OpenFindingsBySeverity, &reportingv1.SeverityCount{Severity: commonv1.Severity(sev), Count: n})
				a.OpenFindings += n
			})
	}
	if err == nil {
		err = q.read(ctx, org, `SELECT count(*)::int FROM reporting.measures
			WHERE contract_id = $1 AND overdue_at < $3 AND (done_at IS NULL OR done_at >= $3) AND $2::timestamptz IS NOT NULL`, args,
			[]any{&a.OverdueMeasures}, func() {})
	}
	if err != nil {
		return nil, fmt.Errorf("kpis of contract %s: %w", id, err)
	}
	return k, nil
}

// Situation is the situation picture of a contract.
type Situation = reportingv1.GetSituationResponse

// Situation returns the situation picture of a contract the org is a party to.
func (q *Queries) Situation(ctx context.Context, org domain.OrgID, contractID string, minPosition uint64) (*Situation, error) {
	if err := q.wait(ctx, minPosition); err != nil {
		return nil, err
	}
	if _, err := q.contract(ctx, org, contractID); err != nil {
		return nil, err
	}
	o, args := string(org), []any{contractID}
	out := &Situation{Reports: &reportingv1.ReportsStatus{}}
	var (
		id, title, other string
		sev              int16
		t, t2            time.Time
		b                bool
		raw              []byte
		due              *time.Time
	)
	err := q.read(ctx, o, `SELECT incident_id, title, severity, reported_at, clocks FROM reporting.incidents
		WHERE contract_id = $1 AND status NOT IN (3, 4) ORDER BY reported_at, incident_id`, args,
		[]any{&id, &title, &sev, &t, &raw}, func() {
			x := &reportingv1.OpenIncident{IncidentId: id, Title: title, Severity: commonv1.Severity(sev), ReportedAt: timestamppb.New(t)}
			var clocks []struct {
				Kind    int32     `json:"kind"`
				Party   string    `json:"party"`
				DueAt   time.Time `json:"due_at"`
				Overdue bool      `json:"overdue"`
			}
			_ = json.Unmarshal(raw, &clocks)
			for _, k := range clocks {
				x.Clocks = append(x.Clocks, &reportingv1.OpenClock{Kind: incidentsv1.ClockKind(k.Kind), PartyOrgId: k.Party, DueAt: timestamppb.New(k.DueAt), Overdue: k.Overdue})
			}
			out.OpenIncidents = append(out.OpenIncidents, x)
		})
	if err == nil {
		err = q.read(ctx, o, `SELECT remediation_id, cve_id, severity, due_at FROM reporting.remediations
			WHERE contract_id = $1 AND overdue_at IS NOT NULL AND closed_at IS NULL ORDER BY due_at, remediation_id`, args,
			[]any{&id, &title, &sev, &due}, func() {
				out.OverdueRemediations = append(out.OverdueRemediations, &reportingv1.OverdueRemediation{RemediationId: id, CveId: title, Severity: commonv1.Severity(sev), DueAt: tsOf(due)})
			})
	}
	if err == nil {
		err = q.read(ctx, o, `SELECT change_id, title, org, emergency, requested_at FROM reporting.changes, unnest(awaiting) AS org
			WHERE contract_id = $1 ORDER BY requested_at, change_id, org`, args,
			[]any{&id, &title, &other, &b, &t}, func() {
				out.PendingApprovals = append(out.PendingApprovals, &reportingv1.PendingApproval{ChangeId: id, Title: title, OrgId: other, Emergency: b, RequestedAt: timestamppb.New(t)})
			})
	}
	if err == nil {
		err = q.read(ctx, o, `SELECT f.finding_id, f.audit_id, f.title, f.severity, f.recorded_at,
				EXISTS (SELECT 1 FROM reporting.measures m WHERE m.finding_id = f.finding_id AND m.overdue_at IS NOT NULL AND m.done_at IS NULL)
			FROM reporting.findings f WHERE f.contract_id = $1 AND f.closed_at IS NULL ORDER BY f.recorded_at, f.finding_id`, args,
			[]any{&id, &other, &title, &sev, &t, &b}, func() {
				out.OpenFindings = append(out.OpenFindings, &reportingv1.OpenFinding{FindingId: id, AuditId: other, Title: title, Severity: commonv1.Severity(sev), RecordedAt: timestamppb.New(t), MeasureOverdue: b})
			})
	}
	r := out.Reports
	if err == nil {
		var st int16
		err = q.read(ctx, o, `SELECT report_id, status, generated_at, period_end FROM reporting.reports
			WHERE contract_id = $1 ORDER BY period_end DESC, generated_at DESC, report_id DESC LIMIT 1`, args,
			[]any{&id, &st, &t, &t2}, func() { r.LatestReportId, r.LatestStatus = id, reportingv1.ReportStatus(st) })
	}
	if err == nil {
		err = q.read(ctx, o, `SELECT (count(*) FILTER (WHERE status = 1))::int, (count(*) FILTER (WHERE status = 2))::int, (count(*) FILTER (WHERE overdue))::int
			FROM reporting.reports WHERE contract_id = $1`, args,
			[]any{&r.Undelivered, &r.Unacknowledged, &r.Overdue}, func() {})
	}
	if err != nil {
		return nil, fmt.Errorf("situation of contract %s: %w", contractID, err)
	}
	return out, nil
}

func tsOf(t *time.Time) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return timestamppb.New(*t)
}

// Get returns a report of a contract the org is a party to; any other is
// not found, whether or not it exists.
func (q *Queries) Get(ctx context.Context, org domain.OrgID, id string, minPosition uint64) (domain.Report, error) {
	if err := q.wait(ctx, minPosition); err != nil {
		return domain.Report{}, err
	}
	found, err := pgdb.ReadJSONAs[domain.Report](ctx, q.pool, readmodel.Schema, string(org), `
		SELECT state FROM reporting.reports WHERE report_id = $1 AND (customer_org_id = $2 OR provider_org_id = $2)`, id, string(org))
	if err != nil {
		return domain.Report{}, fmt.Errorf("get report %s: %w", id, err)
	}
	if len(found) == 0 {
		return domain.Report{}, domain.NotFoundError{What: "report", ID: id}
	}
	return found[0], nil
}

// ErrBadPageToken rejects a page token this service did not hand out.
var ErrBadPageToken = domain.ValidationError{Field: "page_token", Reason: "not a token from an earlier page"}

// DefaultPageSize applies when a list asks for no size.
const DefaultPageSize = 50

// Page is what every list takes besides its filters.
type Page struct {
	Size        int
	Token       string
	MinPosition uint64
}

// ReportFilter narrows ListReports; zero values mean any.
type ReportFilter struct {
	ContractID string
	Status     reportingv1.ReportStatus
}

// List returns the org's reports, newest first, a page at a time.
func (q *Queries) List(ctx context.Context, org domain.OrgID, f ReportFilter, p Page) ([]*reportingv1.Report, string, error) {
	if err := q.wait(ctx, p.MinPosition); err != nil {
		return nil, "", err
	}
	after, afterID, err := cursor.Decode(p.Token)
	if err != nil {
		return nil, "", ErrBadPageToken
	}
	size := p.Size
	if size <= 0 {
		size = DefaultPageSize
	}
	found, err := pgdb.ReadJSONAs[domain.Report](ctx, q.pool, readmodel.Schema, string(org), `
		SELECT state FROM reporting.reports
		WHERE (customer_org_id = $1 OR provider_org_id = $1)
		  AND ($2 = '' OR contract_id = $2)
		  AND ($3 = 0 OR status = $3)
		  AND ($4::timestamptz IS NULL OR (generated_at, report_id) < ($4, $5))
		ORDER BY generated_at DESC, report_id DESC
		LIMIT $6`,
		string(org), f.ContractID, int16(f.Status), after, afterID, size+1)
	if err != nil {
		return nil, "", fmt.Errorf("list reports: %w", err)
	}
	next := ""
	if len(found) > size {
		found = found[:size]
		next = cursor.Encode(found[size-1].GeneratedAt, found[size-1].ID)
	}
	out := make([]*reportingv1.Report, len(found))
	for i, r := range found {
		out[i] = domain.ToProto(r)
	}
	return out, next, nil
}

// Download renders a report the org may read as HTML or PDF.
func (q *Queries) Download(ctx context.Context, org domain.OrgID, id string, format reportingv1.ReportFormat, minPosition uint64) ([]byte, string, error) {
	r, err := q.Get(ctx, org, id, minPosition)
	if err != nil {
		return nil, "", err
	}
	switch format {
	case reportingv1.ReportFormat_REPORT_FORMAT_HTML:
		b, err := RenderHTML(r)
		return b, "text/html; charset=utf-8", err
	case reportingv1.ReportFormat_REPORT_FORMAT_PDF:
		b, err := RenderPDF(r)
		return b, "application/pdf", err
	}
	return nil, "", domain.ValidationError{Field: "format", Reason: "unknown format"}
}
