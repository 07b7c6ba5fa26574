//! Every end-to-end test of Clarity in one test binary, one module per concern (the former
//! `tests/tests/<name>.rs` files, names unchanged).
//!
//! One binary rather than one per file: each test binary links librdkafka and the whole product,
//! so thirty binaries meant thirty links and thirty copies on disk for every change to the
//! product. Select a module as its own binary used to be selected:
//! `cargo test -p clarity-tests --test e2e replay::` (the module path is part of every test's
//! name). The filter is a substring, so `audit::` also selects `access_audit::`; one test alone:
//! its full name after `--exact`.
//!
//! The tests share a process, so none may change process-wide state another test could see:
//! every test gets its own database, topics and consumer groups from
//! [`TestEnv`](clarity_tests::TestEnv); settings (the audit key, a keyframe interval, limits) are
//! passed in [`Config`] values, never set with `std::env::set_var`; a role that a test kills runs
//! as a `clarity` subprocess with its own environment; ports come from the operating system.
//!
//! [`Config`]: clarity_api::config::Config

mod access_audit;
mod access_control;
mod analytics;
mod audit;
mod bad_input;
mod blind_review;
mod candidate_access;
mod candidate_workspace;
mod chaos;
mod conformance;
mod cross_org;
mod delivery;
mod face_models;
mod foreign_client;
mod integrity;
mod leaderboard;
mod lifecycle;
mod limits;
mod quarantine;
mod rebuild;
mod relay;
mod replay;
mod replay_page;
mod report_page;
mod reviews;
mod runs;
mod scale_out;
mod schema_evolution;
mod take_page;
