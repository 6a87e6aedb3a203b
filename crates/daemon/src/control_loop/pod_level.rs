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
//! The recommender's histograms live in the process and are saved by the
//! leader to VPA's `VerticalPodAutoscalerCheckpoint` objects every
//! `pod-resize.recommender.checkpoint-interval` and when it stops. Every
//! replica restores them once at start, as soon as it knows the VPA objects
//! (a checkpoint names its VPA, the history belongs to the VPA's workload);
//! until then nothing is saved, recommended or resized, so a restart never
//! overwrites or overrules days of history with the minutes it has seen.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use futures::StreamExt;
use kube::api::ListParams;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;
use kube::{Api, Client};
use tokio::sync::{Mutex, watch};
use tokio::task::JoinSet;

use crate::act::VpaWrite;
use crate::admission::witness::{Verdict, Witness};
use crate::alerts::ScalingEvent;
use crate::config::{AdvisorMode, Config, PodResizePolicy};
use crate::observe::{Changes, ClusterStore};
use crate::telemetry::{KubeResource, KubeVerb, Metrics, RecommendationValues, ResourceName};
use crate::usage::pressure::PressureWindow;
use crate::usage::{ScrapeTarget, UsageCollector, UsageScrape};
use crate::vpa::checkpoint::VerticalPodAutoscalerCheckpoint;
use crate::vpa::client::VpaObjects;
use crate::vpa::upstream::{Sightings, UpstreamComponent, UpstreamMark, UpstreamSighting};
use crate::vpa::{self, StatusUpdate, VerticalPodAutoscaler};
use heatscaler_core::model::{Pod, Resources, Snapshot, Timestamp, VerticalScaling, WorkloadRef};
use heatscaler_core::planner::placement::Pressure;
use heatscaler_core::recommender::{CheckpointKey, ContainerCheckpoint};
use heatscaler_core::recommender::{OomTracker, Recommender, feed_ooms, feed_usage, fill_recommendations};

/// Longest wait between attempts to list the checkpoints at start.
const RESTORE_RETRY_MAX: Duration = Duration::from_secs(60);

/// What the pod level keeps between passes; built at start-up when
/// `pod-resize.enabled` or `scale-down.use-observed-usage` asks for it.
pub struct PodLevel {
    objects: Arc<StdMutex<VpaObjects>>,
    observed: Arc<StdMutex<Observed>>,
    settings: PodResizePolicy,
    metrics: Arc<Metrics>,
    /// Set once the saved history has been read back (or found absent).
    restored: Arc<AtomicBool>,
    last_checkpoint: StdMutex<Option<Instant>>,
    /// Workloads whose recommendation series the last pass published: one
    /// gone from the handled VPA objects (deleted, or its VPA deleted) has its
    /// series removed, so /metrics does not keep the dead forever.
    published: StdMutex<HashSet<WorkloadRef>>,
    /// Per handled object (`namespace/name`), the upstream VPA components
    /// seen acting on its pods, each alerted once while it acts.
    upstream: StdMutex<Sightings>,
    /// Alerts the restore of the recommender's history raised, for the next pass.
    restore_alerts: Arc<StdMutex<Vec<ScalingEvent>>>,
    /// `admission-webhook` is configured: heatscaler's own webhook gives new
    /// pods their recommendation, as long as the pods show it does.
    webhook: Option<Webhook>,
    _tasks: JoinSet<()>,
}

/// How a pass knows whether heatscaler's own webhook applies recommendations.
enum Webhook {
    /// From the pods' marks (`admission::witness`).
    Witnessed(StdMutex<Witness>),
    /// In dry run the webhook is neither registered nor patches, so no pod
    /// can carry its mark: the plan counts on it as the live daemon would,
    /// and the witness, which could only raise a false alert, is not asked.
    AssumedInDryRun,
}

/// What [`PodLevel::prepare`] gives a pass.
#[derive(Default)]
pub struct PodLevelPass {
    /// The handled objects with fresh recommendations, for the planner.
    pub vertical: Vec<VerticalScaling>,
    /// VPA statuses that changed.
    pub writes: Vec<VpaWrite>,
    /// Alerts raised once (upstream VPA seen acting).
    pub alerts: Vec<ScalingEvent>,
    /// Whether a recreated pod gets its recommendation at creation, for the
    /// planner (`Snapshot::admission_applies_recommendations`).
    pub admission_applies: bool,
}

