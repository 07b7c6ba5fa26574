//! Given / when / then tests of the review rules of the `CandidateSession` aggregate: reviewers,
//! scores and amendments, completed reviews, comments, finding resolutions, decisions.

use chrono::{DateTime, Duration, Utc};
use clarity_domain::assessment::{Criterion, Format, Level, Rubric};
use clarity_domain::integrity::{
    Comparison, DetectorReport, Finding, FindingLevel, IntegrityAnalysis, Tier,
};
use clarity_domain::session::{
    AssessmentRef, Candidate, ConsentScopes, DecisionOutcome, FindingResolution, ReviewError,
    SessionCommand, SessionError, SessionEvent,
};
use clarity_domain::CandidateSession;
use cqrs_es::test::TestFramework;
use uuid::Uuid;

type Tester = TestFramework<CandidateSession>;

const SESSION: Uuid = Uuid::from_u128(0x5e55_1000_0000_4000_8000_0000_0000_0002);
const ORG: Uuid = Uuid::from_u128(0x0a9b_0000_0000_4000_8000_0000_0000_0001);
const MANAGER: Uuid = Uuid::from_u128(0x0e5e_0000_0000_4000_8000_0000_0000_0001);
const ALICE: Uuid = Uuid::from_u128(0x0e5e_0000_0000_4000_8000_0000_0000_00a1);
const BOB: Uuid = Uuid::from_u128(0x0e5e_0000_0000_4000_8000_0000_0000_00b0);
const REPORT_HASH: &str = "4b227777d4dd1fc61c6f884f48641d02b4d121d3fd328cb08b5531fcacdabf8a";

fn at(minutes: i64) -> DateTime<Utc> {
    "2026-04-07T21:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::minutes(minutes)
}

fn rubric() -> Rubric {
    let levels = |n: u8| {
        (1..=n)
            .map(|s| Level {
                score: s,
                descriptor: format!("level {s}"),
            })
            .collect()
    };
    Rubric {
        criteria: vec![
            Criterion {
                key: "correctness".into(),
                name: "Correctness".into(),
                weight: 3,
                levels: levels(4),
            },
            Criterion {
                key: "design".into(),
                name: "Design".into(),
                weight: 1,
                levels: levels(4),
            },
        ],
    }
}

fn finished() -> Vec<SessionEvent> {
    vec![
        SessionEvent::CandidateInvited {
            session_id: SESSION,
            org_id: ORG,
            candidate: Candidate {
                name: "Amara Okafor".into(),
                email: "amara@example.com".into(),
                external_ref: None,
            },
            assessment: AssessmentRef {
                assessment_id: Uuid::from_u128(1),
                version: 1,
                title: "Async Task Queue".into(),
                format: Format::TakeHome,
                time_limit_minutes: 90,
                spec_digest: "0".repeat(64),
            },
            invite_expires_at: at(-60 * 24 + 60 * 24 * 7),
            invited_by: MANAGER,
            at: at(-60 * 24),
        },
        SessionEvent::ConsentRecorded {
            notice_sha256: None,
            notice_version: "2026-03".into(),
            scopes: ConsentScopes::default(),
            at: at(-200),
        },
        SessionEvent::SessionStarted {
            at: at(-180),
            deadline: at(-90),
        },
        SessionEvent::SessionSubmitted {
            through_seq: None,
            files_digest: "a".repeat(64),
            file_count: 3,
            time_used_seconds: 5000,
            at: at(-95),
        },
    ]
}

fn assigned() -> SessionEvent {
    SessionEvent::ReviewersAssigned {
        reviewers: vec![ALICE, BOB],
        assigned_by: MANAGER,
        at: at(0),
    }
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x5c0e_0000_0000_4000_8000_0000_0000_0000 + n)
}

fn scored(
    n: u128,
    reviewer: Uuid,
    criterion: &str,
    score: u8,
    supersedes: Option<Uuid>,
) -> SessionEvent {
    SessionEvent::CriterionScored {
        score_id: id(n),
        reviewer,
        criterion: criterion.into(),
        score,
        justification: format!("{criterion} is level {score}"),
        supersedes,
        at: at(n as i64),
    }
}

fn score(
    n: u128,
    reviewer: Uuid,
    criterion: &str,
    score: u8,
    supersedes: Option<Uuid>,
) -> SessionCommand {
    SessionCommand::ScoreCriterion {
        score_id: id(n),
        reviewer,
        criterion: criterion.into(),
        score,
        justification: format!("{criterion} is level {score}"),
        supersedes,
        rubric: rubric(),
        at: at(n as i64),
    }
}

