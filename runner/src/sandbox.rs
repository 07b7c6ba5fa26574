//! One run of untrusted code.
//!
//! Every run gets:
//! - a fresh directory on a tmpfs of its own, capped in size (`Limits::disk_bytes`), holding
//!   `work/` (the candidate's files, writable, the current directory), `results/` (where the
//!   command writes `$CLARITY_RESULTS`) and the sandbox's `/etc/passwd`;
//! - an unprivileged uid of its own (`uid_base + slot`), so `RLIMIT_NPROC` counts only its own
//!   processes and no two concurrent runs can touch each other's files;
//! - bubblewrap namespaces (user, pid, net, ipc, uts, cgroup): `/usr` read-only, the runner's
//!   harness and the suite's toolchain read-only, the grader folder read-only when grading,
//!   nothing else of the host (no `/root`, `/home`, `/etc/shadow`, host `/proc` or `/sys`), no
//!   network but the sandbox's own loopback, no capabilities, an empty environment but the
//!   contract's variables;
//! - rlimits (CPU seconds per process, processes, open files, file size, no core dumps) and,
//!   where the machine lets the runner create cgroups (v1 or v2), a memory limit, a process
//!   limit, and CPU accounting for the whole run;
//! - a wall-clock limit and an output cap, past which the whole sandbox is killed: killing
//!   bubblewrap ends its pid namespace, so nothing the run started survives it, whatever signals
//!   it ignores.
//!
//! The runner must run as root (it mounts the tmpfs, creates cgroups and switches uid). Where a
//! protection is unavailable the run still happens and [`Outcome::enforced`] says what was not
//! enforced; `clarity runner` refuses to start without the ones [`Sandbox::probe`] calls
//! essential.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio::sync::{Notify, Semaphore};

/// What one run may use.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time from start to the sandbox being killed.
    pub wall_ms: u64,
    /// CPU seconds per process (`RLIMIT_CPU`).
    pub cpu_seconds: u64,
    /// Memory of the whole run, page cache and tmpfs included (cgroup).
    pub memory_bytes: u64,
    /// Processes and threads of the run at once (cgroup `pids.max`, and `RLIMIT_NPROC`).
    pub processes: u64,
    /// Output kept (the rest is counted and hashed up to `output_cap_bytes`).
    pub output_keep_bytes: u64,
    /// Output past which the run is killed.
    pub output_cap_bytes: u64,
    /// Largest file the run may write (`RLIMIT_FSIZE`).
    pub file_bytes: u64,
    /// Size of the run's tmpfs (its files, its results, what it writes in /work).
    pub disk_bytes: u64,
    /// Open files per process (`RLIMIT_NOFILE`).
    pub open_files: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            wall_ms: 60_000,
            cpu_seconds: 60,
            memory_bytes: 1024 * 1024 * 1024,
            processes: 256,
            output_keep_bytes: 64 * 1024,
            output_cap_bytes: 8 * 1024 * 1024,
            file_bytes: 128 * 1024 * 1024,
            disk_bytes: 512 * 1024 * 1024,
            open_files: 1024,
        }
    }
}

/// One run to make.
#[derive(Clone, Debug, Default)]
pub struct Job {
    /// The candidate's files: path relative to /work, content.
    pub files: Vec<(String, String)>,
    /// The command, run in /work by `/harness/entry.sh` once the services are up.
    pub command: Vec<String>,
    /// Services started inside the sandbox: `postgres`, `redis`.
    pub services: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Symlinks created in /work before the run: name, target.
    pub links: Vec<(String, String)>,
    /// Mounted read-only at /grader (grading only).
    pub grader: Option<PathBuf>,
    /// Mounted read-only at /toolchain.
    pub toolchain: Option<PathBuf>,
    pub limits: Limits,
    /// Where the output goes as it comes (the kept part only), for showing a run live.
    pub live: Option<tokio::sync::mpsc::UnboundedSender<Vec<u8>>>,
}

