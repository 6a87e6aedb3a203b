//! `config/systemd/heatscaler.service` is a valid unit: `systemd-analyze verify`
//! accepts it without a single diagnostic (unknown keys and unparsable values
//! are only warnings there, so any output fails the test) — its
//! `Documentation=man:heatscaler(8)` included, found in the pages that
//! `heatscaler man --dir` writes.

use std::path::Path;
use std::process::Command;

const UNIT: &str = include_str!("../../config/systemd/heatscaler.service");

fn tool(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(name)).find(|p| p.is_file())
}

#[test]
fn the_unit_has_the_settings_the_daemon_relies_on() {
    for line in [
        "Type=notify",
        "NotifyAccess=main",
        "WatchdogSec=",
        "Restart=on-failure",
        "ExecReload=/bin/kill -HUP $MAINPID",
        // check-config refuses to start on a bad file; groups check reports, never blocks.
        "ExecStartPre=/usr/local/bin/heatscaler --config /etc/heatscaler/heatscaler.yaml check-config\n",
        "ExecStartPre=-/usr/bin/timeout 60 /usr/local/bin/heatscaler --config /etc/heatscaler/heatscaler.yaml groups check\n",
        "TimeoutStopSec=",
        "LoadCredential=openstack-secret:",
        "LoadCredential=kubeconfig:",
        "DynamicUser=yes",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "CapabilityBoundingSet=\n",
        "SystemCallFilter=@system-service",
    ] {
        assert!(UNIT.contains(line), "unit lacks `{}`", line.trim_end());
    }
}

#[test]
fn systemd_analyze_verify_accepts_the_unit() {
    let Some(analyze) = tool("systemd-analyze") else {
        println!("skipped: systemd-analyze not found");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // verify checks that every Exec*= command exists: point it at the binary just built.
    let unit = UNIT.replace("/usr/local/bin/heatscaler", env!("CARGO_BIN_EXE_heatscaler"));
    let path = dir.path().join("heatscaler.service");
    std::fs::write(&path, unit).unwrap();
    // The man page the unit names, where `man` looks (MANPATH), as a package installs it.
    let man = dir.path().join("man");
    let made =
        Command::new(env!("CARGO_BIN_EXE_heatscaler")).args(["man", "--dir"]).arg(man.join("man8")).status().unwrap();
    assert!(made.success(), "heatscaler man --dir failed");
    let out = Command::new(analyze).arg("verify").arg(&path).env("MANPATH", &man).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "systemd-analyze verify failed ({}):\n{stderr}{stdout}", out.status);
    assert!(
        stderr.trim().is_empty() && stdout.trim().is_empty(),
        "systemd-analyze verify complained:\n{stderr}{stdout}"
    );
    println!("systemd-analyze verify: clean");
}

/// Without the page, verify fails on `Documentation=man:heatscaler(8)`: the
/// test above is not passing by accident.
#[test]
fn systemd_analyze_verify_needs_the_man_page() {
    let Some(analyze) = tool("systemd-analyze") else {
        println!("skipped: systemd-analyze not found");
        return;
    };
    if tool("man").is_none() {
        println!("skipped: man not found (verify cannot check Documentation=)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = UNIT.replace("/usr/local/bin/heatscaler", env!("CARGO_BIN_EXE_heatscaler"));
    let path = dir.path().join("heatscaler.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new(analyze).arg("verify").arg(&path).env("MANPATH", dir.path()).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
    assert!(text.contains("heatscaler(8)"), "verify did not look for the man page:\n{text}");
}

#[test]
fn completions_and_the_man_page_cover_every_subcommand() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_heatscaler")).args(args).output().unwrap();
        assert!(out.status.success(), "heatscaler {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let subcommands = ["run", "check-config", "explain", "groups", "simulate", "bench", "completions", "man"];
    for shell in ["bash", "zsh", "fish"] {
        let script = run(&["completions", shell]);
        for sub in subcommands {
            assert!(script.contains(sub), "{shell} completion lacks {sub}");
        }
    }
    let page = run(&["man"]);
    assert!(page.starts_with(".ie") && page.contains(".TH heatscaler 8"), "{}", &page[..200.min(page.len())]);
    for sub in subcommands {
        // roff escapes the hyphen.
        assert!(page.contains(&sub.replace('-', "\\-")), "heatscaler(8) lacks {sub}");
    }
}
