use crate::model::OwnerRef;
use crate::policy::Duration;

use super::super::explain::{BlockReason, Hold, NodeStatus};
use super::super::protocol::{Phase, RemovalKind, SCALE_DOWN_DISABLED};
use super::*;

/// Three 4-CPU minions; `w-0` busy, `w-1` and `w-2` light. Removal timers
/// expired. Without consolidation: these tests are about the threshold.
fn cluster() -> World {
    let mut w = World::new();
    w.policy.scale_down.consolidation = false;
    w.group("workers", 0, 10, 4000, 16 * GI);
    for n in ["w-0", "w-1", "w-2"] {
        w.minion("workers", n);
        w.daemon_pod(&format!("proxy-{n}"), n, 100, 50 * MI);
    }
    w.pod("busy-0", Some("w-0"), 3000, 4 * GI);
    w.pod("web-1", Some("w-1"), 500, GI);
    w
}

fn status<'p>(plan: &'p Plan, node: &str) -> &'p NodeStatus {
    plan.explanation.node(node).unwrap_or_else(|| panic!("{node} not explained"))
}

/// Runs passes until `unneeded-time` has passed, returning the last plan.
fn after_unneeded_time(w: &mut World) -> Plan {
    w.step();
    w.advance(w.policy.scale_down.unneeded_time.get().as_secs() as i64);
    w.step()
}

#[test]
fn an_unneeded_node_waits_for_unneeded_time_then_starts_removal() {
    let mut w = cluster();
    let first = w.step();
    assert!(starts(&first).is_empty());
    assert!(matches!(status(&first, "w-2"), NodeStatus::Unneeded { held: Some(Hold::UnneededTime), .. }));
    assert!(matches!(status(&first, "w-0"), NodeStatus::Utilized { .. }));
    w.advance(600);
    let plan = w.step();
    let s = starts(&plan);
    // w-2 is empty and goes; w-1's pod can move to w-0? (3.1 + 0.5 ≤ 4: yes) — but only
    // one drain at a time, and empty ones first.
    assert_eq!(
        s.iter().map(|s| (s.node.as_str(), s.record.kind)).collect::<Vec<_>>(),
        [("w-2", RemovalKind::Empty), ("w-1", RemovalKind::Drain)]
    );
    assert_eq!(s[0].record.phase, Phase::Draining);
    assert_eq!(s[0].record.member, "w-2");
    let patch = s[0].patch();
    assert_eq!(patch.unschedulable, Some(true));
    assert_eq!(patch.add_taint.as_ref().unwrap().key, protocol::REMOVAL_TAINT);
}

#[test]
fn the_control_plane_and_non_group_nodes_are_never_candidates() {
    let mut w = cluster();
    w.plain_node("master", 4000, 16 * GI).labels.insert("node-role.kubernetes.io/control-plane".into(), String::new());
    w.plain_node("byo", 4000, 16 * GI);
    // Even if Heat lists the master as a member (Magnum counted it): never.
    w.group_mut("workers").members.push(crate::model::Member {
        id: "master".into(),
        node_name: Some("master".into()),
        status: crate::model::MemberStatus::Complete,
        created: Some(t0()),
    });
    let plan = after_unneeded_time(&mut w);
    assert_eq!(status(&plan, "master"), &NodeStatus::ControlPlane);
    assert_eq!(status(&plan, "byo"), &NodeStatus::NotInGroup);
    assert!(starts(&plan).iter().all(|s| s.node != "master" && s.node != "byo"));
}

