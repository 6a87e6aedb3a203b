//! Emulated kubelets for a real Kubernetes control plane.
//!
//! heatscaler's tests run a real kube-apiserver, scheduler and
//! controller-manager (`tests/kubernetes/up.sh`); what a test cluster lacks is
//! nodes. This crate is their kubelets, as clients of any API server (it uses
//! only the API, with the credentials it is given — the admin kubeconfig, as
//! kwok does): each node registers its Node object (providerID, labels,
//! taints, capacity and allocatable including extended resources, InternalIP,
//! kubelet port), renews its Lease, posts status, runs the pods bound to it,
//! answers in-place resizes as the 1.35 kubelet does and serves
//! `/stats/summary`, `/metrics/cadvisor` and `/metrics/resource` over HTTPS on
//! its own address, so the API server's node proxy reaches it.
//!
//! Node addresses: the API server proxies only to global unicast addresses
//! (`isProxyableHostname` in `pkg/registry/core/node/strategy.go` refuses
//! 127/8 with "address not allowed"), so nodes get addresses from a network
//! routed to the loopback interface — by default 198.18.0.0/15, the range
//! reserved for network benchmarking (RFC 2544), made local by
//! `ip route add local 198.18.0.0/15 dev lo` (`tests/kubernetes/up.sh` does it).
//! Traffic to it never leaves the machine.
//!
//! What a node can go through, each a separate call because tests need them apart:
//! - [`Emulator::add_node`]: a new VM booted; cloud-init started the kubelet,
//!   which registers the Node. Only then does the Node exist.
//! - [`Emulator::stop_kubelet`] / [`Emulator::start_kubelet`]: the kubelet
//!   stops (heartbeats, status and pod updates stop; the real node lifecycle
//!   controller marks the node `Unknown` and taints it) and comes back.
//! - [`Emulator::vm_deleted`]: the VM is gone — the kubelet stops for good.
//!   The Node object stays, as it would without a cloud controller manager.
//! - [`Emulator::cloud_delete_node`]: the cloud controller manager noticed the
//!   instance is gone and deletes the Node object.
//! - [`Emulator::remove_node`] does both.
//!
//! Dropping the [`Emulator`] stops every kubelet and server it runs.

pub mod admin;
mod config;
mod kubelet;
mod node;
pub mod resources;
mod server;
pub mod stats;

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, DeleteParams};
use kubesim::usage::Usage;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

pub use config::{NodeSpec, Taint, Timing};
pub use kubesim::usage::{UsageModel, UsageStep, UsageTarget};
pub use node::KUBELET_VERSION;

/// How to start an emulator.
pub struct EmulatorOptions {
    /// A client of the API server; the admin's works (see the crate docs).
    pub client: kube::Client,
    /// PEM files of the kubelet endpoint's serving certificate and key
    /// (`tests/kubernetes/up.sh` writes `pki/kubelet-serving.{crt,key}`).
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    pub timing: Timing,
    /// Usage of containers no model targets.
    pub default_usage: UsageModel,
    /// Where node addresses come from: a network routed to the loopback
    /// interface (see the crate docs). Default 198.18.0.0/15.
    pub node_network: (Ipv4Addr, u8),
    /// Authenticate and authorise requests to the kubelet endpoint as a
    /// kubelet in webhook mode does (`--authentication-token-webhook`,
    /// `--authorization-mode=Webhook`): bearer token → TokenReview, then a
    /// SubjectAccessReview on `nodes/<subresource>`. Off by default: the API
    /// server's client certificate (its node proxy) is not authenticated here.
    pub webhook_auth: bool,
}

/// The default [`EmulatorOptions::node_network`].
pub const DEFAULT_NODE_NETWORK: (Ipv4Addr, u8) = (Ipv4Addr::new(198, 18, 0, 0), 15);

/// Parses `a.b.c.d/len` (an [`EmulatorOptions::node_network`]).
pub fn parse_network(text: &str) -> anyhow::Result<(Ipv4Addr, u8)> {
    let (ip, len) = text.split_once('/').with_context(|| format!("{text}: not a.b.c.d/len"))?;
    let len: u8 = len.parse().with_context(|| format!("{text}: prefix length"))?;
    anyhow::ensure!((8..=24).contains(&len), "{text}: the prefix length must be 8 to 24");
    Ok((ip.parse().with_context(|| format!("{text}: address"))?, len))
}

