-- Access audit: one row per successful staff read of a candidate's data (replay, event log,
-- integrity analysis, copied-code matches, review). Written by the API before the response is
-- returned; read back by auditors and admins with `GET /v1/audit/access`.
-- See docs/decisions/0011-access-audit.md.
CREATE TABLE access_log
(
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id     uuid        NOT NULL,
    member_id  uuid        NOT NULL,
    -- The member's role at the time of the read (roles can change later).
    role       text        NOT NULL,
    -- What was read: `replay.read`, `replay.stream`, `session_events.read`, `integrity.read`,
    -- `integrity.matches.read`, `review.read`, `access_log.read`, ...
    action     text        NOT NULL,
    -- The candidate session read; NULL for reads that are not about one session.
    session_id uuid,
    -- The request's parameters (position, range, suite version, the other session, ...).
    detail     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    at         timestamptz NOT NULL DEFAULT now()
);

-- "Who read this session?" and "what did this member read?", newest first.
CREATE INDEX access_log_session ON access_log (org_id, session_id, at, id) WHERE session_id IS NOT NULL;
CREATE INDEX access_log_member ON access_log (org_id, member_id, at, id);
-- A copied-code comparison also discloses the other session's code: find it from that side too.
CREATE INDEX access_log_other_session ON access_log (org_id, (detail ->> 'other_session_id'), at, id)
    WHERE detail ? 'other_session_id';

-- The access log is append-only: refuse updates and deletes outright.
CREATE FUNCTION access_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'access_log is append-only (% refused)', TG_OP;
END $$;
CREATE TRIGGER access_log_no_update_or_delete BEFORE UPDATE OR DELETE ON access_log
    FOR EACH ROW EXECUTE FUNCTION access_log_is_append_only();
-- Row triggers do not see TRUNCATE; refuse it too.
CREATE TRIGGER access_log_no_truncate BEFORE TRUNCATE ON access_log
    FOR EACH STATEMENT EXECUTE FUNCTION access_log_is_append_only();
