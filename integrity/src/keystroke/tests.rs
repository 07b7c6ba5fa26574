use chrono::{TimeZone, Utc};
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;
use crate::synth::timing::{
    adversary, code_like_text, honest, keystroke_trace_with_corrections, timings_from_events,
    HonestTyping, TimingAdversary,
};
use clarity_domain::session::ConsentScopes;
use clarity_domain::telemetry::TelemetryEvent;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
}

fn trace_of(events: Vec<TelemetryEvent>) -> SessionTrace {
    SessionTrace {
        submission: None,
        started_at: Some(start()),
        events,
        consent: ConsentScopes {
            keystroke_dynamics: true,
            face_continuity: false,
        },
        starter_files: Vec::new(),
    }
}

fn honest_trace(kind: HonestTyping, seed: u64, chars: usize) -> SessionTrace {
    let mut rng = StdRng::seed_from_u64(seed);
    let text = code_like_text(&mut rng, chars);
    let mut typist = honest(kind, &mut rng);
    trace_of(keystroke_trace_with_corrections(
        &mut rng,
        typist.as_mut(),
        &text,
        start(),
        kind.correction_rate(),
    ))
}

fn adversary_trace(kind: TimingAdversary, seed: u64, chars: usize) -> SessionTrace {
    let mut rng = StdRng::seed_from_u64(seed);
    let text = code_like_text(&mut rng, chars);
    let mut typist = adversary(kind, &mut rng);
    trace_of(keystroke_trace_with_corrections(
        &mut rng,
        typist.as_mut(),
        &text,
        start(),
        0.0,
    ))
}

fn replay_of(source: &SessionTrace, seed: u64, chars: usize) -> SessionTrace {
    let timings = timings_from_events(&source.events);
    adversary_trace(TimingAdversary::Replay(timings), seed, chars)
}

fn flagged(report: &DetectorReport) -> bool {
    !report.findings.is_empty()
}

fn check<'a>(report: &'a DetectorReport, rule: &str) -> Option<&'a RuleCheck> {
    report.checks.iter().find(|c| c.rule == rule)
}

const ADVERSARIES: [TimingAdversary; 4] = [
    TimingAdversary::ConstantInterval,
    TimingAdversary::UniformJitter,
    TimingAdversary::IndependentHumanLike,
    TimingAdversary::PerKeyPair,
];

#[test]
#[ignore]
fn calibration_table() {
    let n = 300u64;
    let mut rows: Vec<(String, DetectorReport)> = Vec::new();
    for kind in HonestTyping::ALL {
        for seed in 0..n {
            let chars = 1500 + (seed as usize * 37) % 1500;
            rows.push((
                kind.name().to_string(),
                analyse(&honest_trace(kind, seed, chars)),
            ));
        }
    }
    for kind in ADVERSARIES {
        for seed in 0..n {
            if seed < 200 {
                rows.push((
                    kind.name().to_string(),
                    analyse(&adversary_trace(kind.clone(), 10_000 + seed, 2000)),
                ));
            }
        }
    }
    for seed in 0..100u64 {
        let source = honest_trace(HonestTyping::ALL[(seed % 5) as usize], 20_000 + seed, 2500);
        rows.push((
            "replay (per-session rules)".to_string(),
            analyse(&replay_of(&source, 30_000 + seed, 2000)),
        ));
    }
    let rules = [
        "log_iki_sd_low",
        "iki_cv_low",
        "log_iki_skew_negative",
        "iki_values_discrete",
        "iki_serial_correlation_low",
        "hold_log_sd_low",
        "key_up_missing_share",
        "rollover_absent",
        "line_start_pause_absent",
    ];
    let mut labels: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    labels.dedup();
    for label in labels {
        let reports: Vec<&DetectorReport> =
            rows.iter().filter(|r| r.0 == label).map(|r| &r.1).collect();
        let skipped = reports.iter().filter(|r| r.skipped.is_some()).count();
        let fl = reports.iter().filter(|r| flagged(r)).count();
        let major = reports
            .iter()
            .filter(|r| r.findings.iter().any(|f| f.level == FindingLevel::Major))
            .count();
        println!(
            "== {label}: n={} skipped={skipped} flagged={fl} major={major}",
            reports.len()
        );
        for rule in rules {
            let mut vals: Vec<f64> = reports
                .iter()
                .filter_map(|r| check(r, rule))
                .map(|c| c.measured)
                .collect();
            let fired = reports
                .iter()
                .filter_map(|r| check(r, rule))
                .filter(|c| c.fired)
                .count();
            vals.sort_by(f64::total_cmp);
            if vals.is_empty() {
                println!("  {rule:28} n/a");
                continue;
            }
            let q = |p: f64| stats::quantile_sorted(&vals, p);
            println!(
                "  {rule:28} n={:4} fired={:4} min={:.3} p5={:.3} p50={:.3} p95={:.3} max={:.3}",
                vals.len(),
                fired,
                q(0.0),
                q(0.05),
                q(0.5),
                q(0.95),
                q(1.0)
            );
        }
    }
}

