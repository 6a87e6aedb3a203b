//! Controllers of the simulated cluster: a ReplicaSet per workload (with an
//! optional HorizontalPodAutoscaler), one-off pods, and pod termination.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration as StdDuration;

use heatscaler_core::model::{PodPhase, Resources, Timestamp};

use super::cluster::{Origin, PodTemplate};
use super::engine::{Event, Sim};
use super::scenario::{HpaSpec, WorkloadSpec};

/// How often a continuously changing replica shape is re-read.
const CONTINUOUS_TICK: StdDuration = StdDuration::from_secs(15);
/// The HPA controller's tolerance around the target utilisation.
const HPA_TOLERANCE: f64 = 0.1;

pub struct WorkloadState {
    pub name: String,
    pub template: PodTemplate,
    /// Replicas the ReplicaSet is asked to keep.
    pub target: u32,
    next_pod: u64,
    /// HPA recommendations in the scale-down stabilisation window.
    recommendations: VecDeque<(Timestamp, u32)>,
}

impl WorkloadState {
    pub fn new(spec: &WorkloadSpec) -> Self {
        let target = match (&spec.replicas, &spec.hpa) {
            (Some(r), _) => r.at(StdDuration::ZERO).round() as u32,
            (None, Some(h)) => h.min_replicas,
            (None, None) => 0,
        };
        Self {
            name: spec.name.clone(),
            template: PodTemplate::from_spec(&spec.pod, &spec.namespace, &spec.name, Some("ReplicaSet")),
            target,
            next_pod: 0,
            recommendations: VecDeque::new(),
        }
    }
}

