//! Given / when / then tests of the `Assessment` aggregate: every transition and every refusal.

use chrono::{DateTime, Utc};
use clarity_domain::assessment::{
    AssessmentCommand, AssessmentError, AssessmentEvent, AssessmentKind, AssessmentSpec,
    AssessmentStatus, Criterion, Difficulty, Format, IntegrityPolicy, Level, Rubric, SpecError,
    StarterFile, Task,
};
use clarity_domain::Assessment;
use cqrs_es::test::{AggregateResultValidator, TestFramework};
use cqrs_es::Aggregate;
use sha2::{Digest, Sha256};
use uuid::Uuid;

type AssessmentTester = TestFramework<Assessment>;

const ASSESSMENT_ID: Uuid = Uuid::from_u128(0x0a55_e550_0000_4000_8000_0000_0000_0001);
const ORG_ID: Uuid = Uuid::from_u128(0x0a9b_0000_0000_4000_8000_0000_0000_0001);

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

fn at(timestamp: &str) -> DateTime<Utc> {
    timestamp.parse().expect("fixed RFC 3339 timestamp")
}

fn created_at() -> DateTime<Utc> {
    at("2026-03-02T09:00:00Z")
}

fn later() -> DateTime<Utc> {
    at("2026-03-03T14:30:00Z")
}

fn criterion(key: &str, weight: u32) -> Criterion {
    Criterion {
        key: key.to_string(),
        name: key.replace('_', " "),
        weight,
        levels: (1..=4)
            .map(|score| Level {
                score,
                descriptor: format!("level {score} of {key}"),
            })
            .collect(),
    }
}

/// A small valid spec.
fn spec() -> AssessmentSpec {
    AssessmentSpec {
        title: "Payments webhook hardening".to_string(),
        kind: AssessmentKind::Custom,
        difficulty: Difficulty::Mid,
        best_for: "Evaluating idempotency and failure handling".to_string(),
        format: Format::TakeHome,
        time_limit_minutes: 120,
        tasks: vec![Task {
            title: "Make the webhook handler idempotent".to_string(),
            prompt: "## Scenario\nThe provider retries webhooks until it gets a 2xx...\n"
                .to_string(),
            starter_files: vec![
                StarterFile {
                    path: "app/webhook.py".to_string(),
                    content: "def handle(event):\n    ...\n".to_string(),
                },
                StarterFile {
                    path: "tests/test_webhook.py".to_string(),
                    content: "def test_placeholder():\n    assert True\n".to_string(),
                },
            ],
        }],
        rubric: Rubric {
            criteria: vec![criterion("correctness", 60), criterion("testing", 40)],
        },
        integrity_policy: IntegrityPolicy::default(),
    }
}

/// A second valid spec, different from [`spec`].
fn revised_spec() -> AssessmentSpec {
    AssessmentSpec {
        time_limit_minutes: 150,
        rubric: Rubric {
            criteria: vec![
                criterion("correctness", 50),
                criterion("testing", 30),
                criterion("communication", 20),
            ],
        },
        ..spec()
    }
}

/// A third valid spec, different from the other two.
fn third_spec() -> AssessmentSpec {
    AssessmentSpec {
        difficulty: Difficulty::Hard,
        ..revised_spec()
    }
}

/// SHA-256 of the spec's JSON, computed independently of `AssessmentSpec::digest`.
fn sha256_of_json(spec: &AssessmentSpec) -> String {
    hex::encode(Sha256::digest(serde_json::to_vec(spec).unwrap()))
}

fn drafted(spec: AssessmentSpec) -> AssessmentEvent {
    AssessmentEvent::AssessmentDrafted {
        assessment_id: ASSESSMENT_ID,
        org_id: Some(ORG_ID),
        spec,
        at: created_at(),
    }
}

fn revised(spec: AssessmentSpec) -> AssessmentEvent {
    AssessmentEvent::DraftRevised { spec, at: later() }
}

