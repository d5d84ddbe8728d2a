-- +goose Up
-- Queries run as jsm_reader with the calling org in jsm.org (libs/pgdb
-- ReadAs): whatever a query's WHERE clause says, it sees only rows of
-- contracts the org is a party to. The projector, as the owner, writes
-- every row. changeadvisory.contracts is the service's own lookup: no reader.
GRANT SELECT ON changeadvisory.changes TO jsm_reader;

ALTER TABLE changeadvisory.changes ENABLE ROW LEVEL SECURITY;
ALTER TABLE changeadvisory.changes FORCE ROW LEVEL SECURITY;
CREATE POLICY parties_read ON changeadvisory.changes FOR SELECT TO jsm_reader
    USING (current_setting('jsm.org', true) IN (customer_org_id, provider_org_id));
CREATE POLICY projector_writes ON changeadvisory.changes FOR ALL TO CURRENT_USER
    USING (true) WITH CHECK (true);

-- +goose Down
DROP POLICY projector_writes ON changeadvisory.changes;
DROP POLICY parties_read ON changeadvisory.changes;
ALTER TABLE changeadvisory.changes NO FORCE ROW LEVEL SECURITY;
ALTER TABLE changeadvisory.changes DISABLE ROW LEVEL SECURITY;
REVOKE SELECT ON changeadvisory.changes FROM jsm_reader;
