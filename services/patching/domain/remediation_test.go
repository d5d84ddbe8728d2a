package domain_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
	patchingv1 "github.com/jsmplatform/jsm/proto/gen/jsm/patching/v1"
	"github.com/jsmplatform/jsm/services/patching/domain"
)

// ---- fixtures ---------------------------------------------------------------

const (
	remID      = "rem-1"
	contractID = "con-1"
	cve        = "CVE-2024-38476"
	product    = "Apache HTTP Server"
	apache     = ">= 2.4.0, < 2.4.58"

	customer domain.OrgID = "org-customer"
	provider domain.OrgID = "org-provider"
	outsider domain.OrgID = "org-outsider"

	critical = commonv1.Severity_SEVERITY_CRITICAL
	high     = commonv1.Severity_SEVERITY_HIGH
	medium   = commonv1.Severity_SEVERITY_MEDIUM
	low      = commonv1.Severity_SEVERITY_LOW

	patch      = patchingv1.FixKind_FIX_KIND_PATCH
	workaround = patchingv1.FixKind_FIX_KIND_WORKAROUND

	pending    = patchingv1.AssetPatchStatus_ASSET_PATCH_STATUS_PENDING
	applied    = patchingv1.AssetPatchStatus_ASSET_PATCH_STATUS_APPLIED
	verified   = patchingv1.AssetPatchStatus_ASSET_PATCH_STATUS_VERIFIED
	failed     = patchingv1.AssetPatchStatus_ASSET_PATCH_STATUS_FAILED
	rolledBack = patchingv1.AssetPatchStatus_ASSET_PATCH_STATUS_ROLLED_BACK

	statusNone         = patchingv1.RemediationStatus_REMEDIATION_STATUS_UNSPECIFIED
	statusNotAffected  = patchingv1.RemediationStatus_REMEDIATION_STATUS_NOT_AFFECTED
	statusOpen         = patchingv1.RemediationStatus_REMEDIATION_STATUS_OPEN
	statusReleased     = patchingv1.RemediationStatus_REMEDIATION_STATUS_PATCH_RELEASED
	statusRolloutReady = patchingv1.RemediationStatus_REMEDIATION_STATUS_ROLLOUT_APPROVED
	statusFixed        = patchingv1.RemediationStatus_REMEDIATION_STATUS_FIXED
	statusDeferred     = patchingv1.RemediationStatus_REMEDIATION_STATUS_DEFERRED

	chg1 = "chg-1"
	chg2 = "chg-2"

	sec  = time.Second
	hour = time.Hour
	day  = 24 * time.Hour
)

var (
	// base is when the vulnerability is registered.
	base = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	// due is base plus the contract's 7 days for high.
	due = base.Add(7 * day)
)

// at is base+d.
func at(d time.Duration) time.Time { return base.Add(d) }

func userOf(org domain.OrgID) string {
	switch org {
	case customer:
		return "alice"
	case provider:
		return "bob"
	case "":
		return ""
	default:
		return "mallory"
	}
}

func by(org domain.OrgID, t time.Time) domain.By {
	return domain.By{Actor: domain.Actor{Org: org, User: userOf(org)}, At: t}
}

// platform gives reactions and scheduler commands: no user's party.
func platform(t time.Time) domain.By { return domain.By{At: t} }

// terms: patch within 1 day for critical, 7 days for high, 30 days for
// medium, no deadline for low.
func terms() domain.Contract {
	return domain.Contract{
		ID: contractID, Customer: customer, Provider: provider, InForce: true,
		PatchDeadlines: []domain.Deadline{{Severity: critical, Within: day}, {Severity: high, Within: 7 * day}, {Severity: medium, Within: 30 * day}},
	}
}

// ---- commands ---------------------------------------------------------------

// register: the provider registers a high CVE at base affecting web-1 and web-2.
func register(mods ...func(*domain.RegisterVulnerability)) *domain.RegisterVulnerability {
	c := &domain.RegisterVulnerability{
		By: by(provider, base), RemediationID: remID, Contract: terms(), CVE: cve, Severity: high,
		CVSS: 7.5, Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", KnownExploited: true,
		Product: product, AffectedVersions: []string{apache, "2.2.34"}, Description: "SSRF in mod_rewrite",
		Affected: []string{"web-1", "web-2"},
	}
	for _, m := range mods {
		m(c)
	}
	return c
}

func affecting(ids ...string) func(*domain.RegisterVulnerability) {
	return func(c *domain.RegisterVulnerability) { c.Affected = ids }
}

func severity(s commonv1.Severity) func(*domain.RegisterVulnerability) {
	return func(c *domain.RegisterVulnerability) { c.Severity = s }
}

func registeredBy(org domain.OrgID, t time.Time) func(*domain.RegisterVulnerability) {
	return func(c *domain.RegisterVulnerability) { c.By = by(org, t) }
}

func release(org domain.OrgID, t time.Time) *domain.ReleasePatch {
	return &domain.ReleasePatch{By: by(org, t), Kind: patch, Reference: "httpd-2.4.58", Description: "upgrade", TestSummary: "staging ok"}
}

func link(t time.Time, change string, emergency bool, assets ...string) *domain.LinkChange {
	return &domain.LinkChange{By: platform(t), ContractID: contractID, ChangeID: change, Assets: assets, Emergency: emergency}
}

func approve(t time.Time, change string) *domain.ApproveRollout {
	return &domain.ApproveRollout{By: platform(t), ContractID: contractID, ChangeID: change}
}

func reject(t time.Time, change string, org domain.OrgID) *domain.RejectRollout {
	return &domain.RejectRollout{By: platform(t), ContractID: contractID, ChangeID: change, Org: org, Reason: "not in the freeze"}
}

func done(t time.Time, change string, success bool) *domain.ChangeDone {
	notes := "all hosts patched"
	if !success {
		notes = "service did not start"
	}
	return &domain.ChangeDone{By: platform(t), ContractID: contractID, ChangeID: change, Success: success, Notes: notes}
}

func changeRollback(t time.Time, change string) *domain.ChangeRollback {
	return &domain.ChangeRollback{By: platform(t), ContractID: contractID, ChangeID: change, Reason: "regression"}
}

func recordApplied(org domain.OrgID, t time.Time, change string, assets ...string) *domain.RecordPatchApplied {
	return &domain.RecordPatchApplied{By: by(org, t), ChangeID: change, Assets: assets, Backup: "snap-1"}
}

func recordRollback(org domain.OrgID, t time.Time, assets ...string) *domain.RecordPatchRollback {
	return &domain.RecordPatchRollback{By: by(org, t), Assets: assets, Reason: "breaks login"}
}

func verify(org domain.OrgID, t time.Time, success bool, assets ...string) *domain.VerifyPatch {
	return &domain.VerifyPatch{By: by(org, t), Assets: assets, Success: success, Notes: "scanned"}
}

func requestDeferral(org domain.OrgID, t time.Time, id string, until time.Time) *domain.RequestDeferral {
	return &domain.RequestDeferral{By: by(org, t), DeferralID: id, Reason: "vendor fix pending", Risk: "SSRF from the internet", Until: until}
}

func decideDeferral(org domain.OrgID, t time.Time, id string, accept bool) *domain.DecideDeferral {
	return &domain.DecideDeferral{By: by(org, t), DeferralID: id, Accept: accept, Comment: "ok with WAF rule"}
}

func expire(t time.Time, id string) *domain.ExpireDeferral {
	return &domain.ExpireDeferral{By: platform(t), DeferralID: id}
}

func markOverdue(t, dueAt time.Time) *domain.MarkOverdue {
	return &domain.MarkOverdue{By: platform(t), DueAt: dueAt}
}

// ---- histories --------------------------------------------------------------

func history(cmds ...domain.Command) []domain.Command { return cmds }

func with(h []domain.Command, more ...domain.Command) []domain.Command {
	return append(h[:len(h):len(h)], more...)
}

var (
	registered  = history(register())
	released    = with(registered, release(provider, at(hour)))
	linked      = with(released, link(at(2*hour), chg1, false, "web-1", "web-2"))
	approved    = with(linked, approve(at(3*hour), chg1))
	implemented = with(approved, done(at(4*hour), chg1, true))
	fixed       = with(implemented, verify(customer, at(5*hour), true, "web-1", "web-2"))
	// deferred: the customer accepts at base+2h a deferral until base+10d.
	deferralAsked = with(registered, requestDeferral(provider, at(hour), "d-1", at(10*day)))
	deferred      = with(deferralAsked, decideDeferral(customer, at(2*hour), "d-1", true))
)

// ---- events, built by hand --------------------------------------------------

