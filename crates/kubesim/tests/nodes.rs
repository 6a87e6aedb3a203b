//! Nodes as kube-controller-manager and the kubelet treat them, where a drain
//! depends on it: DaemonSet pods on tainted nodes, and a node whose kubelet
//! stops (the behaviours checked against a real 1.35 control plane in
//! tests/kubernetes/main.rs).

mod common;

use common::{WAIT, start};
use k8s_openapi::api::core::v1::{Node, Pod};
use kubesim::{KubeSimHandle, NodeSpec, PodTemplate};

fn pods_on(sim: &KubeSimHandle, node: &str, app: &str) -> Vec<Pod> {
    sim.list::<Pod>(Some("default"))
        .into_iter()
        .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
        .filter(|p| p.metadata.labels.as_ref().and_then(|l| l.get("app")).map(String::as_str) == Some(app))
        .collect()
}

fn running(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none() && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

fn taint(sim: &KubeSimHandle, node: &str, key: &str, effect: &str) {
    sim.update::<Node>(None, node, |n| {
        let taints = n.spec.get_or_insert_with(Default::default).taints.get_or_insert_with(Vec::new);
        taints.push(k8s_openapi::api::core::v1::Taint {
            key: key.into(),
            value: Some("true".into()),
            effect: effect.into(),
            time_added: None,
        });
    })
    .unwrap();
}

/// A NoSchedule taint (heatscaler's removal taint) keeps new DaemonSet pods
/// off a node and leaves the running one; NoExecute evicts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_pods_stay_on_a_noschedule_taint_and_go_on_noexecute() {
    let (sim, _client) = start(vec![NodeSpec::new("a"), NodeSpec::new("b")]).await;
    sim.create(&PodTemplate::new("agent").label("app", "agent").daemon_set("default", "agent")).unwrap();
    sim.wait_for("an agent on each node", WAIT, |s| {
        pods_on(s, "a", "agent").iter().any(running) && pods_on(s, "b", "agent").iter().any(running)
    })
    .await
    .unwrap();
    let before = pods_on(&sim, "a", "agent")[0].metadata.uid.clone();
    taint(&sim, "a", "heatscaler.io/to-be-removed", "NoSchedule");
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let now = pods_on(&sim, "a", "agent");
    assert_eq!(now.len(), 1, "the DaemonSet pod stays");
    assert_eq!(now[0].metadata.uid, before, "the same pod");
    assert!(running(&now[0]));

    taint(&sim, "b", "evict", "NoExecute");
    sim.wait_for("the agent evicted from b", WAIT, |s| pods_on(s, "b", "agent").is_empty()).await.unwrap();
}

/// A node whose kubelet stops: its Ready condition goes Unknown, the
/// `unreachable` taints come (NoSchedule and NoExecute), its pods are marked
/// not Ready and, after their default 300 s toleration (scaled), deleted — and
/// they stay Terminating, since no kubelet finishes them, until it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_kubelet_leaves_its_pods_terminating() {
    let (sim, _client) = start(vec![NodeSpec::new("a")]).await;
    sim.create(&PodTemplate::new("app").label("app", "web").grace_period(1).pod("default", "web")).unwrap();
    sim.wait_for("web running", WAIT, |s| pods_on(s, "a", "web").iter().any(running)).await.unwrap();
    sim.set_node_ready("a", false).unwrap();
    sim.wait_for("the unreachable taints", WAIT, |s| {
        let node = s.get::<Node>(None, "a").unwrap();
        let taints = node.spec.and_then(|s| s.taints).unwrap_or_default();
        ["NoSchedule", "NoExecute"]
            .iter()
            .all(|e| taints.iter().any(|t| t.key == "node.kubernetes.io/unreachable" && t.effect == *e))
    })
    .await
    .unwrap();
    sim.wait_for("web not Ready", WAIT, |s| {
        let pod = s.get::<Pod>(Some("default"), "web").unwrap();
        let conditions = pod.status.and_then(|s| s.conditions).unwrap_or_default();
        conditions.iter().any(|c| c.type_ == "Ready" && c.status == "False")
    })
    .await
    .unwrap();
    sim.wait_for("web evicted", WAIT, |s| {
        s.get::<Pod>(Some("default"), "web").is_some_and(|p| p.metadata.deletion_timestamp.is_some())
    })
    .await
    .unwrap();
    // Its grace period (1 s, scaled) passes many times over: nobody finishes it.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert!(sim.get::<Pod>(Some("default"), "web").is_some(), "stuck Terminating");

    sim.set_node_ready("a", true).unwrap();
    sim.wait_for("the deletion finished", WAIT, |s| s.get::<Pod>(Some("default"), "web").is_none()).await.unwrap();
}