fn jittered(trace: &SessionTrace, seed: u64, jitter: f64, round_to_ms: bool) -> SessionTrace {
    use rand::Rng;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = trace.clone();
    for e in &mut out.events {
        if let TelemetryData::Keystroke { down_ms, up_ms, .. } = &mut e.data {
            let mut d = *down_ms + 1000.0 + rng.random_range(-jitter..=jitter);
            let mut u = up_ms.map(|u| u + 1000.0 + rng.random_range(-jitter..=jitter));
            if round_to_ms {
                d = d.round();
                u = u.map(f64::round);
            }
            *down_ms = d;
            *up_ms = u.map(|u| u.max(d));
        }
    }
    out
}

#[test]
#[ignore]
fn replay_calibration() {
    let mut honest_max = 0.0f64;
    let fps: Vec<(HonestTyping, Vec<TimingGram>, SessionTrace)> = (0..60u64)
        .map(|s| {
            let kind = HonestTyping::ALL[(s % 5) as usize];
            let t = honest_trace(kind, 500 + s, 2000);
            (kind, timing_fingerprint(&t), t)
        })
        .collect();
    for i in 0..fps.len() {
        for j in 0..fps.len() {
            if i != j {
                let o = replay_overlap(&fps[i].1, &fps[j].1);
                if o > honest_max {
                    println!("honest {:?} vs {:?}: {o:.3}", fps[i].0, fps[j].0);
                }
                honest_max = honest_max.max(o);
            }
        }
    }
    println!(
        "honest max overlap {honest_max:.4}; fingerprint len {}",
        fps[0].1.len()
    );
    // Recall on 100 replays against a pool of their 100 sources plus the 60 honest sessions.
    let sources: Vec<(String, Vec<TimingGram>, SessionTrace)> = (0..100u64)
        .map(|s| {
            let t = honest_trace(HonestTyping::ALL[(s % 5) as usize], 20_000 + s, 2500);
            (format!("src{s}"), timing_fingerprint(&t), t)
        })
        .collect();
    let pool: Vec<(String, Vec<TimingGram>)> = sources
        .iter()
        .map(|(id, fp, _)| (id.clone(), fp.clone()))
        .chain(
            fps.iter()
                .enumerate()
                .map(|(i, f)| (format!("h{i}"), f.1.clone())),
        )
        .collect();
    let scaled = |t: &SessionTrace, f: f64| {
        let mut out = t.clone();
        for e in &mut out.events {
            if let TelemetryData::Keystroke { down_ms, up_ms, .. } = &mut e.data {
                *down_ms *= f;
                *up_ms = up_ms.map(|u| u * f);
            }
        }
        out
    };
    type Variant<'a> = (&'a str, Box<dyn Fn(&SessionTrace) -> SessionTrace>);
    let variants: [Variant; 5] = [
        ("exact", Box::new(|t: &SessionTrace| t.clone())),
        (
            "jitter_1ms",
            Box::new(|t: &SessionTrace| jittered(t, 1, 1.0, false)),
        ),
        (
            "rounded_1ms",
            Box::new(|t: &SessionTrace| jittered(t, 2, 0.0, true)),
        ),
        (
            "jitter_3ms",
            Box::new(|t: &SessionTrace| jittered(t, 3, 3.0, false)),
        ),
        (
            "scaled_1.1",
            Box::new(move |t: &SessionTrace| scaled(t, 1.1)),
        ),
    ];
    for (name, f) in &variants {
        let mut hits = 0;
        let mut wrong = 0;
        for (k, (id, _, t)) in sources.iter().enumerate() {
            let r = f(&replay_of(t, 30_000 + k as u64, 2000));
            if let Some(finding) = replay_check(&r, &timing_fingerprint(&r), &pool) {
                hits += 1;
                if !finding.evidence[0]
                    .note
                    .contains(&format!("session {id} ("))
                {
                    wrong += 1;
                }
            }
        }
        println!("replay {name}: {hits}/100 caught, {wrong} naming the wrong session");
    }
    for (k, (kind, fp, t)) in fps.iter().enumerate().take(15) {
        let r = replay_of(t, 9000 + k as u64, 1800);
        let exact = replay_overlap(&timing_fingerprint(&r), fp);
        let j1 = replay_overlap(&timing_fingerprint(&jittered(&r, 1, 1.0, false)), fp);
        let r1 = replay_overlap(&timing_fingerprint(&jittered(&r, 2, 0.0, true)), fp);
        let j3 = replay_overlap(&timing_fingerprint(&jittered(&r, 3, 3.0, false)), fp);
        println!("{kind:?}: exact {exact:.3} jitter1 {j1:.3} round1 {r1:.3} jitter3 {j3:.3}");
    }
}

