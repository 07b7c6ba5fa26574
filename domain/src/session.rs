//! The `CandidateSession` aggregate: one candidate taking one published assessment version.
//!
//! ```text
//! invited ──consent──▶ consented ──start──▶ in progress ──submit──▶ submitted
//!                                                 └──deadline (scheduler)──▶ expired
//! ```

mod aggregate;
mod commands;
mod events;

pub use aggregate::{CandidateSession, SessionError, SessionStatus};
pub use commands::SessionCommand;
pub use events::{AssessmentRef, Candidate, ConsentScopes, SessionEvent};
