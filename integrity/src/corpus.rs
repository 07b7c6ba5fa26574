//! Labelled session corpora written outside the detectors (`integrity/corpora/`, format in
//! `integrity/corpora/FORMAT.md`), and the detectors measured on them.
//!
//! A corpus is read from a directory (`sessions.jsonl`, optional `face_models.json`), every
//! session runs through the same suite the analysis worker runs (cross-session timing compared
//! with the sessions listed before it, as a session is compared at its submission with the
//! organization's sessions finished before it; code
//! similarity is left to the synthetic evaluation, whose copies are built from known sources), and
//! the result counts, per class and profile, the sessions flagged and those caught by the detector
//! meant for them.
//!
//! Keystroke thresholds can be **fitted** on one corpus ([`fit`]) and measured on others, so the
//! tables say how a threshold behaves on sessions it was not chosen on.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::eval::Rate;
use super::{face, keystroke, suite, FindingLevel, IntegrityAnalysis, SessionTrace, Tier};
use clarity_domain::assessment::IntegrityPolicy;
use clarity_domain::session::{ConsentScopes, SubmittedFile};
use clarity_domain::telemetry::TelemetryEvent;

/// The classes a corpus labels its sessions with, and the detector meant to catch each.
pub const CLASSES: [(&str, Option<&str>); 9] = [
    ("honest", None),
    ("constant_interval", Some(keystroke::DETECTOR)),
    ("uniform_jitter", Some(keystroke::DETECTOR)),
    ("iid_human_like", Some(keystroke::DETECTOR)),
    ("humanized_bot", Some(keystroke::DETECTOR)),
    ("replayed_timing", Some(keystroke::DETECTOR)),
    ("whole_paste", Some(super::provenance::DETECTOR)),
    ("transcription", Some(super::transcription::DETECTOR)),
    ("face_swap", Some(face::DETECTOR)),
];

/// The detector meant to catch `class` (`None` for honest work or an unknown class).
pub fn aimed_detector(class: &str) -> Option<&'static str> {
    CLASSES
        .iter()
        .find(|(c, _)| *c == class)
        .and_then(|(_, d)| *d)
}

#[derive(Debug, Deserialize)]
struct RawFile {
    path: String,
    content: String,
}

#[derive(Debug, Deserialize)]
struct RawSession {
    id: String,
    class: String,
    #[serde(default)]
    profile: String,
    #[serde(default)]
    assessment: String,
    #[serde(default)]
    source: Option<String>,
    consent: ConsentScopes,
    started_at: DateTime<Utc>,
    #[serde(default)]
    starter_files: Vec<RawFile>,
    events: Vec<TelemetryEvent>,
}

/// Labelled calibration scores of one face model, as an operator registers them.
#[derive(Debug, Clone, Deserialize)]
pub struct FaceModelScores {
    pub model_id: String,
    pub model_version: String,
    pub genuine: Vec<f64>,
    pub impostor: Vec<f64>,
}

/// One labelled session.
#[derive(Debug, Clone)]
pub struct LabelledSession {
    pub id: String,
    pub class: String,
    pub profile: String,
    pub assessment: String,
    pub source: Option<String>,
    pub trace: SessionTrace,
}

/// A corpus read from its directory.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// The directory's name (`g1`, `clarity-synth`, …).
    pub name: String,
    pub sessions: Vec<LabelledSession>,
    pub face_models: Vec<FaceModelScores>,
    /// Lines that are not a session the API would accept (an event outside the wire format):
    /// left out and reported, with the reason.
    pub refused: Vec<String>,
}

