//! The mesh observer against a real Prometheus (Debian's package) scraping
//! the test mesh's exporter, whose call latencies follow where kubesim runs
//! the pods: the daemon's flows must match what the exporter accounted.

#[path = "../support/mesh.rs"]
mod test_mesh;

use std::sync::Arc;
use std::time::Duration;

use super::explain::{config_for, explain};
use heatscaler_core::planner::placement::Flow;
use heatscaler_daemon::config::{Duration as ConfigDuration, MeshKind, MeshMetricsConfig};
use heatscaler_daemon::observe::mesh::MeshObserver;
use heatscaler_daemon::observe::{Changes, ClusterStore, KubeObserver};
use heatscaler_daemon::telemetry::Metrics;
use kubesim::builders::PodTemplate;
use kubesim::{KubeSim, KubeSimHandle, NodeSpec, Options};
use test_mesh::{Edge, Format, MeshExporter, Network, TestPrometheus, Truth, ZONE};
use tokio::sync::Mutex;

const NS: &str = "shop";
/// Generous: the whole daemon binary runs its tests in parallel on two cores.
const WAIT: Duration = Duration::from_secs(90);
/// PromQL range: ten 1 s scrapes.
const WINDOW: u64 = 10;

fn config(url: &str, mesh: MeshKind) -> MeshMetricsConfig {
    MeshMetricsConfig {
        prometheus_url: url.into(),
        mesh,
        window: ConfigDuration::from_secs(WINDOW),
        interval: ConfigDuration::from_secs(1),
        pod_label: "pod".into(),
        ca_bundle: None,
        bearer_token: None,
        request_timeout: ConfigDuration::from_secs(5),
        failure_alert_after: ConfigDuration::from_secs(60),
    }
}

/// web (2 replicas, on n1 and n2) calls cart (on n1); cart calls db (zone b).
async fn shop() -> KubeSimHandle {
    let sim = KubeSim::start(Options::fast()).await.unwrap();
    for (node, zone) in [("n1", "a"), ("n2", "a"), ("n3", "b")] {
        sim.add_node(NodeSpec::new(node).cpu("4").memory("8Gi").label(ZONE, zone).label("shop/role", node)).unwrap();
    }
    sim.create(&k8s_openapi::api::core::v1::Namespace {
        metadata: kube::api::ObjectMeta { name: Some(NS.into()), ..Default::default() },
        ..Default::default()
    })
    .unwrap();
    let front = |app: &str| PodTemplate::new("app").label("app", app).requests("100m", "64Mi");
    sim.create(&front("web").spread_one_per_node().node_selector(ZONE, "a").deployment(NS, "web", 2)).unwrap();
    sim.create(&front("cart").node_selector("shop/role", "n1").deployment(NS, "cart", 1)).unwrap();
    sim.create(&front("db").node_selector("shop/role", "n3").deployment(NS, "db", 1)).unwrap();
    sim.wait_for("4 shop pods running", WAIT, |h| h.ready_pods(Some(NS)) == 4).await.unwrap();
    sim
}

fn edges() -> Vec<Edge> {
    vec![
        Edge { client: "web".into(), server: "cart".into(), rps_per_client_pod: 40.0, service_ms: 2.0 },
        Edge { client: "cart".into(), server: "db".into(), rps_per_client_pod: 25.0, service_ms: 3.0 },
    ]
}

async fn observed_store(sim: &KubeSimHandle) -> (KubeObserver, Arc<Mutex<ClusterStore>>) {
    let observer =
        KubeObserver::start(sim.kube_client_without_retries().unwrap(), Arc::new(Metrics::new()), Changes::new());
    tokio::time::timeout(WAIT, observer.health().wait_synced()).await.expect("first sync");
    let store = observer.store().clone();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let s = store.lock().await;
        let placed = s.snapshot().pods.iter().filter(|p| p.workload.is_some() && p.node_name.is_some()).count();
        if placed == 4 {
            break;
        }
        drop(s);
        assert!(std::time::Instant::now() < deadline, "shop pods not observed with their workloads");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (observer, store)
}

