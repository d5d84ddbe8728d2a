-- +goose Up
-- The reporting read model: per-contract facts from every area's events,
-- rows with timestamps, so that the KPIs of any period are computed by SQL
-- at query time; and the reports. Every table can be dropped and rebuilt
-- from the stream.

-- What this service knows of contracts (package known).
CREATE TABLE reporting.contracts (
    contract_id     text PRIMARY KEY,
    customer_org_id text   NOT NULL,
    provider_org_id text   NOT NULL,
    state           jsonb  NOT NULL,
    position        bigint NOT NULL
);

-- The folded incidents (services/incidents/domain State): their clocks
-- follow the incidents area's own rules. The projector's own table.
CREATE TABLE reporting.incident_states (
    incident_id text PRIMARY KEY,
    state       jsonb NOT NULL
);

CREATE TABLE reporting.incidents (
    incident_id     text PRIMARY KEY,
    contract_id     text        NOT NULL,
    customer_org_id text        NOT NULL,
    provider_org_id text        NOT NULL,
    title           text        NOT NULL,
    severity        smallint    NOT NULL,
    status          smallint    NOT NULL,
    aware_at        timestamptz NOT NULL,
    reported_at     timestamptz NOT NULL,
    -- The reporter's first notification of the other party.
    notified_at     timestamptz,
    -- The latest resolution.
    resolved_at     timestamptz,
    -- The open clocks (jsm.reporting.v1.OpenClock as JSON) for the situation.
    clocks          jsonb       NOT NULL
);
CREATE INDEX incidents_by_contract ON reporting.incidents (contract_id, reported_at);

-- Every deadline of every incident.
CREATE TABLE reporting.clocks (
    incident_id     text        NOT NULL,
    clock_id        text        NOT NULL,
    contract_id     text        NOT NULL,
    customer_org_id text        NOT NULL,
    provider_org_id text        NOT NULL,
    kind            smallint    NOT NULL,
    started_at      timestamptz,
    due_at          timestamptz NOT NULL,
    met_at          timestamptz,
    PRIMARY KEY (incident_id, clock_id)
);
CREATE INDEX clocks_by_contract ON reporting.clocks (contract_id, kind, due_at);

CREATE TABLE reporting.remediations (
    remediation_id  text PRIMARY KEY,
    contract_id     text        NOT NULL,
    customer_org_id text        NOT NULL,
    provider_org_id text        NOT NULL,
    cve_id          text        NOT NULL,
    severity        smallint    NOT NULL,
    registered_at   timestamptz NOT NULL,
    -- The due date: at registration, then as a deferral's expiry moves it;
    -- none without a patch deadline for the severity.
    due_at          timestamptz,
    -- The latest patch applied, and the successful verification that closes it.
    patched_at      timestamptz,
    closed_at       timestamptz,
    overdue_at      timestamptz
);
CREATE INDEX remediations_by_contract ON reporting.remediations (contract_id, due_at);

CREATE TABLE reporting.changes (
    change_id       text PRIMARY KEY,
    contract_id     text        NOT NULL,
    customer_org_id text        NOT NULL,
    provider_org_id text        NOT NULL,
    title           text        NOT NULL,
    emergency       boolean     NOT NULL,
    requested_at    timestamptz NOT NULL,
    approved_at     timestamptz,
    rejected_at     timestamptz,
    failed_at       timestamptz,
    -- The parties whose approval the change still waits for.
    awaiting        text[]      NOT NULL
);
CREATE INDEX changes_by_contract ON reporting.changes (contract_id, requested_at);

CREATE TABLE reporting.findings (
    finding_id      text PRIMARY KEY,
    audit_id        text        NOT NULL,
    contract_id     text        NOT NULL,
    customer_org_id text        NOT NULL,
    provider_org_id text        NOT NULL,
    title           text        NOT NULL,
    severity        smallint    NOT NULL,
    recorded_at     timestamptz NOT NULL,
    closed_at       timestamptz
);
CREATE INDEX findings_by_contract ON reporting.findings (contract_id, recorded_at);

CREATE TABLE reporting.measures (
    measure_id      text PRIMARY KEY,
    audit_id        text        NOT NULL,
    finding_id      text        NOT NULL,
    contract_id     text        NOT NULL,
    customer_org_id text        NOT NULL,
    provider_org_id text        NOT NULL,
    due_at          timestamptz NOT NULL,
    overdue_at      timestamptz,
    -- Implemented (or rejected): no longer owed.
    done_at         timestamptz
);
CREATE INDEX measures_by_contract ON reporting.measures (contract_id);

CREATE TABLE reporting.reports (
    report_id        text PRIMARY KEY,
    contract_id      text        NOT NULL,
    customer_org_id  text        NOT NULL,
    provider_org_id  text        NOT NULL,
    status           smallint    NOT NULL,
    period_start     timestamptz NOT NULL,
    period_end       timestamptz NOT NULL,
    generated_at     timestamptz NOT NULL,
    delivery_pending boolean     NOT NULL,
    delivery_due_at  timestamptz NOT NULL,
    ack_pending      boolean     NOT NULL,
    ack_due_at       timestamptz,
    overdue          boolean     NOT NULL,
    state            jsonb       NOT NULL,
    position         bigint      NOT NULL
) WITH (fillfactor = 80);
CREATE INDEX reports_by_customer ON reporting.reports (customer_org_id, generated_at DESC, report_id DESC);
CREATE INDEX reports_by_provider ON reporting.reports (provider_org_id, generated_at DESC, report_id DESC);
CREATE INDEX reports_by_contract ON reporting.reports (contract_id, period_start);
CREATE INDEX reports_delivery_pending ON reporting.reports (delivery_due_at) WHERE delivery_pending;
CREATE INDEX reports_ack_pending ON reporting.reports (ack_due_at) WHERE ack_pending;

-- +goose Down
DROP TABLE reporting.reports;
DROP TABLE reporting.measures;
DROP TABLE reporting.findings;
DROP TABLE reporting.changes;
DROP TABLE reporting.remediations;
DROP TABLE reporting.clocks;
DROP TABLE reporting.incidents;
DROP TABLE reporting.incident_states;
DROP TABLE reporting.contracts;