/// Reads `dir/sessions.jsonl` and `dir/face_models.json`. A line that is not JSON, names a class
/// outside [`CLASSES`] or breaks the format's ordering rules is an error (the corpus is wrong,
/// not the detectors); a session with an event the API's wire format refuses (e.g. a negative
/// count) is left out and listed in `refused`, as the API would have refused its telemetry.
pub fn load(dir: &Path) -> Result<Corpus, String> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string());
    let path = dir.join("sessions.jsonl");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut sessions = Vec::new();
    let mut refused = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?;
        let raw: RawSession = match serde_json::from_value(value) {
            Ok(raw) => raw,
            Err(e) => {
                refused.push(format!("line {}: {e}", i + 1));
                continue;
            }
        };
        if !CLASSES.iter().any(|(c, _)| *c == raw.class) {
            return Err(format!(
                "{}:{}: unknown class {:?}",
                path.display(),
                i + 1,
                raw.class
            ));
        }
        for (k, e) in raw.events.iter().enumerate() {
            if e.seq != k as u64 + 1 {
                return Err(format!(
                    "{}:{}: session {} has seq {} at position {}",
                    path.display(),
                    i + 1,
                    raw.id,
                    e.seq,
                    k + 1
                ));
            }
        }
        sessions.push(LabelledSession {
            id: raw.id,
            class: raw.class,
            profile: raw.profile,
            assessment: raw.assessment,
            source: raw.source,
            trace: SessionTrace {
                started_at: Some(raw.started_at),
                events: raw.events,
                consent: raw.consent,
                starter_files: raw
                    .starter_files
                    .into_iter()
                    .map(|f| SubmittedFile {
                        path: f.path,
                        content: f.content,
                    })
                    .collect(),
                submission: None,
            },
        });
    }
    let faces = dir.join("face_models.json");
    let face_models = if faces.exists() {
        let text =
            std::fs::read_to_string(&faces).map_err(|e| format!("{}: {e}", faces.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", faces.display()))?
    } else {
        Vec::new()
    };
    Ok(Corpus {
        name,
        sessions,
        face_models,
        refused,
    })
}

/// What the detectors were run with.
#[derive(Debug, Clone, Default)]
pub struct Tuning {
    /// Where the keystroke thresholds came from (`shipped`, or the corpus they were fitted on).
    pub fitted_on: String,
    pub keystroke: keystroke::Thresholds,
}

impl Tuning {
    /// The thresholds Clarity ships.
    pub fn shipped() -> Self {
        Self {
            fitted_on: "shipped".into(),
            keystroke: keystroke::Thresholds::default(),
        }
    }
}

/// A class's (or profile's) row.
#[derive(Debug, Clone)]
pub struct ClassRow {
    pub class: String,
    pub profile: Option<String>,
    /// Flagged: tier at least review suggested.
    pub flagged: Rate,
    /// Caught by the detector meant for the class (honest: unused).
    pub caught: Rate,
}

/// Everything measured on one corpus with one tuning.
#[derive(Debug, Clone)]
pub struct CorpusResult {
    pub corpus: String,
    pub fitted_on: String,
    /// One row per class (profile `None`), then one per (class, profile).
    pub rows: Vec<ClassRow>,
    /// On honest sessions: `detector/rule` findings at review level or above, and how often.
    pub honest_rules: BTreeMap<String, usize>,
    /// Face models used by the corpus and their derived calibration (or why none).
    pub face_calibrations: Vec<Result<face::Calibration, String>>,
    pub sessions: usize,
    pub events: usize,
    /// Sessions left out because the API would refuse their telemetry.
    pub refused: Vec<String>,
    /// Whether the corpus recorded key-ups (without, the key-up rule was left out).
    pub key_ups: bool,
}

impl CorpusResult {
    /// The row of `class` (all profiles).
    pub fn class(&self, class: &str) -> Option<&ClassRow> {
        self.rows
            .iter()
            .find(|r| r.class == class && r.profile.is_none())
    }
}

fn policy() -> IntegrityPolicy {
    IntegrityPolicy {
        keystroke_dynamics: true,
        paste_tracking: true,
        focus_tracking: true,
        face_continuity: true,
        // Code similarity needs known copy sources: measured by the synthetic evaluation.
        similarity: false,
    }
}

/// Derives the face calibrations a corpus registers.
pub fn face_calibrations(corpus: &Corpus) -> Vec<Result<face::Calibration, String>> {
    corpus
        .face_models
        .iter()
        .map(|m| {
            face::calibrate(&m.model_id, &m.model_version, &m.genuine, &m.impostor)
                .map_err(|e| format!("{} v{}: {e}", m.model_id, m.model_version))
        })
        .collect()
}

/// Whether any key press of the corpus has a key-up. Corpora converted from keystroke logs that
/// never recorded key releases have none: there the key-up rule measures the logger, not the
/// typist, and is left out ([`analyse_all`]).
pub fn has_key_ups(corpus: &Corpus) -> bool {
    corpus.sessions.iter().any(|s| {
        s.trace.events.iter().any(|e| {
            matches!(
                e.data,
                clarity_domain::telemetry::TelemetryData::Keystroke { up_ms: Some(_), .. }
            )
        })
    })
}

/// Runs the suite over every session of the corpus.
pub fn analyse_all(corpus: &Corpus, tuning: &Tuning) -> Vec<IntegrityAnalysis> {
    let mut keystroke = tuning.keystroke.clone();
    if !has_key_ups(corpus) {
        // A share above 1 cannot happen: the rule is measured and never fires.
        keystroke.missing_up_max = 1.0;
    }
    let calibrations: Vec<face::Calibration> = face_calibrations(corpus)
        .into_iter()
        .filter_map(Result::ok)
        .collect();
    let prints: Vec<suite::Prints> = corpus
        .sessions
        .iter()
        .map(|s| suite::prints(&s.trace))
        .collect();
    let settings = suite::SuiteSettings::default();
    corpus
        .sessions
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let cohort = suite::Cohort {
                code: Vec::new(),
                timing: corpus
                    .sessions
                    .iter()
                    .zip(&prints)
                    .enumerate()
                    // The sessions listed before it, as a session is compared at its submission
                    // with those finished before it (the generators list honest work first: an
                    // original never meets the replay of its own timing).
                    .filter(|(j, (_, p))| *j < i && !p.timing.is_empty())
                    .map(|(_, (o, p))| (o.id.clone(), p.timing.clone()))
                    .collect(),
            };
            suite::analyse_tuned(
                &s.trace,
                &policy(),
                &settings,
                1.0,
                &prints[i],
                &cohort,
                "eval",
                &suite::Tuned {
                    keystroke: keystroke.clone(),
                    face_calibrations: calibrations.clone(),
                },
            )
        })
        .collect()
}

