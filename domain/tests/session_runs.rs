//! Given / when / then tests of the runs on the `CandidateSession` aggregate: a candidate's run of
//! the visible tests (requested while the session runs, one at a time, one result each) and the
//! grading of the finished session (one grade per grader version).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use clarity_domain::assessment::Format;
use clarity_domain::session::{
    AssessmentRef, Candidate, ConsentScopes, RunEnding, RunResult, SessionCommand, SessionError,
    SessionEvent,
};
use clarity_domain::CandidateSession;
use cqrs_es::test::TestFramework;
use uuid::Uuid;

type Tester = TestFramework<CandidateSession>;
const RUN: Uuid = Uuid::from_u128(0x1);
const OTHER: Uuid = Uuid::from_u128(0x2);
const GRADE_RUN: Uuid = Uuid::from_u128(0x3);

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn history(finished: bool) -> Vec<SessionEvent> {
    let mut events = vec![
        SessionEvent::CandidateInvited {
            session_id: Uuid::from_u128(0x5e55),
            org_id: Uuid::from_u128(0x0a9b),
            candidate: Candidate {
                name: "Ada".into(),
                email: "ada@example.com".into(),
                external_ref: None,
            },
            assessment: AssessmentRef {
                assessment_id: Uuid::from_u128(0xc1a7_1700_0000_4000_8000_0000_0000_0005),
                version: 1,
                title: "Bug Hunt".into(),
                format: Format::TakeHome,
                time_limit_minutes: 90,
                spec_digest: "0".repeat(64),
            },
            invite_expires_at: at("2026-04-13T08:00:00Z"),
            invited_by: Uuid::from_u128(0x42),
            at: at("2026-04-06T08:00:00Z"),
        },
        SessionEvent::ConsentRecorded {
            notice_version: "monitoring-notice-v1".into(),
            scopes: ConsentScopes::default(),
            at: at("2026-04-07T18:55:00Z"),
            notice_sha256: None,
        },
        SessionEvent::SessionStarted {
            at: at("2026-04-07T19:00:00Z"),
            deadline: at("2026-04-07T20:30:00Z"),
        },
    ];
    if finished {
        events.push(SessionEvent::SessionSubmitted {
            files_digest: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
            file_count: 3,
            time_used_seconds: 3600,
            at: at("2026-04-07T20:00:00Z"),
            through_seq: Some(40),
        });
    }
    events
}

fn result() -> Box<RunResult> {
    Box::new(RunResult {
        ending: RunEnding::Exited { code: 1 },
        tests: Vec::new(),
        results_error: None,
        duration_ms: 900,
        cpu_ms: Some(700),
        peak_memory_bytes: Some(30 << 20),
        memory_limit_hit: false,
        output: "FAILED (failures=4)".into(),
        output_bytes: 19,
        output_sha256: "0".repeat(64),
        output_truncated: false,
        toolchains: BTreeMap::from([("grader".into(), "bug-hunt@1".into())]),
        runner: "r1".into(),
    })
}

fn request(run_id: Uuid, when: &str) -> SessionCommand {
    SessionCommand::RequestRun {
        run_id,
        through_seq: 12,
        at: at(when),
    }
}

fn requested(run_id: Uuid, when: &str) -> SessionEvent {
    SessionEvent::RunRequested {
        run_id,
        through_seq: 12,
        at: at(when),
    }
}

fn complete(run_id: Uuid) -> SessionCommand {
    SessionCommand::CompleteRun {
        run_id,
        result: result(),
        at: at("2026-04-07T19:10:05Z"),
    }
}

fn grade(version: &str, score: f64) -> SessionCommand {
    SessionCommand::RecordGrade {
        run_id: GRADE_RUN,
        grader_version: version.into(),
        through_seq: Some(40),
        score,
        max_score: 39.0,
        result: result(),
        at: at("2026-04-07T20:01:00Z"),
    }
}

