package trail_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/jsmplatform/jsm/libs/rpc"
	changeadvisoryv1 "github.com/jsmplatform/jsm/proto/gen/jsm/changeadvisory/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/changeadvisory/v1/changeadvisoryv1connect"
	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
	patchingv1 "github.com/jsmplatform/jsm/proto/gen/jsm/patching/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/patching/v1/patchingv1connect"
	trailv1 "github.com/jsmplatform/jsm/proto/gen/jsm/trail/v1"
	"github.com/jsmplatform/jsm/services/changeadvisory"
	"github.com/jsmplatform/jsm/services/patching"
)

func withChanges(p *platform) rpc.Service {
	s, err := changeadvisory.New(ctx, changeadvisory.Deps{Store: p.store, Pool: p.pool, ReadWait: 2 * time.Second, SchedulerEvery: -1})
	if err != nil {
		p.t.Fatal(err)
	}
	return s
}

func withPatching(p *platform) rpc.Service {
	s, err := patching.New(ctx, patching.Deps{Store: p.store, Pool: p.pool, ReadWait: 2 * time.Second, SchedulerEvery: -1})
	if err != nil {
		p.t.Fatal(err)
	}
	return s
}

// One interaction across areas (vulnerability, released patch, the change
// a reaction opens, both approvals, implementation, verification), all
// under one correlation id: the trail shows it in stream order across
// both aggregates, and GetAggregateAt of the remediation and of the change
// at the position of every state the read models showed live gives that
// state, folded with each area's own decider.
func TestInteractionAcrossAreasAndAggregatesAtEveryLiveState(t *testing.T) {
	p := start(t, withChanges, withPatching)
	const corr = "vuln-42"
	cust, prov := p.contracts("acme", ""), p.contracts("itsec", "")
	d := must[contractsv1.DraftContractResponse](t)(cust.DraftContract(ctx, connect.NewRequest(&contractsv1.DraftContractRequest{CustomerOrgId: "acme", ProviderOrgId: "itsec", Title: "Managed servers"})))
	must[contractsv1.SetServiceLevelsResponse](t)(cust.SetServiceLevels(ctx, connect.NewRequest(&contractsv1.SetServiceLevelsRequest{
		ContractId:                 d.ContractId,
		PatchDeadlines:             []*contractsv1.SeverityDeadline{{Severity: commonv1.Severity_SEVERITY_CRITICAL, Within: durationpb.New(7 * 24 * time.Hour)}},
		CustomerApprovalCategories: []commonv1.ChangeCategory{commonv1.ChangeCategory_CHANGE_CATEGORY_SOFTWARE},
	})))
	must[contractsv1.SignContractResponse](t)(cust.SignContract(ctx, connect.NewRequest(&contractsv1.SignContractRequest{ContractId: d.ContractId})))
	must[contractsv1.SignContractResponse](t)(prov.SignContract(ctx, connect.NewRequest(&contractsv1.SignContractRequest{ContractId: d.ContractId})))

	as := func(org, role string) connect.ClientOption {
		return connect.WithInterceptors(&headers{token: p.token(org, role), correlation: corr})
	}
	custPatch := patchingv1connect.NewPatchServiceClient(http.DefaultClient, p.url, as("acme", "security-officer"))
	provPatch := patchingv1connect.NewPatchServiceClient(http.DefaultClient, p.url, as("itsec", "security-officer"))
	custChange := changeadvisoryv1connect.NewChangeServiceClient(http.DefaultClient, p.url, as("acme", "change-manager"))
	provChange := changeadvisoryv1connect.NewChangeServiceClient(http.DefaultClient, p.url, as("itsec", "change-manager"))
	auditor := p.trailClient("acme")

	var remediations []*patchingv1.Remediation
	var changes []*changeadvisoryv1.Change
	remediation := func(id string, pos uint64) *patchingv1.Remediation {
		r := must[patchingv1.GetRemediationResponse](t)(custPatch.GetRemediation(ctx, connect.NewRequest(&patchingv1.GetRemediationRequest{RemediationId: id, MinPosition: pos}))).Remediation
		remediations = append(remediations, r)
		return r
	}
	change := func(id string, pos uint64) *changeadvisoryv1.Change {
		c := must[changeadvisoryv1.GetChangeResponse](t)(custChange.GetChange(ctx, connect.NewRequest(&changeadvisoryv1.GetChangeRequest{ChangeId: id, MinPosition: pos}))).Change
		changes = append(changes, c)
		return c
	}
	eventually := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("never: %s", what)
			}
		}
	}

	must[patchingv1.RegisterAssetsResponse](t)(provPatch.RegisterAssets(ctx, connect.NewRequest(&patchingv1.RegisterAssetsRequest{ContractId: d.ContractId, Assets: []*patchingv1.Asset{
		{AssetId: "web-1", Name: "shop", Software: []*patchingv1.Software{{Product: "Apache HTTP Server", Version: "2.4.57"}}},
		{AssetId: "web-2", Name: "intranet", Software: []*patchingv1.Software{{Product: "Apache HTTP Server", Version: "2.4.62"}}},
	}})))
	v := must[patchingv1.RegisterVulnerabilityResponse](t)(custPatch.RegisterVulnerability(ctx, connect.NewRequest(&patchingv1.RegisterVulnerabilityRequest{
		ContractId: d.ContractId, CveId: "CVE-2024-38476", Severity: commonv1.Severity_SEVERITY_CRITICAL, Product: "apache http server", AffectedVersions: []string{">= 2.4.0, < 2.4.60"},
	})))
	remediation(v.RemediationId, v.Position)
	rel := must[patchingv1.ReleasePatchResponse](t)(provPatch.ReleasePatch(ctx, connect.NewRequest(&patchingv1.ReleasePatchRequest{
		RemediationId: v.RemediationId, Kind: patchingv1.FixKind_FIX_KIND_PATCH, Reference: "httpd 2.4.62",
	})))
	remediation(v.RemediationId, rel.Position)
	var changeID string
	eventually("the release opens a change that the remediation links", func() bool {
		r := remediation(v.RemediationId, 0)
		if len(r.GetChanges()) == 1 {
			changeID = r.GetChanges()[0].GetChangeId()
		}
		return changeID != ""
	})
	// The remediation learned of the change from the change's event: the
	// change's own read model holds it once it has read that far.
	last, err := p.store.LastPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := change(changeID, last)
	if len(c.GetRequiredApproverOrgIds()) != 2 {
		t.Fatalf("the change needs %v", c.GetRequiredApproverOrgIds())
	}
	a1 := must[changeadvisoryv1.ApproveChangeResponse](t)(provChange.ApproveChange(ctx, connect.NewRequest(&changeadvisoryv1.ApproveChangeRequest{ChangeId: changeID})))
	change(changeID, a1.Position)
	a2 := must[changeadvisoryv1.ApproveChangeResponse](t)(custChange.ApproveChange(ctx, connect.NewRequest(&changeadvisoryv1.ApproveChangeRequest{ChangeId: changeID})))
	change(changeID, a2.Position)
	eventually("the approved change allows the rollout", func() bool {
		return remediation(v.RemediationId, a2.Position).GetStatus() == patchingv1.RemediationStatus_REMEDIATION_STATUS_ROLLOUT_APPROVED
	})
	im := must[changeadvisoryv1.RecordImplementationResponse](t)(provChange.RecordImplementation(ctx, connect.NewRequest(&changeadvisoryv1.RecordImplementationRequest{ChangeId: changeID, Success: true})))
	change(changeID, im.Position)
	eventually("the implementation applies the patch", func() bool {
		r := remediation(v.RemediationId, im.Position)
		return len(r.GetAssets()) == 1 && r.GetAssets()[0].GetStatus() == patchingv1.AssetPatchStatus_ASSET_PATCH_STATUS_APPLIED
	})
	ver := must[patchingv1.VerifyPatchResponse](t)(custPatch.VerifyPatch(ctx, connect.NewRequest(&patchingv1.VerifyPatchRequest{RemediationId: v.RemediationId, AssetIds: []string{"web-1"}, Success: true})))
	if r := remediation(v.RemediationId, ver.Position); r.GetStatus() != patchingv1.RemediationStatus_REMEDIATION_STATUS_FIXED {
		t.Fatalf("after verification: %v", r)
	}

	// The interaction, in stream order, across both areas.
	events := search(t, auditor, &trailv1.SearchEventsRequest{CorrelationId: corr, MinPosition: ver.Position})
	var got []string
	for i, e := range events {
		if i > 0 && e.Position <= events[i-1].Position {
			t.Fatalf("out of stream order at %d", e.Position)
		}
		if e.ContractId != d.ContractId || e.Data == nil {
			t.Fatalf("event %v", e)
		}
		got = append(got, strings.TrimPrefix(e.Type, "jsm."))
	}
	for _, want := range [][]string{
		{"patching.v1.VulnerabilityRegistered", "patching.v1.PatchReleased", "changeadvisory.v1.ChangeRequested", "patching.v1.ChangeLinked"},
		{"changeadvisory.v1.ChangeApproved", "patching.v1.RolloutApproved"},
		{"changeadvisory.v1.ChangeImplemented", "patching.v1.PatchApplied", "patching.v1.PatchVerified"},
	} {
		at := slices.Index(got, want[0])
		if at < 0 || len(got) < at+len(want) || !slices.Equal(subsequence(got[at:], want), want) {
			t.Fatalf("interaction %v, want %v in this order", got, want)
		}
	}
	// Another org sees none of it.
	if other := search(t, p.trailClient("globex", "org-admin"), &trailv1.SearchEventsRequest{CorrelationId: corr}); len(other) != 0 {
		t.Fatalf("globex sees %d events of the interaction", len(other))
	}

	// Each live state, rebuilt by the trail at its position.
	check := func(aggType, id string, pos uint64, live, got proto.Message) {
		t.Helper()
		r := must[trailv1.GetAggregateAtResponse](t)(auditor.GetAggregateAt(ctx, connect.NewRequest(&trailv1.GetAggregateAtRequest{AggregateType: aggType, AggregateId: id, Position: pos})))
		data, err := protojson.Marshal(r.State)
		if err != nil {
			t.Fatal(err)
		}
		if err := protojson.Unmarshal(data, got); err != nil {
			t.Fatal(err)
		}
		if r.Position != pos || !proto.Equal(got, live) {
			t.Fatalf("%s at %d (last event %d):\n%v\nlive it was\n%v", aggType, pos, r.Position, got, live)
		}
	}
	t.Logf("%d remediation and %d change states; interaction %v", len(remediations), len(changes), got)
	for _, r := range remediations {
		check("patching.remediation", v.RemediationId, r.GetPosition(), r, &patchingv1.Remediation{})
	}
	for _, c := range changes {
		check("changeadvisory.change", changeID, c.GetPosition(), c, &changeadvisoryv1.Change{})
	}
}

// subsequence is want's elements in the order they occur in got.
func subsequence(got, want []string) []string {
	var out []string
	for _, g := range got {
		if len(out) < len(want) && g == want[len(out)] {
			out = append(out, g)
		}
	}
	return out
}
