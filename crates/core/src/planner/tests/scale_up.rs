use std::collections::BTreeMap;

use crate::model::{MemberStatus, Placement, TaintEffect, Toleration, TolerationOperator};
use crate::policy::{Expander, Quantity};

use super::super::explain::{Alert, GroupRejection, Limit, PodOutcome};
use super::super::scheduling::Unfit;
use super::*;

fn outcome<'p>(plan: &'p Plan, pod: &str) -> &'p PodOutcome {
    plan.explanation
        .pods
        .iter()
        .find(|p| p.pod.name == pod)
        .map(|p| &p.outcome)
        .unwrap_or_else(|| panic!("{pod} not explained"))
}

#[test]
fn pending_pods_are_bin_packed_onto_the_fewest_new_minions() {
    let mut w = World::new();
    w.group("workers", 1, 10, 4000, 16 * GI);
    w.minion("workers", "w-0");
    w.pod("filler-0", Some("w-0"), 3500, GI);
    // 5 × 1.5 CPU: two per 4-CPU minion → 3 minions.
    for i in 0..5 {
        w.pending(&format!("web-{i}"), 1500, GI);
    }
    let plan = w.plan();
    let ups = scale_ups(&plan);
    assert_eq!(ups.len(), 1, "{:?}", plan.actions);
    assert_eq!((ups[0].group.as_str(), ups[0].expected_desired, ups[0].new_desired), ("workers", 1, 4));
    assert_eq!(ups[0].pod_count, 5);
    assert_eq!(outcome(&plan, "web-3"), &PodOutcome::TriggersScaleUp { group: "workers".into() });
}

#[test]
fn first_fit_decreasing_mixes_sizes() {
    let mut w = World::new();
    w.group("workers", 0, 10, 4000, 16 * GI);
    // 3, 3, 1, 1 CPU: FFD packs 3+1, 3+1 → 2 minions (arrival order would need 3).
    w.pending("small-0", 1000, MI);
    w.pending("small-1", 1000, MI);
    w.pending("big-0", 3000, MI);
    w.pending("big-1", 3000, MI);
    assert_eq!(scale_ups(&w.plan())[0].new_desired, 2);
}

#[test]
fn pods_that_are_young_nominated_or_fit_somewhere_do_not_scale() {
    let mut w = World::new();
    w.policy.scale_up.new_pod_scale_up_delay = crate::policy::Duration::from_secs(300);
    w.group("workers", 0, 10, 4000, 16 * GI);
    w.minion("workers", "w-0");
    w.pending("young-0", 3000, GI); // created an hour ago by the fixture...
    w.pod_mut("young-0").created = w.ago(30); // ...made young.
    w.pending("nominated-0", 3000, GI).nominated_node = Some("w-0".into());
    w.pending("fits-0", 1000, GI); // w-0 is empty: the scheduler has not caught up.
    let plan = w.plan();
    assert!(scale_ups(&plan).is_empty(), "{:?}", plan.actions);
    assert!(matches!(outcome(&plan, "young-0"), PodOutcome::TooYoung { .. }));
    assert!(matches!(outcome(&plan, "nominated-0"), PodOutcome::Nominated { .. }));
    assert_eq!(outcome(&plan, "fits-0"), &PodOutcome::FitsExistingNode { node: "w-0".into() });
}

#[test]
fn upcoming_capacity_counts_before_asking_for_more() {
    let mut w = World::new();
    w.group("workers", 0, 10, 4000, 16 * GI);
    w.minion("workers", "w-0");
    w.pod("filler-0", Some("w-0"), 4000, GI);
    // A member being created (no node yet) and a booting node.
    let created = w.ago(60);
    let g = w.group_mut("workers");
    g.desired += 1;
    g.members.push(crate::model::Member {
        id: "w-1".into(),
        node_name: None,
        status: MemberStatus::InProgress,
        created: Some(created),
    });
    w.minion("workers", "w-2").ready = false;
    w.node_mut("w-2").created = created;
    w.pod("filler-1", Some("w-2"), 0, 0);
    for i in 0..2 {
        w.pending(&format!("web-{i}"), 3000, GI);
    }
    let plan = w.plan();
    assert!(scale_ups(&plan).is_empty(), "{:?}", plan.actions);
    assert_eq!(outcome(&plan, "web-1"), &PodOutcome::FitsUpcomingNode { group: "workers".into() });
    // A third pod needs more than what is coming.
    w.pending("web-2", 3000, GI);
    let ups = w.plan();
    assert_eq!(scale_ups(&ups)[0].new_desired, 4);
}

