-- Quarantine retry (issue 11): a quarantined record is kept whole, held in order, and resolved
-- rather than deleted.
--
-- * `projection_rejects` keeps the record itself (payload, key, headers, create time): the row only
--   pointed at topic/partition@offset before, and the record stayed in Kafka only until retention
--   deleted it. `clarity quarantine show` and `retry` read the stored copy.
-- * Kind `held`: a record that was not refused itself but is held behind an earlier refused record
--   of the same stream, where the projection needs the stream in order (decision 0017). It is
--   applied after the record it waits for, by the same retry.
-- * Rows are never deleted: a retry that applies a record marks its row resolved (when, by whom,
--   how); a retry that fails keeps it, with the new error (`reason`, `sqlstate`) and the first one
--   (`first_reason`).
-- * `id`: one number per quarantined record across both tables, for `clarity quarantine show 17`.
CREATE SEQUENCE quarantine_ids;

ALTER TABLE projection_rejects
    DROP CONSTRAINT projection_rejects_kind_check,
    ADD CONSTRAINT projection_rejects_kind_check CHECK (kind IN ('undecodable', 'unappliable', 'held')),
    ADD COLUMN id            bigint NOT NULL DEFAULT nextval('quarantine_ids'),
    ADD COLUMN payload       bytea,
    ADD COLUMN record_key    bytea,
    ADD COLUMN headers       jsonb,
    ADD COLUMN record_time   timestamptz,
    ADD COLUMN stream_kind   text,
    ADD COLUMN sequence      bigint,
    ADD COLUMN first_reason  text,
    ADD COLUMN refused_at    timestamptz,
    ADD COLUMN retries       int    NOT NULL DEFAULT 0,
    ADD COLUMN resolved_at   timestamptz,
    ADD COLUMN resolved_by   text,
    ADD COLUMN resolution    text;
UPDATE projection_rejects SET first_reason = reason, refused_at = rejected_at;
ALTER TABLE projection_rejects
    ALTER COLUMN first_reason SET NOT NULL,
    ALTER COLUMN refused_at SET NOT NULL,
    ALTER COLUMN refused_at SET DEFAULT now(),
    ADD CONSTRAINT projection_rejects_id UNIQUE (id);
-- The runner reads a batch's partitions' unresolved rows on every batch: keep that index tiny.
CREATE INDEX projection_rejects_unresolved ON projection_rejects (projection, topic, partition)
    WHERE resolved_at IS NULL;
CREATE INDEX projection_rejects_unresolved_session ON projection_rejects (session_id)
    WHERE resolved_at IS NULL;

-- The relay's quarantine: the event itself stays in `events` (immutable), so no copy is needed.
ALTER TABLE relay_rejects
    ADD COLUMN id           bigint NOT NULL DEFAULT nextval('quarantine_ids'),
    ADD COLUMN kind         text   NOT NULL DEFAULT 'unpublishable'
        CHECK (kind IN ('unpublishable', 'held')),
    ADD COLUMN first_reason text,
    ADD COLUMN refused_at   timestamptz,
    ADD COLUMN retries      int    NOT NULL DEFAULT 0,
    ADD COLUMN resolved_at  timestamptz,
    ADD COLUMN resolved_by  text,
    ADD COLUMN resolution   text;
UPDATE relay_rejects SET first_reason = reason, refused_at = rejected_at;
ALTER TABLE relay_rejects
    ALTER COLUMN first_reason SET NOT NULL,
    ALTER COLUMN refused_at SET NOT NULL,
    ALTER COLUMN refused_at SET DEFAULT now(),
    ADD CONSTRAINT relay_rejects_id UNIQUE (id);
CREATE INDEX relay_rejects_unresolved ON relay_rejects (aggregate_type, aggregate_id)
    WHERE resolved_at IS NULL;
