//! The `clarity` command line.

mod quarantine;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use clarity_projections::Projection;
use tokio_util::sync::CancellationToken;

use clarity_api::config::Config;
use clarity_api::state::AppState;

/// Clarity: event-sourced technical-hiring assessments.
#[derive(Debug, Parser)]
#[command(name = "clarity", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Command,
}

/// The roles and tools.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (with the deadline scheduler).
    Serve,
    /// Run the outbox relay (event store → Kafka). Several may run; one leads.
    Relay,
    /// Run projection consumers (all unless `--projection` is given).
    Consume {
        #[arg(long = "projection")]
        projections: Vec<String>,
    },
    /// Every role in one process (single machine).
    All,
    /// Create the database if needed and apply migrations; create the topics.
    Migrate,
    /// Load the built-in assessment catalogue (idempotent).
    Seed,
    /// Rebuild a projection from offset 0.
    Rebuild {
        /// `catalogue`, `sessions` or `replay`.
        projection: String,
    },
    /// Records held back: those the projections set aside (`projection_rejects`: undecodable,
    /// refused by PostgreSQL, or held behind one of those) and events the relay could not
    /// publish (`relay_rejects`). List, show, and retry them once the cause is fixed.
    Quarantine {
        #[command(subcommand)]
        command: QuarantineCommand,
    },
    /// Organization administration.
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// Create realistic candidate sessions through the public API.
    Simulate(crate::simulate::SimulateArgs),
    /// Run candidate code: take run and grading jobs, run them in the sandbox (bubblewrap,
    /// rlimits, cgroups; needs root), record the results (docs/runner.md). Several may run, on
    /// several machines.
    Runner(RunnerArgs),
    /// Queue every finished session (of an organization, of an assessment) for grading again:
    /// after a new grader version is deployed, the runners grade each session with it, beside
    /// the earlier grades (a version already recorded is left as is).
    Regrade {
        /// Only this organization (default: all).
        #[arg(long)]
        org: Option<uuid::Uuid>,
        /// Only this assessment.
        #[arg(long)]
        assessment: Option<uuid::Uuid>,
    },
    /// Benchmarks in an isolated environment (own database, topics and groups).
    Bench {
        #[command(subcommand)]
        command: crate::bench::BenchCommand,
    },
    /// Integrity analysis: evaluation on labelled synthetic sessions, re-runs, differences.
    Integrity {
        #[command(subcommand)]
        command: IntegrityCommand,
    },
    /// The tamper-evident audit trail: export a session's bundle, make a signing key.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Verify an audit bundle offline (`clarity verify bundle.json`), or a session's live store
    /// against Kafka and its signed checkpoints (`clarity verify session <id>`). Exits non-zero
    /// and names the first failing event when the record is not intact.
    Verify {
        /// A bundle file, or the word `session`.
        target: String,
        /// With `session`: the session id.
        id: Option<uuid::Uuid>,
        /// Also require the bundle to be signed by this public key (hex), obtained separately
        /// (e.g. from `GET /v1/audit/public-key`).
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Write the event JSON Schemas, the AsyncAPI and the OpenAPI documents to a directory.
    Docs {
        #[arg(long, default_value = "docs/schemas")]
        out: PathBuf,
    },
}

pub use quarantine::QuarantineCommand;

/// `clarity org …`
#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organization and print its first admin's API key.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "Admin")]
        admin_name: String,
        #[arg(long)]
        admin_email: String,
    },
}

/// `clarity audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Write a session's self-contained audit bundle (events, hashes, the latest signed
    /// checkpoint, signature, public key), verifiable with `clarity verify` and nothing else.
    Export {
        session: uuid::Uuid,
        /// Output file (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print a new random signing key seed for `CLARITY_AUDIT_SIGNING_KEY` (keep it secret).
    Keygen,
}

/// `clarity integrity …`
#[derive(Debug, Subcommand)]
pub enum IntegrityCommand {
    /// Measure the detectors on labelled synthetic sessions (honest work and adversaries) and print
    /// the false-positive rate and recall per adversary as a Markdown table.
    Eval {
        /// Honest sessions per honest profile.
        #[arg(long, default_value_t = 200)]
        honest: usize,
        /// Sessions per adversary.
        #[arg(long, default_value_t = 60)]
        adversaries: usize,
        #[arg(long, default_value_t = 2026)]
        seed: u64,
        /// Also write the table to this file (e.g. docs/integrity-eval.md).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Also measure on these labelled corpora (directories in the format of
        /// integrity/corpora/FORMAT.md), fitting the keystroke thresholds on each corpus in turn
        /// and measuring on every other one.
        #[arg(long = "corpus")]
        corpora: Vec<PathBuf>,
    },
    /// Queue the current suite version over past finished sessions; the new findings are stored
    /// beside the old ones. Needs a running `serve` process (its workers do the analysis).
    Rerun {
        /// Only this organization (default: all).
        #[arg(long)]
        org: Option<uuid::Uuid>,
        /// Only this assessment.
        #[arg(long)]
        assessment: Option<uuid::Uuid>,
    },
    /// List the sessions whose tier or fired rules differ between two suite versions.
    Diff {
        #[arg(long)]
        org: uuid::Uuid,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
    },
    /// Print the current suite version.
    Version,
}

