//! pods/eviction against PodDisruptionBudgets, and the controllers that
//! replace evicted pods.

mod common;

use std::time::Duration;

use common::{WAIT, nodes, start, start_with, status_of};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, EvictParams, ListParams};
use kubesim::{Budget, KubeSimHandle, Options, PodTemplate, builders::pdb};
use serde_json::json;

/// The budget's status is current and shows `healthy` healthy pods allowing `allowed` disruptions.
fn pdb_settled(sim: &KubeSimHandle, name: &str, healthy: i32, allowed: i32) -> bool {
    sim.get::<PodDisruptionBudget>(Some("default"), name).is_some_and(|p| {
        let status = p.status.unwrap_or_default();
        status.observed_generation == p.metadata.generation
            && status.current_healthy == healthy
            && status.disruptions_allowed == allowed
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eviction_honours_the_budget_and_the_replica_set_replaces_the_pod() {
    // Pods start in 1 s, not the 10 ms of `Options::fast`: the replacement
    // of the evicted pod, Ready, rightly gives the budget its disruption
    // back, and within 10 ms it could do so before the check below it.
    let options = Options { pod_start_delay: Duration::from_secs(50), ..Options::fast() };
    let (sim, client) = start_with(options, nodes(3, "4", "8Gi")).await;
    sim.create(&PodTemplate::new("web").label("app", "web").requests("100m", "64Mi").deployment("default", "web", 2))
        .unwrap();
    sim.create(&pdb("default", "web", &[("app", "web")], Budget::MinAvailable(json!(2)))).unwrap();
    sim.wait_for("2 pods ready, budget at 0", WAIT, |s| {
        s.ready_pods(Some("default")) == 2 && pdb_settled(s, "web", 2, 0)
    })
    .await
    .unwrap();
    let budget = sim.get::<PodDisruptionBudget>(Some("default"), "web").unwrap().status.unwrap();
    assert_eq!((budget.current_healthy, budget.desired_healthy, budget.expected_pods), (2, 2, 2));

    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let victim = pods.list(&ListParams::default().labels("app=web")).await.unwrap().items[0].clone();
    let victim_name = victim.metadata.name.clone().unwrap();
    let refused = status_of(pods.evict(&victim_name, &EvictParams::default()).await);
    assert_eq!(refused.code, 429);
    assert_eq!(refused.reason, "TooManyRequests");
    assert_eq!(refused.message, "Cannot evict pod as it would violate the pod's disruption budget.");
    let cause = &refused.details.as_ref().unwrap().causes[0];
    assert_eq!(cause.reason, "DisruptionBudget");
    assert_eq!(cause.message, "The disruption budget web needs 2 healthy pods and has 2 currently");
    assert!(sim.get::<Pod>(Some("default"), &victim_name).unwrap().metadata.deletion_timestamp.is_none());

    // maxUnavailable is scaled by the deployment's replicas, as the disruption controller does.
    sim.update::<Deployment>(Some("default"), "web", |d| d.spec.as_mut().unwrap().replicas = Some(3)).unwrap();
    if let Err(e) = sim
        .wait_for("budget allows one", WAIT, |s| s.ready_pods(Some("default")) == 3 && pdb_settled(s, "web", 3, 1))
        .await
    {
        eprintln!("DIAG ready_pods={}", sim.ready_pods(Some("default")));
        eprintln!(
            "DIAG pdb={}",
            serde_json::to_string(&sim.get::<PodDisruptionBudget>(Some("default"), "web")).unwrap()
        );
        for p in sim.list::<Pod>(Some("default")) {
            eprintln!("DIAG pod={}", serde_json::to_string(&(p.metadata, p.status)).unwrap());
        }
        eprintln!("DIAG deploy={}", serde_json::to_string(&sim.get::<Deployment>(Some("default"), "web")).unwrap());
        panic!("{e:?}");
    }
    pods.evict(&victim_name, &EvictParams::default()).await.unwrap();
    let evicted = sim.get::<Pod>(Some("default"), &victim_name).unwrap();
    assert!(evicted.metadata.deletion_timestamp.is_some(), "eviction deletes gracefully");
    let budget = sim.get::<PodDisruptionBudget>(Some("default"), "web").unwrap().status.unwrap();
    assert_eq!(budget.disruptions_allowed, 0, "the eviction consumed the allowed disruption");

    // The ReplicaSet replaces the evicted pod at once; the old one terminates.
    sim.wait_for("replacement ready and victim gone", WAIT, |s| {
        s.get::<Pod>(Some("default"), &victim_name).is_none() && s.ready_pods(Some("default")) == 3
    })
    .await
    .unwrap();
    let uids: Vec<String> = sim.list::<Pod>(Some("default")).into_iter().map(|p| p.metadata.uid.unwrap()).collect();
    assert!(!uids.contains(&victim.metadata.uid.unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eviction_edge_cases_match_the_api_server() {
    let (sim, client) = start(nodes(1, "4", "8Gi")).await;
    let pods: Api<Pod> = Api::default_namespaced(client);
    // Two budgets over one pod: the API server answers 500.
    sim.create(&PodTemplate::new("c").label("app", "a").pod("default", "doubly")).unwrap();
    sim.create(&pdb("default", "one", &[("app", "a")], Budget::MaxUnavailable(json!(1)))).unwrap();
    sim.create(&pdb("default", "two", &[("app", "a")], Budget::MinAvailable(json!("10%")))).unwrap();
    sim.wait_for("pod ready", WAIT, |s| s.ready_pods(Some("default")) == 1).await.unwrap();
    let status = status_of(pods.evict("doubly", &EvictParams::default()).await);
    assert_eq!(status.code, 500);
    assert!(status.message.contains("more than one PodDisruptionBudget"), "{}", status.message);

    // A pod that is not running yet can always be evicted.
    sim.create(&PodTemplate::new("c").label("app", "b").requests("64", "1Gi").pod("default", "pending")).unwrap();
    sim.create(&pdb("default", "strict", &[("app", "b")], Budget::MinAvailable(json!(1)))).unwrap();
    sim.wait_for("budget observed", WAIT, |s| pdb_settled(s, "strict", 0, 0)).await.unwrap();
    pods.evict("pending", &EvictParams::default()).await.unwrap();
    sim.wait_for("pending pod gone", WAIT, |s| s.get::<Pod>(Some("default"), "pending").is_none()).await.unwrap();

    // A missing pod is a 404.
    assert_eq!(status_of(pods.evict("ghost", &EvictParams::default()).await).code, 404);
}