/// Upstream VPA components acting on the pods of the object `namespace/name`
/// (its workload `workload`): the admission controller names the object in
/// the pods it admitted; the updater's in-place mark is on the workload's pods.
fn sightings(
    snapshot: &Snapshot,
    marks: &HashMap<String, UpstreamMark>,
    namespace: &str,
    name: &str,
    workload: Option<&WorkloadRef>,
) -> Vec<UpstreamSighting> {
    let mut out: Vec<UpstreamSighting> = Vec::new();
    for pod in snapshot.pods.iter().filter(|p| p.namespace == namespace) {
        let Some(mark) = marks.get(pod.uid.as_str()) else { continue };
        let mut found = |component| {
            if !out.iter().any(|s| s.component == component) {
                out.push(UpstreamSighting {
                    component,
                    namespace: pod.namespace.to_string(),
                    pod: pod.name.to_string(),
                });
            }
        };
        if mark.admitted_by.as_deref() == Some(name) {
            found(UpstreamComponent::AdmissionController);
        }
        if mark.updated_in_place && workload.is_some() && pod.workload.as_ref() == workload {
            found(UpstreamComponent::Updater);
        }
    }
    out
}

/// What the usage collector has learnt.
struct Observed {
    recommender: Recommender,
    ooms: OomTracker,
    /// Per node, its last reading (cpu in millicores, memory working set).
    nodes: BTreeMap<String, Resources>,
    /// Per workload, usage over requests across the mesh's window.
    pressure: PressureWindow,
    /// `mesh-metrics.window`: pressure is judged over the traffic's window.
    pressure_window: Duration,
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
        dry_run: bool,
    ) -> Option<Self> {
        let settings = config.pod_resize.clone();
        let advising = config.placement_advisor.mode != AdvisorMode::Off;
        if !settings.enabled && !config.scale_down.use_observed_usage && !advising {
            return None;
        }
        let objects = Arc::new(StdMutex::new(VpaObjects::default()));
        let observed = Arc::new(StdMutex::new(Observed {
            recommender: Recommender::from_config(&settings.recommender),
            ooms: OomTracker::default(),
            nodes: BTreeMap::new(),
            pressure: PressureWindow::default(),
            pressure_window: config.mesh_metrics.as_ref().map_or(Duration::from_secs(300), |m| m.window.get()),
        }));
        let mut tasks = JoinSet::new();
        let restored = Arc::new(AtomicBool::new(false));
        let restore_alerts = Arc::new(StdMutex::new(Vec::new()));
        if settings.enabled {
            let (synced_tx, synced) = watch::channel(false);
            tasks.spawn(watch_vpas(client.clone(), objects.clone(), metrics.clone(), changes.clone(), synced_tx));
            let restore = Restore {
                client: client.clone(),
                objects: objects.clone(),
                observed: observed.clone(),
                recommender_name: settings.recommender_name.clone(),
                claim_unnamed: settings.claim_unnamed_vpas,
                restored: restored.clone(),
                alerts: restore_alerts.clone(),
                alert_after: config.kubernetes.failure_alert_after.get(),
            };
            tasks.spawn(restore.run(synced));
        }
        if !settings.enabled {
            tracing::info!("pod-resize is off: collecting usage for scale-down.use-observed-usage only");
        }
        let collector = UsageCollector::new(client, &settings.metrics);
        let interval = settings.metrics.interval.get();
        tasks.spawn(collect(collector, interval, store, observed.clone(), changes));
        Some(Self {
            objects,
            observed,
            settings,
            metrics,
            restored,
            last_checkpoint: StdMutex::new(None),
            published: StdMutex::new(HashSet::new()),
            upstream: StdMutex::new(Sightings::default()),
            restore_alerts,
            webhook: config.admission_webhook.as_ref().map(|_| match dry_run {
                true => Webhook::AssumedInDryRun,
                false => Webhook::Witnessed(StdMutex::new(Witness::default())),
            }),
            _tasks: tasks,
        })
    }

    /// Each workload's usage over its requests across the mesh's window,
    /// for the placement advisor.
    pub fn pressure(&self) -> Vec<Pressure> {
        self.observed.lock().expect("observed usage lock").pressure.pressure()
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
    ///
    /// Nothing until the saved history has been read back: a recommendation
    /// from the minutes since the start alone would be published and acted on
    /// (a pod shrunk to a fraction of what days of history say it needs)
    /// whenever the restore comes after the first pass.
    ///
    /// `marks`: the live pods (by uid) upstream VPA acted on. A handled
    /// object whose pods show upstream's updater or admission controller at
    /// work gets the `UpstreamVpaActive` condition until no live pod has
    /// shown it for [`crate::vpa::upstream::CLEARED_AFTER`] (the component
    /// is gone), and one `UpstreamVpaActive` alert per object and component
    /// each time it is seen anew, returned here.
    ///
    /// `admitted`: the live pods (by uid) heatscaler's own webhook marked. With
    /// `admission-webhook` configured, the pass counts on new pods getting
    /// their recommendation unless the newest pod that should show it does not
    /// (`admission::witness`): then one `AdmissionWebhookNotCalled` alert, and
    /// only `pod-resize.admission-controller` (an upstream one) counts.
    pub fn prepare(
        &self,
        snapshot: &Snapshot,
        marks: &HashMap<String, UpstreamMark>,
        admitted: &HashSet<String>,
        now: Timestamp,
    ) -> PodLevelPass {
        let mut alerts = std::mem::take(&mut *self.restore_alerts.lock().expect("restore alerts lock"));
        if !self.settings.enabled || !self.restored.load(Ordering::SeqCst) {
            return PodLevelPass {
                alerts,
                admission_applies: self.settings.admission_controller,
                ..Default::default()
            };
        }
        let mut upstream = self.upstream.lock().expect("upstream sightings lock");
        upstream.expire(now);
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
                    fill_recommendations(
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
            let object = handled.object;
            let key = object.key();
            if !marks.is_empty() {
                let name = object.metadata.name.as_deref().unwrap_or_default();
                let namespace = object.metadata.namespace.as_deref().unwrap_or_default();
                let workload = model.as_ref().map(|m| &m.workload);
                let seen = sightings(snapshot, marks, namespace, name, workload);
                for seen in upstream.observe(&key, seen, now) {
                    tracing::warn!(vpa = %key, %seen, "upstream VPA acts on pods heatscaler updates");
                    alerts.push(ScalingEvent::upstream_vpa_active(&key, &seen));
                }
            }
            let seen = upstream.of(&key);
            let unsupported_fields = vpa::unsupported_fields(object);
            let update = StatusUpdate {
                recommendations,
                pods_matched,
                unsupported: unsupported.as_ref(),
                generation: object.metadata.generation,
                unsupported_fields: &unsupported_fields,
                upstream: &seen,
            };
            if let Some(patch) = vpa::status_patch(object.status.as_ref(), &update, now) {
                let namespace = object.metadata.namespace.clone().unwrap_or_default();
                writes.push(VpaWrite::Status {
                    namespace,
                    name: object.metadata.name.clone().unwrap_or_default(),
                    patch,
                });
            }
            models.extend(model);
        }
        let now_published: HashSet<WorkloadRef> = models.iter().map(|m| m.workload.clone()).collect();
        let mut published = self.published.lock().expect("published workloads lock");
        for gone in published.difference(&now_published) {
            metrics.forget_workload(gone);
        }
        *published = now_published;
        let webhook_applies = self.webhook.as_ref().is_some_and(|webhook| {
            let Webhook::Witnessed(witness) = webhook else { return true };
            let mut witness = witness.lock().expect("webhook witness lock");
            match witness.observe(&snapshot.pods, &models, admitted, marks, now) {
                Some(Verdict::Missed { namespace, pod }) => {
                    tracing::warn!(%namespace, %pod, "created without the admission webhook's mark: not counting on it");
                    alerts.push(ScalingEvent::admission_webhook_not_called(&namespace, &pod));
                }
                Some(_) => tracing::info!("new pods carry the admission webhook's mark again: counting on it"),
                None => {}
            }
            witness.counts_on_it()
        });
        let admission_applies = self.settings.admission_controller || webhook_applies;
        PodLevelPass { vertical: models, writes, alerts, admission_applies }
    }

    /// The checkpoints to write now: every `checkpoint-interval`, and only
    /// once the saved history has been restored.
    pub fn due_checkpoints(&self, now: Timestamp) -> Vec<VerticalPodAutoscalerCheckpoint> {
        if !self.settings.enabled || !self.restored.load(Ordering::SeqCst) {
            return Vec::new();
        }
        let interval = self.settings.recommender.checkpoint_interval.get();
        {
            let mut last = self.last_checkpoint.lock().expect("checkpoint clock lock");
            if last.is_some_and(|t| t.elapsed() < interval) {
                return Vec::new();
            }
            *last = Some(Instant::now());
        }
        self.checkpoints(now)
    }

    /// The history of every container of every handled VPA's workload, as
    /// checkpoint objects (at stop, regardless of the interval).
    pub fn checkpoints(&self, now: Timestamp) -> Vec<VerticalPodAutoscalerCheckpoint> {
        if !self.settings.enabled || !self.restored.load(Ordering::SeqCst) {
            return Vec::new();
        }
        let objects = self.objects.lock().expect("VPA objects lock");
        let observed = self.observed.lock().expect("observed usage lock");
        let mut out = Vec::new();
        for handled in objects.handled(&self.settings.recommender_name, self.settings.claim_unnamed_vpas, |_| None) {
            let Ok(model) = &handled.model else { continue };
            for saved in observed.recommender.checkpoints_of(&model.workload, now) {
                out.push(VerticalPodAutoscalerCheckpoint::new(handled.object, &saved.key.container_name, saved.status));
            }
        }
        out
    }

    /// The VPA objects as the watch holds them, for the admission webhook
    /// (which reads them on every replica, leader or not).
    pub fn vpa_objects(&self) -> Arc<StdMutex<VpaObjects>> {
        self.objects.clone()
    }
}