func ts(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

func vulnerabilityRegistered() *patchingv1.VulnerabilityRegistered {
	return &patchingv1.VulnerabilityRegistered{
		RemediationId: remID, ContractId: contractID, CustomerOrgId: string(customer), ProviderOrgId: string(provider),
		CveId: cve, CvssScore: 7.5, CvssVector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", Severity: high,
		Product: product, AffectedVersions: []string{apache, "2.2.34"}, KnownExploited: true, Description: "SSRF in mod_rewrite",
		PatchWithin: durationpb.New(7 * day), DueAt: ts(due), RegisteredAt: ts(base),
	}
}

func assetsAffected(ids ...string) *patchingv1.AssetsAffected {
	return &patchingv1.AssetsAffected{RemediationId: remID, AssetIds: ids}
}

func patchReleased(t time.Time, ids ...string) *patchingv1.PatchReleased {
	return &patchingv1.PatchReleased{
		RemediationId: remID, ContractId: contractID, Kind: patch, Reference: "httpd-2.4.58", Description: "upgrade",
		TestSummary: "staging ok", AssetIds: ids, ReleasedAt: ts(t),
	}
}

func changeLinked(change string, emergency bool, ids ...string) *patchingv1.ChangeLinked {
	return &patchingv1.ChangeLinked{RemediationId: remID, ChangeId: change, AssetIds: ids, Emergency: emergency}
}

func rolloutApproved(change string, ids ...string) *patchingv1.RolloutApproved {
	return &patchingv1.RolloutApproved{RemediationId: remID, ChangeId: change, AssetIds: ids}
}

func rolloutRejected(change string, org domain.OrgID) *patchingv1.RolloutRejected {
	return &patchingv1.RolloutRejected{RemediationId: remID, ChangeId: change, OrgId: string(org), Reason: "not in the freeze"}
}

// patchApplied by the provider's record (with its backup).
func patchApplied(change string, t time.Time, ids ...string) *patchingv1.PatchApplied {
	return &patchingv1.PatchApplied{RemediationId: remID, ChangeId: change, AssetIds: ids, BackupReference: "snap-1", AppliedAt: ts(t)}
}

// changeImplemented: the PatchApplied of a change's implementation.
func changeImplemented(change string, t time.Time, ids ...string) *patchingv1.PatchApplied {
	return &patchingv1.PatchApplied{RemediationId: remID, ChangeId: change, AssetIds: ids, AppliedAt: ts(t), ChangeImplemented: true}
}

func patchFailed(change string, ids ...string) *patchingv1.PatchFailed {
	return &patchingv1.PatchFailed{RemediationId: remID, ChangeId: change, AssetIds: ids, Reason: "service did not start"}
}

func patchRolledBack(change, reason string, t time.Time, ids ...string) *patchingv1.PatchRolledBack {
	return &patchingv1.PatchRolledBack{RemediationId: remID, ChangeId: change, AssetIds: ids, Reason: reason, RolledBackAt: ts(t)}
}

func patchVerified(t time.Time, success bool, ids ...string) *patchingv1.PatchVerified {
	return &patchingv1.PatchVerified{RemediationId: remID, AssetIds: ids, Success: success, Notes: "scanned", VerifiedAt: ts(t)}
}

func deferralRequested(id string, until time.Time) *patchingv1.DeferralRequested {
	return &patchingv1.DeferralRequested{RemediationId: remID, DeferralId: id, Reason: "vendor fix pending", Until: ts(until), Risk: "SSRF from the internet"}
}

func deferralDecided(id string, accepted bool, t time.Time, remaining *durationpb.Duration) *patchingv1.DeferralDecided {
	return &patchingv1.DeferralDecided{RemediationId: remID, DeferralId: id, Accepted: accepted, Comment: "ok with WAF rule", DecidedAt: ts(t), Remaining: remaining}
}

func deferralExpired(id string, dueAt *timestamppb.Timestamp) *patchingv1.DeferralExpired {
	return &patchingv1.DeferralExpired{RemediationId: remID, DeferralId: id, DueAt: dueAt}
}

func remediationOverdue(dueAt, detected time.Time, ids ...string) *patchingv1.RemediationOverdue {
	return &patchingv1.RemediationOverdue{RemediationId: remID, DueAt: ts(dueAt), UnfixedAssetIds: ids, DetectedAt: ts(detected)}
}

func events(es ...proto.Message) []proto.Message { return es }

// ---- given / when / then ----------------------------------------------------

// given decides each command on the remediation so far and folds its
// events, the way the runner does; a command that fails fails the test.
func given(t *testing.T, cmds ...domain.Command) domain.Remediation {
	t.Helper()
	var r domain.Remediation
	for i, cmd := range cmds {
		es, err := domain.DecideRemediation(r, cmd)
		if err != nil {
			t.Fatalf("given %d (%T): %v", i, cmd, err)
		}
		r = fold(r, cmd, es...)
	}
	return r
}

// fold evolves es, given by cmd's actor at its time, at the next positions.
func fold(r domain.Remediation, cmd domain.Command, es ...proto.Message) domain.Remediation {
	b := byOf(cmd)
	for _, e := range es {
		r = domain.EvolveRemediation(r, e, domain.Meta{Time: b.At, Actor: b.Actor, Position: r.Position + 1})
	}
	return r
}

// byOf reads who gives cmd by stamping a copy of it.
func byOf(cmd domain.Command) domain.By {
	v := reflect.ValueOf(cmd).Elem().FieldByName("By")
	return v.Interface().(domain.By)
}

type spec struct {
	name   string
	given  []domain.Command
	when   domain.Command
	then   []proto.Message // expected events, when err is nil; none for a no-op
	err    error           // expected error (errors.Is)
	field  string          // expected ValidationError.Field, when err is ErrInvalid
	status patchingv1.RemediationStatus
	state  func(t *testing.T, r domain.Remediation)
}

func (c spec) run(t *testing.T) {
	t.Helper()
	r := given(t, c.given...)
	before := snapshot(t, r)

	got, err := domain.DecideRemediation(r, c.when)

	if c.err != nil {
		if !errors.Is(err, c.err) {
			t.Fatalf("error = %v, want %v", err, c.err)
		}
		if c.field != "" {
			var ve domain.ValidationError
			if !errors.As(err, &ve) || ve.Field != c.field {
				t.Fatalf("error = %#v, want a validation error of field %q", err, c.field)
			}
		}
		if got != nil {
			t.Fatalf("events %s alongside error %v", text(got), err)
		}
		return
	}
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	sameEvents(t, got, c.then)

	after := fold(r, c.when, got...)
	if now := snapshot(t, r); now != before {
		t.Fatalf("decide or evolve changed the earlier state:\nbefore %s\nafter  %s", before, now)
	}
	// The events as they come back from the store evolve alike.
	fromWire := r
	for _, e := range got {
		fromWire = fold(fromWire, c.when, wire(t, e))
	}
	if !reflect.DeepEqual(after, fromWire) {
		t.Fatalf("state from decoded events differs:\n%+v\n%+v", after, fromWire)
	}
	if c.status != statusNone {
		if s := after.Status(); s != c.status {
			t.Fatalf("status = %s, want %s", s, c.status)
		}
	}
	if c.state != nil {
		c.state(t, after)
	}
}

func runAll(t *testing.T, specs []spec) {
	t.Helper()
	for _, c := range specs {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t)
		})
	}
}

func sameEvents(t *testing.T, got, want []proto.Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d:\n%s", len(got), len(want), text(got))
	}
	for i := range got {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("event %d:\n got %s\nwant %s", i, text(got[i:i+1]), text(want[i:i+1]))
		}
	}
}

func wire(t *testing.T, e proto.Message) proto.Message {
	t.Helper()
	b, err := proto.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	m := e.ProtoReflect().New().Interface()
	if err := proto.Unmarshal(b, m); err != nil {
		t.Fatal(err)
	}
	return m
}

