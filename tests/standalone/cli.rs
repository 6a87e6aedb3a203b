//! Command-line behaviours that need no server: `check-config --print`
//! prints the configuration alone on standard output, and `groups` runs
//! despite an alert sink whose secret is missing (it sends no alerts).

use std::process::Command;

fn heatscaler(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_heatscaler"))
        .arg("--config")
        .arg(dir.join("heatscaler.yaml"))
        .args(args)
        .env("KUBECONFIG", dir.join("no-such-kubeconfig"))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

/// Keystone on a port nothing listens on; the alert sink's URL in a file that does not exist.
fn config(dir: &std::path::Path, alerts: bool) {
    std::fs::write(dir.join("password"), "not-a-secret\n").unwrap();
    let alerts =
        if alerts { "alerts:\n  sinks:\n    - {kind: webhook, url-secret: {file: ./no-such-url}}\n" } else { "" };
    let text = format!(
        "openstack:\n  auth-url: http://127.0.0.1:9/v3\n  request-timeout: 2s\n  password:\n    username: u\n    \
         password: {{file: ./password}}\n    project-name: p\n{alerts}"
    );
    std::fs::write(dir.join("heatscaler.yaml"), text).unwrap();
}

#[test]
fn check_config_print_writes_only_the_configuration_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), false);
    let (ok, stdout, stderr) = heatscaler(dir.path(), &["check-config", "--print"]);
    assert!(ok, "{stderr}");
    assert!(!stdout.contains("valid"), "the verdict is mixed into the YAML: {stdout}");
    assert!(stderr.contains("heatscaler.yaml: valid"), "{stderr}");
    let printed = heatscaler_core::yaml::parse_value(&stdout).unwrap_or_else(|e| panic!("not YAML ({e}): {stdout}"));
    assert_eq!(printed["openstack"]["auth-url"], "http://127.0.0.1:9/v3");
    // Without --print the verdict is the output.
    let (ok, stdout, _) = heatscaler(dir.path(), &["check-config"]);
    assert!(ok && stdout.contains("heatscaler.yaml: valid"), "{stdout}");
}

#[test]
fn groups_runs_with_an_alert_sink_whose_secret_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), true);
    // `run` and `check-config` refuse the configuration ...
    let (ok, stdout, stderr) = heatscaler(dir.path(), &["check-config"]);
    assert!(!ok && stderr.contains("alerts.sinks[0].url-secret"), "{stdout}{stderr}");
    // ... `groups` gets as far as Keystone, and says what it ignored.
    let (ok, stdout, stderr) = heatscaler(dir.path(), &["groups"]);
    assert!(!ok, "{stdout}{stderr}");
    assert!(stderr.contains("127.0.0.1:9"), "it did not try Keystone: {stdout}{stderr}");
    assert!(stderr.contains("alerts.sinks[0].url-secret"), "the ignored problem is not shown: {stderr}");
}
