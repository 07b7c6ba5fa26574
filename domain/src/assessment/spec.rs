//! What an assessment *is*: its tasks, rubric and integrity policy. Validated before it is
//! accepted into a draft, and digested when a version is published.
//!
//! A spec travels in the assessment events, so its types are tolerant readers: unknown fields
//! (added by a newer producer) are ignored, never refused. The API refuses them in request
//! bodies on its own side (`api::extract::ApiJson`).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

/// The seven backend test families of the built-in library, plus organisation-defined tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssessmentKind {
    RestApiDesign,
    DatabaseSchemaOptimization,
    DistributedCacheStrategy,
    MicroserviceOrchestration,
    BugHunt,
    AsyncTaskQueue,
    RateLimiting,
    Custom,
}

/// Difficulty as the library presents it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Difficulty {
    Easy,
    Mid,
    MidHard,
    Hard,
}

/// Live (interviewer present) or take-home.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Live,
    TakeHome,
}

/// A file the candidate starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StarterFile {
    /// Relative, without empty, `.` or `..` segments; unique within the assessment.
    #[schema(pattern = "^(?!\\.\\.?(/|$))[^/\\u0000]+(/(?!\\.\\.?(/|$))[^/\\u0000]+)*$")]
    pub path: String,
    pub content: String,
}

/// One task of an assessment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Task {
    #[schema(
        pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$"
    )]
    pub title: String,
    /// Markdown prompt shown to the candidate.
    #[schema(
        pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$"
    )]
    pub prompt: String,
    #[serde(default)]
    pub starter_files: Vec<StarterFile>,
}

/// A level of a rubric criterion: a score and what earns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Level {
    #[schema(maximum = 255)]
    pub score: u8,
    pub descriptor: String,
}

/// One rubric criterion, weighted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Criterion {
    /// Stable machine key, e.g. `api_design`; unique within the rubric.
    #[schema(pattern = "^[a-z0-9_]+$")]
    pub key: String,
    pub name: String,
    /// Relative weight (> 0).
    #[schema(minimum = 1, maximum = 4_294_967_295_u32, format = Int64)]
    pub weight: u32,
    /// Ordered from lowest to highest score, each score higher than the one before.
    #[schema(min_items = 1)]
    pub levels: Vec<Level>,
}

/// How submissions are scored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Rubric {
    #[schema(min_items = 1)]
    pub criteria: Vec<Criterion>,
}

/// Which integrity monitors are switched on. Each monitor only ever produces evidence for a human
/// reviewer; none rejects a candidate automatically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IntegrityPolicy {
    pub keystroke_dynamics: bool,
    pub paste_tracking: bool,
    pub focus_tracking: bool,
    pub face_continuity: bool,
    pub similarity: bool,
}

impl Default for IntegrityPolicy {
    fn default() -> Self {
        Self {
            keystroke_dynamics: true,
            paste_tracking: true,
            focus_tracking: true,
            face_continuity: false,
            similarity: true,
        }
    }
}

/// The full content of an assessment version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AssessmentSpec {
    #[schema(
        pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$",
        max_length = 200
    )]
    pub title: String,
    pub kind: AssessmentKind,
    pub difficulty: Difficulty,
    pub best_for: String,
    pub format: Format,
    /// 15 to 480.
    #[schema(minimum = 15, maximum = 480)]
    pub time_limit_minutes: u32,
    #[schema(min_items = 1)]
    pub tasks: Vec<Task>,
    pub rubric: Rubric,
    #[serde(default)]
    pub integrity_policy: IntegrityPolicy,
}

/// Why a spec is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("title must be 1-200 characters")]
    Title,
    #[error("time limit must be between {min} and {max} minutes")]
    TimeLimit { min: u32, max: u32 },
    #[error("an assessment needs at least one task, each with a title and a prompt")]
    Tasks,
    #[error("starter file paths must be relative, unique and non-empty")]
    StarterFiles,
    #[error("the rubric needs at least one criterion")]
    NoCriteria,
    #[error("criterion `{0}` is invalid: keys must be unique snake_case, weights > 0, levels non-empty with increasing scores")]
    Criterion(String),
}

impl AssessmentSpec {
    /// Shortest and longest time limits accepted (15 minutes to 8 hours).
    pub const TIME_LIMIT_RANGE: (u32, u32) = (15, 480);

    /// Checks every structural rule; the first violation is returned.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.title.trim().is_empty() || self.title.chars().count() > 200 {
            return Err(SpecError::Title);
        }
        let (min, max) = Self::TIME_LIMIT_RANGE;
        if !(min..=max).contains(&self.time_limit_minutes) {
            return Err(SpecError::TimeLimit { min, max });
        }
        if self.tasks.is_empty()
            || self
                .tasks
                .iter()
                .any(|t| t.title.trim().is_empty() || t.prompt.trim().is_empty())
        {
            return Err(SpecError::Tasks);
        }
        let mut paths = std::collections::HashSet::new();
        for file in self.tasks.iter().flat_map(|t| &t.starter_files) {
            let ok = !file.path.is_empty()
                && !file.path.starts_with('/')
                && !file
                    .path
                    .split('/')
                    .any(|seg| seg == ".." || seg == "." || seg.is_empty());
            if !ok || !paths.insert(file.path.as_str()) {
                return Err(SpecError::StarterFiles);
            }
        }
        if self.rubric.criteria.is_empty() {
            return Err(SpecError::NoCriteria);
        }
        let mut keys = std::collections::HashSet::new();
        for c in &self.rubric.criteria {
            let key_ok = !c.key.is_empty()
                && c.key
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_');
            let levels_ok =
                !c.levels.is_empty() && c.levels.windows(2).all(|w| w[0].score < w[1].score);
            if !key_ok || !keys.insert(c.key.as_str()) || c.weight == 0 || !levels_ok {
                return Err(SpecError::Criterion(c.key.clone()));
            }
        }
        Ok(())
    }

    /// SHA-256 over the canonical JSON of the spec (struct fields serialize in declaration
    /// order, so the encoding is stable for a given schema version).
    pub fn digest(&self) -> String {
        let bytes = serde_json::to_vec(self).expect("spec serializes");
        hex::encode(Sha256::digest(bytes))
    }
}
