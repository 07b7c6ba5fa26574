//! Clarity's runner: candidate code is hostile until sandboxed.
//!
//! - [`sandbox`] runs one command over a set of files in a fresh sandbox (bubblewrap namespaces,
//!   an unprivileged uid of its own, rlimits, cgroups where the machine offers them, a size-capped
//!   tmpfs, no network but its own loopback) and reports how it ended, what it printed (capped,
//!   hashed), what it used, and the results file it wrote.
//! - [`suite`] reads the grader suites in `catalogue/<slug>/grader/` (docs/runner.md) and turns a
//!   run's results into test results or a weighted grade.

pub mod sandbox;
pub mod suite;
