//! Given / when / then tests of the `CandidateSession` aggregate: every transition and every
//! refusal.
//!
//! The timeline used throughout (all UTC):
//!
//! ```text
//! 2026-04-06 08:00  invited, invitation valid until 2026-04-13 08:00
//! 2026-04-07 18:55  consent recorded
//! 2026-04-07 19:00  started; 90-minute limit, so the deadline is 20:30
//! 2026-04-07 20:12:30  submitted (4,350 s used)
//! ```

use chrono::{DateTime, Duration, Utc};
use clarity_domain::assessment::Format;
use clarity_domain::integrity::{IntegrityAnalysis, Tier};
use clarity_domain::session::{
    AssessmentRef, Candidate, ConsentScopes, SessionCommand, SessionError, SessionEvent,
    SessionStatus,
};
use clarity_domain::CandidateSession;
use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;
use uuid::Uuid;

type SessionTester = TestFramework<CandidateSession>;

const SESSION_ID: Uuid = Uuid::from_u128(0x5e55_1000_0000_4000_8000_0000_0000_0001);
const ORG_ID: Uuid = Uuid::from_u128(0x0a9b_0000_0000_4000_8000_0000_0000_0001);
const RECRUITER_ID: Uuid = Uuid::from_u128(0x0e5e_0000_0000_4000_8000_0000_0000_0042);
const ASSESSMENT_ID: Uuid = Uuid::from_u128(0xc1a7_1700_0000_4000_8000_0000_0000_0006);
const TIME_LIMIT_MINUTES: u32 = 90;
const FILES_DIGEST: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

fn at(timestamp: &str) -> DateTime<Utc> {
    timestamp.parse().expect("fixed RFC 3339 timestamp")
}

fn invited_at() -> DateTime<Utc> {
    at("2026-04-06T08:00:00Z")
}

fn invite_expires_at() -> DateTime<Utc> {
    at("2026-04-13T08:00:00Z")
}

fn consented_at() -> DateTime<Utc> {
    at("2026-04-07T18:55:00Z")
}

fn started_at() -> DateTime<Utc> {
    at("2026-04-07T19:00:00Z")
}

fn deadline() -> DateTime<Utc> {
    at("2026-04-07T20:30:00Z")
}

fn submitted_at() -> DateTime<Utc> {
    at("2026-04-07T20:12:30Z")
}

fn candidate() -> Candidate {
    Candidate {
        name: "Amara Okafor".to_string(),
        email: "amara.okafor@example.com".to_string(),
        external_ref: Some("greenhouse:48213".to_string()),
    }
}

fn assessment_ref() -> AssessmentRef {
    AssessmentRef {
        assessment_id: ASSESSMENT_ID,
        version: 3,
        title: "Async Task Queue Implementation".to_string(),
        format: Format::TakeHome,
        time_limit_minutes: TIME_LIMIT_MINUTES,
        spec_digest: "3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b".to_string(),
    }
}

fn scopes() -> ConsentScopes {
    ConsentScopes {
        keystroke_dynamics: true,
        face_continuity: false,
    }
}

// Events

fn invited() -> SessionEvent {
    invited_with(candidate(), invite_expires_at())
}

fn invited_with(candidate: Candidate, invite_expires_at: DateTime<Utc>) -> SessionEvent {
    SessionEvent::CandidateInvited {
        session_id: SESSION_ID,
        org_id: ORG_ID,
        candidate,
        assessment: assessment_ref(),
        invite_expires_at,
        invited_by: RECRUITER_ID,
        at: invited_at(),
    }
}

fn consented() -> SessionEvent {
    SessionEvent::ConsentRecorded {
        notice_sha256: None,
        notice_version: "2026-03".to_string(),
        scopes: scopes(),
        at: consented_at(),
    }
}

fn started() -> SessionEvent {
    SessionEvent::SessionStarted {
        at: started_at(),
        deadline: deadline(),
    }
}

