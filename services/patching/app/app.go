// Package app holds the patching service's use cases: commands through the
// es runners (with the inventory matching that RegisterVulnerability
// needs), the reactions to the change advisory area, the scheduler of
// overdue remediations and expiring deferrals, and the queries.
package app

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jsmplatform/jsm/libs/decide"
	"github.com/jsmplatform/jsm/libs/es"
	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/projection"
	patchingv1 "github.com/jsmplatform/jsm/proto/gen/jsm/patching/v1"
	"github.com/jsmplatform/jsm/services/contracts/known"
	"github.com/jsmplatform/jsm/services/patching/domain"
)

// Application groups the use cases.
type Application struct {
	Commands *Commands
	Queries  *Queries
}

// The area's runners.
type (
	InventoryRunner   = es.Runner[domain.Inventory, domain.Command]
	RemediationRunner = es.Runner[domain.Remediation, domain.Command]
)

// Request is what every command needs besides its body.
type Request = es.Request

// Commands changes inventories and remediations.
type Commands struct {
	inventory    *InventoryRunner
	remediations *RemediationRunner
	contracts    *known.Contracts
	pool         *pgxpool.Pool
	projector    *projection.Projector
	now          func() time.Time
}

// NewCommands returns the command handlers.
func NewCommands(inventory *InventoryRunner, remediations *RemediationRunner, contracts *known.Contracts, pool *pgxpool.Pool, projector *projection.Projector, now func() time.Time) (*Commands, error) {
	if inventory == nil || remediations == nil || contracts == nil || pool == nil || projector == nil || now == nil {
		return nil, errors.New("app: runners, contracts, pool, projector and clock are required")
	}
	return &Commands{inventory: inventory, remediations: remediations, contracts: contracts, pool: pool, projector: projector, now: now}, nil
}

// Result of a remediation command.
type Result struct {
	Position    uint64
	Remediation domain.Remediation
	Appended    int
}

// contract looks the contract up as the stream has it now.
func (c *Commands) contract(ctx context.Context, id string, at time.Time) (domain.Contract, error) {
	s, ok, err := c.contracts.Get(ctx, id)
	if err != nil || !ok {
		return domain.Contract{}, err
	}
	k := domain.Contract{ID: string(s.ID), Customer: domain.OrgID(s.Customer), Provider: domain.OrgID(s.Provider), InForce: known.InForce(s, at)}
	if s.InForce != nil {
		for _, d := range s.InForce.Terms.Levels.PatchDeadlines {
			k.PatchDeadlines = append(k.PatchDeadlines, domain.Deadline{Severity: d.Severity, Within: d.Within})
		}
	}
	return k, nil
}

// RegisterAssets adds assets to a contract's inventory or updates them.
func (c *Commands) RegisterAssets(ctx context.Context, req Request, contractID string, assets []*patchingv1.Asset) (uint64, error) {
	at := c.now().UTC()
	k, err := c.contract(ctx, contractID, at)
	if err != nil {
		return 0, err
	}
	cmd := &domain.RegisterAssets{Contract: k, Assets: assets}
	domain.Stamp(cmd, es.ActorOf(req), at)
	res, err := c.inventory.Handle(ctx, es.CommandFor[domain.Command](req, contractID, cmd))
	return res.Position, decide.HideContract(err, contractID)
}

// RetireAssets takes assets out of a contract's inventory, all or none.
func (c *Commands) RetireAssets(ctx context.Context, req Request, contractID string, assetIDs []string, reason string) (uint64, error) {
	at := c.now().UTC()
	k, err := c.contract(ctx, contractID, at) // also waits for the inventory to be read to the end
	if err != nil {
		return 0, err
	}
	rows, err := c.pool.Query(ctx, `SELECT asset_id, retired_at IS NOT NULL FROM patching.assets WHERE contract_id = $1 AND asset_id = ANY($2)`, contractID, assetIDs)
	if err != nil {
		return 0, err
	}
	retired := map[string]bool{}
	var id string
	var gone bool
	if _, err := pgx.ForEachRow(rows, []any{&id, &gone}, func() error { retired[id] = gone; return nil }); err != nil {
		return 0, err
	}
	cmd := &domain.RetireAssets{Contract: k, AssetIDs: assetIDs, Reason: reason, Retired: retired}
	domain.Stamp(cmd, es.ActorOf(req), at)
	res, err := c.inventory.Handle(ctx, es.CommandFor[domain.Command](req, contractID, cmd))
	return res.Position, decide.HideContract(err, contractID)
}