fn reviewed_by_alice() -> Vec<SessionEvent> {
    let mut h = finished();
    h.push(assigned());
    h.push(scored(1, ALICE, "correctness", 3, None));
    h.push(scored(2, ALICE, "design", 2, None));
    h.push(SessionEvent::ReviewCompleted {
        reviewer: ALICE,
        at: at(3),
    });
    h
}

fn decide(decided_by: Uuid, supersedes: Option<Uuid>, may_decide: bool) -> SessionCommand {
    SessionCommand::RecordDecision {
        decision_id: id(100),
        outcome: DecisionOutcome::Advance,
        rationale: "Strong correctness; design discussed in the interview.".into(),
        decided_by,
        report_hash: REPORT_HASH.into(),
        supersedes,
        reviewers_may_decide: may_decide,
        at: at(10),
        chain_seal: None,
    }
}

fn review_error(e: ReviewError) -> SessionError {
    SessionError::Review(e)
}

#[tokio::test]
async fn reviewers_are_assigned_once_each() {
    let mut history = finished();
    history.push(SessionEvent::ReviewersAssigned {
        reviewers: vec![ALICE],
        assigned_by: MANAGER,
        at: at(0),
    });
    Tester::with(())
        .given(history.clone())
        .when_async(SessionCommand::AssignReviewers {
            reviewers: vec![BOB, ALICE, BOB],
            assigned_by: MANAGER,
            at: at(0),
        })
        .await
        .then_expect_events(vec![SessionEvent::ReviewersAssigned {
            reviewers: vec![BOB],
            assigned_by: MANAGER,
            at: at(0),
        }]);
    Tester::with(())
        .given(history)
        .when_async(SessionCommand::AssignReviewers {
            reviewers: vec![ALICE],
            assigned_by: MANAGER,
            at: at(0),
        })
        .await
        .then_expect_error(review_error(ReviewError::NoReviewers));
}

#[tokio::test]
async fn an_assigned_reviewer_scores_a_criterion_at_one_of_its_levels_with_a_justification() {
    let mut history = finished();
    history.push(assigned());
    Tester::with(())
        .given(history)
        .when_async(score(1, ALICE, "correctness", 3, None))
        .await
        .then_expect_events(vec![scored(1, ALICE, "correctness", 3, None)]);
}

#[tokio::test]
async fn scores_are_refused_for_strangers_unknown_criteria_and_levels_and_without_a_justification()
{
    let mut history = finished();
    history.push(assigned());
    let stranger = Uuid::from_u128(0xdead);
    let cases = [
        (
            score(1, stranger, "correctness", 3, None),
            ReviewError::NotAReviewer(stranger),
        ),
        (
            score(1, ALICE, "speed", 3, None),
            ReviewError::UnknownCriterion("speed".into()),
        ),
        (
            score(1, ALICE, "design", 7, None),
            ReviewError::UnknownLevel {
                criterion: "design".into(),
                score: 7,
            },
        ),
    ];
    for (command, error) in cases {
        Tester::with(())
            .given(history.clone())
            .when_async(command)
            .await
            .then_expect_error(review_error(error));
    }
    let mut blank = score(1, ALICE, "design", 2, None);
    if let SessionCommand::ScoreCriterion { justification, .. } = &mut blank {
        *justification = "  ".into();
    }
    Tester::with(())
        .given(history)
        .when_async(blank)
        .await
        .then_expect_error(review_error(ReviewError::JustificationRequired));
}

#[tokio::test]
async fn a_score_is_amended_by_a_new_score_that_names_the_one_it_supersedes() {
    let mut history = finished();
    history.push(assigned());
    history.push(scored(1, ALICE, "correctness", 3, None));
    // Scoring again without naming the old score is refused; naming it amends.
    Tester::with(())
        .given(history.clone())
        .when_async(score(2, ALICE, "correctness", 4, None))
        .await
        .then_expect_error(review_error(ReviewError::AlreadyScored(
            "correctness".into(),
        )));
    Tester::with(())
        .given(history.clone())
        .when_async(score(2, ALICE, "correctness", 4, Some(id(1))))
        .await
        .then_expect_events(vec![scored(2, ALICE, "correctness", 4, Some(id(1)))]);
    // Only the current score can be superseded.
    history.push(scored(2, ALICE, "correctness", 4, Some(id(1))));
    Tester::with(())
        .given(history)
        .when_async(score(3, ALICE, "correctness", 2, Some(id(1))))
        .await
        .then_expect_error(review_error(ReviewError::NotCurrentScore(id(1))));
}

