-- Projection quarantine (issue 11): records a projection cannot apply are set aside, not retried
-- forever. `projection_rejects` held only records that could not be *decoded*; a record that
-- decodes but that PostgreSQL refuses (a timestamp out of range, a NUL in text, a value too
-- large for a column: SQLSTATE classes 22, 23, 54) used to stop its partition — and with it every
-- organization's sessions on that partition — for good. Both kinds now land here, the partition
-- moves on, and `clarity quarantine list` shows them.
ALTER TABLE projection_rejects
    ADD COLUMN kind        text        NOT NULL DEFAULT 'undecodable'
        CHECK (kind IN ('undecodable', 'unappliable')),
    ADD COLUMN sqlstate    text,
    ADD COLUMN session_id  uuid,
    ADD COLUMN rejected_at timestamptz NOT NULL DEFAULT now();

CREATE INDEX projection_rejects_session ON projection_rejects (session_id) WHERE session_id IS NOT NULL;
