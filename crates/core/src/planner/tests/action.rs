//! The facts an [`Action`] answers about itself: kind, target, group and the
//! one line that describes it, for every kind.

use std::time::Duration;

use std::collections::BTreeMap;

use crate::model::{HOSTNAME, LabelSelector, PodAffinityTerm, PodKey, WorkloadRef};
use crate::planner::action::{
    Action, ActionKind, ContainerResize, DeleteNode, EvictPods, Eviction, MarkDrained, MemberRemoval, RecreatePod,
    RemovalCause, RemoveMembers, RemovePreferredAffinity, ResizePod, RollBackRemoval, ScaleUp, SetPreferredAffinity,
    StartRemoval, Target,
};
use crate::planner::explain::{CpuMemory, RollbackReason, UpdateReason};
use crate::planner::protocol::{Phase, RemovalKind, RemovalRecord};
use crate::policy::Expander;

use super::{MI, t0};

fn pod(name: &str) -> PodKey {
    PodKey { namespace: "shop".into(), name: name.into() }
}

fn record() -> RemovalRecord {
    RemovalRecord {
        phase: Phase::Draining,
        kind: RemovalKind::Drain,
        started: t0(),
        drained: None,
        requested: None,
        group: "workers".into(),
        member: "m-3".into(),
        cordoned_before: false,
    }
}

fn deployment(name: &str) -> WorkloadRef {
    WorkloadRef { kind: "Deployment".into(), namespace: "shop".into(), name: name.into() }
}

fn near_cart() -> PodAffinityTerm {
    let selector =
        LabelSelector { match_labels: BTreeMap::from([("app".into(), "cart".into())]), ..Default::default() };
    PodAffinityTerm::in_namespace(selector, HOSTNAME, "shop")
}

fn resize() -> Vec<ContainerResize> {
    vec![ContainerResize {
        container: "app".into(),
        from: CpuMemory { cpu_milli: 100, memory: 128 * MI },
        requests: CpuMemory { cpu_milli: 250, memory: 256 * MI },
        limits: CpuMemory::default(),
    }]
}

