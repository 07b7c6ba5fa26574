//! Projection `replay`: materializes each session's workspace by applying its telemetry in order,
//! stores keyframes (the full workspace) at a configurable interval, and computes the timeline
//! markers reviewers jump between: pastes, tab-aways, code runs, face-check anomalies, edit
//! anomalies and the submission.
//!
//! A telemetry record is applied only if its `seq` is the session's next one: duplicates (retries,
//! re-publishes) are skipped, so the workspace never sees an event twice. `at_ms` is the time since
//! the session started (its `SessionStarted` time; the first event's time if that is not known).

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use clarity_domain::session::SessionEvent;
use clarity_domain::telemetry::TelemetryData;
use clarity_domain::wire::StreamKind;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::replay_engine::{KeyframePolicy, KeyframeReplayer, Workspace};
use crate::{ProjectionError, Record};

/// Keyframe interval: `CLARITY_REPLAY_KEYFRAME_EVENTS` events (default 500) or
/// `CLARITY_REPLAY_KEYFRAME_MS` of session time (default 60 000), whichever comes first. Seeking
/// costs one keyframe read plus at most that many events.
pub static POLICY: LazyLock<KeyframePolicy> = LazyLock::new(|| {
    let var = |name: &str, default: i64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    KeyframePolicy {
        every_events: var("CLARITY_REPLAY_KEYFRAME_EVENTS", 500) as u32,
        every_ms: var("CLARITY_REPLAY_KEYFRAME_MS", 60_000),
    }
});

/// The working state of one session during a batch.
struct Session {
    org_id: Uuid,
    started_at: Option<DateTime<Utc>>,
    last_seq: i64,
    last_at_ms: i64,
    /// The workspace and the keyframe counters, stepped by the same engine as the reference.
    replayer: KeyframeReplayer,
    focus_lost: Option<(i64, i64)>,
    anomalies: i64,
    new: bool,
}

/// A marker to insert.
struct Marker {
    kind: &'static str,
    seq: i64,
    at_ms: i64,
    end_seq: Option<i64>,
    duration_ms: Option<i64>,
    label: String,
    data: serde_json::Value,
}

/// Applies a batch of session-topic records.
pub async fn apply(conn: &mut PgConnection, records: &[Record]) -> Result<(), ProjectionError> {
    let mut sessions: HashMap<Uuid, Session> = HashMap::new();
    let mut keyframes: Vec<(Uuid, i64, i64, serde_json::Value)> = Vec::new();
    let mut markers: Vec<(Uuid, Uuid, Marker)> = Vec::new();
    for record in records {
        let wire = &record.event;
        let (session_id, org_id) = record.session_and_org()?;
        if let std::collections::hash_map::Entry::Vacant(e) = sessions.entry(session_id) {
            let loaded = load(conn, session_id, org_id).await?;
            e.insert(loaded);
        }
        let s = sessions.get_mut(&session_id).expect("inserted above");
        match wire.streamkind {
            StreamKind::Lifecycle => match wire
                .decode::<SessionEvent>()
                .map_err(|e| record.undecodable(&e.to_string()))?
            {
                SessionEvent::SessionStarted { started_at, .. }
                    if s.started_at.is_none() || s.last_seq == 0 =>
                {
                    s.started_at = Some(micros(started_at));
                }
                SessionEvent::SessionSubmitted { at, .. }
                | SessionEvent::SessionExpired { at, .. } => {
                    let expired = wire
                        .type_parts()
                        .is_some_and(|(_, n)| n == "SessionExpired");
                    let at_ms = s.started_at.map_or(s.last_at_ms, |st| {
                        (micros(at) - st).num_milliseconds().max(0)
                    });
                    let label = if expired {
                        "Expired at the deadline".to_string()
                    } else {
                        "Submitted".to_string()
                    };
                    markers.push((
                        session_id,
                        org_id,
                        Marker {
                            kind: "submission",
                            seq: s.last_seq,
                            at_ms,
                            end_seq: None,
                            duration_ms: None,
                            label,
                            data: json!({"expired": expired}),
                        },
                    ));
                }
                SessionEvent::IntegrityAnalysed { analysis, .. } => {
                    markers.extend(
                        integrity_flags(&analysis)
                            .into_iter()
                            .map(|m| (session_id, org_id, m)),
                    );
                }
                _ => {}
            },
            StreamKind::Telemetry => {
                let seq = wire.sequence as i64;
                if seq != s.last_seq + 1 {
                    // At or below: a duplicate. Above: cannot happen with the API's contiguity
                    // check; applying out of order would corrupt the workspace, so wait for the gap.
                    continue;
                }
                let data: TelemetryData = serde_json::from_value(wire.data.clone())
                    .map_err(|e| record.undecodable(&e.to_string()))?;
                let time = micros(wire.time);
                let origin = *s.started_at.get_or_insert(time);
                let at_ms = (time - origin).num_milliseconds().max(0);
                let (anomaly, keyframe) = s.replayer.step(seq as u64, at_ms, &data);
                if let Some(anomaly) = anomaly {
                    s.anomalies += 1;
                    markers.push((session_id, org_id, Marker { kind: "edit_anomaly", seq, at_ms, end_seq: None, duration_ms: None, label: format!("Edit did not apply: {}", anomaly.reason), data: json!({"code": anomaly.code, "reason": anomaly.reason, "event": wire.data}) }));
                }
                if let Some(marker) = marker_for(s, seq, at_ms, &data) {
                    markers.push((session_id, org_id, marker));
                }
                s.last_seq = seq;
                s.last_at_ms = at_ms;
                if let Some(keyframe) = keyframe {
                    keyframes.push((
                        session_id,
                        seq,
                        at_ms,
                        serde_json::to_value(&keyframe.workspace).expect("workspace serializes"),
                    ));
                }
            }
        }
    }
    for (id, s) in &sessions {
        if s.new {
            keyframes.push((
                *id,
                0,
                0,
                serde_json::to_value(Workspace::default()).expect("serializes"),
            ));
        }
    }
    save(conn, &sessions, &keyframes, &markers).await?;
    Ok(())
}