fn published(version: u32, spec: AssessmentSpec) -> AssessmentEvent {
    AssessmentEvent::AssessmentVersionPublished {
        version,
        spec_digest: sha256_of_json(&spec),
        spec,
        at: later(),
    }
}

fn retired() -> AssessmentEvent {
    AssessmentEvent::AssessmentRetired { at: later() }
}

fn create(spec: AssessmentSpec) -> AssessmentCommand {
    AssessmentCommand::CreateDraft {
        assessment_id: ASSESSMENT_ID,
        org_id: Some(ORG_ID),
        spec,
        at: created_at(),
    }
}

fn revise(spec: AssessmentSpec) -> AssessmentCommand {
    AssessmentCommand::ReviseDraft { spec, at: later() }
}

fn publish() -> AssessmentCommand {
    AssessmentCommand::Publish { at: later() }
}

fn retire() -> AssessmentCommand {
    AssessmentCommand::Retire { at: later() }
}

/// The result of creating a new assessment with `spec`.
async fn creating(spec: AssessmentSpec) -> AggregateResultValidator<Assessment> {
    AssessmentTester::with(())
        .given_no_previous_events()
        .when_async(create(spec))
        .await
}

/// The result of revising an existing assessment's draft to `spec`.
async fn revising(revision: AssessmentSpec) -> AggregateResultValidator<Assessment> {
    AssessmentTester::with(())
        .given(vec![drafted(spec())])
        .when_async(revise(revision))
        .await
}

/// Asserts that both creating and revising with `invalid` are refused with `expected`.
async fn assert_spec_rejected(invalid: AssessmentSpec, expected: SpecError) {
    creating(invalid.clone())
        .await
        .then_expect_error(AssessmentError::InvalidSpec(expected.clone()));
    revising(invalid)
        .await
        .then_expect_error(AssessmentError::InvalidSpec(expected));
}

/// Asserts that `valid` is accepted on creation.
async fn assert_spec_accepted(valid: AssessmentSpec) {
    creating(valid.clone())
        .await
        .then_expect_events(vec![drafted(valid)]);
}

fn with_starter_files(paths: &[&str]) -> AssessmentSpec {
    let mut s = spec();
    s.tasks[0].starter_files = paths
        .iter()
        .map(|p| StarterFile {
            path: p.to_string(),
            content: "x\n".to_string(),
        })
        .collect();
    s
}

fn with_criteria(criteria: Vec<Criterion>) -> AssessmentSpec {
    AssessmentSpec {
        rubric: Rubric { criteria },
        ..spec()
    }
}

// ---------------------------------------------------------------------------------------------
// Creating a draft
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn creating_a_draft_records_the_assessment_its_owner_and_its_spec() {
    // Arrange
    let command = create(spec());

    // Act
    let result = AssessmentTester::with(())
        .given_no_previous_events()
        .when_async(command)
        .await;

    // Assert
    result.then_expect_events(vec![drafted(spec())]);
}

#[tokio::test]
async fn creating_a_library_draft_without_an_organization_is_accepted() {
    // Arrange
    let command = AssessmentCommand::CreateDraft {
        assessment_id: ASSESSMENT_ID,
        org_id: None,
        spec: spec(),
        at: created_at(),
    };

    // Act
    let result = AssessmentTester::with(())
        .given_no_previous_events()
        .when_async(command)
        .await;

    // Assert
    result.then_expect_events(vec![AssessmentEvent::AssessmentDrafted {
        assessment_id: ASSESSMENT_ID,
        org_id: None,
        spec: spec(),
        at: created_at(),
    }]);
}

#[tokio::test]
async fn creating_an_assessment_that_already_exists_is_rejected() {
    // Arrange
    let history = vec![drafted(spec())];

    // Act
    let result = AssessmentTester::with(())
        .given(history)
        .when_async(create(revised_spec()))
        .await;

    // Assert
    result.then_expect_error(AssessmentError::AlreadyExists);
}

