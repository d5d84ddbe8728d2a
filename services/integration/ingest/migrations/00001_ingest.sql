-- +goose Up
-- The ingest half of the integration service. contracts and sources are a
-- read model (rebuilt from the stream). events is the inbox: one row per
-- CloudEvent a source sent (unique per source and CloudEvent id, which is
-- what makes a resent event a duplicate) with what became of it; refs maps
-- a ticket of an external system to the one platform object it became.
-- A rebuild keeps both: they record what was received, not what the
-- stream says.

-- What the service knows of contracts (services/contracts/known).
CREATE TABLE ingest.contracts (
    contract_id     text PRIMARY KEY,
    customer_org_id text   NOT NULL,
    provider_org_id text   NOT NULL,
    state           jsonb  NOT NULL,
    position        bigint NOT NULL
);

CREATE TABLE ingest.sources (
    source_id     text PRIMARY KEY,
    org_id        text        NOT NULL,
    registered_at timestamptz NOT NULL,
    -- The folded aggregate (the domain's JSON).
    state         jsonb       NOT NULL,
    position      bigint      NOT NULL
);
CREATE INDEX sources_by_org ON ingest.sources (org_id, registered_at, source_id);

CREATE TABLE ingest.events (
    source_id    text        NOT NULL,
    event_id     text        NOT NULL,
    org_id       text        NOT NULL,
    -- Orders the log (and its pages) as received.
    seq          bigint GENERATED ALWAYS AS IDENTITY,
    type         text        NOT NULL,
    subject      text        NOT NULL,
    event_time   timestamptz,
    received_at  timestamptz NOT NULL,
    transport    text        NOT NULL,
    -- jsm.integration.v1.IngestOutcome
    outcome      smallint    NOT NULL,
    ref_system   text        NOT NULL DEFAULT '',
    ref_id       text        NOT NULL DEFAULT '',
    contract_id  text        NOT NULL DEFAULT '',
    object_type  text        NOT NULL DEFAULT '',
    object_id    text        NOT NULL DEFAULT '',
    position     bigint      NOT NULL DEFAULT 0,
    reason_type  text        NOT NULL DEFAULT '',
    reason       text        NOT NULL DEFAULT '',
    -- The event as received (structured JSON), kept for rejected events.
    original     bytea,
    PRIMARY KEY (source_id, event_id)
);
CREATE INDEX events_by_org ON ingest.events (org_id, seq);
CREATE INDEX events_rejected_by_org ON ingest.events (org_id, seq) WHERE outcome = 3;

CREATE TABLE ingest.refs (
    org_id      text   NOT NULL,
    object_type text   NOT NULL,
    system      text   NOT NULL,
    ref_id      text   NOT NULL,
    contract_id text   NOT NULL,
    object_id   text   NOT NULL,
    -- The stream position of the object's latest change through ingest, so
    -- a read of the object waits for it.
    position    bigint NOT NULL,
    PRIMARY KEY (org_id, object_type, system, ref_id)
);

-- Queries run as jsm_reader with the calling org in jsm.org (libs/pgdb
-- ReadAs): an org sees only its own sources and ingested events, whatever
-- a query's WHERE clause says. The service, as the owner, writes every row.
GRANT SELECT ON ingest.sources, ingest.events TO jsm_reader;

ALTER TABLE ingest.sources ENABLE ROW LEVEL SECURITY;
ALTER TABLE ingest.sources FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_read ON ingest.sources FOR SELECT TO jsm_reader
    USING (org_id = current_setting('jsm.org', true));
CREATE POLICY service_writes ON ingest.sources FOR ALL TO CURRENT_USER
    USING (true) WITH CHECK (true);

ALTER TABLE ingest.events ENABLE ROW LEVEL SECURITY;
ALTER TABLE ingest.events FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_read ON ingest.events FOR SELECT TO jsm_reader
    USING (org_id = current_setting('jsm.org', true));
CREATE POLICY service_writes ON ingest.events FOR ALL TO CURRENT_USER
    USING (true) WITH CHECK (true);

-- +goose Down
DROP POLICY service_writes ON ingest.events;
DROP POLICY owner_read ON ingest.events;
DROP POLICY service_writes ON ingest.sources;
DROP POLICY owner_read ON ingest.sources;
REVOKE SELECT ON ingest.sources, ingest.events FROM jsm_reader;
DROP TABLE ingest.refs;
DROP TABLE ingest.events;
DROP TABLE ingest.sources;
DROP TABLE ingest.contracts;
