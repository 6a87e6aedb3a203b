//! Which commit a source tree is, for `heatscaler --version`. Shared by
//! build.rs and its test (tests/standalone/version.rs).

/// The first of: `HEATSCALER_GIT_COMMIT` (a packager's override), the git
/// checkout's `HEAD`, the `.cargo_vcs_info.json` that `cargo package` puts
/// in a source tarball. `None` when the tree says nothing (a plain tarball).
pub fn resolve(env: Option<&str>, git_head: Option<&str>, vcs_info: Option<&str>) -> Option<String> {
    let clean = |s: &str| {
        let s = s.trim();
        (s.len() >= 7 && s.chars().all(|c| c.is_ascii_hexdigit())).then(|| s.to_ascii_lowercase())
    };
    env.and_then(clean)
        .or_else(|| git_head.and_then(clean))
        .or_else(|| vcs_info.and_then(from_vcs_info).as_deref().and_then(clean))
}

/// `{"git": {"sha1": "…"}, …}` without a JSON parser in the build script.
fn from_vcs_info(text: &str) -> Option<String> {
    let rest = &text[text.find("\"sha1\"")? + "\"sha1\"".len()..];
    let rest = &rest[rest.find('"')? + 1..];
    Some(rest[..rest.find('"')?].to_string())
}

/// The version line: `0.1.0 (commit 0123456789ab)`, or `0.1.0 (commit unknown)`.
pub fn version(package: &str, commit: Option<&str>) -> String {
    match commit {
        Some(c) => format!("{package} (commit {})", &c[..c.len().min(12)]),
        None => format!("{package} (commit unknown)"),
    }
}
