//! The scheduler: placement constraints, the unschedulable condition and its
//! message, re-evaluation when nodes change, node removal.

mod common;

use common::{WAIT, start};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use kubesim::{KubeSimHandle, NodeSpec, PodTemplate};

fn scheduled_condition(sim: &KubeSimHandle, name: &str) -> Option<(String, Option<String>, Option<String>)> {
    let pod = sim.get::<Pod>(Some("default"), name)?;
    let c = pod.status?.conditions?.into_iter().find(|c| c.type_ == "PodScheduled")?;
    Some((c.status, c.reason, c.message))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unschedulable_pods_report_why_and_are_retried_when_a_node_joins() {
    let (sim, client) = start(vec![
        NodeSpec::new("cordoned").cpu("8").unschedulable(),
        NodeSpec::new("small-a").cpu("1"),
        NodeSpec::new("small-b").cpu("1"),
    ])
    .await;
    sim.create(&PodTemplate::new("app").requests("2", "1Gi").pod("default", "big")).unwrap();
    sim.wait_for("unschedulable", WAIT, |s| {
        scheduled_condition(s, "big").is_some_and(|(st, r, _)| st == "False" && r.as_deref() == Some("Unschedulable"))
    })
    .await
    .unwrap();
    let (_, _, message) = scheduled_condition(&sim, "big").unwrap();
    assert_eq!(
        message.as_deref(),
        Some(
            "0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod."
        )
    );
    // The FailedScheduling event, read in the events.k8s.io/v1 shape.
    let events: Api<Event> = Api::default_namespaced(client);
    let list = events.list(&ListParams::default().fields("regarding.name=big,reason=FailedScheduling")).await.unwrap();
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].note.as_deref(), message.as_deref());

    // A minion joins: the pod is retried and lands there.
    sim.add_node(NodeSpec::new("new-minion").cpu("4")).unwrap();
    let pod = sim
        .wait_for_object::<Pod>("default", "big", WAIT, |p| {
            p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
        })
        .await
        .unwrap();
    assert_eq!(pod.spec.unwrap().node_name.as_deref(), Some("new-minion"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taints_selectors_anti_affinity_and_capacity_are_respected() {
    let (sim, _client) = start(vec![
        NodeSpec::new("gpu").cpu("8").label("pool", "gpu").taint("dedicated", "gpu", "NoSchedule"),
        NodeSpec::new("general-0").cpu("2").label("pool", "general"),
        NodeSpec::new("general-1").cpu("2").label("pool", "general"),
    ])
    .await;
    // Tolerating and selecting the dedicated pool.
    sim.create(
        &PodTemplate::new("c")
            .node_selector("pool", "gpu")
            .toleration("dedicated", "NoSchedule")
            .pod("default", "trainer"),
    )
    .unwrap();
    // Selecting it without tolerating the taint.
    sim.create(&PodTemplate::new("c").node_selector("pool", "gpu").pod("default", "intruder")).unwrap();
    // One per node among the general nodes (the gpu node is tainted): the third stays pending.
    sim.create(&PodTemplate::new("c").label("app", "spread").spread_one_per_node().deployment("default", "spread", 3))
        .unwrap();
    sim.wait_for("placements", WAIT, |s| s.ready_pods(Some("default")) == 3).await.unwrap();
    assert_eq!(sim.get::<Pod>(Some("default"), "trainer").unwrap().spec.unwrap().node_name.as_deref(), Some("gpu"));
    sim.wait_for("intruder refused", WAIT, |s| {
        scheduled_condition(s, "intruder").is_some_and(|(st, _, _)| st == "False")
    })
    .await
    .unwrap();
    let (_, _, message) = scheduled_condition(&sim, "intruder").unwrap();
    assert_eq!(
        message.as_deref(),
        Some(
            "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
        )
    );
    let spread: Vec<Pod> = sim
        .list::<Pod>(Some("default"))
        .into_iter()
        .filter(|p| p.metadata.labels.as_ref().is_some_and(|l| l.contains_key("app")))
        .collect();
    let mut placed: Vec<String> = spread.iter().filter_map(|p| p.spec.as_ref()?.node_name.clone()).collect();
    placed.sort();
    assert_eq!(placed, ["general-0", "general-1"]);
    let pending = spread.iter().find(|p| p.spec.as_ref().unwrap().node_name.is_none()).unwrap();
    let name = pending.metadata.name.clone().unwrap();
    sim.wait_for("anti-affinity reason", WAIT, |s| {
        scheduled_condition(s, &name)
            .and_then(|c| c.2)
            .is_some_and(|m| m.contains("2 node(s) didn't match pod anti-affinity rules"))
    })
    .await
    .unwrap();

    // A node leaves: its pods go, and the ReplicaSet recreates them where they fit.
    sim.add_node(NodeSpec::new("general-2").cpu("2").label("pool", "general")).unwrap();
    sim.wait_for("all spread pods placed", WAIT, |s| s.ready_pods(Some("default")) == 4).await.unwrap();
    sim.remove_node("general-0").unwrap();
    sim.wait_for("node's pods gone", WAIT, |s| {
        s.list::<Pod>(Some("default"))
            .iter()
            .all(|p| p.spec.as_ref().unwrap().node_name.as_deref() != Some("general-0"))
    })
    .await
    .unwrap();
    sim.wait_for("replacement pending (2 general nodes left)", WAIT, |s| s.ready_pods(Some("default")) == 3)
        .await
        .unwrap();
}

fn typed<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).unwrap()
}

