//! Hostile code in the real sandbox (bubblewrap, setpriv, prlimit, cgroups, tmpfs; needs root,
//! as the runner does). Each test runs code that attacks the runner and checks that the runner
//! survives, that the outcome says why the run ended, and that nothing of the run is left.

use std::path::PathBuf;

use clarity_runner::sandbox::{Ending, Job, Limits, Outcome, Sandbox};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A sandbox of its own per test (its own uids: tests run in parallel).
fn sandbox(uid_base: u32) -> Sandbox {
    let runs = std::env::temp_dir().join(format!("clarity-runner-test-{uid_base}"));
    Sandbox::new(runs, repo().join("runner/harness"), uid_base, 2)
        .expect("the runs directory can be made")
}

fn job(script: &str, limits: Limits) -> Job {
    Job {
        files: vec![("main.sh".into(), script.into())],
        command: vec!["sh".into(), "main.sh".into()],
        limits,
        ..Job::default()
    }
}

fn quick() -> Limits {
    Limits {
        wall_ms: 10_000,
        cpu_seconds: 10,
        memory_bytes: 256 * 1024 * 1024,
        processes: 64,
        ..Limits::default()
    }
}

/// Processes on the host whose real uid is `uid`.
fn processes_of(uid: u32) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let owner = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().next().map(str::to_owned));
        if owner.as_deref() == Some(&uid.to_string()) {
            let name = status.lines().next().unwrap_or_default().to_owned();
            found.push(format!("{}: {name}", entry.file_name().to_string_lossy()));
        }
    }
    found
}

fn assert_nothing_left(uid_base: u32, outcome: &Outcome) {
    for uid in uid_base..uid_base + 2 {
        let left = processes_of(uid);
        assert!(
            left.is_empty(),
            "processes of uid {uid} outlived the run: {left:?}\n{outcome:#?}"
        );
    }
}

#[tokio::test]
async fn the_sandbox_runs_code_and_reads_its_results() {
    let sb = sandbox(310_000);
    let missing = sb.probe().essential_missing();
    assert!(
        missing.is_empty(),
        "the runner's essentials are missing: {missing:?}"
    );
    let out = sb
        .run(&job(
            "id -u; pwd; echo to-stderr >&2\nprintf '{\"tests\":[{\"name\":\"t\",\"passed\":true}]}' > \"$CLARITY_RESULTS\"\n",
            quick(),
        ))
        .await;
    assert_eq!(out.ending, Ending::Exited { code: 0 }, "{out:#?}");
    assert!(
        out.output.contains("310000")
            && out.output.contains("/work")
            && out.output.contains("to-stderr"),
        "{out:#?}"
    );
    assert_eq!(out.results.as_ref().unwrap()["tests"][0]["passed"], true);
    assert!(
        out.enforced.memory && out.enforced.processes && out.enforced.disk,
        "{:?}",
        out.enforced
    );
    assert!(
        out.cpu_ms.is_some() && out.peak_memory_bytes.is_some(),
        "{out:#?}"
    );
    assert_nothing_left(310_000, &out);
}

#[tokio::test]
async fn a_fork_bomb_is_contained() {
    let sb = sandbox(310_010);
    let out = sb
        .run(&job(
            "bomb() { bomb | bomb & }; bomb; sleep 3; echo still-here",
            quick(),
        ))
        .await;
    assert!(
        matches!(out.ending, Ending::Exited { .. } | Ending::TimedOut),
        "the runner survives and reports the end: {out:#?}"
    );
    assert!(
        out.output.contains("Cannot fork"),
        "the process limit stopped it: {}",
        &out.output[..out.output.len().min(500)]
    );
    assert_nothing_left(310_010, &out);
    // The runner still runs the next job normally.
    let next = sb.run(&job("echo fine", quick())).await;
    assert_eq!(next.ending, Ending::Exited { code: 0 }, "{next:#?}");
}

#[tokio::test]
async fn an_infinite_loop_is_stopped_by_the_cpu_limit() {
    let sb = sandbox(310_020);
    let limits = Limits {
        cpu_seconds: 1,
        ..quick()
    };
    let out = sb
        .run(&job("exec python3 -c 'while True: pass'", limits))
        .await;
    // RLIMIT_CPU: the soft and hard limits are one, so the kernel kills it (SIGXCPU or SIGKILL).
    assert!(
        matches!(out.ending, Ending::Signalled { signal } if signal == libc::SIGXCPU || signal == libc::SIGKILL),
        "{out:#?}"
    );
    assert!(
        out.duration_ms < 10_000,
        "stopped before the wall limit: {out:#?}"
    );
    assert_nothing_left(310_020, &out);
}

