// Package projection keeps the reporting service's read model: facts per
// contract from every area's events (incidents and their clocks,
// remediations, changes, findings and measures), rows with timestamps so
// that KPIs of any period are computed by SQL at query time; the reports;
// and the contracts the service learns from contract events.
package projection

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/jsmplatform/jsm/libs/es"
	"github.com/jsmplatform/jsm/libs/event"
	auditsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/audits/v1"
	changeadvisoryv1 "github.com/jsmplatform/jsm/proto/gen/jsm/changeadvisory/v1"
	incidentsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/incidents/v1"
	patchingv1 "github.com/jsmplatform/jsm/proto/gen/jsm/patching/v1"
	reportingv1 "github.com/jsmplatform/jsm/proto/gen/jsm/reporting/v1"
	"github.com/jsmplatform/jsm/services/contracts/known"
	idomain "github.com/jsmplatform/jsm/services/incidents/domain"
	"github.com/jsmplatform/jsm/services/reporting/domain"
)

// Schema is the service's PostgreSQL schema.
const Schema = "reporting"

// ReportType is the report aggregate's subject part.
const ReportType = "reporting.report"

// The other areas' aggregate types this read model follows.
const (
	incidentType    = "incidents.incident"
	remediationType = "patching.remediation"
	changeType      = "changeadvisory.change"
	auditType       = "audits.audit"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations are the read model's goose migrations.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}

// Handler projects every area's events into facts and the reports.
type Handler struct{}

// Reset empties the read model before a rebuild.
func (Handler) Reset(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `TRUNCATE reporting.incident_states, reporting.incidents, reporting.clocks, reporting.remediations,
		reporting.changes, reporting.findings, reporting.measures, reporting.reports`); err != nil {
		return err
	}
	return known.Reset(ctx, tx, Schema)
}

// Apply folds a batch into the read model.
func (Handler) Apply(ctx context.Context, tx pgx.Tx, events []event.Event) error {
	if err := known.Apply(ctx, tx, Schema, events); err != nil {
		return err
	}
	b := &pgx.Batch{}
	if err := incidents(ctx, tx, b, events); err != nil {
		return err
	}
	reports := map[string]domain.Report{}
	var reportIDs []string
	for _, e := range events {
		switch e.AggregateType {
		case remediationType, changeType, auditType:
		case ReportType:
			if _, ok := reports[e.AggregateID]; !ok {
				reportIDs = append(reportIDs, e.AggregateID)
			}
		default:
			continue
		}
		m, err := e.Decode()
		if err != nil {
			return fmt.Errorf("event %s at %d: %w", e.ID, e.Position, err)
		}
		if e.AggregateType == ReportType {
			r, err := loadReport(ctx, tx, reports, e.AggregateID)
			if err != nil {
				return err
			}
			reports[e.AggregateID] = domain.Evolve(r, m, es.MetaOf(e))
			continue
		}
		fact(b, e, m)
	}
	for _, id := range reportIDs {
		if r := reports[id]; r.Exists() {
			if err := queueReport(b, r); err != nil {
				return err
			}
		}
	}
	return tx.SendBatch(ctx, b).Close()
}

func loadReport(ctx context.Context, tx pgx.Tx, cache map[string]domain.Report, id string) (domain.Report, error) {
	if r, ok := cache[id]; ok {
		return r, nil
	}
	var raw []byte
	err := tx.QueryRow(ctx, `SELECT state FROM reporting.reports WHERE report_id = $1`, id).Scan(&raw)
	if err == pgx.ErrNoRows {
		return domain.Report{}, nil
	}
	if err != nil {
		return domain.Report{}, err
	}
	var r domain.Report
	if err := json.Unmarshal(raw, &r); err != nil {
		return r, fmt.Errorf("report %s: stored state: %w", id, err)
	}
	return r, nil
}

