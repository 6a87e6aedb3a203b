//! `heatscaler simulate` end to end: the binary, the embedded and on-disk
//! php-apache walk-through, JSON output, and scenario errors.

use std::path::Path;
use std::process::Command;

fn heatscaler(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_heatscaler"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run heatscaler")
}

/// Seconds of a compact duration such as `2m15s`, `29m`, `1h2m`, `45s`.
fn seconds(text: &str) -> f64 {
    let mut total = 0.0;
    let mut number = String::new();
    for c in text.chars() {
        match c {
            '0'..='9' | '.' => number.push(c),
            'h' | 'm' | 's' => {
                let n: f64 = number.parse().unwrap_or_else(|_| panic!("bad duration {text}"));
                total += n * match c {
                    'h' => 3600.0,
                    'm' => 60.0,
                    _ => 1.0,
                };
                number.clear();
            }
            _ => panic!("bad duration {text}"),
        }
    }
    total
}

/// The time of the first timeline line about group `minions` containing `needle`.
fn when(stdout: &str, needle: &str) -> f64 {
    let line = stdout
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("minions") && l.contains(needle))
        .unwrap_or_else(|| panic!("no timeline line with `{needle}` in:\n{stdout}"));
    seconds(line.split_whitespace().next().unwrap())
}

fn assert_walkthrough(stdout: &str) {
    let grow = when(stdout, "2 → 3 minions");
    let ready = when(stdout, "is a Ready node (3 Ready)");
    let shrink = when(stdout, "3 → 2 minions");
    let deleted = when(stdout, "Node minions-");
    assert!(grow < ready && ready < shrink && shrink < deleted, "out of order:\n{stdout}");
    // The load starts at 2m and stops at 12m; scale-down needs the HPA's 5m
    // stabilisation plus 10m unneeded-time.
    assert!((120.0..300.0).contains(&grow), "grew at {grow}s");
    assert!(shrink > 12.0 * 60.0 + 15.0 * 60.0, "shrank at {shrink}s");
    assert!(!stdout.contains("master"), "the control plane must not appear in scaling:\n{stdout}");
    assert!(stdout.contains("scale-ups              1 (+1 minion(s))"), "{stdout}");
    assert!(stdout.contains("scale-downs            1 (-1 minion(s))"), "{stdout}");
}

#[test]
fn the_embedded_walkthrough_grows_and_shrinks() {
    let out = heatscaler(&["simulate"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_walkthrough(&String::from_utf8(out.stdout).unwrap());
}

#[test]
fn the_scenario_file_tells_the_same_story() {
    assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/php-apache.yaml").exists());
    let file = heatscaler(&["simulate", "scenarios/php-apache.yaml"]);
    let embedded = heatscaler(&["simulate"]);
    assert!(file.status.success());
    assert_walkthrough(&String::from_utf8(file.stdout.clone()).unwrap());
    assert_eq!(file.stdout, embedded.stdout, "the embedded scenario is the file");
}

#[test]
fn json_output_carries_timeline_series_and_summary() {
    let out = heatscaler(&["simulate", "--json"]);
    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let run = &report["runs"][0];
    assert_eq!(run["label"], "heatscaler");
    let summary = &run["summary"];
    assert_eq!(summary["scale_ups"], 1);
    assert_eq!(summary["nodes_removed"], 1);
    assert!(summary["node_hours"].as_f64().unwrap() > 1.0);
    let events: Vec<&str> = run["timeline"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert!(events.contains(&"scale-up") && events.contains(&"scale-down"), "{events:?}");
    let peak = run["series"].as_array().unwrap().iter().map(|s| s["desired"]["minions"].as_u64().unwrap()).max();
    assert_eq!(peak, Some(3));
}

#[test]
fn scenario_errors_name_the_file_and_key_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.yaml");
    std::fs::write(
        &path,
        "name: broken\nduration: 10m\nnode-groups:\n  - {name: g, min-size: 1, max-size: 3, initial-size: 1, shape: {allocatable: {cpu: 2, memory: lots}}}\n",
    )
    .unwrap();
    let out = heatscaler(&["simulate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("broken.yaml"), "{stderr}");
    assert!(stderr.contains("node-groups[0].shape.allocatable.memory"), "{stderr}");
    assert!(stderr.contains("`lots` is not a Kubernetes quantity"), "{stderr}");
}
