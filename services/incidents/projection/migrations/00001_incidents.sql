-- +goose Up
-- The incidents read model. Every table can be dropped and rebuilt from the
-- stream. state is the folded aggregate (the domain's JSON); the other
-- columns are what queries and the scheduler filter on.

-- What this service knows of contracts, learned from contract events: the
-- folded contract (services/contracts/domain State), read when an incident
-- or exercise is opened on it.
CREATE TABLE incidents.contracts (
    contract_id     text PRIMARY KEY,
    customer_org_id text   NOT NULL,
    provider_org_id text   NOT NULL,
    state           jsonb  NOT NULL,
    position        bigint NOT NULL
);

CREATE TABLE incidents.incidents (
    incident_id     text PRIMARY KEY,
    contract_id     text        NOT NULL,
    customer_org_id text        NOT NULL,
    provider_org_id text        NOT NULL,
    status          smallint    NOT NULL,
    severity        smallint    NOT NULL,
    overdue         boolean     NOT NULL,
    reported_at     timestamptz NOT NULL,
    state           jsonb       NOT NULL,
    position        bigint      NOT NULL
) WITH (fillfactor = 80);
CREATE INDEX incidents_by_customer ON incidents.incidents (customer_org_id, reported_at DESC, incident_id DESC);
CREATE INDEX incidents_by_provider ON incidents.incidents (provider_org_id, reported_at DESC, incident_id DESC);
CREATE INDEX incidents_by_contract ON incidents.incidents (contract_id, reported_at DESC, incident_id DESC);

-- Every clock of every incident, for the overdue filter and the scheduler.
CREATE TABLE incidents.clocks (
    incident_id     text        NOT NULL REFERENCES incidents.incidents ON DELETE CASCADE,
    clock_id        text        NOT NULL,
    kind            smallint    NOT NULL,
    party_org_id    text        NOT NULL,
    customer_org_id text        NOT NULL,
    provider_org_id text        NOT NULL,
    due_at          timestamptz NOT NULL,
    met_at          timestamptz,
    overdue         boolean     NOT NULL,
    PRIMARY KEY (incident_id, clock_id)
);
-- The scheduler's question: which unmet clocks are due and not yet recorded overdue.
CREATE INDEX clocks_pending ON incidents.clocks (due_at) WHERE met_at IS NULL AND NOT overdue;

CREATE TABLE incidents.exercises (
    exercise_id     text PRIMARY KEY,
    contract_id     text        NOT NULL,
    customer_org_id text        NOT NULL,
    provider_org_id text        NOT NULL,
    scheduled_for   timestamptz NOT NULL,
    state           jsonb       NOT NULL,
    position        bigint      NOT NULL
);
CREATE INDEX exercises_by_contract ON incidents.exercises (contract_id, scheduled_for, exercise_id);

-- +goose Down
DROP TABLE incidents.exercises;
DROP TABLE incidents.clocks;
DROP TABLE incidents.incidents;
DROP TABLE incidents.contracts;