fn projections(names: &[String]) -> anyhow::Result<Vec<Projection>> {
    if names.is_empty() {
        return Ok(Projection::ALL.to_vec());
    }
    names
        .iter()
        .map(|n| {
            Projection::from_name(n).ok_or_else(|| {
                anyhow::anyhow!("unknown projection `{n}` (known: catalogue, sessions, replay)")
            })
        })
        .collect()
}

/// Where the runner finds its suites and keeps its runs.
#[derive(Debug, clap::Args)]
pub struct RunnerArgs {
    /// The catalogue folder, with each assessment's `grader/`.
    #[arg(long, env = "CLARITY_CATALOGUE", default_value = "catalogue")]
    pub catalogue: std::path::PathBuf,
    /// The suites' prepared toolchains (scripts/runner.sh).
    #[arg(
        long,
        env = "CLARITY_TOOLCHAINS",
        default_value = ".clarity/toolchains"
    )]
    pub toolchains: std::path::PathBuf,
    /// The runner's harness scripts, mounted at /harness in every run.
    #[arg(long, env = "CLARITY_RUNNER_HARNESS", default_value = "runner/harness")]
    pub harness: std::path::PathBuf,
    /// Where the runs' directories are made (each on its own size-capped tmpfs).
    #[arg(
        long,
        env = "CLARITY_RUNS_DIR",
        default_value = "/var/tmp/clarity-runs"
    )]
    pub runs_dir: std::path::PathBuf,
    /// The runs' uids are uid_base .. uid_base + concurrency (unused by anything else).
    #[arg(long, env = "CLARITY_RUNNER_UID_BASE", default_value_t = 200_000)]
    pub uid_base: u32,
    /// Runs at once.
    #[arg(long, env = "CLARITY_RUNNER_CONCURRENCY", default_value_t = 2)]
    pub concurrency: usize,
    /// This runner's name in job rows and results (default: host and pid).
    #[arg(long, env = "CLARITY_RUNNER_ID")]
    pub runner_id: Option<String>,
    /// Seconds a claimed job stays this runner's before another runner may take it over
    /// (default: the longest run plus a minute).
    #[arg(long, env = "CLARITY_RUNNER_LEASE_SECONDS")]
    pub lease_seconds: Option<u64>,
}

