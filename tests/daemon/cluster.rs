//! The Kubernetes observers against kubesim over HTTP: the compact store
//! follows the cluster through watches, survives broken watches and expired
//! resourceVersions, reports watch errors and recovers from them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use heatscaler_daemon::observe::{Changes, ClusterStore, KubeObserver, Watched};
use heatscaler_daemon::telemetry::Metrics;
use k8s_openapi::api::core::v1::Pod;
use kubesim::builders::{Budget, PodTemplate, pdb};
use kubesim::{FaultRule, KubeSim, KubeSimHandle, NodeSpec, Options};
use tokio::sync::Mutex;

const WAIT: Duration = Duration::from_secs(20);

/// Polls the store until `condition` holds.
async fn eventually(store: &Mutex<ClusterStore>, what: &str, condition: impl Fn(&ClusterStore) -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition(&*store.lock().await) {
        assert!(Instant::now() < deadline, "store: {what} not within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn cluster() -> (KubeSimHandle, KubeObserver, Changes, Arc<Metrics>) {
    let sim = KubeSim::start(Options::fast()).await.unwrap();
    for i in 0..3 {
        sim.add_node(
            NodeSpec::new(&format!("m-{i}")).cpu("4").memory("8Gi").provider_id(&format!("openstack:///s{i}")),
        )
        .unwrap();
    }
    let web = PodTemplate::new("c").label("app", "web").requests("250m", "256Mi");
    sim.create(&web.deployment("default", "web", 4)).unwrap();
    sim.create(&pdb("default", "web", &[("app", "web")], Budget::MaxUnavailable(1.into()))).unwrap();
    sim.wait_for("web running", WAIT, |h| h.ready_pods(Some("default")) == 4).await.unwrap();
    let metrics = Arc::new(Metrics::new());
    let changes = Changes::new();
    let observer = KubeObserver::start(sim.kube_client_without_retries().unwrap(), metrics.clone(), changes.clone());
    tokio::time::timeout(WAIT, observer.health().wait_synced()).await.expect("first sync");
    (sim, observer, changes, metrics)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_follows_the_cluster_in_compact_form() {
    let (sim, observer, changes, _) = cluster().await;
    let store = observer.store();
    {
        let s = store.lock().await;
        let snap = s.snapshot();
        assert_eq!(snap.nodes.len(), 3);
        assert_eq!(snap.pods.len(), 4);
        assert_eq!(snap.pdbs.len(), 1);
        assert_eq!(snap.nodes[0].provider_id.as_deref().map(|p| p.starts_with("openstack:///")), Some(true));
        // ReplicaSet → Deployment, and one placement for the whole workload.
        for p in &snap.pods {
            assert_eq!(p.workload.as_ref().map(|w| w.to_string()).as_deref(), Some("Deployment/default/web"));
            assert_eq!(p.requests.cpu_milli, 250);
        }
        assert!(snap.pods.iter().all(|p| Arc::ptr_eq(&p.placement, &snap.pods[0].placement)));
        assert_eq!(s.placements(), 1);
    }

    // Issue 21: the namespace's labels reach its pods' placements (what a
    // term's namespaceSelector selects by), still one placement for all.
    sim.update::<k8s_openapi::api::core::v1::Namespace>(None, "default", |ns| {
        ns.metadata.labels.get_or_insert_with(Default::default).insert("tier".into(), "web".into());
    })
    .unwrap();
    eventually(store, "the namespace's labels on its pods", |s| {
        s.snapshot().pods.iter().all(|p| p.placement.namespace_labels.get("tier").map(String::as_str) == Some("web"))
    })
    .await;
    {
        let s = store.lock().await;
        let pods = &s.snapshot().pods;
        assert!(pods.iter().all(|p| std::sync::Arc::ptr_eq(&p.placement, &pods[0].placement)));
    }

    // A change wakes the loop; the store has it.
    let mut rx = changes.subscribe();
    sim.update::<k8s_openapi::api::apps::v1::Deployment>(Some("default"), "web", |d| {
        d.spec.as_mut().unwrap().replicas = Some(6)
    })
    .unwrap();
    tokio::time::timeout(WAIT, rx.changed()).await.unwrap().unwrap();
    eventually(store, "6 pods", |s| s.snapshot().pods.len() == 6).await;

    // Pods that finish leave the store (the watch selects live pods only).
    let name = sim.list::<Pod>(Some("default"))[0].metadata.name.clone().unwrap();
    sim.update_status::<Pod>(Some("default"), &name, |p| p.status.as_mut().unwrap().phase = Some("Succeeded".into()))
        .unwrap();
    eventually(store, "the finished pod gone", |s| s.snapshot().pods.iter().all(|p| p.name != name)).await;

    // A node leaving is seen.
    sim.remove_node("m-2").unwrap();
    eventually(store, "2 nodes", |s| s.snapshot().nodes.len() == 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_and_expired_watches_relist_and_errors_are_surfaced() {
    let (sim, observer, _, metrics) = cluster().await;
    let store = observer.store();

    // The watches break and history is compacted while the cluster changes:
    // resuming gets 410 Gone and the watches list again.
    sim.drop_watches();
    sim.compact_watch_history();
    sim.add_node(NodeSpec::new("m-9").cpu("4").memory("8Gi")).unwrap();
    sim.update::<k8s_openapi::api::apps::v1::Deployment>(Some("default"), "web", |d| {
        d.spec.as_mut().unwrap().replicas = Some(2)
    })
    .unwrap();
    eventually(store, "the changes made during the outage", |s| {
        s.snapshot().nodes.len() == 4 && s.snapshot().pods.iter().filter(|p| p.deletion.is_none()).count() == 2
    })
    .await;

    // Listing pods fails for a while: the error is reported and counted, then the watch recovers.
    let fault = sim.add_fault(FaultRule::error(500, 1.0).on_path("/api/v1/pods").on_verbs(&["list", "watch"]));
    sim.drop_watches();
    sim.compact_watch_history();
    let deadline = Instant::now() + WAIT;
    while !observer.health().failing().iter().any(|(w, _)| *w == Watched::Pods) {
        assert!(Instant::now() < deadline, "the failing pod watch was not reported");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        metrics.encode().contains("heatscaler_kubernetes_request_errors_total{verb=\"watch\",resource=\"pods\"}"),
        "watch errors are counted"
    );
    sim.faults().remove(fault);
    sim.update::<k8s_openapi::api::apps::v1::Deployment>(Some("default"), "web", |d| {
        d.spec.as_mut().unwrap().replicas = Some(3)
    })
    .unwrap();
    eventually(store, "3 pods after recovery", |s| {
        s.snapshot().pods.iter().filter(|p| p.deletion.is_none()).count() == 3
    })
    .await;
    let deadline = Instant::now() + WAIT;
    while !observer.health().failing().is_empty() {
        assert!(Instant::now() < deadline, "the recovered watch is still reported failing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relists_against_a_failing_api_server_back_off_and_recovery_waits_for_a_list() {
    let (sim, observer, _, _) = cluster().await;
    // Every pod LIST answers 503 and the watch history is compacted: the
    // watch breaks, its first re-watch fails, the cluster changes and the
    // history is compacted meanwhile, so the next re-watch gets 410 Gone and
    // every retry from then on is a relist.
    let fault = sim.add_fault(FaultRule::error(503, 1.0).on_path("/api/v1/pods").on_verbs(&["list"]));
    sim.add_fault(FaultRule::error(503, 1.0).on_path("/api/v1/pods").on_verbs(&["watch"]).times(1));
    sim.drop_watches();
    sim.update::<k8s_openapi::api::apps::v1::Deployment>(Some("default"), "web", |d| {
        d.spec.as_mut().unwrap().replicas = Some(2)
    })
    .unwrap();
    sim.compact_watch_history();
    let window = Duration::from_secs(30);
    let started = Instant::now();
    while started.elapsed() < window {
        tokio::time::sleep(Duration::from_millis(200)).await;
        // Never "recovered" (nor healthy) while no list succeeds.
        if sim.faults().hits(fault).len() >= 2 {
            assert!(
                observer.health().failing().iter().any(|(w, _)| *w == Watched::Pods),
                "the pod watch is reported healthy while every list fails"
            );
        }
    }
    let hits = sim.faults().hits(fault);
    let gaps: Vec<Duration> = hits.windows(2).map(|w| w[1] - w[0]).collect();
    println!("{} pod requests in {window:?}; gaps {gaps:?}", hits.len());
    // 800 ms doubling, jittered by up to as much again, counting the failed
    // re-watches before: at most 5 requests in 30 s (at the least 2.4, 5.6,
    // 12, 24.8 s after the break). Without a growing wait: one a second.
    assert!((3..=5).contains(&hits.len()), "{} requests in {window:?}: {gaps:?}", hits.len());
    for pair in gaps.windows(2) {
        assert!(pair[1] >= pair[0], "the wait between relists does not grow: {gaps:?}");
    }
    sim.faults().remove(fault);
    let deadline = Instant::now() + Duration::from_secs(70);
    while !observer.health().failing().is_empty() {
        assert!(Instant::now() < deadline, "the watch did not recover once lists succeed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