fn submitted() -> SessionEvent {
    SessionEvent::SessionSubmitted {
        through_seq: None,
        files_digest: FILES_DIGEST.to_string(),
        file_count: 7,
        time_used_seconds: 4_350,
        at: submitted_at(),
    }
}

fn expired() -> SessionEvent {
    SessionEvent::SessionExpired {
        through_seq: None,
        deadline: deadline(),
        time_used_seconds: 5_400,
        at: deadline(),
    }
}

// Commands

fn invite() -> SessionCommand {
    invite_with(candidate(), invite_expires_at())
}

fn invite_with(candidate: Candidate, invite_expires_at: DateTime<Utc>) -> SessionCommand {
    SessionCommand::Invite {
        session_id: SESSION_ID,
        org_id: ORG_ID,
        candidate,
        assessment: assessment_ref(),
        invite_expires_at,
        invited_by: RECRUITER_ID,
        at: invited_at(),
    }
}

fn consent_at(when: DateTime<Utc>) -> SessionCommand {
    SessionCommand::RecordConsent {
        notice_sha256: None,
        notice_version: "2026-03".to_string(),
        scopes: scopes(),
        at: when,
    }
}

fn consent() -> SessionCommand {
    consent_at(consented_at())
}

fn start_at(when: DateTime<Utc>) -> SessionCommand {
    SessionCommand::Start { at: when }
}

fn start() -> SessionCommand {
    start_at(started_at())
}

fn submit_at(when: DateTime<Utc>) -> SessionCommand {
    SessionCommand::Submit {
        through_seq: None,
        files_digest: FILES_DIGEST.to_string(),
        file_count: 7,
        at: when,
    }
}

fn submit() -> SessionCommand {
    submit_at(submitted_at())
}

fn expire_at(when: DateTime<Utc>) -> SessionCommand {
    SessionCommand::Expire {
        through_seq: None,
        at: when,
    }
}

// Histories

fn until_invited() -> Vec<SessionEvent> {
    vec![invited()]
}

fn until_consented() -> Vec<SessionEvent> {
    vec![invited(), consented()]
}

fn until_started() -> Vec<SessionEvent> {
    vec![invited(), consented(), started()]
}

fn until_submitted() -> Vec<SessionEvent> {
    vec![invited(), consented(), started(), submitted()]
}

fn until_expired() -> Vec<SessionEvent> {
    vec![invited(), consented(), started(), expired()]
}

fn replay(history: Vec<SessionEvent>) -> CandidateSession {
    let mut session = CandidateSession::default();
    for event in history {
        session.apply(event);
    }
    session
}

// ---------------------------------------------------------------------------------------------
// Inviting
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn inviting_a_candidate_opens_the_session() {
    // Arrange
    let tester = SessionTester::with(()).given_no_previous_events();

    // Act
    let result = tester.when_async(invite()).await;

    // Assert
    result.then_expect_events(vec![invited()]);
}

#[tokio::test]
async fn inviting_a_candidate_without_an_ats_reference_is_accepted() {
    // Arrange
    let without_ref = Candidate {
        external_ref: None,
        ..candidate()
    };

    // Act
    let result = SessionTester::with(())
        .given_no_previous_events()
        .when_async(invite_with(without_ref.clone(), invite_expires_at()))
        .await;

    // Assert
    result.then_expect_events(vec![invited_with(without_ref, invite_expires_at())]);
}

#[tokio::test]
async fn inviting_into_a_session_that_already_exists_is_rejected() {
    for history in [until_invited(), until_consented(), until_started()] {
        // Arrange
        let tester = SessionTester::with(()).given(history);

        // Act
        let result = tester.when_async(invite()).await;

        // Assert
        result.then_expect_error(SessionError::AlreadyInvited);
    }
}

#[tokio::test]
async fn inviting_into_a_finished_session_is_rejected_as_already_invited() {
    for history in [until_submitted(), until_expired()] {
        // Arrange
        let tester = SessionTester::with(()).given(history);

        // Act
        let result = tester.when_async(invite()).await;

        // Assert
        result.then_expect_error(SessionError::AlreadyInvited);
    }
}

