//! Runs of the candidate's code, as the runner reports them (docs/runner.md): the visible tests a
//! candidate runs from the workspace (`RunRequested` → `RunCompleted`) and the hidden checks that
//! grade a finished session (`SubmissionGraded`). The server ran these; a client's own
//! `code_run` telemetry stays what it is, the client's word.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How a run ended, as the sandbox saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum RunEnding {
    /// The command exited by itself with this status.
    Exited { code: i32 },
    /// The command died of a signal (a crash, the CPU limit, the memory limit's OOM killer).
    Signalled { signal: i32 },
    /// It ran past its wall-clock limit and was killed.
    TimedOut,
    /// It printed more than the output limit and was killed.
    OutputLimit,
    /// The sandbox could not run it (the message says why; not the candidate's doing).
    SandboxError { message: String },
}

/// One test (visible run) or check (grading), as the suite reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunTest {
    /// A check's stable key (grading); tests may have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// What was checked, for a reviewer or the candidate.
    pub name: String,
    pub passed: bool,
    /// A check's weight (grading).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
    /// On failure, what happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunResult {
    pub ending: RunEnding,
    /// The tests or checks the run reported (empty when `results_error` says why there are none).
    pub tests: Vec<RunTest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results_error: Option<String>,
    pub duration_ms: u64,
    /// CPU time of all the run's processes, when the runner could account it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ms: Option<u64>,
    /// Peak memory of the run, when the runner could account it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_memory_bytes: Option<u64>,
    #[serde(default)]
    pub memory_limit_hit: bool,
    /// The first 64 KiB of stdout and stderr (lossy UTF-8).
    pub output: String,
    /// All output, in bytes, and its SHA-256 (lowercase hex).
    pub output_bytes: u64,
    pub output_sha256: String,
    pub output_truncated: bool,
    /// The versions the run was made with: the suite (`grader`), the sandbox, the languages.
    pub toolchains: BTreeMap<String, String>,
    /// Which runner made it (its id).
    pub runner: String,
}

impl RunResult {
    /// Tests passed and in all.
    pub fn passed(&self) -> (usize, usize) {
        (
            self.tests.iter().filter(|t| t.passed).count(),
            self.tests.len(),
        )
    }
}

/// The most runs a candidate may request in one session.
pub const MAX_RUNS_PER_SESSION: u32 = 500;
