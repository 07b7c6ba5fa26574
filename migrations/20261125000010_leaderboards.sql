-- Projection `sessions` (scores part): each reviewed session's aggregate rubric score, and a
-- histogram of scores per cohort so that a percentile or a rank in a cohort of a million sessions
-- is a sum over at most a few thousand distinct scores, not a count over a million rows.

CREATE TABLE session_scores
(
    session_id         uuid PRIMARY KEY,
    org_id             uuid             NOT NULL,
    assessment_id      uuid             NOT NULL,
    assessment_version int              NOT NULL,
    -- Weighted rubric score 0-100 over the completed reviews (current scores only).
    score              double precision NOT NULL,
    reviews            int              NOT NULL,
    time_used_seconds  bigint,
    finished_at        timestamptz,
    integrity_tier     text,
    -- Integrity cleared: analysed with tier `none`.
    cleared            boolean          NOT NULL,
    candidate_name     text
);
CREATE INDEX session_scores_board ON session_scores (org_id, assessment_id, assessment_version, score DESC, session_id);
CREATE INDEX session_scores_board_cleared ON session_scores (org_id, assessment_id, assessment_version, cleared, score DESC, session_id);
CREATE INDEX session_scores_org ON session_scores (org_id, score DESC, session_id);
-- Covering: a date-range count reads the index only.
CREATE INDEX session_scores_finished ON session_scores (org_id, assessment_id, assessment_version, finished_at) INCLUDE (score, cleared);

CREATE TABLE score_histogram
(
    org_id             uuid             NOT NULL,
    assessment_id      uuid             NOT NULL,
    assessment_version int              NOT NULL,
    cleared            boolean          NOT NULL,
    score              double precision NOT NULL,
    sessions           bigint           NOT NULL,
    PRIMARY KEY (org_id, assessment_id, assessment_version, cleared, score)
);

-- Every version of a candidate report that was served, by content hash: a decision names the
-- hash of the version its decider was looking at, so what they saw can be shown again exactly.
CREATE TABLE report_versions
(
    session_id      uuid        NOT NULL,
    content_hash    text        NOT NULL,
    org_id          uuid        NOT NULL,
    content         json        NOT NULL,
    first_served_at timestamptz NOT NULL DEFAULT now(),
    first_served_to uuid        NOT NULL,
    PRIMARY KEY (session_id, content_hash)
);