#[test]
fn pod_and_node_annotations_block_as_in_cluster_autoscaler() {
    type Tweak = fn(&mut World);
    let cases: [(&str, Tweak, Option<BlockReason>); 8] = [
        ("movable", |_| {}, None),
        ("safe-to-evict false", |w| w.pod_mut("web-1").safe_to_evict = Some(false), Some(BlockReason::NotSafeToEvict)),
        ("no controller", |w| w.pod_mut("web-1").owner = None, Some(BlockReason::NoController)),
        ("local storage", |w| w.pod_mut("web-1").local_storage = true, Some(BlockReason::LocalStorage)),
        (
            "kube-system without PDB",
            |w| w.pod_mut("web-1").namespace = "kube-system".into(),
            Some(BlockReason::SystemPodWithoutPdb),
        ),
        (
            "custom controller",
            |w| {
                w.pod_mut("web-1").owner =
                    Some(OwnerRef { kind: "Widget".into(), name: "x".into(), uid: "x".into() }.into())
            },
            Some(BlockReason::CustomController { kind: "Widget".into() }),
        ),
        (
            "safe-to-evict true overrides",
            |w| {
                let p = w.pod_mut("web-1");
                p.owner = None;
                p.local_storage = true;
                p.safe_to_evict = Some(true);
            },
            None,
        ),
        (
            "mirror pods are ignored",
            |w| {
                let p = w.pod_mut("web-1");
                p.owner = None;
                p.mirror = true;
            },
            None,
        ),
    ];
    for (name, tweak, blocked) in cases {
        let mut w = cluster();
        tweak(&mut w);
        let plan = w.step();
        match (&blocked, status(&plan, "w-1")) {
            (None, NodeStatus::Unneeded { .. }) => {}
            (Some(want), NodeStatus::PodBlocks { reason, .. }) if reason == want => {}
            (_, got) => panic!("{name}: expected {blocked:?}, got {got:?}"),
        }
    }
    let mut w = cluster();
    w.node_mut("w-2").annotations.insert(SCALE_DOWN_DISABLED.into(), "true".into());
    assert_eq!(status(&w.step(), "w-2"), &NodeStatus::ScaleDownDisabled);
}

#[test]
fn a_kube_system_pod_with_a_pdb_may_move() {
    let mut w = cluster();
    w.pod_mut("web-1").namespace = "kube-system".into();
    w.pdb("web", "web", 1);
    w.snap.pdbs[0].namespace = "kube-system".into();
    assert!(matches!(status(&w.step(), "w-1"), NodeStatus::Unneeded { .. }));
}

/// The allowance is shared across the pass, and what exceeds it waits for a
/// later round of the drain (issue 18, item 2); a PDB allowing no
/// disruption blocks every node holding its pods.
#[test]
fn pdb_allowance_is_shared_across_the_pass_and_what_exceeds_it_waits() {
    for allowed in [1, 0] {
        let mut w = World::new();
        w.group("workers", 0, 10, 4000, 16 * GI);
        for n in ["w-0", "w-1", "w-2"] {
            w.minion("workers", n);
        }
        w.pod("big-0", Some("w-0"), 2000, GI);
        w.pod("db-1", Some("w-1"), 200, GI);
        w.pod("db-2", Some("w-2"), 200, GI);
        w.pdb("db", "db", allowed);
        let plan = w.step();
        let unneeded: Vec<&str> = ["w-0", "w-1", "w-2"]
            .into_iter()
            .filter(|n| matches!(status(&plan, n), NodeStatus::Unneeded { .. }))
            .collect();
        if allowed == 1 {
            // db-1 moves to the emptiest node, w-2 (the scheduler's choice),
            // taking the PDB's one disruption: w-2's two db pods go in later
            // rounds, to w-0, which then has no room left for big-0's own move.
            assert_eq!(unneeded, ["w-1", "w-2"], "{}", plan.explanation);
            assert!(matches!(status(&plan, "w-0"), NodeStatus::NoPlaceForPod { .. }), "{}", plan.explanation);
        } else {
            assert_eq!(unneeded, ["w-0"], "{}", plan.explanation);
            for n in ["w-1", "w-2"] {
                assert!(
                    matches!(status(&plan, n), NodeStatus::PdbBlocks { pdb, .. } if pdb == "default/db"),
                    "{n}: {}",
                    plan.explanation
                );
            }
        }
    }
}

