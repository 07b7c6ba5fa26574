-- Organizations, members, API keys and candidate session tokens. Access control state, not
-- domain history: plain tables (see docs/decisions/0004-access-control.md).
CREATE TABLE organizations
(
    id         uuid PRIMARY KEY,
    name       text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE members
(
    id         uuid PRIMARY KEY,
    org_id     uuid        NOT NULL REFERENCES organizations (id),
    name       text        NOT NULL,
    email      text        NOT NULL,
    role       text        NOT NULL CHECK (role IN ('admin', 'hiring_manager', 'reviewer', 'auditor', 'analyst')),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT members_email_unique UNIQUE (org_id, email)
);

-- An API key is `clk_<id>_<secret>`; only SHA-256(secret) is stored. Secrets are 256-bit random,
-- so a fast hash is sufficient (no dictionary to attack).
CREATE TABLE api_keys
(
    id          uuid PRIMARY KEY,
    member_id   uuid        NOT NULL REFERENCES members (id),
    secret_hash bytea       NOT NULL,
    label       text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX api_keys_member ON api_keys (member_id);

-- A candidate's session token is `cst_<session id>_<secret>`; only SHA-256(secret) is stored.
CREATE TABLE session_tokens
(
    session_id  uuid PRIMARY KEY,
    org_id      uuid        NOT NULL REFERENCES organizations (id),
    secret_hash bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Highest client sequence number the broker acknowledged, per session. Serializes ingestion per
-- session (row lock) so one session's batches reach its partition in client order.
CREATE TABLE telemetry_cursors
(
    session_id uuid PRIMARY KEY,
    last_seq   bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Submitted files, content-addressed by the digest recorded in `SessionSubmitted`. Written before
-- the event, so an event's digest always has its files.
CREATE TABLE submission_blobs
(
    files_digest text PRIMARY KEY,
    files        jsonb       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
