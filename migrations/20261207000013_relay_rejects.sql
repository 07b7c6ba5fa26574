-- Relay quarantine (issue 11): a stored event the broker can never accept (larger than the
-- broker's or the producer's maximum record size, or one that cannot be encoded) used to be
-- retried forever: the relay's checkpoint never moved, nothing was published for any
-- organization after it, and the events before it were re-published on every retry. Such an
-- event is now recorded here and the relay moves on. The event itself stays in `events`
-- (immutable); it is missing from the topic, so the read models do not have it — alert on rows.
CREATE TABLE relay_rejects
(
    relay          text        NOT NULL,
    aggregate_type text        NOT NULL,
    aggregate_id   text        NOT NULL,
    sequence       bigint      NOT NULL,
    tx_id          xid8        NOT NULL,
    position       bigint      NOT NULL,
    bytes          bigint,
    reason         text        NOT NULL,
    rejected_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (relay, aggregate_type, aggregate_id, sequence)
);
