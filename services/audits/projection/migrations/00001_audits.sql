-- +goose Up
-- The audits read model. Every table can be dropped and rebuilt from the
-- stream. state is the folded aggregate (the domain's JSON); the other
-- columns are what queries and the scheduler filter on.

-- What this service knows of contracts, learned from contract events: the
-- folded contract (services/contracts/domain State), read when an audit is
-- planned or a checklist changed.
CREATE TABLE audits.contracts (
    contract_id     text PRIMARY KEY,
    customer_org_id text   NOT NULL,
    provider_org_id text   NOT NULL,
    state           jsonb  NOT NULL,
    position        bigint NOT NULL
);

CREATE TABLE audits.audits (
    audit_id        text PRIMARY KEY,
    contract_id     text        NOT NULL,
    customer_org_id text        NOT NULL,
    provider_org_id text        NOT NULL,
    status          smallint    NOT NULL,
    starts_at       timestamptz NOT NULL,
    planned_at      timestamptz NOT NULL,
    state           jsonb       NOT NULL,
    position        bigint      NOT NULL
) WITH (fillfactor = 80);
CREATE INDEX audits_by_customer ON audits.audits (customer_org_id, planned_at DESC, audit_id DESC);
CREATE INDEX audits_by_provider ON audits.audits (provider_org_id, planned_at DESC, audit_id DESC);
-- The audit rights' question: how many audits start in a year.
CREATE INDEX audits_by_contract ON audits.audits (contract_id, starts_at);

-- One row per finding: the finding as ListFindings returns it (binary
-- protobuf jsm.audits.v1.Finding, measures included).
CREATE TABLE audits.findings (
    finding_id      text PRIMARY KEY,
    audit_id        text        NOT NULL,
    contract_id     text        NOT NULL,
    customer_org_id text        NOT NULL,
    provider_org_id text        NOT NULL,
    status          smallint    NOT NULL,
    severity        smallint    NOT NULL,
    -- A measure of the finding is recorded overdue and not implemented yet.
    overdue         boolean     NOT NULL,
    recorded_at     timestamptz NOT NULL,
    finding         bytea       NOT NULL
) WITH (fillfactor = 80);
CREATE INDEX findings_by_audit ON audits.findings (audit_id);
CREATE INDEX findings_by_customer ON audits.findings (customer_org_id, recorded_at DESC, finding_id DESC);
CREATE INDEX findings_by_provider ON audits.findings (provider_org_id, recorded_at DESC, finding_id DESC);

-- The scheduler's table: measures and whether their overdue could still be recorded.
CREATE TABLE audits.measures (
    measure_id      text PRIMARY KEY,
    audit_id        text        NOT NULL,
    due_at          timestamptz NOT NULL,
    overdue_pending boolean     NOT NULL
);
CREATE INDEX measures_overdue_pending ON audits.measures (due_at) WHERE overdue_pending;

CREATE TABLE audits.checklists (
    contract_id     text PRIMARY KEY,
    customer_org_id text   NOT NULL,
    provider_org_id text   NOT NULL,
    state           jsonb  NOT NULL,
    position        bigint NOT NULL
);

-- +goose Down
DROP TABLE audits.checklists;
DROP TABLE audits.measures;
DROP TABLE audits.findings;
DROP TABLE audits.audits;
DROP TABLE audits.contracts;
