//! Submission against trace: the files a page sent with its submission compared with the
//! workspace the session's telemetry reconstructs through the submission's `seq`.
//!
//! The server's truth is the log: what Clarity records as submitted is the reconstruction, never
//! the client's word. A client whose files differ from it either lost events (which the capture
//! library's persistent queue should prevent) or sent code the candidate never wrote in the
//! workspace. Either way a human should look, so a difference is a `review` finding whose
//! evidence is the line difference of each file that differs. Never a verdict.

use std::collections::BTreeMap;

use clarity_domain::session::SubmittedFile;

use crate::{Comparison, DetectorReport, Evidence, Finding, FindingLevel, RuleCheck, SessionTrace};

pub const DETECTOR: &str = "submission";
pub const VERSION: &str = "1";
const RULE: &str = "submission_differs_from_trace";

/// What was submitted: the reconstruction and what the client sent with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubmissionClaim {
    /// The telemetry `seq` the submission was recorded at.
    pub through_seq: u64,
    /// The workspace the telemetry reconstructs through `through_seq`.
    pub authored: Vec<SubmittedFile>,
    /// The files the client sent with the submission (empty when it sent none).
    pub sent: Vec<SubmittedFile>,
}

/// At most this many characters of difference per file go into the evidence.
const MAX_DIFF_CHARS: usize = 4_000;
/// Files longer than this (in lines) are compared whole, without a line difference.
const MAX_DIFF_LINES: usize = 3_000;

/// Compares the sent files with the reconstruction.
pub fn analyse(trace: &SessionTrace) -> DetectorReport {
    let Some(claim) = &trace.submission else {
        return DetectorReport::skipped(
            DETECTOR,
            VERSION,
            "no submission point in the log (a session from before submissions were reconstructed)",
        );
    };
    if claim.sent.is_empty() {
        return DetectorReport::skipped(
            DETECTOR,
            VERSION,
            "the client sent no files with the submission; the reconstruction stands alone",
        );
    }
    let authored: BTreeMap<&str, &str> = claim
        .authored
        .iter()
        .map(|f| (f.path.as_str(), f.content.as_str()))
        .collect();
    let sent: BTreeMap<&str, &str> = claim
        .sent
        .iter()
        .map(|f| (f.path.as_str(), f.content.as_str()))
        .collect();
    let at_ms = trace
        .events
        .iter()
        .rfind(|e| e.seq <= claim.through_seq)
        .map_or(0, |e| trace.at_ms(e.ts));
    let mut evidence = Vec::new();
    let paths: std::collections::BTreeSet<&str> =
        authored.keys().chain(sent.keys()).copied().collect();
    for path in paths {
        let note = match (authored.get(path), sent.get(path)) {
            (Some(a), Some(s)) if a == s => continue,
            (Some(a), Some(s)) => format!(
                "sent content differs from the reconstruction (- reconstructed, + sent):\n{}",
                line_diff(a, s)
            ),
            (Some(a), None) => format!(
                "in the reconstruction ({} lines) but not sent",
                a.lines().count()
            ),
            (None, Some(s)) => format!(
                "sent ({} lines) but never created in the workspace:\n{}",
                s.lines().count(),
                line_diff("", s)
            ),
            (None, None) => continue,
        };
        evidence.push(Evidence {
            from_seq: claim.through_seq,
            to_seq: claim.through_seq,
            replay_seq: claim.through_seq,
            at_ms,
            file: Some(path.to_string()),
            note,
        });
    }
    let differing = evidence.len() as f64;
    let check = RuleCheck::new(RULE, differing, Comparison::Above, 0.0);
    let mut findings = Vec::new();
    if check.fired {
        findings.push(Finding {
            detector: DETECTOR.into(),
            detector_version: VERSION.into(),
            rule: RULE.into(),
            level: FindingLevel::Review,
            measured: differing,
            threshold: 0.0,
            comparison: Comparison::Above,
            summary: format!(
                "the files sent at submission differ from the workspace the session's log reconstructs ({} file{}); the reconstruction is what counts as submitted",
                evidence.len(),
                if evidence.len() == 1 { "" } else { "s" }
            ),
            related_session: None,
            supporting: Vec::new(),
            evidence,
        });
    }
    DetectorReport {
        detector: DETECTOR.into(),
        detector_version: VERSION.into(),
        skipped: None,
        checks: vec![check],
        findings,
        metrics: None,
    }
}

