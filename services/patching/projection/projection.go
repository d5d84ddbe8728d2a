// Package projection keeps the patching service's read model: the
// inventory with its software (for matching), remediations with each
// affected asset's status (the patch register), and the contracts the
// service learns from contract events.
package projection

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	"github.com/jsmplatform/jsm/libs/es"
	"github.com/jsmplatform/jsm/libs/event"
	patchingv1 "github.com/jsmplatform/jsm/proto/gen/jsm/patching/v1"
	"github.com/jsmplatform/jsm/services/contracts/known"
	"github.com/jsmplatform/jsm/services/patching/domain"
)

// Schema is the service's PostgreSQL schema.
const Schema = "patching"

// Aggregate types of the area (subject parts).
const (
	InventoryType   = "patching.inventory"
	RemediationType = "patching.remediation"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations are the read model's goose migrations.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}

// Handler projects inventory and remediation events, and learns contracts.
type Handler struct{}

// Reset empties the read model before a rebuild.
func (Handler) Reset(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `TRUNCATE patching.assets, patching.software, patching.remediations, patching.remediation_assets`); err != nil {
		return err
	}
	return known.Reset(ctx, tx, Schema)
}

// Apply folds a batch into the read model.
func (Handler) Apply(ctx context.Context, tx pgx.Tx, events []event.Event) error {
	if err := known.Apply(ctx, tx, Schema, events); err != nil {
		return err
	}
	var remediations []event.Event
	var msgs []proto.Message
	for _, e := range events {
		if e.AggregateType != InventoryType && e.AggregateType != RemediationType {
			continue
		}
		m, err := e.Decode()
		if err != nil {
			return fmt.Errorf("event %s at %d: %w", e.ID, e.Position, err)
		}
		switch m := m.(type) {
		case *patchingv1.AssetsRegistered:
			if err := registerAssets(ctx, tx, e, m); err != nil {
				return err
			}
		case *patchingv1.AssetRetired:
			if _, err := tx.Exec(ctx, `UPDATE patching.assets SET retired_at = $3, position = $4 WHERE contract_id = $1 AND asset_id = $2`,
				m.GetContractId(), m.GetAssetId(), e.Time, e.Position); err != nil {
				return err
			}
		default:
			remediations = append(remediations, e)
			msgs = append(msgs, m)
		}
	}
	return applyRemediations(ctx, tx, remediations, msgs)
}