#[test]
fn desired_size_heat_has_not_materialised_is_upcoming_while_the_stack_is_busy() {
    let mut w = World::new();
    w.group("workers", 0, 10, 4000, 16 * GI);
    w.pending("web-0", 3000, GI);
    w.group_mut("workers").desired = 1;
    w.group_mut("workers").stack_busy = true;
    let plan = w.plan();
    assert!(scale_ups(&plan).is_empty());
    assert_eq!(outcome(&plan, "web-0"), &PodOutcome::FitsUpcomingNode { group: "workers".into() });
    // Once Heat is done and still lists nothing, it is drift, not capacity.
    w.group_mut("workers").stack_busy = false;
    let plan = w.plan();
    assert!(plan.explanation.alerts.iter().any(|a| matches!(a, Alert::DesiredExceedsMembers { .. })));
}

#[test]
fn scale_from_zero_uses_the_template_and_daemonset_overhead() {
    let mut w = World::new();
    w.group("workers", 0, 3, 4000, 16 * GI);
    w.plain_node("other", 1000, GI);
    w.daemon_pod("proxy-x", "other", 500, 100 * MI);
    // 3.6 CPU fits 4 CPU but not 4 CPU minus the DaemonSet's 0.5.
    w.pending("big-0", 3600, GI);
    w.pending("ok-0", 3500, GI);
    let plan = w.plan();
    let ups = scale_ups(&plan);
    assert_eq!((ups.len(), ups[0].new_desired, ups[0].pod_count), (1, 1, 1));
    let PodOutcome::NoScaleUp { groups, .. } = outcome(&plan, "big-0") else { panic!() };
    assert_eq!(groups[0].rejection, GroupRejection::DoesNotFit { filter: Unfit::Resources { resource: "cpu".into() } });
}

#[test]
fn gpu_and_cpu_pods_grow_their_own_groups_in_one_pass() {
    let mut w = World::new();
    w.group("cpu", 0, 10, 8000, 32 * GI);
    let gpu = w.group("gpu", 0, 4, 16000, 120 * GI);
    let shape = gpu.template.as_mut().unwrap();
    shape.allocatable.set("nvidia.com/gpu", 2);
    shape.taints.push(crate::model::Taint {
        key: "nvidia.com/gpu".into(),
        value: Some("present".into()),
        effect: TaintEffect::NoSchedule,
    });
    w.pending("train-0", 4000, 8 * GI).requests.set("nvidia.com/gpu", 2);
    w.pending("train-1", 4000, 8 * GI).requests.set("nvidia.com/gpu", 2);
    w.set_placement(
        "train",
        Placement {
            tolerations: vec![Toleration {
                key: Some("nvidia.com/gpu".into()),
                operator: TolerationOperator::Exists,
                value: None,
                effect: None,
            }],
            ..Placement::default()
        },
    );
    w.pending("web-0", 2000, GI);
    let plan = w.plan();
    let mut ups: Vec<_> = scale_ups(&plan).into_iter().map(|s| (s.group.clone(), s.new_desired)).collect();
    ups.sort();
    assert_eq!(ups, vec![("cpu".into(), 1), ("gpu".into(), 2)]);
}

#[test]
fn idle_gpus_are_waste_and_the_price_expander_counts_cost_per_pod() {
    let build = |expander| {
        let mut w = World::new();
        w.policy.scale_up.expander = expander;
        // Same cores and memory per GPU; the 8-GPU flavor is cheaper per GPU.
        for (name, gpus, price) in [("g8", 8, 48.0), ("g2", 2, 32.0)] {
            let g = w.group(name, 0, 4, 8000 * gpus, 32 * GI * gpus);
            g.price_per_hour = price;
            g.template.as_mut().unwrap().allocatable.set("nvidia.com/gpu", gpus);
        }
        for i in 0..4 {
            w.pending(&format!("train-{i}"), 4000, 8 * GI).requests.set("nvidia.com/gpu", 1);
        }
        scale_ups(&w.plan())[0].group.clone()
    };
    // Four one-GPU pods leave half of g8's GPUs idle, none of two g2 minions'.
    assert_eq!(build(Expander::LeastWaste), "g2");
    // One g8 hosts all four for 48/h (12 per pod); two g2 cost 64/h (16 per pod).
    assert_eq!(build(Expander::Price), "g8");
}

#[test]
fn expanders_choose_between_groups_that_fit() {
    let build = |expander| {
        let mut w = World::new();
        w.policy.scale_up.expander = expander;
        w.group("large", 0, 10, 16000, 64 * GI);
        w.group("small", 0, 10, 2000, 8 * GI).priority = 5;
        w.pending("web-0", 1500, 6 * GI);
        scale_ups(&w.plan())[0].group.clone()
    };
    assert_eq!(build(Expander::LeastWaste), "small");
    let mut w = World::new();
    w.policy.scale_up.expander = Expander::Priority;
    w.group("large", 0, 10, 16000, 64 * GI).priority = 10;
    w.group("small", 0, 10, 2000, 8 * GI);
    w.pending("web-0", 1500, 6 * GI);
    assert_eq!(scale_ups(&w.plan())[0].group, "large");
    assert_eq!(build(Expander::Priority), "small");
}

