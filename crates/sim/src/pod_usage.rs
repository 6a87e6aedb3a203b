//! The usage component: what each replica of a workload with a VPA object
//! uses, sampled on the metrics tick as metrics-server would — its signals
//! (`scenario::VpaSpec`) times per-sample noise, spread evenly over the pod's
//! containers. A container whose working set is over its memory limit is
//! OOM-killed instead of measured. The noise of a replica is keyed by its
//! lineage (a pod and the pods that replaced it), so the usage a replica
//! sees does not depend on which pod the policy under test made of it.

use rustc_hash::FxHashMap as HashMap;

use heatscaler_core::model::{PodKey, Resources, SignedDuration};
use heatscaler_core::planner::time::elapsed;
use heatscaler_core::recommender::ContainerUsage;

use crate::scenario::Scenario;
use crate::signals::{Track, noise_factor};
use crate::world::World;
use crate::world::cluster::Origin;

/// A workload's usage signals, made ready to read.
struct Tracks {
    cpu: Track,
    memory: Track,
    noise: f64,
}

pub struct PodUsage {
    /// By workload index; `None` for workloads without a VPA object.
    workloads: Vec<Option<Tracks>>,
    seed: u64,
    /// The metrics tick: what each sample stands for in the pod meter.
    interval: std::time::Duration,
    ticks: u64,
    /// What each pod used at the last tick, for the planner's observed usage.
    last: HashMap<String, Resources>,
}

impl PodUsage {
    pub fn new(sc: &Scenario) -> Self {
        let horizon = sc.duration.get();
        let workloads = sc
            .workloads
            .iter()
            .enumerate()
            .map(|(w, spec)| {
                spec.vpa.as_ref().map(|v| {
                    let stream = |k: u64| sc.seed ^ (w as u64).wrapping_mul(0x9E37_79B9) ^ k;
                    Tracks {
                        cpu: Track::new(&v.cpu, horizon, stream(1)),
                        memory: Track::new(&v.memory, horizon, stream(2)),
                        noise: v.noise,
                    }
                })
            })
            .collect();
        Self { workloads, seed: sc.seed, interval: sc.metrics_interval.get(), ticks: 0, last: HashMap::default() }
    }

    /// Whether any workload has pod-level usage.
    pub fn any(&self) -> bool {
        self.workloads.iter().any(Option::is_some)
    }

    /// Workloads with pod-level usage are measured in the journal's pod meter.
    pub fn start(&self, world: &mut World<'_>, sc: &Scenario) {
        for (w, tracks) in self.workloads.iter().enumerate() {
            if tracks.is_some() {
                world.journal.pod_meter.measure(w, &sc.workloads[w].name);
            }
        }
    }

    /// One metrics tick: samples of every serving container; OOM kills;
    /// each live pod's last interval measured (served or not, requests
    /// against usage).
    pub fn tick(&mut self, world: &mut World<'_>) -> Vec<ContainerUsage> {
        let t = world.elapsed();
        let now = world.now();
        let tick = self.ticks;
        self.ticks += 1;
        self.last.clear();
        let mut samples = Vec::new();
        let mut kills = Vec::new();
        let mut measured = Vec::new();
        let dt = self.interval;
        let previous = now.checked_sub(SignedDuration::try_from(dt).unwrap_or(SignedDuration::MAX)).unwrap_or(now);
        let previous = previous.max(world.epoch());
        for (w, tracks) in self.workloads.iter().enumerate() {
            let Some(tracks) = tracks else { continue };
            for pod in world.cluster.pods_of(Origin::Workload(w)) {
                if pod.deletion.is_some() {
                    continue;
                }
                let serving = world.serving(&pod.uid) && !pod.containers.is_empty();
                // Since the last tick (or its creation): alive, and not serving
                // while unbound or while its containers (re)started.
                let from = previous.max(pod.created);
                let alive = elapsed(now, from);
                let down = match world.container_run(&pod.uid) {
                    None => alive,
                    Some(run) => elapsed(run.serving_from.min(now), run.started.max(from)),
                };
                measured.push((w, Some((alive, down)), None));
                if !serving {
                    continue;
                }
                let slot = world.lineage(&pod.uid).unwrap_or(0) as usize;
                let n = pod.containers.len() as f64;
                let cpu = tracks.cpu.at(t) * noise_factor(tracks.noise, self.seed, w, slot, tick, 0) / n;
                let memory = tracks.memory.at(t) * noise_factor(tracks.noise, self.seed, w, slot, tick, 1) / n;
                let mut used = Resources::default();
                for c in &pod.containers {
                    if c.limits.memory > 0 && memory > c.limits.memory as f64 {
                        kills.push((pod.uid.clone(), c.name.clone()));
                        continue;
                    }
                    let applied = c.allocated.as_ref().unwrap_or(&c.requests).clone();
                    measured.push((w, None, Some((applied, cpu, memory))));
                    used.cpu_milli += (cpu * 1000.0).round() as i64;
                    used.memory += memory.round() as i64;
                    samples.push(ContainerUsage {
                        pod: PodKey { namespace: pod.namespace.clone(), name: pod.name.clone() },
                        container: c.name.clone(),
                        at: now,
                        cpu_cores: Some(cpu),
                        memory_working_set: Some(memory as i64),
                    });
                }
                self.last.insert(pod.uid.to_string(), used);
            }
        }
        for (w, live, sample) in measured {
            if let Some((alive, down)) = live {
                world.journal.pod_meter.live(w, alive, down);
            }
            if let Some((applied, cpu, memory)) = sample {
                world.journal.pod_meter.sample(w, &applied, cpu, memory, dt);
            }
        }
        for (uid, container) in kills {
            world.oom_kill(&uid, &container);
        }
        samples
    }

    /// What pod `uid` used at the last tick, if it has pod-level usage.
    pub fn last(&self, uid: &str) -> Option<&Resources> {
        self.last.get(uid)
    }
}
