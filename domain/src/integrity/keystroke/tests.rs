use chrono::{TimeZone, Utc};
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;
use crate::integrity::synth::timing::{
    adversary, code_like_text, honest, keystroke_trace_with_corrections, timings_from_events,
    HonestTyping, TimingAdversary,
};
use crate::session::ConsentScopes;
use crate::telemetry::TelemetryEvent;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
}

fn trace_of(events: Vec<TelemetryEvent>) -> SessionTrace {
    SessionTrace {
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
    let n = 150u64;
    let mut rows: Vec<(String, DetectorReport)> = Vec::new();
    for kind in HonestTyping::ALL {
        for seed in 0..n {
            let chars = 1500 + (seed as usize * 37) % 1500;
            rows.push((kind.name().to_string(), analyse(&honest_trace(kind, seed, chars))));
        }
    }
    for kind in ADVERSARIES {
        for seed in 0..n {
            rows.push((kind.name().to_string(), analyse(&adversary_trace(kind.clone(), 10_000 + seed, 2000))));
        }
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
        let reports: Vec<&DetectorReport> = rows.iter().filter(|r| r.0 == label).map(|r| &r.1).collect();
        let skipped = reports.iter().filter(|r| r.skipped.is_some()).count();
        let fl = reports.iter().filter(|r| flagged(r)).count();
        let major = reports.iter().filter(|r| r.findings.iter().any(|f| f.level == FindingLevel::Major)).count();
        println!("== {label}: n={} skipped={skipped} flagged={fl} major={major}", reports.len());
        for rule in rules {
            let mut vals: Vec<f64> = reports.iter().filter_map(|r| check(r, rule)).map(|c| c.measured).collect();
            let fired = reports.iter().filter_map(|r| check(r, rule)).filter(|c| c.fired).count();
            vals.sort_by(f64::total_cmp);
            if vals.is_empty() { println!("  {rule:28} n/a"); continue; }
            let q = |p: f64| stats::quantile_sorted(&vals, p);
            println!("  {rule:28} n={:4} fired={:4} min={:.3} p5={:.3} p50={:.3} p95={:.3} max={:.3}", vals.len(), fired, q(0.0), q(0.05), q(0.5), q(0.95), q(1.0));
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
    let fps: Vec<(HonestTyping, Vec<u64>, SessionTrace)> = (0..60u64)
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
                if o > honest_max { println!("honest {:?} vs {:?}: {o:.3}", fps[i].0, fps[j].0); }
                honest_max = honest_max.max(o);
            }
        }
    }
    println!("honest max overlap {honest_max:.4}; fingerprint len {}", fps[0].1.len());
    for (k, (kind, fp, t)) in fps.iter().enumerate().take(15) {
        let r = replay_of(t, 9000 + k as u64, 1800);
        let exact = replay_overlap(&timing_fingerprint(&r), fp);
        let j1 = replay_overlap(&timing_fingerprint(&jittered(&r, 1, 1.0, false)), fp);
        let r1 = replay_overlap(&timing_fingerprint(&jittered(&r, 2, 0.0, true)), fp);
        let j3 = replay_overlap(&timing_fingerprint(&jittered(&r, 3, 3.0, false)), fp);
        println!("{kind:?}: exact {exact:.3} jitter1 {j1:.3} round1 {r1:.3} jitter3 {j3:.3}");
    }
}
