//! Synthetic clusters for measurements: `nodes` minions of one group, 30
//! workload pods and 2 DaemonSet pods on each, one PodDisruptionBudget per
//! workload, and pending pods too big for the free space left (so a pass
//! must bin-pack them onto new minions). Seeded: the same size gives the
//! same cluster.

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use heatscaler_core::model::{
    GroupState, LabelSelector, Member, MemberStatus, Node, NodeShape, OwnerRef, Pdb, Placement, Pod, PodPhase,
    ResizeState, Resources, SignedDuration, Snapshot, Timestamp,
};
use heatscaler_core::planner::Memory;

pub const PODS_PER_NODE: usize = 30;
/// Workloads whose pods are the pending ones.
const BIG_WORKLOADS: usize = 20;
const GROUP: &str = "workers";
const GI: i64 = 1 << 30;

/// The instant every synthetic cluster is observed at.
pub fn now() -> Timestamp {
    "2024-01-01T12:00:00Z".parse().expect("valid timestamp")
}

/// What a measurement runs on.
pub struct Shape {
    pub nodes: usize,
    /// Share of workload pods that are pending (and need new minions).
    pub pending: f64,
    /// One node in ten carries only three pods (a scale-down candidate
    /// below the utilisation threshold).
    pub light_nodes: bool,
}

pub fn build(shape: &Shape) -> Snapshot {
    let mut rng = ChaCha8Rng::seed_from_u64(shape.nodes as u64);
    let now = now();
    let day_ago = now - SignedDuration::from_hours(24);
    let allocatable = Resources { cpu_milli: 16_000, memory: 64 * GI, pods: 110, ..Resources::default() };
    // Running workloads request 100m–700m CPU and 2–4 GiB per core; twenty
    // more (the pending ones) request 8–12 cores, more than nodes have left
    // (30 pods of 400m on average request 12 of 16 cores).
    let workloads = (shape.nodes / 10).max(10);
    let all = workloads + BIG_WORKLOADS;
    let placements: Vec<Arc<Placement>> = (0..all).map(|_| Arc::new(Placement::default())).collect();
    let sizes: Vec<(i64, i64)> = (0..all)
        .map(|w| {
            let cpu = if w < workloads { rng.random_range(1..=7) * 100 } else { rng.random_range(80..=120) * 100 };
            (cpu, cpu * rng.random_range(2..=4) * GI / 1000)
        })
        .collect();
    let ds_placement = Arc::new(Placement {
        tolerations: vec![heatscaler_core::model::Toleration {
            key: None,
            operator: heatscaler_core::model::TolerationOperator::Exists,
            value: None,
            effect: None,
        }],
        ..Placement::default()
    });
    let mut snap = Snapshot::default();
    let mut members = Vec::with_capacity(shape.nodes);
    let mut uid = 0usize;
    let mut pod = |snap: &mut Snapshot, w: Option<usize>, node: Option<&str>, requests: Resources| {
        uid += 1;
        let (namespace, owner, labels, placement) = match w {
            Some(w) => (
                format!("team-{}", w % 20),
                OwnerRef { kind: "ReplicaSet".into(), name: format!("w{w}"), uid: format!("rs-{w}") },
                BTreeMap::from([("app".to_string(), format!("w{w}"))]),
                placements[w].clone(),
            ),
            None => (
                "kube-system".to_string(),
                OwnerRef { kind: "DaemonSet".into(), name: "kube-proxy".into(), uid: "ds-proxy".into() },
                BTreeMap::from([("app".to_string(), "kube-proxy".to_string())]),
                ds_placement.clone(),
            ),
        };
        snap.pods.push(Pod {
            uid: format!("uid-{uid}").into(),
            name: format!("{}-{uid}", owner.name).into(),
            namespace: namespace.into(),
            labels: labels.into(),
            owner: Some(owner.into()),
            workload: None,
            node_name: node.map(str::to_string),
            phase: if node.is_some() { PodPhase::Running } else { PodPhase::Pending },
            requests,
            containers: Vec::new(),
            init_qos: None,
            placement,
            priority: 0,
            created: day_ago,
            unschedulable_since: node.is_none().then(|| now - SignedDuration::from_secs(30)),
            nominated_node: None,
            deletion: None,
            safe_to_evict: None,
            local_storage: false,
            mirror: false,
            resize: ResizeState::None,
        });
    };
    for n in 0..shape.nodes {
        let name = format!("{GROUP}-{n:05}");
        snap.nodes.push(Node {
            name: name.clone(),
            labels: BTreeMap::from([
                ("heatscaler.io/node-group".to_string(), GROUP.to_string()),
                ("kubernetes.io/hostname".to_string(), name.clone()),
            ]),
            annotations: BTreeMap::new(),
            taints: Vec::new(),
            allocatable: allocatable.clone(),
            unschedulable: false,
            ready: true,
            provider_id: Some(format!("openstack:///{name}")),
            created: day_ago,
        });
        members.push(Member {
            id: name.clone(),
            node_name: Some(name.clone()),
            status: MemberStatus::Complete,
            created: Some(day_ago),
        });
        pod(
            &mut snap,
            None,
            Some(&name),
            Resources { cpu_milli: 100, memory: GI / 8, pods: 1, ..Resources::default() },
        );
        pod(
            &mut snap,
            None,
            Some(&name),
            Resources { cpu_milli: 50, memory: GI / 16, pods: 1, ..Resources::default() },
        );
        let count = if shape.light_nodes && n % 10 == 0 { 3 } else { PODS_PER_NODE };
        for _ in 0..count {
            let w = rng.random_range(0..workloads);
            let (cpu, memory) = sizes[w];
            pod(&mut snap, Some(w), Some(&name), Resources { cpu_milli: cpu, memory, pods: 1, ..Resources::default() });
        }
    }
    let pending = (shape.pending * (shape.nodes * PODS_PER_NODE) as f64).round() as usize;
    for _ in 0..pending {
        let w = workloads + rng.random_range(0..BIG_WORKLOADS);
        let (cpu, memory) = sizes[w];
        pod(&mut snap, Some(w), None, Resources { cpu_milli: cpu, memory, pods: 1, ..Resources::default() });
    }
    for w in 0..all {
        snap.pdbs.push(Pdb {
            namespace: format!("team-{}", w % 20),
            name: format!("w{w}"),
            selector: LabelSelector {
                match_labels: BTreeMap::from([("app".to_string(), format!("w{w}"))]),
                ..LabelSelector::default()
            },
            disruptions_allowed: 1,
        });
    }
    snap.groups.push(GroupState {
        name: GROUP.into(),
        desired: shape.nodes as u32,
        min_size: 0,
        max_size: (shape.nodes * 2).max(10) as u32,
        members,
        stack_busy: false,
        template: Some(NodeShape {
            allocatable,
            labels: BTreeMap::from([("heatscaler.io/node-group".to_string(), GROUP.to_string())]),
            taints: Vec::new(),
        }),
        price_per_hour: 0.8,
        priority: 0,
    });
    snap
}

/// Planner memory in which every node has been unneeded for an hour, so a
/// scale-down pass goes all the way to starting removals.
pub fn memory_with_timers_expired(snap: &Snapshot) -> Memory {
    let hour_ago = now() - SignedDuration::from_hours(1);
    let mut memory = Memory::default();
    for n in &snap.nodes {
        memory.unneeded_since.insert(n.name.clone(), hour_ago);
    }
    memory
}