/// How a run ended.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Ending {
    /// The command exited by itself with this status.
    Exited { code: i32 },
    /// The command was ended by a signal it did not catch (a crash, or the kernel: `RLIMIT_CPU`
    /// sends SIGXCPU/SIGKILL, the memory limit's OOM killer SIGKILL). bubblewrap reports such a
    /// death as exit status 128 + n, so a command that exits with 129..=192 by itself is
    /// reported here too, as the shell does.
    Signalled { signal: i32 },
    /// It ran past `Limits::wall_ms` and was killed.
    TimedOut,
    /// It printed more than `Limits::output_cap_bytes` and was killed.
    OutputLimit,
    /// The sandbox itself could not be set up or run (the run's code did not run, or not fully).
    SandboxError { message: String },
}

/// Which protections this run had.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Enforced {
    /// Memory limit (needs a memory cgroup).
    pub memory: bool,
    /// Process limit for the whole run (pids cgroup; `RLIMIT_NPROC` always applies).
    pub processes: bool,
    /// The run's own size-capped tmpfs.
    pub disk: bool,
}

/// What a run did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Outcome {
    pub ending: Ending,
    pub duration_ms: u64,
    /// CPU time of every process of the run (cgroup accounting), when available.
    pub cpu_ms: Option<u64>,
    /// Peak memory of the run (cgroup), when available.
    pub peak_memory_bytes: Option<u64>,
    /// The memory limit was reached (allocations failed or the OOM killer ran).
    pub memory_limit_hit: bool,
    /// stdout and stderr as they came, the first `output_keep_bytes` (lossy UTF-8).
    pub output: String,
    /// Bytes of output read in all.
    pub output_bytes: u64,
    /// SHA-256 of all output read.
    pub output_sha256: String,
    /// `output` is not all of it.
    pub output_truncated: bool,
    /// The results file, parsed (`None`: not written or unreadable, see `results_error`).
    pub results: Option<serde_json::Value>,
    pub results_error: Option<String>,
    pub enforced: Enforced,
}

/// A file path or link name the run may not have.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not a relative path inside the workspace")]
pub struct BadPath(pub String);

/// Checks that `path` stays inside /work: relative, no `..`, no empty or `.` parts, no NUL.
pub fn check_path(path: &str) -> Result<PathBuf, BadPath> {
    let bad = || BadPath(path.to_owned());
    if path.is_empty() || path.len() > 1024 || path.contains('\0') || path.contains('\\') {
        return Err(bad());
    }
    let p = Path::new(path);
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(part) => out.push(part),
            _ => return Err(bad()),
        }
    }
    if out.as_os_str().is_empty() || path.split('/').any(|s| s.is_empty() || s == ".") {
        return Err(bad());
    }
    Ok(out)
}

/// The cgroup hierarchies the runner may use.
#[derive(Clone, Debug)]
enum Cgroups {
    /// v1: one directory per controller.
    V1 {
        memory: Option<PathBuf>,
        pids: Option<PathBuf>,
        cpuacct: Option<PathBuf>,
    },
    /// v2: one directory with the controllers enabled.
    V2 { root: PathBuf },
}

/// What the machine lets the sandbox enforce.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Probe {
    pub bwrap: bool,
    pub setpriv: bool,
    pub prlimit: bool,
    pub root: bool,
    pub cgroup_memory: bool,
    pub cgroup_pids: bool,
    pub cgroup_cpu: bool,
    pub cgroup_version: Option<u8>,
}

impl Probe {
    /// The protections a run must never go without: namespaces, its own uid, rlimits.
    pub fn essential_missing(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if !self.bwrap {
            missing.push("bubblewrap (bwrap)");
        }
        if !self.setpriv {
            missing.push("setpriv (util-linux)");
        }
        if !self.prlimit {
            missing.push("prlimit (util-linux)");
        }
        if !self.root {
            missing.push("root (to switch to the runs' uids, mount their tmpfs and make cgroups)");
        }
        missing
    }
}

/// The sandbox: where runs live and which uids they get.
pub struct Sandbox {
    runs_dir: PathBuf,
    harness_dir: PathBuf,
    uid_base: u32,
    slots: Mutex<Vec<bool>>,
    permits: Semaphore,
    cgroups: Option<Cgroups>,
    probe: Probe,
}

/// Name of the cgroup (and of the runs' parent directory) the runner creates.
const CGROUP_PARENT: &str = "clarity-runner";
/// Most of a results file the runner reads.
const RESULTS_MAX_BYTES: u64 = 1024 * 1024;