fn flagged(a: &IntegrityAnalysis) -> bool {
    a.tier >= Tier::ReviewSuggested
}

fn fired(a: &IntegrityAnalysis, detector: &str) -> bool {
    a.findings()
        .any(|f| f.detector == detector && f.level >= FindingLevel::Review)
}

/// Measures the detectors on a corpus.
pub fn evaluate(corpus: &Corpus, tuning: &Tuning) -> CorpusResult {
    let analyses = analyse_all(corpus, tuning);
    let mut rows: Vec<ClassRow> = Vec::new();
    let mut honest_rules = BTreeMap::new();
    let mut row = |class: &str, profile: Option<&str>| -> usize {
        match rows
            .iter()
            .position(|r| r.class == class && r.profile.as_deref() == profile)
        {
            Some(i) => i,
            None => {
                rows.push(ClassRow {
                    class: class.to_string(),
                    profile: profile.map(str::to_string),
                    flagged: Rate { n: 0, hits: 0 },
                    caught: Rate { n: 0, hits: 0 },
                });
                rows.len() - 1
            }
        }
    };
    let mut indices = Vec::new();
    for (class, _) in CLASSES {
        if corpus.sessions.iter().any(|s| s.class == class) {
            row(class, None);
        }
    }
    for s in &corpus.sessions {
        indices.push((row(&s.class, None), row(&s.class, Some(&s.profile))));
    }
    let mut events = 0;
    for ((s, a), (ci, pi)) in corpus.sessions.iter().zip(&analyses).zip(indices) {
        events += s.trace.events.len();
        let hit = flagged(a);
        let caught = aimed_detector(&s.class).is_some_and(|d| hit && fired(a, d));
        for i in [ci, pi] {
            rows[i].flagged.n += 1;
            rows[i].flagged.hits += usize::from(hit);
            rows[i].caught.n += 1;
            rows[i].caught.hits += usize::from(caught);
        }
        if s.class == "honest" {
            for f in a.findings().filter(|f| f.level >= FindingLevel::Review) {
                *honest_rules
                    .entry(format!("{}/{}", f.detector, f.rule))
                    .or_insert(0) += 1;
            }
        }
    }
    CorpusResult {
        corpus: corpus.name.clone(),
        fitted_on: tuning.fitted_on.clone(),
        rows,
        honest_rules,
        face_calibrations: face_calibrations(corpus),
        sessions: corpus.sessions.len(),
        events,
        refused: corpus.refused.clone(),
        key_ups: has_key_ups(corpus),
    }
}

