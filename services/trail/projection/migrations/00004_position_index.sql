-- +goose Up
-- Stream positions are unique through a unique index of indexes.sql rather
-- than the primary key: like the search indexes, it is dropped for a bulk
-- load (a rebuild, or a first start, when the log is loaded without it) and
-- built once the log has caught up. Keeping it up row by row took about a
-- fifth of the time of writing the entries. Meanwhile the projector is what
-- keeps positions unique: a batch is written only on the tree (and the
-- checkpoint) it was computed on, as it always is.
ALTER TABLE trail.entries DROP CONSTRAINT entries_pkey;

-- +goose Down
DROP INDEX IF EXISTS trail.entries_by_position;
ALTER TABLE trail.entries ADD PRIMARY KEY (position);
