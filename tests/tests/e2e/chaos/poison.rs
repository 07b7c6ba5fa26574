//! Records produced straight to the sessions topic, past the API, and where the projections
//! stand on the topic.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use clarity_domain::telemetry::{EditOrigin, TelemetryData, TelemetryEvent};
use clarity_domain::wire::WireEvent;
use clarity_tests::TestEnv;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rdkafka::consumer::Consumer;
use rdkafka::producer::FutureRecord;
use serde_json::json;
use uuid::Uuid;

use super::{Candidate, INJECTED, INJECTED_SEQ};

/// A record produced straight to the sessions topic, and where it landed.
#[derive(Debug)]
pub struct Injected {
    pub kind: &'static str,
    pub partition: i32,
    pub offset: i64,
    /// Every projection of the topic sets it aside (not a session's record, or a seq no table
    /// can hold); otherwise a telemetry record far ahead of the session, which the replay never
    /// reaches and the `sessions` projection must quarantine.
    pub envelope: bool,
}

/// What [`inject`] produces, in turn.
pub const INJECTED_KINDS: [&str; 9] = [
    "telemetry dated in the year -5000",
    "telemetry with a NUL in edited text",
    "telemetry with seq 2^63",
    "binary garbage",
    "JSON that is not a CloudEvent",
    "a subject that is not a session id",
    "no organization",
    "a lifecycle event that does not decode",
    "no payload at all",
];

/// Produces `INJECTED` hostile records, keyed by sessions of both organizations (so each lands
/// in the partition of a session that is typing), at seeded moments.
pub async fn inject(
    env: &TestEnv,
    targets: Vec<Candidate>,
    seed: u64,
) -> anyhow::Result<Vec<Injected>> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x1badb002);
    let producer = env.config.kafka().producer(0)?;
    let topic = env.config.topic_sessions.clone();
    let ancient = NaiveDate::from_ymd_opt(-5000, 1, 1)
        .expect("a valid proleptic date")
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc();
    let mut out = Vec::new();
    for i in 0..INJECTED {
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..120))).await;
        let target = targets.choose(&mut rng).expect("sessions").clone();
        let session: Uuid = target.session.parse()?;
        let seq = INJECTED_SEQ + i as u64;
        let telemetry = |ts: DateTime<Utc>, data: TelemetryData| {
            WireEvent::telemetry(session, target.org, &TelemetryEvent { seq, ts, data })
        };
        let kind = INJECTED_KINDS[i % INJECTED_KINDS.len()];
        let (payload, envelope): (Option<Vec<u8>>, bool) = match i % INJECTED_KINDS.len() {
            0 => (
                Some(serde_json::to_vec(&telemetry(
                    ancient,
                    TelemetryData::FocusLost {},
                ))?),
                false,
            ),
            1 => (
                Some(serde_json::to_vec(&telemetry(
                    Utc::now(),
                    TelemetryData::Edit {
                        file: "main.py".into(),
                        position: 0,
                        deleted: 0,
                        inserted: "nul\u{0}byte".into(),
                        origin: EditOrigin::Typed,
                    },
                ))?),
                false,
            ),
            2 => {
                let mut wire = telemetry(Utc::now(), TelemetryData::FocusLost {});
                wire.sequence = 1 << 63;
                (Some(serde_json::to_vec(&wire)?), true)
            }
            3 => (Some(vec![0xde, 0xad, 0xbe, 0xef, 0x00, 0x7b]), true),
            4 => (Some(br#"{"hello": "world"}"#.to_vec()), true),
            5 => {
                let mut wire = telemetry(Utc::now(), TelemetryData::FocusLost {});
                wire.subject = "not-a-session".into();
                (Some(serde_json::to_vec(&wire)?), true)
            }
            6 => {
                let mut wire = telemetry(Utc::now(), TelemetryData::FocusLost {});
                wire.orgid = None;
                (Some(serde_json::to_vec(&wire)?), true)
            }
            7 => {
                let wire = WireEvent::lifecycle(
                    "CandidateSession",
                    &target.session,
                    seq,
                    "SessionSubmitted",
                    "1",
                    Some(target.org),
                    Utc::now(),
                    json!({"files_digest": 42, "time_used_seconds": "soon"}),
                );
                (Some(serde_json::to_vec(&wire)?), true)
            }
            _ => (None, true),
        };
        let mut record = FutureRecord::<String, Vec<u8>>::to(&topic).key(&target.session);
        if let Some(p) = &payload {
            record = record.payload(p);
        }
        let delivery = producer
            .send(record, Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)?;
        out.push(Injected {
            kind,
            partition: delivery.partition,
            offset: delivery.offset,
            envelope,
        });
    }
    Ok(out)
}

/// The last offset + 1 of every partition of the sessions topic.
pub async fn high_watermarks(env: &TestEnv) -> anyhow::Result<BTreeMap<i32, i64>> {
    let reader = env.config.kafka().reader("chaos-watermarks")?;
    let (topic, partitions) = (
        env.config.topic_sessions.clone(),
        env.config.topic_partitions,
    );
    tokio::task::spawn_blocking(move || {
        (0..partitions)
            .map(|p| {
                let (_, high) = reader.fetch_watermarks(&topic, p, Duration::from_secs(10))?;
                Ok((p, high))
            })
            .collect()
    })
    .await?
}

/// Where a projection's offsets stand on the sessions topic.
pub async fn offsets(env: &TestEnv, projection: &str) -> anyhow::Result<BTreeMap<i32, i64>> {
    let rows: Vec<(i32, i64)> = sqlx::query_as(
        "SELECT partition, next_offset FROM projection_offsets WHERE projection = $1 AND topic = $2",
    )
    .bind(projection)
    .bind(&env.config.topic_sessions)
    .fetch_all(&env.pool)
    .await?;
    Ok(rows.into_iter().collect())
}
