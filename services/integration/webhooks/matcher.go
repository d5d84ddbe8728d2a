package webhooks

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/services/contracts/known"
	"github.com/jsmplatform/jsm/services/integration/webhooks/domain"
)

// Delivery statuses as stored (the values of jsm.integration.v1.DeliveryStatus).
const (
	statusPending   = 1
	statusDelivered = 2
	statusFailed    = 3
)

// matcher is the projection of the webhooks schema: it learns contracts
// and subscriptions, and for every other event queues a delivery per
// matching subscription, all in the batch's transaction with the
// checkpoint. Subscriptions are folded in stream order within the batch,
// so an event is matched against the subscriptions as they were at its
// position, the same on every replay.
type matcher struct{}

func (matcher) Reset(ctx context.Context, tx pgx.Tx) error {
	// deliveries and attempts stay: they record what was sent, and the
	// unique (subscription, event) keeps a rebuild from queueing them again.
	if _, err := tx.Exec(ctx, `TRUNCATE webhooks.subscriptions`); err != nil {
		return err
	}
	return known.Reset(ctx, tx, Schema)
}

func (matcher) Apply(ctx context.Context, tx pgx.Tx, events []event.Event) error {
	if err := known.Apply(ctx, tx, Schema, events); err != nil {
		return err
	}
	subs, err := loadSubscriptions(ctx, tx)
	if err != nil {
		return err
	}
	changed := map[domain.SubscriptionID]uint64{}
	b := &pgx.Batch{}
	for _, e := range events {
		if e.Type == "" {
			continue // not an event
		}
		if e.AggregateType == AggregateType {
			m, err := e.Decode()
			if err != nil {
				return err
			}
			id := domain.SubscriptionID(e.AggregateID)
			s := subs[id]
			s = domain.Evolve(s, m, metaOf(e))
			subs[id] = s
			changed[id] = e.Position
			continue
		}
		var payload []byte
		for _, s := range subs {
			if !s.Enabled || !matches(s, e) {
				continue
			}
			if payload == nil {
				if payload, err = Payload(e); err != nil {
					return err
				}
			}
			queueDelivery(b, s, e, payload, e.Time, false)
		}
	}
	for id, pos := range changed {
		s := subs[id]
		raw, err := json.Marshal(s)
		if err != nil {
			return err
		}
		var rotated *time.Time
		if !s.RotatedAt.IsZero() {
			rotated = &s.RotatedAt
		}
		var graceMicros *int64
		if s.PreviousGrace != nil {
			us := s.PreviousGrace.Microseconds()
			graceMicros = &us
		}
		b.Queue(`INSERT INTO webhooks.subscriptions (subscription_id, org_id, enabled, url, secret_version, rotated_at, registered_at, state, position, previous_grace_us)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
			ON CONFLICT (subscription_id) DO UPDATE SET enabled = $3, url = $4, secret_version = $5, rotated_at = $6, state = $8, position = $9, previous_grace_us = $10`,
			string(id), string(s.Org), s.Enabled, s.URL, int64(s.SecretVersion), rotated, s.RegisteredAt, raw, int64(pos), graceMicros)
	}
	return tx.SendBatch(ctx, b).Close()
}

func loadSubscriptions(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) (map[domain.SubscriptionID]domain.State, error) {
	rows, err := q.Query(ctx, `SELECT state FROM webhooks.subscriptions`)
	if err != nil {
		return nil, err
	}
	states, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.State, error) {
		var raw []byte
		if err := r.Scan(&raw); err != nil {
			return domain.State{}, err
		}
		var s domain.State
		err := json.Unmarshal(raw, &s)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("subscriptions: %w", err)
	}
	subs := make(map[domain.SubscriptionID]domain.State, len(states))
	for _, s := range states {
		subs[s.ID] = s
	}
	return subs, nil
}

// matches reports whether the subscription wants e: only events of a
// contract its org is a party to, whatever its filters say, and of its
// event types and contracts when it names some.
func matches(s domain.State, e event.Event) bool {
	if e.Contract == "" || !e.Parties.Has(string(s.Org)) {
		return false
	}
	if len(s.EventTypes) > 0 && !slices.Contains(s.EventTypes, e.Type) {
		return false
	}
	return len(s.ContractIDs) == 0 || slices.Contains(s.ContractIDs, e.Contract)
}

// DeliveryID is the webhook-id of the delivery of an event to a
// subscription: the same for every attempt, redelivery and replay.
func DeliveryID(subscriptionID, eventID string) string {
	return "msg_" + event.DeriveID("webhooks.delivery/"+subscriptionID+"/"+eventID, 0)
}

// queueDelivery inserts the delivery of e to s, due at due. With requeue
// an existing delivery is queued again (a replay); without, it is left as
// it is (a matcher batch applied again).
func queueDelivery(b *pgx.Batch, s domain.State, e event.Event, payload []byte, due time.Time, requeue bool) {
	conflict := `DO NOTHING`
	if requeue {
		conflict = `DO UPDATE SET status = 1, tries = 0, next_attempt_at = EXCLUDED.next_attempt_at, lease_until = NULL`
	}
	b.Queue(`INSERT INTO webhooks.deliveries (delivery_id, subscription_id, org_id, event_id, event_type, contract_id,
			aggregate_type, aggregate_id, position, payload, status, next_attempt_at, trace_parent)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1, $11, $12)
		ON CONFLICT (subscription_id, event_id) `+conflict,
		DeliveryID(string(s.ID), e.ID), string(s.ID), string(s.Org), e.ID, e.Type, e.Contract,
		e.AggregateType, e.AggregateID, int64(e.Position), payload, due, e.TraceParent)
}

// Payload is the body of an event's webhook, per the Standard Webhooks
// payload structure: type, timestamp and data, data being the event as
// protojson with its envelope.
func Payload(e event.Event) ([]byte, error) {
	var body json.RawMessage
	m, err := e.Decode()
	if err != nil {
		// An event this build cannot decode still goes out, with its body
		// as base64 protobuf, rather than stall the stream.
		body = nil
	} else if body, err = protojson.Marshal(m); err != nil {
		return nil, fmt.Errorf("event %s: %w", e.ID, err)
	}
	data := payloadData{
		ID:            e.ID,
		Position:      e.Position,
		ContractID:    e.Contract,
		CustomerOrgID: e.Parties.Customer,
		ProviderOrgID: e.Parties.Provider,
		AggregateType: e.AggregateType,
		AggregateID:   e.AggregateID,
		ActorOrgID:    e.Actor.Org,
		Time:          e.Time.UTC().Format(time.RFC3339Nano),
		Event:         body,
	}
	if body == nil {
		data.EventProtobuf = e.Data
	}
	return json.Marshal(payload{Type: e.Type, Timestamp: data.Time, Data: data})
}

type payload struct {
	Type      string      `json:"type"`
	Timestamp string      `json:"timestamp"`
	Data      payloadData `json:"data"`
}

type payloadData struct {
	ID            string          `json:"id"`
	Position      uint64          `json:"position"`
	ContractID    string          `json:"contract_id"`
	CustomerOrgID string          `json:"customer_org_id"`
	ProviderOrgID string          `json:"provider_org_id"`
	AggregateType string          `json:"aggregate_type"`
	AggregateID   string          `json:"aggregate_id"`
	ActorOrgID    string          `json:"actor_org_id,omitempty"`
	Time          string          `json:"time"`
	Event         json.RawMessage `json:"event,omitempty"`
	EventProtobuf []byte          `json:"event_protobuf,omitempty"`
}
