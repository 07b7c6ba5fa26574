-- The cqrs-es / postgres-es event store. One table for every aggregate type.
-- `tx_id` and `position` are Clarity's additions: they let the outbox relay read events in commit
-- order below a commit-safe horizon (see docs/decisions/0002-outbox-relay.md). postgres-es names
-- the columns it inserts, so these defaults fill in on every insert.
CREATE TABLE events
(
    aggregate_type text                         NOT NULL,
    aggregate_id   text                         NOT NULL,
    sequence       bigint CHECK (sequence >= 0) NOT NULL,
    event_type     text                         NOT NULL,
    event_version  text                         NOT NULL,
    payload        json                         NOT NULL,
    metadata       json                         NOT NULL,
    tx_id          xid8                         NOT NULL DEFAULT pg_current_xact_id(),
    position       bigint GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

CREATE INDEX events_commit_order ON events (tx_id, position);
-- The deadline scheduler looks for started sessions without an end.
CREATE INDEX events_session_ends ON events (aggregate_id)
    WHERE aggregate_type = 'CandidateSession' AND event_type IN ('SessionSubmitted', 'SessionExpired');
CREATE INDEX events_session_starts ON events (aggregate_id)
    WHERE aggregate_type = 'CandidateSession' AND event_type = 'SessionStarted';

-- Events are immutable: refuse updates and deletes outright.
CREATE FUNCTION events_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are immutable (% refused)', TG_OP;
END $$;
CREATE TRIGGER events_no_update_or_delete BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_are_immutable();

CREATE TABLE snapshots
(
    aggregate_type   text                                 NOT NULL,
    aggregate_id     text                                 NOT NULL,
    last_sequence    bigint CHECK (last_sequence >= 0)    NOT NULL,
    current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
    payload          json                                 NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
);

-- Where each outbox relay has published up to (inclusive), advanced only after broker acks.
CREATE TABLE relay_checkpoints
(
    relay      text PRIMARY KEY,
    tx_id      xid8        NOT NULL,
    position   bigint      NOT NULL,
    published  bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
