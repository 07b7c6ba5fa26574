//! Integrity findings as the model records them: what the `IntegrityAnalysed` event carries.
//!
//! The detectors that compute these (and the synthetic sessions that measure them) live in the
//! `clarity-integrity` crate; only the payload types stay here, because events are the model and
//! an event's shape must not depend on which detectors happen to be compiled in. Each detector's
//! report lists the measurements it made and the [`Finding`]s whose rules fired, each with the
//! rule, the measured value, the threshold and the evidence (event ranges with the replay
//! position to jump to). Findings never reject anyone: they roll up into a [`Tier`] that tells a
//! human where to look, with the reasons.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How much a finding counts toward the session tier.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FindingLevel {
    /// Low-confidence hint (e.g. text-only signals). Shown, never raises the tier on its own.
    Hint,
    /// Worth a reviewer's look: raises the tier to "review suggested".
    Review,
    /// Strong process evidence: raises the tier to "major concerns".
    Major,
}

/// Which side of the threshold fires the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    /// Fires when `measured < threshold`.
    Below,
    /// Fires when `measured > threshold`.
    Above,
    /// Fires when `measured >= threshold`.
    AtLeast,
    /// Fires when `measured <= threshold`.
    AtMost,
}

impl Comparison {
    /// Whether `measured` is on the firing side of `threshold`.
    pub fn fires(self, measured: f64, threshold: f64) -> bool {
        match self {
            Self::Below => measured < threshold,
            Self::Above => measured > threshold,
            Self::AtLeast => measured >= threshold,
            Self::AtMost => measured <= threshold,
        }
    }
}

/// One rule's measurement, whether or not it fired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RuleCheck {
    /// Stable rule name, e.g. `log_iki_spread_low`.
    pub rule: String,
    /// `null` when the value could not be measured (too little data).
    #[serde(with = "nan_as_null")]
    #[schema(value_type = Option<f64>)]
    pub measured: f64,
    pub threshold: f64,
    pub comparison: Comparison,
    pub fired: bool,
}

impl RuleCheck {
    /// Measures a rule: `fired` is computed from the comparison. A NaN measurement never fires.
    pub fn new(rule: &str, measured: f64, comparison: Comparison, threshold: f64) -> Self {
        Self {
            rule: rule.to_string(),
            measured,
            threshold,
            comparison,
            fired: !measured.is_nan() && comparison.fires(measured, threshold),
        }
    }
}

/// A span of the session a human can check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Evidence {
    /// First and last telemetry `seq` of the span (inclusive).
    pub from_seq: u64,
    pub to_seq: u64,
    /// The replay position to jump to (a telemetry `seq`).
    pub replay_seq: u64,
    /// Milliseconds from the session start to the start of the span.
    pub at_ms: i64,
    /// The file concerned, if any.
    #[serde(default)]
    pub file: Option<String>,
    /// What to look at, in words.
    pub note: String,
}

/// A rule (or an agreement of rules) that fired, with everything needed to check it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Finding {
    /// Detector name, e.g. `keystroke_timing`.
    pub detector: String,
    /// Detector version, e.g. `1`.
    pub detector_version: String,
    /// The rule that fired (for an agreement of rules, the composite rule's name).
    pub rule: String,
    pub level: FindingLevel,
    /// The measured value and the threshold it crossed.
    #[serde(with = "nan_as_null")]
    #[schema(value_type = Option<f64>)]
    pub measured: f64,
    pub threshold: f64,
    pub comparison: Comparison,
    /// One sentence a reviewer can read.
    pub summary: String,
    /// The other session this finding is about (copied code, replayed timing), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related_session: Option<String>,
    /// The individual rule measurements behind a composite finding (empty for a single rule).
    #[serde(default)]
    pub supporting: Vec<RuleCheck>,
    /// Where to look.
    #[serde(default)]
    pub evidence: Vec<Evidence>,
}

/// What one detector measured on one session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DetectorReport {
    pub detector: String,
    pub detector_version: String,
    /// Why the detector did not run (no consent, too little data, mixed face models, ...).
    #[serde(default)]
    pub skipped: Option<String>,
    /// Every rule measured, fired or not, so a reviewer sees how close each came.
    #[serde(default)]
    pub checks: Vec<RuleCheck>,
    /// The rules that fired.
    #[serde(default)]
    pub findings: Vec<Finding>,
    /// Detector-specific summary numbers (shares, counts) for display; `null` when the detector
    /// was skipped.
    // An object or nothing, by type: the published schema is generated from this field, and a
    // hand-written `value_type = Object` once promised an object where skipped reports carried
    // `null` (docs/decisions/0015-event-schema-evolution.md).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metrics: Option<serde_json::Map<String, serde_json::Value>>,
}

impl DetectorReport {
    /// A report for a detector that did not run, with the reason.
    pub fn skipped(detector: &str, version: &str, reason: impl Into<String>) -> Self {
        Self {
            detector: detector.to_string(),
            detector_version: version.to_string(),
            skipped: Some(reason.into()),
            checks: Vec::new(),
            findings: Vec::new(),
            metrics: None,
        }
    }
}

/// One question, anchored to the moment it is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FollowUp {
    /// Milliseconds from the session start.
    pub at_ms: i64,
    /// The replay position to open while asking.
    pub replay_seq: u64,
    /// The question, ready to read out.
    pub question: String,
    /// What prompted it: `paste`, `away`, `tests_turned_green`, or a finding's `detector/rule`.
    pub basis: String,
}

/// The session's roll-up: where a human should look first. Never a verdict.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    None,
    ReviewSuggested,
    MajorConcerns,
}

impl Tier {
    /// The name used in the API and the read models.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ReviewSuggested => "review_suggested",
            Self::MajorConcerns => "major_concerns",
        }
    }
}

/// One run of the detector suite over a finished session: what the `IntegrityAnalysed` event
/// carries. Self-contained, so that what a reviewer was shown can be reconstructed from the event
/// alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IntegrityAnalysis {
    /// The suite's version: every detector's name and version (see `suite::SUITE_VERSION`). One
    /// session is analysed at most once per suite version; a new version is stored beside the old.
    pub suite_version: String,
    /// What asked for the analysis: `submitted`, `expired` or `rerun`.
    pub trigger: String,
    pub tier: Tier,
    /// Why the tier is what it is, one sentence per finding that counted.
    pub reasons: Vec<String>,
    /// Every detector's report, including the ones that were skipped and why.
    pub reports: Vec<DetectorReport>,
    /// Questions for the walk-through interview.
    pub followups: Vec<FollowUp>,
    /// How many telemetry events the analysis read, and the last `seq` among them.
    pub events_analysed: u64,
    pub last_seq: u64,
}

impl IntegrityAnalysis {
    /// Every finding of every detector.
    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.reports.iter().flat_map(|r| r.findings.iter())
    }
}

/// JSON has no NaN: an unmeasurable value travels as `null` and comes back as NaN.
mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        if x.is_finite() {
            s.serialize_f64(*x)
        } else {
            s.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}
