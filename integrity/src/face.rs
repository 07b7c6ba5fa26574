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
//!   over two minutes is a hint (rule `no_face_extended`; people take breaks), over ten minutes a
//!   reason to look (rule `no_face_very_long`); repeated checks with several faces (rule
//!   `multiple_faces`: at least 5% of checks and at least 3) suggest a look, nothing more.
//!
//! The detector runs only when the candidate's consent covers face continuity.

use serde_json::json;

use super::{Comparison, DetectorReport, Evidence, Finding, FindingLevel, RuleCheck, SessionTrace};
use clarity_domain::telemetry::TelemetryData;

pub const DETECTOR: &str = "face_continuity";
pub const VERSION: &str = "1";

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

/// Calibrated similarity thresholds per (model id, model version). A model version absent here is
/// not interpreted: its scores have no known operating point.
pub const THRESHOLDS: &[(&str, &str, f64)] = &[
    // The reference on-device model the demo client and the simulator use: genuine pairs score
    // ~0.85 ± 0.05 on good images, impostors ~0.35 ± 0.12; 0.6 sits > 4 sd from both.
    ("clarity-face", "1", 0.6),
    ("clarity-face", "2", 0.55),
];

/// The threshold for a model version, if it has been calibrated.
pub fn threshold_for(model_id: &str, model_version: &str) -> Option<f64> {
    THRESHOLDS
        .iter()
        .find(|(id, v, _)| *id == model_id && *v == model_version)
        .map(|(_, _, t)| *t)
}

struct Check {
    seq: u64,
    at_ms: i64,
    similarity: f64,
    face_count: u32,
    quality: f64,
}

/// Runs the detector.
pub fn analyse(trace: &SessionTrace) -> DetectorReport {
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
    let Some(threshold) = threshold_for(model_id, model_version) else {
        return DetectorReport::skipped(
            DETECTOR,
            VERSION,
            format!("no calibrated threshold for face model {model_id} v{model_version}"),
        );
    };

    let mut report = DetectorReport {
        detector: DETECTOR.into(),
        detector_version: VERSION.into(),
        skipped: None,
        checks: Vec::new(),
        findings: Vec::new(),
        metrics: None,
    };

    // Mismatch: M of the last N good checks below the threshold.
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
    let mismatch = RuleCheck::new(
        "below_threshold_m_of_n",
        worst as f64,
        Comparison::AtLeast,
        M as f64,
    );
    if mismatch.fired {
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
            rule: mismatch.rule.clone(),
            level: FindingLevel::Major,
            measured: mismatch.measured,
            threshold: mismatch.threshold,
            comparison: mismatch.comparison,
            summary: format!(
                "{worst} of {} consecutive good-quality face checks scored below {threshold} ({model_id} v{model_version}): the person at the keyboard may have changed",
                window.len()
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
    report.checks.push(mismatch);

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
        let (check, level) = if no_face_long.fired {
            (&no_face_long, FindingLevel::Review)
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
        "threshold": threshold,
        "checks": checks.len(),
        "good_checks": good.len(),
        "no_face_checks": checks.iter().filter(|c| c.face_count == 0).count(),
    }));
    report
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
    fn an_uncalibrated_model_is_not_interpreted() {
        let mut trace = trace_for(FaceScenario::Impersonation { swap_at: 0.3 }, 4);
        for e in &mut trace.events {
            if let TelemetryData::FaceCheck { model_id, .. } = &mut e.data {
                *model_id = "acme-face".into();
            }
        }
        let report = analyse(&trace);
        assert!(report.findings.is_empty());
        assert!(report
            .skipped
            .as_deref()
            .unwrap()
            .contains("no calibrated threshold"));
    }
}
