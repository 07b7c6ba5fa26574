-- The candidate workspace in the analysts' view (issue 13): extra time granted and consent
-- withdrawn, appended to analytics.session_facts (a later migration only adds columns).
CREATE OR REPLACE VIEW analytics.session_facts AS
SELECT s.session_id,
       s.org_id,
       s.assessment_id,
       s.assessment_version,
       s.assessment_title,
       s.status,
       s.candidate_ref,
       s.invited_at,
       s.started_at,
       s.submitted_at,
       s.expired_at,
       coalesce(s.submitted_at, s.expired_at) AS finished_at,
       s.deadline,
       s.time_used_seconds,
       s.telemetry_events,
       s.keystrokes,
       s.edits,
       s.pastes,
       s.focus_losses,
       s.code_runs,
       s.integrity_tier,
       s.integrity_suite_version,
       rv.reviewers_assigned,
       rv.reviews_completed,
       agg.aggregate_score,
       d.decision,
       d.decided_at,
       d.decision_id,
       dn.decisions_recorded,
       s.extra_time_minutes,
       jsonb_array_length(s.consent_withdrawals) > 0 AS consent_withdrawn,
       s.through_seq
FROM sessions AS s
         CROSS JOIN LATERAL (SELECT count(*)               AS reviewers_assigned,
                                    count(r.completed_at)  AS reviews_completed
                             FROM review_reviewers AS r
                             WHERE r.session_id = s.session_id) AS rv
         LEFT JOIN LATERAL (
    -- Per criterion: mean over the completed reviews of the normalised current scores; then the
    -- weighted mean of the criteria, × 100.
    SELECT round(100 * sum(pc.weight * pc.mean_normalised) / sum(pc.weight), 6) AS aggregate_score
    FROM (SELECT rc.weight,
                 avg((sc.score - rc.min_score) / nullif(rc.max_score - rc.min_score, 0)) AS mean_normalised
          FROM review_scores AS sc
                   JOIN review_reviewers AS r
                        ON r.session_id = sc.session_id AND r.reviewer = sc.reviewer
                            AND r.completed_at IS NOT NULL
                   JOIN analytics.rubric_criteria AS rc
                        ON rc.assessment_id = s.assessment_id
                            AND rc.assessment_version = s.assessment_version
                            AND rc.criterion = sc.criterion
          WHERE sc.session_id = s.session_id
            AND sc.current
          GROUP BY rc.criterion, rc.weight) AS pc
    WHERE pc.mean_normalised IS NOT NULL) AS agg ON true
         LEFT JOIN LATERAL (SELECT c.outcome AS decision, c.decided_at, c.decision_id
                            FROM decisions AS c
                            WHERE c.session_id = s.session_id
                              AND c.current
                            ORDER BY c.event_sequence DESC
                            LIMIT 1) AS d ON true
         CROSS JOIN LATERAL (SELECT count(*) AS decisions_recorded
                             FROM decisions AS c
                             WHERE c.session_id = s.session_id) AS dn;

COMMENT ON COLUMN analytics.session_facts.extra_time_minutes IS 'Extra minutes granted to the candidate in all (an accommodation); the deadline includes them.';
COMMENT ON COLUMN analytics.session_facts.consent_withdrawn IS 'Whether the candidate withdrew consent to an optional monitoring scope during the session (its analysis then did not run).';
COMMENT ON COLUMN analytics.session_facts.through_seq IS 'The telemetry seq the submission (or expiry) was recorded at: the submitted files are what the log reconstructs through it. NULL for sessions from before December 2026 and unfinished ones.';

-- The per-organization view expanded `*` when it was made: made again, it carries the new columns.
CREATE OR REPLACE VIEW analytics_org.session_facts WITH (security_barrier) AS
SELECT * FROM analytics.session_facts WHERE org_id IN (SELECT org_id FROM analytics.visible_orgs);