// RemediationID is the remediation of a CVE on a contract: one per pair,
// so a vulnerability registered again (by the other party, or a feed)
// lands on the same remediation.
func RemediationID(contractID, cve string) string {
	return event.DeriveID("patching.remediation/"+contractID+"/"+cve, 0)
}

// RegisterVulnerability matches a vulnerability against the contract's
// inventory and opens (or extends) its remediation.
func (c *Commands) RegisterVulnerability(ctx context.Context, req Request, contractID string, cmd *domain.RegisterVulnerability) (Result, error) {
	at := c.now().UTC()
	k, err := c.contract(ctx, contractID, at)
	if err != nil {
		return Result{}, err
	}
	if err := k.Check(domain.OrgID(req.Actor.Org)); err != nil {
		return Result{}, decide.HideContract(err, contractID)
	}
	matcher, err := domain.NewMatcher(cmd.AffectedVersions)
	if err != nil {
		return Result{}, err
	}
	affected, err := c.match(ctx, contractID, cmd.Product, matcher)
	if err != nil {
		return Result{}, err
	}
	cmd.Contract, cmd.Affected = k, affected
	cmd.RemediationID = RemediationID(contractID, cmd.CVE)
	res, err := c.change(ctx, req, cmd.RemediationID, cmd, at)
	return res, decide.HideContract(err, contractID)
}

// match returns the contract's assets in service that run an affected
// version of the product.
func (c *Commands) match(ctx context.Context, contractID, product string, m domain.Matcher) ([]string, error) {
	rows, err := c.pool.Query(ctx, `
		SELECT s.asset_id, s.version FROM patching.software s
		JOIN patching.assets a ON a.contract_id = s.contract_id AND a.asset_id = s.asset_id
		WHERE s.contract_id = $1 AND s.product = lower(trim($2)) AND a.retired_at IS NULL`, contractID, product)
	if err != nil {
		return nil, err
	}
	var out []string
	var id, version string
	affects := map[string]bool{} // an inventory runs few distinct versions
	_, err = pgx.ForEachRow(rows, []any{&id, &version}, func() error {
		hit, ok := affects[version]
		if !ok {
			hit = m.Affects(version)
			affects[version] = hit
		}
		if hit {
			out = append(out, id)
		}
		return nil
	})
	slices.Sort(out)
	return slices.Compact(out), err
}

// Change runs a command on an existing remediation.
func (c *Commands) Change(ctx context.Context, req Request, remediationID string, cmd domain.Command) (Result, error) {
	return c.change(ctx, req, remediationID, cmd, c.now().UTC())
}

func (c *Commands) change(ctx context.Context, req Request, id string, cmd domain.Command, at time.Time) (Result, error) {
	domain.Stamp(cmd, es.ActorOf(req), at)
	res, err := c.remediations.Handle(ctx, es.CommandFor(req, id, cmd))
	if errors.Is(err, domain.NotFoundError{What: "remediation"}) || errors.Is(err, domain.ErrNotParty) {
		// Remediations of other orgs' contracts are not found, whether or not they exist.
		err = domain.NotFoundError{What: "remediation", ID: id}
	}
	if err != nil {
		return Result{}, err
	}
	return Result{Position: res.Position, Remediation: res.State, Appended: len(res.Events)}, nil
}

// ItemID is the id of an item a command adds (a deferral).
func ItemID(kind string, req Request) string { return es.NewID("patching."+kind, req) }

// Runner returns the remediation runner's state of a remediation (tests).
func (c *Commands) Remediation(ctx context.Context, id string) (domain.Remediation, error) {
	r, _, err := c.remediations.State(ctx, id)
	return r, err
}
