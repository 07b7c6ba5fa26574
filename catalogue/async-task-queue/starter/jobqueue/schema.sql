-- Job queue schema (PostgreSQL 15 or later). Complete the jobs table and its indexes.

CREATE TABLE jobs (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind       text        NOT NULL,
    payload    jsonb       NOT NULL,
    priority   smallint    NOT NULL DEFAULT 0,
    run_at     timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now()
    -- TODO: state, attempts, lease, last error, dedupe key, finished_at, ...
);

-- TODO: indexes for claiming and for deduplication.


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
    document_id bigint      NOT NULL REFERENCES documents (id),
    storage_key text        NOT NULL,
    width       integer     NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
