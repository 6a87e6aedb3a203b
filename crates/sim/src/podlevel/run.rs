//! One workload under one policy, minute by minute: usage → OOM kills and
//! measurements → the real recommender (through the collector's data types
//! and `feed_usage` / `OomTracker`) → the VPA object's recommendation → the
//! real planner (heatscaler) or the VPA updater re-implementation (baseline)
//! → the simulated kubelet.

use std::time::Duration;

use heatscaler_core::model::{
    Container, Node, Pdb, PodResourcePolicy, Resources, SignedDuration, Snapshot, Timestamp, UpdateMode,
    VerticalScaling, WorkloadRef,
};
use heatscaler_core::planner::action::Action;
use heatscaler_core::planner::{self, Input, Memory, Policy, ResizePolicy};
use heatscaler_core::policy::RecommenderSettings;
use heatscaler_core::recommender::{
    ContainerUsage, OomTracker, Recommender, feed_ooms, feed_usage, fill_recommendations,
};

use super::cluster::{CONTAINER, Cluster, Verdict};
use super::report::{Meter, Row};
use super::spec::{PodLevelSpec, PodWorkload, Side};
use crate::peers::vpa_defaults as baseline;
use crate::signals::{Track, noise_factor};

/// A Monday at 00:00, for the diurnal week.
pub fn epoch() -> Timestamp {
    "2024-01-01T00:00:00Z".parse().expect("valid timestamp")
}

pub fn simulate(spec: &PodLevelSpec, w: usize, side: Side, duration: Duration, seed: u64) -> Row {
    let wl = &spec.workloads[w];
    let duration = wl.duration.map_or(duration, |d| d.get().min(duration));
    let interval = spec.metrics_interval.get();
    let restart = spec.restart.get();
    let epoch = epoch();
    let ticks = (duration.as_secs_f64() / interval.as_secs_f64()).floor() as u64;
    let stream = |k: u64| seed ^ (w as u64).wrapping_mul(0x9E37_79B9) ^ k;
    let cpu = Track::new(&wl.cpu, duration, stream(1));
    let memory = Track::new(&wl.memory, duration, stream(2));

    let workload = WorkloadRef { kind: "Deployment".into(), namespace: "default".into(), name: wl.name.clone() };
    let template = template(wl);
    let mut cluster = Cluster::new(nodes(spec), resources(&spec.nodes.reserved), workload.clone());
    for slot in 0..wl.replicas as usize {
        cluster.create(slot, template.clone(), epoch, Duration::ZERO);
    }
    let object = vertical_scaling(&workload, side, spec, wl);
    let settings = match side {
        Side::Heatscaler => spec.heatscaler.recommender.clone(),
        Side::VpaDefaults => RecommenderSettings::default(),
    };
    let mut recommender = Recommender::from_config(&settings);
    let oom_window = recommender.settings().memory_aggregation_interval;
    let mut ooms = OomTracker::default();
    let policy = Policy {
        resize: ResizePolicy { enabled: true, updater: spec.heatscaler.updater.clone() },
        ..Policy::default()
    };
    let mut memory_state = Memory::default();
    let mut meter = Meter::new(wl.replicas);

    for tick in 0..ticks {
        let now = epoch + SignedDuration::try_from(interval * tick as u32).unwrap_or(SignedDuration::MAX);
        let t = interval * tick as u32;
        cluster.schedule(now, restart);
        if let Ok(previous) = now.checked_sub(SignedDuration::try_from(interval).unwrap_or(SignedDuration::MAX)) {
            for p in &cluster.pods {
                meter.unavailable(p.down_within(previous, now));
            }
        }

        // Usage, OOM kills and measurements.
        let mut samples = Vec::new();
        let working_set: Vec<f64> = (0..wl.replicas as usize)
            .map(|slot| memory.at(t) * noise_factor(wl.noise, seed, w, slot, tick, 1))
            .collect();
        for (slot, &used_memory) in working_set.iter().enumerate() {
            let used_cpu = cpu.at(t) * noise_factor(wl.noise, seed, w, slot, tick, 0);
            let Some(p) = cluster.pods.iter().position(|p| p.slot == slot && p.up(now)) else { continue };
            let limit = cluster.pods[p].container().limits.memory;
            if limit > 0 && used_memory > limit as f64 {
                cluster.oom_kill(p, now, restart);
                meter.oom();
                continue;
            }
            meter.sample(cluster.pods[p].applied(), used_cpu, used_memory, interval);
            samples.push(ContainerUsage {
                pod: cluster.key(p),
                container: CONTAINER.into(),
                at: now,
                cpu_cores: Some(used_cpu),
                memory_working_set: Some(used_memory as i64),
            });
        }

        // The kubelet retries resizes it deferred (or failed to actuate).
        for p in 0..cluster.pods.len() {
            if matches!(
                cluster.pods[p].pod.resize,
                heatscaler_core::model::ResizeState::Deferred { .. }
                    | heatscaler_core::model::ResizeState::Error { .. }
            ) {
                let usage = working_set[cluster.pods[p].slot];
                if cluster.admit(p, now, usage) == Verdict::Applied {
                    meter.update();
                }
            }
        }

        // The recommender, exactly as the daemon feeds it.
        let pods: Vec<_> = cluster.pods.iter().map(|p| p.pod.clone()).collect();
        feed_usage(&mut recommender, &pods, &samples);
        feed_ooms(&mut recommender, &ooms.observe(&pods, now, oom_window));
        recommender.retain_pods(|k| pods.iter().any(|p| &p.key() == k));
        let mut vertical = object.clone();
        fill_recommendations(&mut vertical, &recommender, &pods);

        match side {
            Side::Heatscaler => {
                let snapshot = Snapshot {
                    nodes: cluster.nodes.clone(),
                    pods,
                    pdbs: Vec::<Pdb>::new(),
                    groups: Vec::new(),
                    vertical: vec![vertical],
                    admission_applies_recommendations: false,
                };
                let plan =
                    planner::plan(&Input { snapshot: &snapshot, usage: None, memory: &memory_state, now }, &policy);
                memory_state = plan.memory;
                for action in &plan.actions {
                    match action {
                        Action::ResizePod(a) => {
                            let Some(p) = cluster.index_of(&a.uid) else { continue };
                            let usage = working_set[cluster.pods[p].slot];
                            meter.resize_requested();
                            if cluster.request_resize(p, &a.containers, now, usage) == Verdict::Applied {
                                meter.update();
                            }
                        }
                        Action::RecreatePod(a) => {
                            let Some(p) = cluster.index_of(&a.uid) else { continue };
                            // No admission controller: the replacement gets the template.
                            cluster.recreate(p, template.clone(), now, restart);
                            meter.eviction();
                        }
                        _ => {}
                    }
                }
            }
            Side::VpaDefaults => {
                for uid in baseline::evictions(&cluster.pods, &vertical, wl.replicas, now) {
                    let Some(p) = cluster.index_of(&uid) else { continue };
                    cluster.recreate(p, baseline::admitted(&template, &vertical), now, restart);
                    meter.eviction();
                }
            }
        }
    }
    meter.finish(&wl.name, side, duration, cluster.counts)
}

