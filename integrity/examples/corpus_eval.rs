//! Measures the detectors on labelled corpora, fitting the keystroke thresholds on each in turn:
//! `cargo run --release -p clarity-integrity --features synth --example corpus_eval -- \
//!  [--synth-seed N] [--detail] <corpus dir>...`
//! (the synthetic generator's corpus `clarity-synth` is always included).

use clarity_integrity::corpus::{self, Tuning};
use clarity_integrity::eval::{synth_corpus, EvalSettings};

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let mut seed = 2026u64;
    let mut detail = false;
    let mut why = false;
    let mut sets: Vec<String> = Vec::new();
    let mut dirs = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--synth-seed" => seed = args.next().expect("seed").parse().expect("a number"),
            "--detail" => detail = true,
            "--why" => why = true,
            "--set" => sets.push(args.next().expect("name=value")),
            _ => dirs.push(a),
        }
    }
    // Experiments: `--set serial_correlation_min=-1` changes a shipped threshold.
    let mut shipped = Tuning::shipped();
    for set in &sets {
        let (name, value) = set.split_once('=').expect("name=value");
        let v: f64 = value.parse().expect("a number");
        let k = &mut shipped.keystroke;
        match name {
            "serial_correlation_min" => k.serial_correlation_min = v,
            "occupancy_min" => k.occupancy_min = v,
            "log_iki_skew_min" => k.log_iki_skew_min = v,
            "key_context_min" => k.key_context_min = v,
            "iki_mode_share_max" => k.iki_mode_share_max = v,
            "hold_mode_share_max" => k.hold_mode_share_max = v,
            "missing_up_max" => k.missing_up_max = v,
            "rollover_fraction" => k.rollover_fraction = v,
            other => panic!("unknown threshold {other}"),
        }
    }
    let started = std::time::Instant::now();
    let mut corpora = vec![synth_corpus(&EvalSettings {
        honest_per_profile: 40,
        per_adversary: 40,
        seed,
    })];
    for d in &dirs {
        corpora.push(corpus::load(std::path::Path::new(d)).unwrap_or_else(|e| panic!("{e}")));
    }
    eprintln!("loaded in {:.1} s", started.elapsed().as_secs_f64());
    if why {
        // Per flagged honest session (shipped thresholds): the families and rules that fired.
        for c in &corpora {
            let analyses = corpus::analyse_all(c, &shipped);
            for (s, a) in c.sessions.iter().zip(&analyses) {
                let flagged = a.tier != clarity_integrity::Tier::None;
                if (s.class == "honest") != flagged {
                    continue;
                }
                if let Some(t) = a.reports.iter().find(|r| r.detector == "transcription") {
                    let checks: Vec<String> = t
                        .checks
                        .iter()
                        .map(|c| {
                            format!(
                                "{}{}={:.3}",
                                if c.fired { "*" } else { "" },
                                c.rule,
                                c.measured
                            )
                        })
                        .collect();
                    println!(
                        "T {} {} {} {} {}",
                        c.name,
                        s.id,
                        s.class,
                        s.profile,
                        checks.join(" ")
                    );
                }
                if let Some(k) = a.reports.iter().find(|r| r.detector == "keystroke_timing") {
                    let m = k.metrics.clone().unwrap_or_default();
                    let pick = |n: &str| m.get(n).map(|v| v.to_string()).unwrap_or_default();
                    let fired: Vec<String> = k
                        .checks
                        .iter()
                        .map(|c| {
                            format!(
                                "{}{}={:.3}",
                                if c.fired { "*" } else { "" },
                                c.rule,
                                c.measured
                            )
                        })
                        .collect();
                    println!(
                        "{} {} {} {} keys={} grid={} skipped={:?} {}",
                        c.name,
                        s.id,
                        s.class,
                        s.profile,
                        pick("keystrokes"),
                        pick("timer_grid_ms"),
                        k.skipped,
                        fired.join(" ")
                    );
                }
                if s.class != "honest" {
                    continue;
                }
                for r in &a.reports {
                    for f in &r.findings {
                        let rules: Vec<String> = f
                            .supporting
                            .iter()
                            .map(|c| format!("{}={:.3}", c.rule, c.measured))
                            .collect();
                        println!(
                            "{} {} {} {}: {}",
                            c.name,
                            s.id,
                            s.profile,
                            f.rule,
                            rules.join(" ")
                        );
                    }
                }
            }
        }
        return;
    }
    let mut tunings = vec![shipped];
    if !sets.is_empty() {
        // Only the changed shipped thresholds.
        let results: Vec<_> = corpora
            .iter()
            .map(|c| corpus::evaluate(c, &tunings[0]))
            .collect();
        println!("{}", corpus::matrix_markdown(&results));
        return;
    }
    tunings.extend(corpora.iter().map(corpus::fit));
    for t in &tunings[1..] {
        eprintln!("fitted on {}: {:?}", t.fitted_on, t.keystroke);
    }
    let mut results = Vec::new();
    for t in &tunings {
        for c in &corpora {
            results.push(corpus::evaluate(c, t));
        }
    }
    println!("{}", corpus::matrix_markdown(&results));
    if detail {
        for r in results.iter().filter(|r| r.fitted_on == "shipped") {
            println!("{}", corpus::detail_markdown(r));
        }
    }
    eprintln!("evaluated in {:.1} s", started.elapsed().as_secs_f64());
}