func queueReport(b *pgx.Batch, r domain.Report) error {
	raw, err := json.Marshal(r)
	if err != nil {
		return err
	}
	var ackDue *time.Time
	if !r.AcknowledgementDueAt.IsZero() {
		ackDue = &r.AcknowledgementDueAt
	}
	overdue := (r.DeliveryOverdue && r.Status == reportingv1.ReportStatus_REPORT_STATUS_GENERATED) ||
		(r.AcknowledgementOverdue && r.Status == reportingv1.ReportStatus_REPORT_STATUS_DELIVERED)
	b.Queue(`INSERT INTO reporting.reports (report_id, contract_id, customer_org_id, provider_org_id, status, period_start, period_end,
			generated_at, delivery_pending, delivery_due_at, ack_pending, ack_due_at, overdue, state, position)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
		ON CONFLICT (report_id) DO UPDATE SET status = $5, delivery_pending = $9, ack_pending = $11, ack_due_at = $12,
			overdue = $13, state = $14, position = $15`,
		r.ID, r.ContractID, string(r.Customer), string(r.Provider), int16(r.Status), r.PeriodStart, r.PeriodEnd,
		r.GeneratedAt, r.DeliveryPending(), r.DeliveryDueAt, r.AcknowledgementPending(), ackDue, overdue, raw, r.Position)
	return nil
}

func at(t interface{ AsTime() time.Time }, fallback time.Time) time.Time {
	if t == nil {
		return fallback
	}
	if v := t.AsTime(); !v.IsZero() && v.Unix() != 0 {
		return v
	}
	return fallback
}

// optional is a timestamp that may be unset.
func optional(t *timestamppb.Timestamp) *time.Time {
	if t == nil {
		return nil
	}
	v := t.AsTime()
	return &v
}

