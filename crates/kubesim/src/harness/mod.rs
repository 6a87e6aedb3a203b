//! The harness side: starting a kubesim server in-process and controlling the
//! simulated cluster directly (nodes joining and leaving, usage models, fault
//! injection, waiting for conditions). Code under test only ever talks HTTP.

pub mod builders;
pub mod design_scale;
pub mod nodes;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::{NamespaceResourceScope, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::error::ApiError;
use crate::faults::{FaultRule, Faults};
use crate::kinds::Sub;
use crate::options::Options;
use crate::registry::DeleteOptions;
use crate::resources::Kind;
use crate::sim::Sim;
use crate::store::ObjKey;
use crate::usage::{UsageModel, UsageTarget};
pub use nodes::NodeSpec;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubesim: cannot listen on {address}: {source}")]
    Listen { address: SocketAddr, source: std::io::Error },
    #[error("kubesim: {0}")]
    Api(#[from] ApiError),
    #[error("kubesim: {kind} is not a kind kubesim serves")]
    UnknownKind { kind: String },
    #[error("kubesim: object does not convert to/from {kind}: {source}")]
    Convert { kind: String, source: serde_json::Error },
    #[error("kubesim: invalid usage target: {0}")]
    UsageTarget(String),
    #[error("kubesim: timed out after {timeout:?} waiting for {what}")]
    Timeout { what: String, timeout: Duration },
    #[error("kubesim: writing kubeconfig to {path}: {source}")]
    Kubeconfig { path: String, source: std::io::Error },
    #[error("kubesim: building a kube client: {0}")]
    Client(String),
}

/// Starts kubesim servers.
pub struct KubeSim;

impl KubeSim {
    /// Starts a server on `options.listen` with the built-in control plane, on
    /// the current tokio runtime. The `default`, `kube-system`, `kube-public`
    /// and `kube-node-lease` namespaces exist from the start.
    pub async fn start(options: Options) -> Result<KubeSimHandle, Error> {
        let address = options.listen;
        let listener = TcpListener::bind(address).await.map_err(|source| Error::Listen { address, source })?;
        let addr = listener.local_addr().map_err(|source| Error::Listen { address, source })?;
        let sim = Sim::new(options);
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let obj = serde_json::json!({"metadata": {"name": ns}});
            sim.registry.create(Kind::Namespace, None, obj, false)?;
        }
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        tasks.spawn(crate::api::serve(sim.clone(), listener, shutdown_rx));
        crate::controllers::spawn_all(&sim, &mut tasks);
        tracing::info!(%addr, "kubesim listening");
        Ok(KubeSimHandle { sim, addr, tasks, shutdown })
    }
}

/// A running kubesim. Dropping it stops the server and every controller.
pub struct KubeSimHandle {
    sim: Arc<Sim>,
    addr: SocketAddr,
    tasks: JoinSet<()>,
    shutdown: watch::Sender<bool>,
}

impl Drop for KubeSimHandle {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
        self.tasks.abort_all();
    }
}

fn kind_of<K: Resource>() -> Result<Kind, Error> {
    Kind::from_kind_name(K::KIND)
        .filter(|k| k.api_version() == K::API_VERSION)
        .ok_or_else(|| Error::UnknownKind { kind: format!("{}/{}", K::API_VERSION, K::KIND) })
}

fn convert<K: DeserializeOwned>(value: &serde_json::Value, kind: &str) -> Result<K, Error> {
    serde_json::from_value(value.clone()).map_err(|source| Error::Convert { kind: kind.to_string(), source })
}

fn key_for(kind: Kind, namespace: Option<&str>, name: &str) -> ObjKey {
    if kind.namespaced() { ObjKey::new(namespace.unwrap_or("default"), name) } else { ObjKey::cluster(name) }
}

impl KubeSimHandle {
    /// Base URL, `http://127.0.0.1:PORT`.
    /// The simulator behind the handle, for the crate's own tests.
    #[cfg(test)]
    pub(crate) fn sim(&self) -> &Arc<Sim> {
        &self.sim
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A kubeconfig for this server: plain HTTP, no credentials (none are checked).
    pub fn kubeconfig(&self) -> String {
        kubeconfig(&self.url())
    }

    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let path = path.as_ref();
        std::fs::write(path, self.kubeconfig())
            .map_err(|source| Error::Kubeconfig { path: path.display().to_string(), source })
    }

