//! Embeds the repository's `catalogue/` folder (the built-in assessments as content: specs,
//! prompts, starter files, rubrics; not the grader suites in `<slug>/grader/`) into the crate. It writes `$OUT_DIR/catalogue_files.rs`, one
//! `include_str!` per file, so the binary carries the catalogue it was built with and nothing
//! reads the folder at run time. Cargo reruns this when anything under the folder changes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir
        .join("../catalogue")
        .canonicalize()
        .expect("the catalogue folder sits beside the domain crate");
    // A directory here makes cargo scan everything under it, new files included.
    println!("cargo:rerun-if-changed={}", root.display());

    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    files.sort();

    let mut out = String::from(
        "/// Every file of the `catalogue/` folder: path relative to it, content.\n\
         pub static FILES: &[(&str, &str)] = &[\n",
    );
    for (relative, absolute) in &files {
        writeln!(out, "    ({relative:?}, include_str!({absolute:?})),").expect("to a string");
    }
    out.push_str("];\n");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    std::fs::write(out_dir.join("catalogue_files.rs"), out).expect("OUT_DIR is writable");
}

/// Every file under `dir`, as (`/`-separated path relative to `root`, absolute path).
fn walk(root: &Path, dir: &Path, files: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).expect("the catalogue folder is readable") {
        let path = entry.expect("a readable directory entry").path();
        if path.is_dir() {
            // `<slug>/grader/` (hidden checks, reference solutions, lockfiles) is for the runner,
            // which reads it from disk: it never enters the binary that serves candidates.
            let is_grader = path.file_name().is_some_and(|n| n == "grader")
                && path.parent().and_then(|p| p.parent()) == Some(root);
            if !is_grader {
                walk(root, &path, files);
            }
        } else {
            let relative = path
                .strip_prefix(root)
                .expect("under the root")
                .components()
                .map(|c| c.as_os_str().to_str().expect("UTF-8 file names"))
                .collect::<Vec<_>>()
                .join("/");
            let absolute = path.to_str().expect("a UTF-8 path").to_string();
            files.push((relative, absolute));
        }
    }
}