#[tokio::test]
async fn a_sleeping_loop_is_stopped_by_the_wall_limit_even_ignoring_sigterm() {
    let sb = sandbox(310_030);
    let limits = Limits {
        wall_ms: 1_500,
        ..quick()
    };
    let out = sb
        .run(&job(
            "trap '' TERM INT HUP; while :; do sleep 1; done",
            limits,
        ))
        .await;
    assert_eq!(out.ending, Ending::TimedOut, "{out:#?}");
    assert_nothing_left(310_030, &out);
}

#[tokio::test]
async fn a_memory_hog_hits_the_memory_limit() {
    let sb = sandbox(310_040);
    let limits = Limits {
        memory_bytes: 128 * 1024 * 1024,
        ..quick()
    };
    let out = sb
        .run(&job("exec python3 -c 'x = [bytearray(16 << 20) for _ in range(64)]; print(\"allocated\", len(x))'", limits))
        .await;
    assert!(out.memory_limit_hit, "{out:#?}");
    assert!(!out.output.contains("allocated 64"), "{out:#?}");
    assert_ne!(out.ending, Ending::Exited { code: 0 }, "{out:#?}");
    assert!(
        out.peak_memory_bytes.unwrap() <= 128 * 1024 * 1024 + 4096,
        "{out:#?}"
    );
    assert_nothing_left(310_040, &out);
}

#[tokio::test]
async fn a_gigabyte_of_output_is_cut_off_and_hashed() {
    let sb = sandbox(310_050);
    let out = sb
        .run(&job("head -c 1073741824 /dev/zero | tr '\\0' 'x'", quick()))
        .await;
    assert_eq!(out.ending, Ending::OutputLimit, "{out:#?}");
    let limits = Limits::default();
    assert!(
        out.output_truncated && out.output.len() as u64 == limits.output_keep_bytes,
        "{}",
        out.output.len()
    );
    assert!(
        out.output_bytes > limits.output_cap_bytes && out.output_bytes < 1 << 30,
        "{}",
        out.output_bytes
    );
    assert_eq!(out.output_sha256.len(), 64);
    assert_nothing_left(310_050, &out);
}

#[tokio::test]
async fn nothing_outside_the_workspace_can_be_written_or_filled() {
    let sb = sandbox(310_060);
    let script = r#"
for p in /usr/clarity-escape /etc/clarity-escape /clarity-escape /harness/clarity-escape /bin/clarity-escape; do
  if (echo x > "$p") 2>/dev/null; then echo "WROTE $p"; else echo "refused $p"; fi
done
# a file past the size limit
head -c 200000000 /dev/zero > big 2>/dev/null; echo "big: $(wc -c < big)"
echo ok > /work/mine && echo "work writable"
"#;
    let out = sb
        .run(&job(
            script,
            Limits {
                file_bytes: 1024 * 1024,
                ..quick()
            },
        ))
        .await;
    assert!(!out.output.contains("WROTE"), "{}", out.output);
    assert!(out.output.contains("work writable"), "{}", out.output);
    assert!(
        out.output.contains("big: 1048576"),
        "RLIMIT_FSIZE stops the file at the limit: {}",
        out.output
    );
    for p in [
        "/usr/clarity-escape",
        "/etc/clarity-escape",
        "/clarity-escape",
    ] {
        assert!(
            !std::path::Path::new(p).exists(),
            "{p} was written on the host"
        );
    }
    assert_nothing_left(310_060, &out);
}