    /// A kube-rs configuration for this server (namespace `default`).
    pub fn kube_config(&self) -> Result<kube::Config, Error> {
        let uri: http::Uri = self.url().parse().map_err(|e: http::uri::InvalidUri| Error::Client(e.to_string()))?;
        let mut config = kube::Config::new(uri);
        config.default_namespace = "default".to_string();
        Ok(config)
    }

    /// A kube-rs client for this server — a convenience for tests; it talks
    /// HTTP like any other. Note that kube-rs' default retry layer retries
    /// 429/503/504 (15 times, exponential back-off): a PDB-blocked eviction
    /// only surfaces after minutes. [`Self::kube_client_without_retries`]
    /// sees every answer as it is.
    pub fn kube_client(&self) -> Result<kube::Client, Error> {
        kube::Client::try_from(self.kube_config()?).map_err(|e| Error::Client(e.to_string()))
    }

    /// A kube-rs client without kube-rs' built-in retry of 429/503/504.
    pub fn kube_client_without_retries(&self) -> Result<kube::Client, Error> {
        let mut config = self.kube_config()?;
        config.default_retry = false;
        kube::Client::try_from(config).map_err(|e| Error::Client(e.to_string()))
    }

    // ---- nodes -------------------------------------------------------------

    /// A minion joins: its Node is registered Ready with the given capacity.
    pub fn add_node(&self, spec: NodeSpec) -> Result<k8s_openapi::api::core::v1::Node, Error> {
        let obj = nodes::add_node(&self.sim, &spec)?;
        convert(&obj.value(), "Node")
    }

    /// A minion is gone: its Node is deleted and its pods are garbage-collected.
    pub fn remove_node(&self, name: &str) -> Result<(), Error> {
        Ok(nodes::remove_node(&self.sim, name)?)
    }

    /// Sets the node's Ready condition (False → Unknown, as when the kubelet stops reporting).
    pub fn set_node_ready(&self, name: &str, ready: bool) -> Result<(), Error> {
        Ok(nodes::set_node_ready(&self.sim, name, ready)?)
    }

    // ---- objects -----------------------------------------------------------

    /// Creates any served object (admission and defaulting as over HTTP).
    pub fn create<K: Resource + Serialize + DeserializeOwned>(&self, obj: &K) -> Result<K, Error> {
        let kind = kind_of::<K>()?;
        let value = serde_json::to_value(obj).map_err(|source| Error::Convert { kind: K::KIND.into(), source })?;
        let namespace = value["metadata"]["namespace"].as_str().map(str::to_string);
        let ns = if kind.namespaced() { Some(namespace.as_deref().unwrap_or("default")) } else { None };
        let created = self.sim.registry.create(kind, ns, value, false)?;
        convert(&created.value(), K::KIND)
    }

    /// Reads an object (None if absent). `namespace` is ignored for cluster-scoped kinds.
    pub fn get<K: Resource + DeserializeOwned>(&self, namespace: Option<&str>, name: &str) -> Option<K> {
        let kind = kind_of::<K>().ok()?;
        let obj = self.sim.store.get(kind, &key_for(kind, namespace, name))?;
        convert(&obj.value(), K::KIND).ok()
    }

    /// Lists objects of a kind, in one namespace or all.
    pub fn list<K: Resource + DeserializeOwned>(&self, namespace: Option<&str>) -> Vec<K> {
        let Ok(kind) = kind_of::<K>() else { return Vec::new() };
        let ns = if kind.namespaced() { namespace } else { None };
        let (items, _) = self.sim.store.list(kind, ns);
        items.iter().filter_map(|o| convert(&o.value(), K::KIND).ok()).collect()
    }

    /// Number of stored objects of a kind.
    pub fn count<K: Resource>(&self) -> usize {
        kind_of::<K>().map(|k| self.sim.store.count(k)).unwrap_or(0)
    }

    /// Read-modify-write of an object's spec/metadata (status changes are ignored, as over HTTP).
    pub fn update<K: Resource + Serialize + DeserializeOwned>(
        &self,
        namespace: Option<&str>,
        name: &str,
        f: impl FnOnce(&mut K),
    ) -> Result<K, Error> {
        self.update_sub(namespace, name, Sub::Main, f)
    }

    /// Read-modify-write of an object's status (the status subresource).
    pub fn update_status<K: Resource + Serialize + DeserializeOwned>(
        &self,
        namespace: Option<&str>,
        name: &str,
        f: impl FnOnce(&mut K),
    ) -> Result<K, Error> {
        self.update_sub(namespace, name, Sub::Status, f)
    }