// fact queues the statements one event of patching, changes or audits
// makes of the facts. Events of an object whose first event was not seen
// update nothing.
func fact(b *pgx.Batch, e event.Event, m proto.Message) {
	c, cust, prov := e.Contract, e.Parties.Customer, e.Parties.Provider
	switch x := m.(type) {
	// patching
	case *patchingv1.VulnerabilityRegistered:
		b.Queue(`INSERT INTO reporting.remediations (remediation_id, contract_id, customer_org_id, provider_org_id, cve_id, severity, registered_at, due_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (remediation_id) DO NOTHING`,
			x.GetRemediationId(), x.GetContractId(), x.GetCustomerOrgId(), x.GetProviderOrgId(), x.GetCveId(), int16(x.GetSeverity()),
			at(x.GetRegisteredAt(), e.Time), optional(x.GetDueAt()))
	case *patchingv1.PatchApplied:
		b.Queue(`UPDATE reporting.remediations SET patched_at = $2 WHERE remediation_id = $1`, x.GetRemediationId(), at(x.GetAppliedAt(), e.Time))
	case *patchingv1.PatchVerified:
		if x.GetSuccess() {
			b.Queue(`UPDATE reporting.remediations SET closed_at = $2 WHERE remediation_id = $1`, x.GetRemediationId(), at(x.GetVerifiedAt(), e.Time))
		}
	case *patchingv1.DeferralExpired:
		if due := optional(x.GetDueAt()); due != nil {
			b.Queue(`UPDATE reporting.remediations SET due_at = $2 WHERE remediation_id = $1`, x.GetRemediationId(), *due)
		}
	case *patchingv1.RemediationOverdue:
		b.Queue(`UPDATE reporting.remediations SET overdue_at = COALESCE(overdue_at, $2) WHERE remediation_id = $1`, x.GetRemediationId(), at(x.GetDetectedAt(), e.Time))
	// changes
	case *changeadvisoryv1.ChangeRequested:
		awaiting := x.GetRequiredApproverOrgIds()
		if awaiting == nil {
			awaiting = []string{}
		}
		b.Queue(`INSERT INTO reporting.changes (change_id, contract_id, customer_org_id, provider_org_id, title, emergency, requested_at, awaiting)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (change_id) DO NOTHING`,
			x.GetChangeId(), x.GetContractId(), x.GetCustomerOrgId(), x.GetProviderOrgId(), x.GetTitle(), x.GetEmergency(), e.Time, awaiting)
	case *changeadvisoryv1.ChangeApprovalGiven:
		b.Queue(`UPDATE reporting.changes SET awaiting = array_remove(awaiting, $2) WHERE change_id = $1`, x.GetChangeId(), x.GetOrgId())
	case *changeadvisoryv1.ChangeApproved:
		b.Queue(`UPDATE reporting.changes SET approved_at = $2, awaiting = '{}' WHERE change_id = $1`, x.GetChangeId(), at(x.GetApprovedAt(), e.Time))
	case *changeadvisoryv1.ChangeRejected:
		b.Queue(`UPDATE reporting.changes SET rejected_at = $2, awaiting = '{}' WHERE change_id = $1`, x.GetChangeId(), at(x.GetRejectedAt(), e.Time))
	case *changeadvisoryv1.ChangeImplemented:
		if x.GetSuccess() {
			b.Queue(`UPDATE reporting.changes SET awaiting = '{}' WHERE change_id = $1`, x.GetChangeId())
		} else {
			b.Queue(`UPDATE reporting.changes SET failed_at = COALESCE(failed_at, $2), awaiting = '{}' WHERE change_id = $1`, x.GetChangeId(), at(x.GetImplementedAt(), e.Time))
		}
	case *changeadvisoryv1.ChangeRolledBack:
		b.Queue(`UPDATE reporting.changes SET failed_at = COALESCE(failed_at, $2), awaiting = '{}' WHERE change_id = $1`, x.GetChangeId(), at(x.GetRolledBackAt(), e.Time))
	case *changeadvisoryv1.ChangeClosed:
		b.Queue(`UPDATE reporting.changes SET awaiting = '{}' WHERE change_id = $1`, x.GetChangeId())
	// audits
	case *auditsv1.FindingRecorded:
		b.Queue(`INSERT INTO reporting.findings (finding_id, audit_id, contract_id, customer_org_id, provider_org_id, title, severity, recorded_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (finding_id) DO NOTHING`,
			x.GetFindingId(), x.GetAuditId(), c, cust, prov, x.GetTitle(), int16(x.GetSeverity()), e.Time)
	case *auditsv1.FindingClosed:
		b.Queue(`UPDATE reporting.findings SET closed_at = $2 WHERE finding_id = $1`, x.GetFindingId(), at(x.GetClosedAt(), e.Time))
	case *auditsv1.MeasureProposed:
		b.Queue(`INSERT INTO reporting.measures (measure_id, audit_id, finding_id, contract_id, customer_org_id, provider_org_id, due_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (measure_id) DO NOTHING`,
			x.GetMeasureId(), x.GetAuditId(), x.GetFindingId(), c, cust, prov, at(x.GetDueAt(), e.Time))
	case *auditsv1.MeasureRejected:
		b.Queue(`UPDATE reporting.measures SET done_at = $2 WHERE measure_id = $1`, x.GetMeasureId(), e.Time)
	case *auditsv1.MeasureImplemented:
		b.Queue(`UPDATE reporting.measures SET done_at = $2 WHERE measure_id = $1`, x.GetMeasureId(), at(x.GetImplementedAt(), e.Time))
	case *auditsv1.MeasureVerified:
		if !x.GetAccepted() { // back to the owner
			b.Queue(`UPDATE reporting.measures SET done_at = NULL WHERE measure_id = $1`, x.GetMeasureId())
		}
	case *auditsv1.MeasureOverdue:
		b.Queue(`UPDATE reporting.measures SET overdue_at = COALESCE(overdue_at, $2) WHERE measure_id = $1`, x.GetMeasureId(), e.Time)
	}
}

