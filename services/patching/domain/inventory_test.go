package domain_test

import (
	"errors"
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"

	patchingv1 "github.com/jsmplatform/jsm/proto/gen/jsm/patching/v1"
	"github.com/jsmplatform/jsm/services/patching/domain"
)

// ---- inventory fixtures -----------------------------------------------------

func software(pv ...string) []*patchingv1.Software {
	var out []*patchingv1.Software
	for i := 0; i+1 < len(pv); i += 2 {
		out = append(out, &patchingv1.Software{Product: pv[i], Version: pv[i+1]})
	}
	return out
}

// web1 runs Apache and OpenSSL, owned by no one named (the provider).
func web1() *patchingv1.Asset {
	return &patchingv1.Asset{
		AssetId: "web-1", Name: "web server 1",
		Environment: patchingv1.Environment_ENVIRONMENT_PRODUCTION, Criticality: patchingv1.Criticality_CRITICALITY_HIGH,
		Software: software(product, "2.4.57", "OpenSSL", "1.1.1w"),
	}
}

// db1 is the customer's database, without software listed.
func db1() *patchingv1.Asset {
	return &patchingv1.Asset{AssetId: "db-1", Name: "database", OwnerOrgId: string(customer)}
}

func ownedBy(a *patchingv1.Asset, org domain.OrgID) *patchingv1.Asset {
	a.OwnerOrgId = string(org)
	return a
}

func registerAssets(org domain.OrgID, assets ...*patchingv1.Asset) *domain.RegisterAssets {
	return &domain.RegisterAssets{By: by(org, base), Contract: terms(), Assets: assets}
}

func retire(org domain.OrgID, id string, exists, retired bool) *domain.RetireAsset {
	return &domain.RetireAsset{By: by(org, at(day)), Contract: terms(), AssetID: id, Reason: "decommissioned", Exists: exists, Retired: retired}
}

func assetsRegistered(assets ...*patchingv1.Asset) *patchingv1.AssetsRegistered {
	return &patchingv1.AssetsRegistered{ContractId: contractID, Assets: assets, CustomerOrgId: string(customer), ProviderOrgId: string(provider)}
}

func assetRetired(id string) *patchingv1.AssetRetired {
	return &patchingv1.AssetRetired{ContractId: contractID, AssetId: id, Reason: "decommissioned", CustomerOrgId: string(customer), ProviderOrgId: string(provider)}
}

type inventorySpec struct {
	name  string
	given []proto.Message
	when  domain.Command
	then  []proto.Message
	err   error
	field string
}

func runInventory(t *testing.T, specs []inventorySpec) {
	t.Helper()
	for _, c := range specs {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var s domain.Inventory
			for i, e := range c.given {
				s = domain.EvolveInventory(s, e, domain.Meta{Time: base, Position: uint64(i + 1)})
			}
			before := s
			got, err := domain.DecideInventory(s, c.when)
			if s != before {
				t.Fatalf("decide changed the state: %+v", s)
			}
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
			want := domain.Inventory{ContractID: contractID, Customer: customer, Provider: provider}
			for _, e := range got {
				s = domain.EvolveInventory(s, wire(t, e), domain.Meta{Time: at(day)})
			}
			if len(got) > 0 && s != want {
				t.Fatalf("state = %+v, want %+v", s, want)
			}
		})
	}
}

// ---- register assets --------------------------------------------------------

