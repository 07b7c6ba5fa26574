//! The built-in library: seven backend assessments every organization can use without writing
//! its own.
//!
//! Each entry is an ordinary [`AssessmentSpec`] (a take-home task with a markdown prompt, starter
//! files and a weighted rubric) under a fixed id. `clarity seed` loads the library idempotently:
//! it creates each assessment under its id (with `org_id: None`, visible to every organization)
//! if it does not exist yet, and revises and publishes a new version only when the spec here
//! differs from the latest published one. The ids are therefore part of the public contract:
//! they are hard-coded constants that must never change across releases, and the content is
//! plain data so that [`builtin`] returns the same specs (and the same digests) on every call.
//!
//! The content is not code: it lives in the repository's `catalogue/` folder, one folder per
//! assessment (`assessment.json`, `prompt.md`, `starter/…`, `rubric.json`; see
//! `catalogue/README.md`). `build.rs` embeds every file of that folder into this crate with
//! `include_str!`, so nothing is read from disk at run time and a binary carries the library it
//! was built with. [`load`] assembles the specs from those files.
//!
//! Editing an entry is a product change: it becomes a new published version the next time the
//! library is seeded, while sessions already invited keep the version (and digest) they were
//! invited to.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;
use uuid::Uuid;

use crate::assessment::{
    AssessmentKind, AssessmentSpec, Difficulty, Format, IntegrityPolicy, Rubric, StarterFile, Task,
};

/// Every file of the `catalogue/` folder, by path relative to it (`/`-separated), sorted.
mod embedded {
    include!(concat!(env!("OUT_DIR"), "/catalogue_files.rs"));
}

/// One assessment of the built-in library under its stable id.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogueEntry {
    pub id: Uuid,
    pub spec: AssessmentSpec,
}

/// The catalogue folder (`catalogue/<slug>/`) of a built-in assessment, by its id: its kind,
/// dashed (`bug_hunt` → `bug-hunt`). `None` for an organization's own assessments.
pub fn slug_of(assessment_id: Uuid) -> Option<String> {
    builtin()
        .into_iter()
        .find(|e| e.id == assessment_id)
        .and_then(|e| {
            serde_json::to_value(e.spec.kind)
                .ok()
                .and_then(|v| v.as_str().map(|k| k.replace('_', "-")))
        })
}

/// Stable id of "REST API Design & Implementation".
pub const REST_API_DESIGN_ID: Uuid = Uuid::from_u128(0xc1a7_1700_0000_4000_8000_0000_0000_0001);
/// Stable id of "Database Schema Optimization".
pub const DATABASE_SCHEMA_OPTIMIZATION_ID: Uuid =
    Uuid::from_u128(0xc1a7_1700_0000_4000_8000_0000_0000_0002);
/// Stable id of "Distributed Cache Strategy".
pub const DISTRIBUTED_CACHE_STRATEGY_ID: Uuid =
    Uuid::from_u128(0xc1a7_1700_0000_4000_8000_0000_0000_0003);
/// Stable id of "Microservice Orchestration".
pub const MICROSERVICE_ORCHESTRATION_ID: Uuid =
    Uuid::from_u128(0xc1a7_1700_0000_4000_8000_0000_0000_0004);
/// Stable id of "Real-world Bug Hunt".
pub const BUG_HUNT_ID: Uuid = Uuid::from_u128(0xc1a7_1700_0000_4000_8000_0000_0000_0005);
/// Stable id of "Async Task Queue Implementation".
pub const ASYNC_TASK_QUEUE_ID: Uuid = Uuid::from_u128(0xc1a7_1700_0000_4000_8000_0000_0000_0006);
/// Stable id of "Rate Limiting & Throttling Design".
pub const RATE_LIMITING_ID: Uuid = Uuid::from_u128(0xc1a7_1700_0000_4000_8000_0000_0000_0007);