impl EmulatorOptions {
    pub fn new(client: kube::Client, tls_cert: impl Into<PathBuf>, tls_key: impl Into<PathBuf>) -> Self {
        EmulatorOptions {
            client,
            tls_cert: tls_cert.into(),
            tls_key: tls_key.into(),
            timing: Timing::default(),
            default_usage: UsageModel::constant(0, 0),
            node_network: DEFAULT_NODE_NETWORK,
            webhook_auth: false,
        }
    }

    pub fn webhook_auth(mut self, on: bool) -> Self {
        self.webhook_auth = on;
        self
    }

    pub fn node_network(mut self, network: (Ipv4Addr, u8)) -> Self {
        self.node_network = network;
        self
    }

    pub fn timing(mut self, timing: Timing) -> Self {
        self.timing = timing;
        self
    }
}

/// What the stats endpoints need about a running pod beyond its usage.
#[derive(Clone, Debug, Default)]
pub struct PodMeta {
    pub qos: String,
    /// (container name, container ID, image).
    pub containers: Vec<(String, String, String)>,
}

/// One node as its kubelet knows it.
pub(crate) struct NodeContext {
    pub client: kube::Client,
    pub spec: NodeSpec,
    pub ip: Ipv4Addr,
    /// Which node of the emulator this is (pod addresses derive from it).
    pub index: u32,
    pub port: u16,
    pub timing: Timing,
    pub usage: Arc<Usage>,
    pub pods_meta: Mutex<HashMap<String, PodMeta>>,
    pub registered: Timestamp,
    pub boot_id: String,
}

impl NodeContext {
    fn memory_capacity(&self) -> u64 {
        let q = k8s_openapi::apimachinery::pkg::api::resource::Quantity(
            self.spec.capacity.get("memory").cloned().unwrap_or_default(),
        );
        resources::amount("memory", &q).max(0) as u64
    }
}

struct NodeEntry {
    ctx: Arc<NodeContext>,
    kubelet: Option<JoinHandle<()>>,
}

/// The state of one emulated node, as [`Emulator::nodes`] reports it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfo {
    pub name: String,
    pub ip: Ipv4Addr,
    pub kubelet_running: bool,
}

/// A running emulator: the kubelets of every node added to it.
pub struct Emulator {
    client: kube::Client,
    timing: Timing,
    acceptor: TlsAcceptor,
    webhook_auth: bool,
    usage: Arc<Usage>,
    port: u16,
    /// The network's first address and size, and this emulator's first block
    /// of 256 addresses in it (random, so emulators side by side mostly differ).
    network: (u32, u32),
    first_block: u32,
    next_index: Mutex<u32>,
    nodes: Mutex<BTreeMap<String, NodeEntry>>,
    by_ip: server::NodesByIp,
    /// Holds the port on the first address for the emulator's lifetime.
    _port_reservation: std::net::TcpListener,
}

impl Emulator {
    /// Loads the TLS material and reserves the kubelet port; nodes come with [`Emulator::add_node`].
    pub async fn start(options: EmulatorOptions) -> anyhow::Result<Emulator> {
        let acceptor = server::tls_acceptor(&options.tls_cert, &options.tls_key)?;
        let (base, len) = options.node_network;
        let size = 1u32 << (32 - len);
        let network = (u32::from(base) & !(size - 1), size);
        let blocks = size / 256;
        // When two emulators pick the same block their ports still differ,
        // which keeps every (address, port) unique.
        let mut last_error = None;
        for _ in 0..20 {
            let first_block = rand::random_range(0..blocks);
            let reserve = Ipv4Addr::from(network.0 + first_block * 256 + 1);
            match std::net::TcpListener::bind((reserve, 0)) {
                Ok(reservation) => {
                    let port = reservation.local_addr()?.port();
                    return Ok(Emulator {
                        client: options.client,
                        timing: options.timing,
                        acceptor,
                        webhook_auth: options.webhook_auth,
                        usage: Arc::new(Usage::new(options.default_usage)),
                        port,
                        network,
                        first_block,
                        next_index: Mutex::new(0),
                        nodes: Mutex::new(BTreeMap::new()),
                        by_ip: Arc::default(),
                        _port_reservation: reservation,
                    });
                }
                Err(e) => last_error = Some(e),
            }
        }
        let e = last_error.map(anyhow::Error::from).unwrap_or_else(|| anyhow::anyhow!("empty network"));
        Err(e).with_context(|| {
            format!(
                "binding the kubelet port in {base}/{len}: is the network routed to the loopback \
                 (`ip route add local {base}/{len} dev lo`, which tests/kubernetes/up.sh does)?"
            )
        })
    }

