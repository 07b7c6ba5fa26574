-- Runs of candidate code in the analysts' view (issue 14): the automated grades of finished
-- sessions and the candidates' runs of the visible tests.
CREATE VIEW analytics.grades AS
SELECT g.session_id,
       g.org_id,
       s.assessment_id,
       s.assessment_version,
       g.grader_version,
       g.score,
       g.max_score,
       round((100 * g.fraction)::numeric, 3) AS percent,
       g.checks_passed,
       g.checks_total,
       g.graded_at,
       -- The newest grade of the session (a re-grade with a new grader version adds a row).
       g.graded_at = max(g.graded_at) OVER (PARTITION BY g.session_id) AS newest
FROM session_grades AS g
         JOIN sessions AS s ON s.session_id = g.session_id;
COMMENT ON VIEW analytics.grades IS
    'Automated grades of finished sessions by the hidden checks: one row per session and grader version; percent = weighted share of checks passed.';

CREATE VIEW analytics.runs AS
SELECT r.run_id,
       r.session_id,
       r.org_id,
       s.assessment_id,
       s.assessment_version,
       r.requested_at,
       r.completed_at,
       r.passed,
       r.total,
       r.ending,
       (r.result ->> 'duration_ms')::bigint AS duration_ms
FROM session_runs AS r
         JOIN sessions AS s ON s.session_id = r.session_id;
COMMENT ON VIEW analytics.runs IS
    'Candidates'' runs of the visible tests on the server: when, how it ended, tests passed of total.';

CREATE VIEW analytics_org.grades WITH (security_barrier) AS
SELECT * FROM analytics.grades WHERE org_id IN (SELECT org_id FROM analytics.visible_orgs);
CREATE VIEW analytics_org.runs WITH (security_barrier) AS
SELECT * FROM analytics.runs WHERE org_id IN (SELECT org_id FROM analytics.visible_orgs);
COMMENT ON VIEW analytics_org.grades IS 'analytics.grades, rows of the caller''s organizations only.';
COMMENT ON VIEW analytics_org.runs IS 'analytics.runs, rows of the caller''s organizations only.';
GRANT SELECT ON analytics.grades, analytics.runs TO clarity_analyst;
GRANT SELECT ON analytics_org.grades, analytics_org.runs TO clarity_org_analyst;
