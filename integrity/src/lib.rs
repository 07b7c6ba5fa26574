//! Clarity's integrity detectors: explainable signals computed from a session's process trace.
//!
//! Every detector is a pure function of a [`SessionTrace`] (the ordered telemetry of one session,
//! what the candidate consented to, and the assessment's starter files). It answers with a
//! [`DetectorReport`]: the measurements it made and the [`Finding`]s whose rules fired, each with
//! the rule, the measured value, the threshold and the evidence (event ranges with the replay
//! position to jump to). Findings never reject anyone: [`suite::tier`] rolls them up into a
//! [`Tier`] that tells a human where to look, with the reasons.
//!
//! The payload types (findings, reports, the analysis) are the model's: they travel in the
//! `IntegrityAnalysed` event, so they live in `clarity_domain::integrity` and are re-exported
//! here. This crate holds only what computes them.
//!
//! Detectors are versioned. A detector whose logic or thresholds change gets a new version, so
//! findings recorded by different versions stay side by side and can be compared.
//!
//! Behind the cargo feature `synth` (off by default, so a production build neither compiles the
//! generator nor links `rand`): `synth` generates labelled synthetic sessions (honest work and
//! adversaries of increasing difficulty) and `eval` measures the detectors on them;
//! `clarity integrity eval` prints the table committed in `docs/integrity-eval.md`. The detectors
//! themselves are deterministic and need no randomness.

#[cfg(feature = "synth")]
pub mod corpus;
#[cfg(feature = "synth")]
pub mod eval;
pub mod face;
pub mod followup;
pub mod keystroke;
pub mod provenance;
pub mod similarity;
pub mod submission;
pub mod suite;
#[cfg(feature = "synth")]
pub mod synth;
pub mod transcription;

use chrono::{DateTime, Utc};
use clarity_domain::session::{ConsentScopes, SubmittedFile};
use clarity_domain::telemetry::TelemetryEvent;

pub use clarity_domain::integrity::{
    Comparison, DetectorReport, Evidence, Finding, FindingLevel, FollowUp, IntegrityAnalysis,
    RuleCheck, Tier,
};

/// Everything a detector may look at for one session.
#[derive(Debug, Clone, Default)]
pub struct SessionTrace {
    /// When the session started (findings report times relative to it). `None` when unknown, in
    /// which case the first event's time is used.
    pub started_at: Option<DateTime<Utc>>,
    /// The telemetry, ordered by `seq`, without duplicates.
    pub events: Vec<TelemetryEvent>,
    /// What the candidate agreed to; detectors outside the scopes do not run.
    pub consent: ConsentScopes,
    /// The assessment version's starter files: the workspace the candidate began with.
    pub starter_files: Vec<SubmittedFile>,
    /// What was submitted, for the submission-against-trace check (`None` for sessions from
    /// before the submission was reconstructed from the log).
    pub submission: Option<submission::SubmissionClaim>,
}

impl SessionTrace {
    /// The time origin for `at_ms` values.
    pub fn origin(&self) -> Option<DateTime<Utc>> {
        self.started_at
            .or_else(|| self.events.first().map(|e| e.ts))
    }

    /// Milliseconds from the origin to `ts` (0 when there is no origin).
    pub fn at_ms(&self, ts: DateTime<Utc>) -> i64 {
        self.origin().map_or(0, |o| (ts - o).num_milliseconds())
    }
}

/// A detector's `metrics` from a `json!({...})` object literal.
pub(crate) fn metrics_object(
    value: serde_json::Value,
) -> Option<serde_json::Map<String, serde_json::Value>> {
    match value {
        serde_json::Value::Object(fields) => Some(fields),
        other => unreachable!("detector metrics are JSON objects, not {other}"),
    }
}
