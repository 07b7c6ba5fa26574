//! The `CandidateSession` aggregate: one candidate taking one published assessment version.
//!
//! ```text
//! invited ──consent──▶ consented ──start──▶ in progress ──submit──▶ submitted
//!                                                 └──deadline (scheduler)──▶ expired
//! ```

mod aggregate;
mod commands;
mod events;
pub mod review;
pub mod runs;

pub use aggregate::{CandidateSession, SessionError, SessionStatus, MAX_EXTRA_MINUTES};
pub use commands::SessionCommand;
pub(crate) use events::session_started_v1_to_v2;
pub use events::{
    AssessmentRef, Candidate, ChainSeal, ConsentScopes, SessionEvent, SessionStartedV1,
};
pub use review::{DecisionOutcome, FindingResolution, ReviewError, ReviewState};
pub use runs::{RunEnding, RunResult, RunTest, MAX_RUNS_PER_SESSION};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

/// A submitted file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmittedFile {
    #[schema(
        pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$"
    )]
    pub path: String,
    pub content: String,
}

/// The digest recorded for a submission: SHA-256 over the files sorted by path, each encoded as
/// `path`, a 0 byte, the content length as a big-endian u64, and the content bytes.
pub fn files_digest(files: &[SubmittedFile]) -> String {
    let mut sorted: Vec<&SubmittedFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut hasher = Sha256::new();
    for file in sorted {
        hasher.update(file.path.as_bytes());
        hasher.update([0u8]);
        hasher.update((file.content.len() as u64).to_be_bytes());
        hasher.update(file.content.as_bytes());
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod digest_tests {
    use super::*;

    #[test]
    fn the_files_digest_ignores_order_but_not_boundaries() {
        let f = |p: &str, c: &str| SubmittedFile {
            path: p.into(),
            content: c.into(),
        };
        let a = files_digest(&[f("a", "xy"), f("b", "z")]);
        assert_eq!(a, files_digest(&[f("b", "z"), f("a", "xy")]));
        assert_ne!(a, files_digest(&[f("a", "x"), f("b", "yz")]));
        assert_eq!(a.len(), 64);
    }
}
