//! Runner benchmarks (docs/benchmarks.md, "Runner"). Needs root and the suites' toolchains
//! (`source scripts/services.sh scripts/runner.sh && ensure_runner`).
//!
//!   cargo run --release -p clarity-runner --example bench -- overhead [--runs 30]
//!   cargo run --release -p clarity-runner --example bench -- suites [--runs 6] [--concurrency 2] [--candidates 6]
//!
//! `overhead`: the same trivial command (`/bin/true`) run directly and in the sandbox, and with
//! a PostgreSQL service; the difference is what the sandbox adds to every run.
//! `suites`: for each suite, `--candidates` candidates press "Run tests" at the same moment, over
//! the reference solution's files, `--runs` rounds; the runner makes `--concurrency` runs at once.
//! Reports queue wait and run time (p50 / p99) and runs per minute, per suite.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clarity_runner::sandbox::{Ending, Job, Limits, Sandbox};
use clarity_runner::suite::{Mode, Suite};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn summary(mut v: Vec<f64>) -> String {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    format!(
        "p50 {:.0} ms, p99 {:.0} ms (n = {})",
        pct(&v, 0.5),
        pct(&v, 0.99),
        v.len()
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let what = std::env::args().nth(1).unwrap_or_else(|| "overhead".into());
    let runs_dir = std::env::temp_dir().join("clarity-runner-bench");
    match what.as_str() {
        "overhead" => {
            let n = arg("--runs", 30);
            let sb = Sandbox::new(runs_dir, repo().join("runner/harness"), 340_000, 1)?;
            let mut direct = Vec::new();
            for _ in 0..n {
                let t = Instant::now();
                let s = tokio::process::Command::new("/bin/true").status().await?;
                assert!(s.success());
                direct.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            let job = Job {
                files: vec![("main.sh".into(), "true\n".into())],
                command: vec!["/bin/true".into()],
                limits: Limits::default(),
                ..Job::default()
            };
            let mut sandboxed = Vec::new();
            for _ in 0..n {
                let t = Instant::now();
                let out = sb.run(&job).await;
                assert_eq!(out.ending, Ending::Exited { code: 0 }, "{out:?}");
                sandboxed.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            let mut with_pg = Vec::new();
            let pg = Job {
                services: vec!["postgres".into()],
                ..job.clone()
            };
            for _ in 0..n.min(10) {
                let t = Instant::now();
                let out = sb.run(&pg).await;
                assert_eq!(out.ending, Ending::Exited { code: 0 }, "{out:?}");
                with_pg.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            println!("direct /bin/true:            {}", summary(direct));
            println!("sandboxed /bin/true:         {}", summary(sandboxed));
            println!("sandboxed, with PostgreSQL:  {}", summary(with_pg));
            println!("enforced: {:?}", sb.probe());
        }
        "suites" => {
            let rounds = arg("--runs", 6);
            let concurrency = arg("--concurrency", 2);
            let candidates = arg("--candidates", 6);
            let sb = Arc::new(Sandbox::new(
                runs_dir,
                repo().join("runner/harness"),
                340_100,
                concurrency,
            )?);
            let suites = Suite::load_all(
                &repo().join("catalogue"),
                &repo().join(".clarity/toolchains"),
            )?;
            println!("| suite | runs | queue wait | run time | runs per minute |");
            println!("|---|---|---|---|---|");
            for suite in suites {
                let files = suite.reference_files()?;
                let limits = Limits {
                    memory_bytes: 2 << 30,
                    ..Limits::default()
                };
                let job = Arc::new(suite.job(Mode::Visible, files, &limits));
                let (mut waits, mut times) = (Vec::new(), Vec::new());
                let started = Instant::now();
                for _ in 0..rounds {
                    let mut handles = Vec::new();
                    for _ in 0..candidates {
                        let (sb, job) = (Arc::clone(&sb), Arc::clone(&job));
                        handles.push(tokio::spawn(async move {
                            let asked = Instant::now();
                            let out = sb.run(&job).await;
                            (asked.elapsed(), Duration::from_millis(out.duration_ms), out)
                        }));
                    }
                    for h in handles {
                        let (total, run, out) = h.await?;
                        assert!(
                            matches!(out.ending, Ending::Exited { .. }),
                            "{}: {:?}",
                            suite.slug,
                            out.ending
                        );
                        waits.push((total.saturating_sub(run)).as_secs_f64() * 1000.0);
                        times.push(run.as_secs_f64() * 1000.0);
                    }
                }
                let n = rounds * candidates;
                let per_minute = n as f64 / started.elapsed().as_secs_f64() * 60.0;
                println!(
                    "| {} ({}) | {n} | {} | {} | {per_minute:.1} |",
                    suite.slug,
                    suite.manifest.toolchain,
                    summary(waits),
                    summary(times)
                );
            }
        }
        other => anyhow::bail!("unknown benchmark {other}: overhead | suites"),
    }
    Ok(())
}