    fn update_sub<K: Resource + Serialize + DeserializeOwned>(
        &self,
        namespace: Option<&str>,
        name: &str,
        sub: Sub,
        f: impl FnOnce(&mut K),
    ) -> Result<K, Error> {
        let kind = kind_of::<K>()?;
        let key = key_for(kind, namespace, name);
        let mut failure = None;
        let result = self.sim.registry.update_with(kind, &key, sub, false, |current| {
            let mut typed: K = match serde_json::from_value(current.clone()) {
                Ok(t) => t,
                Err(e) => {
                    failure = Some(e);
                    return Err(ApiError::internal("conversion failed"));
                }
            };
            f(&mut typed);
            serde_json::to_value(&typed).map_err(|e| ApiError::internal(e.to_string()))
        });
        if let Some(source) = failure {
            return Err(Error::Convert { kind: K::KIND.into(), source });
        }
        convert(&result?.value(), K::KIND)
    }

    /// Deletes an object with default options (graceful for pods).
    pub fn delete<K: Resource>(&self, namespace: Option<&str>, name: &str) -> Result<(), Error> {
        let kind = kind_of::<K>()?;
        self.sim.registry.delete(kind, &key_for(kind, namespace, name), &DeleteOptions::default())?;
        Ok(())
    }

    /// Pods of a namespace that are Running and Ready.
    pub fn ready_pods(&self, namespace: Option<&str>) -> usize {
        let (items, _) = self.sim.store.list(Kind::Pod, namespace);
        items.iter().filter(|p| p.is_ready() && !p.is_deleting()).count()
    }

    // ---- usage -------------------------------------------------------------

    /// Sets the usage model of the targeted containers (now and, for
    /// selectors, pods created later). Cumulative counters stay continuous.
    pub fn set_usage(&self, target: UsageTarget, model: UsageModel) -> Result<(), Error> {
        self.sim.usage.set(target, model).map_err(Error::UsageTarget)
    }

    pub fn clear_usage(&self) {
        self.sim.usage.clear();
    }

    // ---- faults ------------------------------------------------------------

    /// Fault injection: rules failing or delaying a share of requests.
    pub fn faults(&self) -> &Faults {
        &self.sim.faults
    }

    pub fn add_fault(&self, rule: FaultRule) -> u64 {
        self.sim.faults.add(rule)
    }

    /// Breaks every open watch connection now.
    pub fn drop_watches(&self) {
        self.sim.faults.drop_watches();
    }

    /// Forgets all watch history, like an etcd compaction: resuming a watch
    /// (or a paginated list) from any earlier resourceVersion gets 410 Gone.
    pub fn compact_watch_history(&self) {
        self.sim.store.compact();
    }

    /// The current resourceVersion (etcd revision).
    pub fn resource_version(&self) -> u64 {
        self.sim.store.current_rv()
    }

    // ---- waiting -----------------------------------------------------------

    /// Waits until `condition` holds, re-checking after every change in the
    /// cluster (and at least every 50 ms, for conditions that depend on time).
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        mut condition: impl FnMut(&KubeSimHandle) -> bool,
    ) -> Result<(), Error> {
        let mut changes = self.sim.store.subscribe_all();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            changes.borrow_and_update();
            if condition(self) {
                return Ok(());
            }
            // Bounded re-check rate: conditions may scan large clusters.
            tokio::time::sleep(Duration::from_millis(5)).await;
            tokio::select! {
                _ = changes.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(Error::Timeout { what: what.to_string(), timeout });
                }
            }
        }
    }

    /// Waits for an object to satisfy `condition`.
    pub async fn wait_for_object<K: Resource<Scope = NamespaceResourceScope> + DeserializeOwned>(
        &self,
        namespace: &str,
        name: &str,
        timeout: Duration,
        mut condition: impl FnMut(&K) -> bool,
    ) -> Result<K, Error> {
        let what = format!("{} {namespace}/{name}", K::KIND);
        let mut found = None;
        self.wait_for(&what, timeout, |h| match h.get::<K>(Some(namespace), name) {
            Some(obj) if condition(&obj) => {
                found = Some(obj);
                true
            }
            _ => false,
        })
        .await?;
        Ok(found.expect("set when the condition held"))
    }
}

/// A kubeconfig pointing at `url` with no credentials.
pub fn kubeconfig(url: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kubesim\n  cluster:\n    server: {url}\ncontexts:\n- name: kubesim\n  context:\n    cluster: kubesim\n    user: kubesim\n    namespace: default\ncurrent-context: kubesim\nusers:\n- name: kubesim\n  user: {{}}\n"
    )
}
