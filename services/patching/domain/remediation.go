package domain

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/jsmplatform/jsm/libs/decide"
	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
	patchingv1 "github.com/jsmplatform/jsm/proto/gen/jsm/patching/v1"
)

// AffectedChunk bounds the asset ids of one AssetsAffected event, so a
// large inventory's match stays within a message's size.
const AffectedChunk = 5000

// Fix is one affected asset's way to its fix.
type Fix struct {
	Status     patchingv1.AssetPatchStatus `json:"status"`
	Change     string                      `json:"change,omitzero"`
	Backup     string                      `json:"backup,omitzero"`
	AppliedAt  time.Time                   `json:"applied_at,omitzero"`
	VerifiedAt time.Time                   `json:"verified_at,omitzero"`
}

// Release is a released patch or workaround.
type Release struct {
	Kind        patchingv1.FixKind `json:"kind"`
	Reference   string             `json:"reference"`
	Description string             `json:"description,omitzero"`
	TestSummary string             `json:"test_summary,omitzero"`
	Emergency   bool               `json:"emergency,omitzero"`
	ReleasedAt  time.Time          `json:"released_at"`
}

// Change states as the remediation sees its linked changes.
const (
	ChangeRequested   = "requested"
	ChangeApproved    = "approved"
	ChangeRejected    = "rejected"
	ChangeImplemented = "implemented"
	ChangeFailed      = "failed"
	ChangeRolledBack  = "rolled_back"
)

// LinkedChange is a change request that rolls the fix out.
type LinkedChange struct {
	ID        string   `json:"id"`
	Emergency bool     `json:"emergency,omitzero"`
	State     string   `json:"state"`
	Assets    []string `json:"assets,omitzero"`
}

// allowsRollout: approved, or an emergency change, which may be
// implemented first and reviewed afterwards.
func (c LinkedChange) allowsRollout() bool {
	return c.State == ChangeApproved || c.State == ChangeImplemented || (c.Emergency && c.State == ChangeRequested)
}

// Deferral states.
const (
	DeferralRequested = "requested"
	DeferralAccepted  = "accepted"
	DeferralRejected  = "rejected"
	DeferralExpired   = "expired"
)

// Deferral is a request to fix later, with the customer's decision.
type Deferral struct {
	ID        string        `json:"id"`
	Reason    string        `json:"reason"`
	Risk      string        `json:"risk,omitzero"`
	Until     time.Time     `json:"until"`
	State     string        `json:"state"`
	Comment   string        `json:"comment,omitzero"`
	Remaining time.Duration `json:"remaining,omitzero"`
}

// Remediation is one vulnerability on one contract and its fix.
type Remediation struct {
	ID               string            `json:"id,omitzero"`
	ContractID       string            `json:"contract_id,omitzero"`
	Customer         OrgID             `json:"customer,omitzero"`
	Provider         OrgID             `json:"provider,omitzero"`
	CVE              string            `json:"cve,omitzero"`
	Severity         commonv1.Severity `json:"severity,omitzero"`
	CVSS             float64           `json:"cvss,omitzero"`
	Vector           string            `json:"vector,omitzero"`
	KnownExploited   bool              `json:"known_exploited,omitzero"`
	Product          string            `json:"product,omitzero"`
	AffectedVersions []string          `json:"affected_versions,omitzero"`
	Description      string            `json:"description,omitzero"`
	PatchWithin      time.Duration     `json:"patch_within,omitzero"`
	// DueAt is zero when the contract sets no deadline for the severity.
	DueAt         time.Time      `json:"due_at,omitzero"`
	Assets        map[string]Fix `json:"assets,omitzero"`
	Releases      []Release      `json:"releases,omitzero"`
	Changes       []LinkedChange `json:"changes,omitzero"`
	Deferrals     []Deferral     `json:"deferrals,omitzero"`
	Overdue       bool           `json:"overdue,omitzero"`
	OverdueAssets []string       `json:"overdue_assets,omitzero"`
	RegisteredAt  time.Time      `json:"registered_at,omitzero"`
	UpdatedAt     time.Time      `json:"updated_at,omitzero"`
	Position      uint64         `json:"position,omitzero"`
}

// Exists reports whether the vulnerability has been registered.
func (r Remediation) Exists() bool { return r.ID != "" }

