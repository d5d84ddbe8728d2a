-- +goose Up
-- Witnesses' cosignatures (C2SP tlog-cosignature signature lines) of signed
-- checkpoints, one per witness key and size. A witness's largest cosigned
-- size is the size it holds, the "old" of the next add-checkpoint request.
-- Like the checkpoints, they outlive a rebuild.
CREATE TABLE trail.cosignatures (
    size        bigint      NOT NULL, -- of a trail.tree_heads row (no foreign key, which would stop a TRUNCATE of the heads)
    witness_key text        NOT NULL,
    line        text        NOT NULL,
    cosigned_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (witness_key, size)
);
CREATE INDEX cosignatures_by_size ON trail.cosignatures (size);
CREATE TRIGGER cosignatures_append_only BEFORE UPDATE OR DELETE ON trail.cosignatures
    FOR EACH ROW EXECUTE FUNCTION trail.append_only();

-- +goose Down
DROP TABLE trail.cosignatures;