#[tokio::test]
async fn an_invitation_expiring_at_or_before_the_invite_time_is_rejected() {
    for expiry in [invited_at(), invited_at() - Duration::seconds(1)] {
        // Arrange
        let command = invite_with(candidate(), expiry);

        // Act
        let result = SessionTester::with(())
            .given_no_previous_events()
            .when_async(command)
            .await;

        // Assert
        result.then_expect_error(SessionError::InviteExpiryInPast);
    }
}

#[tokio::test]
async fn an_invitation_expiring_one_second_after_the_invite_time_is_accepted() {
    // Arrange
    let expiry = invited_at() + Duration::seconds(1);

    // Act
    let result = SessionTester::with(())
        .given_no_previous_events()
        .when_async(invite_with(candidate(), expiry))
        .await;

    // Assert
    result.then_expect_events(vec![invited_with(candidate(), expiry)]);
}

#[tokio::test]
async fn inviting_a_candidate_with_a_blank_name_is_rejected() {
    for name in ["", "   ", "\t"] {
        // Arrange
        let nameless = Candidate {
            name: name.to_string(),
            ..candidate()
        };

        // Act
        let result = SessionTester::with(())
            .given_no_previous_events()
            .when_async(invite_with(nameless, invite_expires_at()))
            .await;

        // Assert
        result.then_expect_error(SessionError::InvalidCandidate);
    }
}

#[tokio::test]
async fn inviting_a_candidate_with_a_malformed_email_is_rejected() {
    let too_long = format!("{}@example.com", "a".repeat(243)); // 255 characters
    for email in [
        "",
        "amara.okafor",
        "amara@",
        "@example.com",
        "amara@example",
        "amara@.example.com",
        "amara@example.com.",
        "amara okafor@example.com",
        "amara@okafor@example.com",
        too_long.as_str(),
    ] {
        // Arrange
        let misaddressed = Candidate {
            email: email.to_string(),
            ..candidate()
        };

        // Act
        let result = SessionTester::with(())
            .given_no_previous_events()
            .when_async(invite_with(misaddressed, invite_expires_at()))
            .await;

        // Assert
        result.then_expect_error(SessionError::InvalidCandidate);
    }
}

#[tokio::test]
async fn an_email_of_exactly_two_hundred_fifty_four_characters_is_accepted() {
    // Arrange
    let email = format!("{}@example.com", "a".repeat(242));
    assert_eq!(email.len(), 254);
    let long_but_valid = Candidate {
        email,
        ..candidate()
    };

    // Act
    let result = SessionTester::with(())
        .given_no_previous_events()
        .when_async(invite_with(long_but_valid.clone(), invite_expires_at()))
        .await;

    // Assert
    result.then_expect_events(vec![invited_with(long_but_valid, invite_expires_at())]);
}

#[tokio::test]
async fn an_invalid_candidate_is_reported_before_an_expiry_in_the_past() {
    // Arrange
    let nameless = Candidate {
        name: String::new(),
        ..candidate()
    };

    // Act
    let result = SessionTester::with(())
        .given_no_previous_events()
        .when_async(invite_with(nameless, invited_at()))
        .await;

    // Assert
    result.then_expect_error(SessionError::InvalidCandidate);
}

// ---------------------------------------------------------------------------------------------
// Commands before the invitation
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn any_command_on_a_session_that_does_not_exist_is_rejected() {
    for command in [consent(), start(), submit(), expire_at(deadline())] {
        // Arrange
        let tester = SessionTester::with(()).given_no_previous_events();

        // Act
        let result = tester.when_async(command).await;

        // Assert
        result.then_expect_error(SessionError::NotFound);
    }
}

// ---------------------------------------------------------------------------------------------
// Consent
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn recording_consent_keeps_the_notice_version_and_scopes() {
    // Arrange
    let tester = SessionTester::with(()).given(until_invited());

    // Act
    let result = tester.when_async(consent()).await;

    // Assert
    result.then_expect_events(vec![consented()]);
}

