//! The test mesh: an exporter that plays a service mesh's proxies for a
//! synthetic call graph, and Debian's `prometheus` scraping it.
//!
//! The exporter reads where each pod runs from a Kubernetes API (kubesim or
//! the real control plane) every tick and accounts each client pod's calls,
//! spread evenly over the server's running replicas, at a latency set by
//! placement — same node, another node of the zone, another zone — and
//! multiplied by the server's CPU pressure (`1 / (1 − utilisation)`, a
//! queue's growth). It exports what Istio's sidecars export (`reporter`
//! source and destination) or what Linkerd's proxies export (outbound and
//! inbound), with each mesh's default buckets, the scraped pod's name in the
//! `pod` label as the meshes' scrape configurations put it. `truth()` is what
//! it accounted: the observer's output through Prometheus is checked against it.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};

pub const ZONE: &str = "topology.kubernetes.io/zone";

/// Istio's default request-duration buckets (ms).
const ISTIO_BUCKETS: &[f64] = &[0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0];
/// Linkerd's proxy latency buckets (ms).
const LINKERD_BUCKETS: &[f64] =
    &[1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 100.0, 200.0, 300.0, 400.0, 500.0, 1000.0];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Istio,
    Linkerd,
}

impl Format {
    pub fn buckets(self) -> &'static [f64] {
        match self {
            Format::Istio => ISTIO_BUCKETS,
            Format::Linkerd => LINKERD_BUCKETS,
        }
    }

    /// The bucket `(lower, upper]` a latency falls in.
    pub fn bucket_of(self, ms: f64) -> (f64, f64) {
        let b = self.buckets();
        let i = b.iter().position(|&le| ms <= le).expect("latency within the buckets");
        (if i == 0 { 0.0 } else { b[i - 1] }, b[i])
    }
}

/// Calls from every pod of Deployment `client` to Deployment `server`.
#[derive(Clone, Debug)]
pub struct Edge {
    pub client: String,
    pub server: String,
    pub rps_per_client_pod: f64,
    /// The server's own time per call; placement adds to it.
    pub service_ms: f64,
}

/// What placement adds to a call (ms).
#[derive(Clone, Copy, Debug)]
pub struct Network {
    pub same_node: f64,
    pub other_node: f64,
    pub other_zone: f64,
}

impl Default for Network {
    fn default() -> Self {
        Self { same_node: 0.2, other_node: 6.0, other_zone: 18.0 }
    }
}

/// What the exporter accounted for a pair over the last tick.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Truth {
    pub requests_per_second: f64,
    /// The highest latency of a same-node call, if any ran on one node.
    pub same_node_ms: Option<f64>,
    pub cross_node_ms: Option<f64>,
}

#[derive(Default)]
struct Series {
    count: f64,
    sum: f64,
    /// Per bucket, non-cumulative; cumulated at exposition.
    buckets: Vec<f64>,
}