#[tokio::test]
async fn a_review_is_completed_only_when_every_criterion_is_scored() {
    let mut history = finished();
    history.push(assigned());
    history.push(scored(1, ALICE, "correctness", 3, None));
    Tester::with(())
        .given(history.clone())
        .when_async(SessionCommand::CompleteReview {
            reviewer: ALICE,
            rubric: rubric(),
            at: at(3),
        })
        .await
        .then_expect_error(review_error(ReviewError::IncompleteReview(vec![
            "design".into()
        ])));
    history.push(scored(2, ALICE, "design", 2, None));
    Tester::with(())
        .given(history)
        .when_async(SessionCommand::CompleteReview {
            reviewer: ALICE,
            rubric: rubric(),
            at: at(3),
        })
        .await
        .then_expect_events(vec![SessionEvent::ReviewCompleted {
            reviewer: ALICE,
            at: at(3),
        }]);
    Tester::with(())
        .given(reviewed_by_alice())
        .when_async(SessionCommand::CompleteReview {
            reviewer: ALICE,
            rubric: rubric(),
            at: at(4),
        })
        .await
        .then_expect_error(review_error(ReviewError::ReviewAlreadyCompleted));
}

#[tokio::test]
async fn nothing_is_reviewed_before_the_session_is_finished() {
    let mut history = finished();
    history.pop();
    history.push(assigned());
    Tester::with(())
        .given(history)
        .when_async(score(1, ALICE, "correctness", 3, None))
        .await
        .then_expect_error(review_error(ReviewError::NotFinished));
}

#[tokio::test]
async fn a_decision_needs_a_completed_review() {
    let mut history = finished();
    history.push(assigned());
    history.push(scored(1, ALICE, "correctness", 3, None));
    Tester::with(())
        .given(history)
        .when_async(decide(MANAGER, None, false))
        .await
        .then_expect_error(review_error(ReviewError::NoCompletedReview));
}

#[tokio::test]
async fn a_hiring_manager_records_the_decision_with_the_report_hash() {
    Tester::with(())
        .given(reviewed_by_alice())
        .when_async(decide(MANAGER, None, false))
        .await
        .then_expect_events(vec![SessionEvent::DecisionRecorded {
            decision_id: id(100),
            outcome: DecisionOutcome::Advance,
            rationale: "Strong correctness; design discussed in the interview.".into(),
            decided_by: MANAGER,
            report_hash: REPORT_HASH.into(),
            supersedes: None,
            at: at(10),
            chain_seal: None,
        }]);
}

#[tokio::test]
async fn a_reviewer_of_the_session_decides_only_if_the_organization_allows_it() {
    Tester::with(())
        .given(reviewed_by_alice())
        .when_async(decide(ALICE, None, false))
        .await
        .then_expect_error(review_error(ReviewError::ReviewerMayNotDecide));
    let result = Tester::with(())
        .given(reviewed_by_alice())
        .when_async(decide(ALICE, None, true))
        .await;
    let events = result.inspect_result().expect("allowed");
    assert!(
        matches!(events[0], SessionEvent::DecisionRecorded { decided_by, .. } if decided_by == ALICE)
    );
}

#[tokio::test]
async fn a_decision_is_amended_only_by_naming_the_current_one() {
    let mut history = reviewed_by_alice();
    history.push(SessionEvent::DecisionRecorded {
        decision_id: id(99),
        outcome: DecisionOutcome::Hold,
        rationale: "Waiting for the walk-through.".into(),
        decided_by: MANAGER,
        report_hash: REPORT_HASH.into(),
        supersedes: None,
        at: at(5),
        chain_seal: None,
    });
    Tester::with(())
        .given(history.clone())
        .when_async(decide(MANAGER, None, false))
        .await
        .then_expect_error(review_error(ReviewError::DecisionAlreadyRecorded));
    Tester::with(())
        .given(history.clone())
        .when_async(decide(MANAGER, Some(id(7)), false))
        .await
        .then_expect_error(review_error(ReviewError::NotCurrentDecision(id(7))));
    let result = Tester::with(())
        .given(history)
        .when_async(decide(MANAGER, Some(id(99)), false))
        .await;
    let events = result.inspect_result().expect("amended");
    assert!(
        matches!(events[0], SessionEvent::DecisionRecorded { supersedes: Some(s), .. } if s == id(99))
    );
}