func TestRegisterAssets(t *testing.T) {
	t.Parallel()
	outsiderContract := func(c *domain.RegisterAssets) *domain.RegisterAssets { c.Contract.InForce = false; return c }
	runInventory(t, []inventorySpec{
		{
			name: "the provider registers assets: no owner means the provider", when: registerAssets(provider, web1(), db1()),
			then: []proto.Message{assetsRegistered(ownedBy(web1(), provider), db1())},
		},
		{
			name: "the customer registers them", when: registerAssets(customer, web1()),
			then: []proto.Message{assetsRegistered(ownedBy(web1(), provider))},
		},
		{
			name: "again: the same asset's data is replaced", given: []proto.Message{assetsRegistered(ownedBy(web1(), provider))},
			when: registerAssets(customer, ownedBy(web1(), customer)), then: []proto.Message{assetsRegistered(ownedBy(web1(), customer))},
		},
		{
			name: "only what is required", when: registerAssets(provider, &patchingv1.Asset{AssetId: "x-1", Name: "x"}),
			then: []proto.Message{assetsRegistered(&patchingv1.Asset{AssetId: "x-1", Name: "x", OwnerOrgId: string(provider)})},
		},

		{name: "no assets", when: registerAssets(provider), err: domain.ErrInvalid, field: "assets"},
		{name: "an empty list", when: &domain.RegisterAssets{By: by(provider, base), Contract: terms(), Assets: []*patchingv1.Asset{}}, err: domain.ErrInvalid, field: "assets"},
		{name: "a nil asset", when: registerAssets(provider, web1(), nil), err: domain.ErrInvalid, field: "assets[1].asset_id"},
		{name: "no asset id", when: registerAssets(provider, &patchingv1.Asset{Name: "x"}), err: domain.ErrInvalid, field: "assets[0].asset_id"},
		{name: "a blank asset id", when: registerAssets(provider, &patchingv1.Asset{AssetId: " ", Name: "x"}), err: domain.ErrInvalid, field: "assets[0].asset_id"},
		{name: "a duplicate asset id", when: registerAssets(provider, web1(), db1(), web1()), err: domain.ErrInvalid, field: "assets[2].asset_id"},
		{name: "no name", when: registerAssets(provider, db1(), &patchingv1.Asset{AssetId: "x-1"}), err: domain.ErrInvalid, field: "assets[1].name"},
		{name: "a blank name", when: registerAssets(provider, &patchingv1.Asset{AssetId: "x-1", Name: "\t"}), err: domain.ErrInvalid, field: "assets[0].name"},
		{name: "owned by an outsider", when: registerAssets(provider, ownedBy(web1(), outsider)), err: domain.ErrInvalid, field: "assets[0].owner_org_id"},
		{name: "owned by a blank org", when: registerAssets(provider, db1(), ownedBy(web1(), " ")), err: domain.ErrInvalid, field: "assets[1].owner_org_id"},
		{
			name: "software without a product",
			when: registerAssets(provider, &patchingv1.Asset{AssetId: "x-1", Name: "x", Software: software("nginx", "1.25.3", " ", "1.0")}),
			err:  domain.ErrInvalid, field: "assets[0].software[1]",
		},
		{
			name: "software without a version",
			when: registerAssets(provider, db1(), &patchingv1.Asset{AssetId: "x-1", Name: "x", Software: software("nginx", "")}),
			err:  domain.ErrInvalid, field: "assets[1].software[0]",
		},
		{
			name: "nil software",
			when: registerAssets(provider, &patchingv1.Asset{AssetId: "x-1", Name: "x", Software: []*patchingv1.Software{nil}}),
			err:  domain.ErrInvalid, field: "assets[0].software[0]",
		},
		{name: "unknown contract", when: &domain.RegisterAssets{By: by(provider, base), Assets: []*patchingv1.Asset{web1()}}, err: domain.NotFoundError{What: "contract"}},
		{name: "an outsider", when: registerAssets(outsider, web1()), err: domain.ErrNotParty},
		{name: "no org", when: registerAssets("", web1()), err: domain.ErrNotParty},
		{name: "no terms in force", when: outsiderContract(registerAssets(provider, web1())), err: domain.ErrContractNotActive},
		{name: "the contract is checked before the assets", when: registerAssets(outsider), err: domain.ErrNotParty},
	})
}

func TestRegisterAssetsLeavesItsInputAlone(t *testing.T) {
	t.Parallel()
	a := web1()
	cmd := registerAssets(provider, a)
	es, err := domain.DecideInventory(domain.Inventory{}, cmd)
	if err != nil {
		t.Fatal(err)
	}
	if a.OwnerOrgId != "" || !proto.Equal(a, web1()) {
		t.Fatalf("the command's asset changed: %v", a)
	}
	// The event does not share the command's asset.
	a.Name = "renamed"
	a.Software[0].Version = "9.9.9"
	sameEvents(t, es, []proto.Message{assetsRegistered(ownedBy(web1(), provider))})
}

// ---- retire -----------------------------------------------------------------

