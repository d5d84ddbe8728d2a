-- +goose Up
-- Reads now run as jsm_reader_ingest, the reader of this schema alone (libs/pgdb
-- ReadAs): the shared jsm_reader could read every service's tables, so any
-- service able to become it could read another's rows. Whatever
-- jsm_reader was granted here, and the policies naming it, move to
-- jsm_reader_ingest; jsm_reader is left nothing in this schema.
-- +goose StatementBegin
DO $$
DECLARE
    stmt text;
BEGIN
    FOR stmt IN
        SELECT format('ALTER POLICY %I ON %s TO %s', p.polname, c.oid::regclass,
                      (SELECT string_agg(quote_ident(CASE WHEN r = 'jsm_reader'::regrole THEN 'jsm_reader_ingest' ELSE r::regrole::text END), ', ')
                       FROM unnest(p.polroles) AS r))
        FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
        WHERE c.relnamespace = 'ingest'::regnamespace AND 'jsm_reader'::regrole = ANY (p.polroles)
        UNION ALL
        SELECT format('GRANT SELECT ON %s TO jsm_reader_ingest', c.oid::regclass)
        FROM pg_class c
        WHERE c.relnamespace = 'ingest'::regnamespace AND has_table_privilege('jsm_reader', c.oid, 'SELECT')
    LOOP
        EXECUTE stmt;
    END LOOP;
END $$;
-- +goose StatementEnd
REVOKE ALL ON ALL TABLES IN SCHEMA ingest FROM jsm_reader;
REVOKE ALL ON SCHEMA ingest FROM jsm_reader;

-- +goose Down
GRANT USAGE ON SCHEMA ingest TO jsm_reader;
-- +goose StatementBegin
DO $$
DECLARE
    stmt text;
BEGIN
    FOR stmt IN
        SELECT format('ALTER POLICY %I ON %s TO %s', p.polname, c.oid::regclass,
                      (SELECT string_agg(quote_ident(CASE WHEN r = 'jsm_reader_ingest'::regrole THEN 'jsm_reader' ELSE r::regrole::text END), ', ')
                       FROM unnest(p.polroles) AS r))
        FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
        WHERE c.relnamespace = 'ingest'::regnamespace AND 'jsm_reader_ingest'::regrole = ANY (p.polroles)
        UNION ALL
        SELECT format('GRANT SELECT ON %s TO jsm_reader', c.oid::regclass)
        FROM pg_class c
        WHERE c.relnamespace = 'ingest'::regnamespace AND has_table_privilege('jsm_reader_ingest', c.oid, 'SELECT')
    LOOP
        EXECUTE stmt;
    END LOOP;
END $$;
-- +goose StatementEnd
REVOKE SELECT ON ALL TABLES IN SCHEMA ingest FROM jsm_reader_ingest;