#[test]
fn limits_cap_growth_and_say_which_limit() {
    let mut w = World::new();
    w.group("workers", 0, 3, 4000, 16 * GI);
    w.minion("workers", "w-0");
    w.pod("filler-0", Some("w-0"), 4000, GI);
    for i in 0..5 {
        w.pending(&format!("web-{i}"), 4000, GI);
    }
    let plan = w.plan();
    assert_eq!(scale_ups(&plan)[0].new_desired, 3, "group max");
    let PodOutcome::NoScaleUp { groups, .. } = outcome(&plan, "web-4") else { panic!("{:?}", outcome(&plan, "web-4")) };
    assert_eq!(groups[0].rejection, GroupRejection::MaxSize { max: 3 });

    w.group_mut("workers").max_size = 100;
    w.policy.scale_up.max_nodes_per_scale_up = 2;
    assert_eq!(scale_ups(&w.plan())[0].new_desired, 3, "max-nodes-per-scale-up");

    w.policy.scale_up.max_nodes_per_scale_up = 100;
    w.policy.limits.max_nodes_total = Some(3);
    assert_eq!(scale_ups(&w.plan())[0].new_desired, 3, "max-nodes-total counts existing nodes");

    w.policy.limits.max_nodes_total = None;
    w.policy.limits.max_cores_total = Some(12);
    let plan = w.plan();
    assert_eq!(scale_ups(&plan)[0].new_desired, 3, "max-cores-total: 4 + 2 × 4");
    let PodOutcome::NoScaleUp { groups, .. } = outcome(&plan, "web-4") else { panic!() };
    assert_eq!(groups[0].rejection, GroupRejection::ClusterLimit { limit: Limit::MaxCoresTotal });

    w.policy.limits.max_cores_total = None;
    w.policy.limits.max_memory_total = Some(Quantity::parse("32Gi").unwrap());
    assert_eq!(scale_ups(&w.plan())[0].new_desired, 2, "max-memory-total");
}

#[test]
fn pods_no_group_can_host_never_grow_anything_and_say_why() {
    let mut w = World::new();
    w.group("workers", 0, 10, 4000, 16 * GI);
    w.pending("huge-0", 64000, GI);
    w.pending("picky-0", 100, MI);
    w.set_placement(
        "picky",
        Placement { node_selector: BTreeMap::from([("disk".into(), "ssd".into())]), ..Placement::default() },
    );
    let plan = w.plan();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    let PodOutcome::NoScaleUp { groups, scheduler } = outcome(&plan, "picky-0") else { panic!() };
    assert_eq!(groups[0].rejection, GroupRejection::DoesNotFit { filter: Unfit::NodeAffinity });
    assert_eq!(scheduler, "0/0 nodes are available.");
    let text = outcome(&plan, "huge-0").to_string();
    assert!(text.contains("group workers: a new minion wouldn't fit: Insufficient cpu"), "{text}");
    assert!(plan.explanation.alerts.iter().any(|a| matches!(a, Alert::PodsUnhelpable { pods: 2, .. })));
}

#[test]
fn a_backed_off_group_is_skipped_for_another() {
    let mut w = World::new();
    w.group("a", 0, 10, 4000, 16 * GI);
    w.group("b", 0, 10, 8000, 32 * GI);
    w.memory.backoff.insert("a".into(), crate::planner::memory::Backoff { failures: 1, until: w.ago(-300) });
    w.pending("web-0", 1000, GI);
    let plan = w.plan();
    assert_eq!(scale_ups(&plan)[0].group, "b");
    w.group_mut("b").stack_busy = true;
    let plan = w.plan();
    let PodOutcome::NoScaleUp { groups, .. } = outcome(&plan, "web-0") else { panic!() };
    assert!(matches!(groups[0].rejection, GroupRejection::BackedOff { .. }));
    assert_eq!(groups[1].rejection, GroupRejection::StackBusy);
}

#[test]
fn anti_affinity_spreads_replicas_one_per_new_minion() {
    let mut w = World::new();
    w.group("workers", 0, 10, 16000, 64 * GI);
    for i in 0..3 {
        w.pending(&format!("db-{i}"), 500, GI);
    }
    let selector = crate::model::LabelSelector {
        match_labels: BTreeMap::from([("app".into(), "db".into())]),
        ..Default::default()
    };
    let term = crate::model::PodAffinityTerm::in_namespace(selector, crate::model::HOSTNAME, "default");
    w.set_placement("db", Placement { pod_anti_affinity: vec![term], ..Placement::default() });
    assert_eq!(scale_ups(&w.plan())[0].new_desired, 3);
}