#[test]
fn nodes_whose_pods_cannot_move_stay() {
    let mut w = World::new();
    w.group("workers", 0, 10, 4000, 16 * GI);
    w.minion("workers", "w-0");
    w.minion("workers", "w-1");
    w.pod("a-0", Some("w-0"), 1800, GI);
    w.pod("b-0", Some("w-1"), 1800, GI);
    // Each could go onto the other, but not both: only one is unneeded.
    let plan = w.step();
    assert!(matches!(status(&plan, "w-0"), NodeStatus::Unneeded { .. }));
    assert!(matches!(status(&plan, "w-1"), NodeStatus::NoPlaceForPod { .. }), "{:?}", status(&plan, "w-1"));
}

/// Issue 17, stability seeds 13 and 38: a drain's replacements land where
/// the scheduler puts them (`LeastAllocated`: the emptiest node), not where a
/// first-fit search could. `a` runs a small and a large pod; `b` has room
/// for the small one, `c` — the emptier — is the only room for the large one.
/// First fit (small on `b`, large on `c`) says `a` can go; the scheduler binds
/// the small replacement on `c` first and the large one then fits nowhere.
#[test]
fn a_drain_is_judged_where_the_scheduler_binds_its_pods() {
    let mut w = World::new();
    w.policy.scale_down.consolidation = false;
    w.group("workers", 0, 10, 16000, 64 * GI);
    for n in ["a", "b", "c"] {
        w.minion("workers", n);
    }
    w.pod("small-0", Some("a"), 1000, GI);
    w.pod("big-0", Some("a"), 4000, GI);
    w.pod("fill-0", Some("b"), 12500, GI);
    w.pod("fill-1", Some("c"), 11500, GI);
    let plan = w.step();
    match status(&plan, "a") {
        NodeStatus::NoPlaceForPod { pod, .. } => assert_eq!(pod.name, "big-0"),
        other => panic!("a: {other:?}\n{}", plan.explanation),
    }

    // With the large pod smaller than what `b` has left after the small one,
    // the scheduler's placement holds and `a` is unneeded.
    w.pod_mut("big-0").requests.cpu_milli = 2500;
    let plan = w.step();
    assert!(matches!(status(&plan, "a"), NodeStatus::Unneeded { .. }), "{}", plan.explanation);
}

/// Issue 17, stability seed 26: a pod that just arrived on a node (drained
/// there from another) is not evicted again before it is `min-pod-age` old,
/// even once the node has been unneeded for `unneeded-time`.
#[test]
fn a_node_whose_pod_just_arrived_waits_for_min_pod_age() {
    let mut w = cluster();
    w.pod_mut("web-1").created = w.now;
    let arrived = w.now;
    let plan = after_unneeded_time(&mut w);
    let until = arrived + jiff::SignedDuration::from_secs(20 * 60);
    match status(&plan, "w-1") {
        NodeStatus::Unneeded { held: Some(Hold::YoungPod { pod, until: u }), removable_at, .. } => {
            assert_eq!((pod.name.as_str(), *u, *removable_at), ("web-1", until, until));
        }
        other => panic!("w-1: {other:?}\n{}", plan.explanation),
    }
    assert!(starts(&plan).iter().all(|s| s.node != "w-1"), "{}", plan.explanation);
    // The empty node is not held by it.
    assert!(starts(&plan).iter().any(|s| s.node == "w-2"), "{}", plan.explanation);

    w.now = until;
    let plan = w.step();
    assert!(starts(&plan).iter().any(|s| s.node == "w-1"), "{}", plan.explanation);
}

