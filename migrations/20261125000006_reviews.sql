-- Projection `sessions` (review part): reviewers, rubric scores with their amendments, completed
-- reviews, comments at replay positions, integrity-finding resolutions and hiring decisions, as
-- recorded in the session's events. Nothing here is edited in place except the `current` flags
-- that an amendment moves.

CREATE TABLE review_reviewers
(
    session_id  uuid        NOT NULL,
    reviewer    uuid        NOT NULL,
    org_id      uuid        NOT NULL,
    assigned_by uuid        NOT NULL,
    assigned_at timestamptz NOT NULL,
    completed_at timestamptz,
    PRIMARY KEY (session_id, reviewer)
);
CREATE INDEX review_reviewers_member ON review_reviewers (reviewer);

CREATE TABLE review_scores
(
    score_id       uuid PRIMARY KEY,
    session_id     uuid        NOT NULL,
    org_id         uuid        NOT NULL,
    reviewer       uuid        NOT NULL,
    criterion      text        NOT NULL,
    score          smallint    NOT NULL,
    justification  text        NOT NULL,
    supersedes     uuid,
    -- False once a later score of the same reviewer and criterion supersedes it.
    current        boolean     NOT NULL,
    scored_at      timestamptz NOT NULL,
    event_sequence bigint      NOT NULL
);
CREATE INDEX review_scores_session ON review_scores (session_id, reviewer, criterion);

CREATE TABLE review_comments
(
    comment_id     uuid PRIMARY KEY,
    session_id     uuid        NOT NULL,
    org_id         uuid        NOT NULL,
    author         uuid        NOT NULL,
    replay_seq     bigint      NOT NULL,
    text           text        NOT NULL,
    commented_at   timestamptz NOT NULL,
    event_sequence bigint      NOT NULL
);
CREATE INDEX review_comments_session ON review_comments (session_id, replay_seq);

CREATE TABLE finding_resolutions
(
    session_id     uuid        NOT NULL,
    event_sequence bigint      NOT NULL,
    org_id         uuid        NOT NULL,
    suite_version  text        NOT NULL,
    ordinal        int         NOT NULL,
    resolution     text        NOT NULL CHECK (resolution IN ('confirmed', 'dismissed')),
    reason         text        NOT NULL,
    resolved_by    uuid        NOT NULL,
    resolved_at    timestamptz NOT NULL,
    PRIMARY KEY (session_id, event_sequence)
);

CREATE TABLE decisions
(
    decision_id    uuid PRIMARY KEY,
    session_id     uuid        NOT NULL,
    org_id         uuid        NOT NULL,
    outcome        text        NOT NULL CHECK (outcome IN ('advance', 'reject', 'hold')),
    rationale      text        NOT NULL,
    decided_by     uuid        NOT NULL,
    report_hash    text        NOT NULL,
    supersedes     uuid,
    current        boolean     NOT NULL,
    decided_at     timestamptz NOT NULL,
    event_sequence bigint      NOT NULL
);
CREATE INDEX decisions_session ON decisions (session_id, event_sequence);
CREATE INDEX decisions_org ON decisions (org_id, decided_at);

ALTER TABLE sessions ADD COLUMN decision text;
ALTER TABLE sessions ADD COLUMN decided_at timestamptz;

-- Whether a session's reviewer may record its decision (default: no — a decision is made by a
-- hiring manager or an admin who did not review).
ALTER TABLE organizations ADD COLUMN reviewers_may_decide boolean NOT NULL DEFAULT false;
