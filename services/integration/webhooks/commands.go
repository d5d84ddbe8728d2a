package webhooks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jsmplatform/jsm/libs/decide"
	"github.com/jsmplatform/jsm/libs/es"
	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/services/integration/registration"
	"github.com/jsmplatform/jsm/services/integration/webhooks/domain"
)

// register validates the endpoint, looks up the named contracts and
// registers the subscription; with a request id its id derives from it,
// so a retried request answers with the subscription it made.
func (s *Subscriptions) register(ctx context.Context, req es.Request, cmd *domain.Register, contractIDs []string) (es.Result[domain.State], error) {
	if err := checkURL(cmd.URL, s.d.AllowPrivateTargets); err != nil {
		return es.Result[domain.State]{}, err
	}
	contracts, err := s.lookup(ctx, contractIDs)
	if err != nil {
		return es.Result[domain.State]{}, err
	}
	cmd.Contracts = contracts
	cmd.ID = domain.SubscriptionID(es.NewID(AggregateType, req))
	return s.handle(ctx, req, string(cmd.ID), cmd)
}

// enable looks up the subscription's contracts again: the org must still
// be a party to each.
func (s *Subscriptions) enable(ctx context.Context, req es.Request, id string) (es.Result[domain.State], error) {
	st, _, err := s.runner.State(ctx, id)
	if err != nil {
		return es.Result[domain.State]{}, err
	}
	cmd := &domain.Enable{}
	if st.Org == domain.OrgID(req.Actor.Org) {
		if cmd.Contracts, err = s.lookup(ctx, st.ContractIDs); err != nil {
			return es.Result[domain.State]{}, err
		}
	}
	return s.handle(ctx, req, id, cmd)
}

func (s *Subscriptions) lookup(ctx context.Context, ids []string) ([]domain.Contract, error) {
	return registration.Lookup(ctx, s.contracts, ids)
}

// handle runs cmd on the subscription id for the request's caller.
func (s *Subscriptions) handle(ctx context.Context, req es.Request, id string, cmd domain.Command) (es.Result[domain.State], error) {
	decide.Stamp(cmd, es.ActorOf(req), s.d.Now())
	res, err := s.runner.Handle(ctx, es.CommandFor(req, id, cmd))
	if errors.Is(err, domain.NotFoundError{What: "subscription"}) {
		err = domain.NotFoundError{What: "subscription", ID: id}
	}
	return res, err
}

// redeliver queues one delivery of the org's again, due now.
func (s *Subscriptions) redeliver(ctx context.Context, org, subscriptionID, deliveryID string) (deliveryRow, error) {
	rows, err := s.d.Pool.Query(ctx, `
		UPDATE webhooks.deliveries SET status = 1, tries = 0, next_attempt_at = $4
		WHERE delivery_id = $1 AND subscription_id = $2 AND org_id = $3
		RETURNING `+deliveryColumns, deliveryID, subscriptionID, org, s.d.Now())
	if err != nil {
		return deliveryRow{}, err
	}
	d, err := pgx.CollectExactlyOneRow(rows, scanDelivery)
	if errors.Is(err, pgx.ErrNoRows) {
		return deliveryRow{}, domain.NotFoundError{What: "delivery", ID: deliveryID}
	}
	if err != nil {
		return deliveryRow{}, err
	}
	s.worker.Wake()
	return d, nil
}

// replayLimit bounds the stream a replay reads in one request.
const replayLimit = 100_000

// replay queues again every event of the stream from position from on
// that the subscription matches: deliveries that exist are queued again
// (same webhook-id), missing ones (the subscription was disabled or not
// registered yet) are created. With a request id a retried request queues
// nothing more and answers as the first did.
func (s *Subscriptions) replay(ctx context.Context, req es.Request, subscriptionID string, from uint64) (int, error) {
	sub, _, err := s.runner.State(ctx, subscriptionID)
	if err != nil {
		return 0, err
	}
	if !sub.Exists() || sub.Org != domain.OrgID(req.Actor.Org) {
		return 0, domain.NotFoundError{What: "subscription", ID: subscriptionID}
	}
	last, err := s.d.Store.LastPosition(ctx)
	if err != nil {
		return 0, err
	}
	if last >= from && last-from >= replayLimit {
		return 0, decide.Invalid("from_position", "a replay reads at most %d events; start at %d or later", replayLimit, last-replayLimit+1)
	}
	tx, err := s.d.Pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if req.ID != "" {
		var queued int
		err := tx.QueryRow(ctx, `
			WITH ins AS (INSERT INTO webhooks.replays (subscription_id, request_id, queued) VALUES ($1, $2, 0)
				ON CONFLICT DO NOTHING RETURNING queued)
			SELECT COALESCE((SELECT -1 FROM ins), (SELECT queued FROM webhooks.replays WHERE subscription_id = $1 AND request_id = $2))`,
			subscriptionID, req.ID).Scan(&queued)
		if err != nil {
			return 0, fmt.Errorf("replay request: %w", err)
		}
		if queued >= 0 {
			return queued, nil // seen before
		}
	}
	queued := 0
	now := s.d.Now()
	if from <= last {
		if queued, err = s.requeue(ctx, tx, sub, from, last, now); err != nil {
			return 0, err
		}
	}
	if req.ID != "" {
		if _, err := tx.Exec(ctx, `UPDATE webhooks.replays SET queued = $3 WHERE subscription_id = $1 AND request_id = $2`, subscriptionID, req.ID, queued); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, err
	}
	s.worker.Wake()
	return queued, nil
}

// requeue reads the stream from from to last and queues the matching events.
func (s *Subscriptions) requeue(ctx context.Context, tx pgx.Tx, sub domain.State, from, last uint64, now time.Time) (int, error) {
	cons, err := s.d.Store.OrderedConsumer(ctx, from)
	if err != nil {
		return 0, err
	}
	queued := 0
	for pos := from - 1; pos < last; {
		msgs, err := cons.Fetch(int(min(500, last-pos)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return 0, fmt.Errorf("read stream from %d: %w", pos+1, err)
		}
		b := &pgx.Batch{}
		got := 0
		for m := range msgs.Messages() {
			got++
			e, _, err := eventstore.FromJetStream(m)
			if e.Position > pos {
				pos = e.Position
			}
			if err != nil || e.Position > last || !matches(sub, e) {
				continue // not an event, or not for this subscription
			}
			payload, err := Payload(e)
			if err != nil {
				return 0, err
			}
			queueDelivery(b, sub, e, payload, now, true)
			queued++
		}
		if err := msgs.Error(); err != nil {
			return 0, fmt.Errorf("read stream from %d: %w", pos+1, err)
		}
		if got == 0 {
			return 0, fmt.Errorf("read stream: nothing after %d, expected up to %d", pos, last)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return 0, err
		}
	}
	return queued, nil
}
