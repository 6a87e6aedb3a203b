use crate::model::{Member, MemberStatus, Timestamp};

use super::super::action::RemovalCause;
use super::super::explain::{Alert, NodeStatus, PodOutcome, RemovalStep, RollbackReason};
use super::super::members::verify_drained;
use super::super::protocol::{NodePatch, Phase, RemovalKind, RemovalRecord, removal_taint};
use super::*;

/// w-0 roomy and busy; w-1 runs `db-1` (PDB allows 1); w-2 runs only a DaemonSet pod.
fn cluster() -> World {
    let mut w = World::new();
    w.group("workers", 0, 10, 4000, 16 * GI);
    for n in ["w-0", "w-1", "w-2"] {
        w.minion("workers", n);
        w.daemon_pod(&format!("proxy-{n}"), n, 100, 50 * MI);
    }
    w.pod("busy-0", Some("w-0"), 2500, 4 * GI);
    w.pod("db-1", Some("w-1"), 500, GI);
    w.pdb("db", "db", 1);
    w
}

/// Puts `node` in a removal phase as a previous daemon would have left it.
fn mark(w: &mut World, node: &str, phase: Phase, started: Timestamp, drained: Option<Timestamp>) -> RemovalRecord {
    let record = RemovalRecord {
        phase,
        kind: RemovalKind::Drain,
        started,
        drained,
        requested: (phase == Phase::Removing).then_some(started),
        group: "workers".into(),
        member: node.into(),
        cordoned_before: false,
    };
    NodePatch {
        set_annotations: record.to_annotations(),
        add_taint: Some(removal_taint(started)),
        unschedulable: Some(true),
        ..NodePatch::default()
    }
    .apply(w.node_mut(node));
    record
}

/// Drives a scale-down from unneeded to deleted Node objects, one pass per
/// entry; with `forget`, the planner's memory is lost before every pass after
/// the removals started (a daemon restarting all the time).
fn drive(forget: bool) -> Vec<Vec<String>> {
    let mut w = cluster();
    let mut log = Vec::new();
    let pass = |w: &mut World, log: &mut Vec<Vec<String>>| {
        if forget && w.snap.nodes.iter().any(|n| n.unschedulable) {
            w.memory = Memory::default();
        }
        let plan = w.step();
        log.push(kinds(&plan));
        w.apply(&plan);
        plan
    };
    pass(&mut w, &mut log); // unneeded
    w.advance(600);
    pass(&mut w, &mut log); // start both
    pass(&mut w, &mut log); // w-2 drained, w-1 evicts db-1
    pass(&mut w, &mut log); // db-1 still terminating
    w.terminate();
    pass(&mut w, &mut log); // w-1 drained
    w.advance(60);
    let plan = pass(&mut w, &mut log); // one Heat request for both
    let rm = removals(&plan);
    assert_eq!(rm.len(), 1);
    assert_eq!((rm[0].expected_desired, rm[0].new_desired, rm[0].members.len()), (3, 1, 2));
    assert!(rm[0].members.iter().all(|m| matches!(m.cause, RemovalCause::Drained { .. })));
    pass(&mut w, &mut log); // Heat busy deleting: nothing
    w.heat_done();
    pass(&mut w, &mut log); // members gone: delete the Node objects
    pass(&mut w, &mut log); // done
    assert_eq!(w.snap.nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(), ["w-0"]);
    log
}

#[test]
fn a_removal_runs_start_to_finish() {
    let log = drive(false);
    let expected: Vec<Vec<&str>> = vec![
        vec![],
        vec!["start-removal:w-2", "start-removal:w-1"],
        vec!["evict-pods:w-1", "mark-drained:w-2"],
        vec![],
        vec!["mark-drained:w-1"],
        vec!["remove-members:workers"],
        vec![],
        vec!["delete-node:w-1", "delete-node:w-2"],
        vec![],
    ];
    assert_eq!(log, expected);
}