/// A scripted typist for hand-built cases: gaps and holds from closures.
struct Scripted<G, H>(G, H);

impl<G, H> crate::synth::Typist for Scripted<G, H>
where
    G: FnMut(&mut StdRng) -> f64,
    H: FnMut(&mut StdRng, f64) -> Option<f64>,
{
    fn next_key(
        &mut self,
        rng: &mut StdRng,
        _context: crate::synth::KeyContext,
    ) -> crate::synth::KeyTiming {
        let gap = (self.0)(rng);
        crate::synth::KeyTiming {
            gap_ms: gap,
            hold_ms: (self.1)(rng, gap),
        }
    }
}

fn scripted_trace<G, H>(seed: u64, gap: G, hold: H) -> SessionTrace
where
    G: FnMut(&mut StdRng) -> f64,
    H: FnMut(&mut StdRng, f64) -> Option<f64>,
{
    let mut rng = StdRng::seed_from_u64(seed);
    let text = code_like_text(&mut rng, 2000);
    let mut typist = Scripted(gap, hold);
    trace_of(keystroke_trace_with_corrections(
        &mut rng,
        &mut typist,
        &text,
        start(),
        0.0,
    ))
}

fn fired(report: &DetectorReport, rule: &str) -> bool {
    check(report, rule).is_some_and(|c| c.fired)
}

fn assert_silent(report: &DetectorReport, rule: &str) {
    assert!(
        !fired(report, rule),
        "{rule} fired on an honest trace: {:?}",
        check(report, rule)
    );
}

// ---- skipping -------------------------------------------------------------------------------

#[test]
fn a_session_without_consent_to_keystroke_dynamics_is_skipped() {
    // Arrange
    let mut trace = honest_trace(HonestTyping::Typical, 1, 2000);
    trace.consent.keystroke_dynamics = false;

    // Act
    let report = analyse(&trace);

    // Assert
    assert_eq!(
        report.skipped.as_deref(),
        Some("the candidate did not consent to keystroke dynamics")
    );
    assert!(report.checks.is_empty() && report.findings.is_empty());
    assert!(timing_fingerprint(&trace).is_empty());
}

