-- +goose Up
-- The contracts read model: one row per contract, the contract as the API
-- shows it (jsm.contracts.v1.Contract, binary protobuf: it holds the whole
-- folded state) plus the columns queries filter on. Rebuilt from the stream at
-- will. Rows are rewritten on every change: lz4 keeps them small and inline,
-- and the free space left on each page lets updates stay HOT.
CREATE TABLE contracts.contracts (
    contract_id     text PRIMARY KEY,
    customer_org_id text        NOT NULL,
    provider_org_id text        NOT NULL,
    title           text        NOT NULL,
    status          smallint    NOT NULL,
    phase           smallint    NOT NULL,
    view            bytea       NOT NULL,
    position        bigint      NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
) WITH (fillfactor = 70);
-- lz4 compresses and decompresses rows far faster than the default pglz;
-- a server built without it keeps the default.
-- +goose StatementBegin
DO $$ BEGIN
    ALTER TABLE contracts.contracts ALTER COLUMN view SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN NULL;
END $$;
-- +goose StatementEnd
CREATE INDEX contracts_by_customer ON contracts.contracts (customer_org_id, contract_id);
CREATE INDEX contracts_by_provider ON contracts.contracts (provider_org_id, contract_id);

-- +goose Down
DROP TABLE contracts.contracts;