/// The file listing the library's folders in presentation order.
pub const LIBRARY_FILE: &str = "library.json";
/// A folder's spec fields (everything but the rubric and the texts, which it names).
pub const MANIFEST_FILE: &str = "assessment.json";
/// A folder's rubric: a [`Rubric`] as JSON.
pub const RUBRIC_FILE: &str = "rubric.json";
/// Where a folder's starter files live, under their paths in the candidate's workspace.
pub const STARTER_DIR: &str = "starter";
/// Reserved for files only graders see (reference solutions, hidden tests); not part of the spec.
pub const GRADER_DIR: &str = "grader";

/// The built-in library, in presentation order.
///
/// Stable ids: every entry's id is a fixed UUID (see the constants above; the tests hold each
/// folder to its constant), so ids never change across releases and seeding stays idempotent.
pub fn builtin() -> Vec<CatalogueEntry> {
    static LIBRARY: OnceLock<Vec<CatalogueEntry>> = OnceLock::new();
    LIBRARY
        .get_or_init(|| {
            load(&embedded_files())
                .unwrap_or_else(|e| panic!("the embedded catalogue is invalid: {e}"))
        })
        .clone()
}

/// The catalogue folder as embedded at build time: path (relative to `catalogue/`) → content.
pub fn embedded_files() -> BTreeMap<&'static str, &'static str> {
    embedded::FILES.iter().copied().collect()
}

/// Why a catalogue folder cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueError {
    /// A file the library or a manifest names is not in the folder.
    #[error("`{0}` is missing")]
    Missing(String),
    /// A JSON file does not parse as what it should hold (unknown fields included).
    #[error("`{path}` is not valid: {reason}")]
    Invalid { path: String, reason: String },
}

/// An `assessment.json`: the spec's own fields, with the texts named by file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    id: Uuid,
    title: String,
    kind: AssessmentKind,
    difficulty: Difficulty,
    best_for: String,
    format: Format,
    time_limit_minutes: u32,
    integrity_policy: IntegrityPolicy,
    tasks: Vec<TaskManifest>,
}

/// One task of a manifest: its prompt's file and its starter files' paths, in order.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskManifest {
    title: String,
    /// The prompt's file name, relative to the assessment's folder.
    prompt: String,
    /// Paths in the candidate's workspace; the content is `starter/<path>` in the folder.
    starter_files: Vec<String>,
}

/// Assembles the library from a catalogue folder's files (path relative to `catalogue/` →
/// content): `library.json` lists the folders in order, each folder holds one assessment.
pub fn load(files: &BTreeMap<&str, &str>) -> Result<Vec<CatalogueEntry>, CatalogueError> {
    let slugs: Vec<String> = json(files, LIBRARY_FILE)?;
    slugs.iter().map(|slug| load_entry(files, slug)).collect()
}

fn load_entry(files: &BTreeMap<&str, &str>, slug: &str) -> Result<CatalogueEntry, CatalogueError> {
    let manifest: Manifest = json(files, &format!("{slug}/{MANIFEST_FILE}"))?;
    let rubric: Rubric = json(files, &format!("{slug}/{RUBRIC_FILE}"))?;
    let tasks = manifest
        .tasks
        .into_iter()
        .map(|t| {
            let starter_files = t
                .starter_files
                .into_iter()
                .map(|path| {
                    let content = text(files, &format!("{slug}/{STARTER_DIR}/{path}"))?;
                    Ok(StarterFile { path, content })
                })
                .collect::<Result<_, CatalogueError>>()?;
            Ok(Task {
                title: t.title,
                prompt: text(files, &format!("{slug}/{}", t.prompt))?,
                starter_files,
            })
        })
        .collect::<Result<_, CatalogueError>>()?;
    Ok(CatalogueEntry {
        id: manifest.id,
        spec: AssessmentSpec {
            title: manifest.title,
            kind: manifest.kind,
            difficulty: manifest.difficulty,
            best_for: manifest.best_for,
            format: manifest.format,
            time_limit_minutes: manifest.time_limit_minutes,
            tasks,
            rubric,
            integrity_policy: manifest.integrity_policy,
        },
    })
}

fn text(files: &BTreeMap<&str, &str>, path: &str) -> Result<String, CatalogueError> {
    files
        .get(path)
        .map(|s| s.to_string())
        .ok_or_else(|| CatalogueError::Missing(path.to_string()))
}

