//! Timing of planner passes when every pod of a 10,000-node, 310,000-pod
//! cluster is under a VPA object (1,000 workloads, InPlaceOrRecreate).
//! Ignored by default (it measures, it does not assert a bound); run with
//! `cargo test --release --test scale resize_scale -- --ignored --nocapture`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use heatscaler_core::model::{
    Container, ContainerRecommendation, Node, OwnerRef, Placement, Pod, PodPhase, Resources, Snapshot, Timestamp,
    UpdateMode, VerticalScaling, WorkloadRef, test_support,
};
use heatscaler_core::planner::action::Action;
use heatscaler_core::planner::{Input, Memory, Policy, plan};

const NODES: usize = 10_000;
const PODS_PER_NODE: usize = 31;
const WORKLOADS: usize = 1_000;
const MI: i64 = 1 << 20;

fn workload(w: usize) -> WorkloadRef {
    WorkloadRef { kind: "Deployment".into(), namespace: format!("ns-{}", w % 50).into(), name: format!("w{w}").into() }
}

fn cluster(now: Timestamp) -> Snapshot {
    let alloc = Resources { cpu_milli: 16_000, memory: 64 << 30, pods: 110, ..Resources::default() };
    let placement = Arc::new(Placement::default());
    let mut snap = Snapshot::default();
    let mut i = 0;
    for n in 0..NODES {
        let name = format!("node-{n:05}");
        snap.nodes.push(Node { created: now, ..test_support::node(&name, alloc.clone()) });
        for k in 0..PODS_PER_NODE {
            let w = (n * 7 + k) % WORKLOADS;
            // Requests from 100m to 500m against targets of 300m: some grow, some shrink, some stay.
            let cpu = 100 + (i as i64 % 5) * 100;
            let container = Container {
                limits: Resources::new(2 * cpu, 512 * MI),
                allocated: Some(Resources::new(cpu, 256 * MI)),
                ..test_support::container("app", Resources::new(cpu, 256 * MI))
            };
            snap.pods.push(Pod {
                uid: format!("uid-{i}").into(),
                namespace: format!("ns-{}", w % 50).into(),
                labels: BTreeMap::from([("app".to_string(), format!("w{w}"))]).into(),
                owner: Some(
                    OwnerRef { kind: "ReplicaSet".into(), name: format!("w{w}"), uid: format!("rs-{w}") }.into(),
                ),
                workload: Some(workload(w)),
                node_name: Some(name.clone()),
                phase: PodPhase::Running,
                requests: Resources { cpu_milli: cpu, memory: 256 * MI, pods: 1, ..Resources::default() },
                containers: vec![container],
                placement: placement.clone(),
                created: now - jiff::SignedDuration::from_hours(1),
                ..test_support::pod(&format!("w{w}-{i}"))
            });
            i += 1;
        }
    }
    let r = |cpu| Resources::new(cpu, 256 * MI);
    for w in 0..WORKLOADS {
        snap.vertical.push(VerticalScaling {
            namespace: format!("ns-{}", w % 50),
            name: format!("w{w}"),
            workload: workload(w),
            update_mode: UpdateMode::InPlaceOrRecreate,
            min_replicas: None,
            resource_policy: Default::default(),
            eviction_requirements: vec![],
            replicas: None,
            recommendations: vec![ContainerRecommendation {
                container_name: "app".into(),
                target: r(300),
                lower_bound: r(200),
                upper_bound: r(400),
                uncapped_target: r(300),
                capped: vec![],
            }],
        });
    }
    snap
}

/// CPU time this thread has run (`/proc/thread-self/schedstat`, ns): on the
/// shared 2-core machine wall time is an upper bound, CPU time comparable.
fn thread_cpu() -> std::time::Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    std::time::Duration::from_nanos(stat.split_whitespace().next().unwrap().parse().unwrap())
}

#[test]
#[ignore = "timing; run explicitly with --release"]
fn passes_with_every_pod_under_a_vpa() {
    let now: Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
    let snap = cluster(now);
    println!("snapshot: {} nodes, {} pods, {} VPA objects", snap.nodes.len(), snap.pods.len(), snap.vertical.len());
    let policy = Policy::default();
    let without = Snapshot { vertical: Vec::new(), ..snap.clone() };
    let (started, cpu) = (Instant::now(), thread_cpu());
    plan(&Input { snapshot: &without, usage: None, memory: &Memory::default(), now, observations: None }, &policy);
    println!(
        "the same cluster without VPA objects: {:.0} ms wall, {:.0} ms CPU",
        started.elapsed().as_secs_f64() * 1000.0,
        (thread_cpu() - cpu).as_secs_f64() * 1000.0
    );
    let mut memory = Memory::default();
    for pass in 0..2 {
        let now = now + jiff::SignedDuration::from_mins(pass);
        let (started, cpu) = (Instant::now(), thread_cpu());
        let p = plan(&Input { snapshot: &snap, usage: None, memory: &memory, now, observations: None }, &policy);
        let (wall, cpu) = (started.elapsed(), thread_cpu() - cpu);
        let resizes = p.actions.iter().filter(|a| matches!(a, Action::ResizePod(_))).count();
        println!(
            "pass {pass}: {:.0} ms wall, {:.0} ms CPU, {resizes} resizes, {} pods listed in the explanation, {} counted",
            wall.as_secs_f64() * 1000.0,
            cpu.as_secs_f64() * 1000.0,
            p.explanation.resizes.len(),
            p.explanation.resize_counts.iter().map(|c| c.pods).sum::<u32>()
        );
        // Outside the timing: a digest of every decision, so a change made
        // for speed can show that the pass decides exactly as before.
        println!("pass {pass}: decisions digest {:016x}", digest(&p));
        memory = p.memory;
    }
}

/// The actions, the pods' resize explanations and the per-workload counts,
/// hashed from their debug form (SipHash with fixed keys: the same plan gives
/// the same digest in every run and build).
fn digest(p: &heatscaler_core::planner::Plan) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for a in &p.actions {
        format!("{a:?}").hash(&mut h);
    }
    for e in &p.explanation.resizes {
        format!("{e:?}").hash(&mut h);
    }
    for c in &p.explanation.resize_counts {
        format!("{c:?}").hash(&mut h);
    }
    h.finish()
}
