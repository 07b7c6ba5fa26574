//! Measuring the detectors: `clarity integrity eval`.
//!
//! Generates labelled synthetic sessions from a seed — honest candidates (five typing profiles ×
//! five working styles × three camera conditions, seven tasks) and adversaries of increasing
//! difficulty — runs the same suite the analysis worker runs, and reports:
//!
//! - the **false-positive rate** on honest sessions (tier at least "review suggested"), with a
//!   Wilson 95% confidence interval, overall, per profile and per detector;
//! - the **recall** per adversary: the share of its sessions raised to at least "review
//!   suggested" *by the detector meant to catch it* (a session flagged for another reason does
//!   not count as caught), with its interval, and the share flagged for any reason;
//! - per task, the similarity scores of independent honest pairs against disguised copies, and
//!   the threshold in use.
//!
//! Cross-session detectors see what they would see in production: each session is compared with
//! the honest sessions of the same task generated before it (the copy and replay adversaries'
//! sources are among them).

use std::collections::BTreeMap;

use chrono::{Duration, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use super::synth::face::{face_checks, merge, FaceScenario};
use super::synth::timing::{self, HonestTyping, TimingAdversary};
use super::synth::{code, sessions};
use super::{similarity, suite, SessionTrace, Tier};
use clarity_domain::assessment::IntegrityPolicy;
use clarity_domain::session::{ConsentScopes, SubmittedFile};
use clarity_domain::telemetry::TelemetryEvent;

/// How much to generate.
#[derive(Debug, Clone)]
pub struct EvalSettings {
    /// Honest sessions per typing profile (five profiles).
    pub honest_per_profile: usize,
    /// Sessions per adversary.
    pub per_adversary: usize,
    pub seed: u64,
}

/// One row of a table: `n` sessions, `hits` of them counted.
#[derive(Debug, Clone, PartialEq)]
pub struct Rate {
    pub n: usize,
    pub hits: usize,
}

impl Rate {
    /// The observed proportion.
    pub fn rate(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.hits as f64 / self.n as f64
        }
    }

    /// Wilson score interval at 95%.
    pub fn wilson(&self) -> (f64, f64) {
        wilson(self.hits, self.n)
    }
}

/// Wilson score interval for `hits` out of `n` at 95% confidence.
pub fn wilson(hits: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let z = 1.959_963_984_540_054_f64;
    let n_f = n as f64;
    let p = hits as f64 / n_f;
    let denom = 1.0 + z * z / n_f;
    let centre = (p + z * z / (2.0 * n_f)) / denom;
    let half = z * ((p * (1.0 - p) / n_f) + z * z / (4.0 * n_f * n_f)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// An adversary's row.
#[derive(Debug, Clone)]
pub struct AdversaryRow {
    pub name: &'static str,
    pub difficulty: &'static str,
    /// The detector meant to catch it.
    pub detector: &'static str,
    /// Caught by that detector (tier at least review suggested and the detector fired).
    pub caught: Rate,
    /// Flagged for any reason.
    pub flagged: Rate,
    /// Raised to major concerns.
    pub major: Rate,
}

/// Similarity per task.
#[derive(Debug, Clone)]
pub struct TaskSimilarity {
    pub task: usize,
    pub honest_pairs: usize,
    pub honest_max: f64,
    pub honest_p99: f64,
    pub copies: usize,
    pub copies_min: f64,
    pub threshold: f64,
}

/// Everything `clarity integrity eval` measured.
#[derive(Debug, Clone)]
pub struct EvalReport {
    pub settings: EvalSettings,
    pub suite_version: String,
    /// Honest sessions flagged (tier at least review suggested), overall.
    pub honest: Rate,
    pub honest_major: Rate,
    /// By typing profile and by working style.
    pub honest_by_profile: BTreeMap<&'static str, Rate>,
    pub honest_by_style: BTreeMap<&'static str, Rate>,
    /// How often each detector fired (any finding of level review or major) on honest sessions.
    pub honest_by_detector: BTreeMap<String, Rate>,
    /// How often each `detector/rule` finding (review or major) appeared on honest sessions.
    pub honest_by_rule: BTreeMap<String, usize>,
    pub adversaries: Vec<AdversaryRow>,
    pub similarity: Vec<TaskSimilarity>,
    /// Events generated in total.
    pub events: usize,
}

/// The catalogue id of synthetic task `task` (catalogue order).
pub fn task_assessment_id(task: usize) -> Uuid {
    Uuid::from_u128(0xc1a7_1700_0000_4000_8000_0000_0000_0001 + task as u128)
}

struct Generated {
    trace: SessionTrace,
    task: usize,
}

struct Pool {
    code: Vec<Vec<(String, similarity::Fingerprints)>>,
    files: Vec<Vec<Vec<SubmittedFile>>>,
    timing: Vec<(String, Vec<super::keystroke::TimingGram>)>,
    timings: Vec<Vec<TelemetryEvent>>,
}

fn start_time(rng: &mut StdRng) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 10, 1, 9, 0, 0).unwrap()
        + Duration::minutes(rng.random_range(0..60 * 24 * 50))
}