#[test]
fn a_session_with_too_few_keystrokes_is_skipped() {
    // Arrange
    let trace = adversary_trace(TimingAdversary::ConstantInterval, 2, 120);

    // Act
    let report = analyse(&trace);

    // Assert
    assert!(report.skipped.unwrap().contains("too few keystrokes"));
}

// ---- each rule on the case built for it, silent on the honest look-alike ---------------------

#[test]
fn interval_spread_fires_on_a_constant_interval_and_not_on_a_fast_typist() {
    // Arrange
    let bot = adversary_trace(TimingAdversary::ConstantInterval, 3, 2000);
    let human = honest_trace(HonestTyping::Fast, 3, 2000);

    // Act
    let (bot, human) = (analyse(&bot), analyse(&human));

    // Assert
    assert!(fired(&bot, "log_iki_sd_low") && fired(&bot, "iki_cv_low"));
    assert_silent(&human, "log_iki_sd_low");
    assert_silent(&human, "iki_cv_low");
}

#[test]
fn negative_log_skew_fires_on_uniform_gaps_and_not_on_a_slow_typist() {
    // Arrange: gaps uniform in 60..400 ms, a bounded range with no tail.
    use rand::Rng;
    let bot = scripted_trace(
        4,
        |r| r.random_range(60.0..400.0),
        |r, _| Some(r.random_range(40.0..120.0)),
    );
    let human = honest_trace(HonestTyping::Slow, 4, 2000);

    // Act
    let (bot, human) = (analyse(&bot), analyse(&human));

    // Assert
    assert!(
        fired(&bot, "log_iki_skew_negative"),
        "{:?}",
        check(&bot, "log_iki_skew_negative")
    );
    assert_silent(&human, "log_iki_skew_negative");
}

#[test]
fn discrete_values_fire_on_a_bot_choosing_from_three_delays_and_not_on_a_coarse_timer() {
    // Arrange: delays from {90, 140, 210} ms plus sub-ms scheduling noise (fine timer).
    use rand::Rng;
    let bot = scripted_trace(
        5,
        |r| [90.0, 140.0, 210.0][r.random_range(0..3)] + r.random_range(0.0..0.4),
        |r, _| Some(r.random_range(40.0..80.0)),
    );
    let coarse: Vec<SessionTrace> = (0..30)
        .map(|s| honest_trace(HonestTyping::CoarseTimer, 50 + s, 2000))
        .collect();

    // Act
    let bot = analyse(&bot);

    // Assert
    assert!(
        fired(&bot, "iki_values_discrete"),
        "{:?}",
        check(&bot, "iki_values_discrete")
    );
    for trace in &coarse {
        let report = analyse(trace);
        assert_silent(&report, "iki_values_discrete");
        assert!(!flagged(&report), "quantisation flagged an honest trace");
    }
}

#[test]
fn hold_spread_fires_on_a_fixed_hold_and_not_on_a_typist_behind_a_16_ms_timer() {
    // Arrange
    use rand::Rng;
    let bot = scripted_trace(6, |r| 150.0 * r.random_range(0.5..2.0), |_, _| Some(45.0));
    // A 16.67 ms-grid honest typist (the grid is drawn per person).
    let human = (0..40u64)
        .map(|s| honest_trace(HonestTyping::CoarseTimer, 600 + s, 2000))
        .map(|t| (analyse(&t), t))
        .find(|(r, _)| {
            (r.metrics.as_ref().unwrap()["timer_grid_ms"]
                .as_f64()
                .unwrap()
                - 16.67)
                .abs()
                < 0.01
        })
        .map(|(r, _)| r)
        .expect("a 16.67 ms typist");

    // Act
    let bot = analyse(&bot);

    // Assert
    assert!(fired(&bot, "hold_log_sd_low"));
    assert!(check(&human, "hold_log_sd_low").is_some());
    assert_silent(&human, "hold_log_sd_low");
}