#[test]
fn a_run_is_requested_while_the_session_runs() {
    Tester::with(())
        .given(history(false))
        .when(request(RUN, "2026-04-07T19:10:00Z"))
        .then_expect_events(vec![requested(RUN, "2026-04-07T19:10:00Z")]);
}

#[test]
fn a_run_is_refused_before_the_start_after_the_deadline_and_after_the_finish() {
    let mut before = history(false);
    before.pop();
    Tester::with(())
        .given(before)
        .when(request(RUN, "2026-04-07T19:10:00Z"))
        .then_expect_error(SessionError::NotStarted);
    Tester::with(())
        .given(history(false))
        .when(request(RUN, "2026-04-07T20:31:00Z"))
        .then_expect_error(SessionError::DeadlinePassed(at("2026-04-07T20:30:00Z")));
    Tester::with(())
        .given(history(true))
        .when(request(RUN, "2026-04-07T20:10:00Z"))
        .then_expect_error(SessionError::AlreadyFinished("submitted"));
}

#[test]
fn one_run_at_a_time() {
    let mut given = history(false);
    given.push(requested(RUN, "2026-04-07T19:10:00Z"));
    Tester::with(())
        .given(given)
        .when(request(OTHER, "2026-04-07T19:10:01Z"))
        .then_expect_error(SessionError::RunInProgress(RUN));
}

#[test]
fn a_run_gets_one_result_even_after_the_submission() {
    let mut given = history(false);
    given.push(requested(RUN, "2026-04-07T19:10:00Z"));
    given.extend(history(true).into_iter().skip(3));
    Tester::with(())
        .given(given.clone())
        .when(complete(RUN))
        .then_expect_events(vec![SessionEvent::RunCompleted {
            run_id: RUN,
            result: result(),
            at: at("2026-04-07T19:10:05Z"),
        }]);
    given.push(SessionEvent::RunCompleted {
        run_id: RUN,
        result: result(),
        at: at("2026-04-07T19:10:05Z"),
    });
    Tester::with(())
        .given(given)
        .when(complete(RUN))
        .then_expect_error(SessionError::RunAlreadyCompleted(RUN));
    Tester::with(())
        .given(history(false))
        .when(complete(OTHER))
        .then_expect_error(SessionError::UnknownRun(OTHER));
}

#[test]
fn a_finished_session_is_graded_once_per_grader_version() {
    Tester::with(())
        .given(history(false))
        .when(grade("bug-hunt@1", 30.0))
        .then_expect_error(SessionError::NotFinished("in_progress"));
    let graded = SessionEvent::SubmissionGraded {
        run_id: GRADE_RUN,
        grader_version: "bug-hunt@1".into(),
        through_seq: Some(40),
        score: 30.0,
        max_score: 39.0,
        result: result(),
        at: at("2026-04-07T20:01:00Z"),
    };
    Tester::with(())
        .given(history(true))
        .when(grade("bug-hunt@1", 30.0))
        .then_expect_events(vec![graded.clone()]);
    let mut given = history(true);
    given.push(graded);
    Tester::with(())
        .given(given.clone())
        .when(grade("bug-hunt@1", 31.0))
        .then_expect_error(SessionError::GradeAlreadyRecorded("bug-hunt@1".into()));
    // A new grader version re-grades beside the old result.
    Tester::with(())
        .given(given)
        .when(grade("bug-hunt@2", 31.0))
        .then_expect_events(vec![SessionEvent::SubmissionGraded {
            run_id: GRADE_RUN,
            grader_version: "bug-hunt@2".into(),
            through_seq: Some(40),
            score: 31.0,
            max_score: 39.0,
            result: result(),
            at: at("2026-04-07T20:01:00Z"),
        }]);
}

#[test]
fn a_grade_outside_zero_to_its_maximum_is_refused() {
    for score in [-1.0, 40.0, f64::NAN] {
        Tester::with(())
            .given(history(true))
            .when(grade("bug-hunt@1", score))
            .then_expect_error(SessionError::InvalidGrade);
    }
}