impl Sandbox {
    /// A sandbox making at most `concurrency` runs at once, under `runs_dir`, with uids
    /// `uid_base .. uid_base + concurrency`, mounting `harness_dir` at /harness.
    pub fn new(
        runs_dir: PathBuf,
        harness_dir: PathBuf,
        uid_base: u32,
        concurrency: usize,
    ) -> io::Result<Sandbox> {
        let concurrency = concurrency.max(1);
        std::fs::create_dir_all(&runs_dir)?;
        set_mode(&runs_dir, 0o711)?;
        // A runner killed mid-run leaves its runs' tmpfs and directories: this runner owns the
        // directory (one per runner process), so they are cleared now.
        for entry in std::fs::read_dir(&runs_dir)?.flatten() {
            let path = CString::new(entry.path().as_os_str().as_bytes()).expect("no NUL in paths");
            unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
            let _ = std::fs::remove_dir_all(entry.path());
        }
        let harness_dir = harness_dir.canonicalize()?;
        // The sandbox's pid-1 process outlives bubblewrap by a moment and is orphaned: as a
        // subreaper the runner becomes its parent and reaps it (`reap_orphans`), instead of
        // leaving a zombie per run to a container init that may never reap.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        let cgroups = find_cgroups();
        let probe = Sandbox::probe_with(cgroups.as_ref());
        Ok(Sandbox {
            runs_dir,
            harness_dir,
            uid_base,
            slots: Mutex::new(vec![false; concurrency]),
            permits: Semaphore::new(concurrency),
            cgroups,
            probe,
        })
    }

    /// What this machine lets the sandbox enforce.
    pub fn probe(&self) -> &Probe {
        &self.probe
    }

    fn probe_with(cgroups: Option<&Cgroups>) -> Probe {
        let (mut memory, mut pids, mut cpu, mut version) = (false, false, false, None);
        match cgroups {
            Some(Cgroups::V1 {
                memory: m,
                pids: p,
                cpuacct: c,
            }) => {
                (memory, pids, cpu) = (m.is_some(), p.is_some(), c.is_some());
                version = Some(1);
            }
            Some(Cgroups::V2 { .. }) => {
                (memory, pids, cpu) = (true, true, true);
                version = Some(2);
            }
            None => {}
        }
        Probe {
            bwrap: which("bwrap"),
            setpriv: which("setpriv"),
            prlimit: which("prlimit"),
            root: unsafe { libc::geteuid() } == 0,
            cgroup_memory: memory,
            cgroup_pids: pids,
            cgroup_cpu: cpu,
            cgroup_version: version,
        }
    }

    /// Runs `job` and reports what happened. Waits for a free slot first.
    pub async fn run(&self, job: &Job) -> Outcome {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let slot = self.take_slot();
        let started = Instant::now();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = self.runs_dir.join(&id);
        let mut run = Run {
            dir: dir.clone(),
            mounted: false,
            cgroup: Vec::new(),
        };
        let outcome = match self.prepare(&mut run, job, slot, &id) {
            Ok(enforced) => self.execute(&run, job, slot, enforced, started).await,
            Err(e) => failed(format!("setting up the sandbox: {e}"), started),
        };
        run.cleanup();
        reap_orphans(self.uid(slot));
        self.give_slot(slot);
        outcome
    }

    fn take_slot(&self) -> usize {
        let mut slots = self.slots.lock().expect("not poisoned");
        let slot = slots
            .iter()
            .position(|used| !used)
            .expect("a permit guarantees a free slot");
        slots[slot] = true;
        slot
    }

    fn give_slot(&self, slot: usize) {
        self.slots.lock().expect("not poisoned")[slot] = false;
    }

    fn uid(&self, slot: usize) -> u32 {
        self.uid_base + slot as u32
    }

