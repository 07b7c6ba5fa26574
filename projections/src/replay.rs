//! Projection `replay`: materializes each session's workspace by applying its telemetry in order,
//! stores keyframes (the full workspace) at a configurable interval, and computes the timeline
//! markers reviewers jump between: pastes, tab-aways, code runs, face-check anomalies, edit
//! anomalies and the submission.
//!
//! A telemetry record is applied only if its `seq` is the session's next one: duplicates (retries,
//! re-publishes) are skipped, so the workspace never sees an event twice. `at_ms` is the time since
//! the session started (its `SessionStarted` time; the first event's time if that is not known).
//!
//! The keyframe interval comes in with [`ReplayConfig`]; the queries that read the replay (seek,
//! markers, event pages) are in [`seek`].

pub mod seek;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use clarity_domain::session::SessionEvent;
use clarity_domain::telemetry::TelemetryData;
use clarity_domain::wire::StreamKind;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::replay_engine::{KeyframePolicy, KeyframeReplayer, Workspace};
use crate::{ProjectionError, Record};

/// How the replay projection stores keyframes. Seeking costs one keyframe read plus at most one
/// interval of events.
#[derive(Debug, Clone, Copy)]
pub struct ReplayConfig {
    /// The keyframe interval. The roles read it from `CLARITY_REPLAY_KEYFRAME_EVENTS` (events,
    /// default 500) and `CLARITY_REPLAY_KEYFRAME_MS` (session time, default 60 000), whichever
    /// comes first.
    pub keyframes: KeyframePolicy,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self {
            keyframes: KeyframePolicy {
                every_events: 500,
                every_ms: 60_000,
            },
        }
    }
}

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
pub async fn apply(
    config: &ReplayConfig,
    conn: &mut PgConnection,
    records: &[Record],
) -> Result<(), ProjectionError> {
    let mut touched: HashMap<Uuid, Uuid> = HashMap::new();
    for record in records {
        let (session_id, org_id) = record.session_and_org()?;
        touched.entry(session_id).or_insert(org_id);
    }
    let mut sessions = load(conn, config.keyframes, &touched).await?;
    let mut keyframes: Vec<(Uuid, i64, i64, String)> = Vec::new();
    let mut markers: Vec<(Uuid, Uuid, Marker)> = Vec::new();
    for record in records {
        let wire = &record.event;
        let (session_id, org_id) = record.session_and_org()?;
        let s = sessions.get_mut(&session_id).expect("loaded above");
        match wire.streamkind {
            StreamKind::Lifecycle => match wire
                .decode::<SessionEvent>()
                .map_err(|e| record.undecodable(&e.to_string()))?
            {
                SessionEvent::SessionStarted { at, .. }
                    if s.started_at.is_none() || s.last_seq == 0 =>
                {
                    s.started_at = Some(micros(at));
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
                SessionEvent::RunCompleted { run_id, result, at } => {
                    // The server's run of the visible tests, at the position it was taken from.
                    let at_ms = s.started_at.map_or(s.last_at_ms, |st| {
                        (micros(at) - st).num_milliseconds().max(0)
                    });
                    let (passed, total) = result.passed();
                    let ok = total > 0 && passed == total;
                    markers.push((
                        session_id,
                        org_id,
                        Marker {
                            kind: "test_run",
                            seq: s.last_seq,
                            at_ms,
                            end_seq: None,
                            duration_ms: Some(result.duration_ms as i64),
                            label: format!("Server ran the visible tests: {passed} of {total} passed"),
                            data: json!({"run_id": run_id, "passed": ok, "tests_passed": passed, "tests_total": total, "ending": result.ending, "verified": true}),
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
                let data: TelemetryData = wire
                    .decode_telemetry()
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
                        serde_json::to_string(&keyframe.workspace).expect("workspace serializes"),
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
                serde_json::to_string(&Workspace::default()).expect("serializes"),
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
            origin,
            ..
        } if origin.is_brought_in() => {
            let chars = inserted.chars().count();
            let verb = if *origin == clarity_domain::telemetry::EditOrigin::Drop {
                "Dropped"
            } else {
                "Pasted"
            };
            Some(m(
                "paste",
                format!("{verb} {chars} characters into {file}"),
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
            // The client's word: the server's own runs are `test_run` markers.
            let label = format!(
                "Reported by the client (unverified): ran `{command}`: {} ({tests_passed} passed, {tests_failed} failed)",
                if passed { "pass" } else { "fail" }
            );
            Some(m(
                "code_run",
                label,
                json!({"command": command, "exit_code": exit_code, "passed": passed, "tests_passed": tests_passed, "tests_failed": tests_failed, "duration_ms": duration_ms, "verified": false}),
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

/// The stored state of every session in `touched` (session → organization), locked for the
/// batch, in one query; sessions not seen before start empty.
async fn load(
    conn: &mut PgConnection,
    policy: KeyframePolicy,
    touched: &HashMap<Uuid, Uuid>,
) -> Result<HashMap<Uuid, Session>, sqlx::Error> {
    type Row = (
        Uuid,
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
    let mut ids: Vec<Uuid> = touched.keys().copied().collect();
    ids.sort();
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT session_id, started_at, last_seq, last_at_ms, workspace, events_since_keyframe,
                last_keyframe_at_ms, focus_lost_seq, focus_lost_at_ms, anomalies
         FROM replay_sessions WHERE session_id = ANY($1) ORDER BY session_id FOR UPDATE",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut sessions = HashMap::with_capacity(ids.len());
    for (
        id,
        started_at,
        last_seq,
        last_at_ms,
        workspace,
        events_since_keyframe,
        last_keyframe_at_ms,
        fl_seq,
        fl_at,
        anomalies,
    ) in rows
    {
        sessions.insert(
            id,
            Session {
                org_id: touched[&id],
                started_at,
                last_seq,
                last_at_ms,
                replayer: KeyframeReplayer::resume(
                    policy,
                    serde_json::from_value(workspace)
                        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                    events_since_keyframe.max(0) as u32,
                    last_keyframe_at_ms,
                ),
                focus_lost: fl_seq.zip(fl_at),
                anomalies,
                new: false,
            },
        );
    }
    for id in ids {
        sessions.entry(id).or_insert_with(|| Session {
            org_id: touched[&id],
            started_at: None,
            last_seq: 0,
            last_at_ms: 0,
            replayer: KeyframeReplayer::new(policy),
            focus_lost: None,
            anomalies: 0,
            new: true,
        });
    }
    Ok(sessions)
}

async fn save(
    conn: &mut PgConnection,
    sessions: &HashMap<Uuid, Session>,
    keyframes: &[(Uuid, i64, i64, String)],
    markers: &[(Uuid, Uuid, Marker)],
) -> Result<(), sqlx::Error> {
    #[derive(Default)]
    struct Rows {
        id: Vec<Uuid>,
        org: Vec<Uuid>,
        started_at: Vec<Option<DateTime<Utc>>>,
        last_seq: Vec<i64>,
        last_at_ms: Vec<i64>,
        workspace: Vec<String>,
        since_keyframe: Vec<i32>,
        keyframe_at_ms: Vec<i64>,
        fl_seq: Vec<Option<i64>>,
        fl_at: Vec<Option<i64>>,
        anomalies: Vec<i64>,
    }
    let mut rows = Rows::default();
    let mut ordered: Vec<(&Uuid, &Session)> = sessions.iter().collect();
    ordered.sort_by_key(|(id, _)| **id);
    for (id, s) in ordered {
        let (events_since_keyframe, last_keyframe_at_ms) = s.replayer.counters();
        rows.id.push(*id);
        rows.org.push(s.org_id);
        rows.started_at.push(s.started_at);
        rows.last_seq.push(s.last_seq);
        rows.last_at_ms.push(s.last_at_ms);
        rows.workspace
            .push(serde_json::to_string(s.replayer.workspace()).expect("workspace serializes"));
        rows.since_keyframe.push(events_since_keyframe as i32);
        rows.keyframe_at_ms.push(last_keyframe_at_ms);
        rows.fl_seq.push(s.focus_lost.map(|f| f.0));
        rows.fl_at.push(s.focus_lost.map(|f| f.1));
        rows.anomalies.push(s.anomalies);
    }
    if !rows.id.is_empty() {
        sqlx::query(
            "INSERT INTO replay_sessions (session_id, org_id, started_at, last_seq, last_at_ms, workspace,
                 events_since_keyframe, last_keyframe_at_ms, focus_lost_seq, focus_lost_at_ms, anomalies)
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::timestamptz[], $4::bigint[], $5::bigint[],
                                  $6::text[]::jsonb[], $7::int[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[])
             ON CONFLICT (session_id) DO UPDATE SET started_at = EXCLUDED.started_at, last_seq = EXCLUDED.last_seq,
                 last_at_ms = EXCLUDED.last_at_ms, workspace = EXCLUDED.workspace,
                 events_since_keyframe = EXCLUDED.events_since_keyframe, last_keyframe_at_ms = EXCLUDED.last_keyframe_at_ms,
                 focus_lost_seq = EXCLUDED.focus_lost_seq, focus_lost_at_ms = EXCLUDED.focus_lost_at_ms,
                 anomalies = EXCLUDED.anomalies",
        )
        .bind(rows.id)
        .bind(rows.org)
        .bind(rows.started_at)
        .bind(rows.last_seq)
        .bind(rows.last_at_ms)
        .bind(rows.workspace)
        .bind(rows.since_keyframe)
        .bind(rows.keyframe_at_ms)
        .bind(rows.fl_seq)
        .bind(rows.fl_at)
        .bind(rows.anomalies)
        .execute(&mut *conn)
        .await?;
    }
    if !keyframes.is_empty() {
        let (mut id, mut seq, mut at_ms, mut workspace) = (vec![], vec![], vec![], vec![]);
        for (i, s, a, w) in keyframes {
            id.push(*i);
            seq.push(*s);
            at_ms.push(*a);
            workspace.push(w.as_str());
        }
        sqlx::query(
            "INSERT INTO replay_keyframes (session_id, seq, at_ms, workspace)
             SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::bigint[], $4::text[]::jsonb[])
             ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(seq)
        .bind(at_ms)
        .bind(workspace)
        .execute(&mut *conn)
        .await?;
    }
    if !markers.is_empty() {
        let mut cols = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        for (id, org, m) in markers {
            cols.0.push(*id);
            cols.1.push(*org);
            cols.2.push(m.kind);
            cols.3.push(m.seq);
            cols.4.push(m.at_ms);
            cols.5.push(m.end_seq);
            cols.6.push(m.duration_ms);
            cols.7.push(m.label.as_str());
            cols.8.push(m.data.clone());
        }
        sqlx::query(
            "INSERT INTO replay_markers (session_id, org_id, kind, seq, at_ms, end_seq, duration_ms, label, data)
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[],
                                  $7::bigint[], $8::text[], $9::jsonb[])
             ON CONFLICT DO NOTHING",
        )
        .bind(cols.0)
        .bind(cols.1)
        .bind(cols.2)
        .bind(cols.3)
        .bind(cols.4)
        .bind(cols.5)
        .bind(cols.6)
        .bind(cols.7)
        .bind(cols.8)
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
