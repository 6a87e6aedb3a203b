//! `cluster-limits.max-total-unready-percentage` and `ok-total-unready-count`
//! (issue 20): with too many nodes unready, nothing new starts at the node
//! level — as cluster-autoscaler's "cluster is not ready for autoscaling".

use super::super::explain::{Alert, NodeStatus, Note, PodOutcome, Unhealthy};
use super::*;

/// Eight workers: w-0..w-3 empty, w-4..w-7 full; a pod waits for a new minion.
fn cluster() -> World {
    let mut w = World::new();
    w.policy.scale_down.unneeded_time = crate::policy::Duration::from_secs(60);
    w.policy.scale_down.unready_time = crate::policy::Duration::from_secs(60);
    w.policy.scale_down.delay_after_add = crate::policy::Duration::from_secs(0);
    w.group("workers", 0, 20, 4000, 16 * GI);
    for i in 0..8 {
        w.minion("workers", &format!("w-{i}"));
    }
    for i in 4..8 {
        w.pod(&format!("filler-{i}"), Some(&format!("w-{i}")), 4000, GI);
    }
    w.pending("web-0", 3500, GI);
    w
}

fn halted(plan: &Plan) -> bool {
    plan.explanation.notes.iter().any(|n| matches!(n, Note::AutoscalingHalted(_)))
}

#[test]
fn too_many_unready_nodes_halt_scale_up_and_new_removals() {
    let mut w = cluster();
    // 4 of 8 unready: more than 3 and more than 45% (3.6).
    for i in 0..4 {
        w.node_mut(&format!("w-{i}")).ready = false;
    }
    for _ in 0..3 {
        let plan = w.step();
        assert!(scale_ups(&plan).is_empty(), "{:?}", plan.actions);
        assert!(starts(&plan).is_empty(), "{:?}", plan.actions);
        assert!(halted(&plan));
        assert_eq!(plan.explanation.pod(&w.pod_mut("web-0").key()), Some(&PodOutcome::AutoscalingHalted));
        assert_eq!(plan.explanation.node("w-0"), Some(&NodeStatus::AutoscalingHalted));
        let Some(Alert::AutoscalingHalted(u)) =
            plan.explanation.alerts.iter().find(|a| matches!(a, Alert::AutoscalingHalted(_)))
        else {
            panic!("no alert: {:?}", plan.explanation.alerts)
        };
        assert_eq!((u.unready, u.nodes), (4, 8));
        assert!(w.memory.unneeded_since.is_empty(), "no timer runs while halted");
        w.advance(120);
    }
    assert_eq!(
        Note::AutoscalingHalted(Unhealthy { unready: 4, nodes: 8, ok_count: 3, max_percentage: 45.0 }).to_string(),
        "autoscaling halted: 4 of 8 nodes are unready, more than ok-total-unready-count 3 and than \
         max-total-unready-percentage 45%; no group grows and no removal starts until nodes recover"
    );

    // One comes back: 3 unready is within ok-total-unready-count. The group
    // grows, and the unneeded timers start now, not when the halt began.
    w.node_mut("w-3").ready = true;
    w.pod("filler-3", Some("w-3"), 4000, GI);
    let plan = w.step();
    assert!(!halted(&plan));
    assert_eq!(scale_ups(&plan).len(), 1, "{:?}", plan.actions);
    assert!(starts(&plan).is_empty(), "timers restarted");
}

#[test]
fn both_limits_must_be_exceeded() {
    let mut w = cluster();
    // 4 of 8 unready but ok-total-unready-count is 4: not halted.
    w.policy.limits.ok_total_unready_count = 4;
    for i in 0..4 {
        w.node_mut(&format!("w-{i}")).ready = false;
    }
    assert!(!halted(&w.plan()));
    // More than the count, but not more than 60% of the nodes: not halted.
    w.policy.limits.ok_total_unready_count = 3;
    w.policy.limits.max_total_unready_percentage = 60.0;
    assert!(!halted(&w.plan()));
    w.policy.limits.max_total_unready_percentage = 45.0;
    let plan = w.plan();
    assert!(halted(&plan));
    assert!(scale_ups(&plan).is_empty());
}

#[test]
fn booting_nodes_and_nodes_being_removed_are_not_unready() {
    let mut w = cluster();
    for i in 0..4 {
        w.node_mut(&format!("w-{i}")).ready = false;
    }
    // w-0 registered a minute ago: still booting (max-node-provision-time).
    w.node_mut("w-0").created = w.ago(60);
    assert!(!halted(&w.plan()), "3 unready");
    // w-0 booted long ago but is being removed (our record, as CA's taint).
    w.node_mut("w-0").created = w.ago(3600);
    let record = protocol::RemovalRecord {
        phase: protocol::Phase::Draining,
        kind: protocol::RemovalKind::Empty,
        started: w.ago(10),
        drained: None,
        requested: None,
        group: "workers".into(),
        member: "w-0".into(),
        cordoned_before: false,
    };
    let start = StartRemoval { node: "w-0".into(), record, utilization: 0.0, unneeded_since: w.ago(120) };
    start.patch().apply(w.node_mut("w-0"));
    assert!(!halted(&w.plan()), "3 unready");
}
