//! The pod-level recommender: per container of each workload, requests the way
//! the Kubernetes VPA recommender computes them (see `docs/recommender.md` for
//! the algorithm and every constant).
//!
//! Usage flows in as samples keyed by workload, pod and container; each pod's
//! container keeps a small `instance` state (sample order, this interval's
//! memory peak) and feeds the workload container's [`AggregateState`], two
//! fixed-size decaying histograms. Recommendations are computed on demand and
//! shaped like a VPA's `status.recommendation.containerRecommendations[]`.
//!
//! This module does no I/O and reads no clock: callers pass every time in.

mod admit;
mod aggregate;
mod apply;
mod checkpoint;
mod estimate;
mod feed;
mod histogram;
mod instance;
mod samples;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};

use jiff::{SignedDuration, Timestamp};

pub use admit::admitted;
pub use aggregate::AggregateState;
pub use apply::{AppliedResources, ScaledLimit, apply_to_container, proportional_limit};
pub use checkpoint::{
    CHECKPOINT_VERSION, CheckpointError, CheckpointKey, CheckpointStatus, ContainerCheckpoint, HistogramCheckpoint,
};
pub use estimate::{
    Amounts, CONFIDENCE_INTERVAL, Estimates, EstimatorSettings, LOWER_BOUND_CONFIDENCE, MAX_RESOURCE_AMOUNT,
    UPPER_BOUND_CONFIDENCE,
};
pub use feed::{FeedReport, feed_ooms, feed_usage, fill_recommendations};
pub use histogram::{
    BUCKET_GROWTH, BucketScheme, DecayingHistogram, EPSILON, Histogram, MAX_CHECKPOINT_WEIGHT, MAX_DECAY_EXPONENT,
    MIN_SAMPLE_WEIGHT,
};
pub use instance::SampleRejected;
pub use samples::{ContainerUsage, OomEvent, OomTracker};

use crate::model::{
    ContainerRecommendation, ContainerScalingMode, PodKey, PodResourcePolicy, ResourceKind, Resources, WorkloadRef,
};
use crate::policy::RecommenderSettings;
use instance::{InstanceState, MemoryRules};

/// A workload container: the unit a recommendation is for.
type AggregateKey = (WorkloadRef, String);

/// A running container: pod and container name (VPA keys them the same way).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct InstanceKey {
    pod: PodKey,
    container: String,
}

#[derive(Clone, Debug)]
struct Instance {
    aggregate: AggregateKey,
    state: InstanceState,
}

/// Every setting the recommender uses, resolved from configuration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    pub cpu_half_life: SignedDuration,
    pub memory_half_life: SignedDuration,
    pub memory_aggregation_interval: SignedDuration,
    pub memory_aggregation_interval_count: u32,
    pub oom_bump_up_ratio: f64,
    /// Bytes.
    pub oom_min_bump_up: i64,
    pub estimator: EstimatorSettings,
}

impl Settings {
    pub fn from_config(c: &RecommenderSettings) -> Self {
        let d = |d: crate::policy::Duration| SignedDuration::try_from(d.get()).unwrap_or(SignedDuration::MAX);
        Self {
            cpu_half_life: d(c.cpu_histogram_half_life),
            memory_half_life: d(c.memory_histogram_half_life),
            memory_aggregation_interval: d(c.memory_aggregation_interval),
            memory_aggregation_interval_count: c.memory_aggregation_interval_count,
            oom_bump_up_ratio: c.oom_bump_up_ratio,
            oom_min_bump_up: c.oom_min_bump_up.as_units(),
            estimator: EstimatorSettings {
                target_cpu_percentile: c.target_cpu_percentile.0,
                target_memory_percentile: c.target_memory_percentile.0,
                lower_bound_percentile: c.lower_bound_percentile.0,
                upper_bound_percentile: c.upper_bound_percentile.0,
                safety_margin_fraction: c.safety_margin_fraction,
                pod_min_cpu_milli: c.pod_min_cpu.as_milli(),
                pod_min_memory: c.pod_min_memory.as_units(),
            },
        }
    }

    /// How long a workload container's history lives without samples.
    pub fn memory_aggregation_window(&self) -> SignedDuration {
        i32::try_from(self.memory_aggregation_interval_count)
            .ok()
            .and_then(|n| self.memory_aggregation_interval.checked_mul(n))
            .unwrap_or(SignedDuration::MAX)
    }