#[derive(Default)]
struct State {
    /// Exposition label sets → series.
    series: BTreeMap<Vec<(&'static str, String)>, Series>,
    pressure: HashMap<String, f64>,
    truth: BTreeMap<(String, String), Truth>,
}

pub struct MeshExporter {
    pub port: u16,
    state: Arc<Mutex<State>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for MeshExporter {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

struct PlacedPod {
    name: String,
    app: String,
    node: String,
}

impl MeshExporter {
    /// Serves `/metrics` on a free port and accounts calls every 100 ms.
    pub async fn start(client: kube::Client, namespace: &str, edges: Vec<Edge>, format: Format, net: Network) -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let served = state.clone();
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let state = served.clone();
                async move { exposition(&state.lock().unwrap(), format) }
            }),
        );
        let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let ticking = state.clone();
        let namespace = namespace.to_string();
        let ticker = tokio::spawn(async move {
            let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
            let nodes: Api<Node> = Api::all(client);
            let mut last = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let (Ok(pods), Ok(nodes)) =
                    (pods.list(&ListParams::default()).await, nodes.list(&ListParams::default()).await)
                else {
                    continue;
                };
                let zone_of: HashMap<String, String> = nodes
                    .items
                    .iter()
                    .map(|n| {
                        let zone = n.metadata.labels.as_ref().and_then(|l| l.get(ZONE)).cloned().unwrap_or_default();
                        (n.metadata.name.clone().unwrap_or_default(), zone)
                    })
                    .collect();
                let placed: Vec<PlacedPod> = pods
                    .items
                    .iter()
                    .filter(|p| {
                        p.metadata.deletion_timestamp.is_none()
                            && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                    })
                    .filter_map(|p| {
                        Some(PlacedPod {
                            name: p.metadata.name.clone()?,
                            app: p.metadata.labels.as_ref()?.get("app")?.clone(),
                            node: p.spec.as_ref()?.node_name.clone()?,
                        })
                    })
                    .collect();
                let now = Instant::now();
                let dt = (now - last).as_secs_f64();
                last = now;
                let mut state = ticking.lock().unwrap();
                account(&mut state, &namespace, &edges, &placed, &zone_of, net, format, dt);
            }
        });
        Self { port, state, tasks: vec![server, ticker] }
    }

    /// The server's CPU utilisation: its calls slow down by `1 / (1 − u)`.
    pub fn set_cpu_pressure(&self, workload: &str, utilisation: f64) {
        self.state.lock().unwrap().pressure.insert(workload.into(), utilisation.clamp(0.0, 0.95));
    }

    pub fn truth(&self, client: &str, server: &str) -> Truth {
        self.state.lock().unwrap().truth.get(&(client.to_string(), server.to_string())).cloned().unwrap_or_default()
    }
}

#[allow(clippy::too_many_arguments)]
fn account(
    state: &mut State,
    namespace: &str,
    edges: &[Edge],
    pods: &[PlacedPod],
    zone_of: &HashMap<String, String>,
    net: Network,
    format: Format,
    dt: f64,
) {
    state.truth.clear();
    let bounds = format.buckets();
    for edge in edges {
        let servers: Vec<&PlacedPod> = pods.iter().filter(|p| p.app == edge.server).collect();
        let factor = 1.0 / (1.0 - state.pressure.get(&edge.server).copied().unwrap_or(0.0));
        let mut truth = Truth::default();
        for client in pods.iter().filter(|p| p.app == edge.client) {
            for server in &servers {
                let network = if client.node == server.node {
                    net.same_node
                } else if zone_of.get(&client.node) == zone_of.get(&server.node) {
                    net.other_node
                } else {
                    net.other_zone
                };
                let latency = edge.service_ms * factor + network;
                let calls = edge.rps_per_client_pod / servers.len() as f64;
                truth.requests_per_second += calls;
                let side = if client.node == server.node { &mut truth.same_node_ms } else { &mut truth.cross_node_ms };
                *side = Some(side.map_or(latency, |m: f64| m.max(latency)));
                // The caller's proxy (Istio `source`, Linkerd `outbound`)
                // sees the network; the callee's sees its own time only.
                for (labels, ms) in [
                    (caller_labels(format, namespace, edge, client, server), latency),
                    (callee_labels(format, namespace, edge, client, server), edge.service_ms * factor),
                ] {
                    let s = state.series.entry(labels).or_default();
                    if s.buckets.is_empty() {
                        s.buckets = vec![0.0; bounds.len() + 1];
                    }
                    let n = calls * dt;
                    s.count += n;
                    s.sum += n * ms;
                    let i = bounds.iter().position(|&le| ms <= le).unwrap_or(bounds.len());
                    s.buckets[i] += n;
                }
            }
        }
        state.truth.insert((edge.client.clone(), edge.server.clone()), truth);
    }
}

fn caller_labels(
    format: Format,
    ns: &str,
    edge: &Edge,
    client: &PlacedPod,
    server: &PlacedPod,
) -> Vec<(&'static str, String)> {
    match format {
        // Istio's series do not name the callee's pod: one per caller pod.
        Format::Istio => vec![
            ("reporter", "source".into()),
            ("source_workload", edge.client.clone()),
            ("source_workload_namespace", ns.into()),
            ("destination_workload", edge.server.clone()),
            ("destination_workload_namespace", ns.into()),
            ("namespace", ns.into()),
            ("pod", client.name.clone()),
        ],
        Format::Linkerd => vec![
            ("direction", "outbound".into()),
            ("deployment", edge.client.clone()),
            ("namespace", ns.into()),
            ("pod", client.name.clone()),
            ("dst_deployment", edge.server.clone()),
            ("dst_namespace", ns.into()),
            ("dst_pod", server.name.clone()),
        ],
    }
}