#[test]
fn group_min_size_steps_and_parallelism_bound_removals() {
    let mut w = World::new();
    w.group("workers", 2, 10, 4000, 16 * GI);
    for i in 0..8 {
        w.minion("workers", &format!("w-{i}"));
    }
    w.pod("big-0", Some("w-0"), 3500, GI);
    w.pod("big-1", Some("w-1"), 3500, GI);
    w.pod("small-2", Some("w-2"), 100, GI);
    w.pod("small-3", Some("w-3"), 100, GI);
    w.policy.scale_down.max_nodes_per_step = 3;
    let plan = after_unneeded_time(&mut w);
    let s = starts(&plan);
    // Empty nodes first, at most 3 per step.
    assert_eq!(s.len(), 3, "{}", plan.explanation);
    assert!(s.iter().all(|s| s.record.kind == RemovalKind::Empty));
    w.apply(&plan);
    w.policy.scale_down.max_nodes_per_step = 10;
    let plan = w.step();
    // The last empty node, and one drain at a time.
    let kinds: Vec<(&str, RemovalKind)> = starts(&plan).iter().map(|s| (s.node.as_str(), s.record.kind)).collect();
    assert_eq!(kinds, [("w-7", RemovalKind::Empty), ("w-2", RemovalKind::Drain)], "{}", plan.explanation);
    assert!(matches!(
        status(&plan, "w-3"),
        NodeStatus::Unneeded { held: Some(Hold::MaxDrainParallelism { max: 1 }), .. }
    ));
    w.apply(&plan);
    // 8 live − 5 in removal = 3 left: at min size 3, w-3 stays.
    w.group_mut("workers").min_size = 3;
    w.policy.scale_down.max_drain_parallelism = 5;
    let plan = w.step();
    assert!(starts(&plan).is_empty());
    assert!(
        matches!(status(&plan, "w-3"), NodeStatus::Unneeded { held: Some(Hold::GroupAtMinSize { min: 3 }), .. }),
        "{}",
        plan.explanation
    );
}

#[test]
fn delays_after_add_delete_and_failure_hold_removals() {
    for (field, memory) in [
        ("add", Memory { last_scale_up: [("workers".to_string(), t0())].into(), ..Memory::default() }),
        ("delete", Memory { last_scale_down: Some(t0()), ..Memory::default() }),
        ("failure", Memory { last_failure: Some(t0()), ..Memory::default() }),
    ] {
        let mut w = cluster();
        w.policy.scale_down.unneeded_time = Duration::from_secs(0);
        w.policy.scale_down.delay_after_delete = Duration::from_secs(300);
        w.memory = memory;
        let plan = w.step();
        assert!(starts(&plan).is_empty(), "{field}");
        assert!(
            matches!(status(&plan, "w-2"), NodeStatus::Unneeded { held: Some(Hold::Cooldown { .. }), .. }),
            "{field}: {:?}",
            status(&plan, "w-2")
        );
    }
    // A minion Heat created recently holds scale-down even when memory was lost.
    let mut w = cluster();
    w.policy.scale_down.unneeded_time = Duration::from_secs(0);
    let recent = w.ago(60);
    w.group_mut("workers").members[0].created = Some(recent);
    assert!(starts(&w.step()).is_empty());
}

#[test]
fn utilisation_uses_gpus_on_gpu_nodes() {
    let mut w = World::new();
    w.policy.scale_down.consolidation = false;
    let g = w.group("gpu", 0, 4, 16000, 64 * GI);
    g.template.as_mut().unwrap().allocatable.set("nvidia.com/gpu", 2);
    w.minion("gpu", "g-0");
    w.minion("gpu", "g-1");
    // Little CPU, but both GPUs in use: needed.
    w.pod("train-0", Some("g-0"), 500, GI).requests.set("nvidia.com/gpu", 2);
    let plan = w.step();
    assert!(matches!(status(&plan, "g-0"), NodeStatus::Utilized { resource, .. } if resource == "nvidia.com/gpu"));
    assert!(matches!(status(&plan, "g-1"), NodeStatus::Unneeded { .. }));
}