#[test]
fn a_removal_resumes_from_the_node_alone_after_every_restart() {
    assert_eq!(drive(true), drive(false));
}

#[test]
fn evictions_never_exceed_a_pdb_within_a_pass() {
    let mut w = cluster();
    w.pod("db-2", Some("w-2"), 500, GI);
    let now = w.now;
    mark(&mut w, "w-1", Phase::Draining, now, None);
    mark(&mut w, "w-2", Phase::Draining, now, None);
    let plan = w.plan();
    let evicted: Vec<String> = plan
        .actions
        .iter()
        .filter_map(|a| if let Action::EvictPods(e) = a { Some(e) } else { None })
        .flat_map(|e| e.pods.iter().map(|p| p.pod.name.to_string()))
        .collect();
    assert_eq!(evicted, ["db-1"]);
    let NodeStatus::Removal { step: RemovalStep::Evicting { blocked, .. }, .. } = plan.explanation.node("w-2").unwrap()
    else {
        panic!()
    };
    assert_eq!(blocked[0].pdb.as_deref(), Some("default/db"));
}

#[test]
fn a_drain_blocked_past_max_eviction_time_rolls_back() {
    for cordoned_before in [false, true] {
        let mut w = cluster();
        w.snap.pdbs[0].disruptions_allowed = 0;
        let started = w.ago(121);
        let mut record = mark(&mut w, "w-1", Phase::Draining, started, None);
        record.cordoned_before = cordoned_before;
        w.node_mut("w-1").annotations = record.to_annotations();
        let plan = w.plan();
        let Some(Action::RollBackRemoval(rb)) = plan.actions.first() else { panic!("{:?}", plan.actions) };
        assert_eq!(rb.uncordon, !cordoned_before);
        let RollbackReason::EvictionTimeout { blocked } = &rb.reason else { panic!() };
        assert_eq!(blocked[0].pdb.as_deref(), Some("default/db"));
        w.apply(&plan);
        let node = w.node_mut("w-1");
        assert!(node.taints.is_empty() && node.annotations.is_empty());
        assert_eq!(node.unschedulable, cordoned_before);
    }
}

#[test]
fn pods_that_do_not_terminate_roll_the_drain_back() {
    let mut w = cluster();
    let started = w.ago(2 * 60 + 10 * 60 + 1);
    mark(&mut w, "w-1", Phase::Draining, started, None);
    let t = w.ago(600);
    w.pod_mut("db-1").deletion = Some(t);
    let plan = w.plan();
    assert!(
        matches!(&plan.actions[..], [Action::RollBackRemoval(rb)] if rb.reason == RollbackReason::TerminationTimeout { pods: 1 })
    );
}

#[test]
fn a_drained_node_is_taken_back_when_pending_pods_fit_it() {
    let mut w = cluster();
    w.pod_mut("db-1").node_name = None;
    w.snap.pods.retain(|p| p.name != "db-1");
    let (started, drained) = (w.ago(60), w.ago(30));
    mark(&mut w, "w-1", Phase::Drained, started, Some(drained));
    w.pod("busy-1", Some("w-2"), 3800, GI);
    w.pending("web-0", 3000, GI);
    let plan = w.plan();
    assert!(scale_ups(&plan).is_empty());
    assert!(matches!(&plan.actions[..], [Action::RollBackRemoval(rb)] if rb.node == "w-1" && rb.uncordon));
    assert_eq!(plan.explanation.pod(&w.pod_mut("web-0").key()), Some(&PodOutcome::ReclaimsNode { node: "w-1".into() }));
}

