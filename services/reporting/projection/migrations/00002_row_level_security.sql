-- +goose Up
-- Queries run as jsm_reader with the calling org in jsm.org (libs/pgdb
-- ReadAs): whatever a query's WHERE clause says, it sees only rows of
-- contracts the org is a party to. The projector, as the owner, writes
-- every row. reporting.contracts and reporting.incident_states are the
-- service's own (lookup, projector): no reader.
GRANT SELECT ON reporting.incidents, reporting.clocks, reporting.remediations, reporting.changes, reporting.findings, reporting.measures, reporting.reports TO jsm_reader;

ALTER TABLE reporting.incidents ENABLE ROW LEVEL SECURITY;
ALTER TABLE reporting.incidents FORCE ROW LEVEL SECURITY;
CREATE POLICY parties_read ON reporting.incidents FOR SELECT TO jsm_reader
    USING (current_setting('jsm.org', true) IN (customer_org_id, provider_org_id));
CREATE POLICY projector_writes ON reporting.incidents FOR ALL TO CURRENT_USER
    USING (true) WITH CHECK (true);

ALTER TABLE reporting.clocks ENABLE ROW LEVEL SECURITY;
ALTER TABLE reporting.clocks FORCE ROW LEVEL SECURITY;
CREATE POLICY parties_read ON reporting.clocks FOR SELECT TO jsm_reader
    USING (current_setting('jsm.org', true) IN (customer_org_id, provider_org_id));
CREATE POLICY projector_writes ON reporting.clocks FOR ALL TO CURRENT_USER
    USING (true) WITH CHECK (true);

ALTER TABLE reporting.remediations ENABLE ROW LEVEL SECURITY;
ALTER TABLE reporting.remediations FORCE ROW LEVEL SECURITY;
CREATE POLICY parties_read ON reporting.remediations FOR SELECT TO jsm_reader
    USING (current_setting('jsm.org', true) IN (customer_org_id, provider_org_id));
CREATE POLICY projector_writes ON reporting.remediations FOR ALL TO CURRENT_USER
    USING (true) WITH CHECK (true);

ALTER TABLE reporting.changes ENABLE ROW LEVEL SECURITY;
ALTER TABLE reporting.changes FORCE ROW LEVEL SECURITY;
CREATE POLICY parties_read ON reporting.changes FOR SELECT TO jsm_reader
    USING (current_setting('jsm.org', true) IN (customer_org_id, provider_org_id));
CREATE POLICY projector_writes ON reporting.changes FOR ALL TO CURRENT_USER
    USING (true) WITH CHECK (true);

ALTER TABLE reporting.findings ENABLE ROW LEVEL SECURITY;
ALTER TABLE reporting.findings FORCE ROW LEVEL SECURITY;
CREATE POLICY parties_read ON reporting.findings FOR SELECT TO jsm_reader
    USING (current_setting('jsm.org', true) IN (customer_org_id, provider_org_id));
CREATE POLICY projector_writes ON reporting.findings FOR ALL TO CURRENT_USER
    USING (true) WITH CHECK (true);

ALTER TABLE reporting.measures ENABLE ROW LEVEL SECURITY;
ALTER TABLE reporting.measures FORCE ROW LEVEL SECURITY;
CREATE POLICY parties_read ON reporting.measures FOR SELECT TO jsm_reader
    USING (current_setting('jsm.org', true) IN (customer_org_id, provider_org_id));
CREATE POLICY projector_writes ON reporting.measures FOR ALL TO CURRENT_USER
    USING (true) WITH CHECK (true);

ALTER TABLE reporting.reports ENABLE ROW LEVEL SECURITY;
ALTER TABLE reporting.reports FORCE ROW LEVEL SECURITY;
CREATE POLICY parties_read ON reporting.reports FOR SELECT TO jsm_reader
    USING (current_setting('jsm.org', true) IN (customer_org_id, provider_org_id));
CREATE POLICY projector_writes ON reporting.reports FOR ALL TO CURRENT_USER
    USING (true) WITH CHECK (true);

-- +goose Down
DROP POLICY projector_writes ON reporting.reports;
DROP POLICY parties_read ON reporting.reports;
ALTER TABLE reporting.reports NO FORCE ROW LEVEL SECURITY;
ALTER TABLE reporting.reports DISABLE ROW LEVEL SECURITY;
DROP POLICY projector_writes ON reporting.measures;
DROP POLICY parties_read ON reporting.measures;
ALTER TABLE reporting.measures NO FORCE ROW LEVEL SECURITY;
ALTER TABLE reporting.measures DISABLE ROW LEVEL SECURITY;
DROP POLICY projector_writes ON reporting.findings;
DROP POLICY parties_read ON reporting.findings;
ALTER TABLE reporting.findings NO FORCE ROW LEVEL SECURITY;
ALTER TABLE reporting.findings DISABLE ROW LEVEL SECURITY;
DROP POLICY projector_writes ON reporting.changes;
DROP POLICY parties_read ON reporting.changes;
ALTER TABLE reporting.changes NO FORCE ROW LEVEL SECURITY;
ALTER TABLE reporting.changes DISABLE ROW LEVEL SECURITY;
DROP POLICY projector_writes ON reporting.remediations;
DROP POLICY parties_read ON reporting.remediations;
ALTER TABLE reporting.remediations NO FORCE ROW LEVEL SECURITY;
ALTER TABLE reporting.remediations DISABLE ROW LEVEL SECURITY;
DROP POLICY projector_writes ON reporting.clocks;
DROP POLICY parties_read ON reporting.clocks;
ALTER TABLE reporting.clocks NO FORCE ROW LEVEL SECURITY;
ALTER TABLE reporting.clocks DISABLE ROW LEVEL SECURITY;
DROP POLICY projector_writes ON reporting.incidents;
DROP POLICY parties_read ON reporting.incidents;
ALTER TABLE reporting.incidents NO FORCE ROW LEVEL SECURITY;
ALTER TABLE reporting.incidents DISABLE ROW LEVEL SECURITY;
REVOKE SELECT ON reporting.incidents, reporting.clocks, reporting.remediations, reporting.changes, reporting.findings, reporting.measures, reporting.reports FROM jsm_reader;
