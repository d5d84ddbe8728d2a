package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	changeadvisoryv1 "github.com/jsmplatform/jsm/proto/gen/jsm/changeadvisory/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/changeadvisory/v1/changeadvisoryv1connect"
	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
	patchingv1 "github.com/jsmplatform/jsm/proto/gen/jsm/patching/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/patching/v1/patchingv1connect"
)

// From vulnerability to verified fix through the real APIs of jsm up: the
// vulnerability finds its assets, the released patch opens a change (a
// reaction), the contract makes software changes need both approvals, the
// approved change allows the rollout (a reaction), its implementation
// applies the patch (a reaction), the customer verifies. A second patch's
// change, rejected by the customer, stops its rollout.
func TestVulnerabilityToVerifiedFix(t *testing.T) {
	ctx := context.Background()
	p := up(t, dataDir(t))
	acme, itsec := p.contracts(t, "acme", "org-admin"), p.contracts(t, "itsec", "org-admin")
	d := mustOK[contractsv1.DraftContractResponse](t)(acme.DraftContract(ctx, connect.NewRequest(&contractsv1.DraftContractRequest{CustomerOrgId: "acme", ProviderOrgId: "itsec", Title: "Managed servers"}))).ContractId
	mustOK[contractsv1.SetServiceLevelsResponse](t)(acme.SetServiceLevels(ctx, connect.NewRequest(&contractsv1.SetServiceLevelsRequest{
		ContractId:                 d,
		PatchDeadlines:             []*contractsv1.SeverityDeadline{{Severity: commonv1.Severity_SEVERITY_CRITICAL, Within: durationpb.New(7 * 24 * time.Hour)}},
		CustomerApprovalCategories: []commonv1.ChangeCategory{commonv1.ChangeCategory_CHANGE_CATEGORY_SOFTWARE},
	})))
	mustOK[contractsv1.SignContractResponse](t)(acme.SignContract(ctx, connect.NewRequest(&contractsv1.SignContractRequest{ContractId: d})))
	mustOK[contractsv1.SignContractResponse](t)(itsec.SignContract(ctx, connect.NewRequest(&contractsv1.SignContractRequest{ContractId: d})))

	// Every call of the interaction carries its correlation id; the
	// reactions keep it, so the timeline shows the whole interaction.
	const interaction = "vuln-2024-38476"
	patchAs := func(org string) patchingv1connect.PatchServiceClient {
		return patchingv1connect.NewPatchServiceClient(http.DefaultClient, p.url, connect.WithInterceptors(bearer(p.token(t, org, "security-officer")), correlation(interaction)))
	}
	changesAs := func(org string) changeadvisoryv1connect.ChangeServiceClient {
		return changeadvisoryv1connect.NewChangeServiceClient(http.DefaultClient, p.url, connect.WithInterceptors(bearer(p.token(t, org, "org-admin")), correlation(interaction)))
	}
	provPatch, custPatch := patchAs("itsec"), patchAs("acme")
	provChange, custChange := changesAs("itsec"), changesAs("acme")

	software := func(v string) []*patchingv1.Software {
		return []*patchingv1.Software{{Product: "Apache HTTP Server", Version: v}}
	}
	mustOK[patchingv1.RegisterAssetsResponse](t)(provPatch.RegisterAssets(ctx, connect.NewRequest(&patchingv1.RegisterAssetsRequest{ContractId: d, Assets: []*patchingv1.Asset{
		{AssetId: "web-1", Name: "shop front", Software: software("2.4.57")},
		{AssetId: "web-2", Name: "shop back", Software: software("2.4.41")},
		{AssetId: "web-3", Name: "intranet", Software: software("2.4.62")},
	}})))
	vuln := mustOK[patchingv1.RegisterVulnerabilityResponse](t)(custPatch.RegisterVulnerability(ctx, connect.NewRequest(&patchingv1.RegisterVulnerabilityRequest{
		ContractId: d, CveId: "CVE-2024-38476", Severity: commonv1.Severity_SEVERITY_CRITICAL, Product: "apache http server",
		AffectedVersions: []string{">= 2.4.0, < 2.4.60"}, CvssScore: 9.8,
	})))
	if len(vuln.AffectedAssetIds) != 2 || vuln.DueAt == nil {
		t.Fatalf("vulnerability: %v", vuln)
	}
	mustOK[patchingv1.ReleasePatchResponse](t)(provPatch.ReleasePatch(ctx, connect.NewRequest(&patchingv1.ReleasePatchRequest{
		RemediationId: vuln.RemediationId, Kind: patchingv1.FixKind_FIX_KIND_PATCH, Reference: "httpd 2.4.62", TestSummary: "two days on staging",
	})))

	change := waitChange(t, custChange, vuln.RemediationId)
	if change.GetStatus() != changeadvisoryv1.ChangeStatus_CHANGE_STATUS_REQUESTED || len(change.GetRequiredApproverOrgIds()) != 2 {
		t.Fatalf("the change the release opened: %v", change)
	}
	mustOK[changeadvisoryv1.ApproveChangeResponse](t)(provChange.ApproveChange(ctx, connect.NewRequest(&changeadvisoryv1.ApproveChangeRequest{ChangeId: change.GetChangeId()})))
	approved := mustOK[changeadvisoryv1.ApproveChangeResponse](t)(custChange.ApproveChange(ctx, connect.NewRequest(&changeadvisoryv1.ApproveChangeRequest{ChangeId: change.GetChangeId()})))
	got := mustOK[changeadvisoryv1.GetChangeResponse](t)(custChange.GetChange(ctx, connect.NewRequest(&changeadvisoryv1.GetChangeRequest{ChangeId: change.GetChangeId(), MinPosition: approved.Position}))).Change
	if got.GetStatus() != changeadvisoryv1.ChangeStatus_CHANGE_STATUS_APPROVED || len(got.GetApprovals()) != 2 {
		t.Fatalf("after both approvals: %v", got)
	}
	waitRemediation(t, custPatch, vuln.RemediationId, func(r *patchingv1.Remediation) bool {
		return r.GetStatus() == patchingv1.RemediationStatus_REMEDIATION_STATUS_ROLLOUT_APPROVED
	})
	mustOK[changeadvisoryv1.RecordImplementationResponse](t)(provChange.RecordImplementation(ctx, connect.NewRequest(&changeadvisoryv1.RecordImplementationRequest{ChangeId: change.GetChangeId(), Success: true, Notes: "rolled out 02:00-02:20"})))
	waitRemediation(t, custPatch, vuln.RemediationId, func(r *patchingv1.Remediation) bool {
		for _, a := range r.GetAssets() {
			if a.GetStatus() != patchingv1.AssetPatchStatus_ASSET_PATCH_STATUS_APPLIED {
				return false
			}
		}
		return true
	})
	verified := mustOK[patchingv1.VerifyPatchResponse](t)(custPatch.VerifyPatch(ctx, connect.NewRequest(&patchingv1.VerifyPatchRequest{RemediationId: vuln.RemediationId, AssetIds: vuln.AffectedAssetIds, Success: true})))
	if verified.Status != patchingv1.RemediationStatus_REMEDIATION_STATUS_FIXED {
		t.Fatalf("after verification: %s", verified.Status)
	}

	// jsm timeline shows the interaction across both areas in order, with
	// who did what: the customer registered, the provider released, the
	// reaction opened the change, both approved, the reaction applied.
	want := []string{"VulnerabilityRegistered", "PatchReleased", "ChangeRequested", "ChangeLinked", "ChangeApproved", "RolloutApproved", "ChangeImplemented", "PatchApplied", "PatchVerified"}
	var timeline string
	var err error
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		timeline, err = p.jsmCmd(t, p.token(t, "acme", "auditor"), "timeline", "--server", p.url, "--correlation", interaction)
		if err == nil && strings.Contains(timeline, "PatchVerified") || time.Now().After(deadline) {
			break
		}
	}
	at := 0
	for _, w := range want {
		i := strings.Index(timeline[at:], w)
		if i < 0 {
			t.Fatalf("timeline lacks %s after offset %d (%v):\n%s", w, at, err, timeline)
		}
		at += i + len(w)
	}
	for _, who := range []string{"acme/acme-user", "itsec/itsec-user", "/patching-reactions", "/changeadvisory-reactions"} {
		if !strings.Contains(timeline, who) {
			t.Fatalf("timeline does not show %q:\n%s", who, timeline)
		}
	}

	// A customer rejection stops the rollout.
	second := mustOK[patchingv1.RegisterVulnerabilityResponse](t)(custPatch.RegisterVulnerability(ctx, connect.NewRequest(&patchingv1.RegisterVulnerabilityRequest{
		ContractId: d, CveId: "CVE-2025-00001", Severity: commonv1.Severity_SEVERITY_CRITICAL, Product: "apache http server", AffectedVersions: []string{"2.4.62"},
	})))
	mustOK[patchingv1.ReleasePatchResponse](t)(provPatch.ReleasePatch(ctx, connect.NewRequest(&patchingv1.ReleasePatchRequest{RemediationId: second.RemediationId, Kind: patchingv1.FixKind_FIX_KIND_WORKAROUND, Reference: "mod_rewrite rule"})))
	rejected := waitChange(t, custChange, second.RemediationId)
	mustOK[changeadvisoryv1.RejectChangeResponse](t)(custChange.RejectChange(ctx, connect.NewRequest(&changeadvisoryv1.RejectChangeRequest{ChangeId: rejected.GetChangeId(), Reason: "not during the sales week"})))
	waitRemediation(t, custPatch, second.RemediationId, func(r *patchingv1.Remediation) bool {
		return len(r.GetChanges()) == 1 && r.GetChanges()[0].GetState() == "rejected"
	})
	_, err = provPatch.RecordPatchApplied(ctx, connect.NewRequest(&patchingv1.RecordPatchAppliedRequest{RemediationId: second.RemediationId, ChangeId: rejected.GetChangeId(), AssetIds: []string{"web-3"}}))
	if connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Fatalf("applying through a rejected change: %v, want failed_precondition", err)
	}
}

