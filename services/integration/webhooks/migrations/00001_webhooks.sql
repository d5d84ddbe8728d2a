-- +goose Up
-- The webhooks half of the integration service. contracts and
-- subscriptions are a read model (rebuilt from the stream); deliveries and
-- attempts are the outbox and its log: the matcher inserts a delivery per
-- matching event in the same transaction as its checkpoint, the worker
-- sends it and records every attempt. A rebuild keeps them, so it never
-- sends anything twice (a delivery is unique per subscription and event).

-- What the service knows of contracts (services/contracts/known).
CREATE TABLE webhooks.contracts (
    contract_id     text PRIMARY KEY,
    customer_org_id text   NOT NULL,
    provider_org_id text   NOT NULL,
    state           jsonb  NOT NULL,
    position        bigint NOT NULL
);

CREATE TABLE webhooks.subscriptions (
    subscription_id text PRIMARY KEY,
    org_id          text        NOT NULL,
    enabled         boolean     NOT NULL,
    url             text        NOT NULL,
    secret_version  integer     NOT NULL,
    -- When the secret last changed (NULL: never): the previous one signs
    -- too for a while.
    rotated_at      timestamptz,
    registered_at   timestamptz NOT NULL,
    -- The folded aggregate (the domain's JSON).
    state           jsonb       NOT NULL,
    position        bigint      NOT NULL
);
CREATE INDEX subscriptions_by_org ON webhooks.subscriptions (org_id, registered_at, subscription_id);

CREATE TABLE webhooks.deliveries (
    -- The webhook-id header: stable across attempts and redeliveries.
    delivery_id      text PRIMARY KEY,
    subscription_id  text        NOT NULL,
    org_id           text        NOT NULL,
    event_id         text        NOT NULL,
    event_type       text        NOT NULL,
    contract_id      text        NOT NULL,
    aggregate_type   text        NOT NULL,
    aggregate_id     text        NOT NULL,
    position         bigint      NOT NULL,
    -- The signed body, kept as sent so every attempt sends the same bytes.
    payload          bytea       NOT NULL,
    status           smallint    NOT NULL,
    -- attempts counts every attempt; tries those since it was last queued
    -- (what the backoff and the attempt bound look at).
    attempts         integer     NOT NULL DEFAULT 0,
    tries            integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    -- A worker holds the delivery while it sends it; an expired lease
    -- (the worker died) makes it due again.
    lease_until      timestamptz,
    last_attempt_at  timestamptz,
    last_status_code integer     NOT NULL DEFAULT 0,
    last_error       text        NOT NULL DEFAULT '',
    delivered_at     timestamptz,
    UNIQUE (subscription_id, event_id)
);
CREATE INDEX deliveries_due ON webhooks.deliveries (next_attempt_at) WHERE status = 1;
-- Ordering: the earliest pending delivery of an aggregate goes first.
CREATE INDEX deliveries_pending_by_aggregate ON webhooks.deliveries (subscription_id, aggregate_type, aggregate_id, position) WHERE status = 1;
CREATE INDEX deliveries_by_subscription ON webhooks.deliveries (org_id, subscription_id, position);

CREATE TABLE webhooks.attempts (
    delivery_id  text        NOT NULL,
    attempt      integer     NOT NULL,
    org_id       text        NOT NULL,
    attempted_at timestamptz NOT NULL,
    status_code  integer     NOT NULL,
    error        text        NOT NULL,
    duration_ms  integer     NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);

-- ReplayDeliveries requests seen, so a retried one queues nothing again.
CREATE TABLE webhooks.replays (
    subscription_id text    NOT NULL,
    request_id      text    NOT NULL,
    queued          integer NOT NULL,
    PRIMARY KEY (subscription_id, request_id)
);

-- +goose Down
DROP TABLE webhooks.replays;
DROP TABLE webhooks.attempts;
DROP TABLE webhooks.deliveries;
DROP TABLE webhooks.subscriptions;
DROP TABLE webhooks.contracts;
