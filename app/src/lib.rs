//! Clarity's application layer for commands: the one path every command takes, whoever sends
//! it (an HTTP handler, the deadline scheduler, the integrity worker, catalogue seeding).
//!
//! ```text
//! caller ──Origin { actor, org, time } + command──▶ App::execute ──▶ cqrs-es ──▶ events table
//! ```
//!
//! * [`App`] holds the cqrs-es frameworks over the PostgreSQL event store (with the upcasters
//!   that read events stored in older versions) and the application clock.
//! * [`Actor`] is who acts; it is stored with every event in one format ([`actor`]).
//! * [`CommandError`] is every way a command can fail; the HTTP layer maps it to a status and a
//!   code in one place.
//!
//! The aggregates' `handle` stays pure (time is carried in the commands): this crate adds only
//! the I/O around it — loading, storing, metadata — so it is the same for every caller.

pub mod actor;
pub mod credentials;
pub mod error;
pub mod members;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use clarity_domain::assessment::AssessmentCommand;
use clarity_domain::session::SessionCommand;
use clarity_domain::upcast::StoreUpcaster;
use clarity_domain::{Assessment, CandidateSession};
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateContext, AggregateError, CqrsFramework, EventStore};
use postgres_es::PostgresEventRepository;
use sqlx::PgPool;
use uuid::Uuid;

pub use actor::{Actor, SystemRole};
pub use error::CommandError;

/// The event store of one aggregate type.
type Store<A> = PersistedEventStore<PostgresEventRepository, A>;

/// The command side of Clarity: cheap to clone, shared by every caller of one process.
#[derive(Clone)]
pub struct App {
    pool: PgPool,
    clock_offset: chrono::Duration,
    assessments: Arc<CqrsFramework<Assessment, Store<Assessment>>>,
    sessions: Arc<CqrsFramework<CandidateSession, Store<CandidateSession>>>,
    assessment_store: Arc<Store<Assessment>>,
    session_store: Arc<Store<CandidateSession>>,
}

/// Who issues a command, for which organization, and when: what is stored with each event it
/// produces (the event itself says what happened).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub actor: Actor,
    /// The owning organization; `None` for the built-in assessment library.
    pub org_id: Option<Uuid>,
    /// The application time the command was issued at (the same time the command carries).
    pub at: DateTime<Utc>,
}

impl Origin {
    /// An origin for `actor` acting in `org_id` at `at`.
    pub fn new(actor: Actor, org_id: Option<Uuid>, at: DateTime<Utc>) -> Self {
        Self { actor, org_id, at }
    }

    /// The metadata stored with every event: `org_id` (when there is one), `actor` (in the one
    /// wire format, see [`actor`]) and `time` (RFC 3339, microseconds, UTC). The outbox relay
    /// reads `org_id` and `time` from it for the records' `orgid` and `time`.
    pub fn metadata(&self) -> HashMap<String, String> {
        let mut m = HashMap::new();
        if let Some(org) = self.org_id {
            m.insert("org_id".into(), org.to_string());
        }
        m.insert("actor".into(), self.actor.to_string());
        m.insert(
            "time".into(),
            self.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        );
        m
    }
}

/// A command the application executes: it names its aggregate, so that
/// [`App::execute`] is one path for every aggregate.
/// How many times [`App::execute`] decides a command when other writers keep appending to the
/// same aggregate first.
pub const CONFLICT_ATTEMPTS: u32 = 10;

pub trait Command: Clone + Send + Sync + Sized + 'static {
    /// The aggregate that decides this command.
    type Aggregate: Aggregate<Command = Self, Services = ()>;

    /// The framework that executes it.
    #[doc(hidden)]
    fn framework(app: &App) -> &CqrsFramework<Self::Aggregate, Store<Self::Aggregate>>;

    /// The aggregate's refusal as a [`CommandError`].
    #[doc(hidden)]
    fn rejected(error: <Self::Aggregate as Aggregate>::Error) -> CommandError;
}