#[test]
fn missing_key_ups_fire_on_a_bot_without_key_ups_and_not_on_honest_rare_losses() {
    // Arrange: an honest typist loses at most a few key-ups; this bot sends none.
    use rand::Rng;
    let bot = scripted_trace(7, |r| 150.0 * r.random_range(0.5..2.0), |_, _| None);
    let humans: Vec<SessionTrace> = (0..20)
        .map(|s| honest_trace(HonestTyping::Typical, 70 + s, 2000))
        .collect();

    // Act
    let bot = analyse(&bot);

    // Assert
    assert!(fired(&bot, "key_up_missing_share"));
    for human in &humans {
        assert_silent(&analyse(human), "key_up_missing_share");
    }
}

#[test]
fn absent_rollover_fires_on_fast_sequential_automation_and_not_on_slow_or_fast_typists() {
    // Arrange: human-like fast gaps and holds, but each key is released before the next press
    // (the next gap is drawn one key ahead).
    use rand::Rng;
    let mut next = 110.0;
    let bot = scripted_trace(
        8,
        |r| {
            let gap = next;
            next = crate::synth::log_normal(r, 110.0, 0.4) + 10.0;
            gap
        },
        |_, _| None,
    );
    let bot = {
        // Holds: human-like, cut to end 3 ms before the next key-down.
        let mut rng = StdRng::seed_from_u64(80);
        let mut trace = bot;
        let downs: Vec<f64> = trace
            .events
            .iter()
            .map(|e| match e.data {
                TelemetryData::Keystroke { down_ms, .. } => down_ms,
                _ => unreachable!(),
            })
            .collect();
        for (i, e) in trace.events.iter_mut().enumerate() {
            if let TelemetryData::Keystroke { down_ms, up_ms, .. } = &mut e.data {
                let hold: f64 = rng.random_range(60.0..120.0);
                let limit = downs.get(i + 1).map_or(hold, |d| d - *down_ms - 3.0);
                *up_ms = Some(*down_ms + hold.min(limit).max(1.0));
            }
        }
        trace
    };
    let slow = honest_trace(HonestTyping::Slow, 8, 2000);
    let fast = honest_trace(HonestTyping::Fast, 8, 2000);

    // Act
    let (bot, slow, fast) = (analyse(&bot), analyse(&slow), analyse(&fast));

    // Assert
    assert!(
        fired(&bot, "rollover_absent"),
        "{:?}",
        check(&bot, "rollover_absent")
    );
    assert_silent(&slow, "rollover_absent");
    assert_silent(&fast, "rollover_absent");
}

#[test]
fn low_serial_correlation_fires_on_independent_sampling_and_not_on_a_typical_typist() {
    // Arrange
    let bot = adversary_trace(TimingAdversary::IndependentHumanLike, 9, 2000);
    let human = honest_trace(HonestTyping::Typical, 9, 2000);

    // Act
    let (bot, human) = (analyse(&bot), analyse(&human));

    // Assert
    assert!(fired(&bot, "iki_serial_correlation_low"));
    assert_silent(&human, "iki_serial_correlation_low");
}

#[test]
fn absent_line_start_pauses_fire_without_context_and_not_on_a_non_native_writer() {
    // Arrange
    let bot = adversary_trace(TimingAdversary::IndependentHumanLike, 10, 2000);
    let human = honest_trace(HonestTyping::NonNative, 10, 2000);

    // Act
    let (bot, human) = (analyse(&bot), analyse(&human));

    // Assert
    assert!(fired(&bot, "line_start_pause_absent"));
    assert_silent(&human, "line_start_pause_absent");
}

