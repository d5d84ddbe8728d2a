// Package domain holds the report aggregate as a pure decider: a frozen
// snapshot of a contract's KPIs for a period, delivered by the provider to
// the customer and acknowledged by the customer; missed delivery and
// acknowledgement due dates are recorded once. Decide checks a command
// against the state and returns the events it causes; Evolve folds events
// into state. Nothing here does I/O or reads a clock: time arrives in the
// commands and, for bookkeeping, in Meta. The KPIs themselves are computed
// by the app layer from the read model and arrive in GenerateReport.
package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/jsmplatform/jsm/libs/decide"
	reportingv1 "github.com/jsmplatform/jsm/proto/gen/jsm/reporting/v1"
)

// The decider's shared vocabulary (libs/decide).
type (
	// OrgID identifies an organisation.
	OrgID = decide.OrgID
	// Actor is the org and user on whose behalf a command is given.
	Actor = decide.Actor
	// Meta is what Evolve takes from an event's envelope.
	Meta = decide.Meta
	// By is who gives a command and when; every command embeds it.
	By = decide.By
	// Command is an instruction to an aggregate; commands are passed as pointers.
	Command = decide.Command
)

// Missing reports whether cmd is nil or a nil pointer (which Stamp cannot stamp).
func Missing(cmd Command) bool { return decide.Missing(cmd) }

// Stamp sets who gives cmd and when.
func Stamp(cmd Command, a Actor, at time.Time) { decide.Stamp(cmd, a, at) }

// ByOf returns who gives cmd and when.
func ByOf(cmd Command) By { return decide.ByOf(cmd) }

// Due dates (README.md documents them): a report is delivered within
// DeliveryWithin after the end of its period (or after its generation,
// when it is generated later), and acknowledged within AcknowledgeWithin
// after its delivery.
const (
	DeliveryWithin    = 5 * 24 * time.Hour
	AcknowledgeWithin = 10 * 24 * time.Hour
)

// Contract is what a report needs to know of its contract.
type Contract struct {
	ID       string
	Customer OrgID
	Provider OrgID
}

// IsParty reports whether org is the customer or the provider.
func (c Contract) IsParty(org OrgID) bool {
	return org != "" && (org == c.Customer || org == c.Provider)
}

// Report is the report as its events have made it. It holds plain values
// only: it is the runner's JSON snapshot and the read model's row.
type Report struct {
	ID                     string                   `json:"id,omitzero"`
	ContractID             string                   `json:"contract_id,omitzero"`
	Customer               OrgID                    `json:"customer,omitzero"`
	Provider               OrgID                    `json:"provider,omitzero"`
	PeriodStart            time.Time                `json:"period_start,omitzero"`
	PeriodEnd              time.Time                `json:"period_end,omitzero"`
	Status                 reportingv1.ReportStatus `json:"status,omitzero"`
	Kpis                   []byte                   `json:"kpis,omitzero"` // binary jsm.reporting.v1.Kpis as frozen
	ContentHash            string                   `json:"content_hash,omitzero"`
	Scheduled              bool                     `json:"scheduled,omitzero"`
	GeneratedAt            time.Time                `json:"generated_at,omitzero"`
	DeliveryDueAt          time.Time                `json:"delivery_due_at,omitzero"`
	DeliveredAt            time.Time                `json:"delivered_at,omitzero"`
	AcknowledgementDueAt   time.Time                `json:"acknowledgement_due_at,omitzero"`
	AcknowledgedAt         time.Time                `json:"acknowledged_at,omitzero"`
	Comments               string                   `json:"comments,omitzero"`
	DeliveryOverdue        bool                     `json:"delivery_overdue,omitzero"`
	AcknowledgementOverdue bool                     `json:"acknowledgement_overdue,omitzero"`
	Position               uint64                   `json:"position,omitzero"`
}

// Exists reports whether the report has been generated.
func (r Report) Exists() bool { return r.ID != "" }

// IsParty reports whether org is the customer or the provider.
func (r Report) IsParty(org OrgID) bool {
	return org != "" && (org == r.Customer || org == r.Provider)
}

// DeliveryPending: generated, not delivered, its overdue not recorded yet.
func (r Report) DeliveryPending() bool {
	return r.Status == reportingv1.ReportStatus_REPORT_STATUS_GENERATED && !r.DeliveryOverdue
}

// AcknowledgementPending: delivered, not acknowledged, its overdue not recorded yet.
func (r Report) AcknowledgementPending() bool {
	return r.Status == reportingv1.ReportStatus_REPORT_STATUS_DELIVERED && !r.AcknowledgementOverdue
}

