//! Tidy: every Rust file says what it is for in a `//!` first line, stays small enough to
//! hold in one's head, and no test is switched off with the ignore attribute.

use std::path::{Path, PathBuf};

/// Past this a file is asking to be split along the seams it already has.
const MAX_LINES: usize = 650;

fn rust_files(directory: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(directory) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" || name == "node_modules" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
}

fn workspace_files() -> Vec<PathBuf> {
    let root = Path::new(&manifest_dir()).join("../..");
    let mut files = Vec::new();
    rust_files(&root.join("crates"), &mut files);
    rust_files(&root.join("tests"), &mut files);
    assert!(
        files.len() > 40,
        "found the workspace's files: {}",
        files.len()
    );
    files
}

#[test]
fn every_rust_file_starts_with_a_module_doc_line() {
    let missing: Vec<String> = workspace_files()
        .iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            !text.starts_with("//!")
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(missing.is_empty(), "files without a //! line: {missing:#?}");
}

#[test]
fn no_rust_file_is_too_long_to_hold() {
    let long: Vec<String> = workspace_files()
        .iter()
        .filter_map(|path| {
            let lines = std::fs::read_to_string(path)
                .unwrap_or_default()
                .lines()
                .count();
            (lines > MAX_LINES).then(|| format!("{} ({lines} lines)", path.display()))
        })
        .collect();
    assert!(long.is_empty(), "files over {MAX_LINES} lines: {long:#?}");
}

#[test]
fn no_test_is_ignored() {
    let marker = ["#[", "ignore]"].concat();
    let ignored: Vec<String> = workspace_files()
        .iter()
        .filter(|path| {
            std::fs::read_to_string(path)
                .unwrap_or_default()
                .contains(&marker)
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(ignored.is_empty(), "ignored tests in: {ignored:#?}");
}

/// The package directory of the checkout running the test: cargo sets it at run time, and
/// the compile-time value may name another clone that built the same binary.
fn manifest_dir() -> std::ffi::OsString {
    std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}