func snapshot(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func text(es []proto.Message) string {
	var out strings.Builder
	for _, e := range es {
		out.WriteString(string(e.ProtoReflect().Descriptor().Name()) + "{" + prototext.MarshalOptions{}.Format(e) + "}\n")
	}
	return out.String()
}

// fixes renders the assets' fixes for comparison, sorted by asset id.
func fixes(r domain.Remediation) string {
	var lines []string
	for id, f := range r.Assets {
		lines = append(lines, fmt.Sprintf("%s %s change=%s backup=%s applied=%s verified=%s",
			id, f.Status, f.Change, f.Backup, stamp(f.AppliedAt), stamp(f.VerifiedAt)))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// fix builds an expected fix line.
func fix(id string, st patchingv1.AssetPatchStatus, change, backup string, appliedAt, verifiedAt time.Time) string {
	return fmt.Sprintf("%s %s change=%s backup=%s applied=%s verified=%s", id, st, change, backup, stamp(appliedAt), stamp(verifiedAt))
}

func fixesAre(t *testing.T, r domain.Remediation, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := fixes(r); got != strings.Join(want, "\n") {
		t.Fatalf("assets:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

func changesAre(t *testing.T, r domain.Remediation, want ...domain.LinkedChange) {
	t.Helper()
	if !reflect.DeepEqual(r.Changes, want) && (len(r.Changes) != 0 || len(want) != 0) {
		t.Fatalf("changes = %+v, want %+v", r.Changes, want)
	}
}

func deferralsAre(t *testing.T, r domain.Remediation, want ...domain.Deferral) {
	t.Helper()
	if !reflect.DeepEqual(r.Deferrals, want) && (len(r.Deferrals) != 0 || len(want) != 0) {
		t.Fatalf("deferrals = %+v, want %+v", r.Deferrals, want)
	}
}

func ids(n int, from int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("host-%05d", from+i)
	}
	return out
}

// bogus is a command the deciders do not know.
type bogus struct{ domain.By }

// ---- register ---------------------------------------------------------------

func TestRegisterVulnerability(t *testing.T) {
	t.Parallel()
	critDue := vulnerabilityRegistered()
	critDue.Severity, critDue.PatchWithin, critDue.DueAt = critical, durationpb.New(day), ts(at(day))
	lowNoDue := vulnerabilityRegistered()
	lowNoDue.Severity, lowNoDue.PatchWithin, lowNoDue.DueAt = low, nil, nil
	noDeadlines := vulnerabilityRegistered()
	noDeadlines.PatchWithin, noDeadlines.DueAt = nil, nil
	bare := &patchingv1.VulnerabilityRegistered{
		RemediationId: remID, ContractId: contractID, CustomerOrgId: string(customer), ProviderOrgId: string(provider),
		CveId: cve, Severity: medium, Product: "openssl", PatchWithin: durationpb.New(30 * day), DueAt: ts(at(30 * day)), RegisteredAt: ts(base),
	}
	many := ids(2*domain.AffectedChunk+1, 0)
	twice := func(id string) []string { return []string{id, id} }

	runAll(t, []spec{
		{
			name: "the provider registers a high CVE", when: register(),
			then: events(vulnerabilityRegistered(), assetsAffected("web-1", "web-2")), status: statusOpen,
			state: func(t *testing.T, r domain.Remediation) {
				want := domain.Remediation{
					ID: remID, ContractID: contractID, Customer: customer, Provider: provider, CVE: cve, Severity: high,
					CVSS: 7.5, Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", KnownExploited: true, Product: product,
					AffectedVersions: []string{apache, "2.2.34"}, Description: "SSRF in mod_rewrite", PatchWithin: 7 * day, DueAt: due,
					Assets: map[string]domain.Fix{"web-1": {Status: pending}, "web-2": {Status: pending}}, RegisteredAt: base,
					UpdatedAt: base, Position: 2,
				}
				if !reflect.DeepEqual(r, want) {
					t.Fatalf("state:\n%+v\nwant\n%+v", r, want)
				}
			},
		},
		{name: "the customer registers it", when: register(registeredBy(customer, base)), then: events(vulnerabilityRegistered(), assetsAffected("web-1", "web-2"))},
		{
			name: "critical: due a day later", when: register(severity(critical)), then: events(critDue, assetsAffected("web-1", "web-2")),
			state: func(t *testing.T, r domain.Remediation) {
				if !r.DueAt.Equal(at(day)) || r.PatchWithin != day {
					t.Fatalf("due %s within %s", r.DueAt, r.PatchWithin)
				}
			},
		},
		{
			name: "low: the contract sets no deadline, no due date", when: register(severity(low)), then: events(lowNoDue, assetsAffected("web-1", "web-2")),
			state: func(t *testing.T, r domain.Remediation) {
				if !r.DueAt.IsZero() || r.PatchWithin != 0 {
					t.Fatalf("due %s within %s", r.DueAt, r.PatchWithin)
				}
			},
		},
		{
			name: "a contract without deadlines",
			when: register(func(c *domain.RegisterVulnerability) { c.Contract.PatchDeadlines = nil }),
			then: events(noDeadlines, assetsAffected("web-1", "web-2")),
		},
		{
			name: "only what is required",
			when: &domain.RegisterVulnerability{By: by(provider, base), RemediationID: remID, Contract: terms(), CVE: cve, Severity: medium, Product: "openssl"},
			then: events(bare), status: statusNotAffected,
			state: func(t *testing.T, r domain.Remediation) {
				if r.Assets == nil || len(r.Assets) != 0 || r.AffectedVersions != nil || r.Position != 1 {
					t.Fatalf("state = %+v", r)
				}
			},
		},
		{name: "no asset affected", when: register(affecting()), then: events(vulnerabilityRegistered()), status: statusNotAffected},
		{
			name: "duplicate matches count once, in their order", when: register(affecting("web-2", "web-1", "web-2", "web-1")),
			then: events(vulnerabilityRegistered(), assetsAffected("web-2", "web-1")),
		},
		{
			name: "a chunk's worth in one event", when: register(affecting(ids(domain.AffectedChunk, 0)...)),
			then: events(vulnerabilityRegistered(), assetsAffected(ids(domain.AffectedChunk, 0)...)),
		},
		{
			name: "more than a chunk is split", when: register(affecting(many...)),
			then: events(vulnerabilityRegistered(), assetsAffected(many[:domain.AffectedChunk]...),
				assetsAffected(many[domain.AffectedChunk:2*domain.AffectedChunk]...), assetsAffected(many[2*domain.AffectedChunk:]...)),
			state: func(t *testing.T, r domain.Remediation) {
				if len(r.Assets) != 2*domain.AffectedChunk+1 || r.Position != 4 || len(r.Unfixed()) != 2*domain.AffectedChunk+1 {
					t.Fatalf("%d assets, position %d", len(r.Assets), r.Position)
				}
			},
		},
		{
			name: "again: adds only the new assets", given: registered,
			when: register(registeredBy(customer, at(day)), affecting("web-3", "web-2", "web-1", "web-3")),
			then: events(assetsAffected("web-3")), status: statusOpen,
			state: func(t *testing.T, r domain.Remediation) {
				if !r.DueAt.Equal(due) || !r.RegisteredAt.Equal(base) || !r.UpdatedAt.Equal(at(day)) || r.Position != 3 {
					t.Fatalf("state = %+v", r)
				}
				fixesAre(t, r, fix("web-1", pending, "", "", time.Time{}, time.Time{}), fix("web-2", pending, "", "", time.Time{}, time.Time{}),
					fix("web-3", pending, "", "", time.Time{}, time.Time{}))
			},
		},
		{
			name: "again: the known assets keep their fix", given: fixed,
			when: register(registeredBy(provider, at(day)), affecting("web-1", "web-4")),
			then: events(assetsAffected("web-4")),
			state: func(t *testing.T, r domain.Remediation) {
				fixesAre(t, r,
					fix("web-1", verified, chg1, "", at(4*hour), at(5*hour)), fix("web-2", verified, chg1, "", at(4*hour), at(5*hour)),
					fix("web-4", pending, "", "", time.Time{}, time.Time{}))
				if got := r.Unfixed(); !slices.Equal(got, []string{"web-4"}) {
					t.Fatalf("unfixed = %v", got)
				}
			},
		},
		{
			name: "again: a severity other than registered changes no due date", given: registered,
			when: register(severity(critical), affecting("web-5")), then: events(assetsAffected("web-5")),
			state: func(t *testing.T, r domain.Remediation) {
				if r.Severity != high || !r.DueAt.Equal(due) {
					t.Fatalf("severity %s due %s", r.Severity, r.DueAt)
				}
			},
		},
		{name: "again: no new asset, no events", given: registered, when: register(affecting("web-2", "web-1"))},
		{name: "again: nothing matched, no events", given: registered, when: register(affecting())},
		{name: "again: not affected before, now affected", given: history(register(affecting())), when: register(), then: events(assetsAffected("web-1", "web-2")), status: statusOpen},
		{name: "again: the first of many chunks exists", given: history(register(affecting(many[:3]...))), when: register(affecting(many...)),
			then: events(assetsAffected(many[3:domain.AffectedChunk+3]...), assetsAffected(many[domain.AffectedChunk+3:]...))},
		{name: "cvss 0", when: register(func(c *domain.RegisterVulnerability) { c.CVSS = 0 }), then: events(func() proto.Message {
			e := vulnerabilityRegistered()
			e.CvssScore = 0
			return e
		}(), assetsAffected("web-1", "web-2"))},
		{name: "cvss 10", when: register(func(c *domain.RegisterVulnerability) { c.CVSS = 10 }), then: events(func() proto.Message {
			e := vulnerabilityRegistered()
			e.CvssScore = 10
			return e
		}(), assetsAffected("web-1", "web-2"))},

		{name: "an outsider", when: register(registeredBy(outsider, base)), err: domain.ErrNotParty},
		{name: "no org", when: register(registeredBy("", base)), err: domain.ErrNotParty},
		{name: "an outsider again", given: registered, when: register(registeredBy(outsider, at(hour)), affecting("web-3")), err: domain.ErrNotParty},
		{name: "unknown contract", when: register(func(c *domain.RegisterVulnerability) { c.Contract = domain.Contract{} }), err: domain.NotFoundError{What: "contract"}},
		{name: "no terms in force", when: register(func(c *domain.RegisterVulnerability) { c.Contract.InForce = false }), err: domain.ErrContractNotActive},
		{name: "the contract is checked before the command", when: register(registeredBy(outsider, base), func(c *domain.RegisterVulnerability) { c.CVE = "" }), err: domain.ErrNotParty},
		{name: "empty remediation id", when: register(func(c *domain.RegisterVulnerability) { c.RemediationID = " " }), err: domain.ErrInvalid, field: "remediation_id"},
		{name: "empty cve", when: register(func(c *domain.RegisterVulnerability) { c.CVE = "" }), err: domain.ErrInvalid, field: "cve_id"},
		{name: "no severity", when: register(severity(commonv1.Severity_SEVERITY_UNSPECIFIED)), err: domain.ErrInvalid, field: "severity"},
		{name: "unknown severity", when: register(severity(99)), err: domain.ErrInvalid, field: "severity"},
		{name: "empty product", when: register(func(c *domain.RegisterVulnerability) { c.Product = "\t" }), err: domain.ErrInvalid, field: "product"},
		{name: "cvss below 0", when: register(func(c *domain.RegisterVulnerability) { c.CVSS = -0.1 }), err: domain.ErrInvalid, field: "cvss_score"},
		{name: "cvss above 10", when: register(func(c *domain.RegisterVulnerability) { c.CVSS = 10.1 }), err: domain.ErrInvalid, field: "cvss_score"},
		{name: "bad version range", when: register(func(c *domain.RegisterVulnerability) { c.AffectedVersions = []string{">= banana"} }), err: domain.ErrInvalid, field: "affected_versions"},
		{name: "empty version entry", when: register(func(c *domain.RegisterVulnerability) { c.AffectedVersions = []string{"2.4.57", ""} }), err: domain.ErrInvalid, field: "affected_versions"},
		{name: "bad version range again", given: registered, when: register(func(c *domain.RegisterVulnerability) { c.AffectedVersions = []string{"<"} }), err: domain.ErrInvalid, field: "affected_versions"},
		{name: "duplicate matches on the second registration", given: registered, when: register(affecting(twice("web-9")...)), then: events(assetsAffected("web-9"))},
	})
}

func TestRegisterVulnerabilityCopiesItsInput(t *testing.T) {
	t.Parallel()
	cmd := register()
	es, err := domain.DecideRemediation(domain.Remediation{}, cmd)
	if err != nil {
		t.Fatal(err)
	}
	cmd.AffectedVersions[0] = "x"
	cmd.Affected[0] = "x"
	sameEvents(t, es, events(vulnerabilityRegistered(), assetsAffected("web-1", "web-2")))
}

// ---- commands need a remediation and a party --------------------------------

func TestCommandsNeedARemediationAndAParty(t *testing.T) {
	t.Parallel()
	party := map[string]func(org domain.OrgID) domain.Command{
		"release":          func(o domain.OrgID) domain.Command { return release(o, at(hour)) },
		"record applied":   func(o domain.OrgID) domain.Command { return recordApplied(o, at(hour), chg1, "web-1") },
		"record rollback":  func(o domain.OrgID) domain.Command { return recordRollback(o, at(hour), "web-1") },
		"verify":           func(o domain.OrgID) domain.Command { return verify(o, at(hour), true, "web-1") },
		"request deferral": func(o domain.OrgID) domain.Command { return requestDeferral(o, at(hour), "d-1", at(day)) },
		"decide deferral":  func(o domain.OrgID) domain.Command { return decideDeferral(o, at(hour), "d-1", true) },
	}
	platformCmds := map[string]domain.Command{
		"link":            link(at(hour), chg1, false, "web-1"),
		"approve":         approve(at(hour), chg1),
		"reject":          reject(at(hour), chg1, customer),
		"change done":     done(at(hour), chg1, true),
		"change rollback": changeRollback(at(hour), chg1),
		"expire deferral": expire(at(hour), "d-1"),
		"mark overdue":    markOverdue(at(hour), due),
	}
	var specs []spec
	for name, cmd := range party {
		specs = append(specs,
			spec{name: name + " on a missing remediation", when: cmd(provider), err: domain.NotFoundError{What: "remediation"}},
			spec{name: name + " by an outsider", given: implemented, when: cmd(outsider), err: domain.ErrNotParty},
			spec{name: name + " by no org", given: implemented, when: cmd(""), err: domain.ErrNotParty},
		)
	}
	for name, cmd := range platformCmds {
		specs = append(specs, spec{name: name + " on a missing remediation", when: cmd, err: domain.NotFoundError{What: "remediation"}})
	}
	specs = append(specs,
		spec{name: "nil command", when: nil, err: domain.ErrInvalid, field: "command"},
		spec{name: "nil command on a remediation", given: registered, when: nil, err: domain.ErrInvalid, field: "command"},
		spec{name: "nil registration", when: (*domain.RegisterVulnerability)(nil), err: domain.ErrInvalid, field: "command"},
		spec{name: "nil release", given: registered, when: (*domain.ReleasePatch)(nil), err: domain.ErrInvalid, field: "command"},
		spec{name: "nil mark overdue", given: registered, when: (*domain.MarkOverdue)(nil), err: domain.ErrInvalid, field: "command"},
		spec{name: "unknown command", given: registered, when: &bogus{By: by(provider, at(hour))}, err: domain.ErrInvalid, field: "command"},
		spec{name: "unknown command on a missing remediation", when: &bogus{By: by(provider, at(hour))}, err: domain.NotFoundError{What: "remediation"}},
		spec{
			name: "inventory command", given: registered,
			when: &domain.RetireAsset{By: by(provider, at(hour)), Contract: terms(), AssetID: "web-1", Exists: true},
			err:  domain.ErrInvalid, field: "command",
		},
		spec{name: "unknown command by an outsider", given: registered, when: &bogus{By: by(outsider, at(hour))}, err: domain.ErrNotParty},
	)
	runAll(t, specs)
}

// ---- release ----------------------------------------------------------------

func TestReleasePatch(t *testing.T) {
	t.Parallel()
	// mixed: web-1 verified, web-2 failed verification, web-3 rolled back,
	// web-4 applied, web-5 pending.
	mixed := history(
		register(affecting("web-5", "web-4", "web-3", "web-2", "web-1")),
		release(provider, at(hour)),
		link(at(2*hour), chg1, false, "web-1", "web-2", "web-3", "web-4"),
		approve(at(3*hour), chg1),
		recordApplied(provider, at(4*hour), chg1, "web-1", "web-2", "web-3", "web-4"),
		verify(customer, at(5*hour), true, "web-1"),
		verify(customer, at(5*hour), false, "web-2"),
		recordRollback(provider, at(6*hour), "web-3"),
	)
	emergency := patchReleased(at(hour), "web-1", "web-2")
	emergency.Kind, emergency.Reference, emergency.Description, emergency.TestSummary, emergency.Emergency = workaround, "WAF-77", "", "", true

	runAll(t, []spec{
		{
			name: "the provider releases a patch", given: registered, when: release(provider, at(hour)),
			then: events(patchReleased(at(hour), "web-1", "web-2")), status: statusReleased,
			state: func(t *testing.T, r domain.Remediation) {
				want := []domain.Release{{Kind: patch, Reference: "httpd-2.4.58", Description: "upgrade", TestSummary: "staging ok", ReleasedAt: at(hour)}}
				if !reflect.DeepEqual(r.Releases, want) || !r.UpdatedAt.Equal(at(hour)) || r.Position != 3 {
					t.Fatalf("releases %+v, updated %s, position %d", r.Releases, r.UpdatedAt, r.Position)
				}
			},
		},
		{
			name: "an emergency workaround", given: registered,
			when: &domain.ReleasePatch{By: by(provider, at(hour)), Kind: workaround, Reference: "WAF-77", Emergency: true},
			then: events(emergency), status: statusReleased,
			state: func(t *testing.T, r domain.Remediation) {
				if len(r.Releases) != 1 || !r.Releases[0].Emergency || r.Releases[0].Kind != workaround {
					t.Fatalf("releases %+v", r.Releases)
				}
			},
		},
		{
			name: "a second release lists the assets still waiting", given: mixed, when: release(provider, at(7*hour)),
			then: events(patchReleased(at(7*hour), "web-2", "web-3", "web-5")),
			state: func(t *testing.T, r domain.Remediation) {
				if len(r.Releases) != 2 || !r.Releases[0].ReleasedAt.Equal(at(hour)) || !r.Releases[1].ReleasedAt.Equal(at(7*hour)) {
					t.Fatalf("releases %+v", r.Releases)
				}
			},
		},
		{name: "after a failed change", given: with(approved, done(at(4*hour), chg1, false)), when: release(provider, at(5*hour)), then: events(patchReleased(at(5*hour), "web-1", "web-2"))},
		{name: "the customer may not", given: registered, when: release(customer, at(hour)), err: domain.ErrWrongParty},
		{name: "no kind", given: registered, when: &domain.ReleasePatch{By: by(provider, at(hour)), Reference: "x"}, err: domain.ErrInvalid, field: "kind"},
		{name: "unknown kind", given: registered, when: &domain.ReleasePatch{By: by(provider, at(hour)), Kind: 9, Reference: "x"}, err: domain.ErrInvalid, field: "kind"},
		{name: "no reference", given: registered, when: &domain.ReleasePatch{By: by(provider, at(hour)), Kind: patch, Reference: " "}, err: domain.ErrInvalid, field: "reference"},
		{name: "no asset affected", given: history(register(affecting())), when: release(provider, at(hour)), err: domain.ErrWrongStatus},
		{name: "every asset verified", given: fixed, when: release(provider, at(6*hour)), err: domain.ErrWrongStatus},
		{name: "every asset applied", given: implemented, when: release(provider, at(6*hour)), err: domain.ErrWrongStatus},
	})
}

// ---- reactions to the change advisory ---------------------------------------

func TestLinkChange(t *testing.T) {
	t.Parallel()
	runAll(t, []spec{
		{
			name: "a change requested for the patch", given: released, when: link(at(2*hour), chg1, false, "web-1", "web-2"),
			then: events(changeLinked(chg1, false, "web-1", "web-2")), status: statusReleased,
			state: func(t *testing.T, r domain.Remediation) {
				changesAre(t, r, domain.LinkedChange{ID: chg1, State: domain.ChangeRequested, Assets: []string{"web-1", "web-2"}})
				if !r.UpdatedAt.Equal(at(2*hour)) || r.Position != 4 {
					t.Fatalf("updated %s position %d", r.UpdatedAt, r.Position)
				}
			},
		},
		{
			name: "an emergency change allows the rollout at once", given: released, when: link(at(2*hour), chg1, true, "web-1"),
			then: events(changeLinked(chg1, true, "web-1")), status: statusRolloutReady,
			state: func(t *testing.T, r domain.Remediation) {
				changesAre(t, r, domain.LinkedChange{ID: chg1, Emergency: true, State: domain.ChangeRequested, Assets: []string{"web-1"}})
			},
		},
		{
			name: "a second change", given: linked, when: link(at(3*hour), chg2, false, "web-2"),
			then: events(changeLinked(chg2, false, "web-2")),
			state: func(t *testing.T, r domain.Remediation) {
				changesAre(t, r,
					domain.LinkedChange{ID: chg1, State: domain.ChangeRequested, Assets: []string{"web-1", "web-2"}},
					domain.LinkedChange{ID: chg2, State: domain.ChangeRequested, Assets: []string{"web-2"}})
			},
		},
		{name: "redelivered", given: linked, when: link(at(2*hour), chg1, false, "web-1", "web-2")},
		{name: "redelivered after the approval", given: approved, when: link(at(4*hour), chg1, false, "web-1", "web-2"), status: statusRolloutReady},
	})
}

func TestLinkChangeCopiesItsAssets(t *testing.T) {
	t.Parallel()
	r := given(t, released...)
	cmd := link(at(2*hour), chg1, false, "web-1", "web-2")
	es, err := domain.DecideRemediation(r, cmd)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Assets[0] = "x"
	sameEvents(t, es, events(changeLinked(chg1, false, "web-1", "web-2")))
}

func TestApproveRollout(t *testing.T) {
	t.Parallel()
	runAll(t, []spec{
		{
			name: "the change is approved", given: linked, when: approve(at(3*hour), chg1),
			then: events(rolloutApproved(chg1, "web-1", "web-2")), status: statusRolloutReady,
			state: func(t *testing.T, r domain.Remediation) {
				changesAre(t, r, domain.LinkedChange{ID: chg1, State: domain.ChangeApproved, Assets: []string{"web-1", "web-2"}})
				fixesAre(t, r, fix("web-1", pending, "", "", time.Time{}, time.Time{}), fix("web-2", pending, "", "", time.Time{}, time.Time{}))
			},
		},
		{
			name: "only that change", given: with(linked, link(at(2*hour), chg2, false, "web-2")), when: approve(at(3*hour), chg2),
			then: events(rolloutApproved(chg2, "web-2")),
			state: func(t *testing.T, r domain.Remediation) {
				changesAre(t, r,
					domain.LinkedChange{ID: chg1, State: domain.ChangeRequested, Assets: []string{"web-1", "web-2"}},
					domain.LinkedChange{ID: chg2, State: domain.ChangeApproved, Assets: []string{"web-2"}})
			},
		},
		{name: "an emergency change approved in review", given: with(released, link(at(2*hour), chg1, true, "web-1")), when: approve(at(3*hour), chg1), then: events(rolloutApproved(chg1, "web-1"))},
		{name: "redelivered", given: approved, when: approve(at(3*hour), chg1)},
		{name: "unknown change", given: linked, when: approve(at(3*hour), chg2), status: statusReleased},
		{name: "rejected already", given: with(linked, reject(at(3*hour), chg1, customer)), when: approve(at(4*hour), chg1), status: statusReleased},
		{name: "implemented already", given: implemented, when: approve(at(5*hour), chg1)},
		{name: "failed already", given: with(approved, done(at(4*hour), chg1, false)), when: approve(at(5*hour), chg1)},
	})
}

func TestRejectRollout(t *testing.T) {
	t.Parallel()
	runAll(t, []spec{
		{
			name: "the customer rejects the change", given: linked, when: reject(at(3*hour), chg1, customer),
			then: events(rolloutRejected(chg1, customer)), status: statusReleased,
			state: func(t *testing.T, r domain.Remediation) {
				changesAre(t, r, domain.LinkedChange{ID: chg1, State: domain.ChangeRejected, Assets: []string{"web-1", "web-2"}})
			},
		},
		{name: "the provider rejects it", given: linked, when: reject(at(3*hour), chg1, provider), then: events(rolloutRejected(chg1, provider))},
		{
			name: "an emergency change rejected before it is implemented", given: with(released, link(at(2*hour), chg1, true, "web-1")),
			when: reject(at(3*hour), chg1, customer), then: events(rolloutRejected(chg1, customer)), status: statusReleased,
		},
		{name: "redelivered", given: with(linked, reject(at(3*hour), chg1, customer)), when: reject(at(3*hour), chg1, customer)},
		{name: "unknown change", given: linked, when: reject(at(3*hour), chg2, customer)},
		{name: "approved already", given: approved, when: reject(at(4*hour), chg1, customer), status: statusRolloutReady},
		{name: "implemented already", given: implemented, when: reject(at(5*hour), chg1, customer)},
		{
			name: "a rejection stops the rollout", given: with(linked, reject(at(3*hour), chg1, customer)),
			when: recordApplied(provider, at(4*hour), chg1, "web-1"), err: domain.ErrNoApprovedChange,
		},
	})
}

func TestChangeDone(t *testing.T) {
	t.Parallel()
	oneByOne := with(approved, recordApplied(provider, at(3*hour+30*time.Minute), chg1, "web-1"))
	runAll(t, []spec{
		{
			name: "implemented: the patch is applied on the change's assets", given: approved, when: done(at(4*hour), chg1, true),
			then: events(changeImplemented(chg1, at(4*hour), "web-1", "web-2")), status: statusRolloutReady,
			state: func(t *testing.T, r domain.Remediation) {
				fixesAre(t, r, fix("web-1", applied, chg1, "", at(4*hour), time.Time{}), fix("web-2", applied, chg1, "", at(4*hour), time.Time{}))
				changesAre(t, r, domain.LinkedChange{ID: chg1, State: domain.ChangeImplemented, Assets: []string{"web-1", "web-2"}})
			},
		},
		{
			name: "implemented: assets recorded one by one keep their record", given: oneByOne, when: done(at(4*hour), chg1, true),
			then: events(changeImplemented(chg1, at(4*hour), "web-2")),
			state: func(t *testing.T, r domain.Remediation) {
				fixesAre(t, r, fix("web-1", applied, chg1, "snap-1", at(3*hour+30*time.Minute), time.Time{}), fix("web-2", applied, chg1, "", at(4*hour), time.Time{}))
				changesAre(t, r, domain.LinkedChange{ID: chg1, State: domain.ChangeImplemented, Assets: []string{"web-1", "web-2"}})
			},
		},
		{
			name: "implemented: nothing left to apply still marks the change", given: with(approved, recordApplied(provider, at(3*hour), chg1, "web-1", "web-2")),
			when: done(at(4*hour), chg1, true), then: events(changeImplemented(chg1, at(4*hour))),
			state: func(t *testing.T, r domain.Remediation) {
				changesAre(t, r, domain.LinkedChange{ID: chg1, State: domain.ChangeImplemented, Assets: []string{"web-1", "web-2"}})
			},
		},
		{
			name: "implemented: only the change's assets", given: history(register(affecting("web-1", "web-2", "web-3")), release(provider, at(hour)), link(at(2*hour), chg1, false, "web-3", "web-1"), approve(at(3*hour), chg1)),
			when: done(at(4*hour), chg1, true), then: events(changeImplemented(chg1, at(4*hour), "web-1", "web-3")),
			state: func(t *testing.T, r domain.Remediation) {
				if got := r.Assets["web-2"]; got.Status != pending {
					t.Fatalf("web-2 = %+v", got)
				}
			},
		},
		{
			name: "an emergency change implemented before its review", given: with(released, link(at(2*hour), chg1, true, "web-2")),
			when: done(at(3*hour), chg1, true), then: events(changeImplemented(chg1, at(3*hour), "web-2")), status: statusRolloutReady,
		},
		{
			name: "failed: the patch failed on the change's assets", given: approved, when: done(at(4*hour), chg1, false),
			then: events(patchFailed(chg1, "web-1", "web-2")), status: statusReleased,
			state: func(t *testing.T, r domain.Remediation) {
				fixesAre(t, r, fix("web-1", failed, "", "", time.Time{}, time.Time{}), fix("web-2", failed, "", "", time.Time{}, time.Time{}))
				changesAre(t, r, domain.LinkedChange{ID: chg1, State: domain.ChangeFailed, Assets: []string{"web-1", "web-2"}})
			},
		},
		{
			name: "failed: assets recorded applied failed too", given: oneByOne, when: done(at(4*hour), chg1, false),
			then: events(patchFailed(chg1, "web-1", "web-2")),
			state: func(t *testing.T, r domain.Remediation) {
				fixesAre(t, r, fix("web-1", failed, chg1, "snap-1", at(3*hour+30*time.Minute), time.Time{}), fix("web-2", failed, "", "", time.Time{}, time.Time{}))
			},
		},
		{
			name:  "failed: a verified asset stays verified",
			given: with(oneByOne, verify(customer, at(3*hour+45*time.Minute), true, "web-1")),
			when:  done(at(4*hour), chg1, false), then: events(patchFailed(chg1, "web-2")),
		},
		{name: "redelivered implementation", given: implemented, when: done(at(4*hour), chg1, true)},
		{name: "redelivered failure", given: with(approved, done(at(4*hour), chg1, false)), when: done(at(4*hour), chg1, false)},
		{name: "implemented after it failed", given: with(approved, done(at(4*hour), chg1, false)), when: done(at(5*hour), chg1, true)},
		{name: "failed after it was implemented", given: implemented, when: done(at(5*hour), chg1, false)},
		{name: "an implementation redelivered after the rollback", given: with(implemented, changeRollback(at(5*hour), chg1)), when: done(at(4*hour), chg1, true)},
		{name: "a failure redelivered after the rollback", given: with(approved, done(at(4*hour), chg1, false), changeRollback(at(5*hour), chg1)), when: done(at(4*hour), chg1, false)},
		{name: "unknown change", given: approved, when: done(at(4*hour), chg2, true)},
	})
}

func TestChangeRollback(t *testing.T) {
	t.Parallel()
	runAll(t, []spec{
		{
			name: "the implemented change is rolled back", given: implemented, when: changeRollback(at(5*hour), chg1),
			then: events(patchRolledBack(chg1, "regression", at(5*hour), "web-1", "web-2")), status: statusReleased,
			state: func(t *testing.T, r domain.Remediation) {
				fixesAre(t, r, fix("web-1", rolledBack, chg1, "", at(4*hour), time.Time{}), fix("web-2", rolledBack, chg1, "", at(4*hour), time.Time{}))
				changesAre(t, r, domain.LinkedChange{ID: chg1, State: domain.ChangeRolledBack, Assets: []string{"web-1", "web-2"}})
			},
		},
		{
			name: "verified assets are rolled back too", given: fixed, when: changeRollback(at(6*hour), chg1),
			then: events(patchRolledBack(chg1, "regression", at(6*hour), "web-1", "web-2")), status: statusReleased,
			state: func(t *testing.T, r domain.Remediation) {
				fixesAre(t, r, fix("web-1", rolledBack, chg1, "", at(4*hour), time.Time{}), fix("web-2", rolledBack, chg1, "", at(4*hour), time.Time{}))
				if got := r.Unfixed(); !slices.Equal(got, []string{"web-1", "web-2"}) {
					t.Fatalf("unfixed = %v", got)
				}
			},
		},
		{
			name:  "only the change's assets",
			given: history(register(affecting("web-1", "web-2")), release(provider, at(hour)), link(at(2*hour), chg1, false, "web-1"), link(at(2*hour), chg2, false, "web-2"), approve(at(3*hour), chg1), approve(at(3*hour), chg2), done(at(4*hour), chg1, true), done(at(4*hour), chg2, true)),
			when:  changeRollback(at(5*hour), chg2), then: events(patchRolledBack(chg2, "regression", at(5*hour), "web-2")), status: statusRolloutReady,
			state: func(t *testing.T, r domain.Remediation) {
				fixesAre(t, r, fix("web-1", applied, chg1, "", at(4*hour), time.Time{}), fix("web-2", rolledBack, chg2, "", at(4*hour), time.Time{}))
				changesAre(t, r,
					domain.LinkedChange{ID: chg1, State: domain.ChangeImplemented, Assets: []string{"web-1"}},
					domain.LinkedChange{ID: chg2, State: domain.ChangeRolledBack, Assets: []string{"web-2"}})
			},
		},
		{
			name: "a failed change: nothing applied to roll back, the change is marked", given: with(approved, done(at(4*hour), chg1, false)),
			when: changeRollback(at(5*hour), chg1), then: events(patchRolledBack(chg1, "regression", at(5*hour))),
			state: func(t *testing.T, r domain.Remediation) {
				fixesAre(t, r, fix("web-1", failed, "", "", time.Time{}, time.Time{}), fix("web-2", failed, "", "", time.Time{}, time.Time{}))
				changesAre(t, r, domain.LinkedChange{ID: chg1, State: domain.ChangeRolledBack, Assets: []string{"web-1", "web-2"}})
			},
		},
		{name: "redelivered", given: with(implemented, changeRollback(at(5*hour), chg1)), when: changeRollback(at(5*hour), chg1)},
		{name: "unknown change", given: implemented, when: changeRollback(at(5*hour), chg2)},
	})
}

// TestReactionsAreIdempotent: every reaction, delivered twice, changes
// the remediation once.
func TestReactionsAreIdempotent(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		given    []domain.Command
		reaction domain.Command
	}{
		{name: "link", given: released, reaction: link(at(2*hour), chg1, false, "web-1", "web-2")},
		{name: "link an emergency change", given: released, reaction: link(at(2*hour), chg1, true, "web-1")},
		{name: "approve", given: linked, reaction: approve(at(3*hour), chg1)},
		{name: "reject", given: linked, reaction: reject(at(3*hour), chg1, customer)},
		{name: "implemented", given: approved, reaction: done(at(4*hour), chg1, true)},
		{name: "failed", given: approved, reaction: done(at(4*hour), chg1, false)},
		{name: "rolled back", given: implemented, reaction: changeRollback(at(5*hour), chg1)},
		{name: "rolled back after verification", given: fixed, reaction: changeRollback(at(6*hour), chg1)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := given(t, c.given...)
			first, err := domain.DecideRemediation(r, c.reaction)
			if err != nil || len(first) != 1 {
				t.Fatalf("first delivery: %s, %v", text(first), err)
			}
			r = fold(r, c.reaction, first...)
			again, err := domain.DecideRemediation(r, c.reaction)
			if err != nil || again != nil {
				t.Fatalf("second delivery: %s, %v", text(again), err)
			}
		})
	}
}

// ---- rollout by the provider ------------------------------------------------

func TestRecordPatchApplied(t *testing.T) {
	t.Parallel()
	emergency := with(released, link(at(2*hour), chg1, true, "web-1", "web-2"))
	runAll(t, []spec{
		{
			name: "through the approved change", given: approved, when: recordApplied(provider, at(4*hour), chg1, "web-1"),
			then: events(patchApplied(chg1, at(4*hour), "web-1")), status: statusRolloutReady,
			state: func(t *testing.T, r domain.Remediation) {
				fixesAre(t, r, fix("web-1", applied, chg1, "snap-1", at(4*hour), time.Time{}), fix("web-2", pending, "", "", time.Time{}, time.Time{}))
				// Recording assets does not implement the change.
				changesAre(t, r, domain.LinkedChange{ID: chg1, State: domain.ChangeApproved, Assets: []string{"web-1", "web-2"}})
			},
		},
		{name: "several assets, sorted", given: approved, when: recordApplied(provider, at(4*hour), chg1, "web-2", "web-1"), then: events(patchApplied(chg1, at(4*hour), "web-1", "web-2"))},
		{name: "an asset named twice", given: approved, when: recordApplied(provider, at(4*hour), chg1, "web-1", "web-1"), then: events(patchApplied(chg1, at(4*hour), "web-1"))},
		{name: "through an emergency change before its approval", given: emergency, when: recordApplied(provider, at(3*hour), chg1, "web-2"), then: events(patchApplied(chg1, at(3*hour), "web-2"))},
		{
			name: "again after a failed verification, through the implemented change", given: with(implemented, verify(customer, at(5*hour), false, "web-1")),
			when: recordApplied(provider, at(6*hour), chg1, "web-1"), then: events(patchApplied(chg1, at(6*hour), "web-1")),
			state: func(t *testing.T, r domain.Remediation) {
				fixesAre(t, r, fix("web-1", applied, chg1, "snap-1", at(6*hour), time.Time{}), fix("web-2", applied, chg1, "", at(4*hour), time.Time{}))
			},
		},
		{name: "again after a rollback", given: with(approved, recordApplied(provider, at(4*hour), chg1, "web-1"), recordRollback(provider, at(5*hour), "web-1")), when: recordApplied(provider, at(6*hour), chg1, "web-1"), then: events(patchApplied(chg1, at(6*hour), "web-1"))},
		{name: "applied already: no events", given: implemented, when: recordApplied(provider, at(5*hour), chg1, "web-1", "web-2")},
		{name: "verified already: no events", given: fixed, when: recordApplied(provider, at(6*hour), chg1, "web-1")},
		{name: "only those not applied", given: with(approved, recordApplied(provider, at(4*hour), chg1, "web-1")), when: recordApplied(provider, at(5*hour), chg1, "web-1", "web-2"), then: events(patchApplied(chg1, at(5*hour), "web-2"))},

		{name: "the change is not approved yet", given: linked, when: recordApplied(provider, at(3*hour), chg1, "web-1"), err: domain.ErrNoApprovedChange},
		{name: "the change was rejected", given: with(linked, reject(at(3*hour), chg1, provider)), when: recordApplied(provider, at(4*hour), chg1, "web-1"), err: domain.ErrNoApprovedChange},
		{name: "the emergency change was rejected", given: with(emergency, reject(at(3*hour), chg1, customer)), when: recordApplied(provider, at(4*hour), chg1, "web-1"), err: domain.ErrNoApprovedChange},
		{name: "the change failed", given: with(approved, done(at(4*hour), chg1, false)), when: recordApplied(provider, at(5*hour), chg1, "web-1"), err: domain.ErrNoApprovedChange},
		{name: "the change was rolled back", given: with(implemented, changeRollback(at(5*hour), chg1)), when: recordApplied(provider, at(6*hour), chg1, "web-1"), err: domain.ErrNoApprovedChange},
		{name: "an unknown change", given: approved, when: recordApplied(provider, at(4*hour), chg2, "web-1"), err: domain.ErrNoApprovedChange},
		{name: "no change", given: approved, when: recordApplied(provider, at(4*hour), "", "web-1"), err: domain.ErrNoApprovedChange},
		{name: "no change linked yet", given: released, when: recordApplied(provider, at(4*hour), chg1, "web-1"), err: domain.ErrNoApprovedChange},
		{
			name:  "an asset the change does not cover",
			given: history(register(), release(provider, at(hour)), link(at(2*hour), chg1, false, "web-1"), approve(at(3*hour), chg1)),
			when:  recordApplied(provider, at(4*hour), chg1, "web-1", "web-2"), err: domain.ErrNoApprovedChange,
		},
		{name: "an asset not affected", given: approved, when: recordApplied(provider, at(4*hour), chg1, "web-1", "web-9"), err: domain.ErrInvalid, field: "asset_ids"},
		{name: "no assets", given: approved, when: recordApplied(provider, at(4*hour), chg1), err: domain.ErrInvalid, field: "asset_ids"},
		{name: "the customer may not", given: approved, when: recordApplied(customer, at(4*hour), chg1, "web-1"), err: domain.ErrWrongParty},
	})
}

func TestVerifyPatch(t *testing.T) {
	t.Parallel()
	oneVerified := with(implemented, verify(provider, at(5*hour), true, "web-1"))
	runAll(t, []spec{
		{
			name: "the customer verifies every asset: fixed", given: implemented, when: verify(customer, at(5*hour), true, "web-1", "web-2"),
			then: events(patchVerified(at(5*hour), true, "web-1", "web-2")), status: statusFixed,
			state: func(t *testing.T, r domain.Remediation) {
				fixesAre(t, r, fix("web-1", verified, chg1, "", at(4*hour), at(5*hour)), fix("web-2", verified, chg1, "", at(4*hour), at(5*hour)))
				if r.Unfixed() != nil {
					t.Fatalf("unfixed = %v", r.Unfixed())
				}
			},
		},
		{
			name: "the provider verifies one: not fixed yet", given: implemented, when: verify(provider, at(5*hour), true, "web-1"),
			then: events(patchVerified(at(5*hour), true, "web-1")), status: statusRolloutReady,
			state: func(t *testing.T, r domain.Remediation) {
				fixesAre(t, r, fix("web-1", verified, chg1, "", at(4*hour), at(5*hour)), fix("web-2", applied, chg1, "", at(4*hour), time.Time{}))
				if got := r.Unfixed(); !slices.Equal(got, []string{"web-2"}) {
					t.Fatalf("unfixed = %v", got)
				}
			},
		},
		{name: "the rest: fixed", given: oneVerified, when: verify(customer, at(6*hour), true, "web-1", "web-2"), then: events(patchVerified(at(6*hour), true, "web-2")), status: statusFixed},
		{name: "sorted", given: implemented, when: verify(customer, at(5*hour), true, "web-2", "web-1"), then: events(patchVerified(at(5*hour), true, "web-1", "web-2"))},
		{name: "verified already: no events", given: fixed, when: verify(provider, at(6*hour), true, "web-1", "web-2"), status: statusFixed},
		{
			name: "failed: the vulnerability is still there", given: implemented, when: verify(customer, at(5*hour), false, "web-2"),
			then: events(patchVerified(at(5*hour), false, "web-2")), status: statusRolloutReady,
			state: func(t *testing.T, r domain.Remediation) {
				fixesAre(t, r, fix("web-1", applied, chg1, "", at(4*hour), time.Time{}), fix("web-2", failed, chg1, "", at(4*hour), time.Time{}))
			},
		},
		{
			name: "failed on a verified asset", given: oneVerified, when: verify(customer, at(6*hour), false, "web-1", "web-2"),
			then: events(patchVerified(at(6*hour), false, "web-1", "web-2")),
			state: func(t *testing.T, r domain.Remediation) {
				fixesAre(t, r, fix("web-1", failed, chg1, "", at(4*hour), time.Time{}), fix("web-2", failed, chg1, "", at(4*hour), time.Time{}))
			},
		},
		{name: "a fixed remediation reopens on a failed check", given: fixed, when: verify(customer, at(6*hour), false, "web-1"), then: events(patchVerified(at(6*hour), false, "web-1")), status: statusRolloutReady},
		{name: "an asset not affected", given: implemented, when: verify(customer, at(5*hour), true, "web-1", "web-3"), err: domain.ErrInvalid, field: "asset_ids"},
		{name: "a pending asset", given: approved, when: verify(customer, at(4*hour), true, "web-1"), err: domain.ErrWrongStatus},
		{name: "a pending asset among applied ones", given: with(approved, recordApplied(provider, at(4*hour), chg1, "web-1")), when: verify(customer, at(5*hour), true, "web-1", "web-2"), err: domain.ErrWrongStatus},
		{name: "a failed asset", given: with(approved, done(at(4*hour), chg1, false)), when: verify(customer, at(5*hour), false, "web-1"), err: domain.ErrWrongStatus},
		{name: "a rolled back asset", given: with(implemented, changeRollback(at(5*hour), chg1)), when: verify(customer, at(6*hour), true, "web-1"), err: domain.ErrWrongStatus},
		{name: "no assets", given: implemented, when: verify(customer, at(5*hour), true), err: domain.ErrInvalid, field: "asset_ids"},
	})
}

func TestRecordPatchRollback(t *testing.T) {
	t.Parallel()
	runAll(t, []spec{
		{
			name: "the provider rolls back applied and verified assets", given: with(implemented, verify(customer, at(5*hour), true, "web-1")),
			when: recordRollback(provider, at(6*hour), "web-2", "web-1"),
			then: events(patchRolledBack("", "breaks login", at(6*hour), "web-1", "web-2")), status: statusRolloutReady,
			state: func(t *testing.T, r domain.Remediation) {
				fixesAre(t, r, fix("web-1", rolledBack, chg1, "", at(4*hour), time.Time{}), fix("web-2", rolledBack, chg1, "", at(4*hour), time.Time{}))
				// The change stays implemented: the provider rolled back, not the change.
				changesAre(t, r, domain.LinkedChange{ID: chg1, State: domain.ChangeImplemented, Assets: []string{"web-1", "web-2"}})
			},
		},
		{
			name: "a fixed remediation is no longer fixed", given: fixed, when: recordRollback(provider, at(6*hour), "web-2"),
			then: events(patchRolledBack("", "breaks login", at(6*hour), "web-2")), status: statusRolloutReady,
		},
		{name: "only those applied", given: with(approved, recordApplied(provider, at(4*hour), chg1, "web-1")), when: recordRollback(provider, at(5*hour), "web-1", "web-2"), then: events(patchRolledBack("", "breaks login", at(5*hour), "web-1"))},
		{name: "nothing applied: no events", given: approved, when: recordRollback(provider, at(4*hour), "web-1", "web-2")},
		{name: "rolled back already: no events", given: with(implemented, recordRollback(provider, at(5*hour), "web-1")), when: recordRollback(provider, at(5*hour), "web-1")},
		{name: "the customer may not", given: implemented, when: recordRollback(customer, at(5*hour), "web-1"), err: domain.ErrWrongParty},
		{name: "an asset not affected", given: implemented, when: recordRollback(provider, at(5*hour), "web-7"), err: domain.ErrInvalid, field: "asset_ids"},
		{name: "no assets", given: implemented, when: recordRollback(provider, at(5*hour)), err: domain.ErrInvalid, field: "asset_ids"},
	})
}

// ---- deferral ---------------------------------------------------------------

func TestRequestDeferral(t *testing.T) {
	t.Parallel()
	d1 := domain.Deferral{ID: "d-1", Reason: "vendor fix pending", Risk: "SSRF from the internet", Until: at(10 * day), State: domain.DeferralRequested}
	rejected := with(deferralAsked, decideDeferral(customer, at(2*hour), "d-1", false))
	runAll(t, []spec{
		{
			name: "the provider asks to fix later", given: registered, when: requestDeferral(provider, at(hour), "d-1", at(10*day)),
			then: events(deferralRequested("d-1", at(10*day))), status: statusOpen,
			state: func(t *testing.T, r domain.Remediation) {
				deferralsAre(t, r, d1)
				if !r.DueAt.Equal(due) {
					t.Fatalf("due %s", r.DueAt)
				}
			},
		},
		{name: "until one second after the request", given: registered, when: requestDeferral(provider, at(hour), "d-1", at(hour+sec)), then: events(deferralRequested("d-1", at(hour+sec)))},
		{name: "until before the due date", given: registered, when: requestDeferral(provider, at(hour), "d-1", at(day)), then: events(deferralRequested("d-1", at(day)))},
		{name: "while the rollout is approved", given: approved, when: requestDeferral(provider, at(4*hour), "d-1", at(10*day)), then: events(deferralRequested("d-1", at(10*day)))},
		{
			name: "after a rejected one", given: rejected, when: requestDeferral(provider, at(3*hour), "d-2", at(12*day)),
			then: events(deferralRequested("d-2", at(12*day))),
			state: func(t *testing.T, r domain.Remediation) {
				first := d1
				first.State, first.Comment = domain.DeferralRejected, "ok with WAF rule"
				second := d1
				second.ID, second.Until = "d-2", at(12*day)
				deferralsAre(t, r, first, second)
			},
		},
		{name: "after an expired one", given: with(deferred, expire(at(10*day), "d-1")), when: requestDeferral(provider, at(10*day), "d-2", at(11*day)), then: events(deferralRequested("d-2", at(11*day)))},
		{name: "the customer may not", given: registered, when: requestDeferral(customer, at(hour), "d-1", at(10*day)), err: domain.ErrWrongParty},
		{name: "until at the request", given: registered, when: requestDeferral(provider, at(hour), "d-1", at(hour)), err: domain.ErrInvalid, field: "until"},
		{name: "until in the past", given: registered, when: requestDeferral(provider, at(hour), "d-1", base), err: domain.ErrInvalid, field: "until"},
		{name: "no until", given: registered, when: requestDeferral(provider, at(hour), "d-1", time.Time{}), err: domain.ErrInvalid, field: "until"},
		{name: "no id", given: registered, when: requestDeferral(provider, at(hour), " ", at(10*day)), err: domain.ErrInvalid, field: "deferral_id"},
		{
			name: "no reason", given: registered, err: domain.ErrInvalid, field: "reason",
			when: &domain.RequestDeferral{By: by(provider, at(hour)), DeferralID: "d-1", Reason: "\n", Until: at(10 * day)},
		},
		{name: "one pending already", given: deferralAsked, when: requestDeferral(provider, at(2*hour), "d-2", at(11*day)), err: domain.ErrWrongStatus},
		{name: "one in effect already", given: deferred, when: requestDeferral(provider, at(3*hour), "d-2", at(11*day)), err: domain.ErrWrongStatus},
		{name: "fixed already", given: fixed, when: requestDeferral(provider, at(6*hour), "d-1", at(10*day)), err: domain.ErrWrongStatus},
	})
}

func TestDecideDeferral(t *testing.T) {
	t.Parallel()
	d1 := domain.Deferral{ID: "d-1", Reason: "vendor fix pending", Risk: "SSRF from the internet", Until: at(10 * day), State: domain.DeferralAccepted, Comment: "ok with WAF rule"}
	expired := with(deferred, expire(at(10*day), "d-1"))
	lowAsked := history(register(severity(low)), requestDeferral(provider, at(hour), "d-1", at(10*day)))
	overdueAsked := history(register(), markOverdue(due.Add(sec), due), requestDeferral(provider, at(8*day), "d-1", at(10*day)))
	runAll(t, []spec{
		{
			name: "the customer accepts: the time left to the due date is kept", given: deferralAsked, when: decideDeferral(customer, at(2*hour), "d-1", true),
			then: events(deferralDecided("d-1", true, at(2*hour), durationpb.New(7*day-2*hour))), status: statusDeferred,
			state: func(t *testing.T, r domain.Remediation) {
				want := d1
				want.Remaining = 7*day - 2*hour
				deferralsAre(t, r, want)
				if d, ok := r.ActiveDeferral(); !ok || d.ID != "d-1" {
					t.Fatalf("active deferral = %+v, %t", d, ok)
				}
				if !r.DueAt.Equal(due) {
					t.Fatalf("due %s", r.DueAt)
				}
			},
		},
		{
			name: "the customer rejects", given: deferralAsked, when: decideDeferral(customer, at(2*hour), "d-1", false),
			then: events(deferralDecided("d-1", false, at(2*hour), nil)), status: statusOpen,
			state: func(t *testing.T, r domain.Remediation) {
				want := d1
				want.State = domain.DeferralRejected
				deferralsAre(t, r, want)
				if _, ok := r.ActiveDeferral(); ok {
					t.Fatal("a rejected deferral is active")
				}
			},
		},
		{name: "accepted at the due date: nothing left", given: history(register(), requestDeferral(provider, at(hour), "d-1", at(10*day))), when: decideDeferral(customer, due, "d-1", true), then: events(deferralDecided("d-1", true, due, durationpb.New(0)))},
		{name: "accepted when overdue: nothing left", given: overdueAsked, when: decideDeferral(customer, at(9*day), "d-1", true), then: events(deferralDecided("d-1", true, at(9*day), durationpb.New(0))), status: statusDeferred},
		{name: "accepted without a deadline: no time left to keep", given: lowAsked, when: decideDeferral(customer, at(2*hour), "d-1", true), then: events(deferralDecided("d-1", true, at(2*hour), nil)), status: statusDeferred},
		{name: "accepted one second before it runs out", given: deferralAsked, when: decideDeferral(customer, at(10*day-sec), "d-1", true), then: events(deferralDecided("d-1", true, at(10*day-sec), durationpb.New(0)))},
		{name: "rejected after it ran out", given: deferralAsked, when: decideDeferral(customer, at(11*day), "d-1", false), then: events(deferralDecided("d-1", false, at(11*day), nil))},
		{name: "accepted twice: no events", given: deferred, when: decideDeferral(customer, at(3*hour), "d-1", true), status: statusDeferred},
		{name: "rejected twice: no events", given: with(deferralAsked, decideDeferral(customer, at(2*hour), "d-1", false)), when: decideDeferral(customer, at(3*hour), "d-1", false)},
		{name: "the provider may not", given: deferralAsked, when: decideDeferral(provider, at(2*hour), "d-1", true), err: domain.ErrWrongParty},
		{name: "an unknown deferral", given: deferralAsked, when: decideDeferral(customer, at(2*hour), "d-9", true), err: domain.NotFoundError{What: "deferral", ID: "d-9"}},
		{name: "no deferral at all", given: registered, when: decideDeferral(customer, at(2*hour), "d-1", false), err: domain.NotFoundError{What: "deferral", ID: "d-1"}},
		{name: "rejected after it was accepted", given: deferred, when: decideDeferral(customer, at(3*hour), "d-1", false), err: domain.ErrWrongStatus},
		{name: "accepted after it was rejected", given: with(deferralAsked, decideDeferral(customer, at(2*hour), "d-1", false)), when: decideDeferral(customer, at(3*hour), "d-1", true), err: domain.ErrWrongStatus},
		{name: "accepted after it expired", given: expired, when: decideDeferral(customer, at(10*day), "d-1", true), err: domain.ErrWrongStatus},
		{name: "rejected after it expired", given: expired, when: decideDeferral(customer, at(10*day), "d-1", false), err: domain.ErrWrongStatus},
		{name: "accepted when it runs out", given: deferralAsked, when: decideDeferral(customer, at(10*day), "d-1", true), err: domain.ErrWrongStatus},
		{name: "accepted after it ran out", given: deferralAsked, when: decideDeferral(customer, at(11*day), "d-1", true), err: domain.ErrWrongStatus},
	})
}

func TestExpireDeferral(t *testing.T) {
	t.Parallel()
	// deferred: accepted at base+2h with 7d-2h left, until base+10d.
	newDue := at(10*day + 7*day - 2*hour)
	overdueDeferred := history(register(), markOverdue(due.Add(sec), due), requestDeferral(provider, at(8*day), "d-1", at(10*day)), decideDeferral(customer, at(9*day), "d-1", true))
	runAll(t, []spec{
		{
			name: "exactly at until: the clock runs again", given: deferred, when: expire(at(10*day), "d-1"),
			then: events(deferralExpired("d-1", ts(newDue))), status: statusOpen,
			state: func(t *testing.T, r domain.Remediation) {
				deferralsAre(t, r, domain.Deferral{
					ID: "d-1", Reason: "vendor fix pending", Risk: "SSRF from the internet", Until: at(10 * day),
					State: domain.DeferralExpired, Comment: "ok with WAF rule", Remaining: 7*day - 2*hour,
				})
				if !r.DueAt.Equal(newDue) || r.Overdue || r.OverdueAssets != nil {
					t.Fatalf("due %s overdue %t %v", r.DueAt, r.Overdue, r.OverdueAssets)
				}
			},
		},
		{name: "later than until", given: deferred, when: expire(at(11*day), "d-1"), then: events(deferralExpired("d-1", ts(newDue)))},
		{name: "one second before until: nothing", given: deferred, when: expire(at(10*day-sec), "d-1"), status: statusDeferred},
		{
			name: "an overdue remediation: due again at until, no longer overdue", given: overdueDeferred, when: expire(at(10*day), "d-1"),
			then: events(deferralExpired("d-1", ts(at(10*day)))), status: statusOpen,
			state: func(t *testing.T, r domain.Remediation) {
				if !r.DueAt.Equal(at(10*day)) || r.Overdue || r.OverdueAssets != nil {
					t.Fatalf("due %s overdue %t %v", r.DueAt, r.Overdue, r.OverdueAssets)
				}
			},
		},
		{
			name: "without a deadline: no due date", given: history(register(severity(low)), requestDeferral(provider, at(hour), "d-1", at(10*day)), decideDeferral(customer, at(2*hour), "d-1", true)),
			when: expire(at(10*day), "d-1"), then: events(deferralExpired("d-1", nil)), status: statusOpen,
			state: func(t *testing.T, r domain.Remediation) {
				if !r.DueAt.IsZero() {
					t.Fatalf("due %s", r.DueAt)
				}
			},
		},
		{name: "twice: nothing", given: with(deferred, expire(at(10*day), "d-1")), when: expire(at(10*day), "d-1")},
		{name: "another deferral: nothing", given: deferred, when: expire(at(10*day), "d-2")},
		{name: "requested, not accepted: nothing", given: deferralAsked, when: expire(at(10*day), "d-1")},
		{name: "rejected: nothing", given: with(deferralAsked, decideDeferral(customer, at(2*hour), "d-1", false)), when: expire(at(10*day), "d-1")},
		{name: "no deferral: nothing", given: registered, when: expire(at(10*day), "d-1")},
	})
}

// ---- overdue ----------------------------------------------------------------

func TestMarkOverdue(t *testing.T) {
	t.Parallel()
	// partly: web-2 verified, web-3 and web-1 not.
	partly := history(
		register(affecting("web-3", "web-1", "web-2")), release(provider, at(hour)), link(at(2*hour), chg1, false, "web-2"),
		approve(at(3*hour), chg1), recordApplied(provider, at(4*hour), chg1, "web-2"), verify(customer, at(5*hour), true, "web-2"),
	)
	newDue := at(10*day + 7*day - 2*hour)
	expired := with(deferred, expire(at(10*day), "d-1"))
	runAll(t, []spec{
		{name: "exactly at the due date: not yet", given: registered, when: markOverdue(due, due), status: statusOpen},
		{
			name: "one second after: overdue once", given: registered, when: markOverdue(due.Add(sec), due),
			then: events(remediationOverdue(due, due.Add(sec), "web-1", "web-2")), status: statusOpen,
			state: func(t *testing.T, r domain.Remediation) {
				if !r.Overdue || !slices.Equal(r.OverdueAssets, []string{"web-1", "web-2"}) || !r.DueAt.Equal(due) {
					t.Fatalf("overdue %t %v due %s", r.Overdue, r.OverdueAssets, r.DueAt)
				}
			},
		},
		{name: "the unfixed assets, sorted", given: partly, when: markOverdue(due.Add(hour), due), then: events(remediationOverdue(due, due.Add(hour), "web-1", "web-3"))},
		{name: "applied but not verified is unfixed", given: implemented, when: markOverdue(due.Add(sec), due), then: events(remediationOverdue(due, due.Add(sec), "web-1", "web-2"))},
		{name: "a second time: nothing", given: with(registered, markOverdue(due.Add(sec), due)), when: markOverdue(due.Add(hour), due)},
		{name: "a stale due date: nothing", given: registered, when: markOverdue(due.Add(day), due.Add(-hour))},
		{name: "no due date given: nothing", given: registered, when: markOverdue(due.Add(day), time.Time{})},
		{name: "while deferred: nothing", given: deferred, when: markOverdue(due.Add(sec), due), status: statusDeferred},
		{name: "fixed: nothing", given: fixed, when: markOverdue(due.Add(sec), due), status: statusFixed},
		{name: "no asset affected: nothing", given: history(register(affecting())), when: markOverdue(due.Add(sec), due), status: statusNotAffected},
		{name: "no deadline: nothing", given: history(register(severity(low))), when: markOverdue(due.Add(sec), time.Time{})},
		{name: "after the deferral expired, the old due date is stale", given: expired, when: markOverdue(due.Add(sec), due)},
		{name: "after the deferral expired, at the new due date: not yet", given: expired, when: markOverdue(newDue, newDue)},
		{name: "after the deferral expired, past the new due date", given: expired, when: markOverdue(newDue.Add(sec), newDue), then: events(remediationOverdue(newDue, newDue.Add(sec), "web-1", "web-2"))},
		{
			name:  "overdue again after a deferral ran out",
			given: history(register(), markOverdue(due.Add(sec), due), requestDeferral(provider, at(8*day), "d-1", at(10*day)), decideDeferral(customer, at(9*day), "d-1", true), expire(at(10*day), "d-1")),
			when:  markOverdue(at(10*day+sec), at(10*day)), then: events(remediationOverdue(at(10*day), at(10*day+sec), "web-1", "web-2")),
		},
		{name: "a new asset after the overdue: still recorded once", given: with(registered, markOverdue(due.Add(sec), due), register(affecting("web-3"))), when: markOverdue(due.Add(hour), due)},
	})
}

// ---- status -----------------------------------------------------------------

func TestStatus(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		given []domain.Command
		want  patchingv1.RemediationStatus
	}{
		{name: "not registered", want: statusNone},
		{name: "no asset affected", given: history(register(affecting())), want: statusNotAffected},
		{name: "no asset affected, a deferral requested", given: history(register(affecting()), requestDeferral(provider, at(hour), "d-1", at(day))), want: statusNotAffected},
		{name: "affected", given: registered, want: statusOpen},
		{name: "overdue is still open", given: with(registered, markOverdue(due.Add(sec), due)), want: statusOpen},
		{name: "patch released", given: released, want: statusReleased},
		{name: "change requested", given: linked, want: statusReleased},
		{name: "emergency change requested", given: with(released, link(at(2*hour), chg1, true, "web-1")), want: statusRolloutReady},
		{name: "change approved", given: approved, want: statusRolloutReady},
		{name: "change rejected", given: with(linked, reject(at(3*hour), chg1, customer)), want: statusReleased},
		{name: "one change rejected, another approved", given: with(linked, reject(at(3*hour), chg1, customer), link(at(4*hour), chg2, false, "web-1"), approve(at(5*hour), chg2)), want: statusRolloutReady},
		{name: "change implemented", given: implemented, want: statusRolloutReady},
		{name: "change failed", given: with(approved, done(at(4*hour), chg1, false)), want: statusReleased},
		{name: "change rolled back", given: with(implemented, changeRollback(at(5*hour), chg1)), want: statusReleased},
		{name: "one asset verified", given: with(implemented, verify(customer, at(5*hour), true, "web-1")), want: statusRolloutReady},
		{name: "every asset verified", given: fixed, want: statusFixed},
		{name: "deferral requested", given: deferralAsked, want: statusOpen},
		{name: "deferral accepted", given: deferred, want: statusDeferred},
		{name: "deferral rejected", given: with(deferralAsked, decideDeferral(customer, at(2*hour), "d-1", false)), want: statusOpen},
		{name: "deferral expired", given: with(deferred, expire(at(10*day), "d-1")), want: statusOpen},
		{name: "deferred while the rollout is approved", given: with(approved, requestDeferral(provider, at(4*hour), "d-1", at(10*day)), decideDeferral(customer, at(5*hour), "d-1", true)), want: statusDeferred},
		{name: "deferred after the release", given: with(released, requestDeferral(provider, at(2*hour), "d-1", at(10*day)), decideDeferral(customer, at(3*hour), "d-1", true)), want: statusDeferred},
		{
			name:  "fixed while deferred",
			given: with(approved, requestDeferral(provider, at(4*hour), "d-1", at(10*day)), decideDeferral(customer, at(5*hour), "d-1", true), done(at(6*hour), chg1, true), verify(customer, at(7*hour), true, "web-1", "web-2")),
			want:  statusFixed,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if got := given(t, c.given...).Status(); got != c.want {
				t.Fatalf("status = %s, want %s", got, c.want)
			}
		})
	}
}

func TestRemediationHelpers(t *testing.T) {
	t.Parallel()
	r := given(t, registered...)
	if !r.Exists() || (domain.Remediation{}).Exists() {
		t.Fatal("Exists is wrong")
	}
	if !r.IsParty(customer) || !r.IsParty(provider) || r.IsParty(outsider) || r.IsParty("") {
		t.Fatal("IsParty is wrong")
	}
	if (domain.Remediation{}).IsParty("") {
		t.Fatal("no org is a party to nothing")
	}
	if got := r.Unfixed(); !slices.Equal(got, []string{"web-1", "web-2"}) {
		t.Fatalf("unfixed = %v", got)
	}
	if got := (domain.Remediation{}).Unfixed(); got != nil {
		t.Fatalf("unfixed of nothing = %v", got)
	}
	retired := domain.Remediation{ID: remID, Assets: map[string]domain.Fix{
		"a": {Status: patchingv1.AssetPatchStatus_ASSET_PATCH_STATUS_RETIRED}, "b": {Status: verified}, "c": {Status: failed},
	}}
	if got := retired.Unfixed(); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("unfixed = %v, want [c]: retired and verified assets are fixed", got)
	}
	retired.Assets["c"] = domain.Fix{Status: patchingv1.AssetPatchStatus_ASSET_PATCH_STATUS_RETIRED}
	if got := retired.Status(); got != statusFixed {
		t.Fatalf("status = %s", got)
	}
	if _, ok := r.ActiveDeferral(); ok {
		t.Fatal("an active deferral without one")
	}
	c := domain.Contract{Customer: customer, Provider: provider}
	if !c.IsParty(customer) || !c.IsParty(provider) || c.IsParty(outsider) || c.IsParty("") {
		t.Fatal("Contract.IsParty is wrong")
	}
	cmd := release(provider, at(hour))
	domain.Stamp(cmd, domain.Actor{Org: customer, User: "carol"}, at(2*hour))
	if cmd.Org != customer || cmd.User != "carol" || !cmd.At.Equal(at(2*hour)) {
		t.Fatalf("Stamp: %+v", cmd.By)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	err := error(domain.NotFoundError{What: "deferral", ID: "d-1"})
	if !errors.Is(err, domain.NotFoundError{}) || !errors.Is(err, domain.NotFoundError{What: "deferral"}) ||
		!errors.Is(err, domain.NotFoundError{ID: "d-1"}) || errors.Is(err, domain.NotFoundError{What: "asset"}) ||
		errors.Is(err, domain.NotFoundError{What: "deferral", ID: "d-2"}) || errors.Is(err, domain.ErrInvalid) {
		t.Fatal("NotFoundError does not match as documented")
	}
	if err.Error() != "deferral d-1 not found" || (domain.NotFoundError{What: "remediation"}).Error() != "remediation not found" {
		t.Fatalf("message = %q", err)
	}
	_, err = domain.DecideRemediation(given(t, registered...), requestDeferral(provider, at(hour), "", at(day)))
	var ve domain.ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, domain.ErrInvalid) || errors.Is(err, domain.ErrNotParty) {
		t.Fatalf("error = %v", err)
	}
	if err.Error() != "invalid deferral_id: must not be empty" {
		t.Fatalf("message = %q", err)
	}
	if got := (domain.ValidationError{Reason: "missing"}).Error(); got != "invalid command: missing" {
		t.Fatalf("message = %q", got)
	}
	_, err = domain.DecideRemediation(given(t, registered...), release(customer, at(hour)))
	if !errors.Is(err, domain.ErrWrongParty) || err.Error() != "only the provider releases patches: party may not do this" {
		t.Fatalf("error = %v", err)
	}
}

