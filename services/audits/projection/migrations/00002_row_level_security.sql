-- +goose Up
-- Queries run as jsm_reader with the calling org in jsm.org (libs/pgdb
-- ReadAs): whatever a query's WHERE clause says, it sees only rows of
-- contracts the org is a party to. The projector, as the owner, writes
-- every row. audits.contracts and audits.measures are the service's own
-- (lookup, scheduler): no reader.
GRANT SELECT ON audits.audits, audits.findings, audits.checklists TO jsm_reader;

ALTER TABLE audits.audits ENABLE ROW LEVEL SECURITY;
ALTER TABLE audits.audits FORCE ROW LEVEL SECURITY;
CREATE POLICY parties_read ON audits.audits FOR SELECT TO jsm_reader
    USING (current_setting('jsm.org', true) IN (customer_org_id, provider_org_id));
CREATE POLICY projector_writes ON audits.audits FOR ALL TO CURRENT_USER
    USING (true) WITH CHECK (true);

ALTER TABLE audits.findings ENABLE ROW LEVEL SECURITY;
ALTER TABLE audits.findings FORCE ROW LEVEL SECURITY;
CREATE POLICY parties_read ON audits.findings FOR SELECT TO jsm_reader
    USING (current_setting('jsm.org', true) IN (customer_org_id, provider_org_id));
CREATE POLICY projector_writes ON audits.findings FOR ALL TO CURRENT_USER
    USING (true) WITH CHECK (true);

ALTER TABLE audits.checklists ENABLE ROW LEVEL SECURITY;
ALTER TABLE audits.checklists FORCE ROW LEVEL SECURITY;
CREATE POLICY parties_read ON audits.checklists FOR SELECT TO jsm_reader
    USING (current_setting('jsm.org', true) IN (customer_org_id, provider_org_id));
CREATE POLICY projector_writes ON audits.checklists FOR ALL TO CURRENT_USER
    USING (true) WITH CHECK (true);

-- +goose Down
DROP POLICY projector_writes ON audits.checklists;
DROP POLICY parties_read ON audits.checklists;
ALTER TABLE audits.checklists NO FORCE ROW LEVEL SECURITY;
ALTER TABLE audits.checklists DISABLE ROW LEVEL SECURITY;
DROP POLICY projector_writes ON audits.findings;
DROP POLICY parties_read ON audits.findings;
ALTER TABLE audits.findings NO FORCE ROW LEVEL SECURITY;
ALTER TABLE audits.findings DISABLE ROW LEVEL SECURITY;
DROP POLICY projector_writes ON audits.audits;
DROP POLICY parties_read ON audits.audits;
ALTER TABLE audits.audits NO FORCE ROW LEVEL SECURITY;
ALTER TABLE audits.audits DISABLE ROW LEVEL SECURITY;
REVOKE SELECT ON audits.audits, audits.findings, audits.checklists FROM jsm_reader;