#[tokio::test]
async fn host_secrets_and_other_runs_are_out_of_reach() {
    let sb = sandbox(310_070);
    // A secret of the host, another run's files, and a variable of the runner's environment.
    let secret_dir = std::env::temp_dir().join("clarity-runner-test-secret");
    std::fs::create_dir_all(&secret_dir).unwrap();
    std::fs::write(secret_dir.join("key"), "TOP-SECRET-HOST-KEY").unwrap();
    let other = std::env::temp_dir().join("clarity-runner-test-310070/other-run/work");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("solution.py"), "OTHER-CANDIDATES-CODE").unwrap();
    std::env::set_var("CLARITY_RUNNER_TEST_SECRET", "RUNNER-ENV-SECRET");
    let script = format!(
        r#"
cat /etc/shadow {secret} {other} /root/.bash_history 2>&1
ls / 2>&1; ls /home /root 2>&1
env
cat /proc/1/environ 2>/dev/null | tr '\0' '\n'
ls /proc | head -20
"#,
        secret = secret_dir.join("key").display(),
        other = other.join("solution.py").display()
    );
    let out = sb.run(&job(&script, quick())).await;
    for leaked in [
        "TOP-SECRET-HOST-KEY",
        "OTHER-CANDIDATES-CODE",
        "RUNNER-ENV-SECRET",
        "root:",
    ] {
        assert!(
            !out.output.contains(leaked),
            "{leaked} reached the run:\n{}",
            out.output
        );
    }
    assert_nothing_left(310_070, &out);
}

#[tokio::test]
async fn there_is_no_network_but_the_sandbox_s_own_loopback() {
    let sb = sandbox(310_080);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let script = format!(
        r#"
python3 - <<'PY'
import socket
for host, port in [("127.0.0.1", {port}), ("1.1.1.1", 80), ("10.0.0.1", 443)]:
    s = socket.socket(); s.settimeout(2)
    try:
        s.connect((host, port)); print("CONNECTED", host, port)
    except OSError as e:
        print("refused", host, port, e)
# its own loopback works
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
c = socket.socket(); c.connect(srv.getsockname()); print("own loopback ok")
PY
"#
    );
    let out = sb.run(&job(&script, quick())).await;
    assert!(!out.output.contains("CONNECTED"), "{}", out.output);
    assert!(out.output.contains("own loopback ok"), "{}", out.output);
    assert!(
        listener.accept().is_err(),
        "the host's listener got a connection from the sandbox"
    );
    assert_nothing_left(310_080, &out);
}

#[tokio::test]
async fn a_process_left_running_does_not_outlive_the_run() {
    let sb = sandbox(310_090);
    let out = sb
        .run(&job("(trap '' TERM HUP; sleep 300) & setsid sleep 301 & nohup sleep 302 >/dev/null 2>&1 & echo started", quick()))
        .await;
    assert_eq!(out.ending, Ending::Exited { code: 0 }, "{out:#?}");
    assert!(out.duration_ms < 10_000, "{out:#?}");
    assert_nothing_left(310_090, &out);
}

#[tokio::test]
async fn a_results_file_that_is_a_symlink_or_huge_is_not_read() {
    let sb = sandbox(310_100);
    let out = sb
        .run(&job("ln -s /etc/passwd \"$CLARITY_RESULTS\"", quick()))
        .await;
    assert!(out.results.is_none(), "{out:#?}");
    assert!(
        out.results_error
            .as_deref()
            .unwrap()
            .contains("not a regular file"),
        "{out:#?}"
    );
    let out = sb
        .run(&job(
            "head -c 2000000 /dev/zero | tr '\\0' ' ' > \"$CLARITY_RESULTS\"",
            quick(),
        ))
        .await;
    assert!(out.results.is_none(), "{out:#?}");
    assert!(
        out.results_error.as_deref().unwrap().contains("more than"),
        "{out:#?}"
    );
}

#[tokio::test]
async fn services_start_inside_the_sandbox_and_are_its_own() {
    let sb = sandbox(310_110);
    let mut j = job(
        "psql -Atc 'select 1+1'; redis-cli -p 6379 ping",
        Limits {
            wall_ms: 30_000,
            ..quick()
        },
    );
    j.services = vec!["postgres".into(), "redis".into()];
    let out = sb.run(&j).await;
    assert_eq!(out.ending, Ending::Exited { code: 0 }, "{out:#?}");
    assert!(
        out.output.contains("2\n") && out.output.contains("PONG"),
        "{}",
        out.output
    );
    assert_nothing_left(310_110, &out);
}

#[tokio::test]
async fn a_path_leaving_the_workspace_is_refused_before_anything_runs() {
    let sb = sandbox(310_120);
    let mut j = job("echo ran", quick());
    j.files.push(("../../escape.txt".into(), "x".into()));
    let out = sb.run(&j).await;
    assert!(
        matches!(out.ending, Ending::SandboxError { ref message } if message.contains("escape.txt")),
        "{out:#?}"
    );
    assert!(!out.output.contains("ran"));
}
