//! Scale-up where the real kube-scheduler decides what fits (kubesim's
//! scheduler binds these pods; a real one keeps them Pending): an extended
//! resource only one group offers, required pod affinity, and a
//! `DoNotSchedule` topology spread.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use serde_json::{Value, json};

use crate::e2e::{HEAT, KUBE, deployment};
use crate::harness::{self, GROUP, GroupSpec, NS, Shape, Spec, World, members, node_name, node_of};

const GPU: &str = "nvidia.com/gpu";

/// A Deployment of `replicas` pods of `app`, requesting `cpu`, with `extra`
/// merged into the pod spec (affinity, tolerations, topology spread...) and
/// `limits` (extended resources are asked for as limits).
fn workload(name: &str, replicas: i32, cpu: &str, limits: Value, extra: Value) -> Deployment {
    let mut spec = json!({
        "terminationGracePeriodSeconds": 2,
        "containers": [{"name": "app", "image": "registry.example/app:1",
                        "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}],
    });
    if limits.as_object().is_some_and(|l| !l.is_empty()) {
        spec["containers"][0]["resources"]["limits"] = limits;
    }
    for (k, v) in extra.as_object().into_iter().flatten() {
        spec[k] = v.clone();
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": spec},
        },
    }))
    .unwrap()
}

fn pending_message(pods: &[k8s_openapi::api::core::v1::Pod]) -> String {
    pods.iter()
        .filter_map(|p| p.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "PodScheduled").cloned())
        .filter(|c| c.status == "False")
        .filter_map(|c| c.message)
        .next()
        .unwrap_or_default()
}

/// A GPU pod and CPU pods pending together: the GPU group (empty, tainted,
/// scaled from zero on its node template) grows for the GPU pod only, the
/// CPU group for the others, in one pass; when the GPU job goes, its minion
/// goes too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gpu_pod_grows_only_the_group_that_can_host_it() {
    let _slot = harness::slot().await;
    let mut gpu_shape = Shape::new("4", "16Gi");
    gpu_shape.resources.push((GPU, "1"));
    gpu_shape.labels.insert("accelerator".into(), "gpu".into());
    gpu_shape.taints.push((GPU, "present", "NoSchedule"));
    let gpu_group = GroupSpec { name: "gpu", initial: 0, min: 0, max: 2, shape: gpu_shape, priority: 0 };
    let w = World::new(Spec { initial: 1, min: 1, more_groups: vec![gpu_group], ..Spec::default() }).await;
    let mut daemon = w.ready_daemon().await;

    // One GPU pod (tolerating the GPU nodes' taint) and 3 CPU pods of 900m:
    // 2 fit on workers-0, 1 waits.
    let toleration = json!({"tolerations": [{"key": GPU, "operator": "Exists", "effect": "NoSchedule"}]});
    w.create(&workload("trainer", 1, "500m", json!({GPU: "1"}), toleration)).await;
    w.create(&deployment("burst", 3, "900m")).await;
    w.wait("the GPU pod unschedulable for lack of GPUs", KUBE, async || {
        pending_message(&w.pods("trainer").await).contains("Insufficient nvidia.com/gpu")
    })
    .await;

    let gpu =
        w.wait_heat_of("gpu", "one GPU minion", HEAT, |s| s.desired == 1 && s.members.len() == 1 && !s.busy).await;
    let workers = w.wait_heat("two CPU minions", HEAT, |s| s.desired == 2 && s.members.len() == 2 && !s.busy).await;
    let gpu_node = node_name("gpu", &gpu.members[0].name);
    w.wait("the GPU pod running on the GPU minion", KUBE, async || w.running_on("trainer", &gpu_node).await == 1).await;
    w.wait("every CPU pod running", KUBE, async || w.running("burst").await.len() == 3).await;
    let burst = w.running("burst").await;
    assert!(burst.iter().all(|p| node_of(p) != Some(gpu_node.as_str())), "CPU pods kept off the GPU minion");
    assert_eq!(members(&workers), ["0", "1"]);
    let ups = w.hooks.with_reason("ScaledUpGroup");
    let grown: Vec<(String, String, String)> = ups
        .iter()
        .map(|(_, e)| {
            let f = |k: &str| e["fields"][k].as_str().unwrap_or_default().to_string();
            (e["group"].as_str().unwrap_or_default().to_string(), f("from_size"), f("to_size"))
        })
        .collect();
    assert_eq!(grown.len(), 2, "one growth per group: {grown:?}");
    assert!(grown.contains(&("gpu".into(), "0".into(), "1".into())), "{grown:?}");
    assert!(grown.contains(&(GROUP.into(), "1".into(), "2".into())), "{grown:?}");

    // The job is done: its GPU minion is removed (the group back to zero).
    w.set_replicas("trainer", 0).await;
    w.wait_heat_of("gpu", "the GPU group back to zero", HEAT, |s| s.desired == 0 && s.members.is_empty() && !s.busy)
        .await;
    w.wait("the GPU minion's node deleted", KUBE, async || w.node(&gpu_node).await.is_none()).await;
    assert_eq!(w.heat().await.desired, 2, "the CPU minions still run the burst");
    let (status, _) = daemon.terminate(Duration::from_secs(15)).await;
    assert!(status.success());
}