fn with_face(
    rng: &mut StdRng,
    events: Vec<TelemetryEvent>,
    scenario: FaceScenario,
) -> Vec<TelemetryEvent> {
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        return events;
    };
    let (start, end) = (first.ts, last.ts);
    let (checks, _) = face_checks(rng, scenario, start, end);
    merge(events, checks)
}

fn trace(events: Vec<TelemetryEvent>, starter: &[SubmittedFile]) -> SessionTrace {
    SessionTrace {
        submission: None,
        started_at: events.first().map(|e| e.ts - Duration::seconds(5)),
        events,
        consent: ConsentScopes {
            keystroke_dynamics: true,
            face_continuity: true,
        },
        starter_files: starter.to_vec(),
    }
}

fn policy() -> IntegrityPolicy {
    IntegrityPolicy {
        keystroke_dynamics: true,
        paste_tracking: true,
        focus_tracking: true,
        face_continuity: true,
        similarity: true,
    }
}

/// Runs the suite on one generated session against the pool; returns the analysis.
fn analyse(g: &Generated, pool: &Pool) -> (super::IntegrityAnalysis, suite::Prints) {
    let own = suite::prints(&g.trace);
    let cohort = suite::Cohort {
        code: pool.code[g.task].clone(),
        timing: pool.timing.clone(),
    };
    let threshold = similarity::task_threshold(task_assessment_id(g.task));
    let analysis = suite::analyse(
        &g.trace,
        &policy(),
        &suite::SuiteSettings::default(),
        threshold,
        &own,
        &cohort,
        "eval",
    );
    (analysis, own)
}