    /// The kubelet port every node of this emulator registers (`daemonEndpoints`).
    pub fn port(&self) -> u16 {
        self.port
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, NodeEntry>> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next node address: .2 to .254 of this emulator's block, then the next block.
    fn next_ip(&self) -> anyhow::Result<(Ipv4Addr, u32)> {
        let mut next = self.next_index.lock().unwrap_or_else(|e| e.into_inner());
        let index = *next;
        let blocks = self.network.1 / 256;
        anyhow::ensure!(index < blocks * 253, "this emulator ran out of node addresses");
        *next += 1;
        let block = (self.first_block + index / 253) % blocks;
        let ip = Ipv4Addr::from(self.network.0 + block * 256 + 2 + index % 253);
        Ok((ip, index))
    }

    /// A new node: its kubelet registers the Node (with a first Lease) before
    /// this returns, then runs. Returns the node's InternalIP.
    pub async fn add_node(&self, spec: NodeSpec) -> anyhow::Result<Ipv4Addr> {
        anyhow::ensure!(!self.lock().contains_key(&spec.name), "node {} already exists in this emulator", spec.name);
        let (ip, index) = self.next_ip()?;
        let ctx = Arc::new(NodeContext {
            client: self.client.clone(),
            spec,
            ip,
            index,
            port: self.port,
            timing: self.timing.clone(),
            usage: self.usage.clone(),
            pods_meta: Mutex::default(),
            registered: Timestamp::now(),
            boot_id: uuid_like(),
        });
        let kubelet = self.launch(ctx.clone()).await?;
        self.lock().insert(ctx.spec.name.clone(), NodeEntry { ctx, kubelet: Some(kubelet) });
        Ok(ip)
    }

    async fn launch(&self, ctx: Arc<NodeContext>) -> anyhow::Result<JoinHandle<()>> {
        let name = ctx.spec.name.clone();
        let listener = TcpListener::bind((ctx.ip, ctx.port))
            .await
            .with_context(|| format!("kubelet endpoint of {name} on {}:{}", ctx.ip, ctx.port))?;
        let nodes: Api<Node> = Api::all(ctx.client.clone());
        let leases: Api<Lease> = Api::namespaced(ctx.client.clone(), node::LEASE_NAMESPACE);
        node::register(&nodes, &ctx.spec, ctx.ip, ctx.port, &ctx.boot_id)
            .await
            .with_context(|| format!("registering node {name}"))?;
        node::renew_lease(&leases, &nodes, &name, &ctx.timing)
            .await
            .with_context(|| format!("lease of node {name}"))?;
        self.by_ip.lock().unwrap_or_else(|e| e.into_inner()).insert(ctx.ip, ctx.clone());
        let acceptor = self.acceptor.clone();
        let by_ip = self.by_ip.clone();
        let auth = self.webhook_auth.then(|| self.client.clone());
        Ok(tokio::spawn(async move {
            let mut tasks = JoinSet::new();
            tasks.spawn(server::serve(listener, acceptor, by_ip, auth));
            tasks.spawn(heartbeat(ctx.clone(), nodes, leases));
            tasks.spawn(kubelet::Kubelet::new(ctx).run());
            // Dropping this future (abort) drops the set, which aborts them all.
            while tasks.join_next().await.is_some() {}
        }))
    }

    /// The kubelet of `name` stops: no more heartbeats, status or pod updates,
    /// and its endpoint refuses connections. Pods and the Node stay.
    pub fn stop_kubelet(&self, name: &str) -> anyhow::Result<()> {
        let mut nodes = self.lock();
        let entry = nodes.get_mut(name).with_context(|| format!("no node {name} in this emulator"))?;
        if let Some(k) = entry.kubelet.take() {
            k.abort();
        }
        Ok(())
    }

    /// The kubelet of `name` starts again: it posts status, renews its Lease
    /// and takes up the pods bound to the node (finishing deletions that
    /// waited for it).
    pub async fn start_kubelet(&self, name: &str) -> anyhow::Result<()> {
        let ctx = {
            let nodes = self.lock();
            let entry = nodes.get(name).with_context(|| format!("no node {name} in this emulator"))?;
            anyhow::ensure!(entry.kubelet.is_none(), "the kubelet of {name} is running");
            entry.ctx.clone()
        };
        // A kubelet stopped a moment ago may still hold its listener while its task unwinds.
        let mut attempt = 0;
        let kubelet = loop {
            match self.launch(ctx.clone()).await {
                Ok(k) => break k,
                Err(e) if attempt < 20 && format!("{e:#}").contains("in use") => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e),
            }
        };
        if let Some(entry) = self.lock().get_mut(name) {
            entry.kubelet = Some(kubelet);
        }
        Ok(())
    }

