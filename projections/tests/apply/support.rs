//! A fresh, migrated PostgreSQL database per test, and records built the way the relay and the
//! API put them on the topics, so that a projection can be fed directly (no Kafka).

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use clarity_domain::telemetry::{TelemetryData, TelemetryEvent};
use clarity_domain::wire::WireEvent;
use clarity_projections::{Projection, ProjectionConfig, Record};
use serde::Serialize;
use sqlx::migrate::MigrateDatabase;
use sqlx::{PgPool, Postgres};
use uuid::Uuid;

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// An isolated database (`clarity_test_projections_<id>`, dropped by [`Db::drop`]; the test
/// scripts drop any left behind by a failed test).
pub struct Db {
    pub pool: PgPool,
    url: String,
}

fn server_url() -> String {
    std::env::var("TEST_DATABASE_SERVER")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

impl Db {
    /// Creates the database and applies every migration.
    pub async fn fresh() -> Result<Self, Box<dyn std::error::Error>> {
        let id = Uuid::new_v4().simple().to_string()[..12].to_string();
        let url = format!("{}/clarity_test_projections_{id}", server_url());
        Postgres::create_database(&url).await?;
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect(&url)
            .await?;
        sqlx::migrate!("../migrations").run(&pool).await?;
        Ok(Self { pool, url })
    }

    /// Applies `records` to `projection` in one transaction, as the consumer runtime does.
    pub async fn apply(
        &self,
        projection: Projection,
        config: &ProjectionConfig,
        records: &[Record],
    ) -> TestResult {
        let mut tx = self.pool.begin().await?;
        projection.apply(config, &mut tx, records).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every row of `table` as JSON text, in a stable order: what "unchanged" is compared by.
    pub async fn rows(&self, table: &str) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar(&format!(
            "SELECT to_jsonb(t)::text FROM {table} t ORDER BY 1"
        ))
        .fetch_all(&self.pool)
        .await
    }

    /// Drops the database.
    pub async fn drop(self) -> TestResult {
        self.pool.close().await;
        Postgres::force_drop_database(&self.url).await?;
        Ok(())
    }
}

/// A fixed instant plus `seconds`, at PostgreSQL's precision.
pub fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000, 0).unwrap() + Duration::seconds(seconds)
}

/// The name and data of an event in cqrs-es's externally tagged encoding (`{"Name": data}`).
fn tagged<E: Serialize>(event: &E) -> (String, serde_json::Value) {
    match serde_json::to_value(event).expect("events serialize") {
        serde_json::Value::Object(map) if map.len() == 1 => {
            map.into_iter().next().expect("one entry")
        }
        other => panic!("not an externally tagged event: {other}"),
    }
}

/// A lifecycle record as the relay publishes it.
fn lifecycle<E: Serialize>(
    aggregate_type: &str,
    aggregate_id: Uuid,
    org: Option<Uuid>,
    sequence: u64,
    event: &E,
    time: DateTime<Utc>,
) -> WireEvent {
    let (name, data) = tagged(event);
    let version = clarity_domain::upcast::current_version(aggregate_type, &name);
    WireEvent::lifecycle(
        aggregate_type,
        &aggregate_id.to_string(),
        sequence,
        &name,
        &version.to_string(),
        org,
        time,
        data,
    )
}

fn record(topic: &str, offset: i64, wire: WireEvent) -> Record {
    Record {
        topic: topic.into(),
        partition: 0,
        offset,
        event: Arc::new(wire),
    }
}

/// One session's stream on one partition: numbers its lifecycle events and its telemetry as the
/// event store and the client do, and gives each record the next offset.
pub struct SessionStream {
    pub session: Uuid,
    pub org: Uuid,
    lifecycle: u64,
    telemetry: u64,
    offset: i64,
}

impl SessionStream {
    pub fn new(org: Uuid) -> Self {
        Self {
            session: Uuid::new_v4(),
            org,
            lifecycle: 0,
            telemetry: 0,
            offset: 0,
        }
    }

    fn next_offset(&mut self) -> i64 {
        self.offset += 1;
        self.offset
    }

    /// The next lifecycle record.
    pub fn event(
        &mut self,
        event: clarity_domain::session::SessionEvent,
        time: DateTime<Utc>,
    ) -> Record {
        self.lifecycle += 1;
        let wire = lifecycle(
            "CandidateSession",
            self.session,
            Some(self.org),
            self.lifecycle,
            &event,
            time,
        );
        record("sessions", self.next_offset(), wire)
    }

    /// The next telemetry record.
    pub fn telemetry(&mut self, data: TelemetryData, time: DateTime<Utc>) -> Record {
        self.telemetry += 1;
        let event = TelemetryEvent {
            seq: self.telemetry,
            ts: time,
            data,
        };
        let wire = WireEvent::telemetry(self.session, self.org, &event);
        record("sessions", self.next_offset(), wire)
    }
}

/// An assessment's records on the assessments topic.
pub fn assessment_records(
    assessment: Uuid,
    events: &[(clarity_domain::assessment::AssessmentEvent, DateTime<Utc>)],
) -> Vec<Record> {
    events
        .iter()
        .zip(1..)
        .map(|((event, time), sequence)| {
            let wire = lifecycle("Assessment", assessment, None, sequence, event, *time);
            record("assessments", sequence as i64, wire)
        })
        .collect()
}
