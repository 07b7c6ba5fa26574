//! Shared state of the HTTP layer: the pool, the command side (`clarity_app::App`), the
//! telemetry producer and limits.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use clarity_app::{Actor, App, Command, Origin};
use clarity_domain::{Assessment, CandidateSession};
use rdkafka::producer::FutureProducer;
use sqlx::PgPool;
use uuid::Uuid;

use crate::config::Config;
use crate::error::ApiError;

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub config: Arc<Config>,
    /// The command side: every command a handler issues goes through [`AppState::execute`].
    pub app: App,
    pub producer: FutureProducer,
    /// The last readiness probe (when, and the error code and message if it failed): `/readyz`
    /// answers from it for a moment instead of querying the database and the broker per call.
    pub readiness:
        Arc<std::sync::Mutex<Option<(std::time::Instant, Result<(), (&'static str, String)>)>>>,
    /// Rate-limit buckets of this process (`crate::limits`).
    pub limiter: Arc<crate::limits::Limiter>,
    /// Open replay streams per member.
    pub streams: Arc<crate::limits::Streams>,
}

/// 403 `complete_your_review_first`: what was asked for would show a pending reviewer the scores
/// they must not see yet (blind review).
pub fn complete_your_review_first(message: String) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::FORBIDDEN,
        "complete_your_review_first",
        message,
    )
}

impl AppState {
    /// Builds the state; the producer is idempotent with `acks=all`.
    pub fn new(pool: PgPool, config: Config) -> anyhow::Result<Self> {
        let producer = config.kafka().producer(config.producer_linger_ms)?;
        Ok(Self {
            app: App::new(
                pool.clone(),
                chrono::Duration::seconds(config.clock_offset_seconds),
            ),
            pool,
            limiter: Arc::new(crate::limits::Limiter::new(&config)),
            streams: Arc::default(),
            config: Arc::new(config),
            producer,
            readiness: Arc::new(std::sync::Mutex::new(None)),
        })
    }

    /// The application clock (wall clock plus the configured offset).
    pub fn now(&self) -> DateTime<Utc> {
        self.app.now()
    }

    /// Executes `command` on aggregate `id` as `actor` of organization `org_id`, at `at` (the
    /// time the command carries): the one path of every command the API issues.
    pub async fn execute<C: Command>(
        &self,
        actor: Actor,
        org_id: Uuid,
        id: Uuid,
        command: C,
        at: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        let origin = Origin::new(actor, Some(org_id), at);
        Ok(self.app.execute(&origin, id, command).await?)
    }

    /// Current state of an assessment (default state if it does not exist).
    pub async fn load_assessment(&self, id: Uuid) -> Result<Assessment, ApiError> {
        Ok(self.app.load_assessment(id).await?)
    }

    /// 404 `not_found` unless the session is in the read model and belongs to `org_id`
    /// (another organization's session is indistinguishable from a missing one).
    pub async fn require_session_in_org(&self, id: Uuid, org_id: Uuid) -> Result<(), ApiError> {
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM sessions WHERE session_id = $1 AND org_id = $2)",
        )
        .bind(id)
        .bind(org_id)
        .fetch_one(&self.pool)
        .await?;
        if exists {
            Ok(())
        } else {
            Err(ApiError::not_found("session"))
        }
    }

    /// Whether `member` reviews session `id` and has not completed their review: blind review
    /// hides the other reviewers' scores from them wherever scores appear (`/review`, `/events`,
    /// the report, the audit bundle), whatever their role.
    pub async fn is_pending_reviewer(&self, id: Uuid, member: Uuid) -> Result<bool, ApiError> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM review_reviewers WHERE session_id = $1 AND reviewer = $2 AND completed_at IS NULL)",
        )
        .bind(id)
        .bind(member)
        .fetch_one(&self.pool)
        .await?)
    }

    /// 403 `complete_your_review_first` for a pending reviewer of the session (see
    /// [`AppState::is_pending_reviewer`]): for reads that cannot leave the scores out.
    pub async fn require_not_pending_reviewer(
        &self,
        id: Uuid,
        member: Uuid,
        what: &str,
    ) -> Result<(), ApiError> {
        if self.is_pending_reviewer(id, member).await? {
            return Err(complete_your_review_first(format!("you review this session: {what} (with the other reviewers' scores) opens once your review is completed")));
        }
        Ok(())
    }

    /// Current state of a session (default state if it does not exist).
    pub async fn load_session(&self, id: Uuid) -> Result<CandidateSession, ApiError> {
        Ok(self.app.load_session(id).await?)
    }

    /// Read-your-writes for a client that reads from a projection what it just changed: waits
    /// until `done` (one boolean query, bound to `id`) is true, at most
    /// [`PROJECTION_WAIT`]. When time runs out the command is answered anyway: it is stored,
    /// and a lagging projection must not fail it.
    pub async fn wait_until_projected(&self, done: &str, id: Uuid) -> Result<(), ApiError> {
        let deadline = tokio::time::Instant::now() + PROJECTION_WAIT;
        loop {
            let projected: bool = sqlx::query_scalar(done)
                .bind(id)
                .fetch_one(&self.pool)
                .await?;
            if projected || tokio::time::Instant::now() >= deadline {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

/// The longest a command waits for the projection its client reads next (relay + consumer lag;
/// tens of milliseconds when healthy).
pub const PROJECTION_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
