//! Scrapes every node's kubelet, through the API server's node proxy or
//! directly (`usage.kubelet`, see [`super::direct`]).
//!
//! Nodes are scraped `concurrency` at a time, each under its own timeout and
//! body-size limit: a slow or broken kubelet costs one slot for at most
//! `node_timeout` and shows up as a [`NodeScrapeError`], never as a stalled
//! round. Going through the API server (rather than to each kubelet's port)
//! needs only RBAC on `nodes/proxy` and works wherever the daemon can reach
//! the API server — the master, where heatscaler runs under systemd.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use futures::{AsyncReadExt, StreamExt};
use jiff::Timestamp;

use super::counters::CpuCounters;
use super::direct::DirectKubelets;
use super::{NodeReadings, UsageScrape, cadvisor, summary};
use crate::config::{KubeletAccess, UsageCollection, UsageSource};

/// Larger bodies are refused: a Summary is ~2 KiB per pod and a cAdvisor
/// page ~20 KiB per pod, so 64 MiB is far above any real node.
pub const MAX_BODY_BYTES: usize = 64 << 20;

/// Why one node gave no usage this round.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScrapeFailure {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("request failed: {0}")]
    Request(String),
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
    #[error("{0}")]
    Parse(String),
    #[error("not a valid node name")]
    InvalidNodeName,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("scraping node {node}: {failure}")]
pub struct NodeScrapeError {
    pub node: String,
    pub failure: ScrapeFailure,
}

/// A node's scrape record, for metrics and alerts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeHealth {
    pub consecutive_failures: u32,
    pub total_failures: u64,
    pub last_error: Option<String>,
}

/// A node to scrape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScrapeTarget {
    pub node: String,
    /// Its kubelet's `https://<InternalIP>:<port>` from the watched Node, or
    /// why the Node gives none; read with `usage.kubelet: direct` only.
    pub kubelet: Result<String, String>,
}

impl ScrapeTarget {
    /// A node reached through the API server's proxy (no address needed).
    pub fn proxied(node: impl Into<String>) -> Self {
        Self { node: node.into(), kubelet: Err("not read through the proxy".into()) }
    }
}

pub struct UsageCollector {
    client: kube::Client,
    /// `Some` with `kubelet: direct`.
    direct: Option<std::sync::Arc<DirectKubelets>>,
    source: UsageSource,
    concurrency: usize,
    node_timeout: Duration,
    counters: CpuCounters,
    health: BTreeMap<String, NodeHealth>,
    failures_total: u64,
}

impl UsageCollector {
    pub fn new(client: kube::Client, config: &UsageCollection) -> Self {
        Self {
            client,
            direct: (config.kubelet == KubeletAccess::Direct).then(|| {
                std::sync::Arc::new(DirectKubelets::new(config.kubelet_ca_file.as_deref(), &config.kubelet_token_file))
            }),
            source: config.source,
            concurrency: config.concurrency.max(1) as usize,
            node_timeout: config.node_timeout.get(),
            counters: CpuCounters::default(),
            health: BTreeMap::new(),
            failures_total: 0,
        }
    }

