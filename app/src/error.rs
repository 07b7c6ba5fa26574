//! Every way a command can fail, as one type: the HTTP layer maps it to a status and a stable
//! code in one place (`clarity_api::error`), and the background roles match on it.

use clarity_domain::assessment::AssessmentError;
use clarity_domain::session::SessionError;
use cqrs_es::AggregateError;

/// Why a command stored nothing.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The session refused the command (a domain rule).
    #[error(transparent)]
    Session(SessionError),
    /// The assessment refused the command (a domain rule).
    #[error(transparent)]
    Assessment(AssessmentError),
    /// Another command changed the aggregate between this one's load and store (optimistic
    /// concurrency); retrying decides again on the new state.
    #[error("the resource changed concurrently; retry")]
    Conflict,
    /// What the command is about does not exist (or is not the caller's to see).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The event store could not be reached.
    #[error("the event store is unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The event store failed otherwise (an event that does not read back, a query error).
    #[error("the event store failed: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl CommandError {
    /// A failure of the store (anything but the aggregate's own refusal, which
    /// `App::execute` maps by aggregate).
    pub(crate) fn from_store<T: std::error::Error>(error: AggregateError<T>) -> Self {
        match error {
            AggregateError::AggregateConflict => Self::Conflict,
            AggregateError::DatabaseConnectionError(e) => Self::Unavailable(e),
            AggregateError::DeserializationError(e) | AggregateError::UnexpectedError(e) => {
                Self::Store(e)
            }
            // Loading never refuses; `App::execute` maps refusals by aggregate before this.
            AggregateError::UserError(e) => Self::Store(e.to_string().into()),
        }
    }
}

impl From<sqlx::Error> for CommandError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(Box::new(error))
    }
}