// GenerateReport freezes the KPIs of a period of a contract. A party
// generates on request; the scheduler (Scheduled) on the contract's cadence.
type GenerateReport struct {
	By
	ReportID    string
	Contract    Contract
	PeriodStart time.Time
	PeriodEnd   time.Time
	Kpis        *reportingv1.Kpis
	Scheduled   bool
}

// DeliverReport: the provider delivers the report to the customer.
type DeliverReport struct {
	By
}

// AcknowledgeReport: the customer acknowledges a delivered report.
type AcknowledgeReport struct {
	By
	Comments string
}

// MarkReportOverdue records a missed due date once (the scheduler's command).
type MarkReportOverdue struct {
	By
	Kind reportingv1.OverdueKind
}

// ContentHash is the hex SHA-256 of the KPIs' canonical encoding: binary
// protobuf with deterministic marshalling (fields in number order, no
// unknown fields), so the same KPIs always hash the same.
func ContentHash(k *reportingv1.Kpis) (string, []byte, error) {
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(k)
	if err != nil {
		return "", nil, err
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:]), raw, nil
}

// Decide checks cmd against the report r and returns the events it
// causes, or a domain error. No events and no error means the command
// changes nothing (it was given before, or asks for what is already so).
func Decide(r Report, cmd Command) ([]proto.Message, error) {
	if Missing(cmd) {
		return nil, invalid("command", "missing")
	}
	if c, ok := cmd.(*GenerateReport); ok {
		return decideGenerate(r, c)
	}
	if !r.Exists() {
		return nil, NotFoundError{What: "report"}
	}
	if c, ok := cmd.(*MarkReportOverdue); ok {
		return decideOverdue(r, c)
	}
	b := ByOf(cmd)
	if !r.IsParty(b.Org) {
		return nil, fmt.Errorf("org %q: %w", b.Org, ErrNotParty)
	}
	switch c := cmd.(type) {
	case *DeliverReport:
		if b.Org != r.Provider {
			return nil, fmt.Errorf("only the provider delivers: %w", ErrWrongParty)
		}
		if r.Status != reportingv1.ReportStatus_REPORT_STATUS_GENERATED {
			return nil, nil // delivered before
		}
		return []proto.Message{&reportingv1.ReportDelivered{
			ReportId: r.ID, OrgId: string(b.Org), DeliveredAt: timestamppb.New(b.At),
			AcknowledgementDueAt: timestamppb.New(b.At.Add(AcknowledgeWithin)),
		}}, nil
	case *AcknowledgeReport:
		if b.Org != r.Customer {
			return nil, fmt.Errorf("only the customer acknowledges: %w", ErrWrongParty)
		}
		switch r.Status {
		case reportingv1.ReportStatus_REPORT_STATUS_ACKNOWLEDGED:
			return nil, nil
		case reportingv1.ReportStatus_REPORT_STATUS_DELIVERED:
		default:
			return nil, fmt.Errorf("report %s is not delivered: %w", r.ID, ErrWrongStatus)
		}
		if len(c.Comments) > 20000 {
			return nil, invalid("comments", "at most 20000 bytes")
		}
		return []proto.Message{&reportingv1.ReportAcknowledged{
			ReportId: r.ID, OrgId: string(b.Org), Comments: strings.TrimSpace(c.Comments), AcknowledgedAt: timestamppb.New(b.At),
		}}, nil
	default:
		return nil, invalid("command", "unknown command %T", cmd)
	}
}

func decideGenerate(r Report, c *GenerateReport) ([]proto.Message, error) {
	if r.Exists() {
		if c.Scheduled && r.Scheduled {
			return nil, nil // the scheduler generated this period's report before
		}
		return nil, fmt.Errorf("report %s: %w", r.ID, ErrAlreadyExists)
	}
	k := c.Contract
	switch {
	case strings.TrimSpace(c.ReportID) == "":
		return nil, invalid("report_id", "must not be empty")
	case k.ID == "":
		return nil, NotFoundError{What: "contract"}
	case !c.Scheduled && !k.IsParty(c.Org):
		return nil, fmt.Errorf("org %q reporting on contract %s: %w", c.Org, k.ID, ErrNotParty)
	case c.PeriodStart.IsZero() || c.PeriodEnd.IsZero():
		return nil, invalid("period", "start and end are required")
	case !c.PeriodEnd.After(c.PeriodStart):
		return nil, invalid("period_end", "must be after period_start")
	case c.Kpis == nil:
		return nil, invalid("kpis", "missing")
	}
	hash, _, err := ContentHash(c.Kpis)
	if err != nil {
		return nil, err
	}
	due := c.PeriodEnd
	if c.At.After(due) {
		due = c.At
	}
	return []proto.Message{&reportingv1.ReportGenerated{
		ReportId: c.ReportID, ContractId: k.ID, CustomerOrgId: string(k.Customer), ProviderOrgId: string(k.Provider),
		PeriodStart: timestamppb.New(c.PeriodStart), PeriodEnd: timestamppb.New(c.PeriodEnd),
		Kpis: c.Kpis, ContentHash: hash, GeneratedAt: timestamppb.New(c.At),
		DeliveryDueAt: timestamppb.New(due.Add(DeliveryWithin)), Scheduled: c.Scheduled,
	}}, nil
}

