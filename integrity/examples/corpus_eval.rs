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
    let mut dirs = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--synth-seed" => seed = args.next().expect("seed").parse().expect("a number"),
            "--detail" => detail = true,
            "--why" => why = true,
            _ => dirs.push(a),
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
            let analyses = corpus::analyse_all(c, &Tuning::shipped());
            for (s, a) in c.sessions.iter().zip(&analyses) {
                if s.class != "honest" || a.tier == clarity_integrity::Tier::None {
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
    let mut tunings = vec![Tuning::shipped()];
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