fn bare(name: &str, app: &str, resources: serde_json::Value, extra: serde_json::Value) -> Pod {
    let mut spec = serde_json::json!({"containers": [{"name": "c", "image": "x", "resources": resources}]});
    for (k, v) in extra.as_object().into_iter().flatten() {
        spec[k] = v.clone();
    }
    typed(serde_json::json!({"metadata": {"name": name, "namespace": "default", "labels": {"app": app}}, "spec": spec}))
}

async fn wait_unschedulable(sim: &KubeSimHandle, name: &str) -> String {
    sim.wait_for(&format!("{name} unschedulable"), WAIT, |s| {
        scheduled_condition(s, name).is_some_and(|(st, r, _)| st == "False" && r.as_deref() == Some("Unschedulable"))
    })
    .await
    .unwrap();
    scheduled_condition(sim, name).unwrap().2.unwrap_or_default()
}

fn node_of(sim: &KubeSimHandle, name: &str) -> Option<String> {
    sim.get::<Pod>(Some("default"), name)?.spec?.node_name
}

/// What kube-scheduler keeps Pending and kubesim once bound: extended
/// resources and ephemeral storage a node lacks, a required pod affinity with
/// no matching pod on the node, a DoNotSchedule topology spread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extended_resources_storage_pod_affinity_and_topology_spread_keep_pods_pending() {
    let (sim, _client) = start(vec![NodeSpec::new("a").cpu("4"), NodeSpec::new("b").cpu("4")]).await;
    let gpu = bare("trainer", "trainer", serde_json::json!({"limits": {"nvidia.com/gpu": "1"}}), serde_json::json!({}));
    sim.create(&gpu).unwrap();
    let disk =
        bare("hog", "hog", serde_json::json!({"requests": {"ephemeral-storage": "500Gi"}}), serde_json::json!({}));
    sim.create(&disk).unwrap();
    let message = wait_unschedulable(&sim, "trainer").await;
    assert!(message.starts_with("0/2 nodes are available: 2 Insufficient nvidia.com/gpu."), "{message}");
    let message = wait_unschedulable(&sim, "hog").await;
    assert!(message.starts_with("0/2 nodes are available: 2 Insufficient ephemeral-storage."), "{message}");
    sim.add_node(NodeSpec::new("gpu-0").cpu("4").resource("nvidia.com/gpu", "1")).unwrap();
    sim.wait_for("the GPU pod bound to gpu-0", WAIT, |s| node_of(s, "trainer").as_deref() == Some("gpu-0"))
        .await
        .unwrap();

    // Pod affinity: web must share a node with a cache.
    let with_cache = serde_json::json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
        "labelSelector": {"matchLabels": {"app": "cache"}}, "topologyKey": "kubernetes.io/hostname"}]}}});
    sim.create(&bare("web", "web", serde_json::json!({}), with_cache.clone())).unwrap();
    let message = wait_unschedulable(&sim, "web").await;
    assert!(message.contains("3 node(s) didn't match pod affinity rules"), "{message}");
    let on_b = serde_json::json!({"nodeSelector": {"kubernetes.io/hostname": "b"}});
    sim.create(&bare("cache", "cache", serde_json::json!({}), on_b)).unwrap();
    sim.wait_for("web next to the cache", WAIT, |s| node_of(s, "web").as_deref() == Some("b")).await.unwrap();
    // The first of a self-affine group may go anywhere.
    let pair = serde_json::json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
        "labelSelector": {"matchLabels": {"app": "pair"}}, "topologyKey": "kubernetes.io/hostname"}]}}});
    sim.create(&bare("pair-0", "pair", serde_json::json!({}), pair.clone())).unwrap();
    sim.wait_for("pair-0 bound", WAIT, |s| node_of(s, "pair-0").is_some()).await.unwrap();
    sim.create(&bare("pair-1", "pair", serde_json::json!({}), pair)).unwrap();
    sim.wait_for("pair-1 with pair-0", WAIT, |s| node_of(s, "pair-1").is_some()).await.unwrap();
    assert_eq!(node_of(&sim, "pair-1"), node_of(&sim, "pair-0"));

    // Spread over nodes with minDomains 4 (3 nodes): one per node, the fourth waits.
    let spread = serde_json::json!({"topologySpreadConstraints": [{"maxSkew": 1, "minDomains": 4,
        "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": {"app": "spread"}}}]});
    for i in 0..4 {
        sim.create(&bare(&format!("spread-{i}"), "spread", serde_json::json!({}), spread.clone())).unwrap();
    }
    let message = wait_unschedulable(&sim, "spread-3").await;
    assert!(message.contains("3 node(s) didn't match pod topology spread constraints"), "{message}");
    let nodes: std::collections::BTreeSet<_> = (0..3).filter_map(|i| node_of(&sim, &format!("spread-{i}"))).collect();
    assert_eq!(nodes.len(), 3, "one per node");
}