#[tokio::test]
async fn decisions_need_a_rationale_and_a_well_formed_report_hash() {
    let mut no_reason = decide(MANAGER, None, false);
    if let SessionCommand::RecordDecision { rationale, .. } = &mut no_reason {
        *rationale = String::new();
    }
    Tester::with(())
        .given(reviewed_by_alice())
        .when_async(no_reason)
        .await
        .then_expect_error(review_error(ReviewError::RationaleRequired));
    let mut bad_hash = decide(MANAGER, None, false);
    if let SessionCommand::RecordDecision { report_hash, .. } = &mut bad_hash {
        *report_hash = "ABC".into();
    }
    Tester::with(())
        .given(reviewed_by_alice())
        .when_async(bad_hash)
        .await
        .then_expect_error(review_error(ReviewError::InvalidReportHash));
}

fn analysed(findings: usize) -> SessionEvent {
    let finding = Finding {
        detector: "provenance".into(),
        detector_version: "1".into(),
        rule: "pasted_share_high".into(),
        level: FindingLevel::Review,
        measured: 0.6,
        threshold: 0.4,
        comparison: Comparison::Above,
        summary: "60% pasted".into(),
        related_session: None,
        supporting: Vec::new(),
        evidence: Vec::new(),
    };
    SessionEvent::IntegrityAnalysed {
        analysis: Box::new(IntegrityAnalysis {
            suite_version: "suite@1".into(),
            trigger: "submitted".into(),
            tier: Tier::ReviewSuggested,
            reasons: vec![],
            reports: vec![DetectorReport {
                detector: "provenance".into(),
                detector_version: "1".into(),
                skipped: None,
                checks: vec![],
                findings: vec![finding; findings],
                metrics: None,
            }],
            followups: vec![],
            events_analysed: 10,
            last_seq: 10,
        }),
        at: at(-94),
        chain_seal: None,
    }
}

#[tokio::test]
async fn a_finding_is_confirmed_or_dismissed_with_a_reason() {
    let mut history = finished();
    history.push(analysed(2));
    let resolve = |ordinal: u32, reason: &str| SessionCommand::ResolveFinding {
        suite_version: "suite@1".into(),
        ordinal,
        resolution: FindingResolution::Dismissed,
        reason: reason.into(),
        by: ALICE,
        at: at(1),
    };
    Tester::with(())
        .given(history.clone())
        .when_async(resolve(
            1,
            "The pasted block is the candidate's own helper from earlier in the session.",
        ))
        .await
        .then_expect_events(vec![SessionEvent::FindingResolved {
            suite_version: "suite@1".into(),
            ordinal: 1,
            resolution: FindingResolution::Dismissed,
            reason: "The pasted block is the candidate's own helper from earlier in the session."
                .into(),
            by: ALICE,
            at: at(1),
        }]);
    Tester::with(())
        .given(history.clone())
        .when_async(resolve(2, "x"))
        .await
        .then_expect_error(review_error(ReviewError::UnknownFinding {
            suite_version: "suite@1".into(),
            ordinal: 2,
        }));
    Tester::with(())
        .given(history)
        .when_async(resolve(0, " "))
        .await
        .then_expect_error(review_error(ReviewError::ReasonRequired));
}

#[tokio::test]
async fn comments_are_anchored_to_a_replay_position_and_need_text() {
    let comment = |text: &str| SessionCommand::AddComment {
        comment_id: id(50),
        author: BOB,
        replay_seq: 412,
        text: text.into(),
        at: at(2),
    };
    Tester::with(())
        .given(finished())
        .when_async(comment("Nice refactor of the retry loop here."))
        .await
        .then_expect_events(vec![SessionEvent::CommentAdded {
            comment_id: id(50),
            author: BOB,
            replay_seq: 412,
            text: "Nice refactor of the retry loop here.".into(),
            at: at(2),
        }]);
    Tester::with(())
        .given(finished())
        .when_async(comment(""))
        .await
        .then_expect_error(review_error(ReviewError::InvalidComment));
}