/// Fits the keystroke thresholds on a corpus's honest sessions (see [`keystroke::Thresholds::fit`]).
pub fn fit(corpus: &Corpus) -> Tuning {
    let honest: Vec<&SessionTrace> = corpus
        .sessions
        .iter()
        .filter(|s| s.class == "honest")
        .map(|s| &s.trace)
        .collect();
    Tuning {
        fitted_on: corpus.name.clone(),
        keystroke: keystroke::Thresholds::fit(&honest),
    }
}

fn cell(r: Option<&Rate>) -> String {
    match r {
        None => "–".into(),
        Some(r) if r.n == 0 => "–".into(),
        Some(r) => format!("{}/{} ({:.0}%)", r.hits, r.n, 100.0 * r.rate()),
    }
}

/// One row per (tuning, corpus): the honest false-positive rate and each adversary class's
/// recall by the detector meant for it. Rows where the thresholds were fitted on the corpus they
/// are measured on are marked *in-distribution*.
pub fn matrix_markdown(results: &[CorpusResult]) -> String {
    let mut s = String::from("| thresholds fitted on | measured on | honest flagged |");
    for (class, _) in CLASSES.iter().skip(1) {
        s.push_str(&format!(" {class} |"));
    }
    s.push_str("\n|---|---|---:|");
    for _ in CLASSES.iter().skip(1) {
        s.push_str("---:|");
    }
    s.push('\n');
    for r in results {
        let same = r.fitted_on == r.corpus;
        s.push_str(&format!(
            "| {} | {}{} | {} |",
            r.fitted_on,
            r.corpus,
            if same { " *(in-distribution)*" } else { "" },
            cell(r.class("honest").map(|c| &c.flagged))
        ));
        for (class, _) in CLASSES.iter().skip(1) {
            s.push_str(&format!(" {} |", cell(r.class(class).map(|c| &c.caught))));
        }
        s.push('\n');
    }
    s
}

/// Per class and profile for one result, with Wilson intervals, the honest findings behind false
/// positives and the face calibrations derived from the corpus.
pub fn detail_markdown(r: &CorpusResult) -> String {
    let mut s = format!(
        "#### {} (thresholds fitted on {}; {} sessions, {} events)\n\n",
        r.corpus, r.fitted_on, r.sessions, r.events
    );
    if !r.refused.is_empty() {
        s.push_str(&format!(
            "{} session(s) left out: their telemetry breaks the wire format, so the API would \
             refuse it (first: {}).\n\n",
            r.refused.len(),
            r.refused[0]
        ));
    }
    if !r.key_ups {
        s.push_str(
            "The source never recorded key releases, so `key_up_missing_share` (which would be \
             100% on every session) was left out; the hold and rollover rules have nothing to \
             measure.\n\n",
        );
    }
    s.push_str("| class | profile | n | flagged | caught by the detector meant for it | 95% CI |\n|---|---|---:|---:|---:|---|\n");
    for row in &r.rows {
        let rate = if row.class == "honest" {
            &row.flagged
        } else {
            &row.caught
        };
        let (lo, hi) = rate.wilson();
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.1}% – {:.1}% |\n",
            if row.profile.is_none() {
                format!("**{}**", row.class)
            } else {
                row.class.clone()
            },
            row.profile.as_deref().unwrap_or("all"),
            row.flagged.n,
            row.flagged.hits,
            if row.class == "honest" {
                "–".to_string()
            } else {
                row.caught.hits.to_string()
            },
            100.0 * lo,
            100.0 * hi
        ));
    }
    if !r.honest_rules.is_empty() {
        s.push_str("\nFindings on honest sessions: ");
        let parts: Vec<String> = r
            .honest_rules
            .iter()
            .map(|(rule, n)| format!("`{rule}` × {n}"))
            .collect();
        s.push_str(&parts.join(", "));
        s.push('\n');
    }
    for c in &r.face_calibrations {
        match c {
            Ok(c) => s.push_str(&format!(
                "\nFace model `{} v{}` calibrated from {} genuine and {} impostor scores: threshold \
                 {:.3}, genuine pairs below it {:.1}%, impostor pairs passing {:.1}%.\n",
                c.model_id,
                c.model_version,
                c.genuine_pairs,
                c.impostor_pairs,
                c.threshold,
                100.0 * c.false_non_match_rate,
                100.0 * c.false_match_rate
            )),
            Err(e) => s.push_str(&format!("\nFace calibration refused: {e}.\n")),
        }
    }
    s
}

