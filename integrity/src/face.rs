//! Face continuity from the client's face-check scores.
//!
//! The client compares the face in front of the camera with the reference captured at the start
//! and sends only a similarity score, the model that computed it, the number of faces and an image
//! quality estimate — never an image or an embedding. Scores from different models (or versions of
//! one model) are not comparable, so:
//!
//! - each model version has its own calibrated threshold ([`threshold_for`]); a model without one is
//!   not interpreted at all;
//! - a session whose checks come from more than one model version is **rejected** (skipped with the
//!   reason), never compared across versions;
//! - only *good* checks count toward a mismatch: exactly one face and quality at least
//!   [`MIN_QUALITY`]. A single low score is noise (lighting, a turned head); the rule fires only when
//!   at least [`M`] of the last [`N`] good checks fall below the threshold (rule
//!   `below_threshold_m_of_n`, level major: a sustained mismatch is what an impersonation swap looks
//!   like);
//! - "no face" is its own signal and never counts as a mismatch: a stretch with no face in frame
//!   over two minutes is a hint (rule `no_face_extended`; people take breaks), and so is one over
//!   ten minutes (rule `no_face_very_long`, a hint since version 2: absence alone never raises
//!   the tier); repeated checks with several faces (rule
//!   `multiple_faces`: at least 5% of checks and at least 3) suggest a look, nothing more.
//!
//! The detector runs only when the candidate's consent covers face continuity.

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::{Comparison, DetectorReport, Evidence, Finding, FindingLevel, RuleCheck, SessionTrace};
use clarity_domain::telemetry::TelemetryData;

pub const DETECTOR: &str = "face_continuity";
pub const VERSION: &str = "2";

/// Checks below this quality are ignored for mismatches.
pub const MIN_QUALITY: f64 = 0.5;
/// A mismatch needs `M` of the last `N` good checks below the threshold.
pub const M: usize = 3;
pub const N: usize = 5;
/// A stretch with no face longer than this (ms) is shown as a hint (people take breaks).
pub const NO_FACE_MS: f64 = 120_000.0;
/// A stretch with no face longer than this (ms) is worth a reviewer's look.
pub const NO_FACE_LONG_MS: f64 = 600_000.0;
/// Share of checks with more than one face worth a look...
pub const MULTIPLE_FACES_SHARE: f64 = 0.05;
/// ...if there are at least this many (a poster or a passer-by once is not a signal).
pub const MULTIPLE_FACES_MIN: usize = 3;

/// Genuine pairs allowed below the threshold when a calibration derives it: 1 in 100 checks of
/// the right person counts toward a mismatch, and a mismatch needs [`M`] of [`N`] such checks.
pub const TARGET_FALSE_NON_MATCH_RATE: f64 = 0.01;
/// A calibration needs at least this many genuine scores: the fewest for which a 1% quantile
/// exists (one score may fall below it).
pub const MIN_GENUINE_PAIRS: usize = 100;
/// ...and at least this many impostor scores, to measure how often another person passes.
pub const MIN_IMPOSTOR_PAIRS: usize = 200;
/// A calibration whose impostors pass a check this often or more is refused: the model cannot
/// tell people apart at a fair threshold.
pub const MAX_FALSE_MATCH_RATE: f64 = 0.5;

/// A face model's calibration: the threshold below which a check counts toward a mismatch, derived
/// from labelled scores of the model itself, with the error rates measured on them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Calibration {
    pub model_id: String,
    pub model_version: String,
    /// Scores below this count toward a mismatch.
    pub threshold: f64,
    /// Share of the genuine pairs (same person) scoring below the threshold.
    pub false_non_match_rate: f64,
    /// Share of the impostor pairs (different people) scoring at or above it: another person
    /// passing one check.
    pub false_match_rate: f64,
    pub genuine_pairs: usize,
    pub impostor_pairs: usize,
    /// `built-in` (shipped with Clarity) or `registered` (by an operator).
    pub source: String,
}

/// Why a calibration set was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum CalibrationError {
    TooFewPairs { genuine: usize, impostor: usize },
    ScoreOutOfRange(f64),
    NotSeparable { false_match_rate: f64 },
}

