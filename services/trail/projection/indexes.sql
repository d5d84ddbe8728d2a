-- The trail's search indexes, one per filter, each ending in position so
-- that a filtered page comes out of the index in stream order; time is
-- BRIN: entries arrive in time order, and BRIN costs next to nothing to
-- keep up. A rebuild drops them and they are built again, sorted in bulk,
-- once the log has caught up: keeping eight b-trees up to date row by row
-- halves the rate of a bulk load.
-- Positions are unique: the order of the log (the audit reads it by
-- position), kept like the others out of a bulk load.
CREATE UNIQUE INDEX IF NOT EXISTS entries_by_position ON trail.entries (position);
CREATE INDEX IF NOT EXISTS entries_by_contract ON trail.entries (contract_id, position);
CREATE INDEX IF NOT EXISTS entries_by_customer ON trail.entries (customer_org_id, position);
CREATE INDEX IF NOT EXISTS entries_by_provider ON trail.entries (provider_org_id, position);
CREATE INDEX IF NOT EXISTS entries_by_actor ON trail.entries (actor_org_id, actor, position);
CREATE INDEX IF NOT EXISTS entries_by_type ON trail.entries (type, position);
CREATE INDEX IF NOT EXISTS entries_by_aggregate ON trail.entries (aggregate_type, aggregate_id, position);
CREATE INDEX IF NOT EXISTS entries_by_correlation ON trail.entries (correlation_id, position) WHERE correlation_id <> '';
CREATE INDEX IF NOT EXISTS entries_by_time ON trail.entries USING brin (time);
