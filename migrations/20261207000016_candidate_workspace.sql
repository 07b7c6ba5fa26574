-- The candidate workspace (issue 13): what the sessions read model keeps of consent withdrawals,
-- extra time and the submission's place in the telemetry log.
ALTER TABLE sessions
    -- SHA-256 of the monitoring notice text consented to (ConsentRecorded.notice_sha256).
    ADD COLUMN consent_notice_sha256 text,
    -- The scopes withdrawn, and when each withdrawal was recorded ([{scopes, at}, ...]).
    ADD COLUMN consent_withdrawals jsonb NOT NULL DEFAULT '[]'::jsonb,
    -- Extra minutes granted in all (ExtraTimeGranted).
    ADD COLUMN extra_time_minutes integer NOT NULL DEFAULT 0,
    -- The submission is the workspace the telemetry reconstructs through this seq
    -- (SessionSubmitted / SessionExpired .through_seq; NULL for sessions from before).
    ADD COLUMN through_seq bigint;
