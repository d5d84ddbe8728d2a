package domain

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/jsmplatform/jsm/libs/decide"
	patchingv1 "github.com/jsmplatform/jsm/proto/gen/jsm/patching/v1"
)

// Inventory is a contract's inventory as its decider needs it: the assets
// themselves live in the read model (they can be many), the aggregate
// orders their changes.
type Inventory struct {
	ContractID string `json:"contract_id,omitzero"`
	Customer   OrgID  `json:"customer,omitzero"`
	Provider   OrgID  `json:"provider,omitzero"`
}

// RegisterAssets adds assets or replaces their data (same asset id).
type RegisterAssets struct {
	By
	Contract Contract
	Assets   []*patchingv1.Asset
}

// RetireAsset takes an asset out of the inventory. Exists and Retired say
// what the inventory's read model holds of it.
type RetireAsset struct {
	By
	Contract Contract
	AssetID  string
	Reason   string
	Exists   bool
	Retired  bool
}

// RetireAssets takes assets out of the inventory, all or none. Known says
// what the inventory's read model holds of each: absent (not registered),
// false (in service) or true (retired already).
type RetireAssets struct {
	By
	Contract Contract
	AssetIDs []string
	Reason   string
	Retired  map[string]bool
}

// DecideInventory checks an inventory command.
func DecideInventory(s Inventory, cmd Command) ([]proto.Message, error) {
	if decide.Missing(cmd) {
		return nil, invalid("command", "missing")
	}
	switch c := cmd.(type) {
	case *RegisterAssets:
		if err := c.Contract.Check(c.Org); err != nil {
			return nil, err
		}
		assets := make([]*patchingv1.Asset, len(c.Assets))
		seen := map[string]bool{}
		for i, a := range c.Assets {
			field := fmt.Sprintf("assets[%d]", i)
			switch {
			case a == nil || blank(a.GetAssetId()):
				return nil, invalid(field+".asset_id", "must not be empty")
			case seen[a.GetAssetId()]:
				return nil, invalid(field+".asset_id", "duplicate asset %q", a.GetAssetId())
			case blank(a.GetName()):
				return nil, invalid(field+".name", "must not be empty")
			}
			seen[a.GetAssetId()] = true
			a = proto.CloneOf(a)
			if a.OwnerOrgId == "" {
				a.OwnerOrgId = string(c.Contract.Provider)
			}
			if !c.Contract.IsParty(OrgID(a.GetOwnerOrgId())) {
				return nil, invalid(field+".owner_org_id", "org %q is not a party to the contract", a.GetOwnerOrgId())
			}
			for j, sw := range a.GetSoftware() {
				if blank(sw.GetProduct()) || blank(sw.GetVersion()) {
					return nil, invalid(fmt.Sprintf("%s.software[%d]", field, j), "product and version must not be empty")
				}
			}
			assets[i] = a
		}
		if len(assets) == 0 {
			return nil, invalid("assets", "must not be empty")
		}
		return one(&patchingv1.AssetsRegistered{
			ContractId: c.Contract.ID, Assets: assets, CustomerOrgId: string(c.Contract.Customer), ProviderOrgId: string(c.Contract.Provider),
		}), nil
	case *RetireAsset:
		known := map[string]bool{}
		if c.Exists {
			known[c.AssetID] = c.Retired
		}
		return DecideInventory(s, &RetireAssets{By: c.By, Contract: c.Contract, AssetIDs: []string{c.AssetID}, Reason: c.Reason, Retired: known})
	case *RetireAssets:
		if err := c.Contract.Check(c.Org); err != nil {
			return nil, err
		}
		var out []proto.Message
		seen := map[string]bool{}
		for _, id := range c.AssetIDs {
			retired, ok := c.Retired[id]
			switch {
			case !ok:
				return nil, NotFoundError{What: "asset", ID: id}
			case retired || seen[id]:
				continue
			}
			seen[id] = true
			out = append(out, &patchingv1.AssetRetired{
				ContractId: c.Contract.ID, AssetId: id, Reason: c.Reason, CustomerOrgId: string(c.Contract.Customer), ProviderOrgId: string(c.Contract.Provider),
			})
		}
		return out, nil
	default:
		return nil, invalid("command", "unknown command %T", cmd)
	}
}

// EvolveInventory applies one event.
func EvolveInventory(s Inventory, m proto.Message, _ Meta) Inventory {
	switch e := m.(type) {
	case *patchingv1.AssetsRegistered:
		s = Inventory{ContractID: e.GetContractId(), Customer: OrgID(e.GetCustomerOrgId()), Provider: OrgID(e.GetProviderOrgId())}
	case *patchingv1.AssetRetired:
		s = Inventory{ContractID: e.GetContractId(), Customer: OrgID(e.GetCustomerOrgId()), Provider: OrgID(e.GetProviderOrgId())}
	}
	return s
}