/// One adversary's session for `task`: its process, on an honest-looking face series unless the
/// adversary is about the face.
fn adversary_events(
    name: &str,
    rng: &mut StdRng,
    pool: &Pool,
    task: usize,
    starter: &[SubmittedFile],
    start: chrono::DateTime<Utc>,
) -> Vec<TelemetryEvent> {
    let profile = HonestTyping::ALL[rng.random_range(0..HonestTyping::ALL.len())];
    let mut honest_typist = timing::honest(profile, rng);
    let typical = sessions::HonestStyle::Typical;
    let copy_of = |rng: &mut StdRng, how: code::Disguise| -> Vec<SubmittedFile> {
        let sources = &pool.files[task];
        let source = &sources[rng.random_range(0..sources.len())];
        code::disguise(rng, source, how)
    };
    let events = match name {
        "constant_interval"
        | "uniform_jitter"
        | "independent_human_like"
        | "per_key_pair"
        | "replayed_timing" => {
            let adversary = match name {
                "constant_interval" => TimingAdversary::ConstantInterval,
                "uniform_jitter" => TimingAdversary::UniformJitter,
                "independent_human_like" => TimingAdversary::IndependentHumanLike,
                "per_key_pair" => TimingAdversary::PerKeyPair,
                _ => {
                    let source = &pool.timings[rng.random_range(0..pool.timings.len())];
                    TimingAdversary::Replay(timing::timings_from_events(source))
                }
            };
            let mut typist = timing::adversary(adversary, rng);
            let target = code::solution(rng, task);
            sessions::honest_session(rng, typist.as_mut(), starter, &target, typical, start)
        }
        "pasted_whole" => {
            let target = code::solution(rng, task);
            sessions::pasted_whole_session(rng, honest_typist.as_mut(), starter, &target, start)
        }
        "transcribed" => {
            let target = code::solution(rng, task);
            sessions::transcribed_session(rng, honest_typist.as_mut(), starter, &target, start)
        }
        "impersonation" | "lookalike_impersonation" => {
            let target = code::solution(rng, task);
            let events = sessions::honest_session(
                rng,
                honest_typist.as_mut(),
                starter,
                &target,
                typical,
                start,
            );
            let swap_at = rng.random_range(0.3..0.7);
            let scenario = if name == "impersonation" {
                FaceScenario::Impersonation { swap_at }
            } else {
                FaceScenario::LookalikeImpersonation { swap_at }
            };
            with_face(rng, events, scenario)
        }
        _ => {
            let how = match name {
                "copied_verbatim_retyped" => code::Disguise::default(),
                "copied_renamed" => code::Disguise {
                    rename: true,
                    ..Default::default()
                },
                "copied_renamed_reordered" => code::Disguise {
                    rename: true,
                    reorder: true,
                    dead_code: false,
                },
                "copied_dead_code_only" => code::Disguise {
                    dead_code: true,
                    ..Default::default()
                },
                _ => code::Disguise::ALL,
            };
            let target = copy_of(rng, how);
            sessions::honest_session(
                rng,
                honest_typist.as_mut(),
                starter,
                &target,
                typical,
                start,
            )
        }
    };
    if name.contains("impersonation") {
        events
    } else {
        with_face(rng, events, FaceScenario::Honest)
    }
}

fn flagged(a: &super::IntegrityAnalysis) -> bool {
    a.tier >= Tier::ReviewSuggested
}

fn detector_fired(a: &super::IntegrityAnalysis, detector: &str) -> bool {
    a.findings()
        .any(|f| f.detector == detector && f.level >= super::FindingLevel::Review)
}

