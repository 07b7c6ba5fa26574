-- Read models. Every table here is written only by its projection's consumer, together with the
-- Kafka offsets it covers, and can be rebuilt from offset 0 (`clarity rebuild <projection>`).
-- No column is filled from the clock of the consumer, so a rebuild is byte-identical.

-- Next offset to read, per projection and partition; written in the same transaction as the rows.
CREATE TABLE projection_offsets
(
    projection  text   NOT NULL,
    topic       text   NOT NULL,
    partition   int    NOT NULL,
    next_offset bigint NOT NULL,
    PRIMARY KEY (projection, topic, partition)
);

-- Records a projection could not read (malformed JSON, unknown type); kept, never silently dropped.
CREATE TABLE projection_rejects
(
    projection text   NOT NULL,
    topic      text   NOT NULL,
    partition  int    NOT NULL,
    "offset"   bigint NOT NULL,
    reason     text   NOT NULL,
    PRIMARY KEY (projection, topic, partition, "offset")
);

-- Projection `catalogue`: assessments and their published versions.
CREATE TABLE catalogue_assessments
(
    assessment_id  uuid PRIMARY KEY,
    org_id         uuid,
    title          text        NOT NULL,
    kind           text        NOT NULL,
    difficulty     text        NOT NULL,
    status         text        NOT NULL,
    latest_version int,
    has_draft      boolean     NOT NULL,
    draft          jsonb,
    last_sequence  bigint      NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
CREATE INDEX catalogue_assessments_org ON catalogue_assessments (org_id);

CREATE TABLE catalogue_versions
(
    assessment_id      uuid        NOT NULL REFERENCES catalogue_assessments (assessment_id) ON DELETE CASCADE,
    version            int         NOT NULL,
    org_id             uuid,
    title              text        NOT NULL,
    kind               text        NOT NULL,
    difficulty         text        NOT NULL,
    best_for           text        NOT NULL,
    format             text        NOT NULL,
    time_limit_minutes int         NOT NULL,
    spec               jsonb       NOT NULL,
    spec_digest        text        NOT NULL,
    published_at       timestamptz NOT NULL,
    PRIMARY KEY (assessment_id, version)
);

-- Projection `sessions`: one row per candidate session, plus the ordered, de-duplicated log.
-- Rows may be created by telemetry before the lifecycle events arrive (the partition decides the
-- order), hence the nullable columns.
CREATE TABLE sessions
(
    session_id         uuid PRIMARY KEY,
    org_id             uuid   NOT NULL,
    status             text,
    assessment_id      uuid,
    assessment_version int,
    assessment_title   text,
    candidate_name     text,
    candidate_email    text,
    candidate_ref      text,
    invited_by         uuid,
    invited_at         timestamptz,
    invite_expires_at  timestamptz,
    consent_notice     text,
    consent_scopes     jsonb,
    consented_at       timestamptz,
    started_at         timestamptz,
    deadline           timestamptz,
    submitted_at       timestamptz,
    expired_at         timestamptz,
    time_used_seconds  bigint,
    files_digest       text,
    lifecycle_events   bigint NOT NULL DEFAULT 0,
    telemetry_events   bigint NOT NULL DEFAULT 0,
    keystrokes         bigint NOT NULL DEFAULT 0,
    edits              bigint NOT NULL DEFAULT 0,
    pastes             bigint NOT NULL DEFAULT 0,
    focus_losses       bigint NOT NULL DEFAULT 0,
    code_runs          bigint NOT NULL DEFAULT 0,
    face_checks        bigint NOT NULL DEFAULT 0,
    last_seq           bigint NOT NULL DEFAULT 0,
    first_event_at     timestamptz,
    last_event_at      timestamptz
);
CREATE INDEX sessions_org_status ON sessions (org_id, status);
CREATE INDEX sessions_assessment ON sessions (assessment_id, assessment_version);

CREATE TABLE session_events
(
    session_id      uuid        NOT NULL,
    org_id          uuid        NOT NULL,
    stream_kind     text        NOT NULL CHECK (stream_kind IN ('lifecycle', 'telemetry')),
    seq             bigint      NOT NULL,
    event_type      text        NOT NULL,
    occurred_at     timestamptz NOT NULL,
    kafka_partition int         NOT NULL,
    kafka_offset    bigint      NOT NULL,
    data            jsonb       NOT NULL,
    PRIMARY KEY (session_id, stream_kind, seq)
);
CREATE INDEX session_events_log_order ON session_events (session_id, kafka_offset);
