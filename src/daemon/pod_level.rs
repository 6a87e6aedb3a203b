//! The pod level inside the daemon: a watch of `VerticalPodAutoscaler`
//! objects, a usage collector feeding the recommender every
//! `pod-resize.metrics.interval`, and — at each planning pass — the handled
//! objects turned into [`VerticalScaling`] models with fresh recommendations,
//! so one planner pass weighs resizes together with scale-up and scale-down
//! (docs/pod-resizing.md, "What the daemon calls, in order").
//!
//! Collection runs on its own clock, not in the pass: scraping thousands of
//! kubelets takes seconds, and a pass must not wait for it. A round that
//! brings new samples wakes the loop like any other change.
//!
//! The recommender's histograms live in the process. After a restart they
//! fill again from live usage; until they hold enough history the bounds are
//! wide (the confidence term), so a fresh daemon resizes little.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;
use kube::{Api, Client};
use tokio::sync::Mutex;
use tokio::task::JoinSet;

use crate::cluster::{Changes, ClusterStore};
use crate::config::{Config, PodResizePolicy};
use crate::metrics::{OomTracker, UsageCollector, UsageScrape};
use crate::model::{Pod, Resources, Snapshot, Timestamp, VerticalScaling, WorkloadRef};
use crate::recommender::{Recommender, feed_ooms, feed_usage};
use crate::telemetry::{KubeResource, KubeVerb, Metrics, RecommendationValues, ResourceName};
use crate::vpa::client::{self as vpa_client, VpaObjects};
use crate::vpa::{self, StatusUpdate, VerticalPodAutoscaler};

/// Status writes of one pass in flight at once.
const STATUS_CONCURRENCY: usize = 8;

/// What the pod level keeps between passes; built at start-up when
/// `pod-resize.enabled` or `scale-down.use-observed-usage` asks for it.
pub struct PodLevel {
    objects: Arc<StdMutex<VpaObjects>>,
    observed: Arc<StdMutex<Observed>>,
    settings: PodResizePolicy,
    metrics: Arc<Metrics>,
    _tasks: JoinSet<()>,
}

/// What the usage collector has learnt.
struct Observed {
    recommender: Recommender,
    ooms: OomTracker,
    /// Per node, its last reading (cpu in millicores, memory working set).
    nodes: BTreeMap<String, Resources>,
}

/// A VPA object whose status this pass changed: the merge patch the leader
/// writes to its `status` subresource.
#[derive(Debug)]
pub struct StatusWrite {
    namespace: String,
    name: String,
    patch: serde_json::Value,
}

