-- Analytics: documented, stable SQL views over the read models for analysts (docs/analytics.md),
-- and read-only roles that reach the data through these views only.
--
-- Contract: the names and meanings of the views and columns in `analytics` and `analytics_org`
-- are stable. A later migration may add columns; it does not rename, remove or re-mean one.
-- The views compute everything from the projection tables, so they are as fresh as the
-- projections and survive any projection rebuild unchanged.

CREATE SCHEMA analytics;
COMMENT ON SCHEMA analytics IS
    'Stable, documented views for analysts (docs/analytics.md). Read with the role clarity_analyst; all organizations.';

-- ---------------------------------------------------------------------------------------------
-- Krippendorff's alpha, interval metric, as an aggregate over units.
--
-- Each input row is one unit (e.g. one session on one rubric criterion): the array of the values
-- the coders (reviewers) gave it, NULL or absent for a coder who did not code it. Only pairable
-- values count (units with at least two values). With m_u values in unit u and n pairable values
-- in all,
--
--   alpha = 1 − (n − 1) · Σ_u Σ_{i≠j ∈ u} (v_i − v_j)² / (m_u − 1)  ÷  Σ_{c≠k} (v_c − v_k)²
--
-- where the denominator runs over all ordered pairs of pairable values. Both double sums have a
-- closed form over the count, sum and sum of squares: Σ_{i≠j} (v_i − v_j)² = 2·m·Σv² − 2·(Σv)².
-- The state is therefore {n, Σv, Σv², observed} with exact numeric arithmetic. NULL when alpha is
-- undefined: fewer than two pairable values, or no variation among them (denominator 0).
-- Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability"; the Rust implementation is
-- clarity_domain::scoring::alpha.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION analytics.krippendorff_alpha_interval_step(state numeric[], unit_values numeric[])
    RETURNS numeric[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$
SELECT CASE
           WHEN u.m >= 2 THEN ARRAY [state[1] + u.m, state[2] + u.s1, state[3] + u.s2,
                                     state[4] + (2 * u.m * u.s2 - 2 * u.s1 * u.s1) / (u.m - 1)]
           ELSE state
           END
FROM (SELECT count(v)::numeric AS m, coalesce(sum(v), 0) AS s1, coalesce(sum(v * v), 0) AS s2
      FROM unnest(unit_values) AS v) AS u
$$;

CREATE FUNCTION analytics.krippendorff_alpha_interval_combine(a numeric[], b numeric[])
    RETURNS numeric[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$
SELECT ARRAY [a[1] + b[1], a[2] + b[2], a[3] + b[3], a[4] + b[4]]
$$;

CREATE FUNCTION analytics.krippendorff_alpha_interval_final(state numeric[])
    RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$
SELECT CASE
           WHEN state[1] >= 2 AND 2 * state[1] * state[3] - 2 * state[2] * state[2] > 0
               THEN 1 - (state[1] - 1) * state[4] / (2 * state[1] * state[3] - 2 * state[2] * state[2])
           END
$$;

CREATE AGGREGATE analytics.krippendorff_alpha_interval(numeric[]) (
    SFUNC = analytics.krippendorff_alpha_interval_step,
    STYPE = numeric[],
    INITCOND = '{0,0,0,0}',
    COMBINEFUNC = analytics.krippendorff_alpha_interval_combine,
    FINALFUNC = analytics.krippendorff_alpha_interval_final,
    PARALLEL = SAFE
    );
COMMENT ON AGGREGATE analytics.krippendorff_alpha_interval(numeric[]) IS
    'Krippendorff''s alpha (interval metric) over units: one input row per unit, the array of the coders'' values (NULLs ignored). Units with fewer than two values are not pairable and ignored. NULL when undefined (fewer than two pairable values, or no variation).';

-- ---------------------------------------------------------------------------------------------
-- analytics.rubric_criteria
-- ---------------------------------------------------------------------------------------------
CREATE VIEW analytics.rubric_criteria AS
SELECT v.assessment_id,
       v.version                                AS assessment_version,
       v.org_id,
       v.title                                  AS assessment_title,
       c.ordinality::int                        AS position,
       c.criterion ->> 'key'                    AS criterion,
       c.criterion ->> 'name'                   AS criterion_name,
       (c.criterion ->> 'weight')::numeric      AS weight,
       (SELECT min((l ->> 'score')::numeric)
        FROM jsonb_array_elements(c.criterion -> 'levels') AS l) AS min_score,
       (SELECT max((l ->> 'score')::numeric)
        FROM jsonb_array_elements(c.criterion -> 'levels') AS l) AS max_score
FROM catalogue_versions AS v
         CROSS JOIN LATERAL jsonb_array_elements(v.spec -> 'rubric' -> 'criteria')
    WITH ORDINALITY AS c(criterion, ordinality);
COMMENT ON VIEW analytics.rubric_criteria IS
    'One row per rubric criterion of each published assessment version, in rubric order.';
COMMENT ON COLUMN analytics.rubric_criteria.org_id IS 'Owning organization; NULL for the built-in library.';
COMMENT ON COLUMN analytics.rubric_criteria.position IS '1-based position of the criterion in the rubric.';
COMMENT ON COLUMN analytics.rubric_criteria.criterion IS 'Stable criterion key, e.g. api_design.';
COMMENT ON COLUMN analytics.rubric_criteria.weight IS 'Relative weight of the criterion in the aggregate score.';
COMMENT ON COLUMN analytics.rubric_criteria.min_score IS 'Score of the lowest level (normalises to 0).';
COMMENT ON COLUMN analytics.rubric_criteria.max_score IS 'Score of the highest level (normalises to 1).';

-- ---------------------------------------------------------------------------------------------
-- analytics.criterion_scores
-- ---------------------------------------------------------------------------------------------
CREATE VIEW analytics.criterion_scores AS
SELECT s.score_id,
       s.session_id,
       s.org_id,
       ss.assessment_id,
       ss.assessment_version,
       s.reviewer,
       s.criterion,
       rc.weight                                                                AS criterion_weight,
       s.score,
       rc.min_score,
       rc.max_score,
       round((s.score - rc.min_score) / nullif(rc.max_score - rc.min_score, 0), 6) AS score_normalised,
       s.scored_at,
       s.supersedes,
       s.supersedes IS NOT NULL                                                 AS amended,
       r.completed_at IS NOT NULL                                               AS reviewer_completed,
       r.completed_at                                                           AS reviewer_completed_at
FROM review_scores AS s
         LEFT JOIN sessions AS ss ON ss.session_id = s.session_id
         LEFT JOIN analytics.rubric_criteria AS rc
                   ON rc.assessment_id = ss.assessment_id
                       AND rc.assessment_version = ss.assessment_version
                       AND rc.criterion = s.criterion
         LEFT JOIN review_reviewers AS r ON r.session_id = s.session_id AND r.reviewer = s.reviewer
WHERE s.current;
COMMENT ON VIEW analytics.criterion_scores IS
    'One row per current rubric score: the latest score of each (session, reviewer, criterion); amended scores are replaced by their amendment. Includes reviewers who have not completed their review (see reviewer_completed).';
COMMENT ON COLUMN analytics.criterion_scores.score_id IS 'Id of this (current) score; supersedes names the score it amended, if any.';
COMMENT ON COLUMN analytics.criterion_scores.reviewer IS 'Member id of the reviewer.';
COMMENT ON COLUMN analytics.criterion_scores.criterion_weight IS 'The criterion''s rubric weight; NULL if the assessment version is not in the catalogue read model.';
COMMENT ON COLUMN analytics.criterion_scores.score IS 'The level score chosen, on the criterion''s own scale.';
COMMENT ON COLUMN analytics.criterion_scores.score_normalised IS '(score − min_score) / (max_score − min_score), 0–1, 6 decimal places.';
COMMENT ON COLUMN analytics.criterion_scores.amended IS 'True when this score amends an earlier one.';
COMMENT ON COLUMN analytics.criterion_scores.reviewer_completed IS 'Whether the reviewer has completed their review of the session.';

-- ---------------------------------------------------------------------------------------------
-- analytics.session_facts
-- ---------------------------------------------------------------------------------------------
CREATE VIEW analytics.session_facts AS
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
       dn.decisions_recorded
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
COMMENT ON VIEW analytics.session_facts IS
    'One row per candidate session (every row of the sessions read model, whatever its status): the assessment, lifecycle times, telemetry counts, integrity tier, review progress, aggregate rubric score and the current hiring decision.';
COMMENT ON COLUMN analytics.session_facts.status IS 'invited | consented | in_progress | submitted | expired; NULL while only telemetry has been projected.';
COMMENT ON COLUMN analytics.session_facts.candidate_ref IS 'The organization''s own reference for the candidate, if given. Candidate names and e-mails are deliberately not exposed.';
COMMENT ON COLUMN analytics.session_facts.finished_at IS 'submitted_at, else expired_at; NULL while not finished.';
COMMENT ON COLUMN analytics.session_facts.time_used_seconds IS 'Seconds between start and submission or expiry, as recorded by the session.';
COMMENT ON COLUMN analytics.session_facts.telemetry_events IS 'Telemetry events projected (de-duplicated).';
COMMENT ON COLUMN analytics.session_facts.focus_losses IS 'Times the editor lost focus (tab-aways).';
COMMENT ON COLUMN analytics.session_facts.integrity_tier IS 'Tier of the latest integrity analysis: none | review_suggested | major_concerns; NULL before analysis.';
COMMENT ON COLUMN analytics.session_facts.reviewers_assigned IS 'Reviewers assigned to the session.';
COMMENT ON COLUMN analytics.session_facts.reviews_completed IS 'Reviewers who completed their review.';
COMMENT ON COLUMN analytics.session_facts.aggregate_score IS 'Aggregate rubric score 0–100 (6 decimal places) over the completed reviews'' current scores: per criterion the mean of the reviewers'' scores normalised by the criterion''s level range, then the weighted mean by rubric weight, × 100. NULL when no review is completed.';
COMMENT ON COLUMN analytics.session_facts.decision IS 'Outcome of the current decision (advance | reject | hold), amendments applied; NULL when undecided.';
COMMENT ON COLUMN analytics.session_facts.decided_at IS 'When the current decision was recorded.';
COMMENT ON COLUMN analytics.session_facts.decisions_recorded IS 'Decisions recorded for the session, amendments included.';

-- ---------------------------------------------------------------------------------------------
-- analytics.findings
-- ---------------------------------------------------------------------------------------------
CREATE VIEW analytics.findings AS
SELECT f.session_id,
       f.org_id,
       ss.assessment_id,
       ss.assessment_version,
       f.suite_version,
       a.trigger              AS analysis_trigger,
       a.tier                 AS analysis_tier,
       a.analysed_at,
       f.ordinal,
       f.detector,
       f.detector_version,
       f.rule,
       f.level,
       f.measured,
       f.threshold,
       f.summary,
       f.replay_seq,
       f.at_ms,
       f.related_session,
       r.resolution,
       r.reason               AS resolution_reason,
       r.resolved_by,
       r.resolved_at,
       coalesce(r.resolutions_recorded, 0) AS resolutions_recorded
FROM (SELECT DISTINCT ON (ia.session_id) ia.session_id, ia.suite_version, ia.trigger, ia.tier, ia.analysed_at
      FROM integrity_analyses AS ia
      ORDER BY ia.session_id, ia.event_sequence DESC) AS a
         JOIN integrity_findings AS f ON f.session_id = a.session_id AND f.suite_version = a.suite_version
         LEFT JOIN sessions AS ss ON ss.session_id = f.session_id
         LEFT JOIN LATERAL (SELECT fr.resolution, fr.reason, fr.resolved_by, fr.resolved_at,
                                   count(*) OVER () AS resolutions_recorded
                            FROM finding_resolutions AS fr
                            WHERE fr.session_id = f.session_id
                              AND fr.suite_version = f.suite_version
                              AND fr.ordinal = f.ordinal
                            ORDER BY fr.event_sequence DESC
                            LIMIT 1) AS r ON true;
COMMENT ON VIEW analytics.findings IS
    'One row per integrity finding of each session''s latest integrity analysis (earlier suite versions are left out), with the latest resolution recorded for that (suite version, ordinal), if any.';
COMMENT ON COLUMN analytics.findings.suite_version IS 'Suite version of the latest analysis of the session.';
COMMENT ON COLUMN analytics.findings.analysis_tier IS 'Tier of that analysis: none | review_suggested | major_concerns.';
COMMENT ON COLUMN analytics.findings.ordinal IS 'Position of the finding within its analysis; with session_id and suite_version, its key.';
COMMENT ON COLUMN analytics.findings.level IS 'Finding level as the detector reported it (e.g. hint, review, major).';
COMMENT ON COLUMN analytics.findings.related_session IS 'The other session, for cross-session detectors (copied code, replayed timing).';
COMMENT ON COLUMN analytics.findings.resolution IS 'confirmed | dismissed from the latest resolution; NULL when unresolved.';
COMMENT ON COLUMN analytics.findings.resolution_reason IS 'The reason given with the latest resolution.';
COMMENT ON COLUMN analytics.findings.resolved_by IS 'Member id who recorded the latest resolution.';
COMMENT ON COLUMN analytics.findings.resolutions_recorded IS 'Resolutions recorded for this finding (a later one replaces an earlier one).';

-- ---------------------------------------------------------------------------------------------
-- analytics.decisions
-- ---------------------------------------------------------------------------------------------
CREATE VIEW analytics.decisions AS
SELECT d.decision_id,
       d.session_id,
       d.org_id,
       ss.assessment_id,
       ss.assessment_version,
       d.outcome,
       d.rationale,
       d.decided_by,
       d.report_hash,
       d.supersedes,
       d.supersedes IS NOT NULL AS is_amendment,
       d.current,
       (SELECT count(*)
        FROM decisions AS e
        WHERE e.session_id = d.session_id
          AND e.event_sequence <= d.event_sequence) AS revision,
       d.decided_at
FROM decisions AS d
         LEFT JOIN sessions AS ss ON ss.session_id = d.session_id;
COMMENT ON VIEW analytics.decisions IS
    'One row per hiring decision ever recorded, amendments included. Exactly one row per decided session has current = true: filter on it for the decision that counts.';
COMMENT ON COLUMN analytics.decisions.outcome IS 'advance | reject | hold.';
COMMENT ON COLUMN analytics.decisions.decided_by IS 'Member id of the decision maker.';
COMMENT ON COLUMN analytics.decisions.report_hash IS 'SHA-256 (hex) of the report the decision maker saw.';
COMMENT ON COLUMN analytics.decisions.supersedes IS 'The decision this one amends; NULL for a first decision.';
COMMENT ON COLUMN analytics.decisions.current IS 'True for the decision that counts (not amended since).';
COMMENT ON COLUMN analytics.decisions.revision IS '1 for the first decision of the session, 2 for its first amendment, …';

-- ---------------------------------------------------------------------------------------------
-- analytics.time_to_decision
-- ---------------------------------------------------------------------------------------------
CREATE VIEW analytics.time_to_decision AS
SELECT c.session_id,
       c.org_id,
       ss.assessment_id,
       ss.assessment_version,
       coalesce(ss.submitted_at, ss.expired_at)                                   AS finished_at,
       f.decided_at                                                               AS first_decided_at,
       f.outcome                                                                  AS first_outcome,
       c.decided_at                                                               AS current_decided_at,
       c.outcome                                                                  AS current_outcome,
       f.decided_at - coalesce(ss.submitted_at, ss.expired_at)                    AS time_to_first_decision,
       c.decided_at - coalesce(ss.submitted_at, ss.expired_at)                    AS time_to_current_decision,
       round(extract(EPOCH FROM f.decided_at - coalesce(ss.submitted_at, ss.expired_at)) / 3600, 6)
                                                                                  AS hours_to_first_decision,
       round(extract(EPOCH FROM c.decided_at - coalesce(ss.submitted_at, ss.expired_at)) / 3600, 6)
                                                                                  AS hours_to_current_decision
FROM decisions AS c
         LEFT JOIN sessions AS ss ON ss.session_id = c.session_id
         CROSS JOIN LATERAL (SELECT e.decided_at, e.outcome
                             FROM decisions AS e
                             WHERE e.session_id = c.session_id
                             ORDER BY e.event_sequence
                             LIMIT 1) AS f
WHERE c.current;
COMMENT ON VIEW analytics.time_to_decision IS
    'One row per session with a current decision: how long after the session finished (submitted or expired) the first decision and the current (possibly amended) decision were recorded.';
COMMENT ON COLUMN analytics.time_to_decision.finished_at IS 'submitted_at, else expired_at.';
COMMENT ON COLUMN analytics.time_to_decision.first_decided_at IS 'When the session''s first decision was recorded.';
COMMENT ON COLUMN analytics.time_to_decision.current_decided_at IS 'When the current decision was recorded (equals first_decided_at when never amended).';
COMMENT ON COLUMN analytics.time_to_decision.time_to_first_decision IS 'first_decided_at − finished_at.';
COMMENT ON COLUMN analytics.time_to_decision.time_to_current_decision IS 'current_decided_at − finished_at.';
COMMENT ON COLUMN analytics.time_to_decision.hours_to_first_decision IS 'time_to_first_decision in hours (numeric, 6 decimal places).';
COMMENT ON COLUMN analytics.time_to_decision.hours_to_current_decision IS 'time_to_current_decision in hours (numeric, 6 decimal places).';

-- ---------------------------------------------------------------------------------------------
-- analytics.reviewer_agreement
-- ---------------------------------------------------------------------------------------------
CREATE VIEW analytics.reviewer_agreement AS
SELECT u.org_id,
       u.assessment_id,
       u.assessment_version,
       CASE WHEN grouping(u.criterion) = 1 THEN 'overall' ELSE 'criterion' END   AS scope,
       u.criterion,
       count(DISTINCT u.session_id)                                              AS sessions,
       count(*)                                                                  AS units,
       count(*) FILTER (WHERE u.m >= 2)                                          AS pairable_units,
       coalesce(sum(u.m) FILTER (WHERE u.m >= 2), 0)::bigint                     AS pairable_values,
       round(analytics.krippendorff_alpha_interval(u.scores), 6)                 AS alpha
FROM (SELECT cs.org_id,
             cs.assessment_id,
             cs.assessment_version,
             cs.session_id,
             cs.criterion,
             array_agg(cs.score::numeric) AS scores,
             count(*)                     AS m
      FROM analytics.criterion_scores AS cs
      GROUP BY cs.org_id, cs.assessment_id, cs.assessment_version, cs.session_id, cs.criterion) AS u
GROUP BY GROUPING SETS ((u.org_id, u.assessment_id, u.assessment_version, u.criterion),
                        (u.org_id, u.assessment_id, u.assessment_version));
COMMENT ON VIEW analytics.reviewer_agreement IS
    'Inter-reviewer agreement, Krippendorff''s alpha (interval metric) over current scores. One row per (org, assessment, version, criterion) with scope = criterion, and one per (org, assessment, version) with scope = overall and criterion NULL. A unit is one session on one criterion; the coders are its reviewers (completed or not).';
COMMENT ON COLUMN analytics.reviewer_agreement.scope IS 'criterion: one criterion; overall: all criteria''s units pooled, on their raw level scales.';
COMMENT ON COLUMN analytics.reviewer_agreement.sessions IS 'Sessions with at least one current score in the group.';
COMMENT ON COLUMN analytics.reviewer_agreement.units IS 'Units (session × criterion) with at least one current score.';
COMMENT ON COLUMN analytics.reviewer_agreement.pairable_units IS 'Units scored by at least two reviewers; only these count.';
COMMENT ON COLUMN analytics.reviewer_agreement.pairable_values IS 'n: the number of scores in pairable units.';
COMMENT ON COLUMN analytics.reviewer_agreement.alpha IS 'Krippendorff''s alpha, interval metric, 6 decimal places: 1 perfect agreement, 0 chance level, < 0 systematic disagreement. NULL when undefined (fewer than two pairable values, or all pairable values equal).';

-- ---------------------------------------------------------------------------------------------
-- Roles. Roles are cluster-wide (every database of the cluster shares them), so creating one must
-- tolerate that another database, or a concurrent migration, created it already. Grants are per
-- database.
-- ---------------------------------------------------------------------------------------------
DO
$$
    BEGIN
        CREATE ROLE clarity_analyst NOLOGIN;
    EXCEPTION
        WHEN duplicate_object OR unique_violation THEN NULL;
    END
$$;
DO
$$
    BEGIN
        CREATE ROLE clarity_org_analyst NOLOGIN;
    EXCEPTION
        WHEN duplicate_object OR unique_violation THEN NULL;
    END
$$;

-- Which roles may see which organizations through `analytics_org` (maintained by an operator).
CREATE TABLE analytics.org_access
(
    role_name  name        NOT NULL,
    org_id     uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    granted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (role_name, org_id)
);
COMMENT ON TABLE analytics.org_access IS
    'Operator-maintained: members of role role_name see organization org_id through the analytics_org views.';

-- The organizations the current role may see through `analytics_org`: those mapped to a role it
-- is a member of (directly or indirectly). `current_user` inside a view is the caller, not the
-- view's owner. Rows naming a role that no longer exists match nothing.
CREATE VIEW analytics.visible_orgs AS
SELECT DISTINCT a.org_id
FROM analytics.org_access AS a
         JOIN pg_roles AS r ON r.rolname = a.role_name
WHERE pg_has_role(current_user, r.oid, 'MEMBER');
COMMENT ON VIEW analytics.visible_orgs IS
    'The organizations the current role may see through the analytics_org views (per analytics.org_access).';

-- The cross-organization analyst: every view in `analytics`, nothing else.
GRANT USAGE ON SCHEMA analytics TO clarity_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA analytics TO clarity_analyst;
-- Views a later migration adds to `analytics` (as the same migrating role) are readable too.
ALTER DEFAULT PRIVILEGES IN SCHEMA analytics GRANT SELECT ON TABLES TO clarity_analyst;
-- Nothing in `public`: no table there is granted to the role (or to PUBLIC), and no role may
-- create objects there (already the default since PostgreSQL 15; stated for older servers).
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM clarity_analyst, clarity_org_analyst;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- ---------------------------------------------------------------------------------------------
-- analytics_org: the same views restricted to the caller's organizations. security_barrier keeps
-- a caller's own (possibly leaky) functions in WHERE from being evaluated before the filter.
-- ---------------------------------------------------------------------------------------------
CREATE SCHEMA analytics_org;
COMMENT ON SCHEMA analytics_org IS
    'The analytics views restricted to the organizations mapped to the caller''s roles in analytics.org_access. Read with a role that is a member of clarity_org_analyst.';

CREATE VIEW analytics_org.session_facts WITH (security_barrier) AS
SELECT * FROM analytics.session_facts WHERE org_id IN (SELECT org_id FROM analytics.visible_orgs);
CREATE VIEW analytics_org.criterion_scores WITH (security_barrier) AS
SELECT * FROM analytics.criterion_scores WHERE org_id IN (SELECT org_id FROM analytics.visible_orgs);
CREATE VIEW analytics_org.findings WITH (security_barrier) AS
SELECT * FROM analytics.findings WHERE org_id IN (SELECT org_id FROM analytics.visible_orgs);
CREATE VIEW analytics_org.decisions WITH (security_barrier) AS
SELECT * FROM analytics.decisions WHERE org_id IN (SELECT org_id FROM analytics.visible_orgs);
CREATE VIEW analytics_org.time_to_decision WITH (security_barrier) AS
SELECT * FROM analytics.time_to_decision WHERE org_id IN (SELECT org_id FROM analytics.visible_orgs);
CREATE VIEW analytics_org.reviewer_agreement WITH (security_barrier) AS
SELECT * FROM analytics.reviewer_agreement WHERE org_id IN (SELECT org_id FROM analytics.visible_orgs);
CREATE VIEW analytics_org.rubric_criteria WITH (security_barrier) AS
SELECT * FROM analytics.rubric_criteria
WHERE org_id IS NULL OR org_id IN (SELECT org_id FROM analytics.visible_orgs);
COMMENT ON VIEW analytics_org.session_facts IS 'analytics.session_facts, rows of the caller''s organizations only.';
COMMENT ON VIEW analytics_org.criterion_scores IS 'analytics.criterion_scores, rows of the caller''s organizations only.';
COMMENT ON VIEW analytics_org.findings IS 'analytics.findings, rows of the caller''s organizations only.';
COMMENT ON VIEW analytics_org.decisions IS 'analytics.decisions, rows of the caller''s organizations only.';
COMMENT ON VIEW analytics_org.time_to_decision IS 'analytics.time_to_decision, rows of the caller''s organizations only.';
COMMENT ON VIEW analytics_org.reviewer_agreement IS 'analytics.reviewer_agreement, rows of the caller''s organizations only.';
COMMENT ON VIEW analytics_org.rubric_criteria IS 'analytics.rubric_criteria: the built-in library and the caller''s organizations'' assessments.';

-- The per-organization analyst: the `analytics_org` views only (USAGE on `analytics` lets it call
-- analytics.krippendorff_alpha_interval; it has no SELECT on anything there).
GRANT USAGE ON SCHEMA analytics_org TO clarity_org_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA analytics_org TO clarity_org_analyst;
GRANT USAGE ON SCHEMA analytics TO clarity_org_analyst;