/// Parses the command line and runs the command.
pub async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = cli.config;
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        crate::shutdown_signal().await;
        on_signal.cancel();
    });
    match cli.command {
        Command::Serve => {
            let pool = crate::connect(&config).await?;
            crate::serve(AppState::new(pool, config)?, shutdown).await
        }
        Command::Relay => crate::relay(&config, shutdown).await,
        Command::Consume { projections: names } => {
            let pool = crate::connect(&config).await?;
            crate::consume(&config, pool, &projections(&names)?, shutdown).await
        }
        Command::All => crate::run_all(config, shutdown).await,
        Command::Regrade { org, assessment } => {
            let pool = crate::connect(&config).await?;
            let n =
                clarity_consumers::runner_worker::enqueue_regrade(&pool, org, assessment).await?;
            println!("queued {n} finished sessions for grading");
            Ok(())
        }
        Command::Runner(args) => {
            let pool = crate::connect(&config).await?;
            let app =
                clarity_app::App::new(pool, chrono::Duration::seconds(config.clock_offset_seconds));
            let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
            let runner_id = args
                .runner_id
                .unwrap_or_else(|| format!("{}:{}", host.trim(), std::process::id()));
            let runner = clarity_consumers::runner_worker::Runner::new(
                app,
                clarity_consumers::runner_worker::RunnerConfig {
                    catalogue: args.catalogue,
                    toolchains: args.toolchains,
                    runs_dir: args.runs_dir,
                    harness: args.harness,
                    uid_base: args.uid_base,
                    concurrency: args.concurrency,
                    runner_id,
                    lease: args.lease_seconds.map(std::time::Duration::from_secs),
                    limits: clarity_runner::sandbox::Limits {
                        memory_bytes: 2 * 1024 * 1024 * 1024,
                        ..Default::default()
                    },
                },
            )?;
            tracing::info!("runner started");
            std::sync::Arc::new(runner).run(shutdown).await;
            Ok(())
        }
        Command::Migrate => {
            crate::migrate(&config).await?;
            config.kafka().ensure_topics().await?;
            println!(
                "migrations applied; topics {} and {} exist",
                config.topic_assessments, config.topic_sessions
            );
            Ok(())
        }
        Command::Seed => {
            let pool = crate::connect(&config).await?;
            let app =
                clarity_app::App::new(pool, chrono::Duration::seconds(config.clock_offset_seconds));
            for (title, outcome) in crate::seed::seed(&app).await? {
                println!("{outcome:?}\t{title}");
            }
            Ok(())
        }
        Command::Quarantine { command } => quarantine::run(&config, command).await,
        Command::Rebuild { projection } => {
            let projection = projections(std::slice::from_ref(&projection))?[0];
            let report = clarity_consumers::projection_runner::rebuild(
                &config.database_url,
                &config.kafka(),
                projection,
                &config.projections(),
                true,
            )
            .await?;
            let secs = report.elapsed.as_secs_f64();
            println!(
                "rebuilt {}: {} records in {:.2}s ({:.0} records/s)",
                projection.name(),
                report.records,
                secs,
                report.records as f64 / secs.max(1e-9)
            );
            Ok(())
        }
        Command::Org {
            command:
                OrgCommand::Create {
                    name,
                    admin_name,
                    admin_email,
                },
        } => {
            let pool = crate::connect(&config).await?;
            let org = crate::create_organization(&pool, &name, &admin_name, &admin_email).await?;
            println!(
                "organization  {}\nadmin member  {}\nadmin API key {}",
                org.org_id, org.admin_member_id, org.admin_api_key
            );
            println!("(the key is stored hashed and cannot be shown again)");
            Ok(())
        }
        Command::Integrity { command } => integrity(config, command).await,
        Command::Audit { command } => audit(config, command).await,
        Command::Verify {
            target,
            id,
            public_key,
        } => verify(config, target, id, public_key).await,
        Command::Simulate(args) => crate::simulate::run(args).await,
        Command::Bench { command } => crate::bench::run(config, command).await,
        Command::Docs { out } => {
            use utoipa::OpenApi;
            std::fs::create_dir_all(out.join("events"))?;
            for (name, schema) in clarity_api::schemas::event_schemas() {
                std::fs::write(
                    out.join("events").join(format!("{name}.json")),
                    serde_json::to_string_pretty(&schema)? + "\n",
                )?;
            }
            std::fs::write(
                out.join("openapi.json"),
                clarity_api::openapi::ApiDoc::openapi().to_pretty_json()? + "\n",
            )?;
            std::fs::write(
                out.join("asyncapi.json"),
                serde_json::to_string_pretty(&clarity_api::schemas::asyncapi())? + "\n",
            )?;
            println!("wrote {}", out.display());
            Ok(())
        }
    }
}

async fn integrity(config: Config, command: IntegrityCommand) -> anyhow::Result<()> {
    use clarity_integrity::suite;
    let suite_version = suite::suite_version(&config.integrity_settings());
    match command {
        IntegrityCommand::Eval {
            honest,
            adversaries,
            seed,
            out,
            corpora,
        } => integrity_eval(honest, adversaries, seed, out, corpora).await,
        IntegrityCommand::Rerun { org, assessment } => {
            let pool = crate::connect(&config).await?;
            let n = clarity_consumers::integrity_worker::enqueue_rerun(
                &pool,
                org,
                assessment,
                &suite_version,
            )
            .await?;
            println!("queued {n} sessions for {suite_version}");
            Ok(())
        }
        IntegrityCommand::Diff { org, from, to } => {
            let pool = crate::connect(&config).await?;
            // Every page, one JSON document per page.
            let mut after = None;
            loop {
                let diff = clarity_api::routes::integrity::suite_diff(
                    &pool,
                    org,
                    &from,
                    &to,
                    after,
                    clarity_api::routes::integrity::MAX_DIFF_PAGE,
                )
                .await
                .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))?;
                println!("{}", serde_json::to_string_pretty(&diff)?);
                match diff.next_after {
                    Some(next) => after = Some(next),
                    None => return Ok(()),
                }
            }
        }
        IntegrityCommand::Version => {
            println!("{suite_version}");
            Ok(())
        }
    }
}

