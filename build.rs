//! Puts the commit into `heatscaler --version` (`HEATSCALER_VERSION`), from
//! git in a checkout and from `.cargo_vcs_info.json` in a `cargo package`
//! tarball; see build/commit.rs.

#[path = "build/commit.rs"]
mod commit;

use std::path::Path;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let dir = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    println!("cargo:rerun-if-env-changed=HEATSCALER_GIT_COMMIT");
    println!("cargo:rerun-if-changed=build/commit.rs");
    // Only this tree's own checkout: a tarball unpacked inside another repository is not that repository's HEAD.
    let own = git(&dir, &["rev-parse", "--show-toplevel"])
        .is_some_and(|top| Path::new(&top).canonicalize().ok() == dir.canonicalize().ok());
    let head = if own { git(&dir, &["rev-parse", "HEAD"]) } else { None };
    if own {
        // A new commit (or checkout) moves HEAD's reflog: build again.
        for path in ["HEAD", "logs/HEAD"] {
            if let Some(p) = git(&dir, &["rev-parse", "--path-format=absolute", "--git-path", path]) {
                println!("cargo:rerun-if-changed={p}");
            }
        }
    } else {
        println!("cargo:rerun-if-changed=.cargo_vcs_info.json");
    }
    let vcs_info = std::fs::read_to_string(dir.join(".cargo_vcs_info.json")).ok();
    let env = std::env::var("HEATSCALER_GIT_COMMIT").ok();
    let found = commit::resolve(env.as_deref(), head.as_deref(), vcs_info.as_deref());
    let package = std::env::var("CARGO_PKG_VERSION").expect("set by cargo");
    println!("cargo:rustc-env=HEATSCALER_VERSION={}", commit::version(&package, found.as_deref()));
}
