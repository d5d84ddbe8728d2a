package changeadvisory_test

import (
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/jsmplatform/jsm/libs/event"
	changeadvisoryv1 "github.com/jsmplatform/jsm/proto/gen/jsm/changeadvisory/v1"
	patchingv1 "github.com/jsmplatform/jsm/proto/gen/jsm/patching/v1"
)

// A released patch opens one change, linked to its remediation and assets,
// through the reactor; delivered again, it opens none.
func TestReleasedPatchOpensOneChange(t *testing.T) {
	p := start(t)
	contractID := p.contract()
	remediation := event.NewID()
	released := &patchingv1.PatchReleased{
		RemediationId: remediation, ContractId: contractID, Kind: patchingv1.FixKind_FIX_KIND_PATCH, Reference: "httpd 2.4.62",
		Emergency: true, AssetIds: []string{"web-1", "web-2"}, ReleasedAt: nil,
	}
	e, err := event.New(event.Envelope{
		ID: event.NewID(), Source: "/jsm/patching", AggregateType: "patching.remediation", AggregateID: remediation,
		Actor: event.Actor{Org: provider, User: "bob"}, Time: p.clock.Now(), Correlation: "vuln-42",
	}, released)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.store.Append(ctx, 0, e); err != nil {
		t.Fatal(err)
	}

	list := func() []*changeadvisoryv1.Change {
		return must[changeadvisoryv1.ListChangesResponse](t)(p.client(customer).ListChanges(ctx, connect.NewRequest(&changeadvisoryv1.ListChangesRequest{
			LinkedKind: "patching.remediation", LinkedId: remediation, MinPosition: p.last(),
		}))).Changes
	}
	deadline := time.Now().Add(15 * time.Second)
	for len(list()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the reactor opened no change")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Delivered again (as after a crash before the ack): nothing new.
	if err := p.changes.App().Commands.React(ctx, e, released); err != nil {
		t.Fatal(err)
	}
	changes := list()
	if len(changes) != 1 {
		t.Fatalf("%d changes for one release, want 1", len(changes))
	}
	c := changes[0]
	if !c.GetEmergency() || c.GetRequesterOrgId() != provider || len(c.GetLinks()) != 1 || len(c.GetLinks()[0].GetItems()) != 2 ||
		c.GetCategory().String() != "CHANGE_CATEGORY_SOFTWARE" {
		t.Fatalf("change %v: want an emergency software change by the provider linking both assets", c)
	}
	if n := countEvents(t, p.store, c.GetChangeId(), "jsm.changeadvisory.v1.ChangeRequested"); n != 1 {
		t.Fatalf("%d ChangeRequested events, want 1", n)
	}
	evs, err := p.store.Load(ctx, "changeadvisory.change", c.GetChangeId(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if evs[0].Correlation != "vuln-42" {
		t.Fatalf("the change's correlation %q, want the release's", evs[0].Correlation)
	}
}
