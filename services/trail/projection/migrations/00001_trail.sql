-- +goose Up
-- The trail: every event of JSM_EVENTS, in stream order, append-only.
-- idx is the entry's leaf index in the Merkle tree (events are numbered
-- without gaps even where the stream skips a sequence).
CREATE TABLE trail.entries (
    position        bigint PRIMARY KEY,
    idx             bigint      NOT NULL, -- grows with position, without gaps
    id              text        NOT NULL,
    type            text        NOT NULL,
    source          text        NOT NULL,
    aggregate_type  text        NOT NULL,
    aggregate_id    text        NOT NULL,
    contract_id     text        NOT NULL,
    customer_org_id text        NOT NULL,
    provider_org_id text        NOT NULL,
    actor_org_id    text        NOT NULL,
    actor           text        NOT NULL,
    actor_role      text        NOT NULL,
    correlation_id  text        NOT NULL,
    causation_id    text        NOT NULL,
    schema_version  integer     NOT NULL,
    time            timestamptz NOT NULL,
    -- The event time's nanoseconds within its microsecond, which
    -- timestamptz drops: the trail keeps the time exactly as stamped.
    nanos           smallint    NOT NULL,
    payload         bytea       NOT NULL
);
-- The search indexes are not here: see indexes.sql. They are built once
-- the log has caught up with the stream, after a bulk load.

-- The tlog stored hashes (golang.org/x/mod/sumdb/tlog), one row per
-- record (leaf index): its leaf hash and the interior nodes it completes,
-- level by level, 32 bytes each. One row per record rather than per hash
-- halves the rows a batch writes.
CREATE TABLE trail.hashes (
    record bigint PRIMARY KEY,
    hashes bytea NOT NULL
);

-- The tree's size, moved with every batch in the projector's transaction.
CREATE TABLE trail.tree (
    id   boolean PRIMARY KEY DEFAULT true CHECK (id),
    size bigint NOT NULL
);
INSERT INTO trail.tree (size) VALUES (0);

-- Signed checkpoints (C2SP tlog-checkpoint notes). They are the log's
-- published history: a rebuild keeps them and must reproduce their roots.
CREATE TABLE trail.tree_heads (
    size      bigint PRIMARY KEY,
    root      bytea       NOT NULL,
    note      text        NOT NULL,
    signed_at timestamptz NOT NULL DEFAULT now()
);

-- Append-only: rows are never changed or deleted one by one. A rebuild
-- empties the tables with TRUNCATE, which these triggers do not see.
-- +goose StatementBegin
CREATE FUNCTION trail.append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'trail.% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
-- +goose StatementEnd
CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON trail.entries
    FOR EACH ROW EXECUTE FUNCTION trail.append_only();
CREATE TRIGGER hashes_append_only BEFORE UPDATE OR DELETE ON trail.hashes
    FOR EACH ROW EXECUTE FUNCTION trail.append_only();
CREATE TRIGGER tree_heads_append_only BEFORE UPDATE OR DELETE ON trail.tree_heads
    FOR EACH ROW EXECUTE FUNCTION trail.append_only();

-- +goose Down
DROP TABLE trail.tree_heads;
DROP TABLE trail.tree;
DROP TABLE trail.hashes;
DROP TABLE trail.entries;
DROP FUNCTION trail.append_only();
