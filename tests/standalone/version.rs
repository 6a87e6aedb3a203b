//! `heatscaler --version` names the commit: from git in this checkout, and
//! from what a source tarball carries (build/commit.rs, shared with build.rs).

#[path = "../../build/commit.rs"]
mod commit;

use std::process::Command;

#[test]
fn version_names_the_commit_of_this_checkout() {
    let out = Command::new(env!("CARGO_BIN_EXE_heatscaler")).arg("--version").output().unwrap();
    let line = String::from_utf8(out.stdout).unwrap();
    let Ok(git) = Command::new("git").args(["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "HEAD"]).output() else {
        println!("skipped: no git; printed {line}");
        return;
    };
    let head = String::from_utf8(git.stdout).unwrap();
    let head = head.trim();
    if std::env::var_os("HEATSCALER_GIT_COMMIT").is_some() || head.is_empty() {
        println!("skipped: the commit comes from HEATSCALER_GIT_COMMIT or there is no checkout; printed {line}");
        return;
    }
    assert_eq!(line.trim(), format!("heatscaler {} (commit {})", env!("CARGO_PKG_VERSION"), &head[..12]));
}

#[test]
fn a_tarball_takes_the_commit_from_cargo_vcs_info_and_a_bare_tree_says_unknown() {
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let vcs_info = format!("{{\n  \"git\": {{\n    \"sha1\": \"{sha}\"\n  }},\n  \"path_in_vcs\": \"\"\n}}");
    assert_eq!(commit::resolve(None, None, Some(&vcs_info)).as_deref(), Some(sha));
    assert_eq!(commit::resolve(None, None, None), None);
    assert_eq!(commit::version("0.1.0", None), "0.1.0 (commit unknown)");
    assert_eq!(commit::version("0.1.0", Some(sha)), "0.1.0 (commit 0123456789ab)");
    // The packager's variable wins, then git; nonsense is ignored.
    assert_eq!(commit::resolve(Some("ABCDEF1"), Some(sha), None).as_deref(), Some("abcdef1"));
    assert_eq!(commit::resolve(Some("not a commit"), Some(sha), None).as_deref(), Some(sha));
}