/// A line difference of `a` → `b`: `-` lines only in `a`, `+` lines only in `b`, unchanged lines
/// left out; cut at [`MAX_DIFF_CHARS`].
pub fn line_diff(a: &str, b: &str) -> String {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    if a.len() > MAX_DIFF_LINES || b.len() > MAX_DIFF_LINES {
        return format!(
            "({} vs {} lines: too long for a line difference)",
            a.len(),
            b.len()
        );
    }
    // Longest common subsequence table, from the end.
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![0u32; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[at(i, j)] = if a[i] == b[j] {
                lcs[at(i + 1, j + 1)] + 1
            } else {
                lcs[at(i + 1, j)].max(lcs[at(i, j + 1)])
            };
        }
    }
    let mut out = String::new();
    let mut push = |sign: char, line: &str| {
        if out.len() < MAX_DIFF_CHARS {
            out.push(sign);
            out.push_str(line);
            out.push('\n');
        }
    };
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[at(i + 1, j)] >= lcs[at(i, j + 1)]) {
            push('-', a[i]);
            i += 1;
        } else {
            push('+', b[j]);
            j += 1;
        }
    }
    if out.len() >= MAX_DIFF_CHARS {
        let mut cut = MAX_DIFF_CHARS;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str("\n… (cut)");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, content: &str) -> SubmittedFile {
        SubmittedFile {
            path: path.into(),
            content: content.into(),
        }
    }

    fn trace(authored: Vec<SubmittedFile>, sent: Vec<SubmittedFile>) -> SessionTrace {
        SessionTrace {
            submission: Some(SubmissionClaim {
                through_seq: 42,
                authored,
                sent,
            }),
            ..SessionTrace::default()
        }
    }

    #[test]
    fn identical_files_fire_nothing() {
        let files = vec![file("a.py", "x = 1\n"), file("b.py", "")];
        let report = analyse(&trace(files.clone(), files));
        assert!(report.skipped.is_none());
        assert!(report.findings.is_empty());
        assert!(!report.checks[0].fired);
    }

    #[test]
    fn a_changed_file_and_a_file_never_created_are_review_findings_with_their_diff() {
        let report = analyse(&trace(
            vec![file("a.py", "def f():\n    return 1\n")],
            vec![
                file("a.py", "def f():\n    return 2\n"),
                file("b.py", "import os\n"),
            ],
        ));
        let finding = &report.findings[0];
        assert_eq!(finding.rule, "submission_differs_from_trace");
        assert_eq!(finding.level, FindingLevel::Review);
        assert_eq!(finding.measured, 2.0);
        let a = &finding.evidence[0];
        assert_eq!(a.file.as_deref(), Some("a.py"));
        assert_eq!(a.replay_seq, 42);
        assert!(
            a.note.contains("-    return 1\n+    return 2\n"),
            "{}",
            a.note
        );
        assert!(!a.note.contains("def f"), "unchanged lines are left out");
        let b = &finding.evidence[1];
        assert_eq!(b.file.as_deref(), Some("b.py"));
        assert!(b.note.contains("never created") && b.note.contains("+import os"));
    }

    #[test]
    fn no_files_sent_or_no_submission_point_skips() {
        assert!(analyse(&trace(vec![file("a", "x")], Vec::new()))
            .skipped
            .is_some());
        assert!(analyse(&SessionTrace::default()).skipped.is_some());
    }

    #[test]
    fn long_differences_are_cut_on_a_character_boundary() {
        let a = "é\n".repeat(2_000);
        let b = "ü\n".repeat(2_000);
        let diff = line_diff(&a, &b);
        assert!(diff.ends_with("… (cut)"));
        assert!(diff.len() < MAX_DIFF_CHARS + 20);
    }
}