// incidents folds the batch's incident events with the incidents area's
// own Evolve (so the clocks follow its rules) and writes each changed
// incident's facts once.
func incidents(ctx context.Context, tx pgx.Tx, b *pgx.Batch, events []event.Event) error {
	states := map[string]idomain.State{}
	resolved := map[string]time.Time{}
	var ids []string
	for _, e := range events {
		if e.AggregateType != incidentType {
			continue
		}
		if _, ok := states[e.AggregateID]; !ok {
			states[e.AggregateID] = idomain.State{}
			ids = append(ids, e.AggregateID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, `SELECT incident_id, state FROM reporting.incident_states WHERE incident_id = ANY($1)`, ids)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id string
		var raw []byte
		if err := rows.Scan(&id, &raw); err != nil {
			return err
		}
		var s idomain.State
		if err := json.Unmarshal(raw, &s); err != nil {
			return fmt.Errorf("incident %s: stored state: %w", id, err)
		}
		states[id] = s
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, e := range events {
		if e.AggregateType != incidentType {
			continue
		}
		m, err := e.Decode()
		if err != nil {
			return fmt.Errorf("event %s at %d: %w", e.ID, e.Position, err)
		}
		if r, ok := m.(*incidentsv1.IncidentResolved); ok {
			resolved[e.AggregateID] = at(r.GetResolvedAt(), e.Time)
		}
		states[e.AggregateID] = idomain.Evolve(states[e.AggregateID], m, es.MetaOf(e))
	}
	for _, id := range ids {
		s := states[id]
		if !s.Exists() {
			continue
		}
		raw, err := json.Marshal(s)
		if err != nil {
			return err
		}
		b.Queue(`INSERT INTO reporting.incident_states (incident_id, state) VALUES ($1, $2)
			ON CONFLICT (incident_id) DO UPDATE SET state = $2`, id, raw)
		var notified *time.Time
		for _, n := range s.Notifications {
			if n.From == s.Reporter && (notified == nil || n.NotifiedAt.Before(*notified)) {
				t := n.NotifiedAt
				notified = &t
			}
		}
		var res *time.Time
		if t, ok := resolved[id]; ok {
			res = &t
		}
		open := s.Status != incidentsv1.IncidentStatus_INCIDENT_STATUS_RESOLVED && s.Status != incidentsv1.IncidentStatus_INCIDENT_STATUS_CLOSED
		type clock struct {
			Kind    int32     `json:"kind"`
			Party   string    `json:"party"`
			DueAt   time.Time `json:"due_at"`
			Overdue bool      `json:"overdue"`
		}
		clocks := []clock{}
		for _, k := range s.Clocks {
			var met, started *time.Time
			if k.Met() {
				t := k.MetAt
				met = &t
			} else if open {
				clocks = append(clocks, clock{Kind: int32(k.Kind), Party: string(k.Party), DueAt: k.DueAt, Overdue: k.Overdue})
			}
			if !k.StartedAt.IsZero() {
				t := k.StartedAt
				started = &t
			}
			b.Queue(`INSERT INTO reporting.clocks (incident_id, clock_id, contract_id, customer_org_id, provider_org_id, kind, started_at, due_at, met_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
				ON CONFLICT (incident_id, clock_id) DO UPDATE SET started_at = $7, due_at = $8, met_at = $9`,
				id, k.ID, s.ContractID, string(s.Customer), string(s.Provider), int16(k.Kind), started, k.DueAt, met)
		}
		cj, err := json.Marshal(clocks)
		if err != nil {
			return err
		}
		b.Queue(`INSERT INTO reporting.incidents (incident_id, contract_id, customer_org_id, provider_org_id, title, severity, status, aware_at, reported_at, notified_at, resolved_at, clocks)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
			ON CONFLICT (incident_id) DO UPDATE SET title = $5, severity = $6, status = $7, aware_at = $8, notified_at = $10,
				resolved_at = COALESCE($11, reporting.incidents.resolved_at), clocks = $12`,
			id, s.ContractID, string(s.Customer), string(s.Provider), s.Title, int16(s.Severity), int16(s.Status), s.AwareAt, s.ReportedAt, notified, res, cj)
	}
	return nil
}