fn flow<'a>(flows: &'a [Flow], client: &str, server: &str) -> &'a Flow {
    flows
        .iter()
        .find(|f| f.client.name == client && f.server.name == server)
        .unwrap_or_else(|| panic!("no flow {client} → {server} in {flows:#?}"))
}

/// The observed p99 lies in the mesh bucket holding the exporter's latency
/// (the histogram can say no more), and requests/s within 10 %.
fn assert_matches(format: Format, observed: &Flow, truth: &Truth) {
    let rps = observed.requests_per_second;
    assert!(
        (rps - truth.requests_per_second).abs() <= 0.1 * truth.requests_per_second,
        "{rps} req/s observed, {} accounted",
        truth.requests_per_second
    );
    for (side, seen, real) in [
        ("same-node", observed.p99_same_node_ms, truth.same_node_ms),
        ("cross-node", observed.p99_cross_node_ms, truth.cross_node_ms),
    ] {
        match (seen, real) {
            (None, None) => {}
            (Some(seen), Some(real)) => {
                let (lo, hi) = format.bucket_of(real);
                assert!(lo < seen && seen <= hi, "{side} p99 {seen} ms outside ({lo}, {hi}] holding {real} ms");
            }
            _ => panic!("{side}: observed {seen:?}, accounted {real:?}"),
        }
    }
}

async fn read_now(observer: &MeshObserver, store: &Mutex<ClusterStore>) -> Vec<Flow> {
    let s = store.lock().await;
    let reading = observer.read(s.snapshot()).await.expect("Prometheus read");
    assert_eq!(reading.unknown_pairs, 0, "{reading:#?}");
    reading.flows
}

