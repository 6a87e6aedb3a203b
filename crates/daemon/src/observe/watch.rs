//! The Kubernetes watches: nodes, pods and ReplicaSets (decoded into [`slim`]
//! types) and PodDisruptionBudgets, each a kube-runtime
//! [`watcher`] feeding the [`ClusterStore`] as events arrive — no fixed poll.
//!
//! A watch that fails is retried with [`RelistBackoff`] (exponential with
//! jitter, reset only after a quiet period) and its errors are logged,
//! counted in `heatscaler_kubernetes_request_errors_total{verb="watch"}` and kept
//! in [`WatchHealth`] for the status line. The first complete list of every
//! watch is what readiness waits for.

use std::fmt::Debug;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt};
use kube::api::ListParams;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use tokio::sync::{Mutex, watch};
use tokio::task::JoinSet;

use super::Changes;
use super::slim;
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
    /// Each failing watch: its last error and since when it has been failing.
    errors: Arc<StdMutex<Vec<(Watched, String, Instant)>>>,
    started: Instant,
}

impl WatchHealth {
    fn new() -> Self {
        Self { synced: watch::Sender::new(Vec::new()), errors: Arc::default(), started: Instant::now() }
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
        let since = errors.iter().find(|(k, ..)| *k == kind).map(|(.., since)| *since);
        errors.retain(|(k, ..)| *k != kind);
        if let Some(e) = error {
            errors.push((kind, e, since.unwrap_or_else(Instant::now)));
        }
    }

    /// Watches whose last attempt failed, with the error.
    pub fn failing(&self) -> Vec<(Watched, String)> {
        self.errors.lock().expect("watch errors lock").iter().map(|(k, e, _)| (*k, e.clone())).collect()
    }