// registerAssets writes a registration of up to a thousand assets in two
// statements: arrays unnested on the server.
func registerAssets(ctx context.Context, tx pgx.Tx, e event.Event, m *patchingv1.AssetsRegistered) error {
	var ids []string
	var blobs [][]byte
	var swAsset, swProduct, swVersion []string
	for _, a := range m.GetAssets() {
		blob, err := proto.Marshal(a)
		if err != nil {
			return err
		}
		ids = append(ids, a.GetAssetId())
		blobs = append(blobs, blob)
		for _, sw := range a.GetSoftware() {
			swAsset = append(swAsset, a.GetAssetId())
			swProduct = append(swProduct, strings.ToLower(strings.TrimSpace(sw.GetProduct())))
			swVersion = append(swVersion, strings.TrimSpace(sw.GetVersion()))
		}
	}
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO patching.assets (contract_id, asset_id, customer_org_id, provider_org_id, asset, retired_at, position)
		SELECT $1, id, $3, $4, blob, NULL, $5 FROM unnest($2::text[], $6::bytea[]) AS a(id, blob)
		ON CONFLICT (contract_id, asset_id) DO UPDATE SET asset = excluded.asset, retired_at = NULL, position = excluded.position`,
		m.GetContractId(), ids, m.GetCustomerOrgId(), m.GetProviderOrgId(), e.Position, blobs)
	b.Queue(`DELETE FROM patching.software WHERE contract_id = $1 AND asset_id = ANY($2)`, m.GetContractId(), ids)
	b.Queue(`INSERT INTO patching.software (contract_id, asset_id, customer_org_id, provider_org_id, product, version)
		SELECT $1, a, $3, $4, p, v FROM unnest($2::text[], $5::text[], $6::text[]) AS s(a, p, v)`,
		m.GetContractId(), swAsset, m.GetCustomerOrgId(), m.GetProviderOrgId(), swProduct, swVersion)
	return tx.SendBatch(ctx, b).Close()
}

// applyRemediations folds the batch's remediation events into their rows;
// of the affected assets it rewrites only those the events name.
func applyRemediations(ctx context.Context, tx pgx.Tx, events []event.Event, msgs []proto.Message) error {
	if len(events) == 0 {
		return nil
	}
	states := map[string]domain.Remediation{}
	touched := map[string]map[string]bool{}
	var ids []string
	for _, e := range events {
		if _, ok := touched[e.AggregateID]; !ok {
			touched[e.AggregateID] = map[string]bool{}
			ids = append(ids, e.AggregateID)
		}
	}
	rows, err := tx.Query(ctx, `SELECT remediation_id, state FROM patching.remediations WHERE remediation_id = ANY($1)`, ids)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id string
		var raw []byte
		if err := rows.Scan(&id, &raw); err != nil {
			return err
		}
		var r domain.Remediation
		if err := json.Unmarshal(raw, &r); err != nil {
			return fmt.Errorf("remediation %s: stored state: %w", id, err)
		}
		states[id] = r
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for i, e := range events {
		states[e.AggregateID] = domain.EvolveRemediation(states[e.AggregateID], msgs[i], es.MetaOf(e))
		for _, a := range assetIDs(msgs[i]) {
			touched[e.AggregateID][a] = true
		}
	}
	b := &pgx.Batch{}
	for _, id := range ids {
		r := states[id]
		if !r.Exists() {
			continue
		}
		raw, err := json.Marshal(r)
		if err != nil {
			return err
		}
		var due, until *time.Time
		var deferral *string
		if !r.DueAt.IsZero() {
			due = &r.DueAt
		}
		if d, ok := r.ActiveDeferral(); ok {
			deferral, until = &d.ID, &d.Until
		}
		b.Queue(`INSERT INTO patching.remediations (remediation_id, contract_id, customer_org_id, provider_org_id, cve_id, severity, status, due_at, overdue, deferral_id, deferred_until, registered_at, state, position)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
			ON CONFLICT (remediation_id) DO UPDATE SET status = $7, due_at = $8, overdue = $9, deferral_id = $10, deferred_until = $11, state = $13, position = $14`,
			r.ID, r.ContractID, string(r.Customer), string(r.Provider), r.CVE, int16(r.Severity), int16(r.Status()), due, r.Overdue, deferral, until, r.RegisteredAt, raw, r.Position)
		var assets []string
		var statuses []int16
		for a := range touched[id] {
			if f, ok := r.Assets[a]; ok {
				assets = append(assets, a)
				statuses = append(statuses, int16(f.Status))
			}
		}
		if len(assets) > 0 {
			b.Queue(`INSERT INTO patching.remediation_assets (remediation_id, asset_id, customer_org_id, provider_org_id, status)
				SELECT $1, a, $3, $4, s FROM unnest($2::text[], $5::smallint[]) AS x(a, s)
				ON CONFLICT (remediation_id, asset_id) DO UPDATE SET status = excluded.status`,
				r.ID, assets, string(r.Customer), string(r.Provider), statuses)
		}
	}
	return tx.SendBatch(ctx, b).Close()
}

// assetIDs are the assets an event changes.
func assetIDs(m proto.Message) []string {
	switch m := m.(type) {
	case *patchingv1.AssetsAffected:
		return m.GetAssetIds()
	case *patchingv1.PatchApplied:
		return m.GetAssetIds()
	case *patchingv1.PatchFailed:
		return m.GetAssetIds()
	case *patchingv1.PatchRolledBack:
		return m.GetAssetIds()
	case *patchingv1.PatchVerified:
		return m.GetAssetIds()
	case *patchingv1.AffectedAssetRetired:
		return []string{m.GetAssetId()}
	}
	return nil
}