// ---- evolve and snapshots ---------------------------------------------------

// everything is a history that folds every event type of the remediation.
func everything() []domain.Command {
	return history(
		register(affecting("web-1", "web-2", "web-3")),
		release(provider, at(hour)),
		link(at(2*hour), chg1, false, "web-1"),
		reject(at(3*hour), chg1, customer),
		link(at(4*hour), chg2, false, "web-1", "web-2"),
		approve(at(5*hour), chg2),
		recordApplied(provider, at(6*hour), chg2, "web-1"),
		done(at(7*hour), chg2, true),
		verify(customer, at(8*hour), true, "web-1"),
		verify(customer, at(8*hour), false, "web-2"),
		recordRollback(provider, at(9*hour), "web-1"),
		markOverdue(due.Add(sec), due),
		requestDeferral(provider, at(8*day), "d-1", at(10*day)),
		decideDeferral(customer, at(8*day+hour), "d-1", true),
		expire(at(10*day), "d-1"),
		register(registeredBy(customer, at(10*day)), affecting("web-4")),
		link(at(10*day+hour), "chg-3", true, "web-3"),
		done(at(10*day+2*hour), "chg-3", false),
		changeRollback(at(10*day+3*hour), chg2),
	)
}

func TestEverything(t *testing.T) {
	t.Parallel()
	var r domain.Remediation
	seen := map[string]bool{}
	for i, cmd := range everything() {
		es, err := domain.DecideRemediation(r, cmd)
		if err != nil || len(es) == 0 {
			t.Fatalf("command %d (%T): %s, %v", i, cmd, text(es), err)
		}
		for _, e := range es {
			seen[string(e.ProtoReflect().Descriptor().Name())] = true
		}
		r = fold(r, cmd, es...)
	}
	if len(seen) != 14 {
		t.Fatalf("%d event types folded: %v", len(seen), seen)
	}
	fixesAre(t, r,
		fix("web-1", rolledBack, chg2, "snap-1", at(6*hour), time.Time{}),
		fix("web-2", failed, chg2, "", at(7*hour), time.Time{}),
		fix("web-3", failed, "", "", time.Time{}, time.Time{}),
		fix("web-4", pending, "", "", time.Time{}, time.Time{}),
	)
	changesAre(t, r,
		domain.LinkedChange{ID: chg1, State: domain.ChangeRejected, Assets: []string{"web-1"}},
		domain.LinkedChange{ID: chg2, State: domain.ChangeRolledBack, Assets: []string{"web-1", "web-2"}},
		domain.LinkedChange{ID: "chg-3", Emergency: true, State: domain.ChangeFailed, Assets: []string{"web-3"}},
	)
	if !r.DueAt.Equal(at(10*day)) || r.Overdue || r.OverdueAssets != nil || r.Status() != statusReleased ||
		r.Position != 20 || !r.UpdatedAt.Equal(at(10*day+3*hour)) || len(r.Releases) != 1 || len(r.Deferrals) != 1 ||
		r.Deferrals[0].State != domain.DeferralExpired {
		t.Fatalf("state = %+v", r)
	}
}

