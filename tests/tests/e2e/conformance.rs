//! The API against its own OpenAPI document, checked from outside by schemathesis (issue 11:
//! "no single input can stop Clarity"). The whole product runs against the real PostgreSQL and
//! Kafka; schemathesis reads the live `/openapi.json`, generates valid and invalid requests for
//! every operation (examples, coverage of each constraint's edges, random fuzzing) and runs
//! **every** check: no 5xx, every status code and response body as documented, valid requests
//! accepted, invalid ones rejected, missing credentials refused, unsupported methods answered
//! 405. Any failure fails the test, with schemathesis' report.
//!
//! Each operation is called with the credential its `security` names
//! (`tests/conformance/schemathesis.toml`): staff operations with the organization's admin key,
//! candidate operations with the session token of an invited, consented, started session. Staff
//! operations on one session are pointed at a finished, analysed, reviewed session. Rules that
//! JSON Schema cannot state are kept by `tests/conformance/hooks.py` (see its docstring).
//!
//! `CLARITY_CONFORMANCE_EXAMPLES` sets the examples per operation (default 30);
//! `CLARITY_CONFORMANCE_SEED` replays a run (schemathesis prints the seed it used).

use std::time::Instant;

use clarity_api::config::Config;
use clarity_tests::{foreign_python, workspace_root, TestEnv};

/// Examples schemathesis generates per operation unless `CLARITY_CONFORMANCE_EXAMPLES` says
/// otherwise.
const DEFAULT_EXAMPLES: &str = "30";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_generated_request_is_answered_as_the_openapi_document_says() -> anyhow::Result<()> {
    // Arrange: fail early, before the product starts, when schemathesis is not installed.
    let python = foreign_python()?;
    let env = TestEnv::new().await?;
    // The whole product, with the per-caller rate limits off: schemathesis sends thousands of
    // requests, hundreds of them without or with wrong credentials on purpose, and a 429 would
    // hide the answer under test (429 is documented on every operation, so the run would pass
    // and check little). The limits have their own tests (the `limits` module).
    let product = env
        .spawn_product_with(Config {
            rate_staff_per_second: 0.0,
            rate_candidate_per_second: 0.0,
            rate_address_per_second: 0.0,
            rate_failures_per_second: 0.0,
            ..env.config.clone()
        })
        .await?;
    let (client, admin) = (product.client.clone(), product.admin.clone());
    let (candidate_session, candidate_token) =
        client.started_session(&admin, "Ada Lovelace").await?;
    let r = client
        .send_events(&candidate_session, &candidate_token, 1, 5)
        .await?;
    anyhow::ensure!(r.status == 200, "telemetry refused: {r:?}");
    // A finished, analysed and reviewed session for the staff operations on one session (replay,
    // integrity, reviews, report, audit bundle), so that they get past "not found".
    let typed = "x".repeat(30);
    let (finished, _) = env
        .analysed_session(&client, &admin, "Grace Hopper", 30, &[("main.py", &typed)])
        .await?;
    let (rita, rita_key) = client.member(&admin, "Rita", "reviewer").await?;
    client
        .complete_review(&admin, &finished, (&rita, &rita_key), |c| c.levels[0].score)
        .await?;

    // Act
    let examples = std::env::var("CLARITY_CONFORMANCE_EXAMPLES")
        .unwrap_or_else(|_| DEFAULT_EXAMPLES.to_string());
    let workdir = std::env::temp_dir().join(format!("clarity-conformance-{}", env.id));
    std::fs::create_dir_all(&workdir)?;
    let mut command = tokio::process::Command::new(python);
    command
        .current_dir(&workdir)
        .args(["-m", "schemathesis.cli", "--config-file"])
        .arg(workspace_root().join("tests/conformance/schemathesis.toml"))
        .arg("run")
        .arg(format!("{}/openapi.json", client.base))
        .args(["--checks", "all", "--max-examples", &examples])
        .args(["--generation-database", ":memory:", "--no-color"])
        .env(
            "SCHEMATHESIS_HOOKS",
            workspace_root().join("tests/conformance/hooks.py"),
        )
        .env("CLARITY_API_KEY", &admin)
        .env("CLARITY_SESSION_TOKEN", &candidate_token)
        .env("CLARITY_CANDIDATE_SESSION", &candidate_session)
        .env("CLARITY_FINISHED_SESSION", &finished);
    if let Ok(seed) = std::env::var("CLARITY_CONFORMANCE_SEED") {
        command.args(["--seed", &seed]);
    }
    let started = Instant::now();
    let output = command.output().await?;
    let took = started.elapsed();

    // Assert
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "schemathesis found failures ({:?}) in {took:.0?}:\n{report}",
        output.status
    );
    println!("schemathesis ({examples} examples per operation) passed in {took:.0?}:\n{report}");
    product.stop().await?;
    let _ = std::fs::remove_dir_all(&workdir);
    Ok(())
}