    /// The node's VM is deleted: its kubelet stops for good and its address
    /// answers nothing. The Node object stays until [`Emulator::cloud_delete_node`].
    pub fn vm_deleted(&self, name: &str) -> anyhow::Result<()> {
        let entry = self.lock().remove(name).with_context(|| format!("no node {name} in this emulator"))?;
        if let Some(k) = entry.kubelet {
            k.abort();
        }
        self.by_ip.lock().unwrap_or_else(|e| e.into_inner()).remove(&entry.ctx.ip);
        self.usage.node_removed(name);
        Ok(())
    }

    /// Deletes the Node object, as the OpenStack cloud controller manager does
    /// once the instance behind it is gone. A missing Node is not an error.
    pub async fn cloud_delete_node(&self, name: &str) -> anyhow::Result<()> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        match nodes.delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e).with_context(|| format!("deleting node {name}")),
        }
    }

    /// The VM is deleted and the cloud controller manager deletes its Node.
    pub async fn remove_node(&self, name: &str) -> anyhow::Result<()> {
        self.vm_deleted(name)?;
        self.cloud_delete_node(name).await
    }

    /// Sets the usage model of the containers `target` selects (now and later).
    pub fn set_usage(&self, target: UsageTarget, model: UsageModel) -> anyhow::Result<()> {
        self.usage.set(target, model).map_err(|e| anyhow::anyhow!("usage target: {e}"))
    }

    /// Every container back to the default model.
    pub fn clear_usage(&self) {
        self.usage.clear();
    }

    pub fn node_ip(&self, name: &str) -> Option<Ipv4Addr> {
        self.lock().get(name).map(|e| e.ctx.ip)
    }

    pub fn nodes(&self) -> Vec<NodeInfo> {
        self.lock()
            .values()
            .map(|e| NodeInfo { name: e.ctx.spec.name.clone(), ip: e.ctx.ip, kubelet_running: e.kubelet.is_some() })
            .collect()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        for entry in self.lock().values_mut() {
            if let Some(k) = entry.kubelet.take() {
                k.abort();
            }
        }
    }
}

/// Renews the Lease every `lease_renew_interval` and posts node status every
/// `node_status_report_frequency`, as the kubelet's two heartbeats.
async fn heartbeat(ctx: Arc<NodeContext>, nodes: Api<Node>, leases: Api<Lease>) {
    let mut lease_tick = tokio::time::interval(ctx.timing.lease_renew_interval);
    let mut status_tick = tokio::time::interval(ctx.timing.node_status_report_frequency);
    lease_tick.tick().await;
    status_tick.tick().await;
    loop {
        tokio::select! {
            _ = lease_tick.tick() => {
                if let Err(e) = node::renew_lease(&leases, &nodes, &ctx.spec.name, &ctx.timing).await {
                    tracing::warn!(node = ctx.spec.name, "lease renewal: {e}");
                }
            }
            _ = status_tick.tick() => {
                if let Err(e) = node::post_status(&nodes, &ctx.spec, ctx.ip, ctx.port, &ctx.boot_id).await {
                    tracing::warn!(node = ctx.spec.name, "node status: {e}");
                }
            }
        }
    }
}

fn uuid_like() -> String {
    let b: [u8; 16] = rand::random();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}
