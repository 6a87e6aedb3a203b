//! heatscaler's design-scale cluster, shared by the scale runs that measure
//! the daemon against kubesim and kubesim itself: 5,000 nodes, 150,000 pods
//! (two containers each, bound, 50 per ReplicaSet), 3,000 ReplicaSets and
//! 1,000 PDBs in 50 namespaces, times `scale`, loaded into an in-process
//! kubesim.

use std::time::{Duration, Instant};

use super::nodes::NodeSpec;
use super::{KubeSim, KubeSimHandle};
use crate::options::Options;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde_json::json;

/// What [`fill`] created, and how long it took.
pub struct Cluster {
    pub nodes: usize,
    pub pods: usize,
    pub replica_sets: usize,
    pub pdbs: usize,
    pub filled: Duration,
}

/// Starts a kubesim and fills it; `scale` 1.0 is 5,000 nodes.
pub async fn start(scale: f64) -> (KubeSimHandle, Cluster) {
    let nodes = (5_000.0 * scale) as usize;
    let replica_sets = (3_000.0 * scale) as usize;
    let per_rs = 50;
    let pdbs = (1_000.0 * scale) as usize;
    // On the shared machine kubesim (9 GB at 5,000 nodes) served the 300
    // pages of pods slower than etcd's 5 min compaction, and the daemon's
    // list restarted on `410 Expired` until the harness gave up: memory is
    // what this measures, so the tokens last longer.
    let sim = KubeSim::start(Options {
        record_events: false,
        continue_token_lifetime: Duration::from_secs(3600),
        ..Options::fast()
    })
    .await
    .unwrap();
    let start = Instant::now();
    for i in 0..nodes {
        sim.add_node(
            NodeSpec::new(&format!("minion-{i:05}"))
                .cpu("8")
                .memory("32Gi")
                .label("heatscaler.io/node-group", "workers")
                .label("topology.kubernetes.io/zone", &format!("az-{}", i % 3))
                .provider_id(&format!("openstack:///{i:08}-aaaa-bbbb-cccc-dddddddddddd")),
        )
        .unwrap();
    }
    let mut pod_n = 0;
    for r in 0..replica_sets {
        let ns = format!("team-{}", r % 50);
        if r < 50 {
            sim.create(
                &serde_json::from_value::<k8s_openapi::api::core::v1::Namespace>(json!({"metadata": {"name": ns}}))
                    .unwrap(),
            )
            .unwrap();
        }
        let labels = json!({"app": format!("app-{r}"), "pod-template-hash": "7d9f8c6b5", "tier": "backend"});
        let template =
            json!({"metadata": {"labels": labels}, "spec": {"containers": [{"name": "app", "image": "app:1"}]}});
        let rs: ReplicaSet = sim
            .create(
                &serde_json::from_value::<ReplicaSet>(json!({
                    "metadata": {"name": format!("app-{r}-7d9f8c6b5"), "namespace": ns, "labels": labels},
                    "spec": {"replicas": per_rs, "selector": {"matchLabels": labels}, "template": template},
                }))
                .unwrap(),
            )
            .unwrap();
        let uid = rs.metadata.uid.unwrap();
        for k in 0..per_rs {
            let pod: Pod = serde_json::from_value(json!({
                "metadata": {"name": format!("app-{r}-7d9f8c6b5-{k:03}"), "namespace": ns, "labels": labels,
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("app-{r}-7d9f8c6b5"),
                        "uid": uid, "controller": true}]},
                "spec": {
                    "nodeName": format!("minion-{:05}", pod_n % nodes),
                    "containers": [
                        {"name": "app", "image": "registry.example.com/app:1.2.3",
                         "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
                         "ports": [{"containerPort": 8080}], "env": [{"name": "A", "value": "1"}]},
                        {"name": "proxy", "image": "registry.example.com/proxy:1",
                         "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}}}],
                },
            }))
            .unwrap();
            sim.create(&pod).unwrap();
            pod_n += 1;
        }
    }
    for p in 0..pdbs {
        let ns = format!("team-{}", p % 50);
        let pdb: PodDisruptionBudget = serde_json::from_value(json!({
            "metadata": {"name": format!("app-{p}"), "namespace": ns},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": format!("app-{p}")}}},
        }))
        .unwrap();
        sim.create(&pdb).unwrap();
    }
    (sim, Cluster { nodes, pods: pod_n, replica_sets, pdbs, filled: start.elapsed() })
}

/// A memory figure (KiB) of a process from `/proc/<pid>/status` — `VmRSS:`,
/// `VmHWM:` — for the scale runs' reports; `pid` may be `"self"`. Both the
/// daemon's scale run and kubesim's own read it, so it lives beside the
/// cluster they measure.
pub fn status_kib(pid: impl std::fmt::Display, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}
