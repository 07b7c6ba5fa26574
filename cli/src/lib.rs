//! The `clarity` command line and the process roles it runs: `serve` (HTTP API with the deadline
//! scheduler and the integrity workers), `relay`, `consume`, `all` (every role in one process),
//! `migrate`, organization bootstrap, catalogue seeding, the telemetry simulator and the
//! benchmarks.
//!
//! Everything here wires the other crates together; none of it is reachable over HTTP, so
//! the HTTP library (`clarity-api`) carries neither the command line nor the benchmark clients.

pub mod bench;
pub mod commands;
pub mod roles;
pub mod seed;
pub mod simulate;

pub use clarity_app::members::{create_organization, NewOrganization};
pub use commands::run;
pub use roles::{
    connect, consume, migrate, relay, run_all, serve, serve_on, shutdown_signal, MIGRATOR,
};