async fn run(format: Format, kind: MeshKind) {
    let sim = shop().await;
    let (_watches, store) = observed_store(&sim).await;
    let exporter = MeshExporter::start(sim.kube_client().unwrap(), NS, edges(), format, Network::default()).await;
    let prometheus = TestPrometheus::start(&[exporter.port]).await;
    let observer = MeshObserver::new(&config(&prometheus.url, kind)).unwrap();

    prometheus.wait_full_window(WINDOW).await;
    let flows = read_now(&observer, &store).await;
    assert_eq!(flows.len(), 2, "{flows:#?}");
    let web_cart = flow(&flows, "web", "cart");
    assert_matches(format, web_cart, &exporter.truth("web", "cart"));
    // One web replica shares n1 with cart, the other is a node away.
    assert!(web_cart.p99_same_node_ms.unwrap() < web_cart.p99_cross_node_ms.unwrap(), "{web_cart:?}");
    let cart_db = flow(&flows, "cart", "db");
    assert_matches(format, cart_db, &exporter.truth("cart", "db"));
    assert_eq!(cart_db.p99_same_node_ms, None, "cart and db never share a node");
    assert_eq!(cart_db.server.kind, "Deployment");
    // The server's own side of the same calls, without the hop: Istio's
    // `reporter="destination"` (cart's calls from web's replica on its node
    // and from the other; db's from cart, a node away only). Linkerd's
    // inbound series name no calling workload: no server side.
    let server_sides = |f: &Flow| (f.server_p99_same_node_ms, f.server_p99_cross_node_ms);
    match kind {
        MeshKind::Istio => {
            for (f, service_ms, sides) in [(web_cart, 2.0, 2), (cart_db, 3.0, 1)] {
                let (lo, hi) = format.bucket_of(service_ms);
                let seen: Vec<f64> =
                    [f.server_p99_same_node_ms, f.server_p99_cross_node_ms].into_iter().flatten().collect();
                assert_eq!(seen.len(), sides, "{f:?}");
                assert!(seen.iter().all(|&p| lo < p && p <= hi), "{f:?}: server p99 outside ({lo}, {hi}]");
            }
            assert_eq!(cart_db.server_p99_same_node_ms, None, "{cart_db:?}");
        }
        MeshKind::Linkerd => assert_eq!((server_sides(web_cart), server_sides(cart_db)), ((None, None), (None, None))),
    }

    // CPU pressure on cart slows every call to it, on either side.
    exporter.set_cpu_pressure("cart", 0.8);
    // Once the window no longer holds the calls from before.
    tokio::time::sleep(Duration::from_secs(WINDOW + 2)).await;
    let pressed = read_now(&observer, &store).await;
    let slow = flow(&pressed, "web", "cart");
    assert_matches(format, slow, &exporter.truth("web", "cart"));
    assert!(slow.p99_same_node_ms.unwrap() > web_cart.p99_same_node_ms.unwrap(), "{slow:?} vs {web_cart:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_series_through_prometheus_match_the_exporters_calls() {
    run(Format::Istio, MeshKind::Istio).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linkerd_series_through_prometheus_match_the_exporters_calls() {
    run(Format::Linkerd, MeshKind::Linkerd).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prometheus_error_is_typed_and_an_unreachable_one_retryable() {
    let prometheus = TestPrometheus::start(&[]).await;
    let observer = MeshObserver::new(&config(&prometheus.url, MeshKind::Istio)).unwrap();
    let empty = observer.read(&Default::default()).await.unwrap();
    assert!(empty.flows.is_empty());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let gone = MeshObserver::new(&config(&format!("http://127.0.0.1:{port}"), MeshKind::Istio)).unwrap();
    let e = gone.read(&Default::default()).await.unwrap_err();
    assert!(e.retryable(), "{e}");
    assert!(!e.to_string().contains(&port.to_string()), "the URL stays out of errors: {e}");
}

/// web (one replica, on n2) calls cart (on n1); web may run on n1 as well,
/// which joined after web was scheduled. (No node is relabelled: kubesim's
/// node heartbeats may rewrite a node updated meanwhile.)
async fn movable_pair() -> KubeSimHandle {
    let sim = KubeSim::start(Options::fast()).await.unwrap();
    let node = |name: &str| NodeSpec::new(name).cpu("4").memory("8Gi").label(ZONE, "a").label("shop/role", name);
    sim.create(&k8s_openapi::api::core::v1::Namespace {
        metadata: kube::api::ObjectMeta { name: Some(NS.into()), ..Default::default() },
        ..Default::default()
    })
    .unwrap();
    let app = |name: &str| PodTemplate::new("app").label("app", name).requests("100m", "64Mi");
    sim.add_node(node("n2")).unwrap();
    sim.create(&app("web").deployment(NS, "web", 1)).unwrap();
    sim.wait_for("web running on n2", WAIT, |h| h.ready_pods(Some(NS)) == 1).await.unwrap();
    sim.add_node(node("n1")).unwrap();
    sim.create(&app("cart").node_selector("shop/role", "n1").deployment(NS, "cart", 1)).unwrap();
    sim.wait_for("cart running on n1", WAIT, |h| h.ready_pods(Some(NS)) == 2).await.unwrap();
    sim
}

/// `heatscaler explain` reads the mesh once and says what the advisor makes
/// of it: the pair, its traffic, the latency on each side, the expected gain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_says_what_is_advised_from_the_meshs_traffic_and_why() {
    let sim = movable_pair().await;
    let edges = vec![Edge { client: "web".into(), server: "cart".into(), rps_per_client_pod: 100.0, service_ms: 2.0 }];
    let exporter = MeshExporter::start(sim.kube_client().unwrap(), NS, edges, Format::Istio, Network::default()).await;
    let prometheus = TestPrometheus::start(&[exporter.port]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_for(
        &sim,
        dir.path(),
        &format!(
            "mesh-metrics:\n  prometheus-url: {}\n  window: {WINDOW}s\n\
             placement-advisor:\n  mode: recommend\n  raise-after: 0s\n  min-requests-per-second: 1\n  min-latency-cost: 50\n",
            prometheus.url
        ),
    );
    prometheus.wait_full_window(WINDOW).await;
    let out = explain(&config, &[]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{text}", String::from_utf8_lossy(&out.stderr));
    println!("{text}");
    let line = text
        .lines()
        .find(|l| l.contains("placement co-locate Deployment/shop/web with Deployment/shop/cart"))
        .unwrap_or_else(|| panic!("no advice on web → cart:\n{text}"));
    for needle in [
        "advised (recommendation only)",
        " req/s",
        "100% crossing nodes",
        "same node vs",
        "cross-node",
        "expected gain",
    ] {
        assert!(line.contains(needle), "{needle}: {line}");
    }
}
