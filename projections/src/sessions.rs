//! Projection `sessions`: one row per candidate session (status, times, event counts) and the
//! ordered, de-duplicated per-session event log (`session_events`).
//!
//! The log's order is the partition order (`kafka_offset`); duplicates are dropped by
//! (session, stream kind, sequence). Counters only move for rows actually inserted, so a record
//! seen twice counts once.

use clarity_domain::session::SessionEvent;
use clarity_domain::wire::StreamKind;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{audit_chain, integrity, review, scores, ProjectionError, Record};

/// Applies a batch: telemetry in bulk, lifecycle events one by one.
pub async fn apply(conn: &mut PgConnection, records: &[Record]) -> Result<(), ProjectionError> {
    let mut telemetry = TelemetryColumns::default();
    let mut chains = audit_chain::Chains::load(conn, records).await?;
    for record in records {
        let wire = &record.event;
        let (session_id, org_id) = record.session_and_org()?;
        match wire.streamkind {
            StreamKind::Telemetry => {
                let link = chains.append(session_id, org_id, record);
                telemetry.push(session_id, org_id, record, link);
            }
            StreamKind::Lifecycle => {
                // Keep partition order between the two kinds: flush telemetry gathered so far.
                telemetry.flush(conn).await?;
                let event: SessionEvent = wire
                    .decode()
                    .map_err(|e| record.undecodable(&e.to_string()))?;
                let link = chains.append(session_id, org_id, record);
                let short_type = wire.type_parts().map_or("unknown", |(_, n)| n);
                if let (Some(link), Some(reason)) = (
                    &link,
                    audit_chain::checkpoint_reason(wire.streamkind, short_type),
                ) {
                    let head = clarity_domain::audit::ChainHead {
                        count: link.position as u64,
                        hash: link.hash.clone(),
                    };
                    audit_chain::checkpoint(conn, session_id, org_id, &head, wire.time, reason)
                        .await?;
                }
                if insert_lifecycle(conn, session_id, org_id, record, link).await? {
                    match event {
                        SessionEvent::IntegrityAnalysed { analysis, at, .. } => {
                            integrity::record_analysis(
                                conn,
                                session_id,
                                org_id,
                                wire.sequence as i64,
                                &analysis,
                                at,
                            )
                            .await?;
                            lifecycle_counted(conn, session_id, org_id).await?;
                            scores::refresh(conn, session_id).await?;
                        }
                        event @ (SessionEvent::ReviewersAssigned { .. }
                        | SessionEvent::CriterionScored { .. }
                        | SessionEvent::ReviewCompleted { .. }
                        | SessionEvent::CommentAdded { .. }
                        | SessionEvent::FindingResolved { .. }
                        | SessionEvent::DecisionRecorded { .. }) => {
                            let rescore = matches!(
                                event,
                                SessionEvent::ReviewCompleted { .. }
                                    | SessionEvent::CriterionScored { .. }
                            );
                            review::apply(conn, session_id, org_id, wire.sequence as i64, event)
                                .await?;
                            lifecycle_counted(conn, session_id, org_id).await?;
                            if rescore {
                                scores::refresh(conn, session_id).await?;
                            }
                        }
                        event => apply_lifecycle(conn, session_id, org_id, event).await?,
                    }
                }
            }
        }
    }
    telemetry.flush(conn).await?;
    chains.save(conn).await?;
    Ok(())
}

/// Column-wise buffer for one bulk `UNNEST` insert.
#[derive(Default)]
struct TelemetryColumns {
    session_id: Vec<Uuid>,
    org_id: Vec<Uuid>,
    seq: Vec<i64>,
    event_type: Vec<String>,
    occurred_at: Vec<chrono::DateTime<chrono::Utc>>,
    partition: Vec<i32>,
    offset: Vec<i64>,
    data: Vec<String>,
    ce_type: Vec<Option<String>>,
    chain_position: Vec<Option<i64>>,
    chain_hash: Vec<Option<String>>,
}