impl Sim<'_> {
    fn elapsed(&self) -> StdDuration {
        planner_elapsed(self.now, self.epoch)
    }

    pub(super) fn workload_tick(&mut self, w: usize) {
        let spec = &self.sc.workloads[w];
        let t = self.elapsed();
        let before = self.workloads[w].target;
        let next = match (&spec.replicas, &spec.hpa) {
            (Some(shape), _) => {
                self.workloads[w].target = shape.at(t).round().max(0.0) as u32;
                if shape.is_continuous() { Some(CONTINUOUS_TICK) } else { shape.next_change(t).map(|p| p - t) }
            }
            (None, Some(hpa)) => {
                self.workloads[w].target = self.hpa_desired(w, hpa);
                Some(hpa.sync_period.get())
            }
            (None, None) => None,
        };
        let after = self.workloads[w].target;
        if after != before && spec.replicas.is_some() {
            self.rec.input.replica_changes += 1;
        }
        if after != before {
            let name = self.workloads[w].name.clone();
            self.rec.event(self.now, &name, super::report::TimelineEvent::Replicas { from: before, to: after });
        }
        self.reconcile(w);
        if let Some(d) = next {
            self.after(d, Event::Workload(w));
        }
    }

    /// The HPA algorithm on CPU: `ceil(usage / (target × request))`, with the
    /// controller's tolerance, scale-up rate limit and scale-down stabilisation.
    fn hpa_desired(&mut self, w: usize, hpa: &HpaSpec) -> u32 {
        let usage =
            self.sc.workloads[w].usage.as_ref().and_then(|u| u.cpu.as_ref()).map_or(0.0, |s| s.at(self.elapsed()));
        let request = self.workloads[w].template.requests.cpu_milli as f64 / 1000.0;
        let current = self.workloads[w].target;
        let running = self.running(w) as f64;
        let target = hpa.target_cpu_utilization.0;
        let mut raw = ((usage / (target * request)).ceil() as u32).clamp(hpa.min_replicas, hpa.max_replicas);
        if running > 0.0 && ((usage / (running * request)) / target - 1.0).abs() <= HPA_TOLERANCE {
            raw = current;
        }
        let state = &mut self.workloads[w];
        state.recommendations.push_back((self.now, raw));
        let window = hpa.scale_down_stabilization.get();
        while state.recommendations.front().is_some_and(|(t, _)| planner_elapsed(self.now, *t) > window) {
            state.recommendations.pop_front();
        }
        if raw >= current {
            raw.min((current + 4).max(current * 2)).max(hpa.min_replicas)
        } else {
            let stable = state.recommendations.iter().map(|(_, r)| *r).max().unwrap_or(raw);
            stable.min(current)
        }
    }

    fn running(&self, w: usize) -> usize {
        self.cluster
            .pods_of(Origin::Workload(w))
            .filter(|p| p.node_name.is_some() && p.deletion.is_none() && p.phase == PodPhase::Running)
            .count()
    }

    /// The ReplicaSet controller: create or delete pods to match the target.
    /// Deletion order is the ReplicaSet's: unscheduled pods first, then pods
    /// on nodes crowded with replicas, then the newest.
    pub(super) fn reconcile(&mut self, w: usize) {
        let target = self.workloads[w].target as usize;
        let active = self.cluster.active_count(Origin::Workload(w));
        if active < target {
            for _ in active..target {
                let state = &mut self.workloads[w];
                state.next_pod += 1;
                let name = format!("{}-{}", state.name, state.next_pod);
                let template = state.template.clone();
                self.cluster.add_pod(&template, name, self.now, Origin::Workload(w));
            }
            self.dirty = true;
        } else if active > target {
            let active: Vec<(&str, Option<&str>, Timestamp)> = self
                .cluster
                .pods_of(Origin::Workload(w))
                .filter(|p| p.deletion.is_none())
                .map(|p| (p.uid.as_str(), p.node_name.as_deref(), p.created))
                .collect();
            let mut per_node: HashMap<&str, usize> = HashMap::new();
            for (_, node, _) in &active {
                if let Some(n) = node {
                    *per_node.entry(n).or_insert(0) += 1;
                }
            }
            let crowd = |x: &Option<&str>| x.map_or(usize::MAX, |n| per_node[n]);
            let mut ranked: Vec<(usize, Timestamp, &str)> = active.iter().map(|a| (crowd(&a.1), a.2, a.0)).collect();
            let doomed_count = active.len() - target;
            // Unscheduled first, then the most crowded nodes, then the newest;
            // only the first `doomed_count` need ordering.
            let order = |a: &(usize, Timestamp, &str), b: &(usize, Timestamp, &str)| {
                b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(b.2))
            };
            ranked.select_nth_unstable_by(doomed_count - 1, order);
            ranked.truncate(doomed_count);
            ranked.sort_by(order);
            let doomed: Vec<String> = ranked.iter().map(|x| x.2.to_string()).collect();
            for uid in doomed {
                self.delete_pod(&uid, None);
            }
        }
    }

    /// Starts a pod's termination; it is gone after the modelled termination
    /// time (capped by `grace_cap`, as an eviction's grace period is).
    pub(super) fn delete_pod(&mut self, uid: &str, grace_cap: Option<StdDuration>) {
        let Some(unbound) = self.cluster.start_deletion(uid, self.now) else { return };
        let mut grace =
            if unbound { StdDuration::ZERO } else { self.sc.provisioning.pod_termination.sample(&mut self.rng) };
        if let Some(cap) = grace_cap {
            grace = grace.min(cap);
        }
        self.after(grace, Event::PodGone { uid: uid.to_string() });
        self.dirty = true;
    }

    pub(super) fn arrive(&mut self, i: usize) {
        let spec = &self.sc.pods[i];
        if spec.departure.is_some_and(|d| self.elapsed() >= d.get()) {
            return;
        }
        let incarnation = self.cluster.pods_of(Origin::OneOff(i)).count();
        let name = if incarnation == 0 { spec.name.clone() } else { format!("{}-{}", spec.name, incarnation + 1) };
        let template = self.oneoffs[i].clone();
        self.cluster.add_pod(&template, name, self.now, Origin::OneOff(i));
        self.dirty = true;
    }

    pub(super) fn depart(&mut self, i: usize) {
        let uids: Vec<String> =
            self.cluster.pods_of(Origin::OneOff(i)).filter(|p| p.deletion.is_none()).map(|p| p.uid.clone()).collect();
        for uid in uids {
            self.delete_pod(&uid, None);
        }
    }

    /// A pod was evicted: its controller replaces it.
    pub(super) fn replace(&mut self, origin: Origin) {
        match origin {
            Origin::Workload(w) => self.reconcile(w),
            Origin::OneOff(i) if self.sc.pods[i].controller.is_some() => self.arrive(i),
            Origin::OneOff(_) | Origin::DaemonSet(_) => {}
            Origin::Job(j) => self.respawn_job(j),
            Origin::Trace(t, id) => self.respawn_trace_pod(t, id),
        }
    }

    /// Observed usage per node: each workload's usage spread over its running
    /// pods; other pods use what they request.
    pub(super) fn node_usage(&self) -> BTreeMap<String, Resources> {
        let t = self.elapsed();
        let per_pod: Vec<(Option<f64>, Option<f64>, usize)> = self
            .sc
            .workloads
            .iter()
            .enumerate()
            .map(|(w, spec)| {
                let u = spec.usage.as_ref();
                (
                    u.and_then(|u| u.cpu.as_ref()).map(|s| s.at(t)),
                    u.and_then(|u| u.memory.as_ref()).map(|s| s.at(t)),
                    self.running(w),
                )
            })
            .collect();
        let mut usage: BTreeMap<String, Resources> =
            self.cluster.snap.nodes.iter().map(|n| (n.name.clone(), Resources::default())).collect();
        for pod in &self.cluster.snap.pods {
            let Some(node) = &pod.node_name else { continue };
            let mut used = Resources::new(pod.requests.cpu_milli, pod.requests.memory);
            if let Some(Origin::Trace(t, id)) = self.cluster.origin.get(&pod.uid).copied()
                && let Some(u) = self.traces[t].usage(id)
            {
                used = Resources::new(u.cpu_milli, u.memory);
            }
            if let Some(Origin::Workload(w)) = self.cluster.origin.get(&pod.uid).copied() {
                let (cpu, memory, running) = per_pod[w];
                let n = running.max(1) as f64;
                if let Some(c) = cpu {
                    used.cpu_milli = (c * 1000.0 / n).round() as i64;
                }
                if let Some(m) = memory {
                    used.memory = (m / n).round() as i64;
                }
            }
            *usage.entry(node.clone()).or_default() += &used;
        }
        usage
    }
}

pub(super) fn planner_elapsed(now: Timestamp, since: Timestamp) -> StdDuration {
    heatscaler_core::planner::time::elapsed(now, since)
}
