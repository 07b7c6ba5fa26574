-- Job queue schema (PostgreSQL 15 or later).

CREATE TABLE jobs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             text        NOT NULL,
    payload          jsonb       NOT NULL,
    priority         smallint    NOT NULL DEFAULT 0,
    run_at           timestamptz NOT NULL DEFAULT now(),
    created_at       timestamptz NOT NULL DEFAULT now(),
    state            text        NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'running', 'succeeded', 'dead')),
    attempts         integer     NOT NULL DEFAULT 0,  -- counted when a run is claimed
    lease_token      uuid,                            -- the current run's owner
    lease_expires_at timestamptz,
    last_error       text,
    dedupe_key       text,
    finished_at      timestamptz,
    CHECK ((state = 'running') = (lease_token IS NOT NULL AND lease_expires_at IS NOT NULL))
);

-- The claim query: pending jobs by priority, then run_at (matches its ORDER BY).
CREATE INDEX jobs_claimable ON jobs (priority DESC, run_at, id) WHERE state = 'pending';
-- The lease sweep.
CREATE INDEX jobs_leases ON jobs (lease_expires_at) WHERE state = 'running';
-- One live job per dedupe key; a finished job frees its key.
CREATE UNIQUE INDEX jobs_dedupe ON jobs (dedupe_key)
    WHERE dedupe_key IS NOT NULL AND state IN ('pending', 'running');
-- Purging finished jobs.
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;


-- Tables used by the example handler.

CREATE TABLE documents (
    id           bigint PRIMARY KEY,
    account_id   bigint      NOT NULL,
    storage_key  text        NOT NULL,
    content_type text        NOT NULL,
    uploaded_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE document_thumbnails (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    document_id bigint      NOT NULL UNIQUE REFERENCES documents (id),
    storage_key text        NOT NULL,
    width       integer     NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
