use rand::SeedableRng;

use super::*;
use crate::similarity::{compare, fingerprint, Params};

fn markers_left(files: &[SubmittedFile]) -> bool {
    files.iter().any(|f| {
        f.content.contains(['«', '»', '⟨', '⟩', '¦', '⟦', '⟧'])
            || f.content
                .lines()
                .any(|l| l.starts_with('?') || l.starts_with('%'))
    })
}

#[test]
fn solutions_are_deterministic_per_seed_and_fully_expanded() {
    for task in 0..TASKS {
        let a = solution(&mut StdRng::seed_from_u64(5), task);
        let b = solution(&mut StdRng::seed_from_u64(5), task);
        assert_eq!(a, b);
        assert!(!markers_left(&a), "task {task}");
        let lines: usize = a.iter().map(|f| f.content.lines().count()).sum();
        assert!((30..=600).contains(&lines), "task {task}: {lines} lines");
    }
}

#[test]
fn solutions_are_written_in_the_tasks_languages() {
    let ext = |task: usize| -> Vec<String> {
        solution(&mut StdRng::seed_from_u64(1), task)
            .iter()
            .map(|f| f.path.rsplit('.').next().unwrap().to_string())
            .collect()
    };
    assert!(ext(0).iter().all(|e| e == "ts"));
    assert!(ext(1).iter().all(|e| e == "sql"));
    assert!(ext(2).iter().all(|e| e == "go"));
    assert!(ext(4).iter().all(|e| e == "py"));
    assert!(ext(5).contains(&"sql".to_string()) && ext(5).contains(&"py".to_string()));
}

#[test]
fn independent_solutions_of_a_task_differ() {
    for task in 0..TASKS {
        let a = solution(&mut StdRng::seed_from_u64(100), task);
        let b = solution(&mut StdRng::seed_from_u64(200), task);
        assert_ne!(a, b, "task {task}");
    }
}

#[test]
fn a_renamed_copy_has_other_identifiers_but_the_same_fingerprints() {
    let mut rng = StdRng::seed_from_u64(9);
    for task in 0..TASKS {
        let original = solution(&mut rng, task);
        let how = Disguise {
            rename: true,
            ..Disguise::default()
        };
        let copy = disguise(&mut rng, &original, how);
        assert_ne!(original, copy, "task {task}");
        let p = Params::default();
        let fa = fingerprint(&original, &[], &p);
        let fb = fingerprint(&copy, &[], &p);
        assert_eq!(fa.distinct(), fb.distinct(), "task {task}");
    }
}

#[test]
fn reordering_moves_blocks_without_losing_lines() {
    let mut rng = StdRng::seed_from_u64(4);
    let mut moved = 0;
    for task in 0..TASKS {
        let original = solution(&mut rng, task);
        let how = Disguise {
            reorder: true,
            ..Disguise::default()
        };
        let copy = disguise(&mut rng, &original, how);
        for (a, b) in original.iter().zip(&copy) {
            let mut la: Vec<&str> = a.content.lines().filter(|l| !l.trim().is_empty()).collect();
            let mut lb: Vec<&str> = b.content.lines().filter(|l| !l.trim().is_empty()).collect();
            moved += usize::from(la != lb);
            la.sort_unstable();
            lb.sort_unstable();
            assert_eq!(la, lb, "{}", a.path);
        }
    }
    assert!(moved >= 5, "{moved}");
}

#[test]
fn dead_code_adds_lines_and_the_copy_still_matches() {
    let mut rng = StdRng::seed_from_u64(6);
    for task in 0..TASKS {
        let original = solution(&mut rng, task);
        let copy = disguise(&mut rng, &original, Disguise::ALL);
        let count = |files: &[SubmittedFile]| -> usize {
            files.iter().map(|f| f.content.lines().count()).sum()
        };
        assert!(count(&copy) > count(&original), "task {task}");
        let p = Params::default();
        let m = compare(
            &fingerprint(&original, &[], &p),
            &fingerprint(&copy, &[], &p),
        );
        // SQL statements are short: no-ops between them cost more (see the similarity tests).
        let floor = if task == 1 { 0.2 } else { 0.6 };
        assert!(m.score > floor, "task {task}: {}", m.score);
    }
}

#[test]
fn code_kept_from_a_starter_file_is_quoted_from_the_catalogue() {
    // Arrange: the orchestration task's candidates keep the starter's request and deps types.
    let task = 3;
    let starter = starter_files(task);
    let checkout = &starter
        .iter()
        .find(|f| f.path == "src/checkout.ts")
        .unwrap()
        .content;
    let kept: Vec<&str> = checkout.lines().skip(4).take(15).collect();

    // Act
    let files = solution(&mut StdRng::seed_from_u64(11), task);

    // Assert: every kept line, in order (a candidate's own statements may fall between them).
    let solution = &files
        .iter()
        .find(|f| f.path == "src/checkout.ts")
        .unwrap()
        .content;
    assert_eq!(kept[0], "export interface CheckoutRequest {");
    let mut wanted = kept.iter().peekable();
    for line in solution.lines() {
        if wanted.peek() == Some(&&line) {
            wanted.next();
        }
    }
    assert_eq!(wanted.next(), None, "{solution}");
}
