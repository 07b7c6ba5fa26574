//! Follow-up questions for the walk-through interview, generated from the process trace.
//!
//! A finding is a reason to talk, not a verdict. The fairest next step is to ask the candidate
//! about the exact moments a reviewer would wonder about — a large paste, a long time away from
//! the editor, a file written top to bottom, a test run that suddenly went green — with the time
//! and the file, so the interviewer can open the replay at that point while listening.

pub use clarity_domain::integrity::FollowUp;

use super::{DetectorReport, SessionTrace};
use clarity_domain::telemetry::TelemetryData;

/// Pastes smaller than this are not worth a question.
pub const PASTE_QUESTION_MIN: usize = 200;
/// Time away from the editor worth a question (ms).
pub const AWAY_QUESTION_MIN_MS: i64 = 120_000;
/// At most this many questions.
pub const MAX_QUESTIONS: usize = 6;

/// `mm:ss` (or `h:mm:ss`) from milliseconds.
pub fn clock(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
    } else {
        format!("{:02}:{:02}", s / 60, s % 60)
    }
}

/// A duration in words: `45 s`, `4 min 10 s`.
pub fn duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    if s < 60 {
        format!("{s} s")
    } else if s % 60 == 0 {
        format!("{} min", s / 60)
    } else {
        format!("{} min {} s", s / 60, s % 60)
    }
}

