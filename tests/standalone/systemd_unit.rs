//! `config/systemd/heatscaler.service` is a valid unit: `systemd-analyze verify`
//! accepts it without a single diagnostic (unknown keys and unparsable values
//! are only warnings there, so any output fails the test).

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
    let out = Command::new(analyze).args(["verify", "--man=no"]).arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "systemd-analyze verify failed ({}):\n{stderr}{stdout}", out.status);
    assert!(
        stderr.trim().is_empty() && stdout.trim().is_empty(),
        "systemd-analyze verify complained:\n{stderr}{stdout}"
    );
    println!("systemd-analyze verify: clean");
}