/// Pods the real scheduler keeps Pending for their placement rules, not their
/// size: a topology spread over nodes (`maxSkew: 1`, `minDomains: 3`, so one
/// pod per node until there are three) grows the group by exactly the nodes it
/// needs; a pod whose required affinity names pods on a full node cannot be
/// helped by any new minion, so none is added for it — and nothing flaps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_with_required_affinity_or_topology_spread_grow_the_group_as_the_scheduler_needs() {
    let _slot = harness::slot().await;
    let w = World::new(Spec { initial: 1, min: 1, max: 5, ..Spec::default() }).await;
    let m0 = node_name(GROUP, "0");
    // workers-0 (2 CPUs): a cache and a filler leave 400m free.
    w.create(&workload("cache", 1, "100m", json!({}), json!({}))).await;
    w.create(&workload("filler", 1, "1500m", json!({}), json!({}))).await;
    w.wait("cache and filler running", KUBE, async || {
        w.running_on("cache", &m0).await == 1 && w.running_on("filler", &m0).await == 1
    })
    .await;
    let mut daemon = w.ready_daemon().await;

    // web must share a node with the cache: one of its two 300m pods fits next
    // to it, the other can go nowhere — a new minion has no cache.
    let with_cache = json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
        "labelSelector": {"matchLabels": {"app": "cache"}}, "topologyKey": "kubernetes.io/hostname"}]}}});
    w.create(&workload("web", 2, "300m", json!({}), with_cache)).await;
    // spread: 3 pods of 50m, at most one more on a node than on the emptiest of
    // at least 3 nodes: one on workers-0, two wait for two more nodes.
    let spread = json!({"topologySpreadConstraints": [{
        "maxSkew": 1, "minDomains": 3, "topologyKey": "kubernetes.io/hostname",
        "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "spread"}}}]});
    w.create(&workload("spread", 3, "50m", json!({}), spread)).await;
    // Each seen pending for its placement at some point: not necessarily at
    // once, for the spread pods bind as soon as the new minions join, and
    // until they join kube-scheduler names web's first failing filter on
    // workers-0 (its CPU), not the affinity the new minions fail.
    let (mut web_seen, mut spread_seen) = (false, false);
    w.wait("web and spread pods pending for their placement", KUBE, async || {
        web_seen |= pending_message(&w.pods("web").await).contains("affinity");
        spread_seen |= pending_message(&w.pods("spread").await).contains("topology spread");
        web_seen && spread_seen
    })
    .await;

    let s = w.wait_heat("3 minions for the spread", HEAT, |s| s.desired == 3 && s.members.len() == 3 && !s.busy).await;
    assert_eq!(members(&s), ["0", "1", "2"]);
    w.wait("every spread pod running, one per node", KUBE, async || {
        let pods = w.running("spread").await;
        let nodes: std::collections::BTreeSet<_> = pods.iter().filter_map(node_of).collect();
        pods.len() == 3 && nodes.len() == 3
    })
    .await;
    // Long enough for scale-down (unneeded-time 3 s) and another scale-up to happen if they would.
    daemon.wait_passes(8, KUBE).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let after = w.heat().await;
    assert_eq!((after.desired, members(&after)), (3, vec!["0".into(), "1".into(), "2".into()]), "nothing flapped");
    let ups = w.hooks.with_reason("ScaledUpGroup");
    assert_eq!(ups.len(), 1, "one growth, for the spread only: {:?}", ups.iter().map(|u| &u.1).collect::<Vec<_>>());
    assert_eq!(ups[0].1["fields"]["to_size"], "3", "{}", ups[0].1);
    assert!(w.hooks.with_reason("ScaledDownGroup").is_empty(), "no minion removed");
    // The web pod still waits, and the daemon said why no minion can help it.
    assert_eq!(w.running("web").await.len(), 1);
    let (_, why) = w
        .hooks
        .wait_for("NotTriggerScaleUp", KUBE, |e| e["object"]["name"].as_str().is_some_and(|n| n.starts_with("web")))
        .await;
    println!("web: {}", why["message"]);
    let (status, _) = daemon.terminate(Duration::from_secs(15)).await;
    assert!(status.success());
}
