//! Every grader suite, through the real sandbox: the reference solution passes its visible tests
//! and scores (close to) full marks on the hidden checks; the starter scores low. Needs the
//! suites' toolchains prepared (`source scripts/services.sh scripts/runner.sh && ensure_runner`,
//! which `scripts/test` does).
//!
//! The suites run one at a time: their checks include timings and concurrency, which a machine
//! busy with other suites would only make noisier.

use std::path::PathBuf;

use clarity_runner::sandbox::{Limits, Sandbox};
use clarity_runner::suite::{grade_of, tests_of, Mode, Suite};
use tokio::sync::Mutex;

static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn toolchains() -> PathBuf {
    std::env::var_os("CLARITY_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".clarity"))
        .join("toolchains")
}

async fn check_suite(slug: &str, uid_base: u32) {
    let _one = ONE_AT_A_TIME.lock().await;
    let suite =
        Suite::load(&repo().join("catalogue"), &toolchains(), slug).expect("the suite loads");
    if repo()
        .join("catalogue")
        .join(slug)
        .join("grader/prepare.sh")
        .exists()
    {
        assert!(
            suite.toolchain_dir.join(".stamp").exists(),
            "{slug}'s toolchain is not prepared: source scripts/services.sh scripts/runner.sh && ensure_runner"
        );
    }
    let runs = std::env::temp_dir().join(format!("clarity-suites-{uid_base}"));
    let sb = Sandbox::new(runs, repo().join("runner/harness"), uid_base, 1).unwrap();
    let limits = Limits {
        memory_bytes: 2 * 1024 * 1024 * 1024,
        ..Limits::default()
    };
    let starter = suite.starter_files().unwrap();
    let reference = suite.reference_files().unwrap();
    assert_ne!(
        starter, reference,
        "{slug}: the reference changes something"
    );

    let visible = sb
        .run(&suite.job(Mode::Visible, reference.clone(), &limits))
        .await;
    let tests = tests_of(&visible)
        .unwrap_or_else(|e| panic!("{slug} reference, visible: {e}\n{}", visible.output));
    let failed: Vec<_> = tests.iter().filter(|t| !t.passed).collect();
    assert!(
        !tests.is_empty() && failed.is_empty(),
        "{slug} reference, visible: {failed:#?}\n{}",
        visible.output
    );

    let visible = sb
        .run(&suite.job(Mode::Visible, starter.clone(), &limits))
        .await;
    let tests = tests_of(&visible)
        .unwrap_or_else(|e| panic!("{slug} starter, visible: {e}\n{}", visible.output));
    assert!(!tests.is_empty(), "{slug} starter, visible: no tests");
    let starter_visible_failed = tests.iter().filter(|t| !t.passed).count();
    assert!(
        starter_visible_failed > 0,
        "{slug}: the starter fails some visible test (the task is not done yet)"
    );

    let hidden = sb.run(&suite.job(Mode::Hidden, reference, &limits)).await;
    let reference_ms = hidden.duration_ms;
    let grade = grade_of(&hidden)
        .unwrap_or_else(|e| panic!("{slug} reference, hidden: {e}\n{}", hidden.output));
    let failed: Vec<_> = grade
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| (&c.key, &c.message))
        .collect();
    assert!(
        grade.fraction() >= 0.9,
        "{slug} reference scores {:.3}: {failed:#?}\n{}",
        grade.fraction(),
        hidden.output
    );

    let hidden = sb.run(&suite.job(Mode::Hidden, starter, &limits)).await;
    let low = grade_of(&hidden)
        .unwrap_or_else(|e| panic!("{slug} starter, hidden: {e}\n{}", hidden.output));
    assert!(
        low.fraction() <= 0.4,
        "{slug} starter scores {:.3}",
        low.fraction()
    );
    assert_eq!(
        low.checks.iter().map(|c| &c.key).collect::<Vec<_>>(),
        grade.checks.iter().map(|c| &c.key).collect::<Vec<_>>(),
        "{slug}: the same checks are reported whatever the code"
    );
    println!(
        "{slug}: reference {:.1}% ({} checks, {} ms), starter {:.1}% ({} ms); starter fails {starter_visible_failed} visible test(s)",
        grade.fraction() * 100.0,
        grade.checks.len(),
        reference_ms,
        low.fraction() * 100.0,
        hidden.duration_ms
    );
}

#[tokio::test]
async fn rest_api_design() {
    check_suite("rest-api-design", 320_000).await;
}

#[tokio::test]
async fn database_schema_optimization() {
    check_suite("database-schema-optimization", 320_010).await;
}

#[tokio::test]
async fn distributed_cache_strategy() {
    check_suite("distributed-cache-strategy", 320_020).await;
}

#[tokio::test]
async fn microservice_orchestration() {
    check_suite("microservice-orchestration", 320_030).await;
}

#[tokio::test]
async fn bug_hunt() {
    check_suite("bug-hunt", 320_040).await;
}

#[tokio::test]
async fn async_task_queue() {
    check_suite("async-task-queue", 320_050).await;
}

#[tokio::test]
async fn rate_limiting() {
    check_suite("rate-limiting", 320_060).await;
}

#[test]
fn every_catalogue_assessment_has_a_suite() {
    let suites = Suite::load_all(&repo().join("catalogue"), &toolchains()).unwrap();
    let listed: Vec<String> = serde_json::from_str(
        &std::fs::read_to_string(repo().join("catalogue/library.json")).unwrap(),
    )
    .unwrap();
    let mut have: Vec<String> = suites.iter().map(|s| s.slug.clone()).collect();
    let mut want = listed.clone();
    have.sort();
    want.sort();
    assert_eq!(have, want);
}
