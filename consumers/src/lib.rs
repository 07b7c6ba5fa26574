//! Clarity's background roles: topic settings, the outbox relay (event store → Kafka), the
//! projection runtime (Kafka → PostgreSQL read models) with rebuilds, the quarantine of poison
//! records, and the workers that issue commands through `clarity_app` — the deadline scheduler
//! and the integrity analysis worker.
//!
//! Delivery guarantees, in one place:
//! - the relay publishes every committed event, in commit order, and advances its checkpoint only
//!   after the broker acknowledged; a crash republishes (duplicates), never skips;
//! - a projection writes its rows and its partition offsets in one PostgreSQL transaction and
//!   resumes from the stored offsets, never from Kafka's; duplicates are dropped by
//!   (stream, sequence) inside the projection.

pub mod integrity_worker;
pub mod kafka;
pub mod metrics;
pub mod outbox_relay;
pub mod projection_runner;
pub mod quarantine;
pub mod runner_worker;
pub mod scheduler;

pub use kafka::KafkaSettings;
