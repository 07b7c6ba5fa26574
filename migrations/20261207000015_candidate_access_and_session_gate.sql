-- Candidate access (issue 11): staff can revoke a candidate's session token; revocation is the
-- event `CandidateAccessRevoked` (the API checks the event store itself, so it takes effect the
-- moment it is recorded). The read model shows when and why, for staff.
ALTER TABLE sessions
    ADD COLUMN access_revoked_at     timestamptz,
    ADD COLUMN access_revoked_reason text;

-- The per-session gate of telemetry ingestion (issue 11): besides the highest acknowledged `seq`,
-- what the session has recorded so far — events, bytes, and its workspace's files with their
-- lengths — so that a batch that would exceed a per-session cap, edit a file that does not
-- exist or create one that does is refused at the edge with a reason, instead of surfacing later
-- as an anomaly. Moves with `last_seq`, only after the broker acknowledged the batch.
ALTER TABLE telemetry_cursors
    ADD COLUMN events bigint NOT NULL DEFAULT 0,
    ADD COLUMN bytes  bigint NOT NULL DEFAULT 0,
    ADD COLUMN files  jsonb;