#[tokio::test]
async fn consent_at_the_exact_moment_the_invitation_expires_is_accepted() {
    // Arrange
    let tester = SessionTester::with(()).given(until_invited());

    // Act
    let result = tester.when_async(consent_at(invite_expires_at())).await;

    // Assert
    result.then_expect_events(vec![SessionEvent::ConsentRecorded {
        notice_sha256: None,
        notice_version: "2026-03".to_string(),
        scopes: scopes(),
        at: invite_expires_at(),
    }]);
}

#[tokio::test]
async fn consent_after_the_invitation_expired_is_rejected() {
    // Arrange
    let tester = SessionTester::with(()).given(until_invited());

    // Act
    let result = tester
        .when_async(consent_at(invite_expires_at() + Duration::seconds(1)))
        .await;

    // Assert
    result.then_expect_error(SessionError::InviteExpired(invite_expires_at()));
}

#[tokio::test]
async fn recording_consent_twice_is_rejected() {
    // Arrange
    let tester = SessionTester::with(()).given(until_consented());

    // Act
    let result = tester.when_async(consent()).await;

    // Assert
    result.then_expect_error(SessionError::ConsentAlreadyRecorded);
}

#[tokio::test]
async fn recording_consent_after_the_session_started_is_rejected() {
    // Arrange
    let tester = SessionTester::with(()).given(until_started());

    // Act
    let result = tester.when_async(consent()).await;

    // Assert
    result.then_expect_error(SessionError::AlreadyStarted);
}

#[tokio::test]
async fn recording_consent_after_the_session_finished_is_rejected() {
    for (history, status) in [
        (until_submitted(), "submitted"),
        (until_expired(), "expired"),
    ] {
        // Arrange
        let tester = SessionTester::with(()).given(history);

        // Act
        let result = tester.when_async(consent()).await;

        // Assert
        result.then_expect_error(SessionError::AlreadyFinished(status));
    }
}

#[tokio::test]
async fn consent_to_a_blank_notice_version_is_rejected() {
    for notice_version in ["", "  "] {
        // Arrange
        let command = SessionCommand::RecordConsent {
            notice_sha256: None,
            notice_version: notice_version.to_string(),
            scopes: scopes(),
            at: consented_at(),
        };

        // Act
        let result = SessionTester::with(())
            .given(until_invited())
            .when_async(command)
            .await;

        // Assert
        result.then_expect_error(SessionError::InvalidNotice);
    }
}

// ---------------------------------------------------------------------------------------------
// Starting
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn starting_sets_the_deadline_to_the_start_time_plus_the_time_limit() {
    // Arrange
    let tester = SessionTester::with(()).given(until_consented());

    // Act
    let result = tester.when_async(start()).await;

    // Assert
    assert_eq!(
        deadline() - started_at(),
        Duration::minutes(i64::from(TIME_LIMIT_MINUTES))
    );
    result.then_expect_events(vec![SessionEvent::SessionStarted {
        at: started_at(),
        deadline: deadline(),
    }]);
}

#[tokio::test]
async fn starting_at_the_exact_moment_the_invitation_expires_is_accepted() {
    // Arrange
    let tester = SessionTester::with(()).given(until_consented());

    // Act
    let result = tester.when_async(start_at(invite_expires_at())).await;

    // Assert
    result.then_expect_events(vec![SessionEvent::SessionStarted {
        at: invite_expires_at(),
        deadline: at("2026-04-13T09:30:00Z"),
    }]);
}

#[tokio::test]
async fn starting_without_consent_is_rejected() {
    // Arrange
    let tester = SessionTester::with(()).given(until_invited());

    // Act
    let result = tester.when_async(start()).await;

    // Assert
    result.then_expect_error(SessionError::ConsentRequired);
}