impl std::fmt::Display for CalibrationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooFewPairs { genuine, impostor } => write!(
                f,
                "{genuine} genuine and {impostor} impostor scores; at least \
                 {MIN_GENUINE_PAIRS} genuine and {MIN_IMPOSTOR_PAIRS} impostor scores are needed"
            ),
            Self::ScoreOutOfRange(v) => write!(f, "score {v} is not a similarity in 0..=1"),
            Self::NotSeparable { false_match_rate } => write!(
                f,
                "at the threshold keeping genuine pairs' errors at {:.0}%, {:.0}% of impostor \
                 pairs would pass: the model does not tell people apart",
                100.0 * TARGET_FALSE_NON_MATCH_RATE,
                100.0 * false_match_rate
            ),
        }
    }
}

/// Derives a model's threshold from labelled scores: the highest threshold at which at most
/// [`TARGET_FALSE_NON_MATCH_RATE`] of the genuine scores fall below it; the impostor scores
/// measure how often another person would pass a check there.
pub fn calibrate(
    model_id: &str,
    model_version: &str,
    genuine: &[f64],
    impostor: &[f64],
) -> Result<Calibration, CalibrationError> {
    if genuine.len() < MIN_GENUINE_PAIRS || impostor.len() < MIN_IMPOSTOR_PAIRS {
        return Err(CalibrationError::TooFewPairs {
            genuine: genuine.len(),
            impostor: impostor.len(),
        });
    }
    if let Some(v) = genuine
        .iter()
        .chain(impostor)
        .find(|v| !(0.0..=1.0).contains(*v))
    {
        return Err(CalibrationError::ScoreOutOfRange(*v));
    }
    let mut sorted = genuine.to_vec();
    sorted.sort_by(f64::total_cmp);
    // Scores strictly below sorted[k] are at most k of n: k = floor(rate × n).
    let k = (TARGET_FALSE_NON_MATCH_RATE * sorted.len() as f64).floor() as usize;
    let threshold = sorted[k.min(sorted.len() - 1)];
    let below = sorted.iter().filter(|v| **v < threshold).count();
    let passing = impostor.iter().filter(|v| **v >= threshold).count();
    let false_match_rate = passing as f64 / impostor.len() as f64;
    if false_match_rate >= MAX_FALSE_MATCH_RATE {
        return Err(CalibrationError::NotSeparable { false_match_rate });
    }
    Ok(Calibration {
        model_id: model_id.to_string(),
        model_version: model_version.to_string(),
        threshold: (threshold * 10_000.0).floor() / 10_000.0,
        false_non_match_rate: below as f64 / sorted.len() as f64,
        false_match_rate,
        genuine_pairs: genuine.len(),
        impostor_pairs: impostor.len(),
        source: "registered".into(),
    })
}

/// The labelled scores of the candidate page's on-device model (`@vladmandic/face-api` 1.7.15,
/// the page's own pipeline), from openly licensed photos: see `integrity/calibrations/README.md`.
const FACE_API_SCORES: &str = include_str!("../calibrations/face-api-1.7.15.json");

/// The calibrations shipped with Clarity:
///
/// - the candidate page's on-device model, `face-api.js/faceRecognitionNet` 1.7.15, calibrated
///   through [`calibrate`] from its labelled scores (130 genuine pairs of 103 people, 2,000
///   impostor pairs; `integrity/calibrations/`);
/// - the reference model of the demo client and the simulator, `clarity-face` (genuine pairs
///   ~0.85 ± 0.05 on good images, impostors ~0.35 ± 0.12; the rates are those of these normal
///   distributions at the threshold).
pub fn builtin_calibrations() -> Vec<Calibration> {
    static BUILTIN: std::sync::OnceLock<Vec<Calibration>> = std::sync::OnceLock::new();
    BUILTIN
        .get_or_init(|| {
            #[derive(Deserialize)]
            struct Scores {
                model_id: String,
                model_version: String,
                genuine: Vec<f64>,
                impostor: Vec<f64>,
            }
            let scores: Scores =
                serde_json::from_str(FACE_API_SCORES).expect("the embedded face scores parse");
            let mut on_device = calibrate(
                &scores.model_id,
                &scores.model_version,
                &scores.genuine,
                &scores.impostor,
            )
            .expect("the embedded face scores calibrate");
            on_device.source = "built-in".into();
            let mut out = vec![on_device];
            out.extend([("1", 0.6, 0.019), ("2", 0.55, 0.048)].into_iter().map(
                |(version, threshold, fmr)| Calibration {
                    model_id: "clarity-face".into(),
                    model_version: version.into(),
                    threshold,
                    false_non_match_rate: 0.0,
                    false_match_rate: fmr,
                    genuine_pairs: 0,
                    impostor_pairs: 0,
                    source: "built-in".into(),
                },
            ));
            out
        })
        .clone()
}

