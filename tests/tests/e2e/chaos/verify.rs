//! What every read model of a session must hold after the chaos, compared with what it holds.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use clarity_domain::telemetry::{EditOrigin, TelemetryData};
use clarity_tests::{Client, TestEnv};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{Outcome, KEYFRAME_EVENTS};

/// JSON equality, with numbers equal within 1e-12 relative: serde_json parses decimals fast
/// rather than exactly (no `float_roundtrip`), so a timing may come back one ULP away.
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            (x - y).abs() <= 1e-12 * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// A telemetry row of the session log: seq, type, time, data, position in the audit chain.
type LogRow = (i64, String, DateTime<Utc>, Value, Option<i64>);

/// What a session's read models must hold, compared with what they hold; one line per mismatch.
pub async fn verify(
    env: &TestEnv,
    client: &Client,
    admin: &str,
    o: &Outcome,
) -> anyhow::Result<Vec<String>> {
    let id: Uuid = o.candidate.session.parse()?;
    let m = &o.model;
    let n = m.acked.len() as i64;
    let count =
        |f: &dyn Fn(&TelemetryData) -> bool| m.acked.iter().filter(|e| f(&e.data)).count() as i64;
    let mut problems = Vec::new();
    let mut check = |what: &str, expected: Value, actual: Value| {
        if expected != actual {
            problems.push(format!(
                "{}: {what}: expected {expected}, found {actual}",
                o.candidate.session
            ));
        }
    };

    // The session's counters and lifecycle (sessions projection) against the event store.
    type Counters = (Option<String>, i64, i64, i64, i64, i64, i64, i64, i64, i64);
    let (status, telemetry, keystrokes, edits, pastes, focus, runs, faces, last_seq, lifecycle): Counters =
        sqlx::query_as(
            "SELECT status, telemetry_events, keystrokes, edits, pastes, focus_losses, code_runs, face_checks,
                    last_seq, lifecycle_events FROM sessions WHERE session_id = $1",
        )
        .bind(id)
        .fetch_one(&env.pool)
        .await?;
    check(
        "status",
        json!(if o.submitted {
            "submitted"
        } else {
            "in_progress"
        }),
        json!(status),
    );
    check("telemetry_events", json!(n), json!(telemetry));
    check(
        "keystrokes",
        json!(count(&|d| matches!(d, TelemetryData::Keystroke { .. }))),
        json!(keystrokes),
    );
    check(
        "edits",
        json!(count(&|d| matches!(d, TelemetryData::Edit { .. }))),
        json!(edits),
    );
    check(
        "pastes",
        json!(count(&|d| matches!(
            d,
            TelemetryData::Edit {
                origin: EditOrigin::Paste,
                ..
            }
        ))),
        json!(pastes),
    );
    check(
        "focus_losses",
        json!(count(&|d| matches!(d, TelemetryData::FocusLost {}))),
        json!(focus),
    );
    check(
        "code_runs",
        json!(count(&|d| matches!(d, TelemetryData::CodeRun { .. }))),
        json!(runs),
    );
    check(
        "face_checks",
        json!(count(&|d| matches!(d, TelemetryData::FaceCheck { .. }))),
        json!(faces),
    );
    check("last_seq", json!(n), json!(last_seq));
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_type = 'CandidateSession' AND aggregate_id = $1",
    )
    .bind(&o.candidate.session)
    .fetch_one(&env.pool)
    .await?;
    check(
        "lifecycle_events (the event store's count)",
        json!(stored),
        json!(lifecycle),
    );
    // Invited, consented, started (and submitted, analysed): the refused requests left nothing.
    check(
        "events in the store",
        json!(if o.submitted { 5 } else { 3 }),
        json!(stored),
    );
    let (consented, started, finished): (bool, bool, bool) = sqlx::query_as(
        "SELECT consented_at IS NOT NULL, started_at IS NOT NULL, submitted_at IS NOT NULL
         FROM sessions WHERE session_id = $1",
    )
    .bind(id)
    .fetch_one(&env.pool)
    .await?;
    check(
        "consented, started, submitted",
        json!([true, true, o.submitted]),
        json!([consented, started, finished]),
    );
    // The API's cursor and gate: the last seq, the events, every file's length in UTF-16 units.
    let cursor: Option<(i64, i64, Value)> = sqlx::query_as(
        "SELECT last_seq, events, files::jsonb FROM telemetry_cursors WHERE session_id = $1",
    )
    .bind(id)
    .fetch_optional(&env.pool)
    .await?;
    let lengths: BTreeMap<&String, usize> = m
        .files
        .iter()
        .map(|(f, text)| (f, text.encode_utf16().count()))
        .collect();
    check(
        "the API's cursor and gate",
        json!([n, n, lengths]),
        json!(cursor.map(|(last, events, files)| json!([last, events, files]))),
    );

    // The log: exactly the acknowledged events, each once, as sent.
    let rows: Vec<LogRow> = sqlx::query_as(
        "SELECT seq, event_type, occurred_at, data, chain_position FROM session_events
         WHERE session_id = $1 AND stream_kind = 'telemetry' ORDER BY seq",
    )
    .bind(id)
    .fetch_all(&env.pool)
    .await?;
    check("telemetry rows", json!(n), json!(rows.len()));
    for (sent, (seq, event_type, at, data, chained)) in m.acked.iter().zip(&rows) {
        let as_sent = sent.seq as i64 == *seq
            && event_type == sent.data.kind()
            && (*at - sent.ts)
                .num_microseconds()
                .is_some_and(|d| d.abs() <= 1)
            && same(data, &serde_json::to_value(&sent.data)?)
            && chained.is_some();
        if !as_sent {
            check(
                &format!("event {}", sent.seq),
                json!(sent),
                json!({"seq": seq, "type": event_type, "at": at, "data": data, "chain_position": chained}),
            );
            break;
        }
    }
    let lifecycle_rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM session_events WHERE session_id = $1 AND stream_kind = 'lifecycle'",
    )
    .bind(id)
    .fetch_one(&env.pool)
    .await?;
    check(
        "lifecycle rows in the log",
        json!(stored),
        json!(lifecycle_rows),
    );

    // The audit chain covers every event once.
    let chain: Option<(i64, i64)> =
        sqlx::query_as("SELECT count, next_telemetry FROM audit_chain_heads WHERE session_id = $1")
            .bind(id)
            .fetch_optional(&env.pool)
            .await?;
    check(
        "audit chain (length, next telemetry seq)",
        json!([n + stored, n + 1]),
        json!(chain),
    );

    // The replay: the workspace is what the events build, the markers what they hold.
    let replay: Option<(i64, Value, i64)> = sqlx::query_as(
        "SELECT last_seq, workspace, anomalies FROM replay_sessions WHERE session_id = $1",
    )
    .bind(id)
    .fetch_optional(&env.pool)
    .await?;
    let (replay_last, workspace, anomalies) = replay.unwrap_or((0, Value::Null, 0));
    check("replay last_seq", json!(n), json!(replay_last));
    check("replay files", json!(m.files), workspace["files"].clone());
    // Every keyframe holds the files as they were after its event (seeks start from them).
    let keyframes: Vec<(i64, Value)> = sqlx::query_as(
        "SELECT seq, workspace FROM replay_keyframes WHERE session_id = $1 ORDER BY seq",
    )
    .bind(id)
    .fetch_all(&env.pool)
    .await?;
    check(
        "keyframes (one per 50 events, and seq 0)",
        json!(true),
        json!(keyframes.len() as i64 > n / KEYFRAME_EVENTS),
    );
    for (seq, kf) in &keyframes {
        let expected = m.snapshots.get(&(*seq as u64)).cloned().unwrap_or_default();
        if json!(expected) != kf["files"] {
            check(
                &format!("keyframe {seq}"),
                json!(expected),
                kf["files"].clone(),
            );
        }
    }
    // A seek through the API lands on the same files.
    if n > 0 {
        let at = (id.as_u128() % n as u128) as i64 + 1;
        let r = client
            .get(&format!("/v1/sessions/{id}/replay/state?seq={at}"), admin)
            .await?;
        check(
            &format!("the replay at seq {at}"),
            json!(m.snapshots.get(&(at as u64))),
            r.body["files"].clone(),
        );
    }
    check(
        "replay anomalies",
        json!(m.anomalies.len()),
        json!(anomalies),
    );
    let markers: Vec<(String, i64)> = sqlx::query_as(
        "SELECT kind, seq FROM replay_markers WHERE session_id = $1 ORDER BY kind, seq",
    )
    .bind(id)
    .fetch_all(&env.pool)
    .await?;
    let of = |kind: &str| {
        markers
            .iter()
            .filter(|(k, _)| k == kind)
            .map(|(_, s)| *s)
            .collect::<Vec<_>>()
    };
    check("paste markers", json!(pastes), json!(of("paste").len()));
    check("code run markers", json!(runs), json!(of("code_run").len()));
    check(
        "face anomaly markers",
        json!(count(
            &|d| matches!(d, TelemetryData::FaceCheck { face_count, .. } if *face_count != 1)
        )),
        json!(of("face_anomaly").len()),
    );
    check(
        "focus-away markers",
        json!(m.focus_aways),
        json!(of("focus_away").len()),
    );
    check(
        "edit anomaly markers",
        json!(m.anomalies),
        json!(of("edit_anomaly")),
    );
    check(
        "submission markers",
        json!(usize::from(o.submitted)),
        json!(of("submission").len()),
    );

    // The integrity analysis read every acknowledged event.
    if o.submitted {
        let analysis: Option<Value> = sqlx::query_scalar(
            "SELECT analysis::jsonb FROM integrity_analyses WHERE session_id = $1",
        )
        .bind(id)
        .fetch_optional(&env.pool)
        .await?;
        let analysis = analysis.unwrap_or(Value::Null);
        check(
            "integrity input (events analysed, last seq)",
            json!([n, n]),
            json!([analysis["events_analysed"], analysis["last_seq"]]),
        );
    }
    Ok(problems)
}
