package webhooks

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jsmplatform/jsm/libs/cursor"
	"github.com/jsmplatform/jsm/libs/decide"
	"github.com/jsmplatform/jsm/libs/pgdb"
	"github.com/jsmplatform/jsm/services/integration/webhooks/domain"
)

const defaultPageSize = 100

// deliveryRow is a delivery as ListDeliveries shows it.
type deliveryRow struct {
	ID, Subscription, EventID, EventType, Contract, Aggregate string
	Position                                                  int64
	Status                                                    int16
	Attempts                                                  int32
	LastAttemptAt, NextAttemptAt, DeliveredAt                 *time.Time
	LastStatusCode                                            int32
	LastError                                                 string
}

const deliveryColumns = `delivery_id, subscription_id, event_id, event_type, contract_id, aggregate_id, position, status,
	attempts, last_attempt_at, next_attempt_at, delivered_at, last_status_code, last_error`

func scanDelivery(r pgx.CollectableRow) (deliveryRow, error) {
	var d deliveryRow
	err := r.Scan(&d.ID, &d.Subscription, &d.EventID, &d.EventType, &d.Contract, &d.Aggregate, &d.Position, &d.Status,
		&d.Attempts, &d.LastAttemptAt, &d.NextAttemptAt, &d.DeliveredAt, &d.LastStatusCode, &d.LastError)
	return d, err
}

func pageSize(n int32) int {
	if n <= 0 {
		return defaultPageSize
	}
	return int(n)
}

// listSubscriptions reads the org's subscriptions, oldest first.
func (s *Subscriptions) listSubscriptions(ctx context.Context, org string, size int, token string, minPosition uint64) ([]domain.State, string, error) {
	if err := s.projector.WaitFor(ctx, minPosition, s.d.ReadWait); err != nil {
		return nil, "", err
	}
	after, afterID, err := cursor.Decode(token)
	if err != nil {
		return nil, "", decide.Invalid("page_token", "%v", err)
	}
	var out []domain.State
	err = pgdb.ReadAs(ctx, s.d.Pool, Schema, org, `
		SELECT state FROM webhooks.subscriptions
		WHERE org_id = $1 AND ($2::timestamptz IS NULL OR (registered_at, subscription_id) > ($2, $3))
		ORDER BY registered_at, subscription_id LIMIT $4`,
		[]any{org, after, afterID, size + 1}, func(rows pgx.Rows) error {
			var err error
			out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.State, error) {
				var st domain.State
				err := r.Scan(&st)
				return st, err
			})
			return err
		})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > size {
		out = out[:size]
		last := out[size-1]
		next = cursor.Encode(last.RegisteredAt, string(last.ID))
	}
	return out, next, nil
}

// listDeliveries reads the deliveries of one of the org's subscriptions
// in stream order; another org's subscription is not found.
func (s *Subscriptions) listDeliveries(ctx context.Context, org, subscriptionID string, status int16, from uint64, size int, token string, minPosition uint64) ([]deliveryRow, string, error) {
	if err := s.projector.WaitFor(ctx, minPosition, s.d.ReadWait); err != nil {
		return nil, "", err
	}
	after, afterID, err := cursor.Decode(token)
	if err != nil {
		return nil, "", decide.Invalid("page_token", "%v", err)
	}
	afterPos := int64(-1)
	if after != nil {
		afterPos = after.UnixNano()
	}
	owned := false
	err = pgdb.ReadAs(ctx, s.d.Pool, Schema, org, `SELECT true FROM webhooks.subscriptions WHERE subscription_id = $1`, []any{subscriptionID}, func(rows pgx.Rows) error {
		owned = rows.Next()
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	if !owned {
		return nil, "", domain.NotFoundError{What: "subscription", ID: subscriptionID}
	}
	var out []deliveryRow
	err = pgdb.ReadAs(ctx, s.d.Pool, Schema, org, `
		SELECT `+deliveryColumns+` FROM webhooks.deliveries
		WHERE org_id = $1 AND subscription_id = $2 AND ($3 = 0 OR status = $3) AND position >= $4
		  AND (position, delivery_id) > ($5, $6)
		ORDER BY position, delivery_id LIMIT $7`,
		[]any{org, subscriptionID, status, int64(from), afterPos, afterID, size + 1}, func(rows pgx.Rows) error {
			var err error
			out, err = pgx.CollectRows(rows, scanDelivery)
			return err
		})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > size {
		out = out[:size]
		last := out[size-1]
		next = cursor.Encode(time.Unix(0, last.Position), last.ID)
	}
	return out, next, nil
}
