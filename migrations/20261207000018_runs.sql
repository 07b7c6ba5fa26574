-- Runs of candidate code (issue 14, docs/runner.md).

-- The runners' queue. A job is enqueued by the `sessions` projection in the same transaction
-- that records `RunRequested` (a visible run) or the session's finish (its grading), so when a
-- job is visible every telemetry event it must see is in the replay projection's partition
-- order before it. Not a projection table: a rebuild re-inserts the same keys, which changes
-- nothing. A runner takes a job with a lease; a runner that dies leaves it to another once the
-- lease ends, and the aggregate refuses a second result for the same run.
CREATE TABLE run_jobs
(
    run_id       uuid PRIMARY KEY,
    session_id   uuid        NOT NULL,
    org_id       uuid        NOT NULL,
    -- `visible`: the candidate's "Run tests"; `grade`: the hidden checks on the submission.
    mode         text        NOT NULL CHECK (mode IN ('visible', 'grade')),
    through_seq  bigint,
    status       text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done', 'failed')),
    attempts     int         NOT NULL DEFAULT 0,
    runner       text,
    lease_until  timestamptz,
    available_at timestamptz NOT NULL DEFAULT now(),
    enqueued_at  timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    done_at      timestamptz,
    outcome      text,
    last_error   text
);
CREATE INDEX run_jobs_ready ON run_jobs (available_at) WHERE status IN ('pending', 'running');

-- The candidate's runs of the visible tests (projection `sessions`).
CREATE TABLE session_runs
(
    run_id         uuid PRIMARY KEY,
    session_id     uuid        NOT NULL,
    org_id         uuid        NOT NULL,
    through_seq    bigint      NOT NULL,
    requested_at   timestamptz NOT NULL,
    completed_at   timestamptz,
    passed         int,
    total          int,
    -- `exited`, `signalled`, `timed_out`, `output_limit`, `sandbox_error`
    ending         text,
    result         jsonb
);
CREATE INDEX session_runs_session ON session_runs (session_id, requested_at);

-- Automated grades of finished sessions, one per grader version (projection `sessions`).
CREATE TABLE session_grades
(
    session_id     uuid             NOT NULL,
    grader_version text             NOT NULL,
    org_id         uuid             NOT NULL,
    run_id         uuid             NOT NULL,
    through_seq    bigint,
    score          double precision NOT NULL,
    max_score      double precision NOT NULL,
    fraction       double precision NOT NULL,
    checks_passed  int              NOT NULL,
    checks_total   int              NOT NULL,
    result         jsonb            NOT NULL,
    graded_at      timestamptz      NOT NULL,
    PRIMARY KEY (session_id, grader_version)
);
CREATE INDEX session_grades_org ON session_grades (org_id, graded_at);