impl TelemetryColumns {
    fn push(
        &mut self,
        session_id: Uuid,
        org_id: Uuid,
        record: &Record,
        link: Option<audit_chain::Link>,
    ) {
        let wire = &record.event;
        self.session_id.push(session_id);
        self.org_id.push(org_id);
        self.seq.push(wire.sequence as i64);
        self.event_type
            .push(wire.type_parts().map_or("unknown", |(_, n)| n).to_string());
        self.occurred_at.push(wire.time);
        self.partition.push(record.partition);
        self.offset.push(record.offset);
        self.data.push(wire.data.to_string());
        // The type is kept even when the record is not chained (yet): a chain that waited for a
        // quarantined record chains it later from this row (`audit_chain::extend`).
        self.ce_type.push(Some(wire.event_type.clone()));
        self.chain_position.push(link.as_ref().map(|l| l.position));
        self.chain_hash.push(link.map(|l| l.hash));
    }

    async fn flush(&mut self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.session_id.is_empty() {
            return Ok(());
        }
        let cols = std::mem::take(self);
        sqlx::query(
            "WITH input AS (
                 SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::bigint[], $4::text[], $5::timestamptz[],
                                      $6::int[], $7::bigint[], $8::text[], $9::text[], $10::bigint[], $11::text[])
                     AS t(session_id, org_id, seq, event_type, occurred_at, kafka_partition, kafka_offset, data,
                          ce_type, chain_position, chain_hash)
             ), ins AS (
                 INSERT INTO session_events (session_id, org_id, stream_kind, seq, event_type, occurred_at,
                                             kafka_partition, kafka_offset, data, ce_type, chain_position, chain_hash)
                 SELECT session_id, org_id, 'telemetry', seq, event_type, occurred_at, kafka_partition,
                        kafka_offset, data::json, ce_type, chain_position, chain_hash
                 FROM input ORDER BY kafka_offset
                 ON CONFLICT DO NOTHING
                 RETURNING session_id, org_id, seq, event_type, occurred_at, data
             )
             INSERT INTO sessions AS s (session_id, org_id, telemetry_events, keystrokes, edits, pastes,
                                        focus_losses, code_runs, face_checks, last_seq, first_event_at, last_event_at)
             SELECT session_id, min(org_id::text)::uuid, count(*),
                    count(*) FILTER (WHERE event_type = 'keystroke'),
                    count(*) FILTER (WHERE event_type = 'edit'),
                    count(*) FILTER (WHERE event_type = 'edit' AND data->>'origin' = 'paste'),
                    count(*) FILTER (WHERE event_type = 'focus_lost'),
                    count(*) FILTER (WHERE event_type = 'code_run'),
                    count(*) FILTER (WHERE event_type = 'face_check'),
                    max(seq), min(occurred_at), max(occurred_at)
             FROM ins GROUP BY session_id
             ON CONFLICT (session_id) DO UPDATE SET
                 telemetry_events = s.telemetry_events + EXCLUDED.telemetry_events,
                 keystrokes = s.keystrokes + EXCLUDED.keystrokes,
                 edits = s.edits + EXCLUDED.edits,
                 pastes = s.pastes + EXCLUDED.pastes,
                 focus_losses = s.focus_losses + EXCLUDED.focus_losses,
                 code_runs = s.code_runs + EXCLUDED.code_runs,
                 face_checks = s.face_checks + EXCLUDED.face_checks,
                 last_seq = GREATEST(s.last_seq, EXCLUDED.last_seq),
                 first_event_at = LEAST(s.first_event_at, EXCLUDED.first_event_at),
                 last_event_at = GREATEST(s.last_event_at, EXCLUDED.last_event_at)",
        )
        .bind(&cols.session_id)
        .bind(&cols.org_id)
        .bind(&cols.seq)
        .bind(&cols.event_type)
        .bind(&cols.occurred_at)
        .bind(&cols.partition)
        .bind(&cols.offset)
        .bind(&cols.data)
        .bind(&cols.ce_type)
        .bind(&cols.chain_position)
        .bind(&cols.chain_hash)
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// Appends a lifecycle event to the log; `false` if it was already there.
async fn insert_lifecycle(
    conn: &mut PgConnection,
    session_id: Uuid,
    org_id: Uuid,
    record: &Record,
    link: Option<audit_chain::Link>,
) -> Result<bool, sqlx::Error> {
    let wire = &record.event;
    let inserted = sqlx::query(
        "INSERT INTO session_events (session_id, org_id, stream_kind, seq, event_type, occurred_at,
                                     kafka_partition, kafka_offset, data, ce_type, chain_position, chain_hash)
         VALUES ($1, $2, 'lifecycle', $3, $4, $5, $6, $7, $8::json, $9, $10, $11)
         ON CONFLICT DO NOTHING",
    )
    .bind(session_id)
    .bind(org_id)
    .bind(wire.sequence as i64)
    .bind(wire.type_parts().map_or("unknown", |(_, n)| n))
    .bind(wire.time)
    .bind(record.partition)
    .bind(record.offset)
    .bind(wire.data.to_string())
    .bind(&wire.event_type)
    .bind(link.as_ref().map(|l| l.position))
    .bind(link.map(|l| l.hash))
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