func TestEvolveRemediationNeverAltersItsInput(t *testing.T) {
	t.Parallel()
	var r domain.Remediation
	for i, cmd := range everything() {
		es, err := domain.DecideRemediation(r, cmd)
		if err != nil {
			t.Fatalf("command %d (%T): %v", i, cmd, err)
		}
		for _, e := range es {
			before := snapshot(t, r)
			b := byOf(cmd)
			meta := domain.Meta{Time: b.At, Actor: b.Actor, Position: r.Position + 1}
			next := domain.EvolveRemediation(r, e, meta)
			if now := snapshot(t, r); now != before {
				t.Fatalf("evolving %s changed its input:\nbefore %s\nafter  %s", text(events(e)), before, now)
			}
			if again := domain.EvolveRemediation(r, e, meta); !reflect.DeepEqual(again, next) {
				t.Fatalf("evolving %s twice from the same state differs", text(events(e)))
			}
			// Changing what the result holds in maps and slices leaves the input alone.
			mutate(&next)
			if now := snapshot(t, r); now != before {
				t.Fatalf("the state after %s shares memory with its input:\nbefore %s\nafter  %s", text(events(e)), before, now)
			}
			r = domain.EvolveRemediation(r, e, meta)
		}
	}
}

// mutate scribbles over the maps and slices Evolve copies.
func mutate(r *domain.Remediation) {
	for id := range r.Assets {
		r.Assets[id] = domain.Fix{Status: verified, Change: "x"}
	}
	if r.Assets != nil {
		r.Assets["x"] = domain.Fix{}
	}
	for i := range r.Changes {
		r.Changes[i].State, r.Changes[i].ID = "x", "x"
	}
	for i := range r.Deferrals {
		r.Deferrals[i].State, r.Deferrals[i].Until = "x", time.Time{}
	}
}