    fn memory_rules(&self) -> MemoryRules {
        MemoryRules {
            interval: self.memory_aggregation_interval,
            oom_bump_up_ratio: self.oom_bump_up_ratio,
            oom_min_bump_up: self.oom_min_bump_up,
        }
    }
}

/// Sizes, for metrics and the footprint figures in `docs/recommender.md`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Footprint {
    pub aggregates: usize,
    pub instances: usize,
    /// Histogram and state bytes (keys' strings excluded).
    pub bytes: usize,
}

/// The recommender's whole state.
#[derive(Clone, Debug)]
pub struct Recommender {
    settings: Settings,
    aggregates: BTreeMap<AggregateKey, AggregateState>,
    instances: HashMap<InstanceKey, Instance>,
}

impl Recommender {
    pub fn new(settings: Settings) -> Self {
        Self { settings, aggregates: BTreeMap::new(), instances: HashMap::new() }
    }

    pub fn from_config(c: &RecommenderSettings) -> Self {
        Self::new(Settings::from_config(c))
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// A CPU usage sample (cores, averaged over the scrape interval ending at
    /// `at`), weighted by the container's CPU request at the time.
    pub fn add_cpu_sample(
        &mut self,
        workload: &WorkloadRef,
        pod: &PodKey,
        container: &str,
        at: Timestamp,
        usage_cores: f64,
        cpu_request_milli: i64,
    ) -> Result<(), SampleRejected> {
        let (aggregate, instance) = self.slot(workload, pod, container, at);
        instance.add_cpu(aggregate, usage_cores, cpu_request_milli as f64 / 1000.0, at)
    }

    /// A memory working-set sample in bytes.
    pub fn add_memory_sample(
        &mut self,
        workload: &WorkloadRef,
        pod: &PodKey,
        container: &str,
        at: Timestamp,
        working_set_bytes: i64,
    ) -> Result<(), SampleRejected> {
        let rules = self.settings.memory_rules();
        let (aggregate, instance) = self.slot(workload, pod, container, at);
        instance.add_memory(aggregate, working_set_bytes, at, &rules)
    }

    /// An OOM kill of a container whose memory request was `memory_request` bytes.
    pub fn record_oom(
        &mut self,
        workload: &WorkloadRef,
        pod: &PodKey,
        container: &str,
        at: Timestamp,
        memory_request: i64,
    ) -> Result<(), SampleRejected> {
        let rules = self.settings.memory_rules();
        let (aggregate, instance) = self.slot(workload, pod, container, at);
        instance.record_oom(aggregate, at, memory_request, &rules)
    }

    fn slot(
        &mut self,
        workload: &WorkloadRef,
        pod: &PodKey,
        container: &str,
        at: Timestamp,
    ) -> (&mut AggregateState, &mut InstanceState) {
        let key: AggregateKey = (workload.clone(), container.to_string());
        let settings = self.settings;
        let aggregate = self
            .aggregates
            .entry(key.clone())
            .or_insert_with(|| AggregateState::new(settings.cpu_half_life, settings.memory_half_life, at));
        let instance = self
            .instances
            .entry(InstanceKey { pod: pod.clone(), container: container.to_string() })
            .or_insert_with(|| Instance { aggregate: key.clone(), state: InstanceState::default() });
        if instance.aggregate != key {
            // The pod name now belongs to another workload: a different container.
            *instance = Instance { aggregate: key, state: InstanceState::default() };
        }
        (aggregate, &mut instance.state)
    }

    /// Recommendations for every container of `workload` that has CPU history
    /// and is not switched off, sorted by container name.
    /// `containers_per_pod` splits the pod minimum (`pod-min-cpu`/`-memory`).
    pub fn recommend(
        &self,
        workload: &WorkloadRef,
        policy: Option<&PodResourcePolicy>,
        containers_per_pod: usize,
    ) -> Vec<ContainerRecommendation> {
        self.workload_aggregates(workload)
            .filter_map(|(container, state)| {
                let container_policy = policy.and_then(|p| p.for_container(container));
                if container_policy.is_some_and(|p| p.mode == ContainerScalingMode::Off) || state.total_samples() == 0 {
                    return None;
                }
                let estimates = self.settings.estimator.estimate(state, containers_per_pod);
                let controlled = |a: Amounts| {
                    let mut r = Resources::default();
                    for kind in ResourceKind::ALL {
                        if container_policy.is_none_or(|p| p.controls(kind)) {
                            let amount = match kind {
                                ResourceKind::Cpu => a.cpu_milli,
                                ResourceKind::Memory => a.memory,
                            };
                            kind.set(&mut r, amount);
                        }
                    }
                    r
                };
                let mut rec = ContainerRecommendation {
                    container_name: container.to_string(),
                    target: controlled(estimates.target),
                    lower_bound: controlled(estimates.lower_bound),
                    upper_bound: controlled(estimates.upper_bound),
                    uncapped_target: controlled(estimates.target),
                    capped: Vec::new(),
                };
                if let Some(p) = container_policy {
                    rec.capped = apply::cap_to_policy(&mut rec.target, p);
                    apply::cap_to_policy(&mut rec.lower_bound, p);
                    apply::cap_to_policy(&mut rec.upper_bound, p);
                }
                Some(rec)
            })
            .collect()
    }

    /// The raw history of one workload container, for `explain` and tests.
    pub fn aggregate(&self, workload: &WorkloadRef, container: &str) -> Option<&AggregateState> {
        self.aggregates.get(&(workload.clone(), container.to_string()))
    }

    fn workload_aggregates<'a>(
        &'a self,
        workload: &'a WorkloadRef,
    ) -> impl Iterator<Item = (&'a str, &'a AggregateState)> + 'a {
        self.aggregates
            .range((workload.clone(), String::new())..)
            .take_while(move |((w, _), _)| w == workload)
            .map(|((_, c), s)| (c.as_str(), s))
    }

    /// Drops the per-pod state of pods that no longer exist (their samples
    /// stay in the workload's history).
    pub fn retain_pods(&mut self, mut live: impl FnMut(&PodKey) -> bool) {
        self.instances.retain(|k, _| live(&k.pod));
    }

    /// Drops workload containers without a sample for a whole memory
    /// aggregation window; returns how many.
    pub fn garbage_collect(&mut self, now: Timestamp) -> usize {
        let window = self.settings.memory_aggregation_window();
        let before = self.aggregates.len();
        self.aggregates.retain(|_, s| !s.is_expired(now, window));
        let aggregates = &self.aggregates;
        self.instances.retain(|_, i| aggregates.contains_key(&i.aggregate));
        before - self.aggregates.len()
    }

    /// Every workload container's history, to be saved.
    pub fn checkpoints(&self, now: Timestamp) -> Vec<ContainerCheckpoint> {
        self.aggregates
            .iter()
            .map(|((w, c), s)| ContainerCheckpoint { key: CheckpointKey::new(w, c), status: s.to_checkpoint(now) })
            .collect()
    }

    /// One workload's containers' history, to be saved.
    pub fn checkpoints_of<'a>(
        &'a self,
        workload: &'a WorkloadRef,
        now: Timestamp,
    ) -> impl Iterator<Item = ContainerCheckpoint> + 'a {
        self.aggregates
            .range((workload.clone(), String::new())..)
            .take_while(move |((w, _), _)| w == workload)
            .map(move |((w, c), s)| ContainerCheckpoint { key: CheckpointKey::new(w, c), status: s.to_checkpoint(now) })
    }

    /// Adds saved history (merged into any history gathered since the start).
    pub fn restore(&mut self, checkpoint: &ContainerCheckpoint, now: Timestamp) -> Result<(), CheckpointError> {
        let key = &checkpoint.key;
        let label = format!("{}/{}/{} container {}", key.kind, key.namespace, key.name, key.container_name);
        let restored = AggregateState::from_checkpoint(
            &label,
            &checkpoint.status,
            self.settings.cpu_half_life,
            self.settings.memory_half_life,
            now,
        )?;
        match self.aggregates.entry((key.workload(), key.container_name.clone())) {
            std::collections::btree_map::Entry::Occupied(mut e) => e.get_mut().merge(&restored),
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(restored);
            }
        }
        Ok(())
    }

    pub fn footprint(&self) -> Footprint {
        Footprint {
            aggregates: self.aggregates.len(),
            instances: self.instances.len(),
            bytes: self.aggregates.values().map(AggregateState::footprint_bytes).sum::<usize>()
                + self.instances.len() * std::mem::size_of::<Instance>(),
        }
    }
}
