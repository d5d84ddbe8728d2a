-- +goose Up
-- Who wrote each entry: the pinned key (libs/eventsig, "<area>+<hash>")
-- whose signature the trail checked, the signature itself and the trace
-- context it also covers, so an export can be checked against the pinned
-- keys offline. Empty for entries logged by a trail that pins no keys.
ALTER TABLE trail.entries
    ADD COLUMN trace_parent text  NOT NULL DEFAULT '',
    ADD COLUMN signer       text  NOT NULL DEFAULT '',
    ADD COLUMN signature    bytea NOT NULL DEFAULT '';

-- Events the trail refused to log: unsigned, signed by a key it does not
-- pin, by another area's key, or with a signature that does not match.
-- They stay in the stream; a rebuild empties this table with the log and
-- decides again from the stream and the pinned keys. Read by the service's
-- own role only (the operator's ListQuarantine), never by an org.
CREATE TABLE trail.unattributed (
    position       bigint PRIMARY KEY,
    id             text        NOT NULL,
    type           text        NOT NULL,
    source         text        NOT NULL,
    aggregate_type text        NOT NULL,
    aggregate_id   text        NOT NULL,
    actor_org_id   text        NOT NULL,
    actor          text        NOT NULL,
    signer         text        NOT NULL,
    reason         text        NOT NULL,
    detail         text        NOT NULL,
    time           timestamptz NOT NULL,
    quarantined_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE trail.unattributed;
ALTER TABLE trail.entries DROP COLUMN signature, DROP COLUMN signer, DROP COLUMN trace_parent;
