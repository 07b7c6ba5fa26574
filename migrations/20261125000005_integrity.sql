-- Integrity analysis.

-- The analysis worker's queue. Jobs are enqueued by the `sessions` projection in the same
-- transaction that records a session as submitted or expired, so when a job is visible every
-- telemetry event the session had before it finished is already in `session_events`. Not a
-- projection table: a rebuild re-inserts the same keys, which changes nothing.
CREATE TABLE integrity_jobs
(
    session_id   uuid        NOT NULL,
    -- `finished` for the analysis at submission or expiry, `rerun:<suite version>` for re-runs.
    trigger      text        NOT NULL,
    org_id       uuid        NOT NULL,
    status       text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
    attempts     int         NOT NULL DEFAULT 0,
    last_error   text,
    outcome      text,
    available_at timestamptz NOT NULL DEFAULT now(),
    enqueued_at  timestamptz NOT NULL DEFAULT now(),
    done_at      timestamptz,
    PRIMARY KEY (session_id, trigger)
);
CREATE INDEX integrity_jobs_pending ON integrity_jobs (available_at) WHERE status = 'pending';

-- What the worker keeps about each analysed session for the detectors that compare sessions
-- (copied code, replayed keystroke timing): derived from the telemetry, recomputed by a re-run.
CREATE TABLE integrity_prints
(
    session_id         uuid PRIMARY KEY,
    org_id             uuid        NOT NULL,
    assessment_id      uuid        NOT NULL,
    assessment_version int         NOT NULL,
    finished_at        timestamptz NOT NULL,
    code_version       text        NOT NULL,
    code_prints        jsonb       NOT NULL,
    timing_version     text        NOT NULL,
    timing_prints      jsonb       NOT NULL,
    -- The final files, for showing matched regions side by side.
    files              jsonb       NOT NULL
);
CREATE INDEX integrity_prints_cohort ON integrity_prints (org_id, assessment_id, assessment_version, finished_at);
CREATE INDEX integrity_prints_org ON integrity_prints (org_id, finished_at);

-- Projection `sessions` (integrity part): every IntegrityAnalysed event, one row per suite version.
CREATE TABLE integrity_analyses
(
    session_id     uuid        NOT NULL,
    org_id         uuid        NOT NULL,
    suite_version  text        NOT NULL,
    trigger        text        NOT NULL,
    tier           text        NOT NULL CHECK (tier IN ('none', 'review_suggested', 'major_concerns')),
    reasons        jsonb       NOT NULL,
    analysis       jsonb       NOT NULL,
    finding_count  int         NOT NULL,
    analysed_at    timestamptz NOT NULL,
    event_sequence bigint      NOT NULL,
    PRIMARY KEY (session_id, suite_version)
);
CREATE INDEX integrity_analyses_org ON integrity_analyses (org_id, analysed_at);

-- One row per finding, for SQL and for "which sessions matched this one".
CREATE TABLE integrity_findings
(
    session_id       uuid             NOT NULL,
    suite_version    text             NOT NULL,
    ordinal          int              NOT NULL,
    org_id           uuid             NOT NULL,
    detector         text             NOT NULL,
    detector_version text             NOT NULL,
    rule             text             NOT NULL,
    level            text             NOT NULL,
    measured         double precision NOT NULL,
    threshold        double precision NOT NULL,
    summary          text             NOT NULL,
    replay_seq       bigint,
    at_ms            bigint,
    related_session  uuid,
    evidence         jsonb            NOT NULL,
    PRIMARY KEY (session_id, suite_version, ordinal)
);
CREATE INDEX integrity_findings_related ON integrity_findings (related_session) WHERE related_session IS NOT NULL;
CREATE INDEX integrity_findings_org_rule ON integrity_findings (org_id, detector, rule);

-- The latest analysis's tier on the session row (for reports and leaderboards).
ALTER TABLE sessions ADD COLUMN integrity_tier text;
ALTER TABLE sessions ADD COLUMN integrity_suite_version text;
