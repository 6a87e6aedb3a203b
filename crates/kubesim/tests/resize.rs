//! In-place pod resize through the pods/resize subresource and the kubelet
//! model's verdicts: Infeasible, Deferred, then actuated, UID unchanged.

mod common;

use common::{WAIT, nodes, start, status_of};
use k8s_openapi::api::core::v1::{Pod, PodCondition};
use kube::api::{Api, Patch, PatchParams};
use kubesim::{KubeSimHandle, PodTemplate};
use serde_json::json;

fn condition(sim: &KubeSimHandle, name: &str, kind: &str) -> Option<PodCondition> {
    let pod = sim.get::<Pod>(Some("default"), name)?;
    pod.status?.conditions?.into_iter().find(|c| c.type_ == kind)
}

fn actual_cpu(sim: &KubeSimHandle, name: &str) -> Option<String> {
    let pod = sim.get::<Pod>(Some("default"), name)?;
    let status = pod.status?.container_statuses?.into_iter().next()?;
    Some(status.resources?.requests?.get("cpu")?.0.clone())
}

fn cpu_patch(container: &str, cpu: &str) -> Patch<serde_json::Value> {
    Patch::Strategic(json!({"spec": {"containers": [{"name": container, "resources": {"requests": {"cpu": cpu}}}]}}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resize_is_infeasible_deferred_then_actuated_in_place() {
    let (sim, client) = start(nodes(1, "4", "8Gi")).await;
    sim.create(&PodTemplate::new("app").requests("1", "1Gi").pod("default", "a")).unwrap();
    sim.create(&PodTemplate::new("app").requests("2", "1Gi").pod("default", "b")).unwrap();
    sim.wait_for("both running", WAIT, |s| s.ready_pods(Some("default")) == 2).await.unwrap();
    let uid = sim.get::<Pod>(Some("default"), "a").unwrap().metadata.uid.unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client);
    let pp = PatchParams::default();

    // More than the node has at all.
    let resized = pods.patch_subresource("resize", "a", &pp, &cpu_patch("app", "5")).await.unwrap();
    assert_eq!(
        resized.spec.unwrap().containers[0].resources.as_ref().unwrap().requests.as_ref().unwrap()["cpu"].0,
        "5"
    );
    sim.wait_for("infeasible", WAIT, |s| {
        condition(s, "a", "PodResizePending").is_some_and(|c| c.reason.as_deref() == Some("Infeasible"))
    })
    .await
    .unwrap();
    let c = condition(&sim, "a", "PodResizePending").unwrap();
    assert_eq!(c.message.as_deref(), Some("Node didn't have enough capacity: cpu, requested: 5000, capacity: 4000"));
    assert_eq!(actual_cpu(&sim, "a").as_deref(), Some("1"));

    // Fits the node, not next to b.
    pods.patch_subresource("resize", "a", &pp, &cpu_patch("app", "2500m")).await.unwrap();
    sim.wait_for("deferred", WAIT, |s| {
        condition(s, "a", "PodResizePending").is_some_and(|c| c.reason.as_deref() == Some("Deferred"))
    })
    .await
    .unwrap();
    let c = condition(&sim, "a", "PodResizePending").unwrap();
    assert_eq!(
        c.message.as_deref(),
        Some("Node didn't have enough resource: cpu, requested: 2500, used: 2000, capacity: 4000")
    );

    // b goes away: the deferred resize is admitted and actuated.
    sim.delete::<Pod>(Some("default"), "b").unwrap();
    sim.wait_for("resized", WAIT, |s| actual_cpu(s, "a").as_deref() == Some("2500m")).await.unwrap();
    let pod = sim.get::<Pod>(Some("default"), "a").unwrap();
    assert_eq!(pod.metadata.uid.as_deref(), Some(uid.as_str()), "resized in place");
    let status = pod.status.unwrap();
    assert!(
        status.conditions.unwrap().iter().all(|c| c.type_ != "PodResizePending" && c.type_ != "PodResizeInProgress")
    );
    let container = &status.container_statuses.unwrap()[0];
    assert_eq!(container.restart_count, 0, "cpu resize policy NotRequired");
    assert_eq!(container.allocated_resources.as_ref().unwrap()["cpu"].0, "2500m");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resize_rules_restart_policy_and_validation() {
    let (sim, client) = start(nodes(1, "4", "8Gi")).await;
    sim.create(
        &PodTemplate::new("app")
            .requests("500m", "256Mi")
            .limits("1", "512Mi")
            .resize_policy("memory", "RestartContainer")
            .pod("default", "p"),
    )
    .unwrap();
    sim.wait_for("running", WAIT, |s| s.ready_pods(Some("default")) == 1).await.unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client);
    let pp = PatchParams::default();

    // Memory with RestartContainer restarts the container; it stays the same pod.
    let memory = json!({"spec": {"containers": [{"name": "app", "resources": {
        "requests": {"memory": "384Mi"}, "limits": {"memory": "768Mi"}}}]}});
    pods.patch_subresource("resize", "p", &pp, &Patch::Strategic(memory)).await.unwrap();
    sim.wait_for("memory resized", WAIT, |s| {
        s.get::<Pod>(Some("default"), "p")
            .and_then(|p| p.status?.container_statuses?.into_iter().next())
            .is_some_and(|c| c.resources.and_then(|r| r.limits).is_some_and(|l| l["memory"].0 == "768Mi"))
    })
    .await
    .unwrap();
    let container = sim.get::<Pod>(Some("default"), "p").unwrap().status.unwrap().container_statuses.unwrap().remove(0);
    assert_eq!(container.restart_count, 1);

    // Only cpu and memory; QoS may not change; other fields are ignored by the subresource.
    let gpu = json!({"spec": {"containers": [{"name": "app", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}});
    assert_eq!(status_of(pods.patch_subresource("resize", "p", &pp, &Patch::Strategic(gpu)).await).code, 422);
    let guaranteed = json!({"spec": {"containers": [{"name": "app", "resources": {
        "requests": {"cpu": "1", "memory": "768Mi"}}}]}});
    let qos = status_of(pods.patch_subresource("resize", "p", &pp, &Patch::Strategic(guaranteed)).await);
    assert!(qos.message.contains("Pod QOS Class may not change"), "{}", qos.message);
    let image = json!({"spec": {"containers": [{"name": "app", "image": "other:1"}]}});
    let unchanged = pods.patch_subresource("resize", "p", &pp, &Patch::Strategic(image)).await.unwrap();
    assert_ne!(unchanged.spec.unwrap().containers[0].image.as_deref(), Some("other:1"));
}