// IsParty reports whether org is a party to the remediation's contract.
func (r Remediation) IsParty(org OrgID) bool {
	return org != "" && (org == r.Customer || org == r.Provider)
}

// Unfixed returns the affected assets not yet verified, sorted.
func (r Remediation) Unfixed() []string {
	var out []string
	for id, f := range r.Assets {
		if f.Status != verified && f.Status != retired {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// ActiveDeferral returns the accepted deferral not yet expired.
func (r Remediation) ActiveDeferral() (Deferral, bool) {
	for _, d := range r.Deferrals {
		if d.State == DeferralAccepted {
			return d, true
		}
	}
	return Deferral{}, false
}

// Status is where the remediation stands.
func (r Remediation) Status() patchingv1.RemediationStatus {
	switch {
	case !r.Exists():
		return patchingv1.RemediationStatus_REMEDIATION_STATUS_UNSPECIFIED
	case len(r.Assets) == 0:
		return patchingv1.RemediationStatus_REMEDIATION_STATUS_NOT_AFFECTED
	case len(r.Unfixed()) == 0:
		return patchingv1.RemediationStatus_REMEDIATION_STATUS_FIXED
	}
	if _, ok := r.ActiveDeferral(); ok {
		return patchingv1.RemediationStatus_REMEDIATION_STATUS_DEFERRED
	}
	if slices.ContainsFunc(r.Changes, LinkedChange.allowsRollout) {
		return patchingv1.RemediationStatus_REMEDIATION_STATUS_ROLLOUT_APPROVED
	}
	if len(r.Releases) > 0 {
		return patchingv1.RemediationStatus_REMEDIATION_STATUS_PATCH_RELEASED
	}
	return patchingv1.RemediationStatus_REMEDIATION_STATUS_OPEN
}

func (r Remediation) change(id string) (LinkedChange, bool) {
	i := slices.IndexFunc(r.Changes, func(c LinkedChange) bool { return c.ID == id })
	if i < 0 {
		return LinkedChange{}, false
	}
	return r.Changes[i], true
}

// Remediation commands.
type (
	// RegisterVulnerability opens (or, for the same CVE on the same
	// contract, extends) a remediation; Affected are the inventory's assets
	// the app matched.
	RegisterVulnerability struct {
		By
		RemediationID    string
		Contract         Contract
		CVE              string
		Severity         commonv1.Severity
		CVSS             float64
		Vector           string
		KnownExploited   bool
		Product          string
		AffectedVersions []string
		Description      string
		Affected         []string
	}
	// ReleasePatch: the provider releases a tested patch or workaround.
	ReleasePatch struct {
		By
		Kind        patchingv1.FixKind
		Reference   string
		Description string
		TestSummary string
		Emergency   bool
	}
	// RecordPatchApplied: the provider applied the fix to assets through a change.
	RecordPatchApplied struct {
		By
		ChangeID string
		Assets   []string
		Backup   string
	}
	// RecordPatchRollback: the provider rolled the fix back on assets.
	RecordPatchRollback struct {
		By
		Assets []string
		Reason string
	}
	// VerifyPatch: either party checked the fix on assets.
	VerifyPatch struct {
		By
		Assets  []string
		Success bool
		Notes   string
	}
	// RequestDeferral: the provider asks to fix later, until a date.
	RequestDeferral struct {
		By
		DeferralID string
		Reason     string
		Risk       string
		Until      time.Time
	}
	// DecideDeferral: the customer accepts (the risk) or rejects.
	DecideDeferral struct {
		By
		DeferralID string
		Accept     bool
		Comment    string
	}
	// Reactions to the change advisory area (given by the platform).
	// Each names the change's contract: a change of another contract
	// that links this remediation changes nothing.
	LinkChange struct {
		By
		ContractID string
		ChangeID   string
		Assets     []string
		Emergency  bool
	}
	ApproveRollout struct {
		By
		ContractID string
		ChangeID   string
	}
	RejectRollout struct {
		By
		ContractID string
		ChangeID   string
		Org        OrgID
		Reason     string
	}
	ChangeDone struct {
		By
		ContractID string
		ChangeID   string
		Success    bool
		Notes      string
	}
	ChangeRollback struct {
		By
		ContractID string
		ChangeID   string
		Reason     string
	}
	// RetireAffected: an affected asset left the inventory (a reaction to
	// the inventory's AssetRetired).
	RetireAffected struct {
		By
		AssetID string
	}
	// Given by the scheduler.
	ExpireDeferral struct {
		By
		DeferralID string
	}
	MarkOverdue struct {
		By
		DueAt time.Time
	}
)

var (
	pending    = patchingv1.AssetPatchStatus_ASSET_PATCH_STATUS_PENDING
	applied    = patchingv1.AssetPatchStatus_ASSET_PATCH_STATUS_APPLIED
	verified   = patchingv1.AssetPatchStatus_ASSET_PATCH_STATUS_VERIFIED
	failed     = patchingv1.AssetPatchStatus_ASSET_PATCH_STATUS_FAILED
	rolledBack = patchingv1.AssetPatchStatus_ASSET_PATCH_STATUS_ROLLED_BACK
	retired    = patchingv1.AssetPatchStatus_ASSET_PATCH_STATUS_RETIRED
)

// DecideRemediation checks a remediation command.
func DecideRemediation(r Remediation, cmd Command) ([]proto.Message, error) {
	if decide.Missing(cmd) {
		return nil, invalid("command", "missing")
	}
	if c, ok := cmd.(*RegisterVulnerability); ok {
		return decideRegister(r, c)
	}
	if !r.Exists() {
		return nil, NotFoundError{What: "remediation"}
	}
	if contract, ok := reactionContract(cmd); ok && contract != r.ContractID {
		return nil, nil // a change of another contract has no say here
	}
	switch c := cmd.(type) {
	case *LinkChange:
		if _, ok := r.change(c.ChangeID); ok {
			return nil, nil
		}
		assets := r.withStatus(c.Assets, pending, applied, verified, failed, rolledBack)
		if len(assets) == 0 {
			return nil, nil // it covers none of the affected assets
		}
		return one(&patchingv1.ChangeLinked{RemediationId: r.ID, ChangeId: c.ChangeID, AssetIds: assets, Emergency: c.Emergency}), nil
	case *ApproveRollout:
		ch, ok := r.change(c.ChangeID)
		if !ok || ch.State != ChangeRequested {
			return nil, nil // unknown to this remediation, or decided already
		}
		return one(&patchingv1.RolloutApproved{RemediationId: r.ID, ChangeId: ch.ID, AssetIds: slices.Clone(ch.Assets)}), nil
	case *RejectRollout:
		ch, ok := r.change(c.ChangeID)
		if !ok || ch.State != ChangeRequested {
			return nil, nil
		}
		return one(&patchingv1.RolloutRejected{RemediationId: r.ID, ChangeId: ch.ID, OrgId: string(c.Org), Reason: c.Reason}), nil
	case *ChangeDone:
		return decideChangeDone(r, c)
	case *ChangeRollback:
		ch, ok := r.change(c.ChangeID)
		if !ok {
			return nil, nil
		}
		ids := r.withStatus(ch.Assets, applied, verified)
		if len(ids) == 0 && ch.State == ChangeRolledBack {
			return nil, nil
		}
		return one(&patchingv1.PatchRolledBack{RemediationId: r.ID, ChangeId: ch.ID, AssetIds: ids, Reason: c.Reason, RolledBackAt: timestamppb.New(c.At)}), nil
	case *RetireAffected:
		f, ok := r.Assets[c.AssetID]
		if !ok || f.Status == verified || f.Status == retired {
			return nil, nil
		}
		return one(&patchingv1.AffectedAssetRetired{RemediationId: r.ID, AssetId: c.AssetID}), nil
	case *ExpireDeferral:
		d, ok := r.ActiveDeferral()
		if !ok || d.ID != c.DeferralID || c.At.Before(d.Until.Truncate(time.Microsecond)) {
			return nil, nil
		}
		e := &patchingv1.DeferralExpired{RemediationId: r.ID, DeferralId: d.ID}
		if !r.DueAt.IsZero() {
			e.DueAt = timestamppb.New(d.Until.Add(d.Remaining))
		}
		return one(e), nil
	case *MarkOverdue:
		_, deferred := r.ActiveDeferral()
		unfixed := r.Unfixed()
		// The scheduler's due date comes from the read model, in microseconds.
		if r.DueAt.IsZero() || !c.DueAt.Truncate(time.Microsecond).Equal(r.DueAt.Truncate(time.Microsecond)) || r.Overdue || deferred || len(unfixed) == 0 || !c.At.After(r.DueAt) {
			return nil, nil // stale, recorded, deferred, fixed, or not due yet
		}
		return one(&patchingv1.RemediationOverdue{RemediationId: r.ID, DueAt: timestamppb.New(r.DueAt), UnfixedAssetIds: unfixed, DetectedAt: timestamppb.New(c.At)}), nil
	}
	b := *cmd.Header()
	if !r.IsParty(b.Org) {
		return nil, ErrNotParty
	}
	switch c := cmd.(type) {
	case *ReleasePatch:
		return decideRelease(r, c)
	case *RecordPatchApplied:
		return decideApplied(r, c)
	case *RecordPatchRollback:
		if c.Org != r.Provider {
			return nil, fmt.Errorf("only the provider rolls back: %w", ErrWrongParty)
		}
		if err := r.known(c.Assets); err != nil {
			return nil, err
		}
		ids := r.withStatus(c.Assets, applied, verified)
		if len(ids) == 0 {
			return nil, nil
		}
		return one(&patchingv1.PatchRolledBack{RemediationId: r.ID, AssetIds: ids, Reason: c.Reason, RolledBackAt: timestamppb.New(c.At)}), nil
	case *VerifyPatch:
		if err := r.known(c.Assets); err != nil {
			return nil, err
		}
		for _, id := range c.Assets {
			if st := r.Assets[id].Status; st != applied && st != verified {
				return nil, fmt.Errorf("%w: asset %s is %s, not applied", ErrWrongStatus, id, st)
			}
		}
		ids := r.withStatus(c.Assets, applied)
		if c.Success && len(ids) == 0 {
			return nil, nil // verified already
		}
		if !c.Success {
			ids = r.withStatus(c.Assets, applied, verified)
		}
		return one(&patchingv1.PatchVerified{RemediationId: r.ID, AssetIds: ids, Success: c.Success, Notes: c.Notes, VerifiedAt: timestamppb.New(c.At)}), nil
	case *RequestDeferral:
		switch {
		case c.Org != r.Provider:
			return nil, fmt.Errorf("only the provider requests a deferral: %w", ErrWrongParty)
		case r.Status() == patchingv1.RemediationStatus_REMEDIATION_STATUS_FIXED:
			return nil, fmt.Errorf("%w: fixed already", ErrWrongStatus)
		case slices.ContainsFunc(r.Deferrals, func(d Deferral) bool { return d.State == DeferralRequested || d.State == DeferralAccepted }):
			return nil, fmt.Errorf("%w: a deferral is pending or in effect", ErrWrongStatus)
		case blank(c.DeferralID):
			return nil, invalid("deferral_id", "must not be empty")
		case blank(c.Reason):
			return nil, invalid("reason", "must not be empty")
		case !c.Until.After(c.At):
			return nil, invalid("until", "must be in the future")
		}
		return one(&patchingv1.DeferralRequested{RemediationId: r.ID, DeferralId: c.DeferralID, Reason: c.Reason, Until: timestamppb.New(c.Until), Risk: c.Risk}), nil
	case *DecideDeferral:
		i := slices.IndexFunc(r.Deferrals, func(d Deferral) bool { return d.ID == c.DeferralID })
		switch {
		case c.Org != r.Customer:
			return nil, fmt.Errorf("only the customer accepts a deferral and its risk: %w", ErrWrongParty)
		case i < 0:
			return nil, NotFoundError{What: "deferral", ID: c.DeferralID}
		}
		d := r.Deferrals[i]
		switch {
		case d.State != DeferralRequested && (d.State == DeferralAccepted) == c.Accept && d.State != DeferralExpired:
			return nil, nil // decided so already
		case d.State != DeferralRequested:
			return nil, fmt.Errorf("%w: deferral %s is %s", ErrWrongStatus, d.ID, d.State)
		case c.Accept && !d.Until.After(c.At):
			return nil, fmt.Errorf("%w: deferral %s ran out at %s", ErrWrongStatus, d.ID, d.Until.UTC().Format(time.RFC3339))
		}
		e := &patchingv1.DeferralDecided{RemediationId: r.ID, DeferralId: d.ID, Accepted: c.Accept, Comment: c.Comment, DecidedAt: timestamppb.New(c.At)}
		if c.Accept && !r.DueAt.IsZero() {
			e.Remaining = durationpb.New(max(r.DueAt.Sub(c.At), 0))
		}
		return one(e), nil
	default:
		return nil, invalid("command", "unknown command %T", cmd)
	}
}

// reactionContract is the contract of the change a reaction follows.
func reactionContract(cmd Command) (string, bool) {
	switch c := cmd.(type) {
	case *LinkChange:
		return c.ContractID, true
	case *ApproveRollout:
		return c.ContractID, true
	case *RejectRollout:
		return c.ContractID, true
	case *ChangeDone:
		return c.ContractID, true
	case *ChangeRollback:
		return c.ContractID, true
	}
	return "", false
}

func decideRegister(r Remediation, c *RegisterVulnerability) ([]proto.Message, error) {
	if err := c.Contract.Check(c.Org); err != nil {
		return nil, err
	}
	if _, err := NewMatcher(c.AffectedVersions); err != nil {
		return nil, err
	}
	switch {
	case blank(c.RemediationID):
		return nil, invalid("remediation_id", "must not be empty")
	case blank(c.CVE):
		return nil, invalid("cve_id", "must not be empty")
	case c.Severity == commonv1.Severity_SEVERITY_UNSPECIFIED || commonv1.Severity_name[int32(c.Severity)] == "":
		return nil, invalid("severity", "must be critical, high, medium or low")
	case blank(c.Product):
		return nil, invalid("product", "must not be empty")
	case c.CVSS < 0 || c.CVSS > 10:
		return nil, invalid("cvss_score", "must be within 0 and 10")
	}
	var out []proto.Message
	if !r.Exists() {
		e := &patchingv1.VulnerabilityRegistered{
			RemediationId: c.RemediationID, ContractId: c.Contract.ID,
			CustomerOrgId: string(c.Contract.Customer), ProviderOrgId: string(c.Contract.Provider),
			CveId: c.CVE, CvssScore: c.CVSS, CvssVector: c.Vector, Severity: c.Severity, Product: c.Product,
			AffectedVersions: slices.Clone(c.AffectedVersions), KnownExploited: c.KnownExploited, Description: c.Description,
			RegisteredAt: timestamppb.New(c.At),
		}
		for _, d := range c.Contract.PatchDeadlines {
			if d.Severity == c.Severity {
				e.PatchWithin = durationpb.New(d.Within)
				e.DueAt = timestamppb.New(c.At.Add(d.Within))
			}
		}
		out = append(out, e)
	}
	var fresh []string
	seen := map[string]bool{}
	for _, id := range c.Affected {
		if _, ok := r.Assets[id]; !ok && !seen[id] {
			seen[id] = true
			fresh = append(fresh, id)
		}
	}
	for chunk := range slices.Chunk(fresh, AffectedChunk) {
		out = append(out, &patchingv1.AssetsAffected{RemediationId: c.RemediationID, AssetIds: chunk})
	}
	return out, nil
}

func decideRelease(r Remediation, c *ReleasePatch) ([]proto.Message, error) {
	if c.Org != r.Provider {
		return nil, fmt.Errorf("only the provider releases patches: %w", ErrWrongParty)
	}
	switch {
	case c.Kind == patchingv1.FixKind_FIX_KIND_UNSPECIFIED || patchingv1.FixKind_name[int32(c.Kind)] == "":
		return nil, invalid("kind", "must be patch or workaround")
	case blank(c.Reference):
		return nil, invalid("reference", "must not be empty")
	}
	ids := r.withStatus(nil, pending, failed, rolledBack)
	if len(ids) == 0 {
		return nil, fmt.Errorf("%w: no affected asset waits for a fix", ErrWrongStatus)
	}
	return one(&patchingv1.PatchReleased{
		RemediationId: r.ID, ContractId: r.ContractID, Kind: c.Kind, Reference: c.Reference, Description: c.Description,
		TestSummary: c.TestSummary, Emergency: c.Emergency, AssetIds: ids, ReleasedAt: timestamppb.New(c.At),
	}), nil
}

func decideApplied(r Remediation, c *RecordPatchApplied) ([]proto.Message, error) {
	if c.Org != r.Provider {
		return nil, fmt.Errorf("only the provider applies patches: %w", ErrWrongParty)
	}
	if err := r.known(c.Assets); err != nil {
		return nil, err
	}
	ch, ok := r.change(c.ChangeID)
	if !ok || !ch.allowsRollout() {
		return nil, fmt.Errorf("change %s: %w", c.ChangeID, ErrNoApprovedChange)
	}
	for _, id := range c.Assets {
		if !slices.Contains(ch.Assets, id) {
			return nil, fmt.Errorf("asset %s is not in change %s: %w", id, ch.ID, ErrNoApprovedChange)
		}
	}
	ids := r.withStatus(c.Assets, pending, failed, rolledBack)
	if len(ids) == 0 {
		return nil, nil
	}
	return one(&patchingv1.PatchApplied{RemediationId: r.ID, ChangeId: ch.ID, AssetIds: ids, BackupReference: c.Backup, AppliedAt: timestamppb.New(c.At)}), nil
}

func decideChangeDone(r Remediation, c *ChangeDone) ([]proto.Message, error) {
	ch, ok := r.change(c.ChangeID)
	if !ok || ch.State == ChangeImplemented || ch.State == ChangeFailed || ch.State == ChangeRolledBack {
		return nil, nil // unknown, or done already: a rolled back change was done before
	}
	if !c.Success {
		return one(&patchingv1.PatchFailed{RemediationId: r.ID, ChangeId: ch.ID, AssetIds: r.withStatus(ch.Assets, pending, applied, rolledBack), Reason: c.Notes}), nil
	}
	// Assets the provider recorded applied one by one keep their record.
	return one(&patchingv1.PatchApplied{RemediationId: r.ID, ChangeId: ch.ID, AssetIds: r.withStatus(ch.Assets, pending, failed, rolledBack), AppliedAt: timestamppb.New(c.At), ChangeImplemented: true}), nil
}

// withStatus returns the ids among ids (all affected assets when nil)
// whose status is one of sts, sorted.
func (r Remediation) withStatus(ids []string, sts ...patchingv1.AssetPatchStatus) []string {
	if ids == nil {
		ids = slices.Sorted(maps.Keys(r.Assets))
	}
	var out []string
	for _, id := range ids {
		if f, ok := r.Assets[id]; ok && slices.Contains(sts, f.Status) && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func (r Remediation) known(ids []string) error {
	if len(ids) == 0 {
		return invalid("asset_ids", "must not be empty")
	}
	for _, id := range ids {
		if _, ok := r.Assets[id]; !ok {
			return invalid("asset_ids", "asset %q is not affected by %s", id, r.CVE)
		}
	}
	return nil
}

// EvolveRemediation applies one event. It copies what it changes: the
// runner's cache shares states.
func EvolveRemediation(r Remediation, m proto.Message, meta Meta) Remediation {
	r.Assets = maps.Clone(r.Assets)
	r.Changes = slices.Clone(r.Changes)
	r.Deferrals = slices.Clone(r.Deferrals)
	setAssets := func(ids []string, f func(*Fix)) {
		for _, id := range ids {
			if fix, ok := r.Assets[id]; ok {
				f(&fix)
				r.Assets[id] = fix
			}
		}
	}
	setChange := func(id, state string) {
		for i := range r.Changes {
			if r.Changes[i].ID == id {
				r.Changes[i].State = state
			}
		}
	}
	switch e := m.(type) {
	case *patchingv1.VulnerabilityRegistered:
		r = Remediation{
			ID: e.GetRemediationId(), ContractID: e.GetContractId(),
			Customer: OrgID(e.GetCustomerOrgId()), Provider: OrgID(e.GetProviderOrgId()),
			CVE: e.GetCveId(), Severity: e.GetSeverity(), CVSS: e.GetCvssScore(), Vector: e.GetCvssVector(),
			KnownExploited: e.GetKnownExploited(), Product: e.GetProduct(), AffectedVersions: slices.Clone(e.GetAffectedVersions()),
			Description: e.GetDescription(), PatchWithin: e.GetPatchWithin().AsDuration(),
			Assets: map[string]Fix{}, RegisteredAt: e.GetRegisteredAt().AsTime(),
		}
		if e.GetDueAt() != nil {
			r.DueAt = e.GetDueAt().AsTime()
		}
	case *patchingv1.AssetsAffected:
		if r.Assets == nil {
			r.Assets = map[string]Fix{}
		}
		for _, id := range e.GetAssetIds() {
			if _, ok := r.Assets[id]; !ok {
				r.Assets[id] = Fix{Status: pending}
			}
		}
	case *patchingv1.PatchReleased:
		r.Releases = append(slices.Clone(r.Releases), Release{
			Kind: e.GetKind(), Reference: e.GetReference(), Description: e.GetDescription(), TestSummary: e.GetTestSummary(),
			Emergency: e.GetEmergency(), ReleasedAt: e.GetReleasedAt().AsTime(),
		})
	case *patchingv1.ChangeLinked:
		r.Changes = append(r.Changes, LinkedChange{ID: e.GetChangeId(), Emergency: e.GetEmergency(), State: ChangeRequested, Assets: slices.Clone(e.GetAssetIds())})
	case *patchingv1.RolloutApproved:
		setChange(e.GetChangeId(), ChangeApproved)
	case *patchingv1.RolloutRejected:
		setChange(e.GetChangeId(), ChangeRejected)
	case *patchingv1.PatchApplied:
		at := e.GetAppliedAt().AsTime()
		setAssets(e.GetAssetIds(), func(f *Fix) {
			*f = Fix{Status: applied, Change: e.GetChangeId(), Backup: e.GetBackupReference(), AppliedAt: at}
		})
		if e.GetChangeImplemented() {
			setChange(e.GetChangeId(), ChangeImplemented)
		}
	case *patchingv1.PatchFailed:
		setAssets(e.GetAssetIds(), func(f *Fix) { f.Status = failed })
		setChange(e.GetChangeId(), ChangeFailed)
	case *patchingv1.PatchRolledBack:
		setAssets(e.GetAssetIds(), func(f *Fix) { f.Status, f.VerifiedAt = rolledBack, time.Time{} })
		if e.GetChangeId() != "" {
			setChange(e.GetChangeId(), ChangeRolledBack)
		}
	case *patchingv1.PatchVerified:
		at := e.GetVerifiedAt().AsTime()
		setAssets(e.GetAssetIds(), func(f *Fix) {
			if e.GetSuccess() {
				f.Status, f.VerifiedAt = verified, at
			} else {
				f.Status, f.VerifiedAt = failed, time.Time{}
			}
		})
	case *patchingv1.DeferralRequested:
		r.Deferrals = append(r.Deferrals, Deferral{ID: e.GetDeferralId(), Reason: e.GetReason(), Risk: e.GetRisk(), Until: e.GetUntil().AsTime(), State: DeferralRequested})
	case *patchingv1.DeferralDecided:
		for i := range r.Deferrals {
			if d := &r.Deferrals[i]; d.ID == e.GetDeferralId() {
				d.State, d.Comment, d.Remaining = DeferralRejected, e.GetComment(), e.GetRemaining().AsDuration()
				if e.GetAccepted() {
					d.State = DeferralAccepted
				}
			}
		}
	case *patchingv1.DeferralExpired:
		for i := range r.Deferrals {
			if d := &r.Deferrals[i]; d.ID == e.GetDeferralId() {
				d.State = DeferralExpired
			}
		}
		if e.GetDueAt() != nil {
			// The clock runs again: a new due date, which may pass again.
			r.DueAt, r.Overdue, r.OverdueAssets = e.GetDueAt().AsTime(), false, nil
		}
	case *patchingv1.AffectedAssetRetired:
		setAssets([]string{e.GetAssetId()}, func(f *Fix) { f.Status = retired })
	case *patchingv1.RemediationOverdue:
		r.Overdue, r.OverdueAssets = true, slices.Clone(e.GetUnfixedAssetIds())
	default:
		return r
	}
	r.UpdatedAt = meta.Time
	if meta.Position > r.Position {
		r.Position = meta.Position
	}
	return r
}

// ReactionUser is the user the reactions to the change advisory area act as.
const ReactionUser = "changeadvisory-reactions"