    /// How old each watch's data may be: zero while the watch is healthy, the
    /// time since its first failure while it fails (the data stopped following
    /// the cluster then), the time since start before its first list.
    pub fn data_age(&self) -> Vec<(Watched, Duration)> {
        let errors = self.errors.lock().expect("watch errors lock");
        let synced = self.synced.borrow();
        Watched::ALL
            .into_iter()
            .map(|kind| {
                let age = match errors.iter().find(|(k, ..)| *k == kind) {
                    Some((.., since)) => since.elapsed(),
                    None if synced.contains(&kind) => Duration::ZERO,
                    None => self.started.elapsed(),
                };
                (kind, age)
            })
            .collect()
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

        let nodes_api = Api::<slim::Node>::all(client.clone());
        let count_nodes = counter(nodes_api.clone(), None, cx.metrics.clone(), KubeResource::Node);
        let nodes = watcher(nodes_api, config.clone());
        tasks.spawn(cx.clone().run(
            Watched::Nodes,
            KubeResource::Node,
            nodes,
            ClusterStore::apply_node,
            Some(count_nodes),
        ));
        let pods_api = Api::<slim::Pod>::all(client.clone());
        let count_pods = counter(pods_api.clone(), Some(LIVE_PODS), cx.metrics.clone(), KubeResource::Pod);
        let pods = watcher(pods_api, config.clone().fields(LIVE_PODS));
        tasks.spawn(cx.clone().run(Watched::Pods, KubeResource::Pod, pods, ClusterStore::apply_pod, Some(count_pods)));
        let pdbs = watcher(Api::<slim::PodDisruptionBudget>::all(client.clone()), config.clone());
        tasks.spawn(cx.clone().run(
            Watched::PodDisruptionBudgets,
            KubeResource::PodDisruptionBudget,
            pdbs,
            ClusterStore::apply_pdb,
            None,
        ));
        // Names and labels only (slim::Namespace): what a pod affinity
        // term's namespaceSelector selects by.
        let namespaces = watcher(Api::<slim::Namespace>::all(client.clone()), config.clone());
        tasks.spawn(cx.clone().run(
            Watched::Namespaces,
            KubeResource::Namespace,
            namespaces,
            ClusterStore::apply_namespace,
            None,
        ));
        let replica_sets = watcher(Api::<slim::ReplicaSet>::all(client), config);
        tasks.spawn(cx.run(
            Watched::ReplicaSets,
            KubeResource::Workload,
            replica_sets,
            ClusterStore::apply_replica_set,
            None,
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

/// How many objects the list a watch is about to make will deliver, and
/// whether the count is of exactly what it selects ([`list_size`]).
type Count = Box<dyn Fn() -> BoxFuture<'static, Option<(usize, bool)>> + Send + Sync>;

fn counter<K>(api: Api<K>, fields: Option<&'static str>, metrics: Arc<Metrics>, resource: KubeResource) -> Count
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + Debug + Send + Sync + 'static,
{
    Box::new(move || {
        let (api, metrics) = (api.clone(), metrics.clone());
        async move { list_size(&api, fields, &metrics, resource).await }.boxed()
    })
}

/// More than any cluster Kubernetes supports (150,000 pods): a count beyond
/// it is not believed.
const MAX_EXPECTED: usize = 1 << 21;

/// The size of a list, from a one-item page (`limit=1`, metadata only) and
/// its `remainingItemCount`, so the store makes room once instead of growing
/// by copies as the pages arrive ([`ClusterStore::expect`]). An API server
/// leaves the count out of a list with a field selector (the live-pods
/// watch): then the unselected list is counted, an over-count (`false`).
/// Failures only cost the room: the list itself retries on its own.
async fn list_size<K>(
    api: &Api<K>,
    fields: Option<&str>,
    metrics: &Metrics,
    resource: KubeResource,
) -> Option<(usize, bool)>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + Debug,
{
    let count = |params: ListParams| async move {
        let page = metrics.time_kube(KubeVerb::List, resource, api.list_metadata(&params.limit(1))).await;
        let page = page.map_err(|e| tracing::debug!(error = %e, "counting a list failed")).ok()?;
        let remaining = match page.metadata.continue_.as_deref() {
            None | Some("") => 0,
            Some(_) => usize::try_from(page.metadata.remaining_item_count?).ok()?,
        };
        Some((page.items.len() + remaining).min(MAX_EXPECTED))
    };
    let selected = fields.map_or_else(ListParams::default, |f| ListParams::default().fields(f));
    if let Some(n) = count(selected).await {
        return Some((n, true));
    }
    match fields {
        Some(_) => count(ListParams::default()).await.map(|n| (n, false)),
        None => None,
    }
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
        count: Option<Count>,
    ) where
        S: Stream<Item = watcher::Result<Event<K>>> + Send,
    {
        let mut stream = std::pin::pin!(stream);
        let mut backoff = RelistBackoff::default();
        let mut failing = false;
        // Between `Init` and `InitDone`: a list is under way.
        let mut listing = false;
        loop {
            // A failed watch retried from its resourceVersion delivers nothing
            // when it succeeds: quiet for a while after the retry is success.
            let next = if failing && !listing {
                match tokio::time::timeout(RECOVERY_QUIET, stream.next()).await {
                    Ok(next) => next,
                    Err(_) => {
                        failing = false;
                        self.recovered(kind);
                        continue;
                    }
                }
            } else {
                stream.next().await
            };
            let Some(item) = next else { break };
            match item {
                Ok(event) => {
                    // Before the list is sent (the watcher is lazy); not
                    // while the API server fails: it gets no extra request.
                    if let (Event::Init, Some(count), false) = (&event, &count, failing)
                        && let Some((n, exact)) = count().await
                    {
                        self.store.lock().await.expect(kind, n, exact);
                        self.metrics.set_list_room(kind.as_str(), n);
                    }
                    let done = matches!(event, Event::InitDone);
                    // `Init` is emitted before a list is even sent, and
                    // `InitApply` for a page of a list that may still fail:
                    // only a complete list or a watch event is a recovery.
                    listing = matches!(event, Event::Init | Event::InitApply(_));
                    let delivered = matches!(event, Event::InitDone | Event::Apply(_) | Event::Delete(_));
                    let changed = apply(&mut *self.store.lock().await, event);
                    if done {
                        self.health.mark_synced(kind);
                        tracing::debug!(watch = kind.as_str(), "list complete");
                    }
                    if changed {
                        self.changes.notify();
                    }
                    if failing && delivered {
                        failing = false;
                        self.recovered(kind);
                    }
                }
                Err(e) => {
                    self.metrics.observe_kube_call(KubeVerb::Watch, resource, Duration::ZERO, false);
                    let wait = backoff.next().unwrap_or(RELIST_BACKOFF_MAX);
                    tracing::warn!(watch = kind.as_str(), error = %e, retry_in = ?wait, "watch failed; retrying with backoff");
                    self.health.set_error(kind, Some(e.to_string()));
                    failing = true;
                    listing = false;
                    // The watcher is lazy: not polling it is the back-off.
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    fn recovered(&self, kind: Watched) {
        self.health.set_error(kind, None);
        tracing::info!(watch = kind.as_str(), "watch recovered");
        // A pass reports the recovery (status line) without waiting for the
        // next change or resync.
        self.changes.notify();
    }
}

/// A re-watch that stays open this long without an error is taken as
/// recovered (it delivers no event of its own when it succeeds).
const RECOVERY_QUIET: Duration = Duration::from_secs(10);
/// Used if the back-off ever ended (kube-runtime's does not).
const RELIST_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Back-off between a failed watch or list and the next attempt: kube-runtime's
/// [`watcher::DefaultBackoff`] (client-go's reflector parameters: 800 ms
/// doubling to 30 s, each with up to as much again of jitter, reset after two
/// minutes without a failure), driven by [`WatchCx::run`] itself.
///
/// Not through kube-runtime's `StreamBackoff`: it resets the back-off on every
/// `Ok`, and the watcher emits `Ok(Event::Init)` before each relist, so with
/// every LIST failing the wait never grew past its first step — a relist every
/// second per watch per replica against an API server that is already failing.
#[derive(Default)]
struct RelistBackoff(watcher::DefaultBackoff);

impl Iterator for RelistBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        self.0.next()
    }
}
