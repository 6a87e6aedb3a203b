//! The node-level peers on small scenarios: each expander picks the group
//! its documentation says, the documented chain narrows in order, the
//! Karpenter-like policy replaces a node by a cheaper one, and the report
//! names the cheapest peer as the reference.

use crate::report::{Report, TimelineEvent};
use crate::{PolicyKind, Scenario, compare};

fn scenario(text: &str) -> Scenario {
    Scenario::parse(text, "test.yaml").unwrap_or_else(|e| panic!("{e}"))
}

/// The group each run grew first.
fn first_growth(report: &Report) -> Vec<(String, String)> {
    report
        .runs
        .iter()
        .map(|r| {
            let up = r.timeline.iter().find(|e| matches!(e.event, TimelineEvent::ScaleUp { .. }));
            (r.policy.clone(), up.map_or("-".into(), |e| e.subject.clone()))
        })
        .collect()
}

/// One pending pod (3 CPU, 4 GiB) and four groups that could take it:
/// `a` wastes least (CPU 1/4 + memory 8/12), `b` is cheapest, `c` and `d`
/// have the higher priority and of those `d` wastes less.
const FOUR_GROUPS: &str = r#"
name: expanders
seed: 5
duration: 20m
provisioning: {heat-update: 20s, boot: 60s, pod-termination: 2s}
node-groups:
  - {name: a, min-size: 0, max-size: 3, initial-size: 0, price-per-hour: 1.0, priority: 0,
     shape: {allocatable: {cpu: "4", memory: 12Gi}}}
  - {name: b, min-size: 0, max-size: 3, initial-size: 0, price-per-hour: 0.5, priority: 0,
     shape: {allocatable: {cpu: "4", memory: 32Gi}}}
  - {name: c, min-size: 0, max-size: 3, initial-size: 0, price-per-hour: 3.0, priority: 10,
     shape: {allocatable: {cpu: "8", memory: 16Gi}}}
  - {name: d, min-size: 0, max-size: 3, initial-size: 0, price-per-hour: 1.0, priority: 10,
     shape: {allocatable: {cpu: "4", memory: 16Gi}}}
pods:
  - {name: job, pod: {containers: [{name: c, requests: {cpu: "3", memory: 4Gi}}]}, arrival: 1m, controller: Job}
"#;

#[test]
fn each_expander_and_the_documented_chain_pick_their_group() {
    let kinds =
        [PolicyKind::CaLeastWaste, PolicyKind::CaPrice, PolicyKind::CaPriorityLeastWaste, PolicyKind::KarpenterLike];
    let report = compare(&scenario(FOUR_GROUPS), &kinds).unwrap();
    let want = [("ca-least-waste", "a"), ("ca-price", "b"), ("ca-priority-least-waste", "d"), ("karpenter-like", "b")];
    let want: Vec<(String, String)> = want.iter().map(|(p, g)| (p.to_string(), g.to_string())).collect();
    assert_eq!(first_growth(&report), want);
    for r in &report.runs {
        assert_eq!(r.node_level.never_scheduled, 0, "{}", r.policy);
        assert!(r.label.ends_with("re-implemented"), "{}", r.label);
    }
}

/// One 8-CPU minion holding a 1-CPU pod; a 2-CPU group is four times cheaper.
const OVERSIZED: &str = r#"
name: replacement
seed: 1
duration: 2h
provisioning: {heat-update: 20s, boot: 60s, pod-termination: 2s}
node-groups:
  - {name: big, min-size: 0, max-size: 2, initial-size: 1, price-per-hour: 8.0,
     shape: {allocatable: {cpu: "8", memory: 32Gi}}}
  - {name: small, min-size: 0, max-size: 2, initial-size: 0, price-per-hour: 2.0,
     shape: {allocatable: {cpu: "2", memory: 8Gi}}}
workloads:
  - name: web
    pod: {containers: [{name: web, requests: {cpu: "1", memory: 2Gi}}]}
    replicas: 1
"#;

#[test]
fn the_karpenter_like_peer_replaces_a_node_by_a_cheaper_one() {
    let report = compare(&scenario(OVERSIZED), &[PolicyKind::CaDefaults, PolicyKind::KarpenterLike]).unwrap();
    let (ca, karpenter) = (&report.runs[0], &report.runs[1]);
    // cluster-autoscaler keeps the node: its pod has nowhere else to go.
    let last = |r: &crate::report::Run| r.series.last().unwrap().ready.clone();
    assert_eq!((last(ca)["big"], last(ca)["small"]), (1, 0));
    assert_eq!(ca.node_level.scale_ups, 0);
    // The Karpenter-like peer launches a small minion, then drains the big one onto it.
    assert_eq!((last(karpenter)["big"], last(karpenter)["small"]), (0, 1), "{:#?}", karpenter.timeline);
    assert_eq!((karpenter.node_level.scale_ups, karpenter.node_level.nodes_removed), (1, 1));
    assert_eq!(karpenter.node_level.evictions, 1);
    let ups: Vec<&str> = karpenter
        .timeline
        .iter()
        .filter(|e| matches!(e.event, TimelineEvent::ScaleUp { .. }))
        .map(|e| e.subject.as_str())
        .collect();
    assert_eq!(ups, vec!["small"]);
    assert!(
        karpenter.node_level.cost < ca.node_level.cost * 0.5,
        "{} vs {}",
        karpenter.node_level.cost,
        ca.node_level.cost
    );
    // The new minion was not consolidated away while the old one was there.
    assert_eq!(karpenter.node_level.scale_downs, 1);
    // The cheapest peer is the reference.
    assert_eq!(report.reference.as_deref(), Some("karpenter-like"));
    assert!(report.to_string().contains("reference (the cheapest peer here): karpenter-like"), "{report}");
}

#[test]
fn every_peer_is_a_policy_by_name() {
    for kind in PolicyKind::ALL {
        assert_eq!(PolicyKind::parse(kind.name()), Some(kind));
        assert_eq!(kind.peer().is_none(), kind == PolicyKind::Heatscaler);
    }
}