#[test]
fn a_coarse_100_ms_timer_makes_interval_and_hold_rules_not_applicable_instead_of_firing() {
    // Arrange
    let coarse = (0..40u64)
        .map(|s| honest_trace(HonestTyping::CoarseTimer, 700 + s, 2000))
        .map(|t| analyse(&t))
        .find(|r| r.metrics.as_ref().unwrap()["timer_grid_ms"].as_f64() == Some(100.0))
        .expect("a 100 ms typist");

    // Act
    let not_applicable = coarse.metrics.as_ref().unwrap()["not_applicable"]
        .as_array()
        .unwrap();

    // Assert
    assert!(check(&coarse, "log_iki_sd_low").is_none());
    assert!(check(&coarse, "hold_log_sd_low").is_none());
    assert!(not_applicable.iter().any(|n| n["rule"] == "log_iki_sd_low"));
    assert!(!flagged(&coarse));
}

// ---- the composite ------------------------------------------------------------------------------

#[test]
fn a_single_rule_never_flags() {
    // Arrange: a per-key-pair sampler has human-like marginals and context pauses; only the
    // serial correlation is off.
    let trace = adversary_trace(TimingAdversary::PerKeyPair, 11, 2000);

    // Act
    let report = analyse(&trace);

    // Assert
    assert!(fired(&report, "iki_serial_correlation_low"));
    assert!(report.findings.is_empty());
}

#[test]
fn the_composite_never_fires_on_300_honest_traces_of_mixed_profiles() {
    // Arrange
    let traces = (0..300u64).map(|s| {
        let kind = HonestTyping::ALL[(s % 5) as usize];
        (
            kind,
            honest_trace(kind, 1_000 + s, 1500 + (s as usize * 53) % 1500),
        )
    });

    // Act
    let flagged: Vec<(HonestTyping, u64)> = traces
        .enumerate()
        .filter(|(_, (_, t))| flagged(&analyse(t)))
        .map(|(i, (k, _))| (k, i as u64))
        .collect();

    // Assert
    assert!(flagged.is_empty(), "honest traces flagged: {flagged:?}");
}

#[test]
fn the_composite_flags_constant_and_jitter_samplers_and_never_on_serial_correlation_alone() {
    // Arrange
    let kinds = [
        TimingAdversary::ConstantInterval,
        TimingAdversary::UniformJitter,
    ];

    for kind in kinds {
        // Act
        let hits = (0..30u64)
            .filter(|s| flagged(&analyse(&adversary_trace(kind.clone(), 2_000 + s, 2000))))
            .count();

        // Assert
        assert!(hits >= 28, "{}: {hits}/30", kind.name());
    }

    // An independent sampler's serial correlation is near 0, as it is for many honest writers
    // in real composition logs: it supports a finding, never makes one.
    let mut serial_alone = 0;
    for s in 0..30u64 {
        let report = analyse(&adversary_trace(
            TimingAdversary::IndependentHumanLike,
            2_000 + s,
            2000,
        ));
        let families = families_fired(&report);
        let primary = families
            .iter()
            .filter(|f| f.as_str() != "serial_correlation")
            .count();
        assert_eq!(flagged(&report), primary >= 2, "{families:?}");
        if families.iter().any(|f| f == "serial_correlation") && primary == 1 {
            // Serial correlation and one other family: two families, no finding.
            serial_alone += 1;
            assert!(!flagged(&report));
        }
    }
    assert!(
        serial_alone > 0,
        "no sampler had serial correlation and one other family"
    );
}

