//! Pins the report's JSON: the typed [`Report`] must produce, byte for byte, what the handler's
//! `json!` literal produced before it (kept below verbatim as the reference), and the content hash
//! of a fixed report must never move (decisions name these hashes).

use chrono::TimeZone;
use serde_json::json;

use super::*;
use crate::held_back::HeldBackPart;

/// The report content exactly as `GET /v1/sessions/{id}/report` built it before the typed
/// report (api `routes/reports.rs`, `build`), from the same facts.
fn reference(facts: &Facts) -> Value {
    let id = facts.session_id;
    let (
        status,
        candidate,
        assessment_id,
        version,
        title,
        started_at,
        finished_at,
        time_used,
        tier,
        suite,
    ) = facts.session.clone();
    let spec = facts.spec.as_ref();
    let scores = &facts.scores;
    let criteria: Vec<Value> = spec
        .map(|s| {
            s.rubric
                .criteria
                .iter()
                .map(|c| {
                    let by: Vec<Value> = scores
                        .iter()
                        .filter(|(_, k, _, _, done)| k == &c.key && *done)
                        .map(|(r, _, s, j, _)| json!({"reviewer": r, "score": s, "justification": j}))
                        .collect();
                    let mean = (!by.is_empty()).then(|| {
                        by.iter().map(|b| b["score"].as_f64().unwrap_or(0.0)).sum::<f64>() / by.len() as f64
                    });
                    json!({"criterion": c.key, "name": c.name, "weight": c.weight, "completed_reviews": by, "mean": mean})
                })
                .collect()
        })
        .unwrap_or_default();
    let runs = facts.runs.clone();
    let findings = &facts.findings;
    let standing = facts.standing;
    let decision = facts.decision.clone();
    let mut content = json!({
        "session_id": id,
        "candidate": candidate,
        "assessment": {"id": assessment_id, "version": version, "title": title,
                       "time_limit_minutes": spec.map(|s| s.time_limit_minutes)},
        "status": status,
        "started_at": started_at,
        "finished_at": finished_at,
        "time_used_seconds": time_used,
        "scores": {
            "aggregate": standing.map(|s| s.0),
            "criteria": criteria,
        },
        "code_runs": {"total": runs.0, "last": runs.1},
        "integrity": {
            "tier": tier,
            "suite_version": suite,
            "findings": findings.iter().map(|(d, r, l, s, seq)| json!({
                "detector": d, "rule": r, "level": l, "summary": s, "replay_seq": seq,
                "replay": seq.map(|q| format!("/review/sessions/{id}?seq={q}")),
            })).collect::<Vec<_>>(),
        },
        "cohort": standing.map(|(_, percentile, rank, n)| json!({"size": n, "percentile": percentile, "rank": rank})),
        "decision": decision.map(|(o, r, at)| json!({"outcome": o, "rationale": r, "decided_at": at})),
    });
    if let Some(held_back) = facts.held_back.clone() {
        content["held_back"] = serde_json::to_value(held_back).unwrap();
    }
    content
}

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + seconds, 123_456_000)
        .unwrap()
}

/// A finished, reviewed, analysed and decided session: every part of the report filled.
fn full() -> Facts {
    let spec = clarity_domain::catalogue::builtin()
        .into_iter()
        .next()
        .expect("a built-in assessment")
        .spec;
    let first = spec.rubric.criteria[0].key.clone();
    let second = spec.rubric.criteria[1].key.clone();
    let (a, b, c) = (
        Uuid::from_u128(0xa),
        Uuid::from_u128(0xb),
        Uuid::from_u128(0xc),
    );
    Facts {
        submission: None,
        automated: None,
        session_id: Uuid::from_u128(0x5e55_1011),
        session: (
            Some("submitted".into()),
            Some("Ada \"the\" Lovelace — é".into()),
            Some(Uuid::from_u128(0xa55e)),
            Some(3),
            Some("REST API Design & Implementation".into()),
            Some(at(0)),
            Some(at(5400)),
            Some(5400),
            Some("review_suggested".into()),
            Some("suite-7".into()),
        ),
        spec: Some(spec),
        scores: vec![
            (a, first.clone(), 4, "clear resources".into(), true),
            (b, first.clone(), 3, "ok".into(), true),
            (c, first, 1, "pending, not shown".into(), false),
            (a, second, 2, "thin tests".into(), true),
        ],
        runs: (
            7,
            Some(json!({"command": "npm test", "exit_code": 0, "duration_ms": 1234.5})),
        ),
        findings: vec![
            (
                "paste".into(),
                "large_paste".into(),
                "review".into(),
                "Pasted 1,200 characters".into(),
                Some(42),
            ),
            (
                "focus".into(),
                "away".into(),
                "info".into(),
                "Away for 3 minutes".into(),
                None,
            ),
        ],
        standing: Some((71.666666667, Some(62.5), 3, 8)),
        decision: Some(("advance".into(), "Strong design".into(), at(9000))),
        held_back: Some(HeldBack {
            records: 2,
            since: at(100),
            operator_alerted: true,
            by_part: vec![HeldBackPart {
                part: "replay".into(),
                kind: "unappliable".into(),
                records: 2,
                since: at(100),
            }],
            notice: "2 acknowledged records of this session are held back".into(),
        }),
    }
}

