//! The valid side of the chaos test: a candidate's editor typing, with a model of what every
//! read model must then hold.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use clarity_domain::telemetry::{EditOrigin, KeyClass, TelemetryData, TelemetryEvent};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::Rng;

/// What the session's read models must hold: the acknowledged events and what replaying them
/// gives.
#[derive(Default)]
pub struct Model {
    /// The workspace after the last acknowledged event.
    pub files: BTreeMap<String, String>,
    pub acked: Vec<TelemetryEvent>,
    /// The acknowledged batches, to retry.
    pub batches: Vec<Vec<TelemetryEvent>>,
    focus_open: bool,
    /// Tab-aways closed by a return (focus-away markers).
    pub focus_aways: usize,
    /// Events the replay cannot apply (a cursor inside a surrogate pair): edit anomalies.
    pub anomalies: BTreeSet<u64>,
    /// The scratch file and whether it was renamed yet.
    scratch: Option<(String, bool)>,
    scratch_count: usize,
    /// The files after each event (by seq), to compare keyframes and seeks with.
    pub snapshots: BTreeMap<u64, BTreeMap<String, String>>,
}

fn utf16_len(s: &str) -> i64 {
    s.encode_utf16().count() as i64
}

impl Model {
    /// The seq of the next event.
    pub fn next_seq(&self) -> u64 {
        self.acked.len() as u64 + 1
    }

    /// A valid event at `seq`, applied to the model (the caller keeps it only if acknowledged).
    pub fn event(&mut self, seq: u64, rng: &mut StdRng) -> TelemetryEvent {
        let data = if seq == 1 {
            self.files.insert("main.py".into(), String::new());
            TelemetryData::FileCreated {
                file: "main.py".into(),
                content: String::new(),
            }
        } else {
            self.data(seq, rng)
        };
        self.snapshots.insert(seq, self.files.clone());
        TelemetryEvent {
            seq,
            ts: Utc::now(),
            data,
        }
    }

    fn data(&mut self, seq: u64, rng: &mut StdRng) -> TelemetryData {
        let main = self.files.get("main.py").cloned().unwrap_or_default();
        let len = utf16_len(&main);
        match rng.random_range(0..100) {
            0..=29 => {
                let down_ms = rng.random_range(0.0..400.0);
                TelemetryData::Keystroke {
                    down_ms,
                    up_ms: rng
                        .random_bool(0.8)
                        .then(|| down_ms + rng.random_range(0.0..200.0)),
                    key_class: *[
                        KeyClass::Letter,
                        KeyClass::Digit,
                        KeyClass::Whitespace,
                        KeyClass::Enter,
                        KeyClass::Backspace,
                    ]
                    .choose(rng)
                    .expect("non-empty"),
                }
            }
            30..=54 => {
                let inserted = ["x", "def ", "é", "中文", "🦀", "\n    ", "return 1"]
                    .choose(rng)
                    .expect("non-empty")
                    .to_string();
                self.files
                    .insert("main.py".into(), format!("{main}{inserted}"));
                TelemetryData::Edit {
                    file: "main.py".into(),
                    position: len,
                    deleted: 0,
                    inserted,
                    origin: EditOrigin::Typed,
                }
            }
            55..=59 if !main.is_empty() => {
                // Delete whole characters somewhere in the file (UTF-16 positions).
                let chars: Vec<char> = main.chars().collect();
                let from = rng.random_range(0..chars.len());
                let to = rng.random_range(from + 1..=chars.len().min(from + 4));
                let position: i64 = chars[..from].iter().map(|c| c.len_utf16() as i64).sum();
                let deleted: i64 = chars[from..to].iter().map(|c| c.len_utf16() as i64).sum();
                let kept: String = chars[..from].iter().chain(&chars[to..]).collect();
                self.files.insert("main.py".into(), kept);
                TelemetryData::Edit {
                    file: "main.py".into(),
                    position,
                    deleted,
                    inserted: String::new(),
                    origin: EditOrigin::Other,
                }
            }
            60..=64 => {
                let inserted = format!("# pasted {seq}\nimport os\n");
                self.files
                    .insert("main.py".into(), format!("{main}{inserted}"));
                TelemetryData::Edit {
                    file: "main.py".into(),
                    position: len,
                    deleted: 0,
                    inserted,
                    origin: EditOrigin::Paste,
                }
            }
            65..=72 => {
                // At a character boundary: never inside a surrogate pair.
                let chars: Vec<char> = main.chars().collect();
                let at = rng.random_range(0..=chars.len());
                TelemetryData::Cursor {
                    file: "main.py".into(),
                    position: chars[..at].iter().map(|c| c.len_utf16() as i64).sum(),
                    selection_end: rng.random_bool(0.3).then_some(len),
                }
            }
            73..=76 => {
                if !self.focus_open {
                    self.focus_open = true;
                }
                TelemetryData::FocusLost {}
            }
            77..=80 => {
                if self.focus_open {
                    self.focus_open = false;
                    self.focus_aways += 1;
                }
                TelemetryData::FocusRegained {}
            }
            81..=84 => {
                let failed = rng.random_range(0..3);
                TelemetryData::CodeRun {
                    command: "pytest -q".into(),
                    exit_code: i32::from(failed > 0),
                    tests_passed: rng.random_range(0..20),
                    tests_failed: failed,
                    duration_ms: rng.random_range(10..5000),
                }
            }
            85..=88 => TelemetryData::FaceCheck {
                similarity: rng.random_range(0.0..=1.0),
                model_id: "facenet".into(),
                model_version: "1".into(),
                face_count: rng.random_range(0..3),
                quality: rng.random_range(0.0..=1.0),
            },
            89..=94 => self.scratch_step(),
            95..=97 if main.chars().any(|c| c.len_utf16() == 2) => {
                // Inside the file but between the halves of a surrogate pair: the API's gate
                // counts lengths only and accepts it; the replay cannot place it (an anomaly).
                let before: i64 = main
                    .chars()
                    .take_while(|c| c.len_utf16() == 1)
                    .map(|c| c.len_utf16() as i64)
                    .sum();
                self.anomalies.insert(seq);
                TelemetryData::Cursor {
                    file: "main.py".into(),
                    position: before + 1,
                    selection_end: None,
                }
            }
            _ => TelemetryData::Keystroke {
                down_ms: 0.0,
                up_ms: None,
                key_class: KeyClass::Other,
            },
        }
    }

    /// Create, rename, delete a scratch file, in that order.
    fn scratch_step(&mut self) -> TelemetryData {
        match self.scratch.take() {
            None => {
                self.scratch_count += 1;
                let file = format!("notes/scratch_{}.txt", self.scratch_count);
                let content = format!("scratch {} ✓", self.scratch_count);
                self.files.insert(file.clone(), content.clone());
                self.scratch = Some((file.clone(), false));
                TelemetryData::FileCreated { file, content }
            }
            Some((file, false)) => {
                let new_file = file.replace(".txt", ".md");
                let content = self.files.remove(&file).unwrap_or_default();
                self.files.insert(new_file.clone(), content);
                self.scratch = Some((new_file.clone(), true));
                TelemetryData::FileRenamed { file, new_file }
            }
            Some((file, true)) => {
                self.files.remove(&file);
                TelemetryData::FileDeleted { file }
            }
        }
    }
}
