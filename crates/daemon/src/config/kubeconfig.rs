//! The kubeconfig file the configuration names, read the same way by
//! `check-config` (so a broken one is found before the daemon starts) and by
//! the daemon.
//!
//! A kubeconfig holds credentials (tokens, client keys) inline. kube-rs'
//! parser renders its errors with a snippet of the source around the fault —
//! the token's line included — so the error is rebuilt here from its
//! location, with any quoted value removed.

use std::path::Path;

use kube::config::{Kubeconfig, KubeconfigError};

use crate::files::{MAX_DOCUMENT_BYTES, read_text_bounded};

/// Reads and parses a kubeconfig; the error names the file and line, never its content.
pub fn read(path: &Path) -> Result<Kubeconfig, String> {
    let what = || format!("kubeconfig {}", path.display());
    let text = read_text_bounded(path, MAX_DOCUMENT_BYTES).map_err(|e| format!("{}: cannot read: {e}", what()))?;
    Kubeconfig::from_yaml(&text).map_err(|e| format!("{}: {}", what(), describe(&e)))
}

fn describe(e: &KubeconfigError) -> String {
    match e {
        KubeconfigError::Parse(parse) => {
            let line = parse.location().map(|l| format!(" (line {})", l.line())).unwrap_or_default();
            let message = parse.without_snippet().to_string();
            // The first line is the message; what follows would be the source.
            let first = message.lines().next().unwrap_or_default();
            format!("is not a valid kubeconfig{line}: {}", heatscaler_core::yaml::hide_values(first))
        }
        other => heatscaler_core::yaml::hide_values(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANARY: &str = "CanaryKubeToken0123456789";

    #[test]
    fn a_broken_kubeconfig_is_reported_without_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubeconfig");
        // `users` is a list; a map in its place fails right after the token line.
        for text in [
            format!(
                "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers:\n  name: x\n  user:\n    token: {CANARY}\n    client-certificate-data: [1, 2]\n"
            ),
            format!("apiVersion: v1\nkind: Config\nusers:\n- name: x\n  user:\n    token: [{CANARY}]\n"),
            format!("apiVersion: v1\nkind: Config\nusers: {CANARY}\n"),
        ] {
            std::fs::write(&path, &text).unwrap();
            let e = read(&path).unwrap_err();
            assert!(!e.contains(CANARY), "{e}");
            assert!(e.contains("is not a valid kubeconfig (line"), "{e}");
        }
        assert!(read(Path::new("/dev/zero")).unwrap_err().contains("larger than"));
    }
}
