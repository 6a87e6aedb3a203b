//! The Kubernetes watches: nodes, pods, PodDisruptionBudgets and (metadata
//! only) ReplicaSets, each a kube-runtime [`watcher`] feeding the
//! [`ClusterStore`] as events arrive — no fixed poll.
//!
//! A watch that fails is retried with kube-runtime's default backoff
//! (exponential, reset after a quiet period) and its errors are logged,
//! counted in `heatscaler_kubernetes_request_errors_total{verb="watch"}` and kept
//! in [`WatchHealth`] for the status line. The first complete list of every
//! watch is what readiness waits for.

use std::fmt::Debug;
use std::sync::{Arc, Mutex as StdMutex};

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use tokio::sync::{Mutex, watch};
use tokio::task::JoinSet;

use super::Changes;
use super::store::{ClusterStore, Watched};
use crate::telemetry::{KubeResource, KubeVerb, Metrics};

/// Terminal pods never matter to a decision; leaving them to the API server
/// keeps the store small where Jobs leave thousands behind. A pod that
/// finishes leaves the selection, which the watch reports as a deletion.
const LIVE_PODS: &str = "status.phase!=Succeeded,status.phase!=Failed";

/// The watches and the store they fill. Dropping it stops the watches.
#[derive(Debug)]
pub struct KubeObserver {
    store: Arc<Mutex<ClusterStore>>,
    health: WatchHealth,
    _tasks: JoinSet<()>,
}

/// First sync and last error of each watch, shared with whoever reports them.
#[derive(Clone, Debug)]
pub struct WatchHealth {
    synced: watch::Sender<Vec<Watched>>,
    errors: Arc<StdMutex<Vec<(Watched, String)>>>,
}

impl WatchHealth {
    fn new() -> Self {
        Self { synced: watch::Sender::new(Vec::new()), errors: Arc::default() }
    }

    fn mark_synced(&self, kind: Watched) {
        self.synced.send_if_modified(|s| {
            if s.contains(&kind) {
                false
            } else {
                s.push(kind);
                true
            }
        });
    }

    fn set_error(&self, kind: Watched, error: Option<String>) {
        let mut errors = self.errors.lock().expect("watch errors lock");
        errors.retain(|(k, _)| *k != kind);
        if let Some(e) = error {
            errors.push((kind, e));
        }
    }

    /// Watches whose last attempt failed, with the error.
    pub fn failing(&self) -> Vec<(Watched, String)> {
        self.errors.lock().expect("watch errors lock").clone()
    }

    /// Watches that have not completed their first list yet.
    pub fn unsynced(&self) -> Vec<Watched> {
        let synced = self.synced.borrow();
        Watched::ALL.into_iter().filter(|k| !synced.contains(k)).collect()
    }

    /// Waits until every watch has completed its first list.
    pub async fn wait_synced(&self) {
        let mut rx = self.synced.subscribe();
        let _ = rx.wait_for(|s| Watched::ALL.iter().all(|k| s.contains(k))).await;
    }
}

impl KubeObserver {
    /// Starts the watches on the current Tokio runtime.
    pub fn start(client: Client, metrics: Arc<Metrics>, changes: Changes) -> Self {
        let store = Arc::new(Mutex::new(ClusterStore::new()));
        let health = WatchHealth::new();
        let mut tasks = JoinSet::new();
        // Paginated lists from the API server's current state (kube-runtime's
        // default: pages of 500). `any_semantic` (resourceVersion=0, served from
        // the watch cache) would return all 150,000 pods in one response body.
        let config = watcher::Config::default();
        let cx = WatchCx { store: store.clone(), health: health.clone(), metrics, changes };

        let nodes = watcher(Api::<Node>::all(client.clone()), config.clone());
        tasks.spawn(cx.clone().run(Watched::Nodes, KubeResource::Node, nodes, ClusterStore::apply_node));
        let pods = watcher(Api::<Pod>::all(client.clone()), config.clone().fields(LIVE_PODS));
        tasks.spawn(cx.clone().run(Watched::Pods, KubeResource::Pod, pods, ClusterStore::apply_pod));
        let pdbs = watcher(Api::<PodDisruptionBudget>::all(client.clone()), config.clone());
        tasks.spawn(cx.clone().run(
            Watched::PodDisruptionBudgets,
            KubeResource::PodDisruptionBudget,
            pdbs,
            ClusterStore::apply_pdb,
        ));
        let replica_sets = watcher(Api::<PartialObjectMeta<ReplicaSet>>::all(client), config);
        tasks.spawn(cx.run(
            Watched::ReplicaSets,
            KubeResource::Workload,
            replica_sets,
            ClusterStore::apply_replica_set,
        ));
        Self { store, health, _tasks: tasks }
    }

    pub fn store(&self) -> &Arc<Mutex<ClusterStore>> {
        &self.store
    }

    pub fn health(&self) -> &WatchHealth {
        &self.health
    }
}

fn watcher<K>(api: Api<K>, config: watcher::Config) -> impl Stream<Item = watcher::Result<Event<K>>> + Send
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + Debug + Send + 'static,
{
    watcher::watcher(api, config)
}

#[derive(Clone)]
struct WatchCx {
    store: Arc<Mutex<ClusterStore>>,
    health: WatchHealth,
    metrics: Arc<Metrics>,
    changes: Changes,
}

impl WatchCx {
    async fn run<K, S>(
        self,
        kind: Watched,
        resource: KubeResource,
        stream: S,
        apply: fn(&mut ClusterStore, Event<K>) -> bool,
    ) where
        S: Stream<Item = watcher::Result<Event<K>>> + Send,
    {
        let mut stream = std::pin::pin!(stream.default_backoff());
        let mut failing = false;
        while let Some(item) = stream.next().await {
            match item {
                Ok(event) => {
                    let done = matches!(event, Event::InitDone);
                    let changed = apply(&mut *self.store.lock().await, event);
                    if done {
                        self.health.mark_synced(kind);
                        tracing::debug!(watch = kind.as_str(), "list complete");
                    }
                    if changed {
                        self.changes.notify();
                    }
                    if failing {
                        failing = false;
                        self.health.set_error(kind, None);
                        tracing::info!(watch = kind.as_str(), "watch recovered");
                    }
                }
                Err(e) => {
                    self.metrics.observe_kube_call(KubeVerb::Watch, resource, std::time::Duration::ZERO, false);
                    tracing::warn!(watch = kind.as_str(), error = %e, "watch failed; retrying with backoff");
                    self.health.set_error(kind, Some(e.to_string()));
                    failing = true;
                }
            }
        }
    }
}