/// Reads the saved history back once at start: after the first list of VPA
/// objects (a checkpoint is found by its VPA's name), into the recommender.
struct Restore {
    client: Client,
    objects: Arc<StdMutex<VpaObjects>>,
    observed: Arc<StdMutex<Observed>>,
    recommender_name: String,
    claim_unnamed: bool,
    restored: Arc<AtomicBool>,
    /// Alerts for the next pass to dispatch.
    alerts: Arc<StdMutex<Vec<ScalingEvent>>>,
    /// `kubernetes.failure-alert-after`: a failure lasting longer is alerted.
    alert_after: Duration,
}

impl Restore {
    /// A missing API (404) or a refusal (403: heatscaler's account may not
    /// list them, which no retry mends) starts the recommender without its
    /// history — the refusal alerted, as the operator must fix the RBAC —
    /// rather than holding the pod level forever. Other failures are retried
    /// (the history is worth a wait: without it the first recommendations
    /// come from minutes of usage) and alerted once they last longer than
    /// `kubernetes.failure-alert-after`.
    async fn run(self, mut vpas_synced: watch::Receiver<bool>) {
        if vpas_synced.wait_for(|s| *s).await.is_err() {
            return;
        }
        let api: Api<VerticalPodAutoscalerCheckpoint> = Api::all(self.client.clone());
        let started = Instant::now();
        let mut alerted = false;
        let listed = (|| async { api.list(&ListParams::default()).await })
            .retry(ExponentialBuilder::default().with_max_delay(RESTORE_RETRY_MAX).without_max_times())
            .when(|e| !is_not_found(e) && !is_forbidden(e))
            .notify(|e, wait| {
                tracing::warn!(error = %e, retry_in = ?wait, "recommender checkpoints not listed; retrying");
                if !alerted && started.elapsed() >= self.alert_after {
                    alerted = true;
                    self.alert(ScalingEvent::checkpoints_unlisted(&e.to_string(), started.elapsed(), false));
                }
            })
            .await;
        match listed {
            Ok(list) => self.restore(list.items),
            Err(e) if is_forbidden(&e) => {
                tracing::warn!(error = %e, "recommender checkpoints may not be listed: starting without history");
                self.alert(ScalingEvent::checkpoints_unlisted(&e.to_string(), started.elapsed(), true));
            }
            Err(e) => tracing::warn!(
                error = %e,
                "no VerticalPodAutoscalerCheckpoint API (see config/crd/): the recommender starts without history"
            ),
        }
        self.restored.store(true, Ordering::SeqCst);
    }