#[tokio::test]
async fn starting_after_the_invitation_expired_is_rejected_even_with_consent() {
    // Arrange
    let tester = SessionTester::with(()).given(until_consented());

    // Act
    let result = tester
        .when_async(start_at(invite_expires_at() + Duration::minutes(1)))
        .await;

    // Assert
    result.then_expect_error(SessionError::InviteExpired(invite_expires_at()));
}

#[tokio::test]
async fn starting_twice_is_rejected() {
    // Arrange
    let tester = SessionTester::with(()).given(until_started());

    // Act
    let result = tester
        .when_async(start_at(started_at() + Duration::minutes(5)))
        .await;

    // Assert
    result.then_expect_error(SessionError::AlreadyStarted);
}

#[tokio::test]
async fn starting_after_the_session_expired_is_rejected() {
    // Arrange
    let tester = SessionTester::with(()).given(until_expired());

    // Act
    let result = tester.when_async(start()).await;

    // Assert
    result.then_expect_error(SessionError::AlreadyFinished("expired"));
}

#[tokio::test]
async fn starting_after_the_session_was_submitted_is_rejected() {
    // Arrange
    let tester = SessionTester::with(()).given(until_submitted());

    // Act
    let result = tester.when_async(start()).await;

    // Assert
    result.then_expect_error(SessionError::AlreadyFinished("submitted"));
}

// ---------------------------------------------------------------------------------------------
// Submitting
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn submitting_records_the_files_and_the_time_used() {
    // Arrange
    let tester = SessionTester::with(()).given(until_started());

    // Act
    let result = tester.when_async(submit()).await;

    // Assert: 19:00:00 to 20:12:30 is 72.5 minutes.
    result.then_expect_events(vec![submitted()]);
}

#[tokio::test]
async fn submitting_at_the_exact_deadline_is_accepted_with_the_full_time_used() {
    // Arrange
    let tester = SessionTester::with(()).given(until_started());

    // Act
    let result = tester.when_async(submit_at(deadline())).await;

    // Assert
    result.then_expect_events(vec![SessionEvent::SessionSubmitted {
        through_seq: None,
        files_digest: FILES_DIGEST.to_string(),
        file_count: 7,
        time_used_seconds: 5_400,
        at: deadline(),
    }]);
}

#[tokio::test]
async fn submitting_after_the_deadline_is_rejected() {
    // Arrange
    let tester = SessionTester::with(()).given(until_started());

    // Act
    let result = tester
        .when_async(submit_at(deadline() + Duration::seconds(1)))
        .await;

    // Assert
    result.then_expect_error(SessionError::DeadlinePassed(deadline()));
}

#[tokio::test]
async fn submitting_before_the_session_started_is_rejected() {
    for history in [until_invited(), until_consented()] {
        // Arrange
        let tester = SessionTester::with(()).given(history);

        // Act
        let result = tester.when_async(submit()).await;

        // Assert
        result.then_expect_error(SessionError::NotStarted);
    }
}

#[tokio::test]
async fn submitting_twice_is_rejected() {
    // Arrange
    let tester = SessionTester::with(()).given(until_submitted());

    // Act
    let result = tester
        .when_async(submit_at(submitted_at() + Duration::minutes(1)))
        .await;

    // Assert
    result.then_expect_error(SessionError::AlreadyFinished("submitted"));
}

#[tokio::test]
async fn submitting_after_the_session_expired_is_rejected() {
    // Arrange
    let tester = SessionTester::with(()).given(until_expired());

    // Act
    let result = tester.when_async(submit_at(deadline())).await;

    // Assert
    result.then_expect_error(SessionError::AlreadyFinished("expired"));
}