#[test]
fn same_inputs_same_plan() {
    let mut w = World::new();
    w.policy.scale_up.expander = Expander::Random;
    for g in ["a", "b", "c"] {
        w.group(g, 0, 10, 4000, 16 * GI);
    }
    for i in 0..20 {
        w.pending(&format!("web-{i}"), 100 * (i % 7 + 1), GI);
    }
    let first = w.plan();
    for _ in 0..3 {
        let again = w.plan();
        assert_eq!(again.actions, first.actions);
        assert_eq!(again.memory, first.memory);
        assert_eq!(again.explanation.to_string(), first.explanation.to_string());
    }
}

fn app_selector(app: &str) -> crate::model::LabelSelector {
    crate::model::LabelSelector { match_labels: BTreeMap::from([("app".into(), app.into())]), ..Default::default() }
}

/// One pod per node until there are three (`maxSkew: 1, minDomains: 3`): the
/// real scheduler keeps two of three replicas Pending next to a half-empty
/// minion, and the group grows by the two nodes they need — not zero because
/// they "fit" the existing minion.
#[test]
fn a_topology_spread_grows_the_group_by_the_nodes_it_needs() {
    let mut w = World::new();
    w.group("workers", 0, 10, 2000, 4 * GI);
    w.minion("workers", "m0");
    w.pod("spread-0", Some("m0"), 50, GI / 16);
    w.pending("spread-1", 50, GI / 16);
    w.pending("spread-2", 50, GI / 16);
    let spread = crate::model::TopologySpread::required(app_selector("spread"), crate::model::HOSTNAME, 1, 3);
    w.set_placement("spread", Placement { spread: vec![spread], ..Placement::default() });
    let plan = w.plan();
    assert_eq!(scale_ups(&plan).len(), 1, "{}", plan.explanation);
    assert_eq!(scale_ups(&plan)[0].new_desired, 3);
}

/// A pod that must run next to a cache on a full minion: a new minion has no
/// cache, so nothing grows (growing would add a node it still cannot use, then
/// remove it, again and again).
#[test]
fn required_pod_affinity_to_pods_on_a_full_node_grows_nothing() {
    let mut w = World::new();
    w.group("workers", 0, 10, 2000, 4 * GI);
    w.minion("workers", "m0");
    w.pod("cache-0", Some("m0"), 100, GI / 16);
    w.pod("filler-0", Some("m0"), 1800, GI / 16);
    w.pending("web-0", 300, GI / 16);
    let term = crate::model::PodAffinityTerm::in_namespace(app_selector("cache"), crate::model::HOSTNAME, "default");
    w.set_placement("web", Placement { pod_affinity: vec![term], ..Placement::default() });
    let plan = w.plan();
    assert!(scale_ups(&plan).is_empty(), "{}", plan.explanation);
    let text = plan.explanation.to_string();
    assert!(text.contains("didn't match pod affinity rules"), "{text}");
}

/// A replacement whose predecessor still terminates on a node it fits (a
/// recreate, a rollout): the room frees within the grace period, long before
/// a minion boots — no scale-up, and scale-down counts the pod there. A pod
/// stuck terminating past grace + `max-graceful-termination` frees nothing,
/// and a cordoned node takes no pod however empty it gets.
#[test]
fn a_replacement_waits_for_the_room_its_terminating_predecessor_frees() {
    let world = |deleted_ago: i64, cordoned: bool| {
        let mut w = World::new();
        w.group("workers", 1, 10, 4000, 16 * GI);
        w.minion("workers", "w-0").unschedulable = cordoned;
        w.pod("web-old", Some("w-0"), 3000, GI).deletion = Some(w.ago(deleted_ago));
        w.pending("web-new", 3000, GI);
        w
    };
    let plan = world(20, false).plan();
    assert!(scale_ups(&plan).is_empty(), "{:?}", plan.actions);
    assert_eq!(outcome(&plan, "web-new"), &PodOutcome::FitsOnceTerminated { node: "w-0".into(), terminating: 1 });

    // Stuck: deleted 30 min ago, past the default 10-min max-graceful-termination.
    let plan = world(30 * 60, false).plan();
    assert_eq!(scale_ups(&plan).len(), 1, "{:?}", plan.actions);
    assert_eq!(outcome(&plan, "web-new"), &PodOutcome::TriggersScaleUp { group: "workers".into() });

    let plan = world(20, true).plan();
    assert_eq!(scale_ups(&plan).len(), 1, "{:?}", plan.actions);
}