func decideOverdue(r Report, c *MarkReportOverdue) ([]proto.Message, error) {
	var due time.Time
	switch c.Kind {
	case reportingv1.OverdueKind_OVERDUE_KIND_DELIVERY:
		if !r.DeliveryPending() {
			return nil, nil
		}
		due = r.DeliveryDueAt
	case reportingv1.OverdueKind_OVERDUE_KIND_ACKNOWLEDGEMENT:
		if !r.AcknowledgementPending() {
			return nil, nil
		}
		due = r.AcknowledgementDueAt
	default:
		return nil, invalid("kind", "unknown overdue kind %v", c.Kind)
	}
	if !c.At.After(due) {
		return nil, nil // not due yet: the read model was ahead of the clock
	}
	return []proto.Message{&reportingv1.ReportOverdue{
		ReportId: r.ID, Kind: c.Kind, DueAt: timestamppb.New(due), DetectedAt: timestamppb.New(c.At),
	}}, nil
}

// Evolve applies one event to the report. Unknown events change nothing
// but the bookkeeping.
func Evolve(r Report, m proto.Message, meta Meta) Report {
	switch e := m.(type) {
	case *reportingv1.ReportGenerated:
		raw, _ := proto.MarshalOptions{Deterministic: true}.Marshal(e.GetKpis())
		r = Report{
			ID: e.GetReportId(), ContractID: e.GetContractId(),
			Customer: OrgID(e.GetCustomerOrgId()), Provider: OrgID(e.GetProviderOrgId()),
			PeriodStart: timeOf(e.GetPeriodStart()), PeriodEnd: timeOf(e.GetPeriodEnd()),
			Status: reportingv1.ReportStatus_REPORT_STATUS_GENERATED, Kpis: raw, ContentHash: e.GetContentHash(),
			Scheduled: e.GetScheduled(), GeneratedAt: timeOf(e.GetGeneratedAt()), DeliveryDueAt: timeOf(e.GetDeliveryDueAt()),
		}
	case *reportingv1.ReportDelivered:
		r.Status, r.DeliveredAt, r.AcknowledgementDueAt = reportingv1.ReportStatus_REPORT_STATUS_DELIVERED, timeOf(e.GetDeliveredAt()), timeOf(e.GetAcknowledgementDueAt())
	case *reportingv1.ReportAcknowledged:
		r.Status, r.AcknowledgedAt, r.Comments = reportingv1.ReportStatus_REPORT_STATUS_ACKNOWLEDGED, timeOf(e.GetAcknowledgedAt()), e.GetComments()
	case *reportingv1.ReportOverdue:
		switch e.GetKind() {
		case reportingv1.OverdueKind_OVERDUE_KIND_DELIVERY:
			r.DeliveryOverdue = true
		case reportingv1.OverdueKind_OVERDUE_KIND_ACKNOWLEDGEMENT:
			r.AcknowledgementOverdue = true
		}
	}
	if meta.Position > 0 {
		r.Position = meta.Position
	}
	return r
}

// KpisOf returns the frozen KPIs of the report.
func (r Report) KpisOf() (*reportingv1.Kpis, error) {
	k := &reportingv1.Kpis{}
	if err := proto.Unmarshal(r.Kpis, k); err != nil {
		return nil, fmt.Errorf("report %s: kpis: %w", r.ID, err)
	}
	return k, nil
}

// ToProto maps the report to its API message.
func ToProto(r Report) *reportingv1.Report {
	k, _ := r.KpisOf()
	return &reportingv1.Report{
		ReportId: r.ID, ContractId: r.ContractID, CustomerOrgId: string(r.Customer), ProviderOrgId: string(r.Provider),
		PeriodStart: ts(r.PeriodStart), PeriodEnd: ts(r.PeriodEnd), Status: r.Status, Kpis: k, ContentHash: r.ContentHash,
		GeneratedAt: ts(r.GeneratedAt), DeliveryDueAt: ts(r.DeliveryDueAt), DeliveredAt: ts(r.DeliveredAt),
		AcknowledgementDueAt: ts(r.AcknowledgementDueAt), AcknowledgedAt: ts(r.AcknowledgedAt), Comments: r.Comments,
		DeliveryOverdue: r.DeliveryOverdue, AcknowledgementOverdue: r.AcknowledgementOverdue, Scheduled: r.Scheduled,
		Position: r.Position,
	}
}

func timeOf(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime().UTC()
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