    /// Scrapes `nodes` (the snapshot's nodes). Nodes not listed are
    /// forgotten, so state stays proportional to the cluster.
    /// `now` stamps cAdvisor lines that carry no timestamp.
    pub async fn collect(&mut self, nodes: &[ScrapeTarget], now: Timestamp) -> UsageScrape {
        let results: Vec<(String, Result<NodeReadings, ScrapeFailure>)> = futures::stream::iter(nodes.iter().cloned())
            .map(|target| {
                let client = self.client.clone();
                let direct = self.direct.clone();
                let (source, timeout) = (self.source, self.node_timeout);
                async move {
                    let result = match tokio::time::timeout(
                        timeout,
                        scrape_node(&client, direct.as_deref(), &target, source, now),
                    )
                    .await
                    {
                        Ok(r) => r,
                        Err(_) => Err(ScrapeFailure::Timeout(timeout)),
                    };
                    (target.node, result)
                }
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;

        let listed: HashSet<&str> = nodes.iter().map(|t| t.node.as_str()).collect();
        self.counters.retain_nodes(|n| listed.contains(n));
        self.health.retain(|n, _| listed.contains(n.as_str()));
        let mut scrape = UsageScrape::default();
        for (node, result) in results {
            let health = self.health.entry(node.clone()).or_default();
            match result {
                Ok(readings) => {
                    health.consecutive_failures = 0;
                    let (containers, node_usage) = self.counters.observe(&node, readings);
                    scrape.containers.extend(containers);
                    scrape.nodes.push(node_usage);
                }
                Err(failure) => {
                    health.consecutive_failures += 1;
                    health.total_failures += 1;
                    health.last_error = Some(failure.to_string());
                    self.failures_total += 1;
                    // Warn when a node starts failing, not every round while it stays down.
                    if health.consecutive_failures == 1 {
                        tracing::warn!(%node, error = %failure, "kubelet scrape failed");
                    } else {
                        tracing::debug!(%node, error = %failure, failures = health.consecutive_failures, "kubelet scrape still failing");
                    }
                    scrape.errors.push(NodeScrapeError { node, failure });
                }
            }
        }
        scrape.nodes.sort_by(|a, b| a.node.cmp(&b.node));
        scrape.errors.sort_by(|a, b| a.node.cmp(&b.node));
        scrape
    }

    pub fn health(&self) -> &BTreeMap<String, NodeHealth> {
        &self.health
    }

    /// Failed node scrapes since start (a Prometheus counter).
    pub fn failures_total(&self) -> u64 {
        self.failures_total
    }
}

/// The proxy path for a node; `None` when the name could smuggle in another path.
pub fn proxy_path(node: &str, source: UsageSource) -> Option<String> {
    let valid = !node.is_empty()
        && node.len() <= 253
        && node.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    let endpoint = endpoint(source);
    valid.then(|| format!("/api/v1/nodes/{node}/proxy/{endpoint}"))
}

/// The kubelet path of a source.
pub fn endpoint(source: UsageSource) -> &'static str {
    match source {
        UsageSource::Summary => "stats/summary",
        UsageSource::Cadvisor => "metrics/cadvisor",
    }
}

async fn scrape_node(
    client: &kube::Client,
    direct: Option<&DirectKubelets>,
    target: &ScrapeTarget,
    source: UsageSource,
    now: Timestamp,
) -> Result<NodeReadings, ScrapeFailure> {
    let path = proxy_path(&target.node, source).ok_or(ScrapeFailure::InvalidNodeName)?;
    let bytes = match direct {
        Some(direct) => direct.get(&target.kubelet, endpoint(source)).await?,
        None => through_proxy(client, path).await?,
    };
    match source {
        UsageSource::Summary => {
            summary::parse(&bytes).map(|s| s.readings()).map_err(|e| ScrapeFailure::Parse(e.to_string()))
        }
        UsageSource::Cadvisor => cadvisor::parse(&bytes, now).map_err(|e| ScrapeFailure::Parse(e.to_string())),
    }
}

async fn through_proxy(client: &kube::Client, path: String) -> Result<Vec<u8>, ScrapeFailure> {
    let request = http::Request::get(path).body(Vec::new()).map_err(|e| ScrapeFailure::Request(e.to_string()))?;
    let body = client.request_stream(request).await.map_err(|e| ScrapeFailure::Request(e.to_string()))?;
    let mut bytes = Vec::new();
    std::pin::pin!(body.take(MAX_BODY_BYTES as u64 + 1))
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| ScrapeFailure::Request(e.to_string()))?;
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ScrapeFailure::TooLarge(MAX_BODY_BYTES));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tokio::io::AsyncReadExt as _;

    /// A TCP server that accepts connections and never answers: every node
    /// behind it is a hung kubelet. Records when each connection arrived.
    async fn black_hole() -> (String, Arc<Mutex<Vec<std::time::Instant>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let log = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut conn, _) = listener.accept().await.unwrap();
                log.lock().unwrap().push(std::time::Instant::now());
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    while matches!(conn.read(&mut buf).await, Ok(n) if n > 0) {}
                });
            }
        });
        (url, accepted)
    }

    #[tokio::test]
    async fn hung_nodes_time_out_within_the_concurrency_bound_and_are_counted() {
        let (url, accepted) = black_hole().await;
        let client = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
        let config = UsageCollection {
            source: UsageSource::Summary,
            interval: crate::config::Duration::from_secs(60),
            concurrency: 2,
            node_timeout: crate::config::Duration::from_millis(300),
            ..UsageCollection::default()
        };
        let mut collector = UsageCollector::new(client, &config);
        let nodes: Vec<ScrapeTarget> = ["n1", "n2", "n3", "n4", "Bad/Name"].map(ScrapeTarget::proxied).to_vec();

        let started = std::time::Instant::now();
        let scrape = collector.collect(&nodes, "2026-01-05T10:00:00Z".parse().unwrap()).await;
        assert!(scrape.containers.is_empty() && scrape.nodes.is_empty());
        let failures: Vec<_> = scrape.errors.iter().map(|e| (e.node.as_str(), e.failure.clone())).collect();
        let timeout = ScrapeFailure::Timeout(Duration::from_millis(300));
        assert_eq!(
            failures,
            [
                ("Bad/Name", ScrapeFailure::InvalidNodeName),
                ("n1", timeout.clone()),
                ("n2", timeout.clone()),
                ("n3", timeout.clone()),
                ("n4", timeout.clone())
            ]
        );
        // Every valid node was tried, at most two at a time: the third
        // connection could only open once a slot was freed by a timeout.
        let accepted = accepted.lock().unwrap().clone();
        assert_eq!(accepted.len(), 4);
        assert!(accepted[2].duration_since(started) >= Duration::from_millis(300));

        assert_eq!(collector.failures_total(), 5);
        let _ = collector.collect(&nodes[..1], "2026-01-05T10:01:00Z".parse().unwrap()).await;
        assert_eq!(collector.failures_total(), 6);
        let health: Vec<_> = collector.health().iter().map(|(n, h)| (n.as_str(), h.consecutive_failures)).collect();
        assert_eq!(health, [("n1", 2)], "nodes no longer listed are forgotten");
        assert!(collector.health()["n1"].last_error.as_deref().unwrap().contains("no answer within"));
    }

    #[tokio::test]
    async fn direct_scrapes_take_the_kubelet_address_from_the_watch_and_never_ask_the_api_server() {
        // An API server that never answers: a scrape that asked it for the
        // Node (as each direct scrape did, issue 22) would time out on it.
        let (url, accepted) = black_hole().await;
        let client = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "t").unwrap();
        let ca = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/kubelet/test-ca.crt");
        let config = UsageCollection {
            kubelet: KubeletAccess::Direct,
            kubelet_ca_file: Some(ca),
            kubelet_token_file: token,
            node_timeout: crate::config::Duration::from_secs(5),
            ..UsageCollection::default()
        };
        let mut collector = UsageCollector::new(client, &config);
        // A kubelet port nothing listens on: refused at once.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let nodes = [
            ScrapeTarget { node: "n1".into(), kubelet: Ok(format!("https://127.0.0.1:{closed}")) },
            ScrapeTarget { node: "n2".into(), kubelet: Err("the Node has no InternalIP".into()) },
        ];
        let started = std::time::Instant::now();
        let scrape = collector.collect(&nodes, "2026-01-05T10:00:00Z".parse().unwrap()).await;
        let failures: Vec<String> = scrape.errors.iter().map(|e| format!("{}: {}", e.node, e.failure)).collect();
        assert_eq!(failures.len(), 2, "{failures:?}");
        assert!(failures[0].starts_with(&format!("n1: request failed: https://127.0.0.1:{closed}/stats/summary")));
        assert_eq!(failures[1], "n2: request failed: the Node has no InternalIP");
        assert!(started.elapsed() < Duration::from_secs(5), "no scrape waited on the API server");
        assert!(accepted.lock().unwrap().is_empty(), "no request to the API server");
    }

    #[test]
    fn proxy_paths_only_for_node_names() {
        assert_eq!(
            proxy_path("minion-0.cluster.local", UsageSource::Summary).unwrap(),
            "/api/v1/nodes/minion-0.cluster.local/proxy/stats/summary"
        );
        assert_eq!(proxy_path("m1", UsageSource::Cadvisor).unwrap(), "/api/v1/nodes/m1/proxy/metrics/cadvisor");
        assert_eq!(proxy_path("../../secrets", UsageSource::Summary), None);
        assert_eq!(proxy_path("a/b", UsageSource::Summary), None);
        assert_eq!(proxy_path("", UsageSource::Summary), None);
    }
}