/// `clarity integrity eval`: the detectors measured on labelled synthetic sessions.
#[cfg(feature = "synth")]
async fn integrity_eval(
    honest: usize,
    adversaries: usize,
    seed: u64,
    out: Option<PathBuf>,
    corpora: Vec<PathBuf>,
) -> anyhow::Result<()> {
    use clarity_integrity::{corpus, eval};
    let settings = eval::EvalSettings {
        honest_per_profile: honest,
        per_adversary: adversaries,
        seed,
    };
    let started = std::time::Instant::now();
    let mut command = format!(
        "clarity integrity eval --honest {honest} --adversaries {adversaries} --seed {seed}"
    );
    for c in &corpora {
        command.push_str(&format!(" --corpus {}", c.display()));
    }
    let (report, cross) = tokio::task::spawn_blocking(move || {
        let report = eval::run(&settings);
        let cross = if corpora.is_empty() {
            None
        } else {
            let mut all = vec![eval::synth_corpus(&eval::EvalSettings {
                honest_per_profile: (settings.honest_per_profile / 5).max(1),
                per_adversary: (settings.per_adversary * 2 / 3).max(1),
                seed: settings.seed,
            })];
            for dir in &corpora {
                all.push(corpus::load(dir).map_err(anyhow::Error::msg)?);
            }
            Some(corpus::cross_fit(&all))
        };
        anyhow::Ok((report, cross))
    })
    .await??;
    let mut table = String::new();
    if let Some(cross) = &cross {
        table.push_str(&corpus::report_markdown(cross, &command));
    }
    let synthetic = eval::markdown(&report, &command);
    if cross.is_some() {
        // Clarity's own generator in full, below the held-out corpora.
        let synthetic = synthetic
            .replacen(
                "# Integrity evaluation\n\n",
                "## Clarity's own generator in full (in distribution)\n\n",
                1,
            )
            .replace("\n## ", "\n### ");
        table.push_str(&synthetic);
    } else {
        table.push_str(&synthetic);
    }
    print!("{table}");
    eprintln!("evaluated in {:.1} s", started.elapsed().as_secs_f64());
    if let Some(path) = out {
        std::fs::write(&path, &table)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// Without the `synth` feature the synthetic-session generator is not compiled in (production
/// builds leave it out), so the evaluation says how to get a build that has it.
#[cfg(not(feature = "synth"))]
async fn integrity_eval(
    _honest: usize,
    _adversaries: usize,
    _seed: u64,
    _out: Option<PathBuf>,
    _corpora: Vec<PathBuf>,
) -> anyhow::Result<()> {
    anyhow::bail!(
        "this build has no synthetic-session generator; run the evaluation from a build with the \
         `synth` feature: cargo run --release -p clarity-cli --features synth -- integrity eval"
    )
}

async fn audit(config: Config, command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Export { session, out } => {
            let pool = crate::connect(&config).await?;
            let bundle = clarity_api::audit::export(&pool, session).await?;
            let json = bundle.to_json();
            match out {
                Some(path) => {
                    std::fs::write(&path, json)?;
                    eprintln!(
                        "wrote {} ({} events up to the checkpoint signed at {})",
                        path.display(),
                        bundle.checkpoint.count,
                        bundle.checkpoint.signed_at
                    );
                }
                None => println!("{json}"),
            }
            Ok(())
        }
        AuditCommand::Keygen => {
            let seed: [u8; 32] = rand::random();
            println!("{}", hex::encode(seed));
            Ok(())
        }
    }
}

async fn verify(
    config: Config,
    target: String,
    id: Option<uuid::Uuid>,
    public_key: Option<String>,
) -> anyhow::Result<()> {
    use clarity_domain::audit;
    if target == "session" {
        let id = id.ok_or_else(|| anyhow::anyhow!("usage: clarity verify session <id>"))?;
        let pool = crate::connect(&config).await?;
        let check = clarity_api::audit::check_session(&pool, &config.kafka(), id).await?;
        println!("{}", serde_json::to_string_pretty(&check)?);
        if check.problems.is_empty() {
            eprintln!(
                "intact: {} entries match the topic; {} signed checkpoints verified",
                check.stored_entries, check.checkpoints_verified
            );
            return Ok(());
        }
        anyhow::bail!("NOT intact: {}", check.problems[0]);
    }
    let text = std::fs::read_to_string(&target)?;
    let bundle = audit::Bundle::from_json(&text)?;
    let result = match public_key {
        Some(hex) => audit::verify_with_key(&bundle, &audit::verifying_key_from_hex(&hex)?),
        None => audit::verify(&bundle),
    };
    match result {
        Ok(v) => {
            println!("intact: {v:?}");
            Ok(())
        }
        Err(e) => anyhow::bail!("NOT intact: {e}"),
    }
}
