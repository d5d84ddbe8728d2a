-- +goose Up
-- The grace period of the previous secret a rotation chose (NULL: the
-- deployment's); 0 stops signing with it at once.
ALTER TABLE webhooks.subscriptions ADD COLUMN previous_grace_us bigint;

-- +goose Down
ALTER TABLE webhooks.subscriptions DROP COLUMN previous_grace_us;