    fn alert(&self, event: ScalingEvent) {
        self.alerts.lock().expect("restore alerts lock").push(event);
    }

    fn restore(&self, checkpoints: Vec<VerticalPodAutoscalerCheckpoint>) {
        let now = Timestamp::now();
        let objects = self.objects.lock().expect("VPA objects lock");
        let workloads: HashMap<(&str, &str), WorkloadRef> = objects
            .handled(&self.recommender_name, self.claim_unnamed, |_| None)
            .into_iter()
            .filter_map(|h| {
                let meta = &h.object.metadata;
                Some(((meta.namespace.as_deref()?, meta.name.as_deref()?), h.model.ok()?.workload))
            })
            .collect();
        let mut observed = self.observed.lock().expect("observed usage lock");
        let (mut restored, mut not_ours) = (0, 0);
        for c in checkpoints {
            let namespace = c.metadata.namespace.as_deref().unwrap_or_default();
            let (Some(workload), Some(status)) =
                (workloads.get(&(namespace, c.spec.vpa_object_name.as_str())), c.status)
            else {
                not_ours += 1;
                continue;
            };
            let saved = ContainerCheckpoint { key: CheckpointKey::new(workload, &c.spec.container_name), status };
            match observed.recommender.restore(&saved, now) {
                Ok(()) => restored += 1,
                Err(e) => tracing::warn!(error = %e, "recommender checkpoint not restored"),
            }
        }
        tracing::info!(restored, not_ours, "recommender history restored from checkpoints");
    }
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(r) if r.code == 404)
}