/// As on a real cluster: the node controller adds `node.kubernetes.io/unschedulable:NoSchedule`
/// to a cordoned node. The node is still taken back (uncordoning removes that taint too), not
/// left to the cooldown while a new minion boots.
#[test]
fn a_drained_node_with_the_control_planes_unschedulable_taint_is_taken_back() {
    let mut w = cluster();
    w.snap.pods.retain(|p| p.name != "db-1");
    let (started, drained) = (w.ago(60), w.ago(30));
    mark(&mut w, "w-1", Phase::Drained, started, Some(drained));
    w.node_mut("w-1").taints.push(crate::model::Taint {
        key: super::super::protocol::UNSCHEDULABLE_TAINT.into(),
        value: None,
        effect: crate::model::TaintEffect::NoSchedule,
    });
    w.pod("busy-1", Some("w-2"), 3800, GI);
    w.pending("web-0", 3000, GI);
    let plan = w.plan();
    assert!(scale_ups(&plan).is_empty(), "no boot: {:?}", plan.actions);
    assert!(matches!(&plan.actions[..], [Action::RollBackRemoval(rb)] if rb.node == "w-1" && rb.uncordon));
    // The rollback restores what the removal changed: both taints go, the node is schedulable.
    let Action::RollBackRemoval(rb) = &plan.actions[0] else { unreachable!() };
    rb.patch().apply(w.node_mut("w-1"));
    let node = w.node_mut("w-1");
    assert!(node.taints.is_empty() && node.annotations.is_empty() && !node.unschedulable, "{node:?}");
}

/// After a restart (fresh memory), a minion whose removal was sent: Heat deletes its server, so
/// its node goes NotReady, and the member may no longer map to the node at all. Neither is a
/// failed provisioning.
#[test]
fn a_minion_being_removed_is_not_reported_as_a_failed_provisioning() {
    let failures = |plan: &Plan| {
        plan.explanation
            .alerts
            .iter()
            .filter(|a| matches!(a, Alert::ProvisioningFailed { .. } | Alert::NodeUnready { .. }))
            .cloned()
            .collect::<Vec<_>>()
    };
    let mut w = cluster();
    w.snap.pods.retain(|p| p.name != "db-1");
    let t = w.ago(300);
    mark(&mut w, "w-1", Phase::Removing, t, Some(t));
    w.node_mut("w-1").ready = false;
    let plan = w.plan();
    assert_eq!(failures(&plan), vec![], "node NotReady");
    assert!(!removals(&plan).is_empty(), "the removal is still asked of Heat: {:?}", plan.actions);
    // The server is gone: the member no longer joins its node.
    w.group_mut("workers").members.iter_mut().find(|m| m.id == "w-1").unwrap().node_name = None;
    let plan = w.plan();
    assert_eq!(failures(&plan), vec![], "member without node");
    assert!(!removals(&plan).is_empty(), "the removal is still asked of Heat: {:?}", plan.actions);
}

#[test]
fn inconsistent_records_roll_back() {
    let mut w = cluster();
    let t = w.ago(10);
    w.node_mut("w-1").taints.push(removal_taint(t));
    let plan = w.plan();
    assert!(matches!(
        plan.explanation.node("w-1"),
        Some(NodeStatus::RolledBack { reason: RollbackReason::Inconsistent { .. } })
    ));

    // A record naming a member that is not this node's.
    let mut w = cluster();
    let mut record = mark(&mut w, "w-1", Phase::Drained, t, Some(t));
    record.member = "w-2".into();
    w.node_mut("w-1").annotations = record.to_annotations();
    let plan = w.plan();
    assert!(matches!(&plan.actions[..], [Action::RollBackRemoval(rb)] if rb.node == "w-1"), "{:?}", plan.actions);
}

