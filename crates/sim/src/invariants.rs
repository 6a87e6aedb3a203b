//! Report invariants over whole runs of both policies: the fluid lower bound
//! never exceeds what is paid when nothing waits, both policies see the same
//! demand, a seed reproduces a report, and the baseline keeps the documented
//! cluster-autoscaler behaviour that heatscaler departs from.

use std::collections::BTreeSet;

use super::report::{Report, TimelineEvent};
use super::{PHP_APACHE, PolicyKind, Scenario, compare};

const MIXED: &str = r#"
name: invariants
seed: 5
duration: 10h
sample-interval: 20s
provisioning:
  heat-update: 30s
  boot: {lognormal: {median: 90s, p99: 4m}}
  pod-termination: {uniform: {min: 1s, max: 10s}}
node-groups:
  - {name: workers, min-size: 1, max-size: 30, initial-size: 3, price-per-hour: 0.2, shape: {allocatable: {cpu: "4", memory: 16Gi}}}
daemonsets: [{name: proxy, requests: {cpu: 100m, memory: 128Mi}}]
workloads:
  - name: web
    pod: {containers: [{name: web, requests: {cpu: 500m, memory: 1Gi}}]}
    replicas: {sine: {mean: 20, amplitude: 16, period: 4h}}
    pdb: {max-unavailable: 2}
  - name: api
    pod: {containers: [{name: api, requests: {cpu: "1", memory: 3Gi}}]}
    replicas: {square: {low: 2, high: 10, period: 3h, high-for: 1h}}
bursts:
  - name: batch
    pod: {containers: [{name: job, requests: {cpu: 750m, memory: 1Gi}}]}
    rate-per-hour: 2
    size: {min: 2, max: 8}
    runtime: {uniform: {min: 5m, max: 40m}}
"#;

fn scenario(text: &str) -> Scenario {
    Scenario::parse(text, "test.yaml").unwrap_or_else(|e| panic!("{e}"))
}

fn both(sc: &Scenario) -> Report {
    compare(sc, &PolicyKind::ALL).unwrap()
}

#[test]
fn the_lower_bound_never_exceeds_what_is_paid_when_no_pod_waits() {
    let report = both(&scenario(MIXED));
    for run in &report.runs {
        let mut checked = 0;
        for s in &run.series {
            let bound = s.bound.nodes.expect("one shape");
            assert!(bound >= 1, "min-size is part of the bound: {s:?}");
            if s.pending_pods == 0 {
                assert!(
                    bound <= s.billed,
                    "{}: bound above the minions paid for with nothing pending: {s:?}",
                    run.policy
                );
                checked += 1;
            }
        }
        assert!(checked > run.series.len() / 2, "{}: most instants have nothing pending", run.policy);
        let n = &run.node_level;
        let bound = n.lower_bound.node_hours.unwrap();
        assert!(bound > 0.0 && bound <= n.node_hours, "{}: {bound} vs {}", run.policy, n.node_hours);
        assert!((n.lower_bound.cost - bound * 0.2).abs() < 1e-6, "one shape: cost is node-hours × price");
        assert!(n.node_hours_ratio.unwrap() >= 1.0);
    }
}

#[test]
fn every_policy_sees_the_same_demand() {
    let report = both(&scenario(MIXED));
    let (a, b) = (&report.runs[0], &report.runs[1]);
    assert_eq!((a.policy.as_str(), b.policy.as_str()), ("heatscaler", "ca-defaults"));
    assert_eq!(a.input, b.input);
    assert!(a.input.replica_changes > 0 && a.input.bursts > 0 && a.input.jobs >= a.input.bursts, "{:?}", a.input);
    let replicas = |r: &super::report::Run| -> Vec<(u64, String, String)> {
        r.timeline
            .iter()
            .filter(|e| matches!(e.event, TimelineEvent::Replicas { .. }))
            .map(|e| ((e.at_secs * 1000.0) as u64, e.subject.clone(), e.event.to_string()))
            .collect()
    };
    assert_eq!(replicas(a), replicas(b), "the same replica schedule, at the same instants");
}

