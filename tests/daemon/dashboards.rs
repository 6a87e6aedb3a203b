//! deploy/prometheus-rules.yaml and deploy/grafana-dashboard.json name only
//! metrics the daemon exports (checked against its registry's own output),
//! and `promtool check rules` accepts the rules.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use heatscaler_core::model::{Timestamp, WorkloadRef};
use heatscaler_daemon::telemetry::{
    AlertOutcome, DrainOutcome, EvictionPurpose, GroupSizes, HeatOperation, KubeResource, KubeVerb, Metrics,
    RecommendationValues, ResizeOutcome, ResourceName,
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A registry with a series in every family (an empty family is not
/// exposed): what a running daemon exports.
fn populated() -> Metrics {
    let m = Metrics::new();
    m.set_group_size("workers", GroupSizes { desired: 2, ready: 2, provisioning: 0, failed: 0 });
    m.set_group_limits("workers", 1, 10);
    m.set_unschedulable_pods(0);
    m.register_group("workers");
    m.observe_scale_up_duration("workers", Duration::from_secs(100));
    m.observe_scale_down_duration("workers", Duration::from_secs(100));
    m.observe_drain("workers", Duration::from_secs(10), DrainOutcome::Failed);
    m.record_eviction(EvictionPurpose::Drain);
    m.record_pdb_rejection(EvictionPurpose::Drain);
    m.record_resize(ResizeOutcome::Applied);
    let workload = WorkloadRef { kind: "Deployment".into(), namespace: "shop".into(), name: "web".into() };
    let rec = RecommendationValues { target: 0.25, lower_bound: 0.1, upper_bound: 0.5 };
    m.set_recommendation(&workload, "app", ResourceName::Cpu, rec, Some(1.0));
    m.observe_heat_call(HeatOperation::UpdateStack, Duration::from_millis(800), false);
    m.observe_kube_call(KubeVerb::Patch, KubeResource::Node, Duration::from_millis(12), false);
    m.record_successful_loop(Timestamp::now(), Duration::from_millis(40));
    m.set_leader(true);
    m.register_alert_sink("kubernetes-events");
    m.record_alert("kubernetes-events", AlertOutcome::Dropped);
    m
}

/// Every series name the registry produces: each `# TYPE` family with the
/// suffixes its type adds in the exposition.
fn exported() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in populated().encode().lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else { continue };
        let mut parts = rest.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else { continue };
        let suffixes: &[&str] = match kind {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            "info" => &["_info"],
            _ => &[""],
        };
        names.extend(suffixes.iter().map(|s| format!("{name}{s}")));
    }
    names
}

/// The `heatscaler_*` names in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("heatscaler_") {
        let tail = &rest[i..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        out.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

/// Every string under an `expr` key, anywhere in the document.
fn exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

fn check(file: &str, doc: &serde_json::Value, at_least: usize) {
    let known = exported();
    let mut found = Vec::new();
    exprs(doc, &mut found);
    assert!(found.len() >= at_least, "{file}: {} queries", found.len());
    for expr in &found {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{file}: `{expr}` names no heatscaler metric");
        for name in names {
            assert!(known.contains(&name), "{file}: `{expr}` names {name}, which the daemon does not export");
        }
    }
}

#[test]
fn the_dashboard_queries_only_exported_metrics() {
    let path = root().join("deploy/grafana-dashboard.json");
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    check("grafana-dashboard.json", &doc, 10);
    // A name the registry does not have is caught (the check can fail).
    let bad = serde_json::json!({"panels": [{"targets": [{"expr": "rate(heatscaler_no_such_metric_total[5m])"}]}]});
    assert!(std::panic::catch_unwind(|| check("x", &bad, 1)).is_err());
}

#[test]
fn the_alerting_rules_query_only_exported_metrics_and_promtool_accepts_them() {
    let path = root().join("deploy/prometheus-rules.yaml");
    let doc = heatscaler_core::yaml::parse_value(&std::fs::read_to_string(&path).unwrap()).unwrap();
    check("prometheus-rules.yaml", &doc, 5);
    let promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"].into_iter().map(Path::new).find(|p| p.is_file());
    let Some(promtool) = promtool else {
        println!(
            "SKIPPED `promtool check rules`: promtool is not installed (tests/install-deps.sh installs Debian's \
             prometheus package, which ships it); the metric names were checked"
        );
        return;
    };
    let out = std::process::Command::new(promtool).args(["check", "rules"]).arg(&path).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("SUCCESS"), "promtool check rules:\n{text}");
}