fn callee_labels(
    format: Format,
    ns: &str,
    edge: &Edge,
    _client: &PlacedPod,
    server: &PlacedPod,
) -> Vec<(&'static str, String)> {
    match format {
        Format::Istio => vec![
            ("reporter", "destination".into()),
            ("source_workload", edge.client.clone()),
            ("source_workload_namespace", ns.into()),
            ("destination_workload", edge.server.clone()),
            ("destination_workload_namespace", ns.into()),
            ("namespace", ns.into()),
            ("pod", server.name.clone()),
        ],
        Format::Linkerd => vec![
            ("direction", "inbound".into()),
            ("deployment", edge.server.clone()),
            ("namespace", ns.into()),
            ("pod", server.name.clone()),
        ],
    }
}

fn exposition(state: &State, format: Format) -> String {
    let (requests, histogram) = match format {
        Format::Istio => ("istio_requests_total", "istio_request_duration_milliseconds"),
        Format::Linkerd => ("request_total", "response_latency_ms"),
    };
    let bounds = format.buckets();
    let render = |labels: &[(&str, String)], extra: Option<String>| {
        let mut out: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        out.extend(extra);
        out.join(",")
    };
    let mut text = format!("# TYPE {requests} counter\n");
    for (labels, s) in &state.series {
        writeln!(text, "{requests}{{{}}} {}", render(labels, None), s.count).unwrap();
    }
    writeln!(text, "# TYPE {histogram} histogram").unwrap();
    for (labels, s) in &state.series {
        let mut cumulative = 0.0;
        for (i, n) in s.buckets.iter().enumerate() {
            cumulative += n;
            let le = bounds.get(i).map_or("+Inf".to_string(), |b| b.to_string());
            writeln!(text, "{histogram}_bucket{{{}}} {cumulative}", render(labels, Some(format!("le=\"{le}\""))))
                .unwrap();
        }
        writeln!(text, "{histogram}_sum{{{}}} {}", render(labels, None), s.sum).unwrap();
        writeln!(text, "{histogram}_count{{{}}} {}", render(labels, None), s.count).unwrap();
    }
    text
}

/// Debian's `prometheus` on a free port, scraping the given targets every
/// second (`honor_labels`: the exporter's `pod` label is the scraped pod's).
pub struct TestPrometheus {
    pub url: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for TestPrometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TestPrometheus {
    pub async fn start(targets: &[u16]) -> TestPrometheus {
        let binary = PathBuf::from(std::env::var("HEATSCALER_PROMETHEUS").unwrap_or("/usr/bin/prometheus".into()));
        assert!(binary.is_file(), "{} missing: run tests/install-deps.sh", binary.display());
        let dir = tempfile::tempdir().unwrap();
        let targets: Vec<String> = targets.iter().map(|p| format!("'127.0.0.1:{p}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: mesh\n    honor_labels: true\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(&binary)
            .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if http.get(format!("{url}/-/ready")).send().await.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready: {}",
                std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        TestPrometheus { url, child, _dir: dir }
    }

    /// Waits until every target has been scraped through a whole `window`
    /// (one sample a second): before that, a rate covers part of it only.
    pub async fn wait_full_window(&self, window: u64) {
        let http = reqwest::Client::new();
        let query = format!("min(count_over_time(up[{window}s]))");
        let deadline = Instant::now() + Duration::from_secs(window * 3 + 30);
        loop {
            let answer: serde_json::Value = http
                .get(format!("{}/api/v1/query", self.url))
                .query(&[("query", &query)])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let samples = answer["data"]["result"][0]["value"][1].as_str().and_then(|v| v.parse::<f64>().ok());
            if samples.is_some_and(|n| n >= window as f64) {
                return;
            }
            assert!(Instant::now() < deadline, "no full window of scrapes: {answer}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
