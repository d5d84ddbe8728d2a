-- +goose Up
-- trail.hashes holds runs of consecutive records: a row is the stored
-- hashes of records first_record, first_record+1, ... one after the other
-- (each record's leaf hash and the interior nodes it completes, level by
-- level, 32 bytes each), which are consecutive stored-hash indexes from
-- StoredHashIndex(0, first_record) on. A batch writes a row per run of up
-- to 32 records (projection.RunRecords) rather than a row per record: a
-- row costs PostgreSQL far more than its bytes. A row of one record, as
-- the table held before, is a run of one: existing rows stay as they are.
ALTER TABLE trail.hashes RENAME COLUMN record TO first_record;
-- A run of 32 records is about 2 kB of hashes, which do not compress:
-- kept in the row, never tried for compression or moved out of line.
ALTER TABLE trail.hashes ALTER COLUMN hashes SET STORAGE PLAIN;

-- +goose Down
-- Back to a row per record: record r stores 1 + (trailing one bits of r)
-- hashes.
-- +goose StatementBegin
DO $$
DECLARE
    run record;
    r   bigint;
    off integer;
    n   integer;
BEGIN
    CREATE TEMPORARY TABLE split_hashes (record bigint, hashes bytea) ON COMMIT DROP;
    FOR run IN SELECT first_record, hashes FROM trail.hashes LOOP
        r := run.first_record;
        off := 0;
        WHILE off < length(run.hashes) LOOP
            n := 1;
            WHILE (r >> (n - 1)) & 1 = 1 LOOP
                n := n + 1;
            END LOOP;
            INSERT INTO split_hashes VALUES (r, substring(run.hashes FROM off + 1 FOR 32 * n));
            off := off + 32 * n;
            r := r + 1;
        END LOOP;
    END LOOP;
    TRUNCATE trail.hashes;
    ALTER TABLE trail.hashes RENAME COLUMN first_record TO record;
    INSERT INTO trail.hashes SELECT record, hashes FROM split_hashes;
END $$;
-- +goose StatementEnd
ALTER TABLE trail.hashes ALTER COLUMN hashes SET STORAGE EXTENDED;