/// Fits on every corpus in turn (and measures the shipped thresholds) and measures on every
/// corpus: the shipped rows first, then one block per fitting corpus.
pub fn cross_fit(corpora: &[Corpus]) -> Vec<CorpusResult> {
    let mut tunings = vec![Tuning::shipped()];
    tunings.extend(corpora.iter().map(fit));
    let mut out = Vec::new();
    for t in &tunings {
        for c in corpora {
            out.push(evaluate(c, t));
        }
    }
    out
}

/// The held-out section of `docs/integrity-eval.md`: the shipped thresholds on every corpus (the
/// corpora other than `clarity-synth` are out of distribution: the thresholds were never set on
/// them), the cross-fit matrix, and each corpus in detail.
pub fn report_markdown(results: &[CorpusResult], command: &str) -> String {
    let mut s = String::from("# Integrity evaluation\n\n");
    s.push_str(&format!(
        "Generated by `{command}`. Suite `{}`.\n\n",
        suite::suite_version(&suite::SuiteSettings::default())
    ));
    s.push_str(
        "**Headline: the shipped thresholds on corpora they were not set on.** Each corpus is a \
         set of labelled sessions in the telemetry wire format (`integrity/corpora/FORMAT.md`): \
         three written by independent generators whose authors never saw the detectors (`g1` \
         from the typing literature, `g2` from real-world mess, `g3` a red team), two converted \
         from openly licensed **real human keystroke logs** (`thetool-scriptlog`, \
         `language-hero`: prose, honest only, no key releases recorded), and Clarity's own \
         generator (`clarity-synth`, the only corpus the thresholds were ever tuned on). \
         A session is **flagged** at tier *review suggested* or above; an adversary is \
         **caught** only when the detector meant for it fired. Code similarity is measured on \
         the synthetic copies below (it needs known copy sources).\n\n",
    );
    let shipped: Vec<CorpusResult> = results
        .iter()
        .filter(|r| r.fitted_on == "shipped")
        .cloned()
        .collect();
    s.push_str(&matrix_markdown(&shipped));
    s.push_str(
        "\n**How held-out each corpus is.** `g3` was generated after keystroke timing version 2 was \
         settled and no detector threshold or rule changed after it was measured (its first run \
         showed an evaluation error, fixed since: a stitched replay's second source counted as an \
         honest false positive): it is the cleanest out-of-distribution number. `g1`, `g2` \
         and the two real corpora were inspected while version 2 was made, and three changes came \
         from what they showed (serial correlation supports a finding but never makes one; a long \
         absence from the camera is a hint; the key-up rule is left out for sources that never \
         recorded key releases), so their numbers are out of distribution for the thresholds but \
         not for those three decisions. Each session's timing is compared with the sessions \
         listed before it (the worker compares with sessions finished before), and a corpus's \
         face models are calibrated from its `face_models.json` as an operator would register \
         them; a model the calibration refuses stays uncalibrated, so a swap it sees is not \
         caught.\n",
    );
    s.push_str(
        "\n## Thresholds fitted on one corpus, measured on the others\n\n\
         `Thresholds::fit` sets each keystroke threshold from a corpus's honest sessions (the 1st \
         or 99th percentile plus a tenth of the 10–90% range). Rows marked *in-distribution* \
         measure on the corpus the thresholds were fitted on; every other row is out of \
         distribution. Corpora without adversaries show only the honest column.\n\n",
    );
    let fitted: Vec<CorpusResult> = results
        .iter()
        .filter(|r| r.fitted_on != "shipped")
        .cloned()
        .collect();
    s.push_str(&matrix_markdown(&fitted));
    s.push_str("\n## Each corpus in detail (shipped thresholds)\n\n");
    for r in &shipped {
        s.push_str(&detail_markdown(r));
        s.push('\n');
    }
    s
}