fn json<T: serde::de::DeserializeOwned>(
    files: &BTreeMap<&str, &str>,
    path: &str,
) -> Result<T, CatalogueError> {
    serde_json::from_str(&text(files, path)?).map_err(|e| CatalogueError::Invalid {
        path: path.to_string(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    const LIBRARY_KINDS: [AssessmentKind; 7] = [
        AssessmentKind::RestApiDesign,
        AssessmentKind::DatabaseSchemaOptimization,
        AssessmentKind::DistributedCacheStrategy,
        AssessmentKind::MicroserviceOrchestration,
        AssessmentKind::BugHunt,
        AssessmentKind::AsyncTaskQueue,
        AssessmentKind::RateLimiting,
    ];

    #[test]
    fn every_entry_passes_spec_validation() {
        for entry in builtin() {
            assert_eq!(entry.spec.validate(), Ok(()), "{}", entry.spec.title);
        }
    }

    #[test]
    fn the_library_has_seven_entries_with_unique_ids() {
        let entries = builtin();
        let ids: HashSet<Uuid> = entries.iter().map(|e| e.id).collect();
        assert_eq!(entries.len(), 7);
        assert_eq!(ids.len(), 7);
    }

    #[test]
    fn ids_are_stable_across_releases() {
        // These literals are a published contract: never change them.
        let entries = builtin();
        assert_eq!(
            entries[0].id.to_string(),
            "c1a71700-0000-4000-8000-000000000001"
        );
        assert_eq!(entries[0].spec.kind, AssessmentKind::RestApiDesign);
        assert_eq!(
            RATE_LIMITING_ID,
            Uuid::parse_str("c1a71700-0000-4000-8000-000000000007").unwrap()
        );
        let expected = [
            REST_API_DESIGN_ID,
            DATABASE_SCHEMA_OPTIMIZATION_ID,
            DISTRIBUTED_CACHE_STRATEGY_ID,
            MICROSERVICE_ORCHESTRATION_ID,
            BUG_HUNT_ID,
            ASYNC_TASK_QUEUE_ID,
            RATE_LIMITING_ID,
        ];
        assert_eq!(entries.iter().map(|e| e.id).collect::<Vec<_>>(), expected);
    }

    #[test]
    fn builtin_is_deterministic_so_seeding_is_idempotent() {
        let first: Vec<(Uuid, String)> = builtin()
            .into_iter()
            .map(|e| (e.id, e.spec.digest()))
            .collect();
        let second: Vec<(Uuid, String)> = builtin()
            .into_iter()
            .map(|e| (e.id, e.spec.digest()))
            .collect();
        assert_eq!(first, second);
    }

    #[test]
    fn titles_are_unique() {
        let entries = builtin();
        let titles: HashSet<&str> = entries.iter().map(|e| e.spec.title.as_str()).collect();
        assert_eq!(titles.len(), entries.len());
    }

    #[test]
    fn the_seven_library_kinds_are_each_covered_once() {
        let kinds: Vec<AssessmentKind> = builtin().iter().map(|e| e.spec.kind).collect();
        for kind in LIBRARY_KINDS {
            assert_eq!(kinds.iter().filter(|k| **k == kind).count(), 1, "{kind:?}");
        }
        assert!(!kinds.contains(&AssessmentKind::Custom));
    }

    #[test]
    fn rubric_weights_sum_to_one_hundred() {
        for entry in builtin() {
            let total: u32 = entry.spec.rubric.criteria.iter().map(|c| c.weight).sum();
            assert_eq!(total, 100, "{}", entry.spec.title);
        }
    }

    #[test]
    fn every_rubric_has_four_or_five_criteria_each_with_levels_one_to_four() {
        for entry in builtin() {
            let criteria = &entry.spec.rubric.criteria;
            assert!((4..=5).contains(&criteria.len()), "{}", entry.spec.title);
            for c in criteria {
                let scores: Vec<u8> = c.levels.iter().map(|l| l.score).collect();
                assert_eq!(scores, [1, 2, 3, 4], "{}", c.key);
                assert!(c.levels.iter().all(|l| !l.descriptor.trim().is_empty()));
            }
        }
    }

    #[test]
    fn entries_are_take_homes_of_ninety_to_one_hundred_eighty_minutes() {
        for entry in builtin() {
            assert_eq!(entry.spec.format, Format::TakeHome);
            assert!(
                (90..=180).contains(&entry.spec.time_limit_minutes),
                "{}",
                entry.spec.title
            );
        }
    }

    #[test]
    fn each_task_has_a_prompt_with_the_expected_sections_and_two_to_sixteen_starter_files() {
        for entry in builtin() {
            for task in &entry.spec.tasks {
                for section in [
                    "## Scenario",
                    "## Requirements",
                    "## Constraints",
                    "## What to hand in",
                    "## How it will be evaluated",
                ] {
                    assert!(
                        task.prompt.contains(section),
                        "{}: {section}",
                        entry.spec.title
                    );
                }
                // Up to eight: a runnable starter (seed data, files to fill in, visible tests) on top
                // of the material the candidate reads.
                assert!(
                    (2..=16).contains(&task.starter_files.len()),
                    "{}",
                    entry.spec.title
                );
                assert!(task
                    .starter_files
                    .iter()
                    .all(|f| !f.content.starts_with('\n') && f.content.ends_with('\n')));
            }
        }
    }

    #[test]
    fn integrity_policy_is_the_default_without_face_continuity() {
        for entry in builtin() {
            let policy = entry.spec.integrity_policy;
            assert!(!policy.face_continuity);
            assert_eq!(
                policy,
                IntegrityPolicy {
                    face_continuity: false,
                    ..IntegrityPolicy::default()
                }
            );
        }
    }

    #[test]
    fn difficulty_and_best_for_match_the_published_library() {
        let got: Vec<(&'static str, Difficulty, String)> = builtin()
            .into_iter()
            .map(|e| {
                let kind = match e.spec.kind {
                    AssessmentKind::RestApiDesign => "rest",
                    AssessmentKind::DatabaseSchemaOptimization => "db",
                    AssessmentKind::DistributedCacheStrategy => "cache",
                    AssessmentKind::MicroserviceOrchestration => "micro",
                    AssessmentKind::BugHunt => "bug",
                    AssessmentKind::AsyncTaskQueue => "queue",
                    AssessmentKind::RateLimiting => "rate",
                    AssessmentKind::Custom => "custom",
                };
                (kind, e.spec.difficulty, e.spec.best_for)
            })
            .collect();
        let expected = [
            (
                "rest",
                Difficulty::Mid,
                "Evaluating API design sense and REST principles",
            ),
            (
                "db",
                Difficulty::Mid,
                "Assessing data modeling and query efficiency",
            ),
            (
                "cache",
                Difficulty::Hard,
                "Testing scalability thinking and trade-off analysis",
            ),
            (
                "micro",
                Difficulty::Hard,
                "Evaluating system design and inter-service communication",
            ),
            (
                "bug",
                Difficulty::Mid,
                "Measuring debugging skills and code reading",
            ),
            (
                "queue",
                Difficulty::MidHard,
                "Testing concurrency patterns and job processing",
            ),
            (
                "rate",
                Difficulty::Mid,
                "Assessing security and reliability mindset",
            ),
        ];
        assert_eq!(got.len(), expected.len());
        for ((kind, difficulty, best_for), (ek, ed, eb)) in got.iter().zip(expected) {
            assert_eq!((*kind, *difficulty, best_for.as_str()), (ek, ed, eb));
        }
    }

    #[test]
    fn every_folder_is_listed_in_the_library_exactly_once() {
        let files = embedded_files();
        let folders: HashSet<&str> = files
            .keys()
            .filter_map(|path| path.split_once('/').map(|(folder, _)| folder))
            // Not an assessment: the monitoring notices (`crate::notice`).
            .filter(|folder| *folder != crate::notice::DIR)
            .collect();
        let listed: Vec<String> = serde_json::from_str(files[LIBRARY_FILE]).unwrap();
        let listed_set: HashSet<&str> = listed.iter().map(String::as_str).collect();
        assert_eq!(listed_set.len(), listed.len(), "a folder listed twice");
        assert_eq!(folders, listed_set);
    }

    #[test]
    fn every_file_of_a_folder_is_part_of_its_assessment() {
        // A starter file left out of the manifest would silently never reach a candidate.
        let files = embedded_files();
        let listed: Vec<String> = serde_json::from_str(files[LIBRARY_FILE]).unwrap();
        for slug in &listed {
            let manifest: Manifest =
                serde_json::from_str(files[format!("{slug}/{MANIFEST_FILE}").as_str()]).unwrap();
            let mut referenced: HashSet<String> = [MANIFEST_FILE, RUBRIC_FILE]
                .iter()
                .map(|f| format!("{slug}/{f}"))
                .collect();
            for task in &manifest.tasks {
                referenced.insert(format!("{slug}/{}", task.prompt));
                for path in &task.starter_files {
                    referenced.insert(format!("{slug}/{STARTER_DIR}/{path}"));
                }
            }
            let present: HashSet<String> = files
                .keys()
                .filter(|p| p.starts_with(&format!("{slug}/")))
                .filter(|p| !p.starts_with(&format!("{slug}/{GRADER_DIR}/")))
                .map(|p| p.to_string())
                .collect();
            assert_eq!(present, referenced, "{slug}");
        }
    }

    #[test]
    fn built_in_assessments_name_their_folders() {
        assert_eq!(slug_of(BUG_HUNT_ID).as_deref(), Some("bug-hunt"));
        assert_eq!(
            slug_of(REST_API_DESIGN_ID).as_deref(),
            Some("rest-api-design")
        );
        assert_eq!(slug_of(Uuid::nil()), None);
    }

    #[test]
    fn no_grader_file_is_embedded() {
        // Hidden checks and reference solutions stay on the runner's disk (domain/build.rs).
        let graders: Vec<&str> = embedded_files()
            .keys()
            .copied()
            .filter(|p| p.split('/').nth(1) == Some(GRADER_DIR))
            .collect();
        assert!(graders.is_empty(), "{graders:?}");
        assert!(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../catalogue/bug-hunt/grader/suite.json"
        ))
        .exists());
    }

    #[test]
    fn every_folder_is_named_after_its_kind() {
        let files = embedded_files();
        let listed: Vec<String> = serde_json::from_str(files[LIBRARY_FILE]).unwrap();
        for (slug, entry) in listed.iter().zip(builtin()) {
            let kind = serde_json::to_value(entry.spec.kind).unwrap();
            assert_eq!(slug.replace('-', "_"), kind.as_str().unwrap());
        }
    }

    #[test]
    fn a_folder_with_a_missing_starter_file_is_refused() {
        let mut files = embedded_files();
        files.remove("bug-hunt/starter/invoices/fx.py");
        assert_eq!(
            load(&files),
            Err(CatalogueError::Missing(
                "bug-hunt/starter/invoices/fx.py".into()
            ))
        );
    }

    #[test]
    fn a_manifest_with_an_unknown_field_is_refused() {
        let manifest = embedded_files()["rate-limiting/assessment.json"].replacen(
            '{',
            "{\"tilte\": \"x\",",
            1,
        );
        let mut files: BTreeMap<&str, &str> = embedded_files();
        files.insert("rate-limiting/assessment.json", &manifest);
        assert!(matches!(
            load(&files),
            Err(CatalogueError::Invalid { path, .. }) if path == "rate-limiting/assessment.json"
        ));
    }

    #[test]
    fn rubric_keys_are_unique_and_every_level_is_described() {
        for entry in builtin() {
            let keys: HashSet<&str> = entry
                .spec
                .rubric
                .criteria
                .iter()
                .map(|c| c.key.as_str())
                .collect();
            assert_eq!(
                keys.len(),
                entry.spec.rubric.criteria.len(),
                "{}",
                entry.spec.title
            );
        }
    }
}