    /// The run's directory, files and cgroup.
    fn prepare(&self, run: &mut Run, job: &Job, slot: usize, id: &str) -> io::Result<Enforced> {
        let uid = self.uid(slot);
        let mut enforced = Enforced::default();
        std::fs::create_dir(&run.dir)?;
        if self.probe.root {
            run.mounted = mount_tmpfs(&run.dir, job.limits.disk_bytes).is_ok();
            enforced.disk = run.mounted;
        }
        set_mode(&run.dir, 0o755)?;
        let work = run.dir.join("work");
        let results = run.dir.join("results");
        std::fs::create_dir(&work)?;
        std::fs::create_dir(&results)?;
        let mut dirs = vec![work.clone()];
        for (path, content) in &job.files {
            let rel =
                check_path(path).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let target = work.join(&rel);
            let mut parent = target.parent().map(Path::to_path_buf);
            if let Some(p) = &parent {
                std::fs::create_dir_all(p)?;
            }
            while let Some(p) = parent {
                if p == work || !p.starts_with(&work) {
                    break;
                }
                dirs.push(p.clone());
                parent = p.parent().map(Path::to_path_buf);
            }
            std::fs::write(&target, content)?;
            chown(&target, uid)?;
        }
        for (name, target) in &job.links {
            let rel =
                check_path(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let link = work.join(rel);
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(target, &link)?;
        }
        for d in dirs.iter().chain([&results]) {
            chown(d, uid)?;
        }
        std::fs::write(
            run.dir.join("passwd"),
            format!("candidate:x:{uid}:{uid}:candidate:/tmp:/bin/sh\n"),
        )?;
        std::fs::write(run.dir.join("group"), format!("candidate:x:{uid}:\n"))?;
        if let Some(cg) = &self.cgroups {
            run.cgroup = make_cgroup(cg, id, &job.limits);
            enforced.memory = run.cgroup.iter().any(|c| c.memory);
            enforced.processes = run.cgroup.iter().any(|c| c.pids);
        }
        Ok(enforced)
    }

    fn command(&self, run: &Run, job: &Job, uid: u32) -> tokio::process::Command {
        let l = &job.limits;
        let dir = &run.dir;
        let mut cmd = tokio::process::Command::new("setpriv");
        cmd.args([
            "--reuid",
            &uid.to_string(),
            "--regid",
            &uid.to_string(),
            "--clear-groups",
        ]);
        cmd.args(["--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]);
        cmd.arg("prlimit");
        cmd.arg(format!("--nproc={}", l.processes));
        cmd.arg(format!("--cpu={}", l.cpu_seconds));
        cmd.arg(format!("--fsize={}", l.file_bytes));
        cmd.arg(format!("--nofile={}", l.open_files));
        cmd.arg("--core=0");
        cmd.arg("bwrap");
        cmd.args([
            "--unshare-all",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
        ]);
        cmd.args(["--ro-bind", "/usr", "/usr"]);
        for (link, target) in [
            ("usr/lib", "/lib"),
            ("usr/lib64", "/lib64"),
            ("usr/bin", "/bin"),
            ("usr/sbin", "/sbin"),
        ] {
            cmd.args(["--symlink", link, target]);
        }
        cmd.arg("--ro-bind")
            .arg(dir.join("passwd"))
            .arg("/etc/passwd");
        cmd.arg("--ro-bind")
            .arg(dir.join("group"))
            .arg("/etc/group");
        for etc in [
            "/etc/ld.so.cache",
            "/etc/alternatives",
            "/etc/ssl",
            "/etc/localtime",
            "/etc/nsswitch.conf",
        ] {
            cmd.args(["--ro-bind-try", etc, etc]);
        }
        cmd.args(["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]);
        cmd.arg("--bind").arg(dir.join("work")).arg("/work");
        cmd.arg("--bind").arg(dir.join("results")).arg("/results");
        cmd.arg("--ro-bind").arg(&self.harness_dir).arg("/harness");
        if let Some(t) = &job.toolchain {
            cmd.arg("--ro-bind").arg(t).arg("/toolchain");
        }
        if let Some(g) = &job.grader {
            cmd.arg("--ro-bind").arg(g).arg("/grader");
        }
        // The sandbox's own root (where /etc, /work's mount point and the symlinks live) is
        // read-only too: only /work, /results and /tmp can be written.
        cmd.args(["--remount-ro", "/"]);
        cmd.args(["--chdir", "/work", "--clearenv"]);
        let mut env: BTreeMap<&str, String> = BTreeMap::new();
        env.insert(
            "PATH",
            "/usr/local/go/bin:/usr/local/bin:/usr/bin:/bin".into(),
        );
        env.insert("HOME", "/tmp".into());
        env.insert("LANG", "C.UTF-8".into());
        env.insert("TMPDIR", "/tmp".into());
        env.insert("USER", "candidate".into());
        env.insert("CLARITY_RESULTS", "/results/results.json".into());
        env.insert("CLARITY_SERVICES", job.services.join(" "));
        env.insert("GOCACHE", "/tmp/.gocache".into());
        env.insert("GOPATH", "/tmp/.gopath".into());
        env.insert("GOPROXY", "off".into());
        env.insert("GOTOOLCHAIN", "local".into());
        env.insert("GOFLAGS", "-mod=mod".into());
        env.insert("NO_COLOR", "1".into());
        for (k, v) in &job.env {
            env.insert(k.as_str(), v.clone());
        }
        for (k, v) in env {
            cmd.args(["--setenv", k]).arg(v);
        }
        cmd.arg("/harness/entry.sh");
        cmd.args(&job.command);
        cmd.env_clear();
        cmd.env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.kill_on_drop(true);
        cmd.process_group(0);
        // Into the run's cgroups before `exec`, so every process the run ever starts is counted.
        let procs: Vec<CString> = run
            .cgroup
            .iter()
            .map(|c| {
                CString::new(c.dir.join("cgroup.procs").as_os_str().as_bytes())
                    .expect("no NUL in paths")
            })
            .collect();
        unsafe {
            cmd.pre_exec(move || {
                for path in &procs {
                    join_cgroup(path)?;
                }
                Ok(())
            });
        }
        cmd
    }

    async fn execute(
        &self,
        run: &Run,
        job: &Job,
        slot: usize,
        enforced: Enforced,
        started: Instant,
    ) -> Outcome {
        if job.command.is_empty() {
            return failed("no command to run".into(), started);
        }
        let mut child = match self.command(run, job, self.uid(slot)).spawn() {
            Ok(c) => c,
            Err(e) => return failed(format!("starting the sandbox: {e}"), started),
        };
        let pgid = child.id().map(|p| p as i32);
        let capture = Arc::new(Mutex::new(Captured::new(job.limits.output_keep_bytes)));
        let over_cap = Arc::new(Notify::new());
        let readers = [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ]
        .into_iter()
        .flatten()
        .map(|mut r| {
            let capture = Arc::clone(&capture);
            let over_cap = Arc::clone(&over_cap);
            let cap = job.limits.output_cap_bytes;
            let keep = job.limits.output_keep_bytes;
            let live = job.live.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match r.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let total = {
                                let mut c = capture.lock().expect("not poisoned");
                                let before = c.total;
                                c.push(&buf[..n]);
                                if let Some(live) = &live {
                                    let room = keep.saturating_sub(before) as usize;
                                    if room > 0 {
                                        let _ = live.send(buf[..n.min(room)].to_vec());
                                    }
                                }
                                c.total
                            };
                            if total > cap {
                                over_cap.notify_one();
                                break;
                            }
                        }
                    }
                }
            })
        })
        .collect::<Vec<_>>();
        let wall = Duration::from_millis(job.limits.wall_ms);
        let ending = tokio::select! {
            status = child.wait() => match status {
                Ok(s) => ending_of(s),
                Err(e) => Ending::SandboxError { message: format!("waiting for the run: {e}") },
            },
            _ = tokio::time::sleep(wall) => Ending::TimedOut,
            _ = over_cap.notified() => Ending::OutputLimit,
        };
        if matches!(ending, Ending::TimedOut | Ending::OutputLimit) {
            // bubblewrap is in our process group; its death ends the run's pid namespace.
            if let Some(pgid) = pgid {
                unsafe { libc::kill(-pgid, libc::SIGKILL) };
            }
            let _ = child.kill().await;
        }
        let _ = child.wait().await;
        // Whatever is still in the cgroup (nothing should be, after the pid namespace ended).
        for c in &run.cgroup {
            kill_cgroup(&c.dir);
        }
        for r in readers {
            let _ = tokio::time::timeout(Duration::from_secs(5), r).await;
        }
        let duration_ms = started.elapsed().as_millis() as u64;
        let (cpu_ms, peak_memory_bytes, memory_limit_hit) = usage(&run.cgroup);
        let (results, results_error) = read_results(&run.dir.join("results/results.json"));
        let captured = std::mem::replace(
            &mut *capture.lock().expect("not poisoned"),
            Captured::new(0),
        );
        let ending = match ending {
            // A SIGKILL the run did not ask for, with the memory limit hit: the OOM killer.
            e @ Ending::Signalled { .. } => e,
            e => e,
        };
        Outcome {
            ending,
            duration_ms,
            cpu_ms,
            peak_memory_bytes,
            memory_limit_hit,
            output_truncated: captured.total > captured.kept.len() as u64,
            output_bytes: captured.total,
            output_sha256: hex::encode(captured.hasher.finalize()),
            output: String::from_utf8_lossy(&captured.kept).into_owned(),
            results,
            results_error,
            enforced,
        }
    }
}

