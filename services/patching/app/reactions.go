package app

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"google.golang.org/protobuf/proto"

	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/reactor"
	changeadvisoryv1 "github.com/jsmplatform/jsm/proto/gen/jsm/changeadvisory/v1"
	patchingv1 "github.com/jsmplatform/jsm/proto/gen/jsm/patching/v1"
	"github.com/jsmplatform/jsm/services/patching/domain"
)

// ReactorName names the patching service's reactions (its durable consumer
// and dead-letter subject).
const ReactorName = "patching-reactions"

// Subjects are the events the reactions consume: the change advisory
// area's changes and this area's inventories.
var Subjects = []string{event.Subject("changeadvisory.change", ">"), event.Subject("patching.inventory", ">")}

// React answers a change advisory event for every remediation it links:
// a change requested is linked, an approved change allows the rollout, a
// rejected one stops it, an implementation applies (or fails) the patch on
// the change's assets and a rollback rolls it back. The command's id
// derives from the event's, so a redelivered event changes nothing.
func (c *Commands) React(ctx context.Context, e event.Event, m proto.Message) error {
	var links []*changeadvisoryv1.LinkedObject
	var build func(*changeadvisoryv1.LinkedObject) domain.Command
	switch m := m.(type) {
	case *patchingv1.AssetRetired:
		return c.retireAffected(ctx, e, m)
	case *changeadvisoryv1.ChangeRequested:
		links = m.GetLinks()
		build = func(l *changeadvisoryv1.LinkedObject) domain.Command {
			return &domain.LinkChange{ContractID: m.GetContractId(), ChangeID: m.GetChangeId(), Assets: l.GetItems(), Emergency: m.GetEmergency()}
		}
	case *changeadvisoryv1.ChangeApproved:
		links = m.GetLinks()
		build = func(*changeadvisoryv1.LinkedObject) domain.Command {
			return &domain.ApproveRollout{ContractID: m.GetContractId(), ChangeID: m.GetChangeId()}
		}
	case *changeadvisoryv1.ChangeRejected:
		links = m.GetLinks()
		build = func(*changeadvisoryv1.LinkedObject) domain.Command {
			return &domain.RejectRollout{ContractID: m.GetContractId(), ChangeID: m.GetChangeId(), Org: domain.OrgID(m.GetOrgId()), Reason: m.GetReason()}
		}
	case *changeadvisoryv1.ChangeImplemented:
		links = m.GetLinks()
		build = func(*changeadvisoryv1.LinkedObject) domain.Command {
			return &domain.ChangeDone{ContractID: m.GetContractId(), ChangeID: m.GetChangeId(), Success: m.GetSuccess(), Notes: m.GetNotes()}
		}
	case *changeadvisoryv1.ChangeRolledBack:
		links = m.GetLinks()
		build = func(*changeadvisoryv1.LinkedObject) domain.Command {
			return &domain.ChangeRollback{ContractID: m.GetContractId(), ChangeID: m.GetChangeId(), Reason: m.GetReason()}
		}
	default:
		return nil
	}
	for _, l := range links {
		if l.GetKind() != RemediationKind {
			continue
		}
		req := Request{
			// The org whose act on the change caused this, as the platform's reaction.
			Actor:       event.Actor{Org: e.Actor.Org, User: domain.ReactionUser, Role: "reaction"},
			ID:          reactor.CommandID(ReactorName, e) + "/" + l.GetId(),
			Correlation: e.Correlation,
		}
		_, err := c.Change(ctx, req, l.GetId(), build(l))
		if errors.Is(err, domain.NotFoundError{}) {
			continue // a link to no remediation of ours: nothing to follow
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// retireAffected tells every remediation the retired asset still waits in
// that it needs no fix. The read model is read once it has the retirement,
// so it holds every remediation registered before it; later ones do not
// match a retired asset.
func (c *Commands) retireAffected(ctx context.Context, e event.Event, m *patchingv1.AssetRetired) error {
	if err := c.projector.WaitFor(ctx, e.Position, time.Minute); err != nil {
		return err
	}
	rows, err := c.pool.Query(ctx, `
		SELECT ra.remediation_id FROM patching.remediation_assets ra
		JOIN patching.remediations r ON r.remediation_id = ra.remediation_id
		WHERE r.contract_id = $1 AND ra.asset_id = $2 AND ra.status NOT IN ($3, $4)`,
		m.GetContractId(), m.GetAssetId(), int16(patchingv1.AssetPatchStatus_ASSET_PATCH_STATUS_VERIFIED), int16(patchingv1.AssetPatchStatus_ASSET_PATCH_STATUS_RETIRED))
	if err != nil {
		return err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, id := range ids {
		req := Request{
			Actor:       event.Actor{Org: e.Actor.Org, User: domain.ReactionUser, Role: "reaction"},
			ID:          reactor.CommandID(ReactorName, e) + "/" + id,
			Correlation: e.Correlation,
		}
		if _, err := c.Change(ctx, req, id, &domain.RetireAffected{AssetID: m.GetAssetId()}); err != nil {
			return err
		}
	}
	return nil
}

// RemediationKind is how change requests link remediations.
const RemediationKind = "patching.remediation"
