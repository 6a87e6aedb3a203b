//! Issue 21 end to end on the real control plane: two chatty workloads on
//! different nodes, a test mesh whose latencies follow where the real
//! scheduler put their pods, Debian's Prometheus scraping it, and the
//! `heatscaler` binary with the shipped RBAC — advised in `recommend` mode,
//! and in `apply` mode the client's template gets the preferred affinity and
//! its pod ends up next to the server, as Prometheus then reports.

use std::sync::Arc;
use std::time::Duration;

use heatscaler_daemon::config::{Duration as ConfigDuration, MeshKind, MeshMetricsConfig};
use heatscaler_daemon::observe::mesh::MeshObserver;
use heatscaler_daemon::observe::{Changes, KubeObserver};
use heatscaler_daemon::telemetry::Metrics;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kubelet_emu::{NodeSpec, Timing};
use serde_json::json;

use crate::daemon::DaemonProcess;
use crate::kubernetes::{Knobs, TestKubernetes, wait_for};
use crate::test_mesh::{Edge, Format, MeshExporter, Network, TestPrometheus};

const NS: &str = "shop";
const WAIT: Duration = Duration::from_secs(60);
const WINDOW: u64 = 10;

fn app(name: &str, selector: serde_json::Value) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"nodeSelector": selector, "terminationGracePeriodSeconds": 1,
                         "containers": [{"name": "app", "image": "registry.example/app:1",
                                         "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]},
            },
        },
    }))
    .unwrap()
}

async fn node_of(pods: &Api<Pod>, app: &str) -> Option<String> {
    let list = pods.list(&ListParams::default().labels(&format!("app={app}"))).await.ok()?;
    let running: Vec<&Pod> = list
        .items
        .iter()
        .filter(|p| {
            p.metadata.deletion_timestamp.is_none()
                && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
        })
        .collect();
    if running.len() != 1 {
        return None;
    }
    running[0].spec.as_ref()?.node_name.clone()
}