func TestEvolveRemediationIgnoresOtherMessages(t *testing.T) {
	t.Parallel()
	r := given(t, implemented...)
	meta := domain.Meta{Time: at(day), Position: 99}
	for _, m := range []proto.Message{nil, durationpb.New(hour), &patchingv1.AssetsRegistered{ContractId: contractID}} {
		if got := domain.EvolveRemediation(r, m, meta); !reflect.DeepEqual(got, r) {
			t.Fatalf("%T changed the state:\n%+v\n%+v", m, got, r)
		}
	}
}

// An event folded with an older position (a replay of a snapshot's tail)
// does not move the position back.
func TestEvolveRemediationKeepsTheHighestPosition(t *testing.T) {
	t.Parallel()
	r := given(t, released...)
	if r.Position != 3 {
		t.Fatalf("position = %d", r.Position)
	}
	got := domain.EvolveRemediation(r, changeLinked(chg1, false, "web-1"), domain.Meta{Time: at(2 * hour), Position: 2})
	if got.Position != 3 || len(got.Changes) != 1 || !got.UpdatedAt.Equal(at(2*hour)) {
		t.Fatalf("position %d, changes %+v, updated %s", got.Position, got.Changes, got.UpdatedAt)
	}
	got = domain.EvolveRemediation(got, rolloutApproved(chg1, "web-1"), domain.Meta{Time: at(3 * hour), Position: 7})
	if got.Position != 7 {
		t.Fatalf("position = %d", got.Position)
	}
}