/// The output so far: the first bytes kept, all of it counted and hashed.
struct Captured {
    kept: Vec<u8>,
    keep: u64,
    total: u64,
    hasher: Sha256,
}

impl Captured {
    fn new(keep: u64) -> Captured {
        Captured {
            kept: Vec::new(),
            keep,
            total: 0,
            hasher: Sha256::new(),
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.total += bytes.len() as u64;
        let room = self.keep.saturating_sub(self.kept.len() as u64) as usize;
        self.kept.extend_from_slice(&bytes[..room.min(bytes.len())]);
    }
}

fn failed(message: String, started: Instant) -> Outcome {
    Outcome {
        ending: Ending::SandboxError { message },
        duration_ms: started.elapsed().as_millis() as u64,
        cpu_ms: None,
        peak_memory_bytes: None,
        memory_limit_hit: false,
        output: String::new(),
        output_bytes: 0,
        output_sha256: hex::encode(Sha256::digest(b"")),
        output_truncated: false,
        results: None,
        results_error: Some("the run did not start".into()),
        enforced: Enforced::default(),
    }
}

fn ending_of(status: std::process::ExitStatus) -> Ending {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        // bubblewrap exits with 128 + n when the run's process died of signal n.
        (Some(code), _) if (129..=128 + 64).contains(&code) => {
            Ending::Signalled { signal: code - 128 }
        }
        (Some(code), _) => Ending::Exited { code },
        (None, Some(signal)) => Ending::Signalled { signal },
        (None, None) => Ending::SandboxError {
            message: "the run ended without a status".into(),
        },
    }
}