// correlation sends the interaction's correlation id with every request.
func correlation(id string) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Jsm-Correlation-Id", id)
			return next(ctx, req)
		}
	}
}

func mustOK[T any](t *testing.T) func(*connect.Response[T], error) *T {
	return func(r *connect.Response[T], err error) *T {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return r.Msg
	}
}

// waitChange waits for the change a reaction opened for the remediation.
func waitChange(t *testing.T, c changeadvisoryv1connect.ChangeServiceClient, remediationID string) *changeadvisoryv1.Change {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		list := mustOK[changeadvisoryv1.ListChangesResponse](t)(c.ListChanges(context.Background(), connect.NewRequest(&changeadvisoryv1.ListChangesRequest{LinkedKind: "patching.remediation", LinkedId: remediationID})))
		if len(list.Changes) > 1 {
			t.Fatalf("%d changes for one release", len(list.Changes))
		}
		if len(list.Changes) == 1 {
			return list.Changes[0]
		}
		if time.Now().After(deadline) {
			t.Fatal("the released patch opened no change")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitRemediation(t *testing.T, c patchingv1connect.PatchServiceClient, id string, ok func(*patchingv1.Remediation) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := mustOK[patchingv1.GetRemediationResponse](t)(c.GetRemediation(context.Background(), connect.NewRequest(&patchingv1.GetRemediationRequest{RemediationId: id}))).Remediation
		if ok(r) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("remediation never got there: %v", r)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