fn daemon_config(
    dir: &std::path::Path,
    k8s: &TestKubernetes,
    prometheus: &str,
    mode: &str,
    port: u16,
) -> std::path::PathBuf {
    let path = dir.join(format!("heatscaler-{mode}.yaml"));
    std::fs::write(
        &path,
        format!(
            "kubernetes:\n  access: kubeconfig\n  kubeconfig: {}\n\
             telemetry:\n  listen: 127.0.0.1:{port}\n\
             daemon:\n  resync-interval: 1s\n\
             mesh-metrics:\n  prometheus-url: {prometheus}\n  window: {WINDOW}s\n  interval: 2s\n\
             placement-advisor:\n  mode: {mode}\n  raise-after: 0s\n  min-requests-per-second: 1\n  min-latency-cost: 50\n",
            k8s.heatscaler_kubeconfig().display()
        ),
    )
    .unwrap();
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chatty_workloads_are_advised_then_co_located_by_the_daemon() {
    let k8s = TestKubernetes::start(Knobs::default());
    let admin = k8s.admin().await;
    let emu = k8s.emulator(Timing::fast()).await;
    for name in ["minion-0", "minion-1"] {
        emu.add_node(NodeSpec::new(name).label("topology.kubernetes.io/zone", "a")).await.unwrap();
    }
    let nodes: Api<Node> = Api::all(admin.clone());
    Api::<Namespace>::all(admin.clone())
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap())
        .await
        .unwrap();
    wait_for("the shop ServiceAccount", WAIT, || async {
        Api::<ServiceAccount>::namespaced(admin.clone(), NS).get("default").await.ok()
    })
    .await;
    // web may run only where `shop/front` is set: minion-1 when it is scheduled.
    let label = |value: serde_json::Value| json!({"metadata": {"labels": {"shop/front": value}}});
    nodes.patch("minion-1", &PatchParams::default(), &Patch::Merge(&label(json!("yes")))).await.unwrap();
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(admin.clone(), NS);
    deployments
        .create(&PostParams::default(), &app("cart", json!({"kubernetes.io/hostname": "minion-0"})))
        .await
        .unwrap();
    deployments.create(&PostParams::default(), &app("web", json!({"shop/front": "yes"}))).await.unwrap();
    wait_for("cart on minion-0", WAIT, || async { (node_of(&pods, "cart").await? == "minion-0").then_some(()) }).await;
    wait_for("web on minion-1", WAIT, || async { (node_of(&pods, "web").await? == "minion-1").then_some(()) }).await;
    // From now on web would fit on minion-0 too (the selector is IgnoredDuringExecution).
    nodes.patch("minion-0", &PatchParams::default(), &Patch::Merge(&label(json!("yes")))).await.unwrap();

    let edges = vec![Edge { client: "web".into(), server: "cart".into(), rps_per_client_pod: 100.0, service_ms: 2.0 }];
    let exporter = MeshExporter::start(admin.clone(), NS, edges, Format::Istio, Network::default()).await;
    let prometheus = TestPrometheus::start(&[exporter.port]).await;
    prometheus.wait_full_window(WINDOW).await;
    let dir = tempfile::tempdir().unwrap();
    let events: Api<Event> = Api::namespaced(admin.clone(), NS);
    let on_web = |reason: &'static str| {
        let events = events.clone();
        async move {
            events.list(&ListParams::default()).await.ok()?.items.into_iter().find(|e| {
                e.reason.as_deref() == Some(reason)
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("web")
            })
        }
    };

    // recommend: advised, with the evidence, and nothing changed.
    let port = free_port();
    let config = daemon_config(dir.path(), &k8s, &prometheus.url, "recommend", port);
    let mut daemon =
        DaemonProcess::start(&config, &dir.path().join("recommend.log"), ([127, 0, 0, 1], port).into(), &[]);
    daemon.wait_ready(WAIT).await;
    let advised = wait_for("a PlacementAdvised Event on web", WAIT, || on_web("PlacementAdvised")).await;
    let note = advised.note.unwrap_or_default();
    for needle in
        ["co-locate Deployment/shop/web with Deployment/shop/cart", " req/s", "100% crossing nodes", "expected gain"]
    {
        assert!(note.contains(needle), "{needle}: {note}");
    }
    assert!(note.contains("recommendation only"), "{note}");
    let web: Deployment = deployments.get("web").await.unwrap();
    assert!(web.spec.unwrap().template.spec.unwrap().affinity.is_none(), "recommend mode changed the template");
    daemon.terminate(Duration::from_secs(15)).await;

    // apply: the template gets the term, the rollout puts web next to cart.
    let port = free_port();
    let config = daemon_config(dir.path(), &k8s, &prometheus.url, "apply", port);
    let mut daemon = DaemonProcess::start(&config, &dir.path().join("apply.log"), ([127, 0, 0, 1], port).into(), &[]);
    daemon.wait_ready(WAIT).await;
    let web = wait_for("the preferred affinity on web's template", WAIT, || async {
        let d = deployments.get("web").await.ok()?;
        d.spec.as_ref()?.template.spec.as_ref()?.affinity.as_ref()?.pod_affinity.as_ref()?;
        Some(d)
    })
    .await;
    let terms = web.spec.unwrap().template.spec.unwrap().affinity.unwrap().pod_affinity.unwrap();
    let term = &terms.preferred_during_scheduling_ignored_during_execution.unwrap()[0];
    assert_eq!(term.pod_affinity_term.topology_key, "kubernetes.io/hostname");
    assert_eq!(term.pod_affinity_term.label_selector.as_ref().unwrap().match_labels.as_ref().unwrap()["app"], "cart");
    assert!(web.metadata.annotations.unwrap().contains_key("heatscaler.io/placement-advice"));
    wait_for("a PodAffinityAdded Event on web", WAIT, || on_web("PodAffinityAdded")).await;
    wait_for("web next to cart", WAIT, || async { (node_of(&pods, "web").await? == "minion-0").then_some(()) }).await;
    daemon.terminate(Duration::from_secs(15)).await;

    // Prometheus, through the exporter, now reports only same-node calls.
    tokio::time::sleep(Duration::from_secs(WINDOW + 3)).await;
    let observer = KubeObserver::start(admin.clone(), Arc::new(Metrics::new()), Changes::new());
    observer.health().wait_synced().await;
    let mesh = MeshObserver::new(&MeshMetricsConfig {
        prometheus_url: prometheus.url.clone(),
        mesh: MeshKind::Istio,
        window: ConfigDuration::from_secs(WINDOW),
        interval: ConfigDuration::from_secs(2),
        pod_label: "pod".into(),
        ca_bundle: None,
        bearer_token: None,
        request_timeout: ConfigDuration::from_secs(5),
        failure_alert_after: ConfigDuration::from_secs(60),
    })
    .unwrap();
    let series = mesh.fetch().await.unwrap();
    let reading = mesh.join(&series, observer.store().lock().await.snapshot());
    let flow = reading.flows.iter().find(|f| f.client.name == "web" && f.server.name == "cart").expect("web → cart");
    assert!(flow.p99_same_node_ms.is_some() && flow.p99_cross_node_ms.is_none(), "{flow:?}");
    let truth = exporter.truth("web", "cart");
    assert!(truth.cross_node_ms.is_none() && truth.same_node_ms.is_some(), "{truth:?}");
}