fn read_results(path: &Path) -> (Option<serde_json::Value>, Option<String>) {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(_) => return (None, Some("no results file was written".into())),
    };
    if !meta.is_file() {
        return (None, Some("the results path is not a regular file".into()));
    }
    if meta.len() > RESULTS_MAX_BYTES {
        return (
            None,
            Some(format!(
                "the results file is {} bytes, more than the {RESULTS_MAX_BYTES} read",
                meta.len()
            )),
        );
    }
    match std::fs::read(path).map(|b| serde_json::from_slice::<serde_json::Value>(&b)) {
        Ok(Ok(v)) => (Some(v), None),
        Ok(Err(e)) => (None, Some(format!("the results file is not JSON: {e}"))),
        Err(e) => (None, Some(format!("reading the results file: {e}"))),
    }
}

/// A run's directory and cgroups, removed at the end.
struct Run {
    dir: PathBuf,
    mounted: bool,
    cgroup: Vec<RunCgroup>,
}

impl Run {
    fn cleanup(&mut self) {
        for c in self.cgroup.drain(..) {
            kill_cgroup(&c.dir);
            // A cgroup can be removed only once empty; its processes were just killed.
            for _ in 0..50 {
                if std::fs::remove_dir(&c.dir).is_ok() || !c.dir.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if self.mounted {
            let path = CString::new(self.dir.as_os_str().as_bytes()).expect("no NUL in paths");
            unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[derive(Debug)]
struct RunCgroup {
    dir: PathBuf,
    memory: bool,
    pids: bool,
    cpu: bool,
    v2: bool,
}

fn find_cgroups() -> Option<Cgroups> {
    let base = Path::new("/sys/fs/cgroup");
    let v2 = base.join("cgroup.controllers");
    if let Ok(controllers) = std::fs::read_to_string(&v2) {
        let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
        if has("memory") && has("pids") {
            let root = base.join(CGROUP_PARENT);
            let _ = std::fs::create_dir(&root);
            // Enable the controllers for the runs' cgroups below ours.
            let _ = std::fs::write(base.join("cgroup.subtree_control"), "+memory +pids +cpu");
            let ok = std::fs::write(root.join("cgroup.subtree_control"), "+memory +pids +cpu")
                .is_ok()
                || std::fs::write(root.join("cgroup.subtree_control"), "+memory +pids").is_ok();
            if ok {
                return Some(Cgroups::V2 { root });
            }
        }
    }
    let v1 = |controller: &str| {
        let dir = base.join(controller).join(CGROUP_PARENT);
        let _ = std::fs::create_dir(&dir);
        // Writable by us: a probe child cgroup can be made and removed.
        let probe = dir.join("probe");
        let ok = std::fs::create_dir(&probe).is_ok() && std::fs::remove_dir(&probe).is_ok();
        ok.then_some(dir)
    };
    let (memory, pids, cpuacct) = (v1("memory"), v1("pids"), v1("cpuacct"));
    if memory.is_none() && pids.is_none() && cpuacct.is_none() {
        return None;
    }
    Some(Cgroups::V1 {
        memory,
        pids,
        cpuacct,
    })
}

fn make_cgroup(cg: &Cgroups, id: &str, limits: &Limits) -> Vec<RunCgroup> {
    let mut out = Vec::new();
    match cg {
        Cgroups::V2 { root } => {
            let dir = root.join(id);
            if std::fs::create_dir(&dir).is_ok() {
                let memory =
                    std::fs::write(dir.join("memory.max"), limits.memory_bytes.to_string()).is_ok();
                let _ = std::fs::write(dir.join("memory.swap.max"), "0");
                let pids =
                    std::fs::write(dir.join("pids.max"), limits.processes.to_string()).is_ok();
                out.push(RunCgroup {
                    dir,
                    memory,
                    pids,
                    cpu: true,
                    v2: true,
                });
            }
        }
        Cgroups::V1 {
            memory,
            pids,
            cpuacct,
        } => {
            if let Some(m) = memory {
                let dir = m.join(id);
                if std::fs::create_dir(&dir).is_ok() {
                    let ok = std::fs::write(
                        dir.join("memory.limit_in_bytes"),
                        limits.memory_bytes.to_string(),
                    )
                    .is_ok();
                    // Swap counts too where the kernel accounts it (it may not: then RAM only).
                    let _ = std::fs::write(
                        dir.join("memory.memsw.limit_in_bytes"),
                        limits.memory_bytes.to_string(),
                    );
                    out.push(RunCgroup {
                        dir,
                        memory: ok,
                        pids: false,
                        cpu: false,
                        v2: false,
                    });
                }
            }
            if let Some(p) = pids {
                let dir = p.join(id);
                if std::fs::create_dir(&dir).is_ok() {
                    let ok =
                        std::fs::write(dir.join("pids.max"), limits.processes.to_string()).is_ok();
                    out.push(RunCgroup {
                        dir,
                        memory: false,
                        pids: ok,
                        cpu: false,
                        v2: false,
                    });
                }
            }
            if let Some(c) = cpuacct {
                let dir = c.join(id);
                if std::fs::create_dir(&dir).is_ok() {
                    out.push(RunCgroup {
                        dir,
                        memory: false,
                        pids: false,
                        cpu: true,
                        v2: false,
                    });
                }
            }
        }
    }
    out
}

/// CPU time, peak memory and whether the memory limit was hit, from the run's cgroups.
fn usage(cgroups: &[RunCgroup]) -> (Option<u64>, Option<u64>, bool) {
    let read = |p: PathBuf| std::fs::read_to_string(p).ok();
    let (mut cpu, mut peak, mut hit) = (None, None, false);
    for c in cgroups {
        if c.v2 {
            cpu = read(c.dir.join("cpu.stat"))
                .and_then(|s| stat_field(&s, "usage_usec"))
                .map(|us| us / 1000);
            peak = read(c.dir.join("memory.peak")).and_then(|s| s.trim().parse().ok());
            hit = read(c.dir.join("memory.events"))
                .map(|s| {
                    stat_field(&s, "max").unwrap_or(0) > 0
                        || stat_field(&s, "oom_kill").unwrap_or(0) > 0
                })
                .unwrap_or(false);
        } else {
            if c.cpu {
                cpu = read(c.dir.join("cpuacct.usage"))
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .map(|ns| ns / 1_000_000);
            }
            if c.memory {
                peak = read(c.dir.join("memory.max_usage_in_bytes"))
                    .and_then(|s| s.trim().parse().ok());
                let count = |f: &str| {
                    read(c.dir.join(f))
                        .and_then(|s| s.trim().parse::<u64>().ok())
                        .unwrap_or(0)
                };
                hit = count("memory.failcnt") > 0
                    || count("memory.memsw.failcnt") > 0
                    || read(c.dir.join("memory.oom_control"))
                        .and_then(|s| stat_field(&s, "oom_kill"))
                        .unwrap_or(0)
                        > 0;
            }
        }
    }
    (cpu, peak, hit)
}

fn stat_field(stat: &str, name: &str) -> Option<u64> {
    stat.lines().find_map(|l| {
        let mut parts = l.split_whitespace();
        (parts.next() == Some(name))
            .then(|| parts.next()?.parse().ok())
            .flatten()
    })
}

/// Kills every process still in the cgroup `dir`.
fn kill_cgroup(dir: &Path) {
    if std::fs::write(dir.join("cgroup.kill"), "1").is_ok() {
        return;
    }
    for _ in 0..20 {
        let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) else {
            return;
        };
        let pids: Vec<i32> = procs
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Reaps this process's zombie children of `uid` (the sandboxes' orphaned pid-1 processes), and
/// kills and reaps any of its children of `uid` still alive (none should be: the run is over).
fn reap_orphans(uid: u32) {
    let me = std::process::id().to_string();
    for _ in 0..50 {
        let mut left = 0;
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
                continue;
            };
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .and_then(|v| v.split_whitespace().next().map(str::to_owned))
            };
            if field("PPid:").as_deref() != Some(me.as_str())
                || field("Uid:") != Some(uid.to_string())
            {
                continue;
            }
            left += 1;
            if field("State:").as_deref() != Some("Z") {
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
        }
        if left == 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Writes the calling process's pid to `procs` (async-signal-safe: used between fork and exec).
fn join_cgroup(procs: &CString) -> io::Result<()> {
    let fd = unsafe { libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // "0" means "the writing process" in cgroup.procs.
    let n = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
    unsafe { libc::close(fd) };
    if n != 1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn mount_tmpfs(dir: &Path, size: u64) -> io::Result<()> {
    let target = CString::new(dir.as_os_str().as_bytes()).expect("no NUL in paths");
    let data = CString::new(format!("size={size},mode=0755")).expect("no NUL");
    let rc = unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            target.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NODEV | libc::MS_NOSUID,
            data.as_ptr().cast(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn chown(path: &Path, uid: u32) -> io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(uid))
}

fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()))
        .unwrap_or(false)
        || ["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
            .iter()
            .any(|d| Path::new(d).join(program).is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_workspace() {
        for ok in ["a.py", "src/app.ts", "deep/er/file.go", "with space/x"] {
            assert!(check_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "./a",
            "a/./b",
            "a\0b",
            "a\\b",
            "a/",
        ] {
            assert_eq!(check_path(bad), Err(BadPath(bad.to_owned())), "{bad:?}");
        }
    }

    #[test]
    fn output_is_kept_up_to_the_limit_and_hashed_in_full() {
        let mut c = Captured::new(4);
        c.push(b"abc");
        c.push(b"defg");
        assert_eq!(c.kept, b"abcd");
        assert_eq!(c.total, 7);
        assert_eq!(
            hex::encode(c.hasher.finalize()),
            hex::encode(Sha256::digest(b"abcdefg"))
        );
    }

    #[test]
    fn cgroup_stat_fields_are_read_by_name() {
        let stat = "usage_usec 1234\nuser_usec 1000\nsystem_usec 234\n";
        assert_eq!(stat_field(stat, "usage_usec"), Some(1234));
        assert_eq!(stat_field(stat, "max"), None);
    }
}