// TestRemediationJSONRoundTrip: the remediation is stored as a JSON
// snapshot; it comes back unchanged and decides on alike.
func TestRemediationJSONRoundTrip(t *testing.T) {
	t.Parallel()
	cmds := everything()
	for n := range len(cmds) + 1 {
		var r domain.Remediation
		if n > 0 {
			r = given(t, cmds[:n]...)
		}
		b := snapshot(t, r)
		var back domain.Remediation
		if err := json.Unmarshal([]byte(b), &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, r) {
			t.Fatalf("after %d commands the round trip changed the state:\n%+v\n%+v", n, r, back)
		}
		if again := snapshot(t, back); again != b {
			t.Fatalf("json differs:\n%s\n%s", b, again)
		}
		if back.Status() != r.Status() {
			t.Fatalf("status %s, want %s", back.Status(), r.Status())
		}
		if n < len(cmds) {
			es, err := domain.DecideRemediation(back, cmds[n])
			if err != nil {
				t.Fatalf("command %d on the snapshot: %v", n, err)
			}
			if got, want := fold(back, cmds[n], es...), given(t, cmds[:n+1]...); !reflect.DeepEqual(got, want) {
				t.Fatalf("command %d on the snapshot:\n%+v\n%+v", n, got, want)
			}
		}
	}
}

