-- Tamper-evident audit trail (projection `sessions`, audit part).
--
-- Each session's stream — lifecycle events and telemetry together, in partition order, without
-- duplicates — forms a hash chain (see `domain/src/audit.rs` for the exact encoding). The chain is
-- computed by the consumer that owns the partition, in the same transaction as the rows.

-- The log keeps each record's JSON exactly as it was on the topic (jsonb would rewrite numbers and
-- break the hashes), its CloudEvents type, and its place in the chain.
ALTER TABLE session_events ALTER COLUMN data TYPE json USING data::json;
ALTER TABLE session_events ADD COLUMN ce_type text;
ALTER TABLE session_events ADD COLUMN chain_position bigint;
ALTER TABLE session_events ADD COLUMN chain_hash text;
CREATE UNIQUE INDEX session_events_chain ON session_events (session_id, chain_position);

-- Where each session's chain stands.
CREATE TABLE audit_chain_heads
(
    session_id     uuid PRIMARY KEY,
    org_id         uuid   NOT NULL,
    count          bigint NOT NULL,
    head_hash      text   NOT NULL,
    next_lifecycle bigint NOT NULL,
    next_telemetry bigint NOT NULL
);

-- Signed checkpoints (Ed25519 over the checkpoint's canonical bytes), made at submission, expiry,
-- analysis and every decision. `signed_at` is the event's own time, so a rebuild re-creates them
-- byte for byte (Ed25519 signatures are deterministic).
CREATE TABLE audit_checkpoints
(
    session_id uuid        NOT NULL,
    count      bigint      NOT NULL,
    org_id     uuid        NOT NULL,
    head_hash  text        NOT NULL,
    signed_at  timestamptz NOT NULL,
    key_id     text        NOT NULL,
    public_key text        NOT NULL,
    signature  text        NOT NULL,
    reason     text        NOT NULL,
    PRIMARY KEY (session_id, count)
);

-- The chain head each decision sealed.
ALTER TABLE decisions ADD COLUMN chain_count bigint;
ALTER TABLE decisions ADD COLUMN chain_hash text;
