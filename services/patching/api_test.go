package patching_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/jsmplatform/jsm/libs/auth"
	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/rpc"
	"github.com/jsmplatform/jsm/libs/testkit"
	changeadvisoryv1 "github.com/jsmplatform/jsm/proto/gen/jsm/changeadvisory/v1"
	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1/contractsv1connect"
	patchingv1 "github.com/jsmplatform/jsm/proto/gen/jsm/patching/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/patching/v1/patchingv1connect"
	"github.com/jsmplatform/jsm/services/contracts"
	"github.com/jsmplatform/jsm/services/patching"
	readmodel "github.com/jsmplatform/jsm/services/patching/projection"
)

func TestMain(m *testing.M) { testkit.Main(m) }

var ctx = context.Background()

const (
	customer = "acme"
	provider = "itsec"
)

type platform struct {
	t     *testing.T
	store *eventstore.Store
	clock *testkit.Clock
	svc   *patching.Service
	deps  patching.Deps
	srv   *testkit.Services
}

func start(t *testing.T) *platform {
	t.Helper()
	n := testkit.StartNATS(t)
	p := &platform{t: t, store: n.Store(), clock: testkit.NewClock(time.Now().UTC())} // nanoseconds, as in production
	pool := testkit.PostgresPool(t)
	c, err := contracts.New(ctx, contracts.Deps{Store: p.store, Pool: pool, ReadWait: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	p.deps = patching.Deps{Store: p.store, Pool: pool, Now: p.clock.Now, ReadWait: 2 * time.Second, SchedulerEvery: -1}
	p.svc = p.restart()
	p.srv = testkit.Serve(t, c, p.svc)
	return p
}

// restart builds another instance on the same stream, database and clock.
func (p *platform) restart() *patching.Service {
	svc, err := patching.New(ctx, p.deps)
	if err != nil {
		p.t.Fatal(err)
	}
	return svc
}

func (p *platform) client(org string) patchingv1connect.PatchServiceClient {
	return patchingv1connect.NewPatchServiceClient(http.DefaultClient, p.srv.URL, p.srv.As(org, "security-officer"))
}

// contract is signed by both with a 7-day deadline for critical vulnerabilities.
func (p *platform) contract() string {
	t := p.t
	c := contractsv1connect.NewContractServiceClient(http.DefaultClient, p.srv.URL, p.srv.As(customer, "org-admin"))
	pr := contractsv1connect.NewContractServiceClient(http.DefaultClient, p.srv.URL, p.srv.As(provider, "org-admin"))
	d := testkit.Must[contractsv1.DraftContractResponse](t)(c.DraftContract(ctx, connect.NewRequest(&contractsv1.DraftContractRequest{CustomerOrgId: customer, ProviderOrgId: provider, Title: "Managed servers"})))
	testkit.Must[contractsv1.SetServiceLevelsResponse](t)(c.SetServiceLevels(ctx, connect.NewRequest(&contractsv1.SetServiceLevelsRequest{
		ContractId: d.ContractId, PatchDeadlines: []*contractsv1.SeverityDeadline{{Severity: commonv1.Severity_SEVERITY_CRITICAL, Within: durationpb.New(7 * 24 * time.Hour)}},
	})))
	testkit.Must[contractsv1.SignContractResponse](t)(c.SignContract(ctx, connect.NewRequest(&contractsv1.SignContractRequest{ContractId: d.ContractId})))
	testkit.Must[contractsv1.SignContractResponse](t)(pr.SignContract(ctx, connect.NewRequest(&contractsv1.SignContractRequest{ContractId: d.ContractId})))
	return d.ContractId
}

func apache(id, version string) *patchingv1.Asset {
	return &patchingv1.Asset{AssetId: id, Name: "web " + id, Environment: patchingv1.Environment_ENVIRONMENT_PRODUCTION,
		Software: []*patchingv1.Software{{Product: "Apache HTTP Server", Version: version}, {Product: "openssl", Version: "3.0.13"}}}
}

func (p *platform) vulnerability(contractID, cve string) *patchingv1.RegisterVulnerabilityResponse {
	return testkit.Must[patchingv1.RegisterVulnerabilityResponse](p.t)(p.client(customer).RegisterVulnerability(ctx, connect.NewRequest(&patchingv1.RegisterVulnerabilityRequest{
		ContractId: contractID, CveId: cve, Severity: commonv1.Severity_SEVERITY_CRITICAL, Product: "apache http server",
		AffectedVersions: []string{">= 2.4.0, < 2.4.58"}, CvssScore: 9.8, KnownExploited: true,
	})))
}

func (p *platform) get(org, id string, minPosition uint64) *patchingv1.Remediation {
	p.t.Helper()
	return testkit.Must[patchingv1.GetRemediationResponse](p.t)(p.client(org).GetRemediation(ctx, connect.NewRequest(&patchingv1.GetRemediationRequest{RemediationId: id, MinPosition: minPosition}))).Remediation
}

// changeEvent appends a change advisory event as that service would.
func (p *platform) changeEvent(changeID string, actorOrg string, m proto.Message) event.Event {
	p.t.Helper()
	e, err := event.New(event.Envelope{
		ID: event.NewID(), Source: "/jsm/changeadvisory", AggregateType: "changeadvisory.change", AggregateID: changeID,
		Actor: event.Actor{Org: actorOrg, User: actorOrg + "-user"}, Time: p.clock.Now(),
	}, m)
	if err != nil {
		p.t.Fatal(err)
	}
	version, err := p.store.Version(ctx, "changeadvisory.change", changeID)
	if err != nil {
		p.t.Fatal(err)
	}
	pos, err := p.store.Append(ctx, version, e)
	if err != nil {
		p.t.Fatal(err)
	}
	e.Position = pos
	return e
}

// eventually polls the remediation until ok holds.
func (p *platform) eventually(id string, ok func(*patchingv1.Remediation) bool) *patchingv1.Remediation {
	p.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		last, _ := p.store.LastPosition(ctx)
		r := p.get(provider, id, last)
		if ok(r) {
			return r
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("remediation never got there: %v", r)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// redeliver hands every event of the change to the reactions again and
// checks that the remediation got no new event.
func (p *platform) redeliver(changeID, remediationID string) {
	p.t.Helper()
	before, err := p.store.Load(ctx, readmodel.RemediationType, remediationID, 0)
	if err != nil {
		p.t.Fatal(err)
	}
	evs, err := p.store.Load(ctx, "changeadvisory.change", changeID, 0)
	if err != nil {
		p.t.Fatal(err)
	}
	for _, e := range evs {
		m, err := e.Decode()
		if err != nil {
			p.t.Fatal(err)
		}
		if err := p.svc.Commands().React(ctx, e, m); err != nil {
			p.t.Fatalf("redelivered %s: %v", e.Type, err)
		}
	}
	after, err := p.store.Load(ctx, readmodel.RemediationType, remediationID, 0)
	if err != nil {
		p.t.Fatal(err)
	}
	if len(after) != len(before) {
		p.t.Fatalf("%d change events redelivered: the remediation went from %d to %d events", len(evs), len(before), len(after))
	}
}

func countEvents(t *testing.T, store *eventstore.Store, id, typ string) int {
	t.Helper()
	return testkit.CountEvents(t, store, readmodel.RemediationType, id, typ)
}

func TestVulnerabilityToVerifiedFixThroughAnApprovedChange(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	cust, prov := p.client(customer), p.client(provider)
	testkit.Must[patchingv1.RegisterAssetsResponse](t)(prov.RegisterAssets(ctx, connect.NewRequest(&patchingv1.RegisterAssetsRequest{
		ContractId: contractID, Assets: []*patchingv1.Asset{apache("web-1", "2.4.57"), apache("web-2", "2.4.41"), apache("web-3", "2.4.58")},
	})))
	v := p.vulnerability(contractID, "CVE-2024-38476")
	if got := v.AffectedAssetIds; len(got) != 2 || got[0] != "web-1" || got[1] != "web-2" {
		t.Fatalf("affected %v, want web-1 and web-2 (2.4.58 is fixed)", got)
	}
	if want := p.clock.Now().Truncate(time.Microsecond).Add(7 * 24 * time.Hour); !v.DueAt.AsTime().Equal(want) {
		t.Fatalf("due %s, want %s (the contract's 7 days for critical)", v.DueAt.AsTime(), want)
	}
	again := p.vulnerability(contractID, "CVE-2024-38476") // the same CVE again: the same remediation, nothing new
	if again.RemediationId != v.RemediationId || again.Position != v.Position {
		t.Fatalf("registered again: %v, first %v", again, v)
	}

	_, err := cust.ReleasePatch(ctx, connect.NewRequest(&patchingv1.ReleasePatchRequest{RemediationId: v.RemediationId, Kind: patchingv1.FixKind_FIX_KIND_PATCH, Reference: "httpd 2.4.62"}))
	testkit.Code(t, connect.CodePermissionDenied, err)
	rel := testkit.Must[patchingv1.ReleasePatchResponse](t)(prov.ReleasePatch(ctx, connect.NewRequest(&patchingv1.ReleasePatchRequest{
		RemediationId: v.RemediationId, Kind: patchingv1.FixKind_FIX_KIND_PATCH, Reference: "httpd 2.4.62", TestSummary: "staging, 2 days",
	})))
	if st := p.get(customer, v.RemediationId, rel.Position).GetStatus(); st != patchingv1.RemediationStatus_REMEDIATION_STATUS_PATCH_RELEASED {
		t.Fatalf("after release: %s", st)
	}

	changeID := event.NewID()
	_, err = prov.RecordPatchApplied(ctx, connect.NewRequest(&patchingv1.RecordPatchAppliedRequest{RemediationId: v.RemediationId, ChangeId: changeID, AssetIds: []string{"web-1"}}))
	testkit.Code(t, connect.CodeFailedPrecondition, err) // no approved change yet

	link := []*changeadvisoryv1.LinkedObject{{Kind: "patching.remediation", Id: v.RemediationId, Items: []string{"web-1", "web-2"}}}
	p.changeEvent(changeID, provider, &changeadvisoryv1.ChangeRequested{ChangeId: changeID, ContractId: contractID, Links: link})
	p.eventually(v.RemediationId, func(r *patchingv1.Remediation) bool { return len(r.GetChanges()) == 1 })
	approved := p.changeEvent(changeID, customer, &changeadvisoryv1.ChangeApproved{ChangeId: changeID, ContractId: contractID, Links: link})
	p.eventually(v.RemediationId, func(r *patchingv1.Remediation) bool {
		return r.GetStatus() == patchingv1.RemediationStatus_REMEDIATION_STATUS_ROLLOUT_APPROVED
	})

	// Redelivered, the approval changes nothing.
	if err := p.svc.Commands().React(ctx, approved, &changeadvisoryv1.ChangeApproved{ChangeId: changeID, ContractId: contractID, Links: link}); err != nil {
		t.Fatal(err)
	}
	if n := countEvents(t, p.store, v.RemediationId, "jsm.patching.v1.RolloutApproved"); n != 1 {
		t.Fatalf("%d RolloutApproved events, want 1", n)
	}

	testkit.Must[patchingv1.RecordPatchAppliedResponse](t)(prov.RecordPatchApplied(ctx, connect.NewRequest(&patchingv1.RecordPatchAppliedRequest{
		RemediationId: v.RemediationId, ChangeId: changeID, AssetIds: []string{"web-1"}, BackupReference: "snap-0815",
	})))
	p.changeEvent(changeID, provider, &changeadvisoryv1.ChangeImplemented{ChangeId: changeID, ContractId: contractID, Success: true, Links: link})
	p.eventually(v.RemediationId, func(r *patchingv1.Remediation) bool {
		return len(r.GetChanges()) == 1 && r.GetChanges()[0].GetState() == "implemented"
	})
	ver := testkit.Must[patchingv1.VerifyPatchResponse](t)(cust.VerifyPatch(ctx, connect.NewRequest(&patchingv1.VerifyPatchRequest{
		RemediationId: v.RemediationId, AssetIds: []string{"web-1", "web-2"}, Success: true, Notes: "scanner clean",
	})))
	if ver.Status != patchingv1.RemediationStatus_REMEDIATION_STATUS_FIXED {
		t.Fatalf("after verification: %s", ver.Status)
	}
	r := p.get(customer, v.RemediationId, ver.Position)
	for _, a := range r.GetAssets() {
		if a.GetStatus() != patchingv1.AssetPatchStatus_ASSET_PATCH_STATUS_VERIFIED || a.GetChangeId() != changeID {
			t.Fatalf("asset %v: want verified through change %s", a, changeID)
		}
	}
	if r.GetAssets()[0].GetBackupReference() != "snap-0815" {
		t.Fatalf("web-1's backup reference %q, want snap-0815", r.GetAssets()[0].GetBackupReference())
	}

	// Every event of the change delivered again (as after a crash before
	// the acks) changes nothing.
	p.redeliver(changeID, v.RemediationId)

	// The register per asset.
	list := testkit.Must[patchingv1.ListRemediationsResponse](t)(cust.ListRemediations(ctx, connect.NewRequest(&patchingv1.ListRemediationsRequest{AssetId: "web-2", Status: patchingv1.RemediationStatus_REMEDIATION_STATUS_FIXED})))
	if len(list.Remediations) != 1 {
		t.Fatalf("register for web-2, fixed: %v", list.Remediations)
	}
	none := testkit.Must[patchingv1.ListRemediationsResponse](t)(cust.ListRemediations(ctx, connect.NewRequest(&patchingv1.ListRemediationsRequest{AssetId: "web-3"})))
	if len(none.Remediations) != 0 {
		t.Fatalf("web-3 is not affected, register shows %v", none.Remediations)
	}
}

func TestOtherOrgsSeeNothing(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	testkit.Must[patchingv1.RegisterAssetsResponse](t)(p.client(provider).RegisterAssets(ctx, connect.NewRequest(&patchingv1.RegisterAssetsRequest{
		ContractId: contractID, Assets: []*patchingv1.Asset{apache("web-1", "2.4.57")},
	})))
	v := p.vulnerability(contractID, "CVE-2024-38476")
	outsider := p.client("mallory")
	_, err := outsider.GetRemediation(ctx, connect.NewRequest(&patchingv1.GetRemediationRequest{RemediationId: v.RemediationId, MinPosition: v.Position}))
	testkit.Code(t, connect.CodeNotFound, err)
	_, err = outsider.VerifyPatch(ctx, connect.NewRequest(&patchingv1.VerifyPatchRequest{RemediationId: v.RemediationId, AssetIds: []string{"web-1"}, Success: true}))
	testkit.Code(t, connect.CodeNotFound, err)
	_, err = outsider.RegisterAssets(ctx, connect.NewRequest(&patchingv1.RegisterAssetsRequest{ContractId: contractID, Assets: []*patchingv1.Asset{apache("evil", "1")}}))
	testkit.Code(t, connect.CodeNotFound, err)
	_, err = outsider.RegisterVulnerability(ctx, connect.NewRequest(&patchingv1.RegisterVulnerabilityRequest{
		ContractId: contractID, CveId: "CVE-2024-0001", Severity: commonv1.Severity_SEVERITY_LOW, Product: "x", AffectedVersions: []string{"1"},
	}))
	testkit.Code(t, connect.CodeNotFound, err)
	assets := testkit.Must[patchingv1.ListAssetsResponse](t)(outsider.ListAssets(ctx, connect.NewRequest(&patchingv1.ListAssetsRequest{ContractId: contractID, MinPosition: v.Position})))
	if len(assets.Assets) != 0 {
		t.Fatalf("outsider lists %d assets", len(assets.Assets))
	}
	list := testkit.Must[patchingv1.ListRemediationsResponse](t)(outsider.ListRemediations(ctx, connect.NewRequest(&patchingv1.ListRemediationsRequest{MinPosition: v.Position})))
	if len(list.Remediations) != 0 {
		t.Fatalf("outsider lists %d remediations", len(list.Remediations))
	}

	before, _ := p.store.LastPosition(ctx)
	prov := p.client(provider)
	for name, err := range map[string]error{
		"bad version range": func() error {
			_, err := prov.RegisterVulnerability(ctx, connect.NewRequest(&patchingv1.RegisterVulnerabilityRequest{
				ContractId: contractID, CveId: "CVE-2024-0002", Severity: commonv1.Severity_SEVERITY_LOW, Product: "x", AffectedVersions: []string{">= banana"},
			}))
			return err
		}(),
		"bad cve id": func() error {
			_, err := prov.RegisterVulnerability(ctx, connect.NewRequest(&patchingv1.RegisterVulnerabilityRequest{
				ContractId: contractID, CveId: "CVE-1", Severity: commonv1.Severity_SEVERITY_LOW, Product: "x", AffectedVersions: []string{"1"},
			}))
			return err
		}(),
		"duplicate asset ids": func() error {
			_, err := prov.RegisterAssets(ctx, connect.NewRequest(&patchingv1.RegisterAssetsRequest{ContractId: contractID, Assets: []*patchingv1.Asset{apache("a", "1"), apache("a", "2")}}))
			return err
		}(),
		"owner not a party": func() error {
			a := apache("b", "1")
			a.OwnerOrgId = "mallory"
			_, err := prov.RegisterAssets(ctx, connect.NewRequest(&patchingv1.RegisterAssetsRequest{ContractId: contractID, Assets: []*patchingv1.Asset{a}}))
			return err
		}(),
		"verify an unaffected asset": func() error {
			_, err := prov.VerifyPatch(ctx, connect.NewRequest(&patchingv1.VerifyPatchRequest{RemediationId: v.RemediationId, AssetIds: []string{"nope"}, Success: true}))
			return err
		}(),
	} {
		t.Run(name, func(t *testing.T) { testkit.Code(t, connect.CodeInvalidArgument, err) })
	}
	if after, _ := p.store.LastPosition(ctx); after != before {
		t.Fatalf("rejected requests moved the stream from %d to %d", before, after)
	}
}

func TestDeferralAcceptedThenExpiredAndOverdueOnce(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	testkit.Must[patchingv1.RegisterAssetsResponse](t)(p.client(provider).RegisterAssets(ctx, connect.NewRequest(&patchingv1.RegisterAssetsRequest{
		ContractId: contractID, Assets: []*patchingv1.Asset{apache("web-1", "2.4.57")},
	})))
	v := p.vulnerability(contractID, "CVE-2024-38476")
	due := v.DueAt.AsTime()

	p.clock.Advance(24 * time.Hour) // six days left
	d := testkit.Must[patchingv1.RequestDeferralResponse](t)(p.client(provider).RequestDeferral(ctx, connect.NewRequest(&patchingv1.RequestDeferralRequest{
		RemediationId: v.RemediationId, Reason: "vendor patch breaks the shop", Risk: "WAF rule in place", Until: timestamppb.New(p.clock.Now().Add(10 * 24 * time.Hour)),
	})))
	_, err := p.client(provider).DecideDeferral(ctx, connect.NewRequest(&patchingv1.DecideDeferralRequest{RemediationId: v.RemediationId, DeferralId: d.DeferralId, Accept: true}))
	testkit.Code(t, connect.CodePermissionDenied, err) // the customer accepts the risk, not the provider
	acc := testkit.Must[patchingv1.DecideDeferralResponse](t)(p.client(customer).DecideDeferral(ctx, connect.NewRequest(&patchingv1.DecideDeferralRequest{
		RemediationId: v.RemediationId, DeferralId: d.DeferralId, Accept: true, Comment: "accepted until the release",
	})))
	until := p.clock.Now().Add(10 * 24 * time.Hour)
	if st := p.get(customer, v.RemediationId, acc.Position).GetStatus(); st != patchingv1.RemediationStatus_REMEDIATION_STATUS_DEFERRED {
		t.Fatalf("after acceptance: %s", st)
	}

	tick := func() int {
		t.Helper()
		n, err := p.svc.Scheduler().Tick(ctx)
		if err != nil {
			t.Fatal(err)
		}
		last, _ := p.store.LastPosition(ctx)
		p.get(customer, v.RemediationId, last) // let the read model catch up
		return n
	}
	p.clock.Advance(8 * 24 * time.Hour) // past the original due date, but deferred
	if n := tick(); n != 0 || due.After(p.clock.Now()) {
		t.Fatalf("while deferred the scheduler recorded %d", n)
	}
	p.clock.Advance(until.Sub(p.clock.Now())) // the deferral runs out: the clock runs again
	if n := tick(); n != 1 {
		t.Fatalf("at the deferral's end the scheduler recorded %d, want the expiry", n)
	}
	r := p.get(customer, v.RemediationId, 0)
	if want := until.Add(6 * 24 * time.Hour); !r.GetDueAt().AsTime().Equal(want) || r.GetStatus() != patchingv1.RemediationStatus_REMEDIATION_STATUS_OPEN {
		t.Fatalf("after expiry due %s status %s, want %s (the six days left) and open", r.GetDueAt().AsTime(), r.GetStatus(), want)
	}

	p.clock.Advance(6*24*time.Hour + time.Second)
	if n := tick(); n != 1 {
		t.Fatalf("past the new due date the scheduler recorded %d, want 1", n)
	}
	if n := tick(); n != 0 {
		t.Fatalf("a second tick recorded %d", n)
	}
	if n, err := p.restart().Scheduler().Tick(ctx); err != nil || n != 0 {
		t.Fatalf("after a restart the scheduler recorded %d (%v)", n, err)
	}
	if n := countEvents(t, p.store, v.RemediationId, "jsm.patching.v1.RemediationOverdue"); n != 1 {
		t.Fatalf("%d RemediationOverdue events, want 1", n)
	}
	r = p.get(customer, v.RemediationId, 0)
	if !r.GetOverdue() || len(r.GetOverdueAssetIds()) != 1 || r.GetOverdueAssetIds()[0] != "web-1" {
		t.Fatalf("remediation %v: want overdue with web-1 unfixed", r)
	}
	overdue := testkit.Must[patchingv1.ListRemediationsResponse](t)(p.client(customer).ListRemediations(ctx, connect.NewRequest(&patchingv1.ListRemediationsRequest{OverdueOnly: true})))
	if len(overdue.Remediations) != 1 {
		t.Fatalf("overdue register: %v", overdue.Remediations)
	}
}

func TestRetiredAssetNeedsNoFix(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	prov := p.client(provider)
	testkit.Must[patchingv1.RegisterAssetsResponse](t)(prov.RegisterAssets(ctx, connect.NewRequest(&patchingv1.RegisterAssetsRequest{
		ContractId: contractID, Assets: []*patchingv1.Asset{apache("web-1", "2.4.57"), apache("web-2", "2.4.57"), apache("web-3", "2.4.57")},
	})))
	v := p.vulnerability(contractID, "CVE-2024-38476")
	before, _ := p.store.LastPosition(ctx)
	_, err := prov.RetireAsset(ctx, connect.NewRequest(&patchingv1.RetireAssetRequest{ContractId: contractID, AssetIds: []string{"web-2", "nope"}}))
	testkit.Code(t, connect.CodeNotFound, err) // all or none
	_, err = prov.RetireAsset(ctx, connect.NewRequest(&patchingv1.RetireAssetRequest{ContractId: contractID}))
	testkit.Code(t, connect.CodeInvalidArgument, err)
	if after, _ := p.store.LastPosition(ctx); after != before {
		t.Fatalf("refused retirements moved the stream from %d to %d", before, after)
	}
	testkit.Must[patchingv1.RetireAssetResponse](t)(prov.RetireAsset(ctx, connect.NewRequest(&patchingv1.RetireAssetRequest{
		ContractId: contractID, AssetId: "web-2", AssetIds: []string{"web-3"}, Reason: "decommissioned",
	})))
	r := p.eventually(v.RemediationId, func(r *patchingv1.Remediation) bool {
		return len(r.GetAssets()) == 3 && r.GetAssets()[1].GetStatus() == patchingv1.AssetPatchStatus_ASSET_PATCH_STATUS_RETIRED &&
			r.GetAssets()[2].GetStatus() == patchingv1.AssetPatchStatus_ASSET_PATCH_STATUS_RETIRED
	})
	if r.GetAssets()[0].GetStatus() != patchingv1.AssetPatchStatus_ASSET_PATCH_STATUS_PENDING {
		t.Fatalf("web-1 %v, want still pending", r.GetAssets()[0])
	}
	// A vulnerability registered afterwards does not match the retired asset.
	later := testkit.Must[patchingv1.RegisterVulnerabilityResponse](t)(p.client(customer).RegisterVulnerability(ctx, connect.NewRequest(&patchingv1.RegisterVulnerabilityRequest{
		ContractId: contractID, CveId: "CVE-2024-99999", Severity: commonv1.Severity_SEVERITY_HIGH, Product: "apache http server", AffectedVersions: []string{"2.4.57"},
	})))
	if len(later.AffectedAssetIds) != 1 || later.AffectedAssetIds[0] != "web-1" {
		t.Fatalf("affected %v, want only web-1", later.AffectedAssetIds)
	}
	assets := testkit.Must[patchingv1.ListAssetsResponse](t)(prov.ListAssets(ctx, connect.NewRequest(&patchingv1.ListAssetsRequest{ContractId: contractID})))
	if len(assets.Assets) != 1 {
		t.Fatalf("inventory in service: %v", assets.Assets)
	}
}

// A command retried with the same request_id is applied once and answers
// with the first result; the key belongs to its procedure and caller.
func TestRetriedRequestsApplyOnce(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	prov, cust := p.client(provider), p.client(customer)

	register := &patchingv1.RegisterAssetsRequest{ContractId: contractID, Assets: []*patchingv1.Asset{apache("web-1", "2.4.57")}, RequestId: "cmdb-sync-1"}
	a1 := testkit.Must[patchingv1.RegisterAssetsResponse](t)(prov.RegisterAssets(ctx, connect.NewRequest(register)))
	a2 := testkit.Must[patchingv1.RegisterAssetsResponse](t)(prov.RegisterAssets(ctx, connect.NewRequest(register)))
	if a1.Position != a2.Position {
		t.Fatalf("retried RegisterAssets at %d, first at %d", a2.Position, a1.Position)
	}
	if n := testkit.CountEvents(t, p.store, readmodel.InventoryType, contractID, "jsm.patching.v1.AssetsRegistered"); n != 1 {
		t.Fatalf("%d AssetsRegistered events, want 1", n)
	}

	vuln := &patchingv1.RegisterVulnerabilityRequest{
		ContractId: contractID, CveId: "CVE-2024-38476", Severity: commonv1.Severity_SEVERITY_CRITICAL, Product: "apache http server",
		AffectedVersions: []string{"2.4.57"}, RequestId: "feed-7",
	}
	v1 := testkit.Must[patchingv1.RegisterVulnerabilityResponse](t)(cust.RegisterVulnerability(ctx, connect.NewRequest(vuln)))
	v2 := testkit.Must[patchingv1.RegisterVulnerabilityResponse](t)(cust.RegisterVulnerability(ctx, connect.NewRequest(vuln)))
	if !proto.Equal(v1, v2) || len(v1.AffectedAssetIds) != 1 {
		t.Fatalf("retried RegisterVulnerability answered %v, first %v", v2, v1)
	}

	release := &patchingv1.ReleasePatchRequest{RemediationId: v1.RemediationId, Kind: patchingv1.FixKind_FIX_KIND_PATCH, Reference: "httpd 2.4.62", RequestId: "rel-1"}
	r1 := testkit.Must[patchingv1.ReleasePatchResponse](t)(prov.ReleasePatch(ctx, connect.NewRequest(release)))
	r2 := testkit.Must[patchingv1.ReleasePatchResponse](t)(prov.ReleasePatch(ctx, connect.NewRequest(release)))
	if r1.Position != r2.Position {
		t.Fatalf("retried ReleasePatch at %d, first at %d", r2.Position, r1.Position)
	}
	if n := countEvents(t, p.store, v1.RemediationId, "jsm.patching.v1.PatchReleased"); n != 1 {
		t.Fatalf("%d PatchReleased events, want 1", n)
	}

	// The same key for another procedure is another request.
	deferral := &patchingv1.RequestDeferralRequest{RemediationId: v1.RemediationId, Reason: "freeze", Until: timestamppb.New(p.clock.Now().Add(48 * time.Hour)), RequestId: "rel-1"}
	d1 := testkit.Must[patchingv1.RequestDeferralResponse](t)(prov.RequestDeferral(ctx, connect.NewRequest(deferral)))
	d2 := testkit.Must[patchingv1.RequestDeferralResponse](t)(prov.RequestDeferral(ctx, connect.NewRequest(deferral)))
	if d1.Position <= r1.Position || d1.DeferralId != d2.DeferralId || d1.Position != d2.Position {
		t.Fatalf("deferral %v then %v after the release at %d", d1, d2, r1.Position)
	}
	if n := countEvents(t, p.store, v1.RemediationId, "jsm.patching.v1.DeferralRequested"); n != 1 {
		t.Fatalf("%d DeferralRequested events, want 1", n)
	}
	// The same key from another caller is another request too.
	dec := testkit.Must[patchingv1.DecideDeferralResponse](t)(cust.DecideDeferral(ctx, connect.NewRequest(&patchingv1.DecideDeferralRequest{
		RemediationId: v1.RemediationId, DeferralId: d1.DeferralId, Accept: true, RequestId: "rel-1",
	})))
	if dec.Position <= d1.Position {
		t.Fatalf("the customer's decision at %d, the deferral at %d", dec.Position, d1.Position)
	}
	if st := p.get(provider, v1.RemediationId, dec.Position).GetStatus(); st != patchingv1.RemediationStatus_REMEDIATION_STATUS_DEFERRED {
		t.Fatalf("after the decision: %s", st)
	}
}

// Queries wait for min_position (read your writes); a position beyond the
// stream is a bad argument, and a read model that does not get there in
// time answers unavailable.
func TestReadsWaitForMinPosition(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	prov := p.client(provider)
	a := testkit.Must[patchingv1.RegisterAssetsResponse](t)(prov.RegisterAssets(ctx, connect.NewRequest(&patchingv1.RegisterAssetsRequest{
		ContractId: contractID, Assets: []*patchingv1.Asset{apache("web-1", "2.4.57")},
	})))
	// Right after the write, the list at its position has the asset.
	list := testkit.Must[patchingv1.ListAssetsResponse](t)(prov.ListAssets(ctx, connect.NewRequest(&patchingv1.ListAssetsRequest{ContractId: contractID, MinPosition: a.Position})))
	if len(list.Assets) != 1 || list.Assets[0].GetAsset().GetAssetId() != "web-1" {
		t.Fatalf("assets at %d: %v", a.Position, list.Assets)
	}
	v := p.vulnerability(contractID, "CVE-2024-38476")
	if r := p.get(customer, v.RemediationId, v.Position); r.GetStatus() != patchingv1.RemediationStatus_REMEDIATION_STATUS_OPEN {
		t.Fatalf("remediation at %d: %v", v.Position, r)
	}
	_, err := prov.GetRemediation(ctx, connect.NewRequest(&patchingv1.GetRemediationRequest{RemediationId: v.RemediationId, MinPosition: v.Position + 1000}))
	testkit.Code(t, connect.CodeInvalidArgument, err)

	// An instance whose projector does not run never reaches the position.
	stalled := p.restart()
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := auth.NewVerifier(auth.VerifierConfig{Issuer: auth.DevIssuer, Audience: auth.DevAudience, Keys: []crypto.PublicKey{pub}})
	if err != nil {
		t.Fatal(err)
	}
	interceptors, err := rpc.Interceptors(verifier, stalled.Policy(), nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for _, h := range stalled.Handlers(interceptors) {
		mux.Handle(h.Path, h.Handler)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	tok, err := auth.Mint(key, auth.DevIssuer, auth.DevAudience, auth.Principal{Org: provider, User: "bob", Roles: []string{"security-officer"}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	lagging := patchingv1connect.NewPatchServiceClient(http.DefaultClient, srv.URL, connect.WithInterceptors(testkit.Bearer(tok)))
	_, err = lagging.GetRemediation(ctx, connect.NewRequest(&patchingv1.GetRemediationRequest{RemediationId: v.RemediationId, MinPosition: v.Position}))
	testkit.Code(t, connect.CodeUnavailable, err)
	_, err = lagging.ListRemediations(ctx, connect.NewRequest(&patchingv1.ListRemediationsRequest{MinPosition: v.Position}))
	testkit.Code(t, connect.CodeUnavailable, err)
	_, err = lagging.ListAssets(ctx, connect.NewRequest(&patchingv1.ListAssetsRequest{ContractId: contractID, MinPosition: a.Position}))
	testkit.Code(t, connect.CodeUnavailable, err)
}

// The customer's rejection of the change stops the rollout: no asset can
// be patched through it, and delivered again it changes nothing.
func TestCustomerRejectionStopsTheRollout(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	prov := p.client(provider)
	testkit.Must[patchingv1.RegisterAssetsResponse](t)(prov.RegisterAssets(ctx, connect.NewRequest(&patchingv1.RegisterAssetsRequest{
		ContractId: contractID, Assets: []*patchingv1.Asset{apache("web-1", "2.4.57")},
	})))
	v := p.vulnerability(contractID, "CVE-2024-38476")
	testkit.Must[patchingv1.ReleasePatchResponse](t)(prov.ReleasePatch(ctx, connect.NewRequest(&patchingv1.ReleasePatchRequest{
		RemediationId: v.RemediationId, Kind: patchingv1.FixKind_FIX_KIND_PATCH, Reference: "httpd 2.4.62",
	})))
	changeID := event.NewID()
	link := []*changeadvisoryv1.LinkedObject{{Kind: "patching.remediation", Id: v.RemediationId, Items: []string{"web-1"}}}
	p.changeEvent(changeID, provider, &changeadvisoryv1.ChangeRequested{ChangeId: changeID, ContractId: contractID, Links: link})
	p.changeEvent(changeID, provider, &changeadvisoryv1.ChangeApprovalGiven{ChangeId: changeID, OrgId: provider})
	p.changeEvent(changeID, customer, &changeadvisoryv1.ChangeRejected{ChangeId: changeID, ContractId: contractID, OrgId: customer, Reason: "sales week", Links: link})
	r := p.eventually(v.RemediationId, func(r *patchingv1.Remediation) bool {
		return len(r.GetChanges()) == 1 && r.GetChanges()[0].GetState() == "rejected"
	})
	if r.GetStatus() != patchingv1.RemediationStatus_REMEDIATION_STATUS_PATCH_RELEASED {
		t.Fatalf("after the rejection: %s, want the patch released and waiting for another change", r.GetStatus())
	}
	if n := countEvents(t, p.store, v.RemediationId, "jsm.patching.v1.RolloutRejected"); n != 1 {
		t.Fatalf("%d RolloutRejected events, want 1", n)
	}
	_, err := prov.RecordPatchApplied(ctx, connect.NewRequest(&patchingv1.RecordPatchAppliedRequest{RemediationId: v.RemediationId, ChangeId: changeID, AssetIds: []string{"web-1"}}))
	testkit.Code(t, connect.CodeFailedPrecondition, err)
	p.redeliver(changeID, v.RemediationId)
	if got := p.get(customer, v.RemediationId, 0).GetAssets(); len(got) != 1 || got[0].GetStatus() != patchingv1.AssetPatchStatus_ASSET_PATCH_STATUS_PENDING {
		t.Fatalf("assets after the rejection: %v", got)
	}
}