#[tokio::test]
async fn creating_an_assessment_that_was_published_and_retired_is_rejected_as_existing() {
    // Arrange
    let history = vec![drafted(spec()), published(1, spec()), retired()];

    // Act
    let result = AssessmentTester::with(())
        .given(history)
        .when_async(create(spec()))
        .await;

    // Assert
    result.then_expect_error(AssessmentError::AlreadyExists);
}

// ---------------------------------------------------------------------------------------------
// Commands before creation
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn revising_an_assessment_that_does_not_exist_is_rejected() {
    // Arrange
    let tester = AssessmentTester::with(()).given_no_previous_events();

    // Act
    let result = tester.when_async(revise(spec())).await;

    // Assert
    result.then_expect_error(AssessmentError::NotFound);
}

#[tokio::test]
async fn publishing_an_assessment_that_does_not_exist_is_rejected() {
    // Arrange
    let tester = AssessmentTester::with(()).given_no_previous_events();

    // Act
    let result = tester.when_async(publish()).await;

    // Assert
    result.then_expect_error(AssessmentError::NotFound);
}

#[tokio::test]
async fn retiring_an_assessment_that_does_not_exist_is_rejected() {
    // Arrange
    let tester = AssessmentTester::with(()).given_no_previous_events();

    // Act
    let result = tester.when_async(retire()).await;

    // Assert
    result.then_expect_error(AssessmentError::NotFound);
}

// ---------------------------------------------------------------------------------------------
// Revising
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn revising_a_draft_replaces_it() {
    // Arrange
    let history = vec![drafted(spec())];

    // Act
    let result = AssessmentTester::with(())
        .given(history)
        .when_async(revise(revised_spec()))
        .await;

    // Assert
    result.then_expect_events(vec![revised(revised_spec())]);
}

#[tokio::test]
async fn revising_a_published_assessment_starts_a_new_draft() {
    // Arrange
    let history = vec![drafted(spec()), published(1, spec())];

    // Act
    let result = AssessmentTester::with(())
        .given(history)
        .when_async(revise(revised_spec()))
        .await;

    // Assert
    result.then_expect_events(vec![revised(revised_spec())]);
}

// ---------------------------------------------------------------------------------------------
// Publishing
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn publishing_the_first_draft_creates_version_one_with_the_digest_of_its_spec() {
    // Arrange
    let history = vec![drafted(spec())];
    let expected_digest = sha256_of_json(&spec());

    // Act
    let result = AssessmentTester::with(())
        .given(history)
        .when_async(publish())
        .await;

    // Assert
    assert_eq!(spec().digest(), expected_digest);
    assert_eq!(expected_digest.len(), 64);
    result.then_expect_events(vec![AssessmentEvent::AssessmentVersionPublished {
        version: 1,
        spec: spec(),
        spec_digest: expected_digest,
        at: later(),
    }]);
}

#[tokio::test]
async fn publishing_a_revised_draft_creates_version_two_with_the_revised_spec() {
    // Arrange
    let history = vec![
        drafted(spec()),
        published(1, spec()),
        revised(revised_spec()),
    ];

    // Act
    let result = AssessmentTester::with(())
        .given(history)
        .when_async(publish())
        .await;

    // Assert
    result.then_expect_events(vec![AssessmentEvent::AssessmentVersionPublished {
        version: 2,
        spec: revised_spec(),
        spec_digest: sha256_of_json(&revised_spec()),
        at: later(),
    }]);
}

#[tokio::test]
async fn publishing_uses_the_latest_revision_when_a_draft_was_revised_several_times() {
    // Arrange
    let history = vec![
        drafted(spec()),
        revised(revised_spec()),
        revised(third_spec()),
    ];

    // Act
    let result = AssessmentTester::with(())
        .given(history)
        .when_async(publish())
        .await;

    // Assert
    result.then_expect_events(vec![published(1, third_spec())]);
}

#[test]
fn different_specs_are_published_with_different_digests() {
    // Arrange
    let first = spec().digest();

    // Act
    let second = revised_spec().digest();

    // Assert
    assert_ne!(first, second);
    assert_eq!(first, spec().digest(), "the digest is deterministic");
}

