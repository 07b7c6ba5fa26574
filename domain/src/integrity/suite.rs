//! The detector suite: runs every detector the assessment's policy and the candidate's consent
//! allow, rolls the findings up into a [`Tier`] with reasons, and writes the follow-up questions.
//!
//! ## Roll-up
//! - Any `major` finding → **major concerns**.
//! - `review` findings from two or more *different* detectors → **major concerns**: independent
//!   kinds of evidence pointing the same way (say, pasted code and a transcription signature).
//! - One detector's `review` findings → **review suggested**.
//! - `hint` findings (low confidence) are listed but never raise the tier on their own.
//!
//! A tier tells a human where to look first. Nothing in Clarity rejects a candidate on it.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::followup;
use super::{
    face, keystroke, provenance, similarity, transcription, DetectorReport, FindingLevel,
    IntegrityAnalysis, SessionTrace, Tier,
};
use crate::assessment::IntegrityPolicy;
use crate::session::SubmittedFile;
use crate::telemetry::TelemetryData;

/// Every detector's name and version, in the order they run. Together they are the suite version
/// recorded with each analysis.
pub fn detector_versions() -> Vec<(&'static str, &'static str)> {
    vec![
        (keystroke::DETECTOR, keystroke::VERSION),
        (provenance::DETECTOR, provenance::VERSION),
        (transcription::DETECTOR, transcription::VERSION),
        (face::DETECTOR, face::VERSION),
        (similarity::DETECTOR, similarity::VERSION),
    ]
}

/// Operator settings that change what the detectors report; part of the suite version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SuiteSettings {
    /// Similarity threshold for every task, overriding the per-task calibration.
    pub similarity_threshold: Option<f64>,
}

/// The suite version: `keystroke_timing@1+provenance@1+…`, plus the non-default settings.
pub fn suite_version(settings: &SuiteSettings) -> String {
    let mut v: Vec<String> = detector_versions()
        .into_iter()
        .map(|(d, v)| format!("{d}@{v}"))
        .collect();
    if let Some(t) = settings.similarity_threshold {
        v.push(format!("similarity_threshold={t}"));
    }
    v.join("+")
}

/// What the cross-session detectors need about the session itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Prints {
    /// The files as the candidate left them (replayed from the telemetry over the starter files).
    pub files: Vec<SubmittedFile>,
    pub code: similarity::Fingerprints,
    pub timing: Vec<u64>,
}

/// Other sessions to compare with: same organization; for code, the same assessment version.
#[derive(Debug, Clone, Default)]
pub struct Cohort {
    pub code: Vec<(String, similarity::Fingerprints)>,
    pub timing: Vec<(String, Vec<u64>)>,
}

/// Computes the session's prints.
pub fn prints(trace: &SessionTrace) -> Prints {
    let files = provenance::provenance(trace).files;
    let code =
        similarity::fingerprint(&files, &trace.starter_files, &similarity::Params::default());
    let timing = if trace.consent.keystroke_dynamics {
        keystroke::timing_fingerprint(trace)
    } else {
        Vec::new()
    };
    Prints {
        files,
        code,
        timing,
    }
}

/// Runs the suite.
pub fn analyse(
    trace: &SessionTrace,
    policy: &IntegrityPolicy,
    settings: &SuiteSettings,
    task_threshold: f64,
    own: &Prints,
    cohort: &Cohort,
    trigger: &str,
) -> IntegrityAnalysis {
    let off = |detector: &str, version: &str| {
        DetectorReport::skipped(
            detector,
            version,
            "switched off by the assessment's integrity policy",
        )
    };
    let mut reports = Vec::new();
    if policy.keystroke_dynamics {
        let mut report = keystroke::analyse(trace);
        if report.skipped.is_none() && !own.timing.is_empty() {
            if let Some(finding) = keystroke::replay_check(&own.timing, &cohort.timing) {
                report.findings.push(finding);
            }
        }
        reports.push(report);
    } else {
        reports.push(off(keystroke::DETECTOR, keystroke::VERSION));
    }
    if policy.paste_tracking {
        reports.push(provenance::analyse(trace));
        reports.push(transcription::analyse(trace));
    } else {
        reports.push(off(provenance::DETECTOR, provenance::VERSION));
        reports.push(off(transcription::DETECTOR, transcription::VERSION));
    }
    if policy.face_continuity {
        reports.push(face::analyse(trace));
    } else {
        reports.push(off(face::DETECTOR, face::VERSION));
    }
    if policy.similarity {
        let threshold = settings.similarity_threshold.unwrap_or(task_threshold);
        reports.push(similarity::analyse(&own.code, &cohort.code, threshold));
    } else {
        reports.push(off(similarity::DETECTOR, similarity::VERSION));
    }
    let (tier, reasons) = tier(&reports);
    let followups = followup::generate(trace, &reports);
    IntegrityAnalysis {
        suite_version: suite_version(settings),
        trigger: trigger.to_string(),
        tier,
        reasons,
        reports,
        followups,
        events_analysed: trace.events.len() as u64,
        last_seq: trace.events.last().map_or(0, |e| e.seq),
    }
}

/// Rolls findings up into a tier, with one reason per finding that counted (see the module doc).
pub fn tier(reports: &[DetectorReport]) -> (Tier, Vec<String>) {
    let mut reasons = Vec::new();
    let mut review_detectors = BTreeSet::new();
    let mut major = false;
    for report in reports {
        for f in &report.findings {
            match f.level {
                FindingLevel::Major => {
                    major = true;
                    reasons.push(format!("{}: {}", f.detector, f.summary));
                }
                FindingLevel::Review => {
                    review_detectors.insert(f.detector.as_str());
                    reasons.push(format!("{}: {}", f.detector, f.summary));
                }
                FindingLevel::Hint => {}
            }
        }
    }
    let tier = if major || review_detectors.len() >= 2 {
        Tier::MajorConcerns
    } else if !review_detectors.is_empty() {
        Tier::ReviewSuggested
    } else {
        Tier::None
    };
    if tier == Tier::MajorConcerns && !major {
        reasons.push(format!(
            "independent detectors agree: {}",
            review_detectors.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    (tier, reasons)
}

/// Whether the trace has anything to analyse at all.
pub fn has_telemetry(trace: &SessionTrace) -> bool {
    trace
        .events
        .iter()
        .any(|e| !matches!(e.data, TelemetryData::Cursor { .. }))
}
