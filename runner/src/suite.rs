//! Grader suites (`catalogue/<slug>/grader/suite.json`, docs/runner.md) and what their results
//! mean: the visible tests a candidate runs, and the weighted hidden checks that grade a
//! submission.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::sandbox::{Job, Limits, Outcome};

/// One command of a suite.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SuiteCommand {
    pub command: Vec<String>,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

fn default_timeout() -> u64 {
    60
}

/// A suite's manifest.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct SuiteManifest {
    pub grader_version: String,
    pub toolchain: String,
    #[serde(default)]
    pub services: Vec<String>,
    #[serde(default)]
    pub links: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    pub visible: SuiteCommand,
    pub hidden: SuiteCommand,
}

/// A suite on disk, with where its toolchain was prepared.
#[derive(Clone, Debug)]
pub struct Suite {
    pub slug: String,
    pub dir: PathBuf,
    pub manifest: SuiteManifest,
    pub toolchain_dir: PathBuf,
}

/// Which command to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The visible tests ("Run tests" in the workspace).
    Visible,
    /// The hidden checks (grading).
    Hidden,
}

impl Suite {
    /// The suite of `catalogue/<slug>/` under `catalogue`, its toolchain in `toolchains/<slug>`.
    pub fn load(catalogue: &Path, toolchains: &Path, slug: &str) -> anyhow::Result<Suite> {
        let dir = catalogue.join(slug).join("grader");
        let text = std::fs::read_to_string(dir.join("suite.json"))
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", dir.join("suite.json").display()))?;
        let manifest: SuiteManifest = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", dir.join("suite.json").display()))?;
        anyhow::ensure!(
            !manifest.visible.command.is_empty() && !manifest.hidden.command.is_empty(),
            "{slug}: empty command"
        );
        Ok(Suite {
            slug: slug.to_owned(),
            dir,
            manifest,
            toolchain_dir: toolchains.join(slug),
        })
    }

    /// Every suite under `catalogue` (folders with `grader/suite.json`), by slug.
    pub fn load_all(catalogue: &Path, toolchains: &Path) -> anyhow::Result<Vec<Suite>> {
        let mut out = Vec::new();
        let mut slugs: Vec<String> = std::fs::read_dir(catalogue)?
            .flatten()
            .filter(|e| e.path().join("grader/suite.json").is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        slugs.sort();
        for slug in slugs {
            out.push(Suite::load(catalogue, toolchains, &slug)?);
        }
        Ok(out)
    }

    /// The job running `mode` over `files`, within `limits` (its wall time from the manifest).
    pub fn job(&self, mode: Mode, files: Vec<(String, String)>, limits: &Limits) -> Job {
        let cmd = match mode {
            Mode::Visible => &self.manifest.visible,
            Mode::Hidden => &self.manifest.hidden,
        };
        let mut limits = limits.clone();
        limits.wall_ms = cmd.timeout_seconds * 1000;
        limits.cpu_seconds = limits.cpu_seconds.max(cmd.timeout_seconds);
        Job {
            files,
            command: cmd.command.clone(),
            services: self.manifest.services.clone(),
            env: self
                .manifest
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            links: self
                .manifest
                .links
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            grader: (mode == Mode::Hidden).then(|| self.dir.clone()),
            toolchain: self
                .toolchain_dir
                .is_dir()
                .then(|| self.toolchain_dir.clone()),
            limits,
            live: None,
        }
    }

    /// The starter files of the assessment (from the catalogue folder), path and content.
    pub fn starter_files(&self) -> anyhow::Result<Vec<(String, String)>> {
        read_tree(
            &self
                .dir
                .parent()
                .expect("grader/ has a parent")
                .join("starter"),
        )
    }

    /// The reference solution laid over the starter files.
    pub fn reference_files(&self) -> anyhow::Result<Vec<(String, String)>> {
        let mut files: std::collections::BTreeMap<String, String> =
            self.starter_files()?.into_iter().collect();
        files.extend(read_tree(&self.dir.join("reference"))?);
        Ok(files.into_iter().collect())
    }
}

/// Every file under `root`: `/`-separated path relative to it, content (UTF-8).
pub fn read_tree(root: &Path) -> anyhow::Result<Vec<(String, String)>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) -> anyhow::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                walk(root, &path, out)?;
            } else {
                let rel = path
                    .strip_prefix(root)?
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((rel, std::fs::read_to_string(&path)?));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    if root.is_dir() {
        walk(root, root, &mut out)?;
    }
    out.sort();
    Ok(out)
}

/// One test or check, as a run reported it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TestResult {
    #[serde(default)]
    pub key: Option<String>,
    pub name: String,
    pub passed: bool,
    #[serde(default)]
    pub weight: Option<f64>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub duration_ms: Option<u64>,
}

/// The tests of a run's results file (empty when there is none; `Err` says why it is unusable).
pub fn tests_of(outcome: &Outcome) -> Result<Vec<TestResult>, String> {
    let Some(v) = &outcome.results else {
        return Err(outcome
            .results_error
            .clone()
            .unwrap_or_else(|| "no results".into()));
    };
    let tests = v.get("tests").ok_or("the results file has no \"tests\"")?;
    let mut out: Vec<TestResult> = serde_json::from_value(tests.clone())
        .map_err(|e| format!("the results file's tests are malformed: {e}"))?;
    for t in &mut out {
        t.name.truncate(t.name.floor_char_boundary(500));
        if let Some(m) = &mut t.message {
            m.truncate(m.floor_char_boundary(4000));
        }
    }
    Ok(out)
}

/// A graded submission: checks with weights, and the weighted share passed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Grade {
    pub checks: Vec<TestResult>,
    pub score: f64,
    pub max_score: f64,
}

impl Grade {
    /// The weighted share of passed checks, 0 to 1 (0 when nothing is weighted).
    pub fn fraction(&self) -> f64 {
        if self.max_score > 0.0 {
            self.score / self.max_score
        } else {
            0.0
        }
    }
}

/// The grade of a hidden run: every check needs a key and a positive weight.
pub fn grade_of(outcome: &Outcome) -> Result<Grade, String> {
    let checks = tests_of(outcome)?;
    if checks.is_empty() {
        return Err("the grader reported no checks".into());
    }
    let mut score = 0.0;
    let mut max = 0.0;
    for c in &checks {
        let w = c
            .weight
            .filter(|w| w.is_finite() && *w > 0.0)
            .ok_or_else(|| format!("check {:?} has no positive weight", c.name))?;
        if c.key.as_deref().is_none_or(str::is_empty) {
            return Err(format!("check {:?} has no key", c.name));
        }
        max += w;
        if c.passed {
            score += w;
        }
    }
    Ok(Grade {
        checks,
        score,
        max_score: max,
    })
}
