//! `App::execute` against a real PostgreSQL event store (a fresh database per test, dropped at
//! the end): what a command stores, with which actor, and how a refusal comes back.

use std::collections::HashMap;

use clarity_app::{Actor, App, CommandError, Origin, SystemRole};
use clarity_domain::assessment::{AssessmentCommand, AssessmentError};
use clarity_domain::catalogue::builtin;
use sqlx::migrate::MigrateDatabase;
use sqlx::{PgPool, Postgres};
use uuid::Uuid;

/// A fresh, migrated database; named like the end-to-end tests' so the same clean-up finds it.
struct Database {
    url: String,
    pool: PgPool,
}

impl Database {
    async fn new() -> anyhow::Result<Self> {
        let server = std::env::var("TEST_DATABASE_SERVER")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
        let url = format!(
            "{server}/clarity_test_{}",
            &Uuid::new_v4().simple().to_string()[..12]
        );
        Postgres::create_database(&url).await?;
        let pool = PgPool::connect(&url).await?;
        sqlx::migrate!("../migrations").run(&pool).await?;
        Ok(Self { url, pool })
    }

    async fn drop(self) -> anyhow::Result<()> {
        self.pool.close().await;
        // Forced: a connection the closed pool has not finished ending would otherwise make the
        // drop fail ("being accessed by other users"), as it did once in CI.
        Postgres::force_drop_database(&self.url).await?;
        Ok(())
    }
}

/// The metadata of every stored event of `aggregate_id`, in sequence order.
async fn stored_metadata(
    pool: &PgPool,
    aggregate_id: Uuid,
) -> anyhow::Result<Vec<HashMap<String, String>>> {
    let rows: Vec<sqlx::types::Json<HashMap<String, String>>> =
        sqlx::query_scalar("SELECT metadata FROM events WHERE aggregate_id = $1 ORDER BY sequence")
            .bind(aggregate_id.to_string())
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().map(|j| j.0).collect())
}

#[tokio::test]
async fn new_events_carry_the_actor_in_the_one_format_with_org_and_time() -> anyhow::Result<()> {
    // Arrange
    let db = Database::new().await?;
    let app = App::new(db.pool.clone(), chrono::Duration::zero());
    let (member, org, id) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let at = app.now();
    let by_member = Origin::new(Actor::Member(member), Some(org), at);
    let by_seed = Origin::new(Actor::System(SystemRole::Seed), Some(org), at);
    let spec = builtin().remove(0).spec;

    // Act
    let create = AssessmentCommand::CreateDraft {
        assessment_id: id,
        org_id: Some(org),
        spec,
        at,
    };
    app.execute(&by_member, id, create).await?;
    app.execute(&by_seed, id, AssessmentCommand::Publish { at })
        .await?;

    // Assert
    let metadata = stored_metadata(&db.pool, id).await?;
    let actors: Vec<&str> = metadata.iter().map(|m| m["actor"].as_str()).collect();
    assert_eq!(actors, [format!("member:{member}").as_str(), "system:seed"]);
    for m in &metadata {
        assert_eq!(m["org_id"], org.to_string());
        assert_eq!(
            m["time"],
            at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        );
    }
    let read: Vec<Option<Actor>> = metadata.iter().map(Actor::from_metadata).collect();
    assert_eq!(
        read,
        [
            Some(Actor::Member(member)),
            Some(Actor::System(SystemRole::Seed))
        ]
    );
    assert!(app.load_assessment(id).await?.latest_version().is_some());
    db.drop().await
}

#[tokio::test]
async fn a_refused_command_stores_nothing_and_says_why() -> anyhow::Result<()> {
    // Arrange: an assessment that exists.
    let db = Database::new().await?;
    let app = App::new(db.pool.clone(), chrono::Duration::zero());
    let (org, id) = (Uuid::now_v7(), Uuid::now_v7());
    let origin = Origin::new(Actor::Member(Uuid::now_v7()), Some(org), app.now());
    let create = || AssessmentCommand::CreateDraft {
        assessment_id: id,
        org_id: Some(org),
        spec: builtin().remove(0).spec,
        at: origin.at,
    };
    app.execute(&origin, id, create()).await?;

    // Act
    let again = app.execute(&origin, id, create()).await;

    // Assert
    assert!(
        matches!(
            again,
            Err(CommandError::Assessment(AssessmentError::AlreadyExists))
        ),
        "{again:?}"
    );
    assert_eq!(stored_metadata(&db.pool, id).await?.len(), 1);
    db.drop().await
}

#[tokio::test]
async fn events_stored_with_the_older_actor_spellings_still_read() -> anyhow::Result<()> {
    // Arrange: rows as earlier releases wrote them (a bare member id for staff, the roles'
    // bare names for the scheduler, the integrity worker and seeding).
    let db = Database::new().await?;
    let member = Uuid::now_v7();
    let id = Uuid::now_v7();
    let older = [
        member.to_string(),
        format!("member:{member}"),
        "candidate".to_string(),
        "scheduler".to_string(),
        "integrity-worker".to_string(),
        "seed".to_string(),
    ];
    for (sequence, actor) in older.iter().enumerate() {
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
             VALUES ('Assessment', $1, $2, 'AssessmentRetired', '1', '{\"AssessmentRetired\": {}}', $3)",
        )
        .bind(id.to_string())
        .bind(sequence as i64 + 1)
        .bind(serde_json::json!({ "actor": actor, "time": "2026-01-01T00:00:00.000000Z" }))
        .execute(&db.pool)
        .await?;
    }

    // Act
    let read: Vec<Option<Actor>> = stored_metadata(&db.pool, id)
        .await?
        .iter()
        .map(Actor::from_metadata)
        .collect();

    // Assert
    assert_eq!(
        read,
        [
            Some(Actor::Member(member)),
            Some(Actor::Member(member)),
            Some(Actor::Candidate),
            Some(Actor::System(SystemRole::Scheduler)),
            Some(Actor::System(SystemRole::IntegrityWorker)),
            Some(Actor::System(SystemRole::Seed)),
        ]
    );
    db.drop().await
}

#[tokio::test]
async fn commands_racing_on_one_aggregate_are_decided_again_instead_of_failing(
) -> anyhow::Result<()> {
    // Arrange: a draft, and eight revisions of it sent at the same moment (each is valid
    // whatever the order, as a reviewer's command is whatever the integrity worker appends).
    let db = Database::new().await?;
    let app = App::new(db.pool.clone(), chrono::Duration::zero());
    let (member, org, id) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let origin = Origin::new(Actor::Member(member), Some(org), app.now());
    let spec = builtin().remove(0).spec;
    let create = AssessmentCommand::CreateDraft {
        assessment_id: id,
        org_id: Some(org),
        spec: spec.clone(),
        at: app.now(),
    };
    app.execute(&origin, id, create).await?;

    // Act
    let mut racing = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (app, origin, spec) = (app.clone(), origin.clone(), spec.clone());
        racing.spawn(async move {
            let at = app.now();
            app.execute(&origin, id, AssessmentCommand::ReviseDraft { spec, at })
                .await
        });
    }
    let results: Vec<Result<(), CommandError>> = racing.join_all().await;

    // Assert: every one stored, once, in one contiguous stream.
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let sequences: Vec<i64> =
        sqlx::query_scalar("SELECT sequence FROM events WHERE aggregate_id = $1 ORDER BY sequence")
            .bind(id.to_string())
            .fetch_all(&db.pool)
            .await?;
    assert_eq!(sequences, (1..=9).collect::<Vec<i64>>());
    db.drop().await
}