/// The calibration for a model version: a registered one first, then a built-in one.
pub fn calibration_for<'a>(
    registered: &'a [Calibration],
    builtin: &'a [Calibration],
    model_id: &str,
    model_version: &str,
) -> Option<&'a Calibration> {
    registered
        .iter()
        .chain(builtin)
        .find(|c| c.model_id == model_id && c.model_version == model_version)
}

/// The threshold for a model version among the built-in calibrations.
pub fn threshold_for(model_id: &str, model_version: &str) -> Option<f64> {
    let builtin = builtin_calibrations();
    calibration_for(&[], &builtin, model_id, model_version).map(|c| c.threshold)
}

struct Check {
    seq: u64,
    at_ms: i64,
    similarity: f64,
    face_count: u32,
    quality: f64,
}

/// Runs the detector with the built-in calibrations only.
pub fn analyse(trace: &SessionTrace) -> DetectorReport {
    analyse_with(trace, &[])
}

/// Runs the detector with the operator's registered calibrations (before the built-in ones).
pub fn analyse_with(trace: &SessionTrace, registered: &[Calibration]) -> DetectorReport {
    if !trace.consent.face_continuity {
        return DetectorReport::skipped(
            DETECTOR,
            VERSION,
            "the candidate did not consent to face continuity checks",
        );
    }
    let mut models: Vec<(String, String)> = Vec::new();
    let mut checks = Vec::new();
    for event in &trace.events {
        if let TelemetryData::FaceCheck {
            similarity,
            model_id,
            model_version,
            face_count,
            quality,
        } = &event.data
        {
            let model = (model_id.clone(), model_version.clone());
            if !models.contains(&model) {
                models.push(model);
            }
            checks.push(Check {
                seq: event.seq,
                at_ms: trace.at_ms(event.ts),
                similarity: *similarity,
                face_count: *face_count,
                quality: *quality,
            });
        }
    }
    if checks.is_empty() {
        return DetectorReport::skipped(DETECTOR, VERSION, "no face checks were received");
    }
    if models.len() > 1 {
        let names: Vec<String> = models.iter().map(|(m, v)| format!("{m} v{v}")).collect();
        return DetectorReport::skipped(
            DETECTOR,
            VERSION,
            format!(
                "face checks came from several model versions ({}); their scores are not comparable",
                names.join(", ")
            ),
        );
    }
    let (model_id, model_version) = &models[0];
    let builtin = builtin_calibrations();
    let calibration = calibration_for(registered, &builtin, model_id, model_version);

    let mut report = DetectorReport {
        detector: DETECTOR.into(),
        detector_version: VERSION.into(),
        skipped: None,
        checks: Vec::new(),
        findings: Vec::new(),
        metrics: None,
    };

    match calibration {
        Some(c) => mismatch(&mut report, &checks, c),
        None => report.findings.push(Finding {
            detector: DETECTOR.into(),
            detector_version: VERSION.into(),
            rule: "face_model_uncalibrated".into(),
            level: FindingLevel::Hint,
            measured: checks.len() as f64,
            threshold: 0.0,
            comparison: Comparison::Above,
            summary: format!(
                "the {} face checks came from {model_id} v{model_version}, a model with no \
                 calibration: their scores were not interpreted (register the model's genuine and \
                 impostor scores to calibrate it); no-face and several-faces checks still ran",
                checks.len()
            ),
            related_session: None,
            supporting: Vec::new(),
            evidence: vec![Evidence {
                from_seq: checks[0].seq,
                to_seq: checks[checks.len() - 1].seq,
                replay_seq: checks[0].seq,
                at_ms: checks[0].at_ms,
                file: None,
                note: format!(
                    "similarity scores {}",
                    checks
                        .iter()
                        .take(12)
                        .map(|c| format!("{:.2}", c.similarity))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }],
        }),
    }

    // No face: the longest stretch of consecutive checks without a face.
    let mut longest: Option<(usize, usize)> = None;
    let mut run_start: Option<usize> = None;
    for (i, c) in checks.iter().enumerate() {
        if c.face_count == 0 {
            let s = *run_start.get_or_insert(i);
            let span = |(a, b): (usize, usize)| checks[b].at_ms - checks[a].at_ms;
            if longest.is_none_or(|l| span((s, i)) > span(l)) {
                longest = Some((s, i));
            }
        } else {
            run_start = None;
        }
    }
    // The stretch lasts until the next check that saw a face (or the last check).
    let no_face_ms = longest.map_or(0, |(a, b)| {
        let end = checks.get(b + 1).map_or(checks[b].at_ms, |c| c.at_ms);
        end - checks[a].at_ms
    });
    let no_face = RuleCheck::new(
        "no_face_extended",
        no_face_ms as f64,
        Comparison::Above,
        NO_FACE_MS,
    );
    let no_face_long = RuleCheck::new(
        "no_face_very_long",
        no_face_ms as f64,
        Comparison::Above,
        NO_FACE_LONG_MS,
    );
    if no_face.fired {
        let (a, b) = longest.unwrap_or((0, 0));
        // Absence is never evidence on its own: people take breaks in a three-hour take-home
        // (an independent generator's marathon sessions were flagged by this rule at review
        // level). Both rules are hints on the timeline; neither raises the tier.
        let (check, level) = if no_face_long.fired {
            (&no_face_long, FindingLevel::Hint)
        } else {
            (&no_face, FindingLevel::Hint)
        };
        report.findings.push(Finding {
            detector: DETECTOR.into(),
            detector_version: VERSION.into(),
            rule: check.rule.clone(),
            level,
            measured: check.measured,
            threshold: check.threshold,
            comparison: check.comparison,
            summary: format!(
                "no face in front of the camera for {} (not a mismatch: the candidate may have stepped away)",
                crate::followup::duration(no_face_ms)
            ),
            related_session: None,
            supporting: Vec::new(),
            evidence: vec![Evidence {
                from_seq: checks[a].seq,
                to_seq: checks[b].seq,
                replay_seq: checks[a].seq,
                at_ms: checks[a].at_ms,
                file: None,
                note: format!("{} consecutive checks saw no face", b - a + 1),
            }],
        });
    }
    report.checks.push(no_face);
    report.checks.push(no_face_long);

    let multi: Vec<&Check> = checks.iter().filter(|c| c.face_count > 1).collect();
    let share = multi.len() as f64 / checks.len() as f64;
    let multiple = RuleCheck::new(
        "multiple_faces",
        share,
        Comparison::AtLeast,
        MULTIPLE_FACES_SHARE,
    );
    if multiple.fired && multi.len() >= MULTIPLE_FACES_MIN {
        report.findings.push(Finding {
            detector: DETECTOR.into(),
            detector_version: VERSION.into(),
            rule: multiple.rule.clone(),
            level: FindingLevel::Review,
            measured: multiple.measured,
            threshold: multiple.threshold,
            comparison: multiple.comparison,
            summary: format!(
                "{} of {} face checks saw more than one face",
                multi.len(),
                checks.len()
            ),
            related_session: None,
            supporting: Vec::new(),
            evidence: multi
                .iter()
                .take(5)
                .map(|c| Evidence {
                    from_seq: c.seq,
                    to_seq: c.seq,
                    replay_seq: c.seq,
                    at_ms: c.at_ms,
                    file: None,
                    note: format!("{} faces", c.face_count),
                })
                .collect(),
        });
    }
    report.checks.push(multiple);

    report.metrics = super::metrics_object(json!({
        "model": format!("{model_id} v{model_version}"),
        "threshold": calibration.map(|c| c.threshold),
        "calibration": calibration,
        "checks": checks.len(),
        "good_checks": checks
            .iter()
            .filter(|c| c.face_count == 1 && c.quality >= MIN_QUALITY)
            .count(),
        "no_face_checks": checks.iter().filter(|c| c.face_count == 0).count(),
    }));
    report
}

/// Mismatch: at least [`M`] of the last [`N`] good checks below the calibrated threshold.
fn mismatch(report: &mut DetectorReport, checks: &[Check], calibration: &Calibration) {
    let threshold = calibration.threshold;
    let (model_id, model_version) = (&calibration.model_id, &calibration.model_version);
    let good: Vec<&Check> = checks
        .iter()
        .filter(|c| c.face_count == 1 && c.quality >= MIN_QUALITY)
        .collect();
    let mut worst = 0usize;
    let mut worst_window: Option<(usize, usize)> = None;
    for end in 0..good.len() {
        let start = (end + 1).saturating_sub(N);
        let below = good[start..=end]
            .iter()
            .filter(|c| c.similarity < threshold)
            .count();
        if below > worst {
            worst = below;
            worst_window = Some((start, end));
        }
    }
    let rule = RuleCheck::new(
        "below_threshold_m_of_n",
        worst as f64,
        Comparison::AtLeast,
        M as f64,
    );
    if rule.fired {
        let (start, end) = worst_window.unwrap_or((0, 0));
        let window = &good[start..=end];
        let first_below = window
            .iter()
            .find(|c| c.similarity < threshold)
            .unwrap_or(&window[0]);
        let scores: Vec<String> = window
            .iter()
            .map(|c| format!("{:.2}", c.similarity))
            .collect();
        report.findings.push(Finding {
            detector: DETECTOR.into(),
            detector_version: VERSION.into(),
            rule: rule.rule.clone(),
            level: FindingLevel::Major,
            measured: rule.measured,
            threshold: rule.threshold,
            comparison: rule.comparison,
            summary: format!(
                "{worst} of {} consecutive good-quality face checks scored below {threshold} \
                 ({model_id} v{model_version}, {} calibration: 1 in {:.0} checks of another person \
                 passes): the person at the keyboard may have changed",
                window.len(),
                calibration.source,
                1.0 / calibration.false_match_rate.max(1e-4)
            ),
            related_session: None,
            supporting: Vec::new(),
            evidence: vec![Evidence {
                from_seq: window[0].seq,
                to_seq: window[window.len() - 1].seq,
                replay_seq: first_below.seq,
                at_ms: first_below.at_ms,
                file: None,
                note: format!("scores {}", scores.join(", ")),
            }],
        });
    }
    report.checks.push(rule);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::face::{face_checks, merge, FaceScenario};
    use chrono::{Duration, TimeZone, Utc};
    use clarity_domain::session::ConsentScopes;
    use clarity_domain::telemetry::TelemetryEvent;
    use rand::SeedableRng;

    fn trace_for(scenario: FaceScenario, seed: u64) -> SessionTrace {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let start = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap();
        let (checks, _) = face_checks(&mut rng, scenario, start, start + Duration::minutes(90));
        SessionTrace {
            submission: None,
            started_at: Some(start),
            events: merge(Vec::new(), checks),
            consent: ConsentScopes {
                keystroke_dynamics: true,
                face_continuity: true,
            },
            starter_files: Vec::new(),
        }
    }

    fn fired(report: &DetectorReport, rule: &str) -> bool {
        report.findings.iter().any(|f| f.rule == rule)
    }

    #[test]
    fn honest_candidates_in_poor_light_or_stepping_away_are_never_called_a_mismatch() {
        for seed in 0..300 {
            for scenario in [
                FaceScenario::Honest,
                FaceScenario::PoorConditions,
                FaceScenario::StepsAway,
            ] {
                let report = analyse(&trace_for(scenario, seed));
                assert!(
                    !fired(&report, "below_threshold_m_of_n"),
                    "{scenario:?} seed {seed}: {:?}",
                    report.findings
                );
            }
        }
    }

    #[test]
    fn a_swap_to_another_person_is_found_after_the_swap() {
        let report = analyse(&trace_for(FaceScenario::Impersonation { swap_at: 0.5 }, 7));
        let finding = report
            .findings
            .iter()
            .find(|f| f.rule == "below_threshold_m_of_n")
            .expect("the swap is found");
        assert_eq!(finding.level, FindingLevel::Major);
        // The evidence starts near the swap (45 minutes in), not before it.
        let at = finding.evidence[0].at_ms;
        assert!(at >= 45 * 60_000 - 5 * 35_000, "evidence at {at} ms");
    }

    #[test]
    fn no_face_is_its_own_signal_and_never_a_mismatch() {
        let start = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap();
        let check = |secs: i64, faces: u32| {
            (
                start + Duration::seconds(secs),
                TelemetryData::FaceCheck {
                    similarity: if faces == 0 { 0.0 } else { 0.86 },
                    model_id: "clarity-face".into(),
                    model_version: "1".into(),
                    face_count: faces,
                    quality: 0.9,
                },
            )
        };
        let mut checks: Vec<_> = (0..10).map(|i| check(i * 30, 1)).collect();
        checks.extend((10..20).map(|i| check(i * 30, 0)));
        checks.extend((20..25).map(|i| check(i * 30, 1)));
        let trace = SessionTrace {
            submission: None,
            started_at: Some(start),
            events: merge(Vec::new(), checks),
            consent: ConsentScopes {
                keystroke_dynamics: false,
                face_continuity: true,
            },
            starter_files: Vec::new(),
        };
        let report = analyse(&trace);
        assert!(fired(&report, "no_face_extended"));
        assert_eq!(report.findings[0].level, FindingLevel::Hint);
        assert!(!fired(&report, "below_threshold_m_of_n"));
        let no_face = report
            .checks
            .iter()
            .find(|c| c.rule == "no_face_extended")
            .unwrap();
        assert_eq!(no_face.measured, 300_000.0);
    }

    #[test]
    fn low_quality_low_scores_do_not_count_toward_a_mismatch() {
        let start = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap();
        let checks: Vec<_> = (0..20)
            .map(|i| {
                (
                    start + Duration::seconds(i * 30),
                    TelemetryData::FaceCheck {
                        similarity: if i % 2 == 0 { 0.2 } else { 0.88 },
                        model_id: "clarity-face".into(),
                        model_version: "1".into(),
                        face_count: 1,
                        quality: if i % 2 == 0 { 0.3 } else { 0.9 },
                    },
                )
            })
            .collect();
        let trace = SessionTrace {
            submission: None,
            started_at: Some(start),
            events: merge(Vec::new(), checks),
            consent: ConsentScopes {
                keystroke_dynamics: false,
                face_continuity: true,
            },
            starter_files: Vec::new(),
        };
        let report = analyse(&trace);
        assert!(report.findings.is_empty(), "{:?}", report.findings);
        assert_eq!(report.checks[0].measured, 0.0);
    }

    #[test]
    fn mixed_model_versions_are_rejected_and_no_consent_means_no_analysis() {
        let mut trace = trace_for(FaceScenario::Impersonation { swap_at: 0.3 }, 3);
        let mut bumped = trace.clone();
        if let Some(TelemetryEvent {
            data: TelemetryData::FaceCheck { model_version, .. },
            ..
        }) = bumped.events.last_mut()
        {
            *model_version = "2".into();
        }
        let report = analyse(&bumped);
        assert!(report.findings.is_empty());
        assert!(report
            .skipped
            .as_deref()
            .unwrap()
            .contains("several model versions"));

        trace.consent.face_continuity = false;
        let report = analyse(&trace);
        assert!(report.findings.is_empty());
        assert!(report
            .skipped
            .as_deref()
            .unwrap()
            .contains("did not consent"));
    }

    #[test]
    fn several_faces_need_a_share_of_the_checks_not_one_passer_by() {
        let start = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap();
        let series = |multi_every: Option<i64>| {
            let checks: Vec<_> = (0..40)
                .map(|i| {
                    let faces = match multi_every {
                        Some(k) if i % k == 0 => 2,
                        _ if i == 7 => 2,
                        _ => 1,
                    };
                    (
                        start + Duration::seconds(i * 30),
                        TelemetryData::FaceCheck {
                            similarity: 0.86,
                            model_id: "clarity-face".into(),
                            model_version: "1".into(),
                            face_count: faces,
                            quality: 0.9,
                        },
                    )
                })
                .collect();
            SessionTrace {
                submission: None,
                started_at: Some(start),
                events: merge(Vec::new(), checks),
                consent: ConsentScopes {
                    keystroke_dynamics: false,
                    face_continuity: true,
                },
                starter_files: Vec::new(),
            }
        };
        // One check with two faces (someone walked past): nothing.
        assert!(analyse(&series(None)).findings.is_empty());
        // Every fifth check (plus one): 9 of 40 = 22.5% — worth a look, and never a mismatch.
        let report = analyse(&series(Some(5)));
        assert!(fired(&report, "multiple_faces"));
        assert!(!fired(&report, "below_threshold_m_of_n"));
        let check = report
            .checks
            .iter()
            .find(|c| c.rule == "multiple_faces")
            .unwrap();
        assert_eq!(check.measured, 9.0 / 40.0);
    }

    #[test]
    fn an_uncalibrated_model_is_shown_as_such_and_a_registered_calibration_interprets_it() {
        // Arrange: an impersonation seen by a model Clarity does not know.
        let mut trace = trace_for(FaceScenario::Impersonation { swap_at: 0.3 }, 4);
        for e in &mut trace.events {
            if let TelemetryData::FaceCheck { model_id, .. } = &mut e.data {
                *model_id = "acme-face".into();
            }
        }

        // Act
        let uncalibrated = analyse(&trace);

        // Assert: not skipped, not interpreted, and said so on the report.
        assert!(uncalibrated.skipped.is_none());
        assert!(uncalibrated
            .checks
            .iter()
            .all(|c| c.rule != "below_threshold_m_of_n"));
        let hint = uncalibrated
            .findings
            .iter()
            .find(|f| f.rule == "face_model_uncalibrated")
            .expect("the report says the model is uncalibrated");
        assert_eq!(hint.level, FindingLevel::Hint);
        assert!(hint.summary.contains("acme-face v1"), "{}", hint.summary);

        // Arrange: the operator registers the model's labelled scores (genuine ~0.85, impostor
        // ~0.35, as this model scores).
        let genuine: Vec<f64> = (0..400).map(|i| 0.7 + 0.25 * (i as f64 / 400.0)).collect();
        let impostor: Vec<f64> = (0..400).map(|i| 0.1 + 0.45 * (i as f64 / 400.0)).collect();
        let calibration = calibrate("acme-face", "1", &genuine, &impostor).unwrap();

        // Act
        let calibrated = analyse_with(&trace, std::slice::from_ref(&calibration));

        // Assert
        assert!(calibrated
            .findings
            .iter()
            .any(|f| f.rule == "below_threshold_m_of_n" && f.level == FindingLevel::Major));
        assert!(calibrated
            .findings
            .iter()
            .all(|f| f.rule != "face_model_uncalibrated"));
    }

    #[test]
    fn a_calibration_keeps_one_percent_of_genuine_pairs_below_and_measures_impostors() {
        // Arrange: genuine 0.500, 0.501, ... 0.899; impostor 0.000 ... 0.599.
        let genuine: Vec<f64> = (0..400).map(|i| 0.5 + i as f64 / 1000.0).collect();
        let impostor: Vec<f64> = (0..600).map(|i| i as f64 / 1000.0).collect();

        // Act
        let c = calibrate("m", "1", &genuine, &impostor).unwrap();

        // Assert: 4 of 400 genuine scores below 0.504; impostors 0.504 ... 0.599 pass (96 of 600).
        assert!((c.threshold - 0.504).abs() < 1e-9, "{c:?}");
        assert!((c.false_non_match_rate - 0.01).abs() < 1e-9);
        assert!((c.false_match_rate - 0.16).abs() < 1e-9);
        assert_eq!((c.genuine_pairs, c.impostor_pairs), (400, 600));
        assert_eq!(c.source, "registered");
    }

    #[test]
    fn the_candidate_page_s_model_is_calibrated_from_its_labelled_scores() {
        let c = calibration_for(
            &[],
            &builtin_calibrations(),
            "face-api.js/faceRecognitionNet",
            "1.7.15",
        )
        .expect("built in")
        .clone();
        // sorted genuine[floor(0.01 × 130)] = the second lowest genuine score; 2 of 2,000
        // impostor pairs reach it (integrity/calibrations/README.md).
        assert!((c.threshold - 0.5044).abs() < 1e-9, "{c:?}");
        assert_eq!((c.genuine_pairs, c.impostor_pairs), (130, 2000));
        assert!((c.false_match_rate - 0.001).abs() < 1e-9);
        assert_eq!(c.source, "built-in");
    }

    #[test]
    fn bad_calibration_sets_are_refused_with_the_reason() {
        let few = calibrate("m", "1", &[0.9; 20], &[0.1; 500]).unwrap_err();
        assert!(matches!(
            few,
            CalibrationError::TooFewPairs { genuine: 20, .. }
        ));
        let mut out = vec![0.9; 300];
        out[7] = 1.5;
        let range = calibrate("m", "1", &out, &[0.1; 300]).unwrap_err();
        assert_eq!(range, CalibrationError::ScoreOutOfRange(1.5));
        let same = calibrate("m", "1", &[0.8; 300], &[0.8; 300]).unwrap_err();
        assert!(matches!(same, CalibrationError::NotSeparable { .. }));
        assert!(same.to_string().contains("does not tell people apart"));
    }
}
