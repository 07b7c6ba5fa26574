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
    face, keystroke, provenance, similarity, submission, transcription, DetectorReport,
    FindingLevel, IntegrityAnalysis, SessionTrace, Tier,
};
use clarity_domain::assessment::IntegrityPolicy;
use clarity_domain::session::SubmittedFile;
use clarity_domain::telemetry::TelemetryData;

/// Every detector's name and version, in the order they run. Together they are the suite version
/// recorded with each analysis.
pub fn detector_versions() -> Vec<(&'static str, &'static str)> {
    vec![
        (keystroke::DETECTOR, keystroke::VERSION),
        (provenance::DETECTOR, provenance::VERSION),
        (transcription::DETECTOR, transcription::VERSION),
        (face::DETECTOR, face::VERSION),
        (similarity::DETECTOR, similarity::VERSION),
        (submission::DETECTOR, submission::VERSION),
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
    pub timing: Vec<keystroke::TimingGram>,
}

/// Other sessions to compare with: same organization; for code, the same assessment version.
#[derive(Debug, Clone, Default)]
pub struct Cohort {
    pub code: Vec<(String, similarity::Fingerprints)>,
    pub timing: Vec<(String, Vec<keystroke::TimingGram>)>,
}

/// What an evaluation or an operator tunes: the keystroke thresholds and the registered face
/// model calibrations (the built-in ones always apply).
#[derive(Debug, Clone, Default)]
pub struct Tuned {
    pub keystroke: keystroke::Thresholds,
    pub face_calibrations: Vec<face::Calibration>,
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

/// Runs the suite with the shipped thresholds and the built-in face calibrations.
pub fn analyse(
    trace: &SessionTrace,
    policy: &IntegrityPolicy,
    settings: &SuiteSettings,
    task_threshold: f64,
    own: &Prints,
    cohort: &Cohort,
    trigger: &str,
) -> IntegrityAnalysis {
    analyse_tuned(
        trace,
        policy,
        settings,
        task_threshold,
        own,
        cohort,
        trigger,
        &Tuned::default(),
    )
}

/// Runs the suite with the given tuning.
#[allow(clippy::too_many_arguments)]
pub fn analyse_tuned(
    trace: &SessionTrace,
    policy: &IntegrityPolicy,
    settings: &SuiteSettings,
    task_threshold: f64,
    own: &Prints,
    cohort: &Cohort,
    trigger: &str,
    tuned: &Tuned,
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
        let mut report = keystroke::analyse_with(trace, &tuned.keystroke);
        if report.skipped.is_none() && !own.timing.is_empty() {
            if let Some(finding) = keystroke::replay_check(trace, &own.timing, &cohort.timing) {
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
        reports.push(face::analyse_with(trace, &tuned.face_calibrations));
    } else {
        reports.push(off(face::DETECTOR, face::VERSION));
    }
    let threshold = settings.similarity_threshold.unwrap_or(task_threshold);
    if policy.similarity && threshold > 1.0 {
        reports.push(DetectorReport::skipped(
            similarity::DETECTOR,
            similarity::VERSION,
            "not meaningful for this task: independent honest solutions coincide (see docs/integrity-eval.md)",
        ));
    } else if policy.similarity {
        reports.push(similarity::analyse(&own.code, &cohort.code, threshold));
    } else {
        reports.push(off(similarity::DETECTOR, similarity::VERSION));
    }
    // Not a monitoring scope: what counts as submitted is always checked against the log.
    reports.push(submission::analyse(trace));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Comparison, Finding};

    fn report(detector: &str, levels: &[FindingLevel]) -> DetectorReport {
        DetectorReport {
            detector: detector.into(),
            detector_version: "1".into(),
            skipped: None,
            checks: Vec::new(),
            findings: levels
                .iter()
                .map(|&level| Finding {
                    detector: detector.into(),
                    detector_version: "1".into(),
                    rule: "r".into(),
                    level,
                    measured: 1.0,
                    threshold: 0.5,
                    comparison: Comparison::Above,
                    summary: format!("{detector} {level:?}"),
                    related_session: None,
                    supporting: Vec::new(),
                    evidence: Vec::new(),
                })
                .collect(),
            metrics: None,
        }
    }

    #[test]
    fn hints_alone_never_raise_the_tier() {
        let (tier, reasons) = tier(&[
            report("a", &[FindingLevel::Hint, FindingLevel::Hint]),
            report("b", &[FindingLevel::Hint]),
        ]);
        assert_eq!(tier, Tier::None);
        assert!(reasons.is_empty());
    }

    #[test]
    fn one_detectors_review_findings_suggest_a_review() {
        let (tier, reasons) = tier(&[
            report("provenance", &[FindingLevel::Review, FindingLevel::Review]),
            report("face_continuity", &[FindingLevel::Hint]),
        ]);
        assert_eq!(tier, Tier::ReviewSuggested);
        assert_eq!(reasons.len(), 2);
    }

    #[test]
    fn two_detectors_agreeing_or_one_major_finding_are_major_concerns() {
        let (tier_two, reasons) = tier(&[
            report("provenance", &[FindingLevel::Review]),
            report("transcription", &[FindingLevel::Review]),
        ]);
        assert_eq!(tier_two, Tier::MajorConcerns);
        assert_eq!(
            reasons.last().unwrap(),
            "independent detectors agree: provenance, transcription"
        );
        let (tier_major, _) = tier(&[report("face_continuity", &[FindingLevel::Major])]);
        assert_eq!(tier_major, Tier::MajorConcerns);
    }

    #[test]
    fn the_suite_version_names_every_detector_and_the_settings_that_differ() {
        let default = suite_version(&SuiteSettings::default());
        assert_eq!(
            default,
            "keystroke_timing@2+provenance@1+transcription@2+face_continuity@2+similarity@1+submission@1"
        );
        let custom = suite_version(&SuiteSettings {
            similarity_threshold: Some(0.9),
        });
        assert_eq!(custom, format!("{default}+similarity_threshold=0.9"));
    }

    #[test]
    fn detectors_switched_off_by_the_policy_say_so_and_find_nothing() {
        let trace = SessionTrace::default();
        let policy = IntegrityPolicy {
            keystroke_dynamics: false,
            paste_tracking: false,
            focus_tracking: false,
            face_continuity: false,
            similarity: false,
        };
        let own = prints(&trace);
        let analysis = analyse(
            &trace,
            &policy,
            &SuiteSettings::default(),
            0.8,
            &own,
            &Cohort::default(),
            "submitted",
        );
        assert_eq!(analysis.reports.len(), 6);
        // The submission check is no monitoring scope: the policy cannot switch it off (here it
        // is skipped for want of a submission point).
        let (last, switched_off) = analysis.reports.split_last().unwrap();
        assert_eq!(last.detector, "submission");
        assert!(last
            .skipped
            .as_deref()
            .unwrap()
            .contains("no submission point"));
        for r in switched_off {
            assert_eq!(
                r.skipped.as_deref(),
                Some("switched off by the assessment's integrity policy"),
                "{}",
                r.detector
            );
        }
        assert_eq!(analysis.tier, Tier::None);
    }
}
