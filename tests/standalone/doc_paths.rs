//! Every repository path that code, comments, scripts and documents cite
//! (`docs/daemon.md`, `crates/daemon/src/act/`, `tests/openstack/up.sh`, ...)
//! exists: files move (the crate split moved most of them), and a reader sent
//! to a path that is not there is lost. A path is looked up from the
//! repository root, then from the package that cites it (a Cargo.toml's
//! `src/main.rs`). Paths with a placeholder (`*`, `<name>`, `{file}`, `…`) are
//! patterns, not citations, and are skipped.

use std::path::{Path, PathBuf};

/// Top-level directories whose paths are cited.
const ROOTS: &[&str] = &["docs/", "src/", "crates/", "tests/", "config/", "scenarios/", "heat-templates/"];

/// Files that cite paths.
const CITING: &[&str] = &["rs", "md", "toml", "sh", "yaml", "service", "py"];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn citing_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy();
        if path.is_dir() {
            if !matches!(name.as_ref(), "target" | ".git") {
                citing_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| CITING.iter().any(|c| e == *c)) {
            out.push(path);
        }
    }
}

/// The paths `text` cites: a root directory not preceded by a path or word
/// character, and the path characters after it.
fn cited(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let path_char = |b: u8| b.is_ascii_alphanumeric() || b"_./-*<>{}".contains(&b);
    let mut out = Vec::new();
    for root in ROOTS {
        for (at, _) in text.match_indices(root) {
            if at > 0 && (path_char(bytes[at - 1]) || bytes[at - 1] == b'$' || bytes[at - 1] == b':') {
                continue;
            }
            let len = bytes[at..].iter().take_while(|&&b| path_char(b)).count();
            let path = text[at..at + len].trim_end_matches(['.', '-']);
            let placeholder = path.contains(['*', '<', '>', '{', '}']) || text[at + len..].starts_with('…');
            if !placeholder {
                out.push(path);
            }
        }
    }
    out
}

/// The directory of the package `file` belongs to (its nearest Cargo.toml).
fn package_of(file: &Path) -> Option<&Path> {
    file.ancestors().skip(1).find(|d| d.join("Cargo.toml").is_file())
}

#[test]
fn every_cited_path_exists() {
    let repo = repo();
    let mut files = Vec::new();
    citing_files(&repo, &mut files);
    assert!(files.len() > 100, "found only {} files under {}", files.len(), repo.display());
    let mut missing = Vec::new();
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else { continue };
        for path in cited(&text) {
            let exists = repo.join(path).exists() || package_of(file).is_some_and(|p| p.join(path).exists());
            if !exists {
                missing.push(format!("{}: {path}", file.strip_prefix(&repo).unwrap().display()));
            }
        }
    }
    assert!(missing.is_empty(), "cited paths that do not exist:\n  {}", missing.join("\n  "));
}

#[test]
fn citations_are_found_and_patterns_skipped() {
    let text = "see docs/daemon.md, `crates/core/src/` and (tests/openstack/up.sh). \
                Not /etc/heatscaler/config/x, ~/.config/y, $HOME/docs/z, tests/*.rs, docs/<name>.md or src/… .";
    assert_eq!(cited(text), ["docs/daemon.md", "crates/core/src/", "tests/openstack/up.sh"]);
}