#[tokio::test]
async fn publishing_again_without_a_revision_is_rejected() {
    // Arrange
    let history = vec![drafted(spec()), published(1, spec())];

    // Act
    let result = AssessmentTester::with(())
        .given(history)
        .when_async(publish())
        .await;

    // Assert
    result.then_expect_error(AssessmentError::NothingToPublish);
}

#[tokio::test]
async fn publishing_after_a_revision_identical_to_the_latest_version_is_rejected() {
    // Arrange
    let history = vec![drafted(spec()), published(1, spec()), revised(spec())];

    // Act
    let result = AssessmentTester::with(())
        .given(history)
        .when_async(publish())
        .await;

    // Assert
    result.then_expect_error(AssessmentError::NothingToPublish);
}

#[tokio::test]
async fn reverting_a_pending_revision_to_the_latest_version_leaves_nothing_to_publish() {
    // Arrange
    let history = vec![
        drafted(spec()),
        published(1, spec()),
        revised(revised_spec()),
        revised(spec()),
    ];

    // Act
    let result = AssessmentTester::with(())
        .given(history)
        .when_async(publish())
        .await;

    // Assert
    result.then_expect_error(AssessmentError::NothingToPublish);
}

#[tokio::test]
async fn a_revision_identical_to_an_older_version_is_published_as_a_new_version() {
    // Arrange
    let history = vec![
        drafted(spec()),
        published(1, spec()),
        revised(revised_spec()),
        published(2, revised_spec()),
        revised(spec()),
    ];

    // Act
    let result = AssessmentTester::with(())
        .given(history)
        .when_async(publish())
        .await;

    // Assert
    result.then_expect_events(vec![published(3, spec())]);
}

#[tokio::test]
async fn published_versions_are_kept_by_number_and_never_changed() {
    // Arrange
    let history = vec![
        drafted(spec()),
        published(1, spec()),
        revised(revised_spec()),
        published(2, revised_spec()),
        revised(third_spec()),
    ];
    let mut assessment = Assessment::default();

    // Act
    for event in history {
        assessment.apply(event);
    }

    // Assert
    assert_eq!(assessment.id, Some(ASSESSMENT_ID));
    assert_eq!(assessment.org_id, Some(ORG_ID));
    assert_eq!(assessment.status, AssessmentStatus::Active);
    assert_eq!(assessment.latest_version(), Some(2));
    assert_eq!(assessment.version(1), Some(&spec()));
    assert_eq!(assessment.version(2), Some(&revised_spec()));
    assert_eq!(assessment.version(3), None);
    assert_eq!(assessment.draft, Some(third_spec()));
}

// ---------------------------------------------------------------------------------------------
// Retiring
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn retiring_a_published_assessment_is_recorded() {
    // Arrange
    let history = vec![drafted(spec()), published(1, spec())];

    // Act
    let result = AssessmentTester::with(())
        .given(history)
        .when_async(retire())
        .await;

    // Assert
    result.then_expect_events(vec![retired()]);
}

#[tokio::test]
async fn retiring_a_never_published_draft_is_recorded() {
    // Arrange
    let history = vec![drafted(spec())];

    // Act
    let result = AssessmentTester::with(())
        .given(history)
        .when_async(retire())
        .await;

    // Assert
    result.then_expect_events(vec![retired()]);
}

#[tokio::test]
async fn revising_a_retired_assessment_is_rejected() {
    // Arrange
    let history = vec![drafted(spec()), published(1, spec()), retired()];

    // Act
    let result = AssessmentTester::with(())
        .given(history)
        .when_async(revise(revised_spec()))
        .await;

    // Assert
    result.then_expect_error(AssessmentError::Retired);
}

#[tokio::test]
async fn publishing_a_retired_assessment_is_rejected_even_with_a_pending_draft() {
    // Arrange
    let history = vec![
        drafted(spec()),
        published(1, spec()),
        revised(revised_spec()),
        retired(),
    ];

    // Act
    let result = AssessmentTester::with(())
        .given(history)
        .when_async(publish())
        .await;

    // Assert
    result.then_expect_error(AssessmentError::Retired);
}