fn is_forbidden(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(r) if r.code == 403)
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
async fn watch_vpas(
    client: Client,
    objects: Arc<StdMutex<VpaObjects>>,
    metrics: Arc<Metrics>,
    changes: Changes,
    synced: watch::Sender<bool>,
) {
    let api: Api<VerticalPodAutoscaler> = Api::all(client);
    let mut stream = std::pin::pin!(watcher::watcher(api, watcher::Config::default()).default_backoff());
    let mut failing = false;
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => {
                let now_synced = {
                    let mut objects = objects.lock().expect("VPA objects lock");
                    objects.apply(event);
                    objects.synced()
                };
                if now_synced && !*synced.borrow() {
                    synced.send_replace(true);
                }
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
        let nodes: Vec<ScrapeTarget> = {
            let store = store.lock().await;
            let target = |name: &String| ScrapeTarget { node: name.clone(), kubelet: store.kubelet_address(name) };
            store.snapshot().nodes.iter().filter(|n| n.ready).map(|n| target(&n.name)).collect()
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
    let window = observed.pressure_window;
    observed.pressure.feed(pods, &scrape.containers, now, window);
    let window = observed.recommender.settings().memory_aggregation_interval;
    let ooms = observed.ooms.observe(pods, now, window);
    feed_ooms(&mut observed.recommender, &ooms);
    // Per-pod state goes with its pod (the workload's history stays), so it
    // is bounded by the live pods, not by every pod ever seen.
    let live: HashSet<(&str, &str)> =
        pods.iter().filter(|p| !p.is_terminal()).map(|p| (p.namespace.as_str(), p.name.as_str())).collect();
    observed.recommender.retain_pods(|k| live.contains(&(k.namespace.as_str(), k.name.as_str())));
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

#[cfg(test)]
mod tests {
    use heatscaler_core::model::test_support;
    use heatscaler_core::model::{Container, PodKey, PodPhase};
    use heatscaler_core::recommender::ContainerUsage;

    use super::*;

    fn pod(name: &str) -> Pod {
        Pod {
            workload: Some(WorkloadRef { kind: "Deployment".into(), namespace: "default".into(), name: "web".into() }),
            node_name: Some("n1".into()),
            phase: PodPhase::Running,
            containers: vec![Container {
                name: "app".into(),
                requests: Resources::new(100, 128 << 20),
                limits: Resources::default(),
                allocated: None,
                oom_kills: 0,
                last_oom: None,
            }],
            ..test_support::pod(name)
        }
    }

    fn scrape(pods: &[&str], at: Timestamp) -> UsageScrape {
        let containers = pods
            .iter()
            .map(|name| ContainerUsage {
                pod: PodKey { namespace: "default".into(), name: (*name).into() },
                container: "app".into(),
                at,
                cpu_cores: Some(0.05),
                memory_working_set: Some(64 << 20),
            })
            .collect();
        UsageScrape { containers, nodes: Vec::new(), errors: Vec::new() }
    }

    /// Issue 17: `retain_pods` was never called, so the recommender's
    /// per-pod state grew with every pod ever seen (pod churn: each
    /// recreated replica is a new pod).
    #[test]
    fn per_pod_state_is_bounded_by_the_live_pods() {
        let mut observed = Observed {
            recommender: Recommender::from_config(&Default::default()),
            ooms: OomTracker::default(),
            nodes: BTreeMap::new(),
            pressure: PressureWindow::default(),
            pressure_window: Duration::from_secs(300),
        };
        let t0 = test_support::epoch();
        let both = [pod("web-1"), pod("web-2")];
        assert!(feed(&mut observed, &both, &scrape(&["web-1", "web-2"], t0), t0));
        assert_eq!(observed.recommender.footprint().instances, 2);

        // web-1 is replaced by web-3; web-2 finished.
        let t1 = t0 + jiff::SignedDuration::from_secs(60);
        let mut done = pod("web-2");
        done.phase = PodPhase::Succeeded;
        let now = [pod("web-3"), done];
        assert!(feed(&mut observed, &now, &scrape(&["web-3"], t1), t1));
        assert_eq!(observed.recommender.footprint().instances, 1, "only web-3's state is kept");
        let web = WorkloadRef { kind: "Deployment".into(), namespace: "default".into(), name: "web".into() };
        assert_eq!(observed.recommender.footprint().aggregates, 1);
        assert!(observed.recommender.aggregate(&web, "app").is_some(), "the workload's history stays");
    }
}
