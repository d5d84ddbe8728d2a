-- +goose Up
-- The contracts read model: one row per contract, the folded domain state as
-- JSON plus the columns queries filter on. Rebuilt from the stream at will.
CREATE TABLE contracts.contracts (
    contract_id     text PRIMARY KEY,
    customer_org_id text        NOT NULL,
    provider_org_id text        NOT NULL,
    title           text        NOT NULL,
    status          smallint    NOT NULL,
    phase           smallint    NOT NULL,
    state           jsonb       NOT NULL,
    position        bigint      NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX contracts_by_customer ON contracts.contracts (customer_org_id, contract_id);
CREATE INDEX contracts_by_provider ON contracts.contracts (provider_org_id, contract_id);

-- +goose Down
DROP TABLE contracts.contracts;