/// Times at PostgreSQL's precision, so that a value kept in memory within a batch and the same
/// value read back from the table in a later batch give the same `at_ms` (rebuilds batch
/// differently from the live consumer and must produce identical rows).
fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::SubsecRound;
    t.trunc_subsecs(6)
}

/// The marker an event opens or closes, if any.
fn marker_for(s: &mut Session, seq: i64, at_ms: i64, data: &TelemetryData) -> Option<Marker> {
    let m = |kind, label: String, data| Marker {
        kind,
        seq,
        at_ms,
        end_seq: None,
        duration_ms: None,
        label,
        data,
    };
    match data {
        TelemetryData::Edit {
            file,
            position,
            inserted,
            origin: clarity_domain::telemetry::EditOrigin::Paste,
            ..
        } => {
            let chars = inserted.chars().count();
            Some(m(
                "paste",
                format!("Pasted {chars} characters into {file}"),
                json!({"file": file, "chars": chars, "position": position}),
            ))
        }
        TelemetryData::FocusLost {} => {
            s.focus_lost.get_or_insert((seq, at_ms));
            None
        }
        TelemetryData::FocusRegained {} => {
            let (lost_seq, lost_at) = s.focus_lost.take()?;
            let duration = at_ms - lost_at;
            Some(Marker {
                kind: "focus_away",
                seq: lost_seq,
                at_ms: lost_at,
                end_seq: Some(seq),
                duration_ms: Some(duration),
                label: format!("Away from the editor for {:.1} s", duration as f64 / 1000.0),
                data: json!({}),
            })
        }
        TelemetryData::CodeRun {
            command,
            exit_code,
            tests_passed,
            tests_failed,
            duration_ms,
        } => {
            let passed = *exit_code == 0 && *tests_failed == 0;
            let label = format!(
                "Ran `{command}`: {} ({tests_passed} passed, {tests_failed} failed)",
                if passed { "pass" } else { "fail" }
            );
            Some(m(
                "code_run",
                label,
                json!({"command": command, "exit_code": exit_code, "passed": passed, "tests_passed": tests_passed, "tests_failed": tests_failed, "duration_ms": duration_ms}),
            ))
        }
        TelemetryData::FaceCheck {
            face_count,
            similarity,
            model_id,
            model_version,
            quality,
        } if *face_count != 1 => {
            let label = if *face_count == 0 {
                "No face in view".to_string()
            } else {
                format!("{face_count} faces in view")
            };
            Some(m(
                "face_anomaly",
                label,
                json!({"face_count": face_count, "similarity": similarity, "model_id": model_id, "model_version": model_version, "quality": quality}),
            ))
        }
        _ => None,
    }
}

