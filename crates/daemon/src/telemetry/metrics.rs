//! The Prometheus metrics heatscaler exports, behind a typed API.
//!
//! Every metric is declared here and nowhere else, and callers say what
//! happened (`record_scale_up(group, 2)`), not which series to bump, so names,
//! label sets and units stay consistent and a reader finds the whole catalogue
//! in one file. Names follow cluster-autoscaler's where one exists
//! (`scaled_up_nodes_total`, `unschedulable_pods`, `failed_scale_ups_total`),
//! so existing dashboards translate by replacing the prefix.
//!
//! Units are base units: seconds, cores, bytes.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use heatscaler_core::model::{Timestamp, WorkloadRef};

use super::operations::{HeatOperation, KubeResource, KubeVerb};
use super::outcomes::{
    AdmissionOutcome, AlertOutcome, DrainOutcome, EvictionPurpose, GroupSizes, RecommendationValues, ResizeOutcome,
    ResourceName, ScaleUpFailure,
};

type FloatGauge = Gauge<f64, AtomicU64>;
type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabels {
    group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupStateLabels {
    group: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupReasonLabels {
    group: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DrainLabels {
    group: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PurposeLabels {
    purpose: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ContainerResourceLabels {
    namespace: String,
    workload_kind: String,
    workload: String,
    container: String,
    resource: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RecommendationLabels {
    namespace: String,
    workload_kind: String,
    workload: String,
    container: String,
    resource: &'static str,
    /// `target`, `lower_bound` or `upper_bound`, as in a VPA status.
    bound: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HeatLabels {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KubeLabels {
    verb: &'static str,
    resource: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkLabels {
    sink: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkOutcomeLabels {
    sink: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WatchLabels {
    resource: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AllocatorLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// The daemon's metrics. Cheap to share (`Arc<Metrics>`); every method takes `&self`.
pub struct Metrics {
    registry: Registry,
    group_size: Family<GroupStateLabels, Gauge>,
    group_min_size: Family<GroupLabels, Gauge>,
    group_max_size: Family<GroupLabels, Gauge>,
    openstack_failing: Family<GroupReasonLabels, Gauge>,
    unschedulable_pods: Gauge,
    scaled_up_nodes: Family<GroupLabels, Counter>,
    scale_up_duration: HistogramFamily<GroupLabels>,
    failed_scale_ups: Family<GroupReasonLabels, Counter>,
    scaled_down_nodes: Family<GroupLabels, Counter>,
    scale_down_duration: HistogramFamily<GroupLabels>,
    drain_duration: HistogramFamily<DrainLabels>,
    evictions: Family<PurposeLabels, Counter>,
    pdb_rejections: Family<PurposeLabels, Counter>,
    pod_resizes: Family<OutcomeLabels, Counter>,
    admission_reviews: Family<OutcomeLabels, Counter>,
    recommendation: Family<RecommendationLabels, FloatGauge>,
    container_request: Family<ContainerResourceLabels, FloatGauge>,
    /// Which (container, resource) series exist per workload, so a deleted
    /// workload's series can be removed instead of exporting stale values forever.
    workload_series: Mutex<HashMap<WorkloadRef, BTreeSet<(String, ResourceName)>>>,
    heat_duration: HistogramFamily<HeatLabels>,
    heat_errors: Family<HeatLabels, Counter>,
    kube_duration: HistogramFamily<KubeLabels>,
    kube_errors: Family<KubeLabels, Counter>,
    last_successful_loop: FloatGauge,
    watch_data_age: Family<WatchLabels, FloatGauge>,
    loop_duration: Histogram,
    leader: Gauge,
    alert_notifications: Family<SinkOutcomeLabels, Counter>,
    alert_queue_length: Family<SinkLabels, Gauge>,
    allocator: Family<AllocatorLabels, Gauge>,
    allocator_peak: Family<AllocatorLabels, Gauge>,
    list_room: Family<WatchLabels, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn api_latency() -> Histogram {
    // 5 ms .. ~41 s: Keystone token issue and Heat stack updates can take seconds.
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

fn provisioning_time() -> Histogram {
    // 5 s .. ~43 min: a minion boots and joins in minutes; a stuck one is cut off by
    // max-node-provision-time (15 min by default).
    Histogram::new(exponential_buckets(5.0, 2.0, 10))
}

fn drain_time() -> Histogram {
    // 1 s .. ~68 min: graceful terminations and PDB-paced evictions.
    Histogram::new(exponential_buckets(1.0, 2.0, 13))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("heatscaler");
        let m = Self {
            group_size: Family::default(),
            group_min_size: Family::default(),
            openstack_failing: Family::default(),
            group_max_size: Family::default(),
            unschedulable_pods: Gauge::default(),
            scaled_up_nodes: Family::default(),
            scale_up_duration: Family::new_with_constructor(provisioning_time),
            failed_scale_ups: Family::default(),
            scaled_down_nodes: Family::default(),
            scale_down_duration: Family::new_with_constructor(provisioning_time),
            drain_duration: Family::new_with_constructor(drain_time),
            evictions: Family::default(),
            pdb_rejections: Family::default(),
            pod_resizes: Family::default(),
            admission_reviews: Family::default(),
            recommendation: Family::default(),
            container_request: Family::default(),
            workload_series: Mutex::default(),
            heat_duration: Family::new_with_constructor(api_latency),
            heat_errors: Family::default(),
            kube_duration: Family::new_with_constructor(api_latency),
            kube_errors: Family::default(),
            last_successful_loop: FloatGauge::default(),
            watch_data_age: Family::default(),
            loop_duration: Histogram::new(exponential_buckets(0.01, 2.0, 14)),
            leader: Gauge::default(),
            alert_notifications: Family::default(),
            alert_queue_length: Family::default(),
            allocator: Family::default(),
            allocator_peak: Family::default(),
            list_room: Family::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register("build", "heatscaler version", Info::new(BuildLabels { version: env!("CARGO_PKG_VERSION") }));
        r.register(
            "node_group_size",
            "Members of a node group by state: desired (asked of Heat), ready, provisioning, failed",
            m.group_size.clone(),
        );
        r.register("node_group_min_size", "Configured minimum size of a node group", m.group_min_size.clone());
        r.register(
            "openstack_failing",
            "1 while reading a node group from Heat (Keystone included) has failed for longer than \
             openstack.failure-alert-after, by the kind of failure",
            m.openstack_failing.clone(),
        );
        r.register("node_group_max_size", "Configured maximum size of a node group", m.group_max_size.clone());
        r.register(
            "unschedulable_pods",
            "Pods the scheduler marked Unschedulable at the last plan",
            m.unschedulable_pods.clone(),
        );
        r.register("scaled_up_nodes", "Minions requested from Heat by scale-ups", m.scaled_up_nodes.clone());
        r.register_with_unit(
            "scale_up_duration",
            "From the Heat request to the new nodes being Ready",
            Unit::Seconds,
            m.scale_up_duration.clone(),
        );
        r.register("failed_scale_ups", "Scale-ups that did not deliver nodes, by reason", m.failed_scale_ups.clone());
        r.register("scaled_down_nodes", "Minions removed from Heat after a drain", m.scaled_down_nodes.clone());
        r.register_with_unit(
            "scale_down_duration",
            "From cordoning a node to its minion's removal from Heat",
            Unit::Seconds,
            m.scale_down_duration.clone(),
        );
        r.register_with_unit(
            "drain_duration",
            "Time spent draining a node, by outcome",
            Unit::Seconds,
            m.drain_duration.clone(),
        );
        r.register("evictions", "Pods evicted through the eviction API, by purpose", m.evictions.clone());
        r.register(
            "eviction_pdb_rejections",
            "Evictions refused because a PodDisruptionBudget allowed no disruption (HTTP 429)",
            m.pdb_rejections.clone(),
        );
        r.register("pod_resizes", "Pod resizes by outcome", m.pod_resizes.clone());
        r.register(
            "admission_reviews",
            "Pod creations the admission webhook answered, by outcome: patched, unchanged (no VPA, no \
             recommendation, Off), or a problem that admitted the pod as created (not_synced, \
             workload_unknown, invalid)",
            m.admission_reviews.clone(),
        );
        r.register(
            "recommendation",
            "Recommended request per container and resource (cores, bytes), by bound",
            m.recommendation.clone(),
        );
        r.register(
            "container_request",
            "Current request per container and resource (cores, bytes), to compare with the recommendation",
            m.container_request.clone(),
        );
        r.register_with_unit(
            "heat_request_duration",
            "Latency of Heat and Keystone API calls by operation",
            Unit::Seconds,
            m.heat_duration.clone(),
        );
        r.register("heat_request_errors", "Failed Heat and Keystone API calls by operation", m.heat_errors.clone());
        r.register_with_unit(
            "kubernetes_request_duration",
            "Latency of Kubernetes API calls by verb and resource",
            Unit::Seconds,
            m.kube_duration.clone(),
        );
        r.register(
            "kubernetes_request_errors",
            "Failed Kubernetes API calls by verb and resource",
            m.kube_errors.clone(),
        );
        r.register(
            "last_successful_loop_timestamp_seconds",
            "Unix time at which the last control loop completed without error, on watch data that was current",
            m.last_successful_loop.clone(),
        );
        r.register_with_unit(
            "kubernetes_watch_data_age",
            "How old each watch's data may be: 0 while the watch is healthy, the time since it started failing otherwise",
            Unit::Seconds,
            m.watch_data_age.clone(),
        );
        r.register_with_unit(
            "loop_duration",
            "Duration of one control loop (observe, plan, act)",
            Unit::Seconds,
            m.loop_duration.clone(),
        );
        r.register("leader", "1 while this daemon holds the leader lease (or runs without election)", m.leader.clone());
        r.register(
            "alert_notifications",
            "Notifications per alert sink by outcome: sent, failed, dropped, deduplicated",
            m.alert_notifications.clone(),
        );
        r.register("alert_queue_length", "Notifications waiting per alert sink", m.alert_queue_length.clone());
        r.register_with_unit(
            "allocator",
            "The allocator's figures now: live data (allocated), pages holding it (active), pages kept \
             (resident), address space returned but kept mapped (retained)",
            Unit::Bytes,
            m.allocator.clone(),
        );
        r.register_with_unit(
            "allocator_peak",
            "The allocator's figures at the sample with the most resident memory since start",
            Unit::Bytes,
            m.allocator_peak.clone(),
        );
        r.register(
            "kubernetes_list_room_objects",
            "Objects the store made room for before a watch's last list, from the API server's count (0: not counted)",
            m.list_room.clone(),
        );
        Self { registry, ..m }
    }

    /// The text exposition (OpenMetrics 1.0), as served on `/metrics`.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("encoding into a String");
        out
    }

    // ------------------------------------------------------------ node groups

    pub fn set_group_size(&self, group: &str, sizes: GroupSizes) {
        for (state, v) in [
            ("desired", sizes.desired),
            ("ready", sizes.ready),
            ("provisioning", sizes.provisioning),
            ("failed", sizes.failed),
        ] {
            self.group_size.get_or_create(&GroupStateLabels { group: group.into(), state }).set(gauge_value(v));
        }
    }

    pub fn set_group_limits(&self, group: &str, min: u64, max: u64) {
        let l = GroupLabels { group: group.into() };
        self.group_min_size.get_or_create(&l).set(gauge_value(min));
        self.group_max_size.get_or_create(&l).set(gauge_value(max));
    }

    /// A group's lasting OpenStack failure of this kind starts (`true`) or ends.
    pub fn set_openstack_failing(&self, group: &str, reason: &'static str, failing: bool) {
        let labels = GroupReasonLabels { group: group.into(), reason };
        if failing {
            self.openstack_failing.get_or_create(&labels).set(1);
        } else {
            self.openstack_failing.remove(&labels);
        }
    }

    /// Removes a group's gauges when it leaves the configuration (on reload).
    /// Counters and histograms stay: they are cumulative by definition.
    pub fn forget_group(&self, group: &str) {
        for state in ["desired", "ready", "provisioning", "failed"] {
            self.group_size.remove(&GroupStateLabels { group: group.into(), state });
        }
        let l = GroupLabels { group: group.into() };
        self.group_min_size.remove(&l);
        self.group_max_size.remove(&l);
    }

    /// A configured group's counters at zero, before their first event:
    /// `rate()` and `increase()` need the series to exist from the start,
    /// and an alert on `failed_scale_ups` must see 0 → 1, not nothing → 1.
    pub fn register_group(&self, group: &str) {
        let l = GroupLabels { group: group.into() };
        let _ = self.scaled_up_nodes.get_or_create(&l);
        let _ = self.scaled_down_nodes.get_or_create(&l);
        for reason in ScaleUpFailure::ALL {
            let _ = self
                .failed_scale_ups
                .get_or_create(&GroupReasonLabels { group: group.into(), reason: reason.as_str() });
        }
    }

    pub fn set_unschedulable_pods(&self, n: u64) {
        self.unschedulable_pods.set(gauge_value(n));
    }

    // -------------------------------------------------------------- scale-up

    /// `nodes` minions were requested from Heat for `group`.
    pub fn record_scale_up(&self, group: &str, nodes: u64) {
        self.scaled_up_nodes.get_or_create(&GroupLabels { group: group.into() }).inc_by(nodes);
    }

    /// A scale-up completed: all requested nodes are `Ready`.
    pub fn observe_scale_up_duration(&self, group: &str, took: Duration) {
        self.scale_up_duration.get_or_create(&GroupLabels { group: group.into() }).observe(took.as_secs_f64());
    }

    pub fn record_failed_scale_up(&self, group: &str, reason: ScaleUpFailure) {
        self.failed_scale_ups.get_or_create(&GroupReasonLabels { group: group.into(), reason: reason.as_str() }).inc();
    }

    // ------------------------------------------------------------ scale-down

    /// `nodes` minions were removed from Heat for `group`.
    pub fn record_scale_down(&self, group: &str, nodes: u64) {
        self.scaled_down_nodes.get_or_create(&GroupLabels { group: group.into() }).inc_by(nodes);
    }

    /// A node went from cordoned to removed from Heat.
    pub fn observe_scale_down_duration(&self, group: &str, took: Duration) {
        self.scale_down_duration.get_or_create(&GroupLabels { group: group.into() }).observe(took.as_secs_f64());
    }

    pub fn observe_drain(&self, group: &str, took: Duration, outcome: DrainOutcome) {
        self.drain_duration
            .get_or_create(&DrainLabels { group: group.into(), outcome: outcome.as_str() })
            .observe(took.as_secs_f64());
    }

    pub fn record_eviction(&self, purpose: EvictionPurpose) {
        self.evictions.get_or_create(&PurposeLabels { purpose: purpose.as_str() }).inc();
    }

    /// An eviction answered 429 because a PodDisruptionBudget allows no disruption now.
    pub fn record_pdb_rejection(&self, purpose: EvictionPurpose) {
        self.pdb_rejections.get_or_create(&PurposeLabels { purpose: purpose.as_str() }).inc();
    }

    // ------------------------------------------------------------ pod level

    pub fn record_admission(&self, outcome: AdmissionOutcome) {
        self.admission_reviews.get_or_create(&OutcomeLabels { outcome: outcome.as_str() }).inc();
    }

    /// Reviews answered with `outcome` so far (tests and `explain`).
    pub fn admission_count(&self, outcome: AdmissionOutcome) -> u64 {
        self.admission_reviews.get_or_create(&OutcomeLabels { outcome: outcome.as_str() }).get()
    }

    pub fn record_resize(&self, outcome: ResizeOutcome) {
        self.pod_resizes.get_or_create(&OutcomeLabels { outcome: outcome.as_str() }).inc();
    }

    /// The recommendation and current request for one container of a workload.
    /// `request` is `None` when the container sets no request for the resource.
    pub fn set_recommendation(
        &self,
        workload: &WorkloadRef,
        container: &str,
        resource: ResourceName,
        values: RecommendationValues,
        request: Option<f64>,
    ) {
        let base = ContainerResourceLabels {
            namespace: workload.namespace.to_string(),
            workload_kind: workload.kind.to_string(),
            workload: workload.name.to_string(),
            container: container.into(),
            resource: resource.as_str(),
        };
        for (bound, v) in
            [("target", values.target), ("lower_bound", values.lower_bound), ("upper_bound", values.upper_bound)]
        {
            self.recommendation.get_or_create(&recommendation_labels(&base, bound)).set(v);
        }
        match request {
            Some(r) => {
                self.container_request.get_or_create(&base).set(r);
            }
            None => {
                self.container_request.remove(&base);
            }
        }
        self.workload_series
            .lock()
            .expect("metrics index lock")
            .entry(workload.clone())
            .or_default()
            .insert((container.into(), resource));
    }

    /// Removes a workload's recommendation series (the workload or its VPA is gone).
    pub fn forget_workload(&self, workload: &WorkloadRef) {
        let Some(series) = self.workload_series.lock().expect("metrics index lock").remove(workload) else {
            return;
        };
        for (container, resource) in series {
            let base = ContainerResourceLabels {
                namespace: workload.namespace.to_string(),
                workload_kind: workload.kind.to_string(),
                workload: workload.name.to_string(),
                container,
                resource: resource.as_str(),
            };
            for bound in ["target", "lower_bound", "upper_bound"] {
                self.recommendation.remove(&recommendation_labels(&base, bound));
            }
            self.container_request.remove(&base);
        }
    }

    // ------------------------------------------------------------ API calls

    pub fn observe_heat_call(&self, operation: HeatOperation, took: Duration, ok: bool) {
        let l = HeatLabels { operation: operation.as_str() };
        self.heat_duration.get_or_create(&l).observe(took.as_secs_f64());
        if !ok {
            self.heat_errors.get_or_create(&l).inc();
        }
    }

    pub fn observe_kube_call(&self, verb: KubeVerb, resource: KubeResource, took: Duration, ok: bool) {
        let l = KubeLabels { verb: verb.as_str(), resource: resource.as_str() };
        self.kube_duration.get_or_create(&l).observe(took.as_secs_f64());
        if !ok {
            self.kube_errors.get_or_create(&l).inc();
        }
    }

    /// Runs a Heat call and records its latency and outcome.
    pub async fn time_heat<T, E>(
        &self,
        operation: HeatOperation,
        call: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let start = Instant::now();
        let result = call.await;
        self.observe_heat_call(operation, start.elapsed(), result.is_ok());
        result
    }

    /// Runs a Kubernetes call and records its latency and outcome.
    pub async fn time_kube<T, E>(
        &self,
        verb: KubeVerb,
        resource: KubeResource,
        call: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let start = Instant::now();
        let result = call.await;
        self.observe_kube_call(verb, resource, start.elapsed(), result.is_ok());
        result
    }

    // ------------------------------------------------------------ the loop

    /// A control loop finished without error at `at`, having taken `took`.
    pub fn record_successful_loop(&self, at: Timestamp, took: Duration) {
        self.last_successful_loop.set(at.as_millisecond() as f64 / 1000.0);
        self.loop_duration.observe(took.as_secs_f64());
    }

    /// How old a watch's data may be (`WatchHealth::data_age`).
    pub fn set_watch_data_age(&self, resource: &'static str, age: Duration) {
        self.watch_data_age.get_or_create(&WatchLabels { resource }).set(age.as_secs_f64());
    }

    /// The allocator's figures now and at its resident peak ([`super::allocator`]).
    pub fn set_allocator(&self, now: super::AllocatorSample, peak: super::AllocatorSample) {
        for (family, s) in [(&self.allocator, now), (&self.allocator_peak, peak)] {
            for (state, bytes) in
                [("allocated", s.allocated), ("active", s.active), ("resident", s.resident), ("retained", s.retained)]
            {
                family.get_or_create(&AllocatorLabels { state }).set(i64::try_from(bytes).unwrap_or(i64::MAX));
            }
        }
    }

    /// Room made in the store for the list a watch is about to make.
    pub fn set_list_room(&self, resource: &'static str, objects: usize) {
        self.list_room.get_or_create(&WatchLabels { resource }).set(i64::try_from(objects).unwrap_or(i64::MAX));
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    // ------------------------------------------------------------ alert sinks

    pub fn record_alert(&self, sink: &str, outcome: AlertOutcome) {
        self.record_alerts(sink, outcome, 1);
    }

    pub fn record_alerts(&self, sink: &str, outcome: AlertOutcome, n: u64) {
        self.alert_notifications
            .get_or_create(&SinkOutcomeLabels { sink: sink.into(), outcome: outcome.as_str() })
            .inc_by(n);
    }

    /// Makes a sink's series exist at zero, so `rate()` and absence alerts work
    /// before its first notification.
    pub fn register_alert_sink(&self, sink: &str) {
        for outcome in [AlertOutcome::Sent, AlertOutcome::Failed, AlertOutcome::Dropped, AlertOutcome::Deduplicated] {
            self.record_alerts(sink, outcome, 0);
        }
        self.set_alert_queue_length(sink, 0);
    }

    pub fn set_alert_queue_length(&self, sink: &str, n: usize) {
        self.alert_queue_length.get_or_create(&SinkLabels { sink: sink.into() }).set(gauge_value(n as u64));
    }

    /// The current count of one sink outcome (for tests and `heatscaler explain`).
    pub fn alert_count(&self, sink: &str, outcome: AlertOutcome) -> u64 {
        self.alert_notifications
            .get(&SinkOutcomeLabels { sink: sink.into(), outcome: outcome.as_str() })
            .map_or(0, |c| c.get())
    }
}

fn recommendation_labels(base: &ContainerResourceLabels, bound: &'static str) -> RecommendationLabels {
    RecommendationLabels {
        namespace: base.namespace.clone(),
        workload_kind: base.workload_kind.clone(),
        workload: base.workload.clone(),
        container: base.container.clone(),
        resource: base.resource,
        bound,
    }
}

fn gauge_value(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