#[test]
fn consolidation_also_removes_a_busy_node_whose_pods_fit_elsewhere() {
    // w-0 is 80% requested, w-1 and w-2 30%: w-0's 3 CPUs fit on the two
    // others together (2.8 free each). Below-threshold nodes come first.
    let mut w = World::new();
    w.group("workers", 0, 10, 4000, 16 * GI);
    for n in ["w-0", "w-1", "w-2"] {
        w.minion("workers", n);
    }
    for k in 0..6 {
        w.pod(&format!("busy-{k}"), Some("w-0"), 500, GI);
    }
    w.pod("web-1", Some("w-1"), 1200, GI);
    w.pod("web-2", Some("w-2"), 1200, GI);
    let plan = w.step();
    // The simulation takes w-1 first (below the threshold): its pod moves to
    // w-2; then w-0's six pods no longer fit anywhere but w-2's 1.6 free.
    assert!(matches!(status(&plan, "w-1"), NodeStatus::Unneeded { .. }), "{:?}", status(&plan, "w-1"));
    assert!(matches!(status(&plan, "w-0"), NodeStatus::NoPlaceForPod { .. }), "{:?}", status(&plan, "w-0"));
    // Without the light nodes' competition, the busy node is unneeded.
    let mut w = World::new();
    w.group("workers", 0, 10, 4000, 16 * GI);
    for n in ["w-0", "w-1", "w-2"] {
        w.minion("workers", n);
    }
    for k in 0..6 {
        w.pod(&format!("busy-{k}"), Some("w-0"), 500, GI);
    }
    for n in ["w-1", "w-2"] {
        w.pod(&format!("web-{n}"), Some(n), 2400, GI);
    }
    let plan = after_unneeded_time(&mut w);
    assert!(
        matches!(status(&plan, "w-0"), NodeStatus::RemovalStarted { kind: RemovalKind::Drain }),
        "{:?}",
        status(&plan, "w-0")
    );
    w.policy.scale_down.consolidation = false;
    let plan = w.step();
    assert!(
        matches!(status(&plan, "w-0"), NodeStatus::Utilized { .. }),
        "as cluster-autoscaler: {:?}",
        status(&plan, "w-0")
    );
}

#[test]
fn observed_usage_when_enabled() {
    let mut w = cluster();
    w.policy.scale_down.use_observed_usage = true;
    let usage = std::collections::BTreeMap::from([("w-2".to_string(), res(3000, GI))]);
    let plan = plan(
        &Input { snapshot: &w.snap, usage: Some(&usage), memory: &w.memory, now: w.now, observations: None },
        &w.policy,
    );
    assert!(matches!(status(&plan, "w-2"), NodeStatus::Utilized { .. }));
    assert_eq!(status(&plan, "w-1"), &NodeStatus::UsageUnknown);
}

#[test]
fn the_candidate_budget_keeps_known_unneeded_nodes_first() {
    let mut w = World::new();
    w.policy.tuning.candidates_pool_min = 2;
    w.group("workers", 0, 10, 4000, 16 * GI);
    for i in 0..5 {
        w.minion("workers", &format!("w-{i}"));
    }
    w.memory.unneeded_since.insert("w-4".into(), w.ago(100));
    let plan = w.step();
    assert!(matches!(status(&plan, "w-4"), NodeStatus::Unneeded { since, .. } if *since == w.ago(100)));
    assert_eq!(plan.explanation.nodes.iter().filter(|n| n.status == NodeStatus::NotEvaluated).count(), 3);
}

#[test]
fn pending_pods_about_to_land_keep_their_node() {
    let mut w = cluster();
    // Fits only w-2 (w-0 busy, w-1 would exceed): w-2 is no longer unneeded.
    w.pending("web-9", 3500, GI);
    let plan = after_unneeded_time(&mut w);
    assert!(matches!(status(&plan, "w-2"), NodeStatus::Utilized { .. }), "{:?}", status(&plan, "w-2"));
    assert!(starts(&plan).iter().all(|s| s.node != "w-2"));
}