#[tokio::test]
async fn submitting_with_a_digest_that_is_not_sixty_four_lowercase_hex_characters_is_rejected() {
    let uppercase = FILES_DIGEST.to_uppercase();
    let too_short = &FILES_DIGEST[..63];
    let too_long = format!("{FILES_DIGEST}0");
    let not_hex = format!("{}g", &FILES_DIGEST[..63]);
    let prefixed = format!("sha256:{}", &FILES_DIGEST[..57]);
    for digest in [
        "",
        uppercase.as_str(),
        too_short,
        too_long.as_str(),
        not_hex.as_str(),
        prefixed.as_str(),
    ] {
        // Arrange
        let command = SessionCommand::Submit {
            through_seq: None,
            files_digest: digest.to_string(),
            file_count: 7,
            at: submitted_at(),
        };

        // Act
        let result = SessionTester::with(())
            .given(until_started())
            .when_async(command)
            .await;

        // Assert
        result.then_expect_error(SessionError::InvalidDigest);
    }
}

// ---------------------------------------------------------------------------------------------
// Expiring
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn expiring_at_the_deadline_counts_the_whole_time_limit_as_used() {
    // Arrange
    let tester = SessionTester::with(()).given(until_started());

    // Act
    let result = tester.when_async(expire_at(deadline())).await;

    // Assert
    result.then_expect_events(vec![expired()]);
}

#[tokio::test]
async fn expiring_late_still_counts_only_up_to_the_deadline() {
    // Arrange
    let scheduler_ran_at = deadline() + Duration::minutes(3);
    let tester = SessionTester::with(()).given(until_started());

    // Act
    let result = tester.when_async(expire_at(scheduler_ran_at)).await;

    // Assert
    result.then_expect_events(vec![SessionEvent::SessionExpired {
        through_seq: None,
        deadline: deadline(),
        time_used_seconds: 5_400,
        at: scheduler_ran_at,
    }]);
}

#[tokio::test]
async fn expiring_before_the_deadline_is_rejected() {
    // Arrange
    let tester = SessionTester::with(()).given(until_started());

    // Act
    let result = tester
        .when_async(expire_at(deadline() - Duration::seconds(1)))
        .await;

    // Assert
    result.then_expect_error(SessionError::DeadlineNotReached(deadline()));
}

#[tokio::test]
async fn expiring_a_session_that_has_not_started_is_rejected() {
    for history in [until_invited(), until_consented()] {
        // Arrange
        let tester = SessionTester::with(()).given(history);

        // Act
        let result = tester.when_async(expire_at(deadline())).await;

        // Assert
        result.then_expect_error(SessionError::NotStarted);
    }
}

#[tokio::test]
async fn expiring_a_submitted_session_is_rejected() {
    // Arrange
    let tester = SessionTester::with(()).given(until_submitted());

    // Act
    let result = tester.when_async(expire_at(deadline())).await;

    // Assert
    result.then_expect_error(SessionError::AlreadyFinished("submitted"));
}

#[tokio::test]
async fn expiring_twice_is_rejected() {
    // Arrange
    let tester = SessionTester::with(()).given(until_expired());

    // Act
    let result = tester
        .when_async(expire_at(deadline() + Duration::minutes(1)))
        .await;

    // Assert
    result.then_expect_error(SessionError::AlreadyFinished("expired"));
}

// ---------------------------------------------------------------------------------------------
// Integrity analysis
// ---------------------------------------------------------------------------------------------

fn analysis(suite_version: &str) -> Box<IntegrityAnalysis> {
    Box::new(IntegrityAnalysis {
        suite_version: suite_version.to_string(),
        trigger: "submitted".to_string(),
        tier: Tier::ReviewSuggested,
        reasons: vec!["provenance: 62% of the final code arrived in pastes".to_string()],
        reports: Vec::new(),
        followups: Vec::new(),
        events_analysed: 4_210,
        last_seq: 4_210,
    })
}

fn analysed(suite_version: &str) -> SessionEvent {
    SessionEvent::IntegrityAnalysed {
        analysis: analysis(suite_version),
        at: submitted_at() + Duration::seconds(3),
        chain_seal: None,
    }
}