#[tokio::test]
async fn retiring_twice_is_rejected() {
    // Arrange
    let history = vec![drafted(spec()), retired()];

    // Act
    let result = AssessmentTester::with(())
        .given(history)
        .when_async(retire())
        .await;

    // Assert
    result.then_expect_error(AssessmentError::Retired);
}

#[tokio::test]
async fn revising_a_retired_assessment_with_an_invalid_spec_reports_retirement_first() {
    // Arrange
    let history = vec![drafted(spec()), retired()];
    let invalid = AssessmentSpec {
        title: String::new(),
        ..spec()
    };

    // Act
    let result = AssessmentTester::with(())
        .given(history)
        .when_async(revise(invalid))
        .await;

    // Assert
    result.then_expect_error(AssessmentError::Retired);
}

// ---------------------------------------------------------------------------------------------
// Spec validation, on creation and on revision
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_empty_or_blank_title_is_rejected() {
    for title in ["", "   ", "\t\n"] {
        // Arrange
        let invalid = AssessmentSpec {
            title: title.to_string(),
            ..spec()
        };

        // Act + Assert
        assert_spec_rejected(invalid, SpecError::Title).await;
    }
}

#[tokio::test]
async fn a_title_longer_than_two_hundred_characters_is_rejected() {
    // Arrange
    let invalid = AssessmentSpec {
        title: "a".repeat(201),
        ..spec()
    };

    // Act + Assert
    assert_spec_rejected(invalid, SpecError::Title).await;
}

#[tokio::test]
async fn a_title_of_two_hundred_characters_is_accepted_even_when_multibyte() {
    // Arrange: 200 characters, 400 bytes.
    let valid = AssessmentSpec {
        title: "é".repeat(200),
        ..spec()
    };

    // Act + Assert
    assert_spec_accepted(valid).await;
}

#[tokio::test]
async fn a_time_limit_outside_fifteen_to_four_hundred_eighty_minutes_is_rejected() {
    for minutes in [0, 14, 481, 10_000] {
        // Arrange
        let invalid = AssessmentSpec {
            time_limit_minutes: minutes,
            ..spec()
        };

        // Act + Assert
        assert_spec_rejected(invalid, SpecError::TimeLimit { min: 15, max: 480 }).await;
    }
}

#[tokio::test]
async fn time_limits_of_exactly_fifteen_and_four_hundred_eighty_minutes_are_accepted() {
    for minutes in [15, 480] {
        // Arrange
        let valid = AssessmentSpec {
            time_limit_minutes: minutes,
            ..spec()
        };

        // Act + Assert
        assert_spec_accepted(valid).await;
    }
}

#[tokio::test]
async fn a_spec_without_tasks_is_rejected() {
    // Arrange
    let invalid = AssessmentSpec {
        tasks: vec![],
        ..spec()
    };

    // Act + Assert
    assert_spec_rejected(invalid, SpecError::Tasks).await;
}

#[tokio::test]
async fn a_task_with_a_blank_title_or_prompt_is_rejected() {
    let mut blank_title = spec();
    blank_title.tasks[0].title = "  ".to_string();
    let mut blank_prompt = spec();
    blank_prompt.tasks[0].prompt = "\n\n".to_string();
    let mut second_task_blank = spec();
    second_task_blank.tasks.push(Task {
        title: "Follow-up".to_string(),
        prompt: String::new(),
        starter_files: vec![],
    });

    for invalid in [blank_title, blank_prompt, second_task_blank] {
        // Act + Assert
        assert_spec_rejected(invalid, SpecError::Tasks).await;
    }
}

#[tokio::test]
async fn absolute_escaping_empty_or_malformed_starter_file_paths_are_rejected() {
    for path in [
        "",
        "/etc/passwd",
        "../outside.py",
        "app/../../outside.py",
        "app//webhook.py",
        "app/",
    ] {
        // Arrange
        let invalid = with_starter_files(&["README.md", path]);

        // Act + Assert
        assert_spec_rejected(invalid, SpecError::StarterFiles).await;
    }
}