// A change of another contract that links a remediation changes nothing:
// a party to one contract cannot move another contract's remediation.
func TestReactionsOfAnotherContractChangeNothing(t *testing.T) {
	r := given(t, register())
	for name, cmd := range map[string]domain.Command{
		"link":     &domain.LinkChange{By: platform(base), ContractID: "other", ChangeID: "chg-x", Assets: []string{"web-1"}},
		"approve":  &domain.ApproveRollout{By: platform(base), ContractID: "other", ChangeID: "chg-x"},
		"done":     &domain.ChangeDone{By: platform(base), ContractID: "other", ChangeID: "chg-x", Success: true},
		"rollback": &domain.ChangeRollback{By: platform(base), ContractID: "other", ChangeID: "chg-x"},
	} {
		evs, err := domain.DecideRemediation(r, cmd)
		if err != nil || len(evs) != 0 {
			t.Errorf("%s: %v, %v; want nothing", name, evs, err)
		}
	}
	evs, err := domain.DecideRemediation(r, &domain.LinkChange{By: platform(base), ContractID: contractID, ChangeID: "chg-y", Assets: []string{"not-affected"}})
	if err != nil || len(evs) != 0 {
		t.Errorf("a link covering no affected asset: %v, %v; want nothing", evs, err)
	}
}
