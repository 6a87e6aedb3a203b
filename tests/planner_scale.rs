//! Timing of one planner pass on a 10,000-node, 300,000-pod cluster. Ignored
//! by default (it measures, it does not assert a bound); run with
//! `cargo test --release --test planner_scale -- --ignored --nocapture`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use heatscaler::model::{
    GroupState, LabelSelector, Member, MemberStatus, Node, NodeShape, OwnerRef, Pdb, Placement, Pod, PodPhase,
    ResizeState, Resources, Snapshot, Timestamp,
};
use heatscaler::planner::{Input, Memory, Policy, plan};

const NODES: usize = 10_000;
const PODS_PER_NODE: usize = 31;
const WORKLOADS: usize = 1_000;

fn pod(i: usize, workload: usize, placement: &Arc<Placement>, node: Option<String>, cpu: i64, now: Timestamp) -> Pod {
    Pod {
        uid: format!("uid-{i}"),
        namespace: format!("ns-{}", workload % 50),
        name: format!("w{workload}-{i}"),
        labels: std::sync::Arc::new(BTreeMap::from([("app".to_string(), format!("w{workload}"))])),
        owner: Some(OwnerRef {
            kind: "ReplicaSet".into(),
            name: format!("w{workload}"),
            uid: format!("rs-{workload}"),
        }),
        workload: None,
        phase: if node.is_some() { PodPhase::Running } else { PodPhase::Pending },
        unschedulable_since: node.is_none().then_some(now),
        node_name: node,
        requests: Resources { cpu_milli: cpu, memory: cpu << 21, pods: 1, ..Resources::default() },
        containers: vec![],
        placement: placement.clone(),
        priority: 0,
        created: now,
        nominated_node: None,
        deletion: None,
        safe_to_evict: None,
        local_storage: false,
        mirror: false,
        resize: ResizeState::None,
    }
}

fn cluster(now: Timestamp) -> Snapshot {
    let alloc = Resources { cpu_milli: 16_000, memory: 64 << 30, pods: 110, ..Resources::default() };
    let placements: Vec<Arc<Placement>> = (0..WORKLOADS).map(|_| Arc::new(Placement::default())).collect();
    let mut snap = Snapshot::default();
    let mut members = Vec::new();
    let mut i = 0;
    for n in 0..NODES {
        let name = format!("node-{n:05}");
        snap.nodes.push(Node {
            name: name.clone(),
            labels: BTreeMap::from([("heatscaler.io/node-group".to_string(), "workers".to_string())]),
            annotations: BTreeMap::new(),
            taints: vec![],
            allocatable: alloc.clone(),
            unschedulable: false,
            ready: true,
            provider_id: None,
            created: now - jiff::SignedDuration::from_hours(24),
        });
        members.push(Member {
            id: name.clone(),
            node_name: Some(name.clone()),
            status: MemberStatus::Complete,
            created: Some(now - jiff::SignedDuration::from_hours(24)),
        });
        // One node in twenty is light: a scale-down candidate.
        let pods = if n % 20 == 0 { 3 } else { PODS_PER_NODE };
        for k in 0..pods {
            let w = (n * 7 + k) % WORKLOADS;
            snap.pods.push(pod(i, w, &placements[w], Some(name.clone()), 100 + (w as i64 % 5) * 100, now));
            i += 1;
        }
    }
    for k in 0..2_000 {
        let w = k % 10;
        snap.pods.push(pod(i, w, &placements[w], None, 15_000, now));
        i += 1;
    }
    for w in 0..WORKLOADS {
        snap.pdbs.push(Pdb {
            namespace: format!("ns-{}", w % 50),
            name: format!("w{w}"),
            selector: LabelSelector {
                match_labels: BTreeMap::from([("app".into(), format!("w{w}"))]),
                ..Default::default()
            },
            disruptions_allowed: 1,
        });
    }
    snap.groups.push(GroupState {
        name: "workers".into(),
        desired: NODES as u32,
        min_size: 0,
        max_size: 20_000,
        members,
        stack_busy: false,
        template: Some(NodeShape { allocatable: alloc, ..NodeShape::default() }),
        price_per_hour: 1.0,
        priority: 0,
    });
    snap
}

#[test]
#[ignore = "timing; run explicitly with --release"]
fn one_pass_on_ten_thousand_nodes() {
    let now: Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
    let snap = cluster(now);
    println!("snapshot: {} nodes, {} pods, {} PDBs", snap.nodes.len(), snap.pods.len(), snap.pdbs.len());
    let policy = Policy::default();
    let mut memory = Memory::default();
    for pass in 0..3 {
        // The third pass comes after unneeded-time: removals start.
        let now = if pass == 2 { now + jiff::SignedDuration::from_mins(11) } else { now };
        let started = Instant::now();
        let p = plan(&Input { snapshot: &snap, usage: None, memory: &memory, now }, &policy);
        let took = started.elapsed();
        println!(
            "pass {pass}: {:.0} ms, {} actions, {} pods and {} nodes explained",
            took.as_secs_f64() * 1000.0,
            p.actions.len(),
            p.explanation.pods.len(),
            p.explanation.nodes.len()
        );
        memory = p.memory;
    }
    // Scale-down only: no pending pods; the light nodes become unneeded, then removals start.
    let mut quiet = snap;
    quiet.pods.retain(|p| p.node_name.is_some());
    let mut memory = Memory::default();
    for pass in 0..2 {
        let now = now + jiff::SignedDuration::from_mins(11 * pass);
        let started = Instant::now();
        let p = plan(&Input { snapshot: &quiet, usage: None, memory: &memory, now }, &policy);
        println!(
            "scale-down pass {pass}: {:.0} ms, {} actions, {} nodes unneeded",
            started.elapsed().as_secs_f64() * 1000.0,
            p.actions.len(),
            p.memory.unneeded_since.len()
        );
        memory = p.memory;
    }
}
