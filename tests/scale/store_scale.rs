//! Memory of the compact cluster store at the design scale (5,000 nodes,
//! 150,000 pods, 1,000 PDBs, 3,000 ReplicaSets), fed object by object as the
//! watches feed it, and one planning pass over it. Prints the figures; ignored
//! by default (about a minute in a debug build):
//!
//! ```text
//! cargo test --test scale store_scale -- --ignored --nocapture
//! ```

use std::alloc::{GlobalAlloc, Layout};

/// The allocator the daemon binary uses.
static ALLOC_BASE: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use heatscaler_core::planner::{self, Input, Memory};
use heatscaler_daemon::config::Config;
use heatscaler_daemon::observe::{ClusterStore, Watched};
// As the watches decode them.
use heatscaler_daemon::observe::slim::{Node, Pod, PodDisruptionBudget, ReplicaSet};
use kube::runtime::watcher::Event;
use serde_json::json;

/// Counts live heap bytes, to tell what the store holds from what the
/// allocator keeps around (RSS).
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
/// The most `LIVE` has been since last reset: what a re-list holds at once.
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { ALLOC_BASE.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { ALLOC_BASE.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        grew(new_size);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { ALLOC_BASE.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const NODES: usize = 5_000;
const PODS: usize = 150_000;
const DEPLOYMENTS: usize = 3_000;
const PDBS: usize = 1_000;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

fn mib(b: u64) -> f64 {
    b as f64 / (1 << 20) as f64
}

fn node(i: usize) -> Node {
    serde_json::from_value(json!({
        "metadata": {"name": format!("minion-{i:05}"), "uid": format!("node-uid-{i}"),
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"kubernetes.io/hostname": format!("minion-{i:05}"), "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64", "node.kubernetes.io/instance-type": "m1.xlarge",
                "topology.kubernetes.io/zone": format!("az-{}", i % 3), "heatscaler.io/node-group": "workers"},
            "annotations": {"kubeadm.alpha.kubernetes.io/cri-socket": "unix:///run/containerd/containerd.sock",
                "node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
        "spec": {"providerID": format!("openstack:///{i:08}-aaaa-bbbb-cccc-dddddddddddd"), "podCIDR": "10.244.0.0/24"},
        "status": {"allocatable": {"cpu": "7910m", "memory": "30Gi", "pods": "110", "ephemeral-storage": "95Gi"},
            "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                "lastHeartbeatTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"}]},
    }))
    .unwrap()
}

fn pod(i: usize) -> Pod {
    let d = i % DEPLOYMENTS;
    serde_json::from_value(json!({
        "metadata": {"name": format!("app-{d}-7d9f8c6b5-{i:06}"), "namespace": format!("team-{}", d % 50),
            "uid": format!("{i:08}-1111-2222-3333-444444444444"), "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"app": format!("app-{d}"), "pod-template-hash": "7d9f8c6b5", "tier": "backend"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z", "prometheus.io/scrape": "true"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("app-{d}-7d9f8c6b5"),
                "uid": format!("rs-{d}"), "controller": true, "blockOwnerDeletion": true}]},
        "spec": {
            "nodeName": format!("minion-{:05}", i % NODES),
            "containers": [{"name": "app", "image": "registry.example.com/app:1.2.3",
                "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                {"name": "sidecar", "image": "registry.example.com/proxy:1.0",
                "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}}}],
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
            "priority": 0,
        },
        "status": {"phase": "Running", "podIP": "10.244.0.10",
            "conditions": [{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [
                {"name": "app", "image": "x", "imageID": "x", "ready": true, "restartCount": 0,
                 "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}}},
                {"name": "sidecar", "image": "x", "imageID": "x", "ready": true, "restartCount": 0}]},
    }))
    .unwrap()
}

/// Heap bytes the pods hold, by part (capacities; labels, placements, owner
/// references and workload names are shared between a workload's pods: only
/// a pod's own copy is counted, i.e. none when the store shared them).
fn breakdown(pods: &[heatscaler_core::model::Pod]) -> [(&'static str, usize); 7] {
    use heatscaler_core::model::{Container, Pod};
    let s = String::capacity;
    let o = |x: &Option<String>| x.as_ref().map_or(0, String::capacity);
    let mut parts =
        [("Pod", 0), ("uid", 0), ("namespace+name", 0), ("owner", 0), ("workload", 0), ("node", 0), ("containers", 0)];
    for p in pods {
        parts[0].1 += std::mem::size_of::<Pod>();
        let own = |n: &heatscaler_core::model::Name| {
            if heatscaler_core::model::Name::strong_count(n) == Some(1) { n.len() } else { 0 }
        };
        parts[1].1 += own(&p.uid);
        parts[2].1 += own(&p.namespace) + own(&p.name);
        parts[3].1 += p.owner.as_ref().filter(|o| std::sync::Arc::strong_count(o) == 1).map_or(0, |w| {
            std::mem::size_of::<heatscaler_core::model::OwnerRef>() + s(&w.kind) + s(&w.name) + s(&w.uid)
        });
        parts[4].1 += p.workload.as_ref().map_or(0, |w| own(&w.kind) + own(&w.namespace) + own(&w.name));
        parts[5].1 += o(&p.node_name) + o(&p.nominated_node);
        parts[6].1 += p.containers.capacity() * std::mem::size_of::<Container>()
            + p.containers.iter().map(|c| s(&c.name)).sum::<usize>();
    }
    parts
}

#[test]
#[ignore = "scale figures; run by hand"]
fn store_memory_and_a_pass_at_5000_nodes_and_150000_pods() {
    let before = rss_bytes();
    let live_before = LIVE.load(Ordering::Relaxed);
    let mut store = ClusterStore::new();
    let start = Instant::now();
    store.apply_node(Event::Init);
    for i in 0..NODES {
        store.apply_node(Event::InitApply(node(i)));
    }
    store.apply_node(Event::InitDone);
    store.apply_replica_set(Event::Init);
    for d in 0..DEPLOYMENTS {
        let rs: ReplicaSet = serde_json::from_value(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": format!("app-{d}-7d9f8c6b5"), "namespace": format!("team-{}", d % 50),
                "uid": format!("rs-{d}"),
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": format!("app-{d}"),
                    "uid": format!("d-{d}"), "controller": true}]},
            "spec": {"template": {"spec": {"containers": [{"name": "app",
                "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}}}]}}}}))
        .unwrap();
        store.apply_replica_set(Event::InitApply(rs));
    }
    store.apply_replica_set(Event::InitDone);
    store.apply_pdb(Event::Init);
    for p in 0..PDBS {
        let pdb: PodDisruptionBudget = serde_json::from_value(json!({
            "metadata": {"name": format!("app-{p}"), "namespace": format!("team-{}", p % 50), "generation": 1},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": format!("app-{p}")}}},
            "status": {"disruptionsAllowed": 1, "observedGeneration": 1, "currentHealthy": 50, "desiredHealthy": 49, "expectedPods": 50}}))
        .unwrap();
        store.apply_pdb(Event::InitApply(pdb));
    }
    store.apply_pdb(Event::InitDone);
    // The first list, then a tenth of the pods again as watch events (updates).
    store.apply_pod(Event::Init);
    for i in 0..PODS {
        store.apply_pod(Event::InitApply(pod(i)));
    }
    store.apply_pod(Event::InitDone);
    for i in (0..PODS).step_by(10) {
        store.apply_pod(Event::Apply(pod(i)));
    }
    let filled = start.elapsed();
    let after = rss_bytes();
    let live = LIVE.load(Ordering::Relaxed) - live_before;
    let snap = store.snapshot();
    assert_eq!((snap.nodes.len(), snap.pods.len(), snap.pdbs.len()), (NODES, PODS, PDBS));
    assert!(snap.pods.iter().all(|p| p.workload.is_some()));
    println!(
        "sizes: Pod {} bytes, Node {} bytes, Container {} bytes",
        std::mem::size_of::<heatscaler_core::model::Pod>(),
        std::mem::size_of::<heatscaler_core::model::Node>(),
        std::mem::size_of::<heatscaler_core::model::Container>()
    );
    println!(
        "STORE: {NODES} nodes, {PODS} pods, {PDBS} PDBs, {DEPLOYMENTS} ReplicaSets, {} shared placements: \
         RSS {:.0} MiB -> {:.0} MiB (+{:.0} MiB, {:.0} bytes per pod incl. nodes), live heap {:.0} MiB; \
         filled in {filled:?}",
        store.placements(),
        mib(before),
        mib(after),
        mib(after - before),
        (after - before) as f64 / PODS as f64,
        mib(live as u64),
    );

    let per_pod = |bytes: usize| bytes as f64 / PODS as f64;
    println!(
        "BYTES PER POD (heap capacities, before the allocator's rounding): {}",
        breakdown(&snap.pods)
            .iter()
            .map(|(part, b)| format!("{part} {:.0}", per_pod(*b)))
            .collect::<Vec<_>>()
            .join(", ")
    );

    // A re-list of every pod (a 410 Gone): updated in place, so it must not
    // hold a second copy of them at any moment.
    let steady = LIVE.load(Ordering::Relaxed);
    PEAK.store(steady, Ordering::Relaxed);
    store.apply_pod(Event::Init);
    for i in 0..PODS {
        store.apply_pod(Event::InitApply(pod(i)));
    }
    store.apply_pod(Event::InitDone);
    let (peak, after_relist) = (PEAK.load(Ordering::Relaxed), LIVE.load(Ordering::Relaxed));
    println!(
        "RELIST of {PODS} pods: live heap {:.0} MiB before, {:.0} MiB at most during it (+{:.1} MiB), {:.0} MiB after",
        mib((steady - live_before) as u64),
        mib((peak - live_before) as u64),
        mib((peak - steady) as u64),
        mib((after_relist - live_before) as u64),
    );

    // The first list of the pods into an empty store, as the daemon's first
    // sync makes it: growing as pages arrive, and with room made from the
    // list's count (`ClusterStore::expect`, what the watch does).
    for expect in [false, true] {
        let base = LIVE.load(Ordering::Relaxed);
        PEAK.store(base, Ordering::Relaxed);
        let mut fresh = ClusterStore::new();
        if expect {
            fresh.expect(Watched::Pods, PODS, false);
        }
        fresh.apply_pod(Event::Init);
        for i in 0..PODS {
            fresh.apply_pod(Event::InitApply(pod(i)));
        }
        fresh.apply_pod(Event::InitDone);
        let (peak, held) = (PEAK.load(Ordering::Relaxed), LIVE.load(Ordering::Relaxed));
        println!(
            "FIRST LIST of {PODS} pods into an empty store, {}: live heap {:.0} MiB after, {:.0} MiB at most during it (+{:.1} MiB)",
            if expect { "room made from the list's count" } else { "grown as pages arrive" },
            mib((held - base) as u64),
            mib((peak - base) as u64),
            mib((peak - held) as u64),
        );
    }

    let config: Config = heatscaler_daemon::config::parse("{}", "empty", None).unwrap();
    let policy = config.planner_policy();
    let start = Instant::now();
    let plan = planner::plan(
        &Input {
            snapshot: store.snapshot(),
            usage: None,
            memory: &Memory::default(),
            now: "2026-01-01T01:00:00Z".parse().unwrap(),
            observations: None,
        },
        &policy,
    );
    println!(
        "PASS: {:?} for one plan over the store ({} actions; no groups configured); RSS after {:.0} MiB",
        start.elapsed(),
        plan.actions.len(),
        mib(rss_bytes())
    );
}