/// `1,240` — thousands separated, the way the question is read out.
pub fn count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn short_file(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Generates the questions for a session, most telling first, at most [`MAX_QUESTIONS`].
pub fn generate(trace: &SessionTrace, reports: &[DetectorReport]) -> Vec<FollowUp> {
    let mut out: Vec<(u8, usize, FollowUp)> = Vec::new();
    let events = &trace.events;
    let mut away_since: Option<usize> = None;
    let mut last_away: Option<(i64, i64)> = None; // (end at_ms, duration ms)
    let mut last_run_failed: Option<u32> = None;
    let mut chars_since_run = 0usize;
    let mut last_edit_file: Option<&str> = None;
    for (i, e) in events.iter().enumerate() {
        let at = trace.at_ms(e.ts);
        match &e.data {
            TelemetryData::FocusLost {} => away_since = Some(i),
            TelemetryData::FocusRegained {} => {
                if let Some(start) = away_since.take() {
                    let from = trace.at_ms(events[start].ts);
                    let gone = at - from;
                    last_away = Some((at, gone));
                    if gone >= AWAY_QUESTION_MIN_MS {
                        out.push((
                            1,
                            gone as usize / 1000,
                            FollowUp {
                                at_ms: from,
                                replay_seq: events[start].seq,
                                question: format!(
                                    "At {} you left the editor for {} — what did you look up, and how did it shape what you wrote next?",
                                    clock(from),
                                    duration(gone)
                                ),
                                basis: "away".into(),
                            },
                        ));
                    }
                }
            }
            TelemetryData::Edit {
                file,
                inserted,
                origin,
                ..
            } => {
                let n = inserted.chars().count();
                chars_since_run += n;
                last_edit_file = Some(file);
                if origin.is_brought_in() && n >= PASTE_QUESTION_MIN {
                    let run_after = events[i + 1..]
                        .iter()
                        .take_while(|x| (x.ts - e.ts).num_milliseconds() <= 300_000)
                        .find(|x| matches!(x.data, TelemetryData::CodeRun { .. }))
                        .map(|x| (x.ts - e.ts).num_milliseconds())
                        .filter(|ms| *ms >= 1_000);
                    let away = last_away
                        .filter(|(end, gone)| at - end <= 30_000 && *gone >= 5_000)
                        .map(|(_, gone)| {
                            format!(" right after {} away from the editor", duration(gone))
                        })
                        .unwrap_or_default();
                    let run = run_after
                        .map(|ms| format!(" and ran the code {} later", duration(ms)))
                        .unwrap_or_default();
                    out.push((
                        0,
                        n,
                        FollowUp {
                            at_ms: at,
                            replay_seq: e.seq,
                            question: format!(
                                "At {} you pasted {} characters into {}{}{} — walk us through that code: where did it come from, and what does it do?",
                                clock(at),
                                count(n),
                                short_file(file),
                                away,
                                run
                            ),
                            basis: "paste".into(),
                        },
                    ));
                }
            }
            TelemetryData::CodeRun {
                tests_passed,
                tests_failed,
                ..
            } => {
                if let Some(failed) = last_run_failed {
                    if failed > 0 && *tests_failed == 0 && *tests_passed > 0 && chars_since_run > 0
                    {
                        let file = last_edit_file.map(short_file).unwrap_or("the code");
                        out.push((
                            2,
                            failed as usize,
                            FollowUp {
                                at_ms: at,
                                replay_seq: e.seq,
                                question: format!(
                                    "At {} the tests went from {} failing to all {} passing after a {}-character change ending in {} — what was wrong, and how did you find it?",
                                    clock(at),
                                    failed,
                                    tests_passed,
                                    count(chars_since_run),
                                    file
                                ),
                                basis: "tests_turned_green".into(),
                            },
                        ));
                    }
                }
                last_run_failed = Some(*tests_failed);
                chars_since_run = 0;
            }
            _ => {}
        }
    }
    for report in reports {
        for finding in &report.findings {
            let Some(ev) = finding.evidence.first() else {
                continue;
            };
            let question = match (finding.detector.as_str(), finding.rule.as_str()) {
                ("transcription", _) => format!(
                    "From {} you wrote {} top to bottom with almost no corrections — what was your plan before you started typing, and what would you change in it now?",
                    clock(ev.at_ms),
                    ev.file.as_deref().map(short_file).unwrap_or("this code")
                ),
                ("similarity", _) => format!(
                    "Parts of {} closely follow another submission — talk us through how you arrived at that structure.",
                    ev.file.as_deref().map(short_file).unwrap_or("your solution")
                ),
                _ => continue,
            };
            out.push((
                1,
                usize::MAX / 2,
                FollowUp {
                    at_ms: ev.at_ms,
                    replay_seq: ev.replay_seq,
                    question,
                    basis: format!("{}/{}", finding.detector, finding.rule),
                },
            ));
        }
    }
    // Most telling first: pastes by size, then the rest by weight; ties by time.
    out.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then(b.1.cmp(&a.1))
            .then(a.2.at_ms.cmp(&b.2.at_ms))
    });
    out.into_iter()
        .take(MAX_QUESTIONS)
        .map(|(_, _, f)| f)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use clarity_domain::telemetry::EditOrigin;
    use clarity_domain::telemetry::TelemetryEvent;

    fn ev(seq: u64, secs: i64, data: TelemetryData) -> TelemetryEvent {
        TelemetryEvent {
            seq,
            ts: Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
                + chrono::Duration::seconds(secs),
            data,
        }
    }

    #[test]
    fn a_large_paste_after_a_tab_away_followed_by_a_run_becomes_the_first_question() {
        let events = vec![
            ev(1, 10, TelemetryData::FocusLost {}),
            ev(2, 40, TelemetryData::FocusRegained {}),
            ev(
                3,
                43,
                TelemetryData::Edit {
                    file: "src/cache.rs".into(),
                    position: 0,
                    deleted: 0,
                    inserted: "x".repeat(1240),
                    origin: EditOrigin::Paste,
                },
            ),
            ev(
                4,
                63,
                TelemetryData::CodeRun {
                    command: "cargo test".into(),
                    exit_code: 0,
                    tests_passed: 4,
                    tests_failed: 0,
                    duration_ms: 900,
                },
            ),
        ];
        let trace = SessionTrace {
            started_at: Some(events[0].ts - chrono::Duration::seconds(10)),
            events,
            ..Default::default()
        };
        let questions = generate(&trace, &[]);
        assert_eq!(questions.len(), 1);
        assert_eq!(questions[0].replay_seq, 3);
        assert_eq!(
            questions[0].question,
            "At 00:43 you pasted 1,240 characters into cache.rs right after 30 s away from the editor and ran the code 20 s later — walk us through that code: where did it come from, and what does it do?"
        );
    }

    #[test]
    fn small_pastes_and_short_tab_aways_ask_nothing() {
        let events = vec![
            ev(1, 10, TelemetryData::FocusLost {}),
            ev(2, 50, TelemetryData::FocusRegained {}),
            ev(
                3,
                52,
                TelemetryData::Edit {
                    file: "a.py".into(),
                    position: 0,
                    deleted: 0,
                    inserted: "import os\n".into(),
                    origin: EditOrigin::Paste,
                },
            ),
        ];
        let trace = SessionTrace {
            events,
            ..Default::default()
        };
        assert!(generate(&trace, &[]).is_empty());
    }

    #[test]
    fn clock_and_counts_read_like_a_person_would_say_them() {
        assert_eq!(clock(43_000), "00:43");
        assert_eq!(clock(3_723_000), "1:02:03");
        assert_eq!(duration(250_000), "4 min 10 s");
        assert_eq!(duration(120_000), "2 min");
        assert_eq!(count(1240), "1,240");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000_000), "1,000,000");
    }
}