async fn lifecycle_counted(
    conn: &mut PgConnection,
    id: Uuid,
    org_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sessions (session_id, org_id, lifecycle_events) VALUES ($1, $2, 1)
         ON CONFLICT (session_id) DO UPDATE SET lifecycle_events = sessions.lifecycle_events + 1",
    )
    .bind(id)
    .bind(org_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn apply_lifecycle(
    conn: &mut PgConnection,
    id: Uuid,
    org_id: Uuid,
    event: SessionEvent,
) -> Result<(), sqlx::Error> {
    lifecycle_counted(conn, id, org_id).await?;
    if matches!(
        event,
        SessionEvent::SessionSubmitted { .. } | SessionEvent::SessionExpired { .. }
    ) {
        integrity::enqueue(conn, id, org_id, integrity::FINISHED).await?;
    }
    let query = match event {
        SessionEvent::CandidateInvited { candidate, assessment, invite_expires_at, invited_by, at, .. } => {
            sqlx::query(
                "UPDATE sessions SET status = 'invited', candidate_name = $2, candidate_email = $3,
                     candidate_ref = $4, assessment_id = $5, assessment_version = $6, assessment_title = $7,
                     invited_by = $8, invited_at = $9, invite_expires_at = $10
                 WHERE session_id = $1",
            )
            .bind(id)
            .bind(candidate.name)
            .bind(candidate.email)
            .bind(candidate.external_ref)
            .bind(assessment.assessment_id)
            .bind(assessment.version as i32)
            .bind(assessment.title)
            .bind(invited_by)
            .bind(at)
            .bind(invite_expires_at)
        }
        SessionEvent::ConsentRecorded { notice_version, scopes, at } => sqlx::query(
            "UPDATE sessions SET status = 'consented', consent_notice = $2, consent_scopes = $3, consented_at = $4
             WHERE session_id = $1",
        )
        .bind(id)
        .bind(notice_version)
        .bind(sqlx::types::Json(scopes))
        .bind(at),
        SessionEvent::SessionStarted { at, deadline } => sqlx::query(
            "UPDATE sessions SET status = 'in_progress', started_at = $2, deadline = $3 WHERE session_id = $1",
        )
        .bind(id)
        .bind(at)
        .bind(deadline),
        SessionEvent::SessionSubmitted { files_digest, time_used_seconds, at, .. } => sqlx::query(
            "UPDATE sessions SET status = 'submitted', submitted_at = $2, files_digest = $3, time_used_seconds = $4
             WHERE session_id = $1",
        )
        .bind(id)
        .bind(at)
        .bind(files_digest)
        .bind(time_used_seconds),
        SessionEvent::SessionExpired { time_used_seconds, at, .. } => sqlx::query(
            "UPDATE sessions SET status = 'expired', expired_at = $2, time_used_seconds = $3 WHERE session_id = $1",
        )
        .bind(id)
        .bind(at)
        .bind(time_used_seconds),
        SessionEvent::CandidateAccessRevoked { reason, at, .. } => sqlx::query(
            "UPDATE sessions SET access_revoked_at = $2, access_revoked_reason = $3 WHERE session_id = $1",
        )
        .bind(id)
        .bind(at)
        .bind(reason),
        // Recorded by `integrity` and `review` before this function is reached.
        _ => return Ok(()),
    };
    query.execute(conn).await?;
    Ok(())
}