async fn load(conn: &mut PgConnection, id: Uuid, org_id: Uuid) -> Result<Session, sqlx::Error> {
    type Row = (
        Option<DateTime<Utc>>,
        i64,
        i64,
        serde_json::Value,
        i32,
        i64,
        Option<i64>,
        Option<i64>,
        i64,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT started_at, last_seq, last_at_ms, workspace, events_since_keyframe, last_keyframe_at_ms,
                focus_lost_seq, focus_lost_at_ms, anomalies
         FROM replay_sessions WHERE session_id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match row {
        Some((
            started_at,
            last_seq,
            last_at_ms,
            workspace,
            events_since_keyframe,
            last_keyframe_at_ms,
            fl_seq,
            fl_at,
            anomalies,
        )) => Session {
            org_id,
            started_at,
            last_seq,
            last_at_ms,
            replayer: KeyframeReplayer::resume(
                *POLICY,
                serde_json::from_value(workspace).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                events_since_keyframe.max(0) as u32,
                last_keyframe_at_ms,
            ),
            focus_lost: fl_seq.zip(fl_at),
            anomalies,
            new: false,
        },
        None => Session {
            org_id,
            started_at: None,
            last_seq: 0,
            last_at_ms: 0,
            replayer: KeyframeReplayer::new(*POLICY),
            focus_lost: None,
            anomalies: 0,
            new: true,
        },
    })
}

async fn save(
    conn: &mut PgConnection,
    sessions: &HashMap<Uuid, Session>,
    keyframes: &[(Uuid, i64, i64, serde_json::Value)],
    markers: &[(Uuid, Uuid, Marker)],
) -> Result<(), sqlx::Error> {
    for (id, s) in sessions {
        let (events_since_keyframe, last_keyframe_at_ms) = s.replayer.counters();
        sqlx::query(
            "INSERT INTO replay_sessions (session_id, org_id, started_at, last_seq, last_at_ms, workspace,
                 events_since_keyframe, last_keyframe_at_ms, focus_lost_seq, focus_lost_at_ms, anomalies)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (session_id) DO UPDATE SET started_at = EXCLUDED.started_at, last_seq = EXCLUDED.last_seq,
                 last_at_ms = EXCLUDED.last_at_ms, workspace = EXCLUDED.workspace,
                 events_since_keyframe = EXCLUDED.events_since_keyframe, last_keyframe_at_ms = EXCLUDED.last_keyframe_at_ms,
                 focus_lost_seq = EXCLUDED.focus_lost_seq, focus_lost_at_ms = EXCLUDED.focus_lost_at_ms,
                 anomalies = EXCLUDED.anomalies",
        )
        .bind(id)
        .bind(s.org_id)
        .bind(s.started_at)
        .bind(s.last_seq)
        .bind(s.last_at_ms)
        .bind(serde_json::to_value(s.replayer.workspace()).expect("workspace serializes"))
        .bind(events_since_keyframe as i32)
        .bind(last_keyframe_at_ms)
        .bind(s.focus_lost.map(|f| f.0))
        .bind(s.focus_lost.map(|f| f.1))
        .bind(s.anomalies)
        .execute(&mut *conn)
        .await?;
    }
    for (id, seq, at_ms, workspace) in keyframes {
        sqlx::query("INSERT INTO replay_keyframes (session_id, seq, at_ms, workspace) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
            .bind(id)
            .bind(seq)
            .bind(at_ms)
            .bind(workspace)
            .execute(&mut *conn)
            .await?;
    }
    for (id, org, m) in markers {
        sqlx::query(
            "INSERT INTO replay_markers (session_id, org_id, kind, seq, at_ms, end_seq, duration_ms, label, data)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(org)
        .bind(m.kind)
        .bind(m.seq)
        .bind(m.at_ms)
        .bind(m.end_seq)
        .bind(m.duration_ms)
        .bind(&m.label)
        .bind(&m.data)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// One `integrity_flag` marker per replay position that a finding's evidence points at (findings
/// sharing a position share the marker), so the timeline shows where to look.
fn integrity_flags(analysis: &clarity_domain::integrity::IntegrityAnalysis) -> Vec<Marker> {
    let mut by_seq: std::collections::BTreeMap<u64, Marker> = std::collections::BTreeMap::new();
    for finding in analysis.findings() {
        for evidence in finding.evidence.iter().take(5) {
            if evidence.replay_seq == 0 {
                continue;
            }
            let marker = by_seq.entry(evidence.replay_seq).or_insert_with(|| Marker {
                kind: "integrity_flag",
                seq: evidence.replay_seq as i64,
                at_ms: evidence.at_ms.max(0),
                end_seq: Some(evidence.to_seq.max(evidence.replay_seq) as i64),
                duration_ms: None,
                label: String::new(),
                data: json!({"suite_version": analysis.suite_version, "findings": []}),
            });
            if !marker.label.is_empty() {
                marker.label.push_str("; ");
            }
            marker.label.push_str(&finding.summary);
            if let Some(list) = marker.data["findings"].as_array_mut() {
                list.push(json!({
                    "detector": finding.detector,
                    "detector_version": finding.detector_version,
                    "rule": finding.rule,
                    "level": finding.level,
                    "note": evidence.note,
                }));
            }
        }
    }
    by_seq.into_values().collect()
}
