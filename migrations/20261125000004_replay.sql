-- Projection `replay`: per-session workspace state with keyframes, and timeline markers.
-- State at any telemetry position = the nearest keyframe at or before it + the (bounded number of)
-- events after it. Like every projection, rebuildable from offset 0 and clock-free.

CREATE TABLE replay_sessions
(
    session_id            uuid PRIMARY KEY,
    org_id                uuid   NOT NULL,
    -- Origin of `at_ms`: SessionStarted's time, else the first telemetry event's time.
    started_at            timestamptz,
    last_seq              bigint NOT NULL DEFAULT 0,
    last_at_ms            bigint NOT NULL DEFAULT 0,
    workspace             jsonb  NOT NULL,
    events_since_keyframe int    NOT NULL DEFAULT 0,
    last_keyframe_at_ms   bigint NOT NULL DEFAULT 0,
    -- An open tab-away, closed by the next focus_regained.
    focus_lost_seq        bigint,
    focus_lost_at_ms      bigint,
    anomalies             bigint NOT NULL DEFAULT 0
);

CREATE TABLE replay_keyframes
(
    session_id uuid   NOT NULL,
    seq        bigint NOT NULL,
    at_ms      bigint NOT NULL,
    workspace  jsonb  NOT NULL,
    PRIMARY KEY (session_id, seq)
);
CREATE INDEX replay_keyframes_time ON replay_keyframes (session_id, at_ms);

CREATE TABLE replay_markers
(
    session_id  uuid   NOT NULL,
    org_id      uuid   NOT NULL,
    kind        text   NOT NULL,
    seq         bigint NOT NULL,
    at_ms       bigint NOT NULL,
    end_seq     bigint,
    duration_ms bigint,
    label       text   NOT NULL,
    data        jsonb  NOT NULL,
    PRIMARY KEY (session_id, kind, seq)
);
