package domain

import (
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	auditsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/audits/v1"
)

// CheckItem is one item of a contract's checklist.
type CheckItem struct {
	Key   string                 `json:"key"`
	Kind  auditsv1.CheckItemKind `json:"kind"`
	Title string                 `json:"title"`
}

// CheckResult is the latest result of one item in one execution.
type CheckResult struct {
	Period       string                `json:"period"`
	ItemKey      string                `json:"item_key"`
	Outcome      auditsv1.CheckOutcome `json:"outcome"`
	Note         string                `json:"note,omitzero"`
	EvidenceRefs []string              `json:"evidence_refs,omitzero"`
	Org          OrgID                 `json:"org"`
	RecordedAt   time.Time             `json:"recorded_at"`
}

func (r CheckResult) same(o CheckResult) bool {
	return r.Period == o.Period && r.ItemKey == o.ItemKey && r.Outcome == o.Outcome && r.Note == o.Note && slices.Equal(r.EvidenceRefs, o.EvidenceRefs)
}

// Checklist is a contract's recurring checks (M 2.256): the template and
// the results of its executions. Its id is the contract's.
type Checklist struct {
	ContractID string        `json:"contract_id,omitzero"`
	Customer   OrgID         `json:"customer,omitzero"`
	Provider   OrgID         `json:"provider,omitzero"`
	Items      []CheckItem   `json:"items,omitzero"`
	Interval   time.Duration `json:"interval,omitzero"`
	Results    []CheckResult `json:"results,omitzero"`
	// SetAt is when the first template was set: the first execution is due then.
	SetAt     time.Time `json:"set_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	Position  uint64    `json:"position,omitzero"`
}

// Exists reports whether the checklist has a template.
func (c Checklist) Exists() bool { return c.ContractID != "" }

// NextDue is when the next execution of the checklist is due: the first
// when the template was set, each next one interval after the first
// result of the latest execution; zero without an interval.
func (c Checklist) NextDue() time.Time {
	if c.Interval <= 0 {
		return time.Time{}
	}
	var latest time.Time
	starts := map[string]time.Time{}
	for _, r := range c.Results {
		if s, ok := starts[r.Period]; !ok || r.RecordedAt.Before(s) {
			starts[r.Period] = r.RecordedAt
		}
	}
	for _, s := range starts {
		if s.After(latest) {
			latest = s
		}
	}
	if latest.IsZero() {
		return c.SetAt
	}
	return latest.Add(c.Interval)
}

// DefaultTitles are the titles of the standard items of M 2.256.
var DefaultTitles = map[auditsv1.CheckItemKind]string{
	auditsv1.CheckItemKind_CHECK_ITEM_KIND_AGREED_AUDITS_DONE:   "Agreed audits carried out",
	auditsv1.CheckItemKind_CHECK_ITEM_KIND_MEASURES_STATUS:      "Status of agreed measures",
	auditsv1.CheckItemKind_CHECK_ITEM_KIND_MAINTENANCE_STATUS:   "Maintenance status",
	auditsv1.CheckItemKind_CHECK_ITEM_KIND_RIGHTS_ASSIGNMENT:    "Assignment of rights",
	auditsv1.CheckItemKind_CHECK_ITEM_KIND_UNREPORTED_STAFF:     "Staff not reported to the customer",
	auditsv1.CheckItemKind_CHECK_ITEM_KIND_AVAILABILITY_QUALITY: "Availability and quality of the service",
	auditsv1.CheckItemKind_CHECK_ITEM_KIND_BACKUPS:              "Backups",
}

// SetCheckTemplate sets (or replaces) a contract's checklist; either party
// of a contract in force.
type SetCheckTemplate struct {
	By
	Contract Contract
	Items    []CheckItem
	Interval time.Duration
}

// RecordCheckResult records one item's result in one execution of the
// checklist; either party. A later result of the same item and execution
// replaces the earlier one.
type RecordCheckResult struct {
	By
	Contract     Contract
	Period       string
	ItemKey      string
	Outcome      auditsv1.CheckOutcome
	Note         string
	EvidenceRefs []string
}

// partyOnly refuses an unknown contract and an org that is no party to it.
func (k Contract) partyOnly(org OrgID) error {
	if k.ID == "" {
		return NotFoundError{What: "contract"}
	}
	if !k.IsParty(org) {
		return fmt.Errorf("org %q on contract %s: %w", org, k.ID, ErrNotParty)
	}
	return nil
}

// DecideChecklist checks cmd against the checklist c.
func DecideChecklist(c Checklist, cmd Command) ([]proto.Message, error) {
	if Missing(cmd) {
		return nil, invalid("command", "missing")
	}
	switch x := cmd.(type) {
	case *SetCheckTemplate:
		return decideTemplate(c, x)
	case *RecordCheckResult:
		return decideCheckResult(c, x)
	default:
		return nil, invalid("command", "unknown command %T", cmd)
	}
}

func decideTemplate(c Checklist, x *SetCheckTemplate) ([]proto.Message, error) {
	k := x.Contract
	if err := k.partyOnly(x.Org); err != nil {
		return nil, err
	}
	switch {
	case !k.InForce:
		return nil, fmt.Errorf("contract %s has no terms in force: %w", k.ID, ErrContractNotActive)
	case len(x.Items) == 0:
		return nil, invalid("items", "name at least one item")
	case x.Interval < 0:
		return nil, invalid("interval", "must not be negative")
	}
	items := make([]CheckItem, len(x.Items))
	out := make([]*auditsv1.CheckItem, len(x.Items))
	for i, it := range x.Items {
		field := fmt.Sprintf("items[%d]", i)
		switch {
		case blank(it.Key):
			return nil, invalid(field+".key", "must not be empty")
		case slices.ContainsFunc(x.Items[:i], func(o CheckItem) bool { return o.Key == it.Key }):
			return nil, invalid(field+".key", "duplicate %q", it.Key)
		case it.Kind < auditsv1.CheckItemKind_CHECK_ITEM_KIND_AGREED_AUDITS_DONE || it.Kind > auditsv1.CheckItemKind_CHECK_ITEM_KIND_CUSTOM:
			return nil, invalid(field+".kind", "must be one of the M 2.256 items or custom")
		case it.Kind == auditsv1.CheckItemKind_CHECK_ITEM_KIND_CUSTOM && blank(it.Title):
			return nil, invalid(field+".title", "a custom item needs a title")
		}
		if blank(it.Title) {
			it.Title = DefaultTitles[it.Kind]
		}
		items[i] = it
		out[i] = &auditsv1.CheckItem{Key: it.Key, Kind: it.Kind, Title: it.Title}
	}
	if c.Exists() && slices.Equal(c.Items, items) && c.Interval == x.Interval {
		return nil, nil
	}
	e := &auditsv1.CheckTemplateSet{ContractId: k.ID, CustomerOrgId: string(k.Customer), ProviderOrgId: string(k.Provider), Items: out}
	if x.Interval > 0 {
		e.Interval = durationpb.New(x.Interval)
	}
	return one(e), nil
}

func decideCheckResult(c Checklist, x *RecordCheckResult) ([]proto.Message, error) {
	k := x.Contract
	if err := k.partyOnly(x.Org); err != nil {
		return nil, err
	}
	switch {
	case !c.Exists():
		return nil, fmt.Errorf("contract %s: %w", k.ID, ErrNoTemplate)
	case blank(x.Period):
		return nil, invalid("period", "must not be empty")
	case !slices.ContainsFunc(c.Items, func(i CheckItem) bool { return i.Key == x.ItemKey }):
		return nil, invalid("item_key", "%q is not an item of the checklist", x.ItemKey)
	case x.Outcome < auditsv1.CheckOutcome_CHECK_OUTCOME_PASSED || x.Outcome > auditsv1.CheckOutcome_CHECK_OUTCOME_NOT_APPLICABLE:
		return nil, invalid("outcome", "must be passed, deviation or not applicable")
	}
	if err := distinct("evidence_refs", x.EvidenceRefs); err != nil {
		return nil, err
	}
	r := CheckResult{Period: x.Period, ItemKey: x.ItemKey, Outcome: x.Outcome, Note: x.Note, EvidenceRefs: x.EvidenceRefs}
	if slices.ContainsFunc(c.Results, r.same) {
		return nil, nil
	}
	return one(&auditsv1.CheckResultRecorded{
		ContractId: c.ContractID, Period: x.Period, ItemKey: x.ItemKey, Outcome: x.Outcome, Note: x.Note,
		EvidenceRefs: slices.Clone(x.EvidenceRefs), OrgId: string(x.Org), RecordedAt: ts(x.At),
	}), nil
}

// EvolveChecklist applies one event to the checklist, copying what it changes.
func EvolveChecklist(c Checklist, m proto.Message, meta Meta) Checklist {
	c.Items, c.Results = slices.Clone(c.Items), slices.Clone(c.Results)
	switch e := m.(type) {
	case *auditsv1.CheckTemplateSet:
		c.ContractID, c.Customer, c.Provider = e.GetContractId(), OrgID(e.GetCustomerOrgId()), OrgID(e.GetProviderOrgId())
		c.Items = nil
		for _, it := range e.GetItems() {
			c.Items = append(c.Items, CheckItem{Key: it.GetKey(), Kind: it.GetKind(), Title: it.GetTitle()})
		}
		c.Interval = e.GetInterval().AsDuration()
		if c.SetAt.IsZero() {
			c.SetAt = meta.Time
		}
	case *auditsv1.CheckResultRecorded:
		r := CheckResult{
			Period: e.GetPeriod(), ItemKey: e.GetItemKey(), Outcome: e.GetOutcome(), Note: e.GetNote(),
			EvidenceRefs: slices.Clone(e.GetEvidenceRefs()), Org: OrgID(e.GetOrgId()), RecordedAt: timeOf(e.GetRecordedAt()),
		}
		c.Results = slices.DeleteFunc(c.Results, func(o CheckResult) bool { return o.Period == r.Period && o.ItemKey == r.ItemKey })
		c.Results = append(c.Results, r)
	}
	c.UpdatedAt = meta.Time
	if meta.Position > 0 {
		c.Position = meta.Position
	}
	return c
}
