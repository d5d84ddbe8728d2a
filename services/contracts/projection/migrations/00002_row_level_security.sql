-- +goose Up
-- Queries run as jsm_reader with the calling org in jsm.org (libs/pgdb
-- ReadAs): whatever a query's WHERE clause says, it sees only contracts the
-- org is a party to. The projector, as the owner, writes every row.
GRANT SELECT ON contracts.contracts TO jsm_reader;
ALTER TABLE contracts.contracts ENABLE ROW LEVEL SECURITY;
ALTER TABLE contracts.contracts FORCE ROW LEVEL SECURITY;
CREATE POLICY parties_read ON contracts.contracts FOR SELECT TO jsm_reader
    USING (current_setting('jsm.org', true) IN (customer_org_id, provider_org_id));
CREATE POLICY projector_writes ON contracts.contracts FOR ALL TO CURRENT_USER
    USING (true) WITH CHECK (true);

-- +goose Down
DROP POLICY projector_writes ON contracts.contracts;
DROP POLICY parties_read ON contracts.contracts;
ALTER TABLE contracts.contracts NO FORCE ROW LEVEL SECURITY;
ALTER TABLE contracts.contracts DISABLE ROW LEVEL SECURITY;
REVOKE SELECT ON contracts.contracts FROM jsm_reader;