fn template(wl: &PodWorkload) -> Container {
    Container {
        name: CONTAINER.into(),
        requests: resources(&wl.requests),
        limits: resources(&wl.limits),
        allocated: None,
        oom_kills: 0,
        last_oom: None,
    }
}

fn resources(list: &std::collections::BTreeMap<String, heatscaler_core::policy::Quantity>) -> Resources {
    let mut r = Resources::default();
    for (k, q) in list {
        r.set(k, if k == Resources::CPU { q.as_milli() } else { q.as_units() });
    }
    r
}

fn nodes(spec: &PodLevelSpec) -> Vec<Node> {
    let mut allocatable = resources(&spec.nodes.allocatable);
    if allocatable.pods == 0 {
        allocatable.pods = 110;
    }
    (0..spec.nodes.count)
        .map(|i| Node {
            name: format!("node-{i}"),
            labels: Default::default(),
            annotations: Default::default(),
            taints: Vec::new(),
            allocatable: allocatable.clone(),
            unschedulable: false,
            ready: true,
            provider_id: None,
            created: epoch(),
        })
        .collect()
}

/// The VPA object users would write, as the daemon's watch hands it to the
/// planner: the update mode, `minReplicas` and one `*` container policy when
/// the workload names its controlled resources (other names are ignored, as
/// VPA ignores them). Recommendations are filled in every pass.
fn vertical_scaling(workload: &WorkloadRef, side: Side, spec: &PodLevelSpec, wl: &PodWorkload) -> VerticalScaling {
    let update_mode = match side {
        Side::Heatscaler => spec.heatscaler.update_mode,
        Side::VpaDefaults => UpdateMode::Recreate,
    };
    let resource_policy =
        wl.controlled_resources.as_deref().map_or_else(Default::default, PodResourcePolicy::controlling);
    VerticalScaling {
        namespace: workload.namespace.clone(),
        name: workload.name.clone(),
        workload: workload.clone(),
        update_mode,
        min_replicas: wl.min_replicas,
        resource_policy,
        eviction_requirements: Vec::new(),
        replicas: Some(wl.replicas),
        recommendations: Vec::new(),
    }
}
