package app

import (
	"context"
	"errors"

	"google.golang.org/protobuf/proto"

	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/reactor"
	changeadvisoryv1 "github.com/jsmplatform/jsm/proto/gen/jsm/changeadvisory/v1"
	"github.com/jsmplatform/jsm/services/patching/domain"
)

// ReactorName names the patching service's reactions (its durable consumer
// and dead-letter subject).
const ReactorName = "patching-reactions"

// ChangeSubjects are the events the reactions consume.
var ChangeSubjects = []string{event.Subject("changeadvisory.change", ">")}

// React answers a change advisory event for every remediation it links:
// a change requested is linked, an approved change allows the rollout, a
// rejected one stops it, an implementation applies (or fails) the patch on
// the change's assets and a rollback rolls it back. The command's id
// derives from the event's, so a redelivered event changes nothing.
func (c *Commands) React(ctx context.Context, e event.Event, m proto.Message) error {
	var links []*changeadvisoryv1.LinkedObject
	var build func(*changeadvisoryv1.LinkedObject) domain.Command
	switch m := m.(type) {
	case *changeadvisoryv1.ChangeRequested:
		links = m.GetLinks()
		build = func(l *changeadvisoryv1.LinkedObject) domain.Command {
			return &domain.LinkChange{ChangeID: m.GetChangeId(), Assets: l.GetItems(), Emergency: m.GetEmergency()}
		}
	case *changeadvisoryv1.ChangeApproved:
		links = m.GetLinks()
		build = func(*changeadvisoryv1.LinkedObject) domain.Command {
			return &domain.ApproveRollout{ChangeID: m.GetChangeId()}
		}
	case *changeadvisoryv1.ChangeRejected:
		links = m.GetLinks()
		build = func(*changeadvisoryv1.LinkedObject) domain.Command {
			return &domain.RejectRollout{ChangeID: m.GetChangeId(), Org: domain.OrgID(m.GetOrgId()), Reason: m.GetReason()}
		}
	case *changeadvisoryv1.ChangeImplemented:
		links = m.GetLinks()
		build = func(*changeadvisoryv1.LinkedObject) domain.Command {
			return &domain.ChangeDone{ChangeID: m.GetChangeId(), Success: m.GetSuccess(), Notes: m.GetNotes()}
		}
	case *changeadvisoryv1.ChangeRolledBack:
		links = m.GetLinks()
		build = func(*changeadvisoryv1.LinkedObject) domain.Command {
			return &domain.ChangeRollback{ChangeID: m.GetChangeId(), Reason: m.GetReason()}
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

// RemediationKind is how change requests link remediations.
const RemediationKind = "patching.remediation"
