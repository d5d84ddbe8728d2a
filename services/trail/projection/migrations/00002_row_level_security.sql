-- +goose Up
-- Queries run as jsm_reader with the calling org in jsm.org (libs/pgdb
-- ReadAs): whatever a query's WHERE clause says, it sees only events of
-- contracts the org is a party to. Hashes and checkpoints reveal nothing
-- about any org and are read by the service's own role.
GRANT SELECT ON trail.entries TO jsm_reader;
ALTER TABLE trail.entries ENABLE ROW LEVEL SECURITY;
ALTER TABLE trail.entries FORCE ROW LEVEL SECURITY;
CREATE POLICY parties_read ON trail.entries FOR SELECT TO jsm_reader
    USING (current_setting('jsm.org', true) IN (customer_org_id, provider_org_id));
CREATE POLICY projector_writes ON trail.entries FOR ALL TO CURRENT_USER
    USING (true) WITH CHECK (true);

-- +goose Down
DROP POLICY projector_writes ON trail.entries;
DROP POLICY parties_read ON trail.entries;
ALTER TABLE trail.entries NO FORCE ROW LEVEL SECURITY;
ALTER TABLE trail.entries DISABLE ROW LEVEL SECURITY;
REVOKE SELECT ON trail.entries FROM jsm_reader;