#[test]
fn a_seed_reproduces_the_report() {
    let sc = scenario(MIXED);
    let first = serde_json::to_string(&both(&sc)).unwrap();
    assert_eq!(first, serde_json::to_string(&both(&sc)).unwrap());
    let mut other = sc.clone();
    other.seed += 1;
    let second = both(&other);
    assert_ne!(first, serde_json::to_string(&second).unwrap());
    assert_ne!(second.runs[0].input.jobs, 0);
}

/// Four minions at ~59% each: above cluster-autoscaler's 0.5 threshold, yet
/// one minion's pods fit on the three others.
const SPREAD: &str = r#"
name: spread
seed: 1
duration: 40m
sample-interval: 1m
provisioning: {heat-update: 20s, boot: 60s, pod-termination: 2s}
node-groups:
  - {name: g, min-size: 1, max-size: 6, initial-size: 4, shape: {allocatable: {cpu: "4", memory: 16Gi}}}
daemonsets: [{name: proxy, requests: {cpu: 100m}}]
workloads:
  - name: web
    pod: {containers: [{name: web, requests: {cpu: 750m, memory: 1Gi}}]}
    replicas: 12
"#;

#[test]
fn heatscaler_consolidates_above_the_threshold_and_the_baseline_does_not() {
    let report = both(&scenario(SPREAD));
    let (hs, ca) = (&report.runs[0].node_level, &report.runs[1].node_level);
    assert_eq!((hs.nodes_removed, hs.nodes_added), (1, 0), "{report}");
    assert_eq!((ca.nodes_removed, ca.nodes_added), (0, 0), "{report}");
    assert!(hs.evictions >= 3, "the consolidated minion's pods moved: {report}");
    let last = report.runs[0].series.last().unwrap();
    assert_eq!((last.ready["g"], last.pending_pods), (3, 0));
}

#[test]
fn the_baseline_deletes_a_drained_node_at_once_and_heatscaler_holds_it() {
    let report = both(&scenario(PHP_APACHE));
    let at = |run: usize, pick: fn(&TimelineEvent) -> bool| {
        report.runs[run].timeline.iter().find(|e| pick(&e.event)).map(|e| e.at_secs).expect("event")
    };
    let drained = |e: &TimelineEvent| matches!(e, TimelineEvent::Drained { .. });
    let removed = |e: &TimelineEvent| matches!(e, TimelineEvent::ScaleDown { .. });
    assert_eq!(at(1, drained), at(1, removed), "no cooldown-before-removal hold: {report}");
    assert!(at(0, removed) - at(0, drained) >= 60.0, "heatscaler's 1m cooldown: {report}");
}

/// Eight light minions, all unneeded at once, each running pods.
const SHRINK: &str = r#"
name: shrink
seed: 2
duration: 90m
sample-interval: 1m
provisioning: {heat-update: 20s, boot: 60s, pod-termination: 2s}
node-groups:
  - {name: g, min-size: 1, max-size: 10, initial-size: 8, shape: {allocatable: {cpu: "4", memory: 16Gi}}}
workloads:
  - name: web
    pod: {containers: [{name: web, requests: {cpu: "1", memory: 1Gi}}]}
    replicas: {steps: [{at: 0s, value: 24}, {at: 5m, value: 8}]}
"#;

#[test]
fn the_baseline_drains_one_non_empty_node_at_a_time() {
    let report = both(&scenario(SHRINK));
    let ca = &report.runs[1];
    let mut draining = BTreeSet::new();
    let mut most = 0;
    for e in &ca.timeline {
        match &e.event {
            TimelineEvent::RemovalStarted { node, kind, .. } if kind == "drain" => {
                draining.insert(node.clone());
            }
            TimelineEvent::Drained { node } | TimelineEvent::RolledBack { node, .. } => {
                draining.remove(node);
            }
            _ => {}
        }
        most = most.max(draining.len());
    }
    assert_eq!(most, 1, "{report}");
    assert!(ca.node_level.nodes_removed >= 4, "{report}");
}