impl PodLevel {
    /// Starts the VPA watch (when pods are resized) and the usage collector.
    /// `None` when the configuration needs neither. Changes to `pod-resize`
    /// other than the updater's take effect at the next restart.
    pub fn start(
        client: Client,
        store: Arc<Mutex<ClusterStore>>,
        config: &Config,
        metrics: Arc<Metrics>,
        changes: Changes,
    ) -> Option<Self> {
        let settings = config.pod_resize.clone();
        if !settings.enabled && !config.scale_down.use_observed_usage {
            return None;
        }
        let objects = Arc::new(StdMutex::new(VpaObjects::default()));
        let observed = Arc::new(StdMutex::new(Observed {
            recommender: Recommender::from_config(&settings.recommender),
            ooms: OomTracker::default(),
            nodes: BTreeMap::new(),
        }));
        let mut tasks = JoinSet::new();
        if settings.enabled {
            tasks.spawn(watch_vpas(client.clone(), objects.clone(), metrics.clone(), changes.clone()));
        }
        if !settings.enabled {
            tracing::info!("pod-resize is off: collecting usage for scale-down.use-observed-usage only");
        }
        let collector = UsageCollector::new(client, &settings.metrics);
        let interval = settings.metrics.interval.get();
        tasks.spawn(collect(collector, interval, store, observed.clone(), changes));
        Some(Self { objects, observed, settings, metrics, _tasks: tasks })
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Observed usage per node, for `scale-down.use-observed-usage`.
    pub fn node_usage(&self) -> BTreeMap<String, Resources> {
        self.observed.lock().expect("observed usage lock").nodes.clone()
    }

    /// The handled VPA objects with fresh recommendations, for the snapshot
    /// the planner is about to read, and the statuses that changed.
    pub fn prepare(&self, snapshot: &Snapshot, now: Timestamp) -> (Vec<VerticalScaling>, Vec<StatusWrite>) {
        if !self.settings.enabled {
            return (Vec::new(), Vec::new());
        }
        let metrics = &*self.metrics;
        let objects = self.objects.lock().expect("VPA objects lock");
        let observed = self.observed.lock().expect("observed usage lock");
        // One live pod per workload: its containers name the recommendation's
        // containers and carry the requests reported next to it.
        let mut live: HashMap<&WorkloadRef, &Pod> = HashMap::new();
        for p in snapshot.pods.iter().filter(|p| !p.is_terminal()) {
            if let Some(w) = &p.workload {
                live.entry(w).or_insert(p);
            }
        }
        let mut models = Vec::new();
        let mut writes = Vec::new();
        for handled in objects.handled(&self.settings.recommender_name, self.settings.claim_unnamed_vpas, |_| None) {
            let (model, pods_matched, unsupported) = match handled.model {
                Ok(mut model) => {
                    let pod = live.get(&model.workload).copied();
                    vpa::recommend(
                        &mut model,
                        &observed.recommender,
                        pod.map(std::slice::from_ref).unwrap_or_default(),
                    );
                    publish(metrics, &model, pod);
                    (Some(model), pod.is_some(), None)
                }
                Err(problem) => (None, false, Some(problem)),
            };
            let recommendations = model.as_ref().map_or(&[][..], |m| m.recommendations.as_slice());
            let update = StatusUpdate { recommendations, pods_matched, unsupported: unsupported.as_ref() };
            let object = handled.object;
            if let Some(patch) = vpa::status_patch(object.status.as_ref(), &update, now) {
                let namespace = object.metadata.namespace.clone().unwrap_or_default();
                writes.push(StatusWrite { namespace, name: object.metadata.name.clone().unwrap_or_default(), patch });
            }
            models.extend(model);
        }
        (models, writes)
    }

    /// Whether recreated pods get the recommendation (`pod-resize.admission-controller`).
    pub fn admission_controller(&self) -> bool {
        self.settings.admission_controller
    }
}

/// Writes the statuses a pass changed. Failures are logged and retried at the
/// next pass (the watch still shows the old status).
pub async fn write_statuses(client: &Client, writes: Vec<StatusWrite>, metrics: &Metrics) {
    futures::stream::iter(writes)
        .for_each_concurrent(STATUS_CONCURRENCY, |w| async move {
            let api: Api<VerticalPodAutoscaler> = Api::namespaced(client.clone(), &w.namespace);
            let started = std::time::Instant::now();
            let result = vpa_client::write_status(&api, &w.name, &w.patch).await;
            let ok = result.is_ok();
            metrics.observe_kube_call(KubeVerb::Patch, KubeResource::VerticalPodAutoscaler, started.elapsed(), ok);
            if let Err(e) = result {
                tracing::warn!(error = %e, "VPA status not written; the next pass tries again");
            }
        })
        .await;
}

/// Recommendation against request, per container, as gauges.
fn publish(metrics: &Metrics, model: &VerticalScaling, pod: Option<&Pod>) {
    for r in &model.recommendations {
        let container = pod.and_then(|p| p.containers.iter().find(|c| c.name == r.container_name));
        let request = container.map(|c| &c.requests);
        let cpu = |x: &Resources| x.cpu_milli as f64 / 1000.0;
        let memory = |x: &Resources| x.memory as f64;
        for (resource, value) in
            [(ResourceName::Cpu, &cpu as &dyn Fn(&Resources) -> f64), (ResourceName::Memory, &memory)]
        {
            let values = RecommendationValues {
                target: value(&r.target),
                lower_bound: value(&r.lower_bound),
                upper_bound: value(&r.upper_bound),
            };
            metrics.set_recommendation(&model.workload, &r.container_name, resource, values, request.map(value));
        }
    }
}

/// Follows the VPA objects. A cluster without the CRD answers 404: the watch
/// keeps retrying with backoff (the CRD may be installed later) and says so.
async fn watch_vpas(client: Client, objects: Arc<StdMutex<VpaObjects>>, metrics: Arc<Metrics>, changes: Changes) {
    let api: Api<VerticalPodAutoscaler> = Api::all(client);
    let mut stream = std::pin::pin!(watcher::watcher(api, watcher::Config::default()).default_backoff());
    let mut failing = false;
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => {
                objects.lock().expect("VPA objects lock").apply(event);
                changes.notify();
                if std::mem::take(&mut failing) {
                    tracing::info!(watch = "verticalpodautoscalers", "watch recovered");
                }
            }
            Err(e) => {
                metrics.observe_kube_call(KubeVerb::Watch, KubeResource::VerticalPodAutoscaler, Duration::ZERO, false);
                if !failing {
                    tracing::warn!(
                        watch = "verticalpodautoscalers",
                        error = %e,
                        "watch failed (is the VPA CRD installed? see config/crd/); retrying with backoff"
                    );
                }
                failing = true;
            }
        }
    }
}

/// Scrapes the kubelets of Ready nodes every `interval` and feeds the
/// recommender. The store is locked only to read node names and, after the
/// scrape, to match samples to pods.
async fn collect(
    mut collector: UsageCollector,
    interval: Duration,
    store: Arc<Mutex<ClusterStore>>,
    observed: Arc<StdMutex<Observed>>,
    changes: Changes,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let nodes: Vec<String> = {
            let store = store.lock().await;
            store.snapshot().nodes.iter().filter(|n| n.ready).map(|n| n.name.clone()).collect()
        };
        if nodes.is_empty() {
            continue;
        }
        let now = Timestamp::now();
        let scrape = collector.collect(&nodes, now).await;
        if !scrape.errors.is_empty() {
            let first = &scrape.errors[0];
            tracing::warn!(
                failed = scrape.errors.len(),
                of = nodes.len(),
                node = %first.node,
                error = %first.failure,
                "kubelet stats not read from some nodes this round"
            );
        }
        let store = store.lock().await;
        let pods = &store.snapshot().pods;
        let mut observed = observed.lock().expect("observed usage lock");
        let fed = feed(&mut observed, pods, &scrape, now);
        drop(observed);
        drop(store);
        if fed {
            changes.notify();
        }
    }
}

/// Feeds one round; whether it brought anything new.
fn feed(observed: &mut Observed, pods: &[Pod], scrape: &UsageScrape, now: Timestamp) -> bool {
    let report = feed_usage(&mut observed.recommender, pods, &scrape.containers);
    let window = observed.recommender.settings().memory_aggregation_interval;
    let ooms = observed.ooms.observe(pods, now, window);
    feed_ooms(&mut observed.recommender, &ooms);
    observed.recommender.garbage_collect(now);
    // This round's readings only: a node not read now has no usage to judge
    // it by (the planner then keeps it, as for a node never read).
    observed.nodes = scrape
        .nodes
        .iter()
        .filter_map(|n| {
            Some((n.node.clone(), Resources::new((n.cpu_cores? * 1000.0).round() as i64, n.memory_working_set?)))
        })
        .collect();
    report.cpu_samples + report.memory_samples + report.ooms > 0
}