/// A minion whose kubelet died: not Ready, its pods evicted by the node
/// lifecycle controller and left terminating (no kubelet finishes them). It
/// is removed once it has been so for `unready-time` (not `unneeded-time`),
/// and its drain does not wait for the abandoned pods.
#[test]
fn a_dead_minion_is_removed_after_unready_time_without_waiting_for_its_abandoned_pods() {
    let mut w = cluster();
    w.policy.scale_down.unready_time = Duration::from_secs(1200);
    w.pod("busy-1", Some("w-1"), 3000, 4 * GI);
    w.pod("busy-2", Some("w-2"), 3000, 4 * GI);
    w.node_mut("w-0").ready = false;
    let evicted = w.ago(30);
    w.pod_mut("busy-0").deletion = Some(evicted);
    let first = w.step();
    assert!(starts(&first).is_empty());
    assert!(matches!(status(&first, "w-0"), NodeStatus::Unneeded { held: Some(Hold::UnneededTime), .. }));
    w.advance(w.policy.scale_down.unneeded_time.get().as_secs() as i64);
    assert!(starts(&w.step()).is_empty(), "unneeded-time is not enough for a node that is not Ready");
    w.advance(600);
    let plan = w.step();
    let s = starts(&plan);
    assert_eq!(s.iter().map(|s| (s.node.as_str(), s.record.kind)).collect::<Vec<_>>(), [("w-0", RemovalKind::Empty)]);
    w.apply(&plan);
    let plan = w.step();
    assert_eq!(kinds(&plan), ["mark-drained:w-0"], "{}", plan.explanation);
    // On a Ready node the same terminating pod is waited for.
    let mut ready = cluster();
    ready.pod_mut("busy-0").deletion = Some(evicted);
    assert!(ready.step().explanation.node("w-0").is_some_and(|s| !matches!(s, NodeStatus::NotReady)));
}

#[test]
fn a_minion_still_booting_is_not_removed_for_being_not_ready() {
    let mut w = cluster();
    w.policy.scale_down.unready_time = Duration::from_secs(0);
    let now = w.now;
    let n = w.node_mut("w-2");
    n.ready = false;
    n.created = now;
    w.advance(60);
    let plan = w.step();
    assert_eq!(status(&plan, "w-2"), &NodeStatus::NotReady);
    assert!(starts(&plan).iter().all(|s| s.node != "w-2"));
}

/// A group at its min size keeps its unneeded nodes whatever their timers:
/// the explanation names min size from the first pass, not "waiting for
/// unneeded-time" (which would read as if the node were about to go).
#[test]
fn a_node_held_at_min_size_is_explained_by_min_size_from_the_first_pass() {
    let mut w = cluster();
    w.group_mut("workers").min_size = 3;
    let first = w.step();
    assert!(
        matches!(status(&first, "w-2"), NodeStatus::Unneeded { held: Some(Hold::GroupAtMinSize { min: 3 }), .. }),
        "{}",
        first.explanation
    );
    w.advance(600);
    let later = w.step();
    assert!(starts(&later).is_empty());
    assert!(matches!(status(&later, "w-2"), NodeStatus::Unneeded { held: Some(Hold::GroupAtMinSize { min: 3 }), .. }));
}

/// Issue 17, stability seed 58: six nodes drained within 33 s, each drain's
/// pods landing on the next node, whose unneeded timer had been running
/// without them. A node that received a pod since it was found unneeded
/// restarts its `unneeded-time`.
#[test]
fn a_node_that_received_pods_restarts_its_unneeded_time() {
    let mut w = cluster();
    w.step();
    w.advance(300);
    // A drained node's pod lands on w-1 now.
    let now = w.now;
    w.pod("moved-0", Some("w-1"), 200, 256 * MI).created = now;
    let plan = w.step();
    assert!(
        matches!(status(&plan, "w-1"), NodeStatus::Unneeded { since, .. } if *since == now),
        "{}",
        plan.explanation
    );
    w.advance(300);
    let plan = w.step();
    let s = starts(&plan);
    assert_eq!(s.iter().map(|s| s.node.as_str()).collect::<Vec<_>>(), ["w-2"], "{}", plan.explanation);
    assert!(matches!(status(&plan, "w-1"), NodeStatus::Unneeded { held: Some(Hold::UnneededTime), .. }));
}

