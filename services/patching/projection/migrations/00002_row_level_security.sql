-- +goose Up
-- Queries run as jsm_reader with the calling org in jsm.org (libs/pgdb
-- ReadAs): they see only rows of contracts the org is a party to.
GRANT SELECT ON patching.assets, patching.software, patching.remediations, patching.remediation_assets TO jsm_reader;

ALTER TABLE patching.assets ENABLE ROW LEVEL SECURITY;
ALTER TABLE patching.assets FORCE ROW LEVEL SECURITY;
CREATE POLICY parties_read ON patching.assets FOR SELECT TO jsm_reader
    USING (current_setting('jsm.org', true) IN (customer_org_id, provider_org_id));
CREATE POLICY projector_writes ON patching.assets FOR ALL TO CURRENT_USER
    USING (true) WITH CHECK (true);

ALTER TABLE patching.software ENABLE ROW LEVEL SECURITY;
ALTER TABLE patching.software FORCE ROW LEVEL SECURITY;
CREATE POLICY parties_read ON patching.software FOR SELECT TO jsm_reader
    USING (current_setting('jsm.org', true) IN (customer_org_id, provider_org_id));
CREATE POLICY projector_writes ON patching.software FOR ALL TO CURRENT_USER
    USING (true) WITH CHECK (true);

ALTER TABLE patching.remediations ENABLE ROW LEVEL SECURITY;
ALTER TABLE patching.remediations FORCE ROW LEVEL SECURITY;
CREATE POLICY parties_read ON patching.remediations FOR SELECT TO jsm_reader
    USING (current_setting('jsm.org', true) IN (customer_org_id, provider_org_id));
CREATE POLICY projector_writes ON patching.remediations FOR ALL TO CURRENT_USER
    USING (true) WITH CHECK (true);

ALTER TABLE patching.remediation_assets ENABLE ROW LEVEL SECURITY;
ALTER TABLE patching.remediation_assets FORCE ROW LEVEL SECURITY;
CREATE POLICY parties_read ON patching.remediation_assets FOR SELECT TO jsm_reader
    USING (current_setting('jsm.org', true) IN (customer_org_id, provider_org_id));
CREATE POLICY projector_writes ON patching.remediation_assets FOR ALL TO CURRENT_USER
    USING (true) WITH CHECK (true);

-- +goose Down
DROP POLICY projector_writes ON patching.remediation_assets;
DROP POLICY parties_read ON patching.remediation_assets;
ALTER TABLE patching.remediation_assets NO FORCE ROW LEVEL SECURITY;
ALTER TABLE patching.remediation_assets DISABLE ROW LEVEL SECURITY;
DROP POLICY projector_writes ON patching.remediations;
DROP POLICY parties_read ON patching.remediations;
ALTER TABLE patching.remediations NO FORCE ROW LEVEL SECURITY;
ALTER TABLE patching.remediations DISABLE ROW LEVEL SECURITY;
DROP POLICY projector_writes ON patching.software;
DROP POLICY parties_read ON patching.software;
ALTER TABLE patching.software NO FORCE ROW LEVEL SECURITY;
ALTER TABLE patching.software DISABLE ROW LEVEL SECURITY;
DROP POLICY projector_writes ON patching.assets;
DROP POLICY parties_read ON patching.assets;
ALTER TABLE patching.assets NO FORCE ROW LEVEL SECURITY;
ALTER TABLE patching.assets DISABLE ROW LEVEL SECURITY;
REVOKE SELECT ON patching.assets, patching.software, patching.remediations, patching.remediation_assets FROM jsm_reader;
