-- +goose Up
-- Queries run as jsm_reader with the calling org in jsm.org (libs/pgdb
-- ReadAs): an org sees only its own subscriptions, deliveries and
-- attempts, whatever a query's WHERE clause says. The service, as the
-- owner, writes every row. contracts and replays are the service's own:
-- no reader.
GRANT SELECT ON webhooks.subscriptions, webhooks.deliveries, webhooks.attempts TO jsm_reader;

ALTER TABLE webhooks.subscriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhooks.subscriptions FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_read ON webhooks.subscriptions FOR SELECT TO jsm_reader
    USING (org_id = current_setting('jsm.org', true));
CREATE POLICY service_writes ON webhooks.subscriptions FOR ALL TO CURRENT_USER
    USING (true) WITH CHECK (true);

ALTER TABLE webhooks.deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhooks.deliveries FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_read ON webhooks.deliveries FOR SELECT TO jsm_reader
    USING (org_id = current_setting('jsm.org', true));
CREATE POLICY service_writes ON webhooks.deliveries FOR ALL TO CURRENT_USER
    USING (true) WITH CHECK (true);

ALTER TABLE webhooks.attempts ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhooks.attempts FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_read ON webhooks.attempts FOR SELECT TO jsm_reader
    USING (org_id = current_setting('jsm.org', true));
CREATE POLICY service_writes ON webhooks.attempts FOR ALL TO CURRENT_USER
    USING (true) WITH CHECK (true);

-- +goose Down
DROP POLICY service_writes ON webhooks.attempts;
DROP POLICY owner_read ON webhooks.attempts;
ALTER TABLE webhooks.attempts NO FORCE ROW LEVEL SECURITY;
ALTER TABLE webhooks.attempts DISABLE ROW LEVEL SECURITY;
DROP POLICY service_writes ON webhooks.deliveries;
DROP POLICY owner_read ON webhooks.deliveries;
ALTER TABLE webhooks.deliveries NO FORCE ROW LEVEL SECURITY;
ALTER TABLE webhooks.deliveries DISABLE ROW LEVEL SECURITY;
DROP POLICY service_writes ON webhooks.subscriptions;
DROP POLICY owner_read ON webhooks.subscriptions;
ALTER TABLE webhooks.subscriptions NO FORCE ROW LEVEL SECURITY;
ALTER TABLE webhooks.subscriptions DISABLE ROW LEVEL SECURITY;
REVOKE SELECT ON webhooks.subscriptions, webhooks.deliveries, webhooks.attempts FROM jsm_reader;
