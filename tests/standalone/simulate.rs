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
    assert_eq!(cells(stdout, "scale-ups (minions added)")[0], "1 (+1)", "{stdout}");
    assert_eq!(cells(stdout, "scale-downs (minions removed)")[0], "1 (-1)", "{stdout}");
}

/// The cells of a row of the summary table, one per policy.
fn cells(stdout: &str, row: &str) -> Vec<String> {
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with(row))
        .unwrap_or_else(|| panic!("no row `{row}` in:\n{stdout}"));
    let rest = line.trim_start()[row.len()..].trim();
    // Cells are right-aligned and separated by at least two spaces.
    rest.split("  ").map(str::trim).filter(|c| !c.is_empty()).map(str::to_string).collect()
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
    let summary = &run["node_level"];
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

#[test]
fn the_baseline_runs_beside_heatscaler_and_is_labelled_as_a_reimplementation() {
    let out = heatscaler(&["simulate"]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let header = stdout.lines().find(|l| l.contains("heatscaler") && l.contains("ca-defaults")).unwrap();
    assert!(header.trim_start().starts_with("heatscaler"), "{header}");
    assert!(stdout.contains("ca-defaults: cluster-autoscaler documented defaults, re-implemented"), "{stdout}");
    assert!(stdout.contains("cluster-autoscaler documented defaults, re-implemented timeline"), "{stdout}");
    // Both grow once and shrink once on the walk-through; every peer is shown.
    assert_eq!(cells(&stdout, "scale-ups (minions added)")[..2], ["1 (+1)", "1 (+1)"], "{stdout}");
    assert_eq!(cells(&stdout, "scale-ups (minions added)").len(), 6, "{stdout}");
    assert!(stdout.contains("reference (the cheapest peer here): "), "{stdout}");
    let json = heatscaler(&["simulate", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["runs"][1]["policy"], "ca-defaults");
    assert_eq!(report["runs"][1]["label"], "cluster-autoscaler documented defaults, re-implemented");
    let only = heatscaler(&["simulate", "--policy", "heatscaler", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&only.stdout).unwrap();
    assert_eq!(report["runs"].as_array().unwrap().len(), 1);
    let bad = heatscaler(&["simulate", "--policy", "karpenter"]);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains(
            "unknown policy `karpenter` (known: heatscaler, heatscaler-node-level, heatscaler-no-webhook, \
             ca-defaults, ca-least-waste, ca-price, ca-priority-least-waste, karpenter-like)"
        ),
        "{stderr}"
    );
}

#[test]
fn a_plot_is_an_svg_with_one_line_per_policy_and_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.svg");
    let out = heatscaler(&["simulate", "--plot", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
    // The text drawn, in order: long legend labels wrap over several lines.
    let text: Vec<&str> = svg
        .split("<text")
        .skip(1)
        .map(|t| t.split('>').nth(1).unwrap_or("").split('<').next().unwrap_or("").trim())
        .collect();
    let text = text.join(" ");
    for label in [
        "fluid lower bound",
        "heatscaler",
        "cluster-autoscaler documented defaults, re-implemented",
        "minions",
        "pending pods",
        "php-apache",
    ] {
        assert!(text.contains(label), "no `{label}` in the plot: {text}");
    }
}

#[test]
fn a_trace_replays_on_the_default_cluster_and_errors_point_at_the_cell() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.csv");
    std::fs::write(
        &good,
        "time,pod,event,cpu,memory\n0,a,start,6,8Gi\n0,b,start,6,8Gi\n600,c,start,1,1Gi\n3600,a,end,,\n7200,b,end,,\n7200,c,end,,\n",
    )
    .unwrap();
    let out = heatscaler(&["simulate", "--trace", good.to_str().unwrap(), "--policy", "heatscaler", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["duration_secs"], 7200.0, "the trace's length");
    let run = &report["runs"][0];
    assert_eq!(run["input"]["trace_rows"], 6);
    // Two 6-core pods need two 8-core minions; the third pod fits beside one.
    assert_eq!(run["node_level"]["nodes_added"], 2, "{run}");
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "time,pod,event,cpu\n0,a,start,1\n10,a,start,lots\n").unwrap();
    let out = heatscaler(&["simulate", "--trace", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains(&format!("{}:3:12: cpu: `lots` is not a Kubernetes quantity", bad.display())), "{stderr}");
}

/// Issue 20: a long run draws its progress on a terminal, and nothing of it
/// reaches a file or a pipe — stderr here is a pipe: one line, no carriage
/// return, no escape sequence.
#[test]
fn no_progress_bytes_when_stderr_is_not_a_terminal() {
    let out = heatscaler(&["simulate"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stderr.contains('\r') && !stderr.contains('\x1b'), "{stderr:?}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr:?}");
    // heatscaler and the five peers run by default.
    assert!(lines[0].starts_with("simulated 6 policies in "), "{stderr:?}");
}

/// The same run on a terminal (`script` gives it one): the bars are drawn,
/// one per policy, in simulated time.
#[test]
fn progress_is_drawn_on_a_terminal() {
    let command = format!("{} simulate", env!("CARGO_BIN_EXE_heatscaler"));
    let out = Command::new("script")
        .args(["--quiet", "--return", "--command", &command, "/dev/null"])
        .env("TERM", "xterm")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run script (util-linux), which gives heatscaler a terminal");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let screen = String::from_utf8_lossy(&out.stdout);
    for bar in [" heatscaler [", " ca-defaults ["] {
        assert!(screen.contains(bar), "no progress bar `{bar}` in {screen:?}");
    }
    assert!(screen.contains(" simulated ("), "{screen:?}");
}

#[test]
fn set_overrides_heatscalers_policy_only_and_refuses_an_unknown_key() {
    let summary = |args: &[&str]| -> Vec<(String, serde_json::Value)> {
        let out = heatscaler(args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        report["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["policy"].as_str().unwrap().to_string(), r["node_level"].clone()))
            .collect()
    };
    let default = summary(&["simulate", "--policy", "heatscaler,ca-defaults", "--json"]);
    let off =
        summary(&["simulate", "--policy", "heatscaler,ca-defaults", "--set", "scale-down.enabled=false", "--json"]);
    assert!(default[0].1["nodes_removed"].as_u64().unwrap() > 0, "the walk-through shrinks by default");
    assert_eq!(off[0].1["nodes_removed"].as_u64(), Some(0), "heatscaler's scale-down is off");
    assert_eq!(default[1], off[1], "the peer keeps its own policy");

    let out = heatscaler(&["simulate", "--set", "scale-down.unneeded=1m"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("--set scale-down.unneeded: no such key") && stderr.contains("unneeded-time"), "{stderr}");
}

#[test]
fn explain_at_prints_the_planners_verdicts_for_the_passes_asked_for() {
    // php-apache: two minions at the start, a third from about 2m until
    // the load has gone; at 20m the third is unneeded, its timer running.
    let out = heatscaler(&["simulate", "--policy", "ca-defaults,heatscaler", "--explain-at", "20m,99h"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("heatscaler on php-apache"), "the heatscaler run, not the peer's:\n{stdout}");
    assert!(stdout.contains("pass at 20m0s (the first at or after 20m0s)"), "{stdout}");
    assert!(stdout.contains("from their templates cpu"), "{stdout}");
    assert!(stdout.contains("unneeded since"), "a node's scale-down verdict:\n{stdout}");
    assert!(stdout.contains("no pass at or after 4days 3h (the run ended first)"), "{stdout}");

    let peer = heatscaler(&["simulate", "--policy", "ca-defaults", "--explain-at", "20m"]);
    assert!(!peer.status.success());
    assert!(String::from_utf8_lossy(&peer.stderr).contains("--explain-at explains heatscaler's passes"));
}