/// One action of each kind, in `ActionKind::ALL` order, with the line it describes itself by.
fn one_of_each() -> Vec<(Action, &'static str)> {
    let oom = UpdateReason::OomKilled { container: "app".into() };
    vec![
        (
            Action::ScaleUp(ScaleUp {
                group: "workers".into(),
                expected_desired: 2,
                new_desired: 4,
                pods: vec![pod("web-1")],
                pod_count: 7,
                expander: Expander::LeastWaste,
            }),
            "grow node group workers from 2 to 4 for 7 pending pod(s)",
        ),
        (
            Action::RemoveMembers(RemoveMembers {
                group: "workers".into(),
                expected_desired: 4,
                new_desired: 2,
                members: ["m-1", "m-3"]
                    .map(|m| MemberRemoval { member: m.into(), node: None, cause: RemovalCause::NodeGone })
                    .to_vec(),
                requested_at: t0(),
            }),
            "remove member(s) m-1, m-3 from node group workers (4 -> 2)",
        ),
        (
            Action::StartRemoval(StartRemoval {
                node: "w-3".into(),
                record: record(),
                utilization: 0.2,
                unneeded_since: t0(),
            }),
            "taint and cordon node w-3 to remove member workers/m-3 (drain removal)",
        ),
        (
            Action::EvictPods(EvictPods {
                node: "w-3".into(),
                pods: vec![
                    Eviction { pod: pod("web-1"), uid: "u1".into() },
                    Eviction { pod: pod("web-2"), uid: "u2".into() },
                ],
                max_grace: Duration::from_secs(30),
            }),
            "evict 2 pod(s) from node w-3: shop/web-1, shop/web-2",
        ),
        (Action::MarkDrained(MarkDrained { node: "w-3".into(), record: record() }), "mark node w-3 drained"),
        (
            Action::RollBackRemoval(RollBackRemoval {
                node: "w-3".into(),
                uncordon: true,
                reason: RollbackReason::NeededAgain { pods: 2 },
            }),
            "give node w-3 back and uncordon it (needed again by 2 pending pod(s))",
        ),
        (
            Action::DeleteNode(DeleteNode { node: "w-3".into(), group: "workers".into(), member: "m-3".into() }),
            "delete node w-3 (member workers/m-3 is gone from Heat)",
        ),
        (
            Action::ResizePod(ResizePod {
                pod: pod("web-1"),
                uid: "u1".into(),
                node: "w-1".into(),
                vpa: "shop/web".into(),
                containers: resize(),
                reason: oom.clone(),
            }),
            "resize pod shop/web-1 in place (app was OOM-killed): app cpu 100m, memory 128Mi -> cpu 250m, memory 256Mi",
        ),
        (
            Action::RecreatePod(RecreatePod {
                pod: pod("web-2"),
                uid: "u2".into(),
                node: "w-1".into(),
                vpa: "shop/web".into(),
                containers: resize(),
                reason: oom,
                recommendation_applied: true,
            }),
            "evict pod shop/web-2 to be recreated (app was OOM-killed): app cpu 100m, memory 128Mi -> cpu 250m, memory 256Mi",
        ),
        (
            Action::SetPreferredAffinity(SetPreferredAffinity {
                workload: deployment("frontend"),
                server: deployment("cart"),
                term: near_cart(),
                weight: 50,
                subject: "co-locate Deployment/shop/frontend with Deployment/shop/cart".into(),
                reason: "200 req/s".into(),
            }),
            "add a preferred pod affinity (weight 50) towards Deployment/shop/cart to the template of Deployment/shop/frontend, rolled out within its PDB: 200 req/s",
        ),
        (
            Action::RemovePreferredAffinity(RemovePreferredAffinity {
                workload: deployment("frontend"),
                server: deployment("cart"),
                term: near_cart(),
                subject: "co-locate Deployment/shop/frontend with Deployment/shop/cart".into(),
                reason: "withdrawn".into(),
            }),
            "remove the preferred pod affinity towards Deployment/shop/cart from the template of Deployment/shop/frontend, rolled out within its PDB: withdrawn",
        ),
    ]
}

#[test]
fn kind_is_the_serialised_tag_for_every_kind() {
    let actions = one_of_each();
    let kinds: Vec<ActionKind> = actions.iter().map(|(a, _)| a.kind()).collect();
    assert_eq!(kinds, ActionKind::ALL);
    for (action, _) in &actions {
        let json = serde_json::to_value(action).unwrap();
        assert_eq!(json["action"], action.kind().as_str(), "{action:?}");
        assert_eq!(serde_json::to_value(action.kind()).unwrap(), action.kind().as_str());
        assert_eq!(action.kind().to_string(), action.kind().as_str());
    }
}

#[test]
fn every_action_describes_itself_in_one_line() {
    for (action, line) in one_of_each() {
        assert_eq!(action.to_string(), line);
    }
}

#[test]
fn target_subject_and_group() {
    let actions = one_of_each();
    let seen: Vec<(String, &str, Option<&str>)> = actions
        .iter()
        .map(|(a, _)| {
            let target = match a.target() {
                Target::Group(g) => format!("group {g}"),
                Target::Node(n) => format!("node {n}"),
                Target::Pod(p) => format!("pod {p}"),
                Target::Workload(w) => format!("workload {w}"),
            };
            (target, a.subject(), a.group())
        })
        .collect();
    let expected: Vec<(String, &str, Option<&str>)> = vec![
        ("group workers".into(), "workers", Some("workers")),
        ("group workers".into(), "workers", Some("workers")),
        ("node w-3".into(), "w-3", Some("workers")),
        ("node w-3".into(), "w-3", None),
        ("node w-3".into(), "w-3", Some("workers")),
        ("node w-3".into(), "w-3", None),
        ("node w-3".into(), "w-3", Some("workers")),
        ("pod shop/web-1".into(), "web-1", None),
        ("pod shop/web-2".into(), "web-2", None),
        ("workload Deployment/shop/frontend".into(), "frontend", None),
        ("workload Deployment/shop/frontend".into(), "frontend", None),
    ];
    assert_eq!(seen, expected);
}