fn families_fired(report: &DetectorReport) -> Vec<String> {
    report.metrics.as_ref().unwrap()["families_fired"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_finding_names_its_rules_and_cites_bursts_a_reviewer_can_replay() {
    // Arrange
    let trace = adversary_trace(TimingAdversary::ConstantInterval, 12, 2000);

    // Act
    let report = analyse(&trace);

    // Assert
    let finding = &report.findings[0];
    assert_eq!(finding.rule, "independent_rules_agree");
    assert_eq!(finding.level, FindingLevel::Major);
    assert!(finding.measured >= 3.0 && finding.threshold == 2.0);
    assert!(finding.supporting.iter().all(|c| c.fired));
    assert!(!finding.evidence.is_empty() && finding.evidence.len() <= 3);
    let last = trace.events.last().unwrap().seq;
    for e in &finding.evidence {
        assert!(1 <= e.from_seq && e.from_seq < e.to_seq && e.to_seq <= last);
        assert_eq!(e.replay_seq, e.from_seq);
        let event = &trace.events[(e.from_seq - 1) as usize];
        assert_eq!(e.at_ms, trace.at_ms(event.ts));
        assert!(e.note.contains("median gap"));
    }
    // Round-trips as JSON (no NaN in checks).
    let json = serde_json::to_string(&report).unwrap();
    let back: DetectorReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back.findings.len(), 1);
}

#[test]
fn two_agreeing_families_give_review_and_three_give_major() {
    // Arrange: samplers of every kind reach two or more families.
    let reports: Vec<DetectorReport> = (0..20u64)
        .flat_map(|s| {
            [
                TimingAdversary::IndependentHumanLike,
                TimingAdversary::UniformJitter,
                TimingAdversary::ConstantInterval,
            ]
            .map(|kind| analyse(&adversary_trace(kind, 3_000 + s, 2000)))
        })
        .collect();

    // Act
    let levels: Vec<(usize, usize, FindingLevel)> = reports
        .iter()
        .filter_map(|r| {
            r.findings
                .first()
                .map(|f| (f.measured as usize, families_fired(r).len(), f.level))
        })
        .collect();

    // Assert: the finding counts the families other than serial correlation (at least 2); it is
    // Major with three families fired, serial correlation included.
    assert!(levels.iter().any(|(_, all, _)| *all == 2));
    assert!(levels.iter().any(|(_, all, _)| *all >= 3));
    for (primary, all, level) in levels {
        assert!(primary >= 2 && primary <= all);
        let expected = if all >= 3 {
            FindingLevel::Major
        } else {
            FindingLevel::Review
        };
        assert_eq!(level, expected);
    }
}

// ---- replay across sessions ---------------------------------------------------------------------

/// `b` appended to `a`: seqs renumbered, times shifted to follow `a` after a ten-second pause.
fn concat(a: &SessionTrace, b: &SessionTrace) -> SessionTrace {
    let last = a.events.last().expect("events");
    let last_down = a
        .events
        .iter()
        .rev()
        .find_map(|e| match e.data {
            TelemetryData::Keystroke { down_ms, .. } => Some(down_ms),
            _ => None,
        })
        .unwrap_or(0.0);
    let first_ts = b.events[0].ts;
    let first_down = b
        .events
        .iter()
        .find_map(|e| match e.data {
            TelemetryData::Keystroke { down_ms, .. } => Some(down_ms),
            _ => None,
        })
        .unwrap_or(0.0);
    let mut out = a.clone();
    for e in &b.events {
        let mut e = e.clone();
        e.seq += last.seq;
        e.ts = last.ts + chrono::Duration::seconds(10) + (e.ts - first_ts);
        if let TelemetryData::Keystroke { down_ms, up_ms, .. } = &mut e.data {
            *down_ms = *down_ms - first_down + last_down + 10_000.0;
            if let Some(u) = up_ms {
                *u = *u - first_down + last_down + 10_000.0;
            }
        }
        out.events.push(e);
    }
    out
}

#[test]
fn a_replayed_session_is_caught_and_names_the_source() {
    // Arrange
    let source = honest_trace(HonestTyping::Typical, 13, 2500);
    let replay = replay_of(&source, 14, 2000);
    let others = vec![
        (
            "honest-1".to_string(),
            timing_fingerprint(&honest_trace(HonestTyping::Fast, 15, 2000)),
        ),
        ("source-session".to_string(), timing_fingerprint(&source)),
    ];

    // Act
    let finding =
        replay_check(&replay, &timing_fingerprint(&replay), &others).expect("replay caught");

    // Assert
    assert_eq!(finding.rule, "timing_replayed");
    assert!(finding.measured > 0.9);
    assert_eq!(finding.related_session.as_deref(), Some("source-session"));
    assert!(!finding.evidence.is_empty() && finding.evidence.len() <= 3);
    for e in &finding.evidence {
        assert!(e.note.contains("of session source-session ("), "{}", e.note);
    }
}

#[test]
fn replay_evidence_points_at_the_matching_stretch_in_both_sessions() {
    // Arrange: an honest first half, then the source's timing replayed onto new text.
    let source = honest_trace(HonestTyping::Typical, 13, 2500);
    let own_half = honest_trace(HonestTyping::Slow, 21, 1500);
    let replayed_half = replay_of(&source, 14, 1500);
    let session = concat(&own_half, &replayed_half);
    let boundary = own_half.events.last().unwrap().seq;
    let source_keys: Vec<u64> = keys(&source).iter().map(|k| k.seq).collect();
    let others = vec![("source-session".to_string(), timing_fingerprint(&source))];

    // Act
    let finding =
        replay_check(&session, &timing_fingerprint(&session), &others).expect("replay caught");

    // Assert: every cited stretch lies in the replayed half, starts at a real replay position,
    // and names a seq range of key presses in the source.
    for e in &finding.evidence {
        assert!(e.from_seq > boundary, "{e:?} before seq {boundary}");
        assert!(e.to_seq >= e.from_seq && e.replay_seq == e.from_seq);
        assert!(e.at_ms > 0, "{e:?}");
        let range = e
            .note
            .split("matches seq ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .expect("the other session's range");
        let (from, to) = range.split_once('–').expect("a range");
        let (from, to): (u64, u64) = (from.parse().unwrap(), to.parse().unwrap());
        assert!(from <= to && source_keys.contains(&from) && source_keys.contains(&to));
    }
}

#[test]
fn a_replay_with_one_ms_jitter_or_rounding_is_still_caught() {
    // Arrange
    let source = honest_trace(HonestTyping::Slow, 16, 2500);
    let replay = replay_of(&source, 17, 2000);
    let others = vec![("source".to_string(), timing_fingerprint(&source))];

    // Act
    let jitter = jittered(&replay, 1, 1.0, false);
    let with_jitter = replay_check(&jitter, &timing_fingerprint(&jitter), &others);
    let round = jittered(&replay, 2, 0.0, true);
    let rounded = replay_check(&round, &timing_fingerprint(&round), &others);

    // Assert
    assert!(with_jitter.is_some() && rounded.is_some());
}

#[test]
fn independent_honest_sessions_do_not_match_each_other() {
    // Arrange: 40 honest sessions of all profiles, including coarse timers.
    let fingerprints: Vec<(String, Vec<TimingGram>)> = (0..40u64)
        .map(|s| {
            let kind = HonestTyping::ALL[(s % 5) as usize];
            (
                format!("s{s}"),
                timing_fingerprint(&honest_trace(kind, 4_000 + s, 2000)),
            )
        })
        .collect();

    for (i, (_, own)) in fingerprints.iter().enumerate() {
        let trace = SessionTrace::default();
        let others: Vec<(String, Vec<TimingGram>)> = fingerprints
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, o)| o.clone())
            .collect();

        // Act
        let finding = replay_check(&trace, own, &others);

        // Assert
        assert!(finding.is_none(), "honest session {i} matched: {finding:?}");
        assert!(own.len() <= FINGERPRINT_SIZE);
    }
}

#[test]
fn the_fingerprint_is_a_sorted_deduplicated_bottom_k_sketch() {
    // Arrange
    let trace = honest_trace(HonestTyping::Typical, 18, 2500);

    // Act
    let fp = timing_fingerprint(&trace);

    // Assert
    assert_eq!(fp.len(), FINGERPRINT_SIZE);
    assert!(fp.windows(2).all(|w| w[0][0] < w[1][0]));
    assert!(fp.iter().all(|g| g[1] <= g[2]));
    assert_eq!(fp, timing_fingerprint(&trace));
}
