package app

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/reactor"
	changeadvisoryv1 "github.com/jsmplatform/jsm/proto/gen/jsm/changeadvisory/v1"
	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
	patchingv1 "github.com/jsmplatform/jsm/proto/gen/jsm/patching/v1"
	"github.com/jsmplatform/jsm/services/changeadvisory/domain"
)

// ReactorName names the change advisory service's reactions (its durable
// consumer and dead-letter subject).
const ReactorName = "changeadvisory-reactions"

// PatchSubjects are the events the reactions consume.
var PatchSubjects = []string{event.Subject("patching.remediation", ">")}

// ReactionUser is the user the reactions to the patching area act as.
const ReactionUser = "patching-reactions"

// React opens a change request for every released patch: the rollout goes
// only through a change. The change links the remediation and the assets to
// patch, takes the emergency path for an emergency patch, is requested on
// behalf of the org that released the patch and keeps the release's
// correlation id. The request's id derives from the event's, so a
// redelivered release opens no second change.
func (c *Commands) React(ctx context.Context, e event.Event, m proto.Message) error {
	released, ok := m.(*patchingv1.PatchReleased)
	if !ok {
		return nil
	}
	risk := changeadvisoryv1.Risk_RISK_MEDIUM
	if released.GetEmergency() {
		risk = changeadvisoryv1.Risk_RISK_HIGH
	}
	kind := strings.ToLower(strings.TrimPrefix(released.GetKind().String(), "FIX_KIND_"))
	description := released.GetDescription()
	if t := released.GetTestSummary(); t != "" {
		description = strings.TrimSpace(description + "\n\nTested: " + t)
	}
	req := Request{
		Actor:       event.Actor{Org: e.Actor.Org, User: ReactionUser, Role: "reaction"},
		ID:          reactor.CommandID(ReactorName, e),
		Correlation: e.Correlation,
	}
	_, err := c.Request(ctx, req, released.GetContractId(), &domain.RequestChange{
		Title:        fmt.Sprintf("Roll out %s %s to %d assets", kind, released.GetReference(), len(released.GetAssetIds())),
		Description:  description,
		Category:     commonv1.ChangeCategory_CHANGE_CATEGORY_SOFTWARE,
		Risk:         risk,
		Impact:       fmt.Sprintf("%d assets patched", len(released.GetAssetIds())),
		RollbackPlan: "Restore the backups taken before applying the " + kind + ".",
		Links:        []domain.Link{{Kind: "patching.remediation", ID: released.GetRemediationId(), Items: released.GetAssetIds()}},
		Emergency:    released.GetEmergency(),
	})
	if errors.Is(err, domain.ErrAlreadyExists) {
		return nil // delivered again after the runner forgot the request: the change is there
	}
	return err
}
