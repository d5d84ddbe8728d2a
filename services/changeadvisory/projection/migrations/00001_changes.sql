-- +goose Up
-- The change advisory read model. Every table can be dropped and rebuilt
-- from the stream. state is the folded change (the domain's JSON); the
-- other columns are what queries and the scheduler filter on.

-- What this service knows of contracts, learned from contract events: the
-- folded contract (services/contracts/domain State), read when a change is
-- requested on it.
CREATE TABLE changeadvisory.contracts (
    contract_id     text PRIMARY KEY,
    customer_org_id text   NOT NULL,
    provider_org_id text   NOT NULL,
    state           jsonb  NOT NULL,
    position        bigint NOT NULL
);

CREATE TABLE changeadvisory.changes (
    change_id       text PRIMARY KEY,
    contract_id     text        NOT NULL,
    customer_org_id text        NOT NULL,
    provider_org_id text        NOT NULL,
    status          smallint    NOT NULL,
    emergency       boolean     NOT NULL,
    -- The linked objects as [{"kind": ..., "id": ...}], for the linked-object filter.
    links           jsonb       NOT NULL,
    -- An implemented emergency change waiting for a review that is not yet recorded overdue.
    review_pending  boolean     NOT NULL,
    review_due_at   timestamptz,
    requested_at    timestamptz NOT NULL,
    state           jsonb       NOT NULL,
    position        bigint      NOT NULL
) WITH (fillfactor = 80);
CREATE INDEX changes_by_customer ON changeadvisory.changes (customer_org_id, requested_at DESC, change_id DESC);
CREATE INDEX changes_by_provider ON changeadvisory.changes (provider_org_id, requested_at DESC, change_id DESC);
CREATE INDEX changes_by_contract ON changeadvisory.changes (contract_id, requested_at DESC, change_id DESC);
CREATE INDEX changes_by_link ON changeadvisory.changes USING gin (links jsonb_path_ops);
-- The scheduler's question: which emergency reviews are due and not yet recorded overdue.
CREATE INDEX changes_review_pending ON changeadvisory.changes (review_due_at) WHERE review_pending;

-- +goose Down
DROP TABLE changeadvisory.changes;
DROP TABLE changeadvisory.contracts;
