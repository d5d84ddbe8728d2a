-- +goose Up
-- The trace of the event a delivery carries: each attempt is a span of it,
-- and the receiver gets its traceparent.
ALTER TABLE webhooks.deliveries ADD COLUMN trace_parent text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE webhooks.deliveries DROP COLUMN trace_parent;