impl Command for SessionCommand {
    type Aggregate = CandidateSession;

    fn framework(app: &App) -> &CqrsFramework<CandidateSession, Store<CandidateSession>> {
        &app.sessions
    }

    fn rejected(error: clarity_domain::session::SessionError) -> CommandError {
        CommandError::Session(error)
    }
}

impl Command for AssessmentCommand {
    type Aggregate = Assessment;

    fn framework(app: &App) -> &CqrsFramework<Assessment, Store<Assessment>> {
        &app.assessments
    }

    fn rejected(error: clarity_domain::assessment::AssessmentError) -> CommandError {
        CommandError::Assessment(error)
    }
}

/// An event store that upcasts events stored in an older version when it loads them (the same
/// steps the topics' readers use, see `clarity_domain::upcast`).
fn store<A: Aggregate>(pool: &PgPool) -> Store<A> {
    PersistedEventStore::new_event_store(PostgresEventRepository::new(pool.clone()))
        .with_upcasters(StoreUpcaster::for_aggregate::<A>())
}

impl App {
    /// The command side over `pool`; `clock_offset` shifts the application clock (tests and
    /// drills move time forward with it).
    pub fn new(pool: PgPool, clock_offset: chrono::Duration) -> Self {
        Self {
            assessments: Arc::new(CqrsFramework::new(store(&pool), vec![], ())),
            sessions: Arc::new(CqrsFramework::new(store(&pool), vec![], ())),
            assessment_store: Arc::new(store(&pool)),
            session_store: Arc::new(store(&pool)),
            pool,
            clock_offset,
        }
    }

    /// The connection pool of the event store.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The application clock (wall clock plus the configured offset).
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.clock_offset
    }

    /// Executes `command` on the aggregate `id` as `origin` says: loads the aggregate, lets it
    /// decide, and stores the events it produced with `origin`'s metadata — or stores nothing
    /// and says why.
    ///
    /// When another writer appended to the same aggregate between the load and the store (the
    /// integrity worker recording an analysis while a reviewer completes a review), the command
    /// is decided again on the new state (after a few jittered milliseconds), up to
    /// [`CONFLICT_ATTEMPTS`] times: the clash is one of
    /// storage, not of business rules, and `decide` is pure, so deciding again is safe. Only a
    /// clash that persists answers [`CommandError::Conflict`].
    pub async fn execute<C: Command>(
        &self,
        origin: &Origin,
        id: Uuid,
        command: C,
    ) -> Result<(), CommandError> {
        let mut attempt = 1;
        loop {
            let result = C::framework(self)
                .execute_with_metadata(&id.to_string(), command.clone(), origin.metadata())
                .await;
            match result {
                Ok(()) => return Ok(()),
                Err(AggregateError::AggregateConflict) if attempt < CONFLICT_ATTEMPTS => {
                    // A few jittered milliseconds, so that racers do not meet again in lockstep.
                    let jitter = u64::from(Uuid::new_v4().as_bytes()[0] % 8);
                    tokio::time::sleep(std::time::Duration::from_millis(
                        u64::from(attempt) + jitter,
                    ))
                    .await;
                    attempt += 1;
                }
                Err(AggregateError::UserError(e)) => return Err(C::rejected(e)),
                Err(other) => return Err(CommandError::from_store(other)),
            }
        }
    }

    /// Current state of an assessment (the default state if it does not exist).
    pub async fn load_assessment(&self, id: Uuid) -> Result<Assessment, CommandError> {
        let mut ctx = self
            .assessment_store
            .load_aggregate(&id.to_string())
            .await
            .map_err(CommandError::from_store)?;
        Ok(std::mem::take(ctx.aggregate()))
    }

    /// Current state of a session (the default state if it does not exist).
    pub async fn load_session(&self, id: Uuid) -> Result<CandidateSession, CommandError> {
        let mut ctx = self
            .session_store
            .load_aggregate(&id.to_string())
            .await
            .map_err(CommandError::from_store)?;
        Ok(std::mem::take(ctx.aggregate()))
    }
}