func TestRetireAsset(t *testing.T) {
	t.Parallel()
	known := []proto.Message{assetsRegistered(ownedBy(web1(), provider))}
	runInventory(t, []inventorySpec{
		{name: "the provider retires an asset", given: known, when: retire(provider, "web-1", true, false), then: []proto.Message{assetRetired("web-1")}},
		{name: "the customer retires it", given: known, when: retire(customer, "web-1", true, false), then: []proto.Message{assetRetired("web-1")}},
		{name: "retired already: no events", given: known, when: retire(provider, "web-1", true, true)},
		{name: "an unknown asset", given: known, when: retire(provider, "web-9", false, false), err: domain.NotFoundError{What: "asset", ID: "web-9"}},
		{name: "an outsider", given: known, when: retire(outsider, "web-1", true, false), err: domain.ErrNotParty},
		{name: "an outsider on a retired asset", given: known, when: retire(outsider, "web-1", true, true), err: domain.ErrNotParty},
		{
			name: "unknown contract", when: &domain.RetireAsset{By: by(provider, at(day)), AssetID: "web-1", Exists: true},
			err: domain.NotFoundError{What: "contract"},
		},
		{
			name: "no terms in force",
			when: func() domain.Command {
				c := retire(provider, "web-1", true, false)
				c.Contract.InForce = false
				return c
			}(),
			err: domain.ErrContractNotActive,
		},
		{name: "nil command", when: nil, err: domain.ErrInvalid, field: "command"},
		{name: "nil retirement", when: (*domain.RetireAsset)(nil), err: domain.ErrInvalid, field: "command"},
		{name: "nil registration", when: (*domain.RegisterAssets)(nil), err: domain.ErrInvalid, field: "command"},
		{name: "a remediation command", when: release(provider, at(hour)), err: domain.ErrInvalid, field: "command"},
		{name: "unknown command", when: &bogus{By: by(provider, at(hour))}, err: domain.ErrInvalid, field: "command"},
	})
}

func TestRetireUnknownAssetError(t *testing.T) {
	t.Parallel()
	_, err := domain.DecideInventory(domain.Inventory{}, retire(provider, "web-9", false, false))
	if !errors.Is(err, domain.NotFoundError{}) || errors.Is(err, domain.NotFoundError{What: "asset", ID: "web-1"}) ||
		err.Error() != "asset web-9 not found" {
		t.Fatalf("error = %v", err)
	}
}

// ---- evolve -----------------------------------------------------------------

func TestEvolveInventory(t *testing.T) {
	t.Parallel()
	want := domain.Inventory{ContractID: contractID, Customer: customer, Provider: provider}
	if got := domain.EvolveInventory(domain.Inventory{}, assetsRegistered(web1()), domain.Meta{Time: base}); got != want {
		t.Fatalf("after AssetsRegistered: %+v", got)
	}
	if got := domain.EvolveInventory(domain.Inventory{}, assetRetired("web-1"), domain.Meta{Time: base}); got != want {
		t.Fatalf("after AssetRetired: %+v", got)
	}
	for _, m := range []proto.Message{nil, vulnerabilityRegistered(), assetsAffected("web-1")} {
		if got := domain.EvolveInventory(want, m, domain.Meta{Time: base}); !reflect.DeepEqual(got, want) {
			t.Fatalf("%T changed the inventory: %+v", m, got)
		}
	}
}

func TestRetireAssetsAllOrNone(t *testing.T) {
	retire := func(ids []string, known map[string]bool) domain.Command {
		return &domain.RetireAssets{By: by(provider, at(day)), Contract: terms(), AssetIDs: ids, Reason: "decommissioned", Retired: known}
	}
	_, err := domain.DecideInventory(domain.Inventory{}, retire([]string{"web-1", "nope"}, map[string]bool{"web-1": false}))
	if !errors.Is(err, domain.NotFoundError{What: "asset", ID: "nope"}) {
		t.Fatalf("one unknown asset: %v, want not found", err)
	}
	evs, err := domain.DecideInventory(domain.Inventory{}, retire([]string{"web-1", "web-2", "web-1", "web-3"}, map[string]bool{"web-1": false, "web-2": true, "web-3": false}))
	if err != nil || len(evs) != 2 {
		t.Fatalf("got %v, %v; want web-1 and web-3 retired once each (web-2 was already)", evs, err)
	}
	for i, want := range []string{"web-1", "web-3"} {
		if got := evs[i].(*patchingv1.AssetRetired).GetAssetId(); got != want {
			t.Errorf("event %d retires %s, want %s", i, got, want)
		}
	}
}
