-- +goose Up
-- Queries run as jsm_reader with the calling org in jsm.org (libs/pgdb
-- ReadAs): whatever a query's WHERE clause says, it sees only rows of
-- contracts the org is a party to. The projector, as the owner, writes
-- every row. incidents.contracts is the service's own lookup: no reader.
GRANT SELECT ON incidents.incidents, incidents.clocks, incidents.exercises TO jsm_reader;

ALTER TABLE incidents.incidents ENABLE ROW LEVEL SECURITY;
ALTER TABLE incidents.incidents FORCE ROW LEVEL SECURITY;
CREATE POLICY parties_read ON incidents.incidents FOR SELECT TO jsm_reader
    USING (current_setting('jsm.org', true) IN (customer_org_id, provider_org_id));
CREATE POLICY projector_writes ON incidents.incidents FOR ALL TO CURRENT_USER
    USING (true) WITH CHECK (true);

ALTER TABLE incidents.clocks ENABLE ROW LEVEL SECURITY;
ALTER TABLE incidents.clocks FORCE ROW LEVEL SECURITY;
CREATE POLICY parties_read ON incidents.clocks FOR SELECT TO jsm_reader
    USING (current_setting('jsm.org', true) IN (customer_org_id, provider_org_id));
CREATE POLICY projector_writes ON incidents.clocks FOR ALL TO CURRENT_USER
    USING (true) WITH CHECK (true);

ALTER TABLE incidents.exercises ENABLE ROW LEVEL SECURITY;
ALTER TABLE incidents.exercises FORCE ROW LEVEL SECURITY;
CREATE POLICY parties_read ON incidents.exercises FOR SELECT TO jsm_reader
    USING (current_setting('jsm.org', true) IN (customer_org_id, provider_org_id));
CREATE POLICY projector_writes ON incidents.exercises FOR ALL TO CURRENT_USER
    USING (true) WITH CHECK (true);

-- +goose Down
DROP POLICY projector_writes ON incidents.exercises;
DROP POLICY parties_read ON incidents.exercises;
ALTER TABLE incidents.exercises NO FORCE ROW LEVEL SECURITY;
ALTER TABLE incidents.exercises DISABLE ROW LEVEL SECURITY;
DROP POLICY projector_writes ON incidents.clocks;
DROP POLICY parties_read ON incidents.clocks;
ALTER TABLE incidents.clocks NO FORCE ROW LEVEL SECURITY;
ALTER TABLE incidents.clocks DISABLE ROW LEVEL SECURITY;
DROP POLICY projector_writes ON incidents.incidents;
DROP POLICY parties_read ON incidents.incidents;
ALTER TABLE incidents.incidents NO FORCE ROW LEVEL SECURITY;
ALTER TABLE incidents.incidents DISABLE ROW LEVEL SECURITY;
REVOKE SELECT ON incidents.incidents, incidents.clocks, incidents.exercises FROM jsm_reader;