#[test]
fn removing_is_never_rolled_back_and_is_asked_again_or_finished() {
    let mut w = cluster();
    w.snap.pods.retain(|p| p.name != "db-1");
    let t = w.ago(300);
    mark(&mut w, "w-1", Phase::Removing, t, Some(t));
    w.pod("busy-1", Some("w-2"), 3800, GI);
    w.pending("web-0", 3000, GI); // would fit w-1 if it came back
    let plan = w.plan();
    assert!(!plan.actions.iter().any(|a| matches!(a, Action::RollBackRemoval(_))));
    // The pod gets a new minion; the group's removal request waits for the next pass.
    assert_eq!(scale_ups(&plan).len(), 1);
    assert!(removals(&plan).is_empty());
    // Heat did not act on the earlier request: ask again, exactly that member.
    w.snap.pods.retain(|p| p.name != "web-0");
    let plan = w.plan();
    let rm = removals(&plan);
    assert_eq!(rm[0].members.iter().map(|m| m.member.as_str()).collect::<Vec<_>>(), ["w-1"]);
    // Once Heat is deleting it: wait. Once gone: delete the Node.
    w.group_mut("workers").members[1].status = MemberStatus::Deleting;
    assert!(removals(&w.plan()).is_empty());
    w.heat_done();
    assert!(w.plan().actions.iter().any(|a| matches!(a, Action::DeleteNode(d) if d.node == "w-1")));
}

#[test]
fn an_undrained_member_is_never_handed_to_heat() {
    let mut w = cluster();
    let (started, drained) = (w.ago(600), w.ago(300));
    // Annotated drained and past cooldown, but a workload pod is (back) on it.
    mark(&mut w, "w-1", Phase::Drained, started, Some(drained));
    // Another node still draining in the same group; a failed member too.
    mark(&mut w, "w-2", Phase::Draining, started, None);
    w.pod("web-2", Some("w-2"), 100, MI);
    w.group_mut("workers").members.push(Member {
        id: "bad".into(),
        node_name: None,
        status: MemberStatus::Failed,
        created: Some(t0()),
    });
    w.group_mut("workers").desired += 1;
    let plan = w.plan();
    let rm = removals(&plan);
    assert_eq!(rm.len(), 1);
    assert_eq!(rm[0].members.iter().map(|m| m.member.as_str()).collect::<Vec<_>>(), ["bad"]);
    assert!(matches!(
        plan.explanation.node("w-1"),
        Some(NodeStatus::RolledBack { reason: RollbackReason::PodsReturned { pods: 1 } })
    ));

    let ix = super::super::index::Index::build(&w.snap, &w.policy);
    let verify = |node: &str| {
        let i = ix.node_named(node).unwrap();
        verify_drained(&ix, ix.membership(i).unwrap(), i).unwrap_err()
    };
    assert!(verify("w-1").contains("still runs pod default/db-1"));
    assert!(verify("w-2").contains("phase draining"));
    assert!(verify("w-0").contains("no removal record"));
}

#[test]
fn drained_and_failed_members_leave_in_one_request() {
    let mut w = cluster();
    w.snap.pods.retain(|p| p.name != "db-1");
    let (started, drained) = (w.ago(600), w.ago(300));
    mark(&mut w, "w-1", Phase::Drained, started, Some(drained));
    w.group_mut("workers").members.push(Member {
        id: "bad".into(),
        node_name: None,
        status: MemberStatus::Failed,
        created: Some(t0()),
    });
    w.group_mut("workers").desired += 1;
    let plan = w.plan();
    let rm = removals(&plan);
    assert_eq!(rm.len(), 1);
    let mut ids: Vec<&str> = rm[0].members.iter().map(|m| m.member.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["bad", "w-1"]);
    assert_eq!((rm[0].expected_desired, rm[0].new_desired), (4, 2));
}