/// A session just invited: almost everything empty.
fn bare() -> Facts {
    Facts {
        submission: None,
        automated: None,
        session_id: Uuid::from_u128(0x5e55_1012),
        session: (
            Some("invited".into()),
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
        ),
        spec: None,
        scores: Vec::new(),
        runs: (0, None),
        findings: Vec::new(),
        standing: None,
        decision: None,
        held_back: None,
    }
}

#[test]
fn the_typed_report_serializes_exactly_as_the_json_literal_did() {
    for facts in [full(), bare()] {
        // Arrange
        let expected = reference(&facts);

        // Act
        let report = assemble(facts);

        // Assert: the stored text and the hashed bytes are the same.
        assert_eq!(report.to_json().to_string(), expected.to_string());
        assert_eq!(canonical_json(&report.to_json()), canonical_json(&expected));
    }
}

#[test]
fn a_report_s_content_hash_never_moves() {
    // These hashes were computed from the reference (the JSON literal) before the typed report
    // replaced it; decisions stored in deployments name hashes made the same way.
    assert_eq!(
        content_hash(&reference(&full())),
        "a6066472fd8997ed6164e0ca6d1802de401c859dd6a0d4090e00f448ecab4efa",
        "the reference itself changed"
    );
    assert_eq!(
        content_hash(&assemble(full()).to_json()),
        "a6066472fd8997ed6164e0ca6d1802de401c859dd6a0d4090e00f448ecab4efa"
    );
    assert_eq!(
        content_hash(&reference(&bare())),
        "0db19bb13b0e4dcd90062ca43be156e33fbcff28edd1e0d3ec8b6f7d4bab5a5f",
        "the reference itself changed"
    );
    assert_eq!(
        content_hash(&assemble(bare()).to_json()),
        "0db19bb13b0e4dcd90062ca43be156e33fbcff28edd1e0d3ec8b6f7d4bab5a5f"
    );
}

#[test]
fn nothing_held_back_leaves_the_key_out() {
    let mut facts = full();
    facts.held_back = None;
    let content = assemble(facts).to_json();
    assert!(content.get("held_back").is_none(), "{content}");
    assert!(content.get("decision").is_some());
}

#[test]
fn the_automated_grading_is_in_the_report_only_when_there_is_one() {
    let content = assemble(full()).to_json();
    assert!(content.get("automated").is_none(), "{content}");
    let mut facts = full();
    facts.automated = Some(super::ReportAutomated {
        grade: Some(super::ReportGrade {
            grader_version: "rest-api-design@1".into(),
            percent: 87.5,
            checks_passed: 28,
            checks_total: 31,
            failed: vec![super::ReportCheck {
                key: Some("replay_idempotent".into()),
                name: "Replaying a POST with the same Idempotency-Key returns the first response"
                    .into(),
                weight: Some(3.0),
                message: Some("the second answer was a new booking".into()),
            }],
            graded_at: at(5460),
        }),
        earlier: Vec::new(),
        runs: 4,
        last_run: Some((5, 6)),
        details: "/v1/sessions/x/grades".into(),
    });
    let content = assemble(facts).to_json();
    let automated = &content["automated"];
    assert_eq!(automated["grade"]["percent"], 87.5);
    assert_eq!(automated["grade"]["failed"][0]["key"], "replay_idempotent");
    assert_eq!(automated["last_run"], serde_json::json!([5, 6]));
    assert_eq!(automated["runs"], 4);
}