fn record_analysis(suite_version: &str) -> SessionCommand {
    SessionCommand::RecordIntegrityAnalysis {
        analysis: analysis(suite_version),
        at: submitted_at() + Duration::seconds(3),
        chain_seal: None,
    }
}

#[tokio::test]
async fn a_finished_session_records_its_integrity_analysis() {
    for history in [until_submitted(), until_expired()] {
        // Arrange
        let tester = SessionTester::with(()).given(history);

        // Act
        let result = tester.when_async(record_analysis("suite@1")).await;

        // Assert
        result.then_expect_events(vec![analysed("suite@1")]);
    }
}

#[tokio::test]
async fn a_session_is_analysed_only_once_it_is_finished() {
    for (history, status) in [
        (until_invited(), "invited"),
        (until_consented(), "consented"),
        (until_started(), "in_progress"),
    ] {
        // Arrange
        let tester = SessionTester::with(()).given(history);

        // Act
        let result = tester.when_async(record_analysis("suite@1")).await;

        // Assert
        result.then_expect_error(SessionError::NotFinished(status));
    }
}

#[tokio::test]
async fn the_same_suite_version_is_recorded_once_and_a_new_one_beside_it() {
    // Arrange
    let mut history = until_submitted();
    history.push(analysed("suite@1"));

    // Act + Assert
    SessionTester::with(())
        .given(history.clone())
        .when_async(record_analysis("suite@1"))
        .await
        .then_expect_error(SessionError::AnalysisAlreadyRecorded("suite@1".to_string()));
    SessionTester::with(())
        .given(history)
        .when_async(record_analysis("suite@2"))
        .await
        .then_expect_events(vec![analysed("suite@2")]);
}

#[tokio::test]
async fn nothing_else_happens_to_a_session_after_its_analysis() {
    // Arrange
    let mut history = until_submitted();
    history.push(analysed("suite@1"));
    let tester = SessionTester::with(()).given(history);

    // Act
    let result = tester.when_async(expire_at(deadline())).await;

    // Assert
    result.then_expect_error(SessionError::AlreadyFinished("submitted"));
}

// ---------------------------------------------------------------------------------------------
// State after replay
// ---------------------------------------------------------------------------------------------

#[test]
fn replaying_the_history_moves_the_session_through_each_status() {
    // Arrange
    let histories = [
        (vec![], SessionStatus::New, "new"),
        (until_invited(), SessionStatus::Invited, "invited"),
        (until_consented(), SessionStatus::Consented, "consented"),
        (until_started(), SessionStatus::InProgress, "in_progress"),
        (until_submitted(), SessionStatus::Submitted, "submitted"),
        (until_expired(), SessionStatus::Expired, "expired"),
    ];

    for (history, status, name) in histories {
        // Act
        let session = replay(history);

        // Assert
        assert_eq!(session.status, status);
        assert_eq!(session.status.as_str(), name);
    }
}

#[test]
fn a_started_session_remembers_its_assessment_and_clock() {
    // Arrange
    let history = until_started();

    // Act
    let session = replay(history);

    // Assert
    assert_eq!(session.id, Some(SESSION_ID));
    assert_eq!(session.org_id, Some(ORG_ID));
    assert_eq!(session.assessment, Some(assessment_ref()));
    assert_eq!(session.invite_expires_at, Some(invite_expires_at()));
    assert_eq!(session.started_at, Some(started_at()));
    assert_eq!(session.deadline, Some(deadline()));
}

#[test]
fn telemetry_is_accepted_only_while_in_progress_and_up_to_the_deadline() {
    // Arrange
    let in_progress = replay(until_started());
    let consented = replay(until_consented());
    let submitted = replay(until_submitted());

    // Act + Assert
    assert!(in_progress.accepts_telemetry(started_at()));
    assert!(in_progress.accepts_telemetry(deadline()));
    assert!(!in_progress.accepts_telemetry(deadline() + Duration::seconds(1)));
    assert!(!consented.accepts_telemetry(started_at()));
    assert!(!submitted.accepts_telemetry(submitted_at()));
}