/// Generates the sessions and measures.
pub fn run(settings: &EvalSettings) -> EvalReport {
    let mut rng = StdRng::seed_from_u64(settings.seed);
    let starters: Vec<Vec<SubmittedFile>> = (0..code::TASKS).map(code::starter_files).collect();
    let mut pool = Pool {
        code: vec![Vec::new(); code::TASKS],
        files: vec![Vec::new(); code::TASKS],
        timing: Vec::new(),
        timings: Vec::new(),
    };
    let mut events_total = 0usize;
    let mut honest = Rate { n: 0, hits: 0 };
    let mut honest_major = Rate { n: 0, hits: 0 };
    let mut by_profile: BTreeMap<&'static str, Rate> = BTreeMap::new();
    let mut by_style: BTreeMap<&'static str, Rate> = BTreeMap::new();
    let mut by_detector: BTreeMap<String, Rate> = BTreeMap::new();
    let mut by_rule: BTreeMap<String, usize> = BTreeMap::new();
    let faces = [
        FaceScenario::Honest,
        FaceScenario::PoorConditions,
        FaceScenario::StepsAway,
    ];
    let styles = sessions::HonestStyle::ALL;
    let mut i = 0usize;
    for round in 0..settings.honest_per_profile {
        for profile in HonestTyping::ALL {
            let task = i % code::TASKS;
            let style = styles[(round + i / code::TASKS) % styles.len()];
            i += 1;
            let target = code::solution(&mut rng, task);
            let mut typist = timing::honest(profile, &mut rng);
            let start = start_time(&mut rng);
            let events = sessions::honest_session(
                &mut rng,
                typist.as_mut(),
                &starters[task],
                &target,
                style,
                start,
            );
            let events = with_face(&mut rng, events, faces[i % faces.len()]);
            events_total += events.len();
            let g = Generated {
                trace: trace(events, &starters[task]),
                task,
            };
            let (analysis, own) = analyse(&g, &pool);
            let hit = flagged(&analysis);
            honest.n += 1;
            honest.hits += usize::from(hit);
            honest_major.n += 1;
            honest_major.hits += usize::from(analysis.tier == Tier::MajorConcerns);
            for (key, map) in [
                (profile.name(), &mut by_profile),
                (style.name(), &mut by_style),
            ] {
                let r = map.entry(key).or_insert(Rate { n: 0, hits: 0 });
                r.n += 1;
                r.hits += usize::from(hit);
            }
            for f in analysis
                .findings()
                .filter(|f| f.level >= super::FindingLevel::Review)
            {
                let mut key = format!("{}/{}", f.detector, f.rule);
                if !f.supporting.is_empty() {
                    let parts: Vec<&str> = f.supporting.iter().map(|c| c.rule.as_str()).collect();
                    key = format!("{key} ({})", parts.join(" + "));
                }
                *by_rule.entry(key).or_default() += 1;
            }
            for report in &analysis.reports {
                let r = by_detector
                    .entry(report.detector.clone())
                    .or_insert(Rate { n: 0, hits: 0 });
                r.n += 1;
                r.hits += usize::from(detector_fired(&analysis, &report.detector));
            }
            let id = format!("honest-{i}");
            pool.code[task].push((id.clone(), own.code));
            pool.files[task].push(own.files);
            if !own.timing.is_empty() {
                pool.timing.push((id, own.timing));
            }
            pool.timings.push(
                g.trace
                    .events
                    .into_iter()
                    .filter(|e| {
                        matches!(
                            e.data,
                            clarity_domain::telemetry::TelemetryData::Keystroke { .. }
                        )
                    })
                    .collect(),
            );
        }
    }

    let mut adversaries = Vec::new();
    let kinds: [(&'static str, &'static str, &'static str); 14] = [
        ("constant_interval", "easy", "keystroke_timing"),
        ("uniform_jitter", "easy", "keystroke_timing"),
        ("independent_human_like", "hard", "keystroke_timing"),
        ("per_key_pair", "hard", "keystroke_timing"),
        ("replayed_timing", "hard", "keystroke_timing"),
        ("pasted_whole", "easy", "provenance"),
        ("transcribed", "hard", "transcription"),
        ("impersonation", "medium", "face_continuity"),
        ("lookalike_impersonation", "hard", "face_continuity"),
        ("copied_verbatim_retyped", "medium", "similarity"),
        ("copied_renamed", "medium", "similarity"),
        ("copied_renamed_reordered", "medium", "similarity"),
        ("copied_all_disguises", "hard", "similarity"),
        ("copied_dead_code_only", "medium", "similarity"),
    ];
    let mut copy_scores: Vec<Vec<f64>> = vec![Vec::new(); code::TASKS];
    for (name, difficulty, detector) in kinds {
        let mut row = AdversaryRow {
            name,
            difficulty,
            detector,
            caught: Rate { n: 0, hits: 0 },
            flagged: Rate { n: 0, hits: 0 },
            major: Rate { n: 0, hits: 0 },
        };
        for k in 0..settings.per_adversary {
            let task = k % code::TASKS;
            let starter = &starters[task];
            let start = start_time(&mut rng);
            let events = adversary_events(name, &mut rng, &pool, task, starter, start);
            events_total += events.len();
            let g = Generated {
                trace: trace(events, starter),
                task,
            };
            let (analysis, own) = analyse(&g, &pool);
            if detector == similarity::DETECTOR {
                let best = pool.code[task]
                    .iter()
                    .map(|(_, f)| similarity::compare(&own.code, f).score)
                    .fold(0.0, f64::max);
                copy_scores[task].push(best);
            }
            row.caught.n += 1;
            row.caught.hits +=
                usize::from(flagged(&analysis) && detector_fired(&analysis, detector));
            row.flagged.n += 1;
            row.flagged.hits += usize::from(flagged(&analysis));
            row.major.n += 1;
            row.major.hits += usize::from(analysis.tier == Tier::MajorConcerns);
        }
        adversaries.push(row);
    }

    let mut tasks = Vec::new();
    for task in 0..code::TASKS {
        let prints = &pool.code[task];
        let mut scores = Vec::new();
        for a in 0..prints.len() {
            for b in (a + 1)..prints.len() {
                if prints[a].1.comparable(&prints[b].1) {
                    scores.push(similarity::compare(&prints[a].1, &prints[b].1).score);
                }
            }
        }
        scores.sort_by(f64::total_cmp);
        let p99 = scores
            .get(((scores.len() as f64) * 0.99).floor() as usize)
            .or(scores.last())
            .copied()
            .unwrap_or(0.0);
        tasks.push(TaskSimilarity {
            task,
            honest_pairs: scores.len(),
            honest_max: scores.last().copied().unwrap_or(0.0),
            honest_p99: p99,
            copies: copy_scores[task].len(),
            copies_min: copy_scores[task]
                .iter()
                .copied()
                .fold(f64::INFINITY, f64::min),
            threshold: similarity::task_threshold(task_assessment_id(task)),
        });
    }

    EvalReport {
        settings: settings.clone(),
        suite_version: suite::suite_version(&suite::SuiteSettings::default()),
        honest,
        honest_major,
        honest_by_profile: by_profile,
        honest_by_style: by_style,
        honest_by_detector: by_detector,
        honest_by_rule: by_rule,
        adversaries,
        similarity: tasks,
        events: events_total,
    }
}

/// The synthetic generator's sessions as a labelled corpus (`clarity-synth`), in the classes of
/// `integrity/corpora/FORMAT.md` (code copies are left out: they are measured by [`run`]).
pub fn synth_corpus(settings: &EvalSettings) -> super::corpus::Corpus {
    use super::corpus::{Corpus, LabelledSession};
    let mut rng = StdRng::seed_from_u64(settings.seed);
    let starters: Vec<Vec<SubmittedFile>> = (0..code::TASKS).map(code::starter_files).collect();
    let mut pool = Pool {
        code: vec![Vec::new(); code::TASKS],
        files: vec![Vec::new(); code::TASKS],
        timing: Vec::new(),
        timings: Vec::new(),
    };
    let faces = [
        FaceScenario::Honest,
        FaceScenario::PoorConditions,
        FaceScenario::StepsAway,
    ];
    let styles = sessions::HonestStyle::ALL;
    let mut out = Vec::new();
    let mut i = 0usize;
    for round in 0..settings.honest_per_profile {
        for profile in HonestTyping::ALL {
            let task = i % code::TASKS;
            let style = styles[(round + i / code::TASKS) % styles.len()];
            i += 1;
            let target = code::solution(&mut rng, task);
            let mut typist = timing::honest(profile, &mut rng);
            let start = start_time(&mut rng);
            let events = sessions::honest_session(
                &mut rng,
                typist.as_mut(),
                &starters[task],
                &target,
                style,
                start,
            );
            let events = with_face(&mut rng, events, faces[i % faces.len()]);
            pool.timings.push(
                events
                    .iter()
                    .filter(|e| {
                        matches!(
                            e.data,
                            clarity_domain::telemetry::TelemetryData::Keystroke { .. }
                        )
                    })
                    .cloned()
                    .collect(),
            );
            out.push(LabelledSession {
                id: format!("synth-honest-{i}"),
                class: "honest".into(),
                profile: format!("{}/{}", profile.name(), style.name()),
                assessment: TASK_NAMES[task].into(),
                source: None,
                trace: trace(events, &starters[task]),
            });
        }
    }
    let kinds = [
        ("constant_interval", "constant_interval"),
        ("uniform_jitter", "uniform_jitter"),
        ("independent_human_like", "iid_human_like"),
        ("per_key_pair", "humanized_bot"),
        ("replayed_timing", "replayed_timing"),
        ("pasted_whole", "whole_paste"),
        ("transcribed", "transcription"),
        ("impersonation", "face_swap"),
        ("lookalike_impersonation", "face_swap"),
    ];
    for (name, class) in kinds {
        for k in 0..settings.per_adversary {
            let task = k % code::TASKS;
            let starter = &starters[task];
            let start = start_time(&mut rng);
            let before = rng.clone();
            let events = adversary_events(name, &mut rng, &pool, task, starter, start);
            // The replay's source: the honest session whose timing it replays (the same draw
            // `adversary_events` makes first for a replay).
            let source = (name == "replayed_timing").then(|| {
                let mut r = before;
                let _profile: usize = r.random_range(0..HonestTyping::ALL.len());
                let _typist = timing::honest(HonestTyping::ALL[_profile], &mut r);
                format!("synth-honest-{}", r.random_range(0..pool.timings.len()) + 1)
            });
            out.push(LabelledSession {
                id: format!("synth-{name}-{k}"),
                class: class.into(),
                profile: name.into(),
                assessment: TASK_NAMES[task].into(),
                source,
                trace: trace(events, starter),
            });
        }
    }
    Corpus {
        name: "clarity-synth".into(),
        sessions: out,
        face_models: Vec::new(),
        refused: Vec::new(),
    }
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn ci(r: &Rate) -> String {
    let (lo, hi) = r.wilson();
    format!("{} – {}", pct(lo), pct(hi))
}

const TASK_NAMES: [&str; 7] = [
    "REST API Design",
    "Database Schema Optimization",
    "Distributed Cache Strategy",
    "Microservice Orchestration",
    "Real-world Bug Hunt",
    "Async Task Queue",
    "Rate Limiting & Throttling",
];

/// The report as the Markdown committed in `docs/integrity-eval.md`.
pub fn markdown(r: &EvalReport, command: &str) -> String {
    let mut s = String::new();
    s.push_str("# Integrity evaluation\n\n");
    s.push_str(&format!(
        "Generated by `{command}` (suite `{}`), {} synthetic sessions, {} telemetry events. \
         Every number is reproducible from the seed. A session counts as **flagged** when its tier \
         is at least *review suggested*; an adversary counts as **caught** only when the detector \
         meant for it fired (flagged for another reason does not count). Intervals are Wilson 95%.\n\n",
        r.suite_version,
        r.honest.n + r.adversaries.iter().map(|a| a.caught.n).sum::<usize>(),
        r.events
    ));
    s.push_str("## False positives on honest sessions\n\n");
    s.push_str("| honest sessions | n | flagged | rate | 95% CI | major concerns |\n|---|---:|---:|---:|---|---:|\n");
    s.push_str(&format!(
        "| **all** | {} | {} | **{}** | {} | {} |\n",
        r.honest.n,
        r.honest.hits,
        pct(r.honest.rate()),
        ci(&r.honest),
        r.honest_major.hits
    ));
    for (name, rate) in &r.honest_by_profile {
        s.push_str(&format!(
            "| typing: {name} | {} | {} | {} | {} | |\n",
            rate.n,
            rate.hits,
            pct(rate.rate()),
            ci(rate)
        ));
    }
    for (name, rate) in &r.honest_by_style {
        s.push_str(&format!(
            "| style: {name} | {} | {} | {} | {} | |\n",
            rate.n,
            rate.hits,
            pct(rate.rate()),
            ci(rate)
        ));
    }
    s.push_str("\nBy detector (a review- or major-level finding from it, on honest sessions):\n\n");
    s.push_str(
        "| detector | honest sessions | fired | rate | 95% CI |\n|---|---:|---:|---:|---|\n",
    );
    for (name, rate) in &r.honest_by_detector {
        s.push_str(&format!(
            "| {name} | {} | {} | {} | {} |\n",
            rate.n,
            rate.hits,
            pct(rate.rate()),
            ci(rate)
        ));
    }
    if !r.honest_by_rule.is_empty() {
        s.push_str(
            "\nThe rules behind them:\n\n| finding on honest sessions | count |\n|---|---:|\n",
        );
        for (rule, n) in &r.honest_by_rule {
            s.push_str(&format!("| {rule} | {n} |\n"));
        }
    }
    s.push_str("\n## Recall per adversary\n\n");
    s.push_str("| adversary | difficulty | meant for | n | caught | recall | 95% CI | flagged (any) | major concerns |\n|---|---|---|---:|---:|---:|---|---:|---:|\n");
    for a in &r.adversaries {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | **{}** | {} | {} | {} |\n",
            a.name,
            a.difficulty,
            a.detector,
            a.caught.n,
            a.caught.hits,
            pct(a.caught.rate()),
            ci(&a.caught),
            pct(a.flagged.rate()),
            pct(a.major.rate())
        ));
    }
    s.push_str(concat!(
        "\nReading it: *easy* adversaries are what naive scripts and copy-paste do; *hard* ones are ",
        "built to pass the rules (timing sampled per key pair, retyping a source, a look-alike in ",
        "front of the camera, copies disguised three ways). A low recall is reported, not hidden: ",
        "the per-key-pair sampler defeats the timing rules (only its serial correlation stands out, ",
        "and one family never flags), and disguised copies mostly fall under thresholds set to keep ",
        "honest solutions of the same task unflagged.\n"
    ));
    s.push_str("\n## Similarity per task\n\n");
    s.push_str("Scores are the share of fingerprints two submissions have in common (starter code excluded). Honest pairs are independent honest solutions of the same task; copies are the copy adversaries' best score against the pool. Thresholds were calibrated on another seed (`--seed 1`: the highest honest pair plus 0.05), so the false-positive rate above is measured out of sample. On the schema task honest solutions coincide (a fixed schema leaves one way to write each statement), so similarity is switched off there.\n\n");
    s.push_str("| task | honest pairs | honest max | honest p99 | copies | copies min | threshold |\n|---|---:|---:|---:|---:|---:|---:|\n");
    for t in &r.similarity {
        s.push_str(&format!(
            "| {} | {} | {:.3} | {:.3} | {} | {} | {:.2} |\n",
            TASK_NAMES[t.task],
            t.honest_pairs,
            t.honest_max,
            t.honest_p99,
            t.copies,
            if t.copies == 0 {
                "–".to_string()
            } else {
                format!("{:.3}", t.copies_min)
            },
            t.threshold
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_intervals_match_hand_computed_values() {
        // 0 of 1000: upper bound 0.38% (the "rule of three" gives 0.3%).
        let (lo, hi) = wilson(0, 1000);
        assert!(lo.abs() < 1e-12, "{lo}");
        assert!((hi - 0.003_826).abs() < 1e-5, "{hi}");
        // 10 of 100: 5.5% – 17.4%.
        let (lo, hi) = wilson(10, 100);
        assert!((lo - 0.055_229).abs() < 1e-5, "{lo}");
        assert!((hi - 0.174_366).abs() < 1e-5, "{hi}");
    }

    #[test]
    fn a_small_evaluation_runs_and_separates_honest_work_from_blatant_adversaries() {
        let report = run(&EvalSettings {
            honest_per_profile: 4,
            per_adversary: 3,
            seed: 7,
        });
        assert_eq!(report.honest.n, 20);
        assert_eq!(report.honest.hits, 0, "{:?}", report.honest_by_detector);
        let caught = |name: &str| {
            report
                .adversaries
                .iter()
                .find(|a| a.name == name)
                .map(|a| a.caught.hits)
                .unwrap()
        };
        assert_eq!(caught("constant_interval"), 3);
        assert_eq!(caught("pasted_whole"), 3);
        assert_eq!(caught("impersonation"), 3);
        let table = markdown(&report, "test");
        assert!(table.contains("| constant_interval | easy | keystroke_timing | 3 | 3 |"));
    }
}
