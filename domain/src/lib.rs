//! Clarity's domain: the aggregates (assessments, candidate sessions), their commands, events and
//! errors, the telemetry vocabulary the editor client speaks, and the wire envelope every event
//! travels in on Kafka.
//!
//! Nothing in this crate does I/O: command handlers are pure functions of the aggregate state and
//! the command (which carries the time it was issued at), so every rule is testable with
//! given / when / then tests and no database.

pub mod assessment;
pub mod audit;
pub mod catalogue;
pub mod integrity;
pub mod notice;
pub mod scoring;
pub mod session;
pub mod telemetry;
pub mod upcast;
pub mod whole_number;
pub mod wire;

pub use assessment::Assessment;
pub use session::CandidateSession;
