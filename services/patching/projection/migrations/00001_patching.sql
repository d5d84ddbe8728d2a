-- +goose Up
-- The patching read model; every table can be rebuilt from the stream.

-- What this service knows of contracts (services/contracts/known).
CREATE TABLE patching.contracts (
    contract_id     text PRIMARY KEY,
    customer_org_id text   NOT NULL,
    provider_org_id text   NOT NULL,
    state           jsonb  NOT NULL,
    position        bigint NOT NULL
);

-- The inventory: one row per asset, and its installed software for matching.
CREATE TABLE patching.assets (
    contract_id     text        NOT NULL,
    asset_id        text        NOT NULL,
    customer_org_id text        NOT NULL,
    provider_org_id text        NOT NULL,
    asset           bytea       NOT NULL, -- jsm.patching.v1.Asset
    retired_at      timestamptz,
    position        bigint      NOT NULL,
    PRIMARY KEY (contract_id, asset_id)
);
CREATE TABLE patching.software (
    contract_id     text NOT NULL,
    asset_id        text NOT NULL,
    customer_org_id text NOT NULL,
    provider_org_id text NOT NULL,
    product         text NOT NULL, -- lower case
    version         text NOT NULL
);
CREATE INDEX software_by_product ON patching.software (contract_id, product);
CREATE INDEX software_by_asset ON patching.software (contract_id, asset_id);

CREATE TABLE patching.remediations (
    remediation_id  text PRIMARY KEY,
    contract_id     text        NOT NULL,
    customer_org_id text        NOT NULL,
    provider_org_id text        NOT NULL,
    cve_id          text        NOT NULL,
    severity        smallint    NOT NULL,
    status          smallint    NOT NULL,
    due_at          timestamptz,
    overdue         boolean     NOT NULL,
    deferral_id     text,
    deferred_until  timestamptz,
    registered_at   timestamptz NOT NULL,
    state           jsonb       NOT NULL,
    position        bigint      NOT NULL
);
CREATE INDEX remediations_by_contract ON patching.remediations (contract_id, due_at);
CREATE INDEX remediations_by_customer ON patching.remediations (customer_org_id, due_at);
CREATE INDEX remediations_by_provider ON patching.remediations (provider_org_id, due_at);

-- Each affected asset's status, for the register per asset.
CREATE TABLE patching.remediation_assets (
    remediation_id  text NOT NULL,
    asset_id        text NOT NULL,
    customer_org_id text NOT NULL,
    provider_org_id text NOT NULL,
    status          smallint NOT NULL,
    PRIMARY KEY (remediation_id, asset_id)
);
CREATE INDEX remediation_assets_by_asset ON patching.remediation_assets (asset_id);

-- +goose Down
DROP TABLE patching.remediation_assets;
DROP TABLE patching.remediations;
DROP TABLE patching.software;
DROP TABLE patching.assets;
DROP TABLE patching.contracts;