/// Issue 18 item 2: a node found unneeded in a group at its min size is
/// never removed, so its simulated removal must not take the room or the
/// PDB allowance a removable node of another group needs. `p-0` (group
/// `pinned`, at min size 1) is simulated first (same utilisation as `w-1`,
/// first by name); `w-1` (group `workers`) can go if `p-0` reserves nothing.
#[test]
fn a_node_its_group_cannot_lose_reserves_nothing_for_the_removable_ones() {
    fn world(pdb: bool) -> World {
        let mut w = World::new();
        w.policy.scale_down.consolidation = false;
        w.group("pinned", 1, 4, 4000, 16 * GI);
        w.group("workers", 0, 10, 4000, 16 * GI);
        w.minion("pinned", "p-0");
        w.minion("workers", "w-0");
        w.minion("workers", "w-1");
        w.pod("busy-0", Some("w-0"), 2500, 4 * GI);
        if pdb {
            // One disruption allowed: p-0's pod would take it from w-1's.
            w.pod("db-0", Some("p-0"), 1000, GI);
            w.pod("db-1", Some("w-1"), 1000, GI);
            w.pdb("db", "db", 1);
        } else {
            // p-0's pod would land on w-1 (the emptiest), and w-1's two pods
            // would then fit nowhere but on p-0.
            w.pod("a-0", Some("p-0"), 1000, GI);
            w.pod("b-1", Some("w-1"), 1000, GI);
        }
        w
    }
    for pdb in [true, false] {
        let mut w = world(pdb);
        let plan = after_unneeded_time(&mut w);
        assert!(
            matches!(status(&plan, "p-0"), NodeStatus::Unneeded { held: Some(Hold::GroupAtMinSize { min: 1 }), .. }),
            "pdb {pdb}: {}",
            plan.explanation
        );
        let s = starts(&plan);
        assert_eq!(
            s.iter().map(|s| (s.node.as_str(), s.record.kind)).collect::<Vec<_>>(),
            [("w-1", RemovalKind::Drain)],
            "pdb {pdb}: {}",
            plan.explanation
        );
        // p-0's unneeded timer runs, as any unneeded node's.
        assert!(w.memory.unneeded_since.contains_key("p-0"), "pdb {pdb}");
    }
}

/// The min size counts the group's candidates found unneeded before: of
/// two unneeded nodes in a group that can lose one, the first reserves its
/// removal and the second is kept. The kept one never starts, even while
/// the first is held (here by its young pod): it reserved nothing, and the
/// room its pods were found may be the room the first one's pods were
/// given. (Before, the second reserved too and started in the first one's
/// place; it now waits its turn — the first was unneeded as long or longer,
/// as known candidates are simulated first.)
#[test]
fn of_a_groups_unneeded_nodes_only_those_above_min_size_reserve() {
    let mut w = World::new();
    w.policy.scale_down.consolidation = false;
    w.group("workers", 2, 10, 4000, 16 * GI);
    for n in ["w-0", "w-1", "w-2"] {
        w.minion("workers", n);
    }
    w.pod("busy-0", Some("w-0"), 2500, 4 * GI);
    w.pod("web-1", Some("w-1"), 500, GI).created = t0();
    w.pod("web-2", Some("w-2"), 600, GI);
    let plan = after_unneeded_time(&mut w);
    assert!(starts(&plan).is_empty(), "{}", plan.explanation);
    assert!(
        matches!(status(&plan, "w-1"), NodeStatus::Unneeded { held: Some(Hold::YoungPod { .. }), .. }),
        "{}",
        plan.explanation
    );
    assert!(
        matches!(status(&plan, "w-2"), NodeStatus::Unneeded { held: Some(Hold::GroupAtMinSize { min: 2 }), .. }),
        "{}",
        plan.explanation
    );
    w.advance(20 * 60);
    let plan = w.step();
    assert_eq!(starts(&plan).iter().map(|s| s.node.as_str()).collect::<Vec<_>>(), ["w-1"], "{}", plan.explanation);
}