#[tokio::test]
async fn duplicate_starter_file_paths_are_rejected_even_across_tasks() {
    // Arrange
    let same_task = with_starter_files(&["app/webhook.py", "app/webhook.py"]);
    let mut across_tasks = spec();
    across_tasks.tasks.push(Task {
        title: "Follow-up".to_string(),
        prompt: "Extend the handler.".to_string(),
        starter_files: vec![StarterFile {
            path: "app/webhook.py".to_string(),
            content: "# again\n".to_string(),
        }],
    });

    for invalid in [same_task, across_tasks] {
        // Act + Assert
        assert_spec_rejected(invalid, SpecError::StarterFiles).await;
    }
}

#[tokio::test]
async fn nested_relative_starter_file_paths_are_accepted() {
    // Arrange
    let valid = with_starter_files(&["README.md", "src/app/main.go", ".env.example"]);

    // Act + Assert
    assert_spec_accepted(valid).await;
}

#[tokio::test]
async fn a_rubric_without_criteria_is_rejected() {
    // Arrange
    let invalid = with_criteria(vec![]);

    // Act + Assert
    assert_spec_rejected(invalid, SpecError::NoCriteria).await;
}

#[tokio::test]
async fn a_criterion_key_that_is_not_snake_case_is_rejected_by_name() {
    for key in ["", "Correctness", "error-handling", "api design", "naïve"] {
        // Arrange
        let invalid = with_criteria(vec![criterion("testing", 50), criterion(key, 50)]);

        // Act + Assert
        assert_spec_rejected(invalid, SpecError::Criterion(key.to_string())).await;
    }
}

#[tokio::test]
async fn a_duplicate_criterion_key_is_rejected() {
    // Arrange
    let invalid = with_criteria(vec![criterion("testing", 50), criterion("testing", 50)]);

    // Act + Assert
    assert_spec_rejected(invalid, SpecError::Criterion("testing".to_string())).await;
}

#[tokio::test]
async fn a_criterion_with_zero_weight_is_rejected() {
    // Arrange
    let invalid = with_criteria(vec![criterion("correctness", 100), criterion("style", 0)]);

    // Act + Assert
    assert_spec_rejected(invalid, SpecError::Criterion("style".to_string())).await;
}

#[tokio::test]
async fn a_criterion_without_levels_is_rejected() {
    // Arrange
    let mut empty = criterion("testing", 40);
    empty.levels.clear();
    let invalid = with_criteria(vec![criterion("correctness", 60), empty]);

    // Act + Assert
    assert_spec_rejected(invalid, SpecError::Criterion("testing".to_string())).await;
}

#[tokio::test]
async fn criterion_levels_whose_scores_do_not_strictly_increase_are_rejected() {
    let level = |score: u8| Level {
        score,
        descriptor: format!("score {score}"),
    };
    for scores in [vec![1, 1, 2], vec![3, 2, 1], vec![1, 2, 4, 3]] {
        // Arrange
        let mut bad = criterion("testing", 40);
        bad.levels = scores.into_iter().map(level).collect();
        let invalid = with_criteria(vec![criterion("correctness", 60), bad]);

        // Act + Assert
        assert_spec_rejected(invalid, SpecError::Criterion("testing".to_string())).await;
    }
}

#[tokio::test]
async fn a_single_level_criterion_with_digits_in_its_key_is_accepted() {
    // Arrange
    let mut single = criterion("owasp_top_10", 100);
    single.levels.truncate(1);
    let valid = with_criteria(vec![single]);

    // Act + Assert
    assert_spec_accepted(valid).await;
}

#[tokio::test]
async fn the_first_violation_in_validation_order_is_reported() {
    // Arrange: every rule broken at once.
    let invalid = AssessmentSpec {
        title: String::new(),
        time_limit_minutes: 0,
        tasks: vec![],
        rubric: Rubric { criteria: vec![] },
        ..spec()
    };

    // Act + Assert
    assert_spec_rejected(invalid, SpecError::Title).await;
}