/// Issue 18 item 2, Karpenter's drain: a node holding two pods of a PDB that
/// allows one disruption is unneeded, and its drain evicts one pod, waits for
/// its replacement to be Ready (the allowance back), then evicts the other —
/// never both at once.
#[test]
fn a_node_holding_more_pods_of_a_pdb_than_it_allows_is_drained_in_rounds() {
    let mut w = World::new();
    w.group("workers", 0, 10, 4000, 16 * GI);
    w.minion("workers", "w-0");
    w.minion("workers", "w-1");
    w.pod("busy-0", Some("w-0"), 2500, 4 * GI);
    w.pod("db-0", Some("w-1"), 300, GI);
    w.pod("db-1", Some("w-1"), 300, GI);
    w.pdb("db", "db", 1);
    let plan = w.step();
    assert!(matches!(plan.explanation.node("w-1"), Some(NodeStatus::Unneeded { .. })), "{}", plan.explanation);
    w.advance(600);
    let plan = w.step();
    assert_eq!(kinds(&plan), ["start-removal:w-1"], "{}", plan.explanation);
    w.apply(&plan);

    let evicted = |plan: &Plan| -> Vec<String> {
        plan.actions
            .iter()
            .filter_map(|a| if let Action::EvictPods(e) = a { Some(e) } else { None })
            .flat_map(|e| e.pods.iter().map(|p| p.pod.name.to_string()))
            .collect()
    };
    let mut rounds = Vec::new();
    for replacement in ["db-2", "db-3"] {
        w.advance(10);
        let plan = w.step();
        let round = evicted(&plan);
        assert_eq!(round.len(), 1, "one eviction per round: {round:?}\n{}", plan.explanation);
        w.apply(&plan);
        // The evicted pod terminates; the disruption controller counts it.
        w.snap.pdbs[0].disruptions_allowed = 0;
        w.advance(10);
        let plan = w.step();
        assert!(evicted(&plan).is_empty(), "nothing past the allowance\n{}", plan.explanation);
        w.terminate();
        // Its replacement is Ready elsewhere: the allowance is back.
        w.pod(replacement, Some("w-0"), 300, GI);
        w.snap.pdbs[0].disruptions_allowed = 1;
        rounds.push(round);
    }
    assert_eq!(rounds.concat().len(), 2);
    w.advance(10);
    let plan = w.step();
    assert_eq!(kinds(&plan), ["mark-drained:w-1"], "{}", plan.explanation);
}

/// The openstack e2e drift scenario, as it failed in the suite: w-0 was found
/// unneeded and drained while its group (min 1) still had w-1; then w-1's
/// Node was deleted by hand. Handing both to Heat in one request left Heat one
/// member short of min size, so it replaced the healthy, drained w-0 with a
/// new minion. The group can lose only the lost member now: the drain is
/// rolled back (and would be at any phase before `removing`).
#[test]
fn a_drained_node_is_taken_back_when_a_lost_member_leaves_its_group_at_min_size() {
    let mut w = World::new();
    w.group("workers", 1, 10, 4000, 16 * GI);
    w.minion("workers", "w-0");
    w.minion("workers", "w-1");
    let (started, drained) = (w.ago(600), w.ago(300));
    mark(&mut w, "w-0", Phase::Drained, started, Some(drained));
    w.snap.nodes.retain(|n| n.name != "w-1");
    let plan = w.plan();
    let rm = removals(&plan);
    assert_eq!(rm.len(), 1, "{}", plan.explanation);
    assert_eq!(rm[0].members.iter().map(|m| m.member.as_str()).collect::<Vec<_>>(), ["w-1"], "{}", plan.explanation);
    assert_eq!((rm[0].expected_desired, rm[0].new_desired), (2, 1));
    assert!(
        matches!(
            plan.explanation.node("w-0"),
            Some(NodeStatus::RolledBack { reason: RollbackReason::GroupAtMinSize { min: 1 } })
        ),
        "{}",
        plan.explanation
    );

    // Still draining when the member is lost: rolled back before evicting more.
    let mut w = World::new();
    w.group("workers", 1, 10, 4000, 16 * GI);
    w.minion("workers", "w-0");
    w.minion("workers", "w-1");
    let started = w.ago(5);
    mark(&mut w, "w-0", Phase::Draining, started, None);
    w.pod("web-0", Some("w-0"), 100, MI);
    w.snap.nodes.retain(|n| n.name != "w-1");
    let plan = w.plan();
    assert!(!plan.actions.iter().any(|a| matches!(a, Action::EvictPods(_))), "{}", plan.explanation);
    assert!(matches!(
        plan.explanation.node("w-0"),
        Some(NodeStatus::RolledBack { reason: RollbackReason::GroupAtMinSize { min: 1 } })
    ));
}
