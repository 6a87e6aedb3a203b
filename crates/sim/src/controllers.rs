//! The controllers of the simulated cluster: a ReplicaSet per workload (with
//! an optional HorizontalPodAutoscaler), one-off pods (recreated by their
//! controller if they name one), DaemonSets, and the disruption controller
//! keeping each PDB's `disruptionsAllowed`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration as StdDuration;

use heatscaler_core::model::{LabelSelector, Pdb, PodPhase, Timestamp};
use heatscaler_core::planner::time::elapsed;

use crate::report::TimelineEvent;
use crate::scenario::{DaemonSetSpec, HpaSpec, OneOffPod, Scenario, WorkloadSpec, resources};
use crate::world::World;
use crate::world::clock::Event;
use crate::world::cluster::{Origin, PdbRule, PodTemplate};

/// How often a continuously changing replica shape is re-read.
const CONTINUOUS_TICK: StdDuration = StdDuration::from_secs(15);
/// The HPA controller's tolerance around the target utilisation.
const HPA_TOLERANCE: f64 = 0.1;

/// A workload's ReplicaSet and, if it has one, its HPA.
struct ReplicaSet {
    name: String,
    template: PodTemplate,
    /// Replicas the ReplicaSet is asked to keep.
    target: u32,
    next_pod: u64,
    /// HPA recommendations in the scale-down stabilisation window.
    recommendations: VecDeque<(Timestamp, u32)>,
    /// A rollout's extra replica on the new template is up or coming.
    surging: bool,
}

impl ReplicaSet {
    fn new(spec: &WorkloadSpec, reports_workload: bool) -> Self {
        let target = match (&spec.replicas, &spec.hpa) {
            (Some(r), _) => r.at(StdDuration::ZERO).round() as u32,
            (None, Some(h)) => h.min_replicas,
            (None, None) => 0,
        };
        Self {
            name: spec.name.clone(),
            template: PodTemplate {
                // Only pods a VPA object targets report their workload, so node-level runs are unchanged.
                workload: (reports_workload || spec.vpa.is_some()).then(|| spec.workload_ref()),
                ..PodTemplate::from_spec(&spec.pod, &spec.namespace, &spec.name, Some("ReplicaSet"))
            },
            target,
            next_pod: 0,
            recommendations: VecDeque::new(),
            surging: false,
        }
    }
}

/// What one workload's pods use now, spread over its running pods.
#[derive(Clone, Copy)]
pub struct WorkloadUsage {
    cpu: Option<f64>,
    memory: Option<f64>,
    running: usize,
}

impl WorkloadUsage {
    /// One pod's share, over what it requests where the workload has no usage shape.
    pub fn per_pod(&self, requests: &heatscaler_core::model::Resources) -> heatscaler_core::model::Resources {
        let mut used = heatscaler_core::model::Resources::new(requests.cpu_milli, requests.memory);
        let n = self.running.max(1) as f64;
        if let Some(c) = self.cpu {
            used.cpu_milli = (c * 1000.0 / n).round() as i64;
        }
        if let Some(m) = self.memory {
            used.memory = (m / n).round() as i64;
        }
        used
    }
}

pub struct Controllers<'s> {
    workloads: &'s [WorkloadSpec],
    oneoff_specs: &'s [OneOffPod],
    daemonset_specs: &'s [DaemonSetSpec],
    replica_sets: Vec<ReplicaSet>,
    oneoffs: Vec<PodTemplate>,
    daemonsets: Vec<PodTemplate>,
    /// Parallel to the cluster's PDBs (one per workload that has one).
    pdb_rules: Vec<PdbRule>,
    /// Workloads from this index on are a call graph's services: their pods
    /// report their workload (the mesh's metrics name it).
    graph_from: usize,
    /// Per workload, its PDB's index in the cluster's PDBs.
    pdb_of: BTreeMap<usize, usize>,
}

impl<'s> Controllers<'s> {
    pub fn new(sc: &'s Scenario) -> Self {
        let daemonsets = sc
            .daemonsets
            .iter()
            .map(|d| PodTemplate::daemonset(&d.name, &d.namespace, resources(&d.requests), d.node_selector.clone()))
            .collect();
        Self {
            workloads: &sc.workloads,
            oneoff_specs: &sc.pods,
            daemonset_specs: &sc.daemonsets,
            replica_sets: Vec::new(),
            oneoffs: Vec::new(),
            daemonsets,
            pdb_rules: Vec::new(),
            graph_from: if sc.call_graph.is_some() { sc.call_graph_first_workload } else { usize::MAX },
            pdb_of: BTreeMap::new(),
        }
    }

    /// Creates the workloads' ReplicaSets and PDBs, and schedules the
    /// workloads' first look and the one-off pods' arrivals and departures.
    pub fn start(&mut self, world: &mut World<'_>) {
        for (w, spec) in self.workloads.iter().enumerate() {
            let rs = ReplicaSet::new(spec, w >= self.graph_from);
            if let Some(pdb) = &spec.pdb {
                self.pdb_of.insert(w, self.pdb_rules.len());
                world.cluster.add_pdb(Pdb {
                    namespace: spec.namespace.clone(),
                    name: spec.name.clone(),
                    selector: LabelSelector { match_labels: rs.template.labels.clone(), ..LabelSelector::default() },
                    disruptions_allowed: 0,
                });
                self.pdb_rules.push(match (pdb.min_available, pdb.max_unavailable) {
                    (Some(n), _) => PdbRule::MinAvailable(n),
                    (None, n) => PdbRule::MaxUnavailable(n.unwrap_or(0)),
                });
            }
            self.replica_sets.push(rs);
            world.at(world.epoch(), Event::Workload(w));
        }
        for (i, o) in self.oneoff_specs.iter().enumerate() {
            self.oneoffs.push(PodTemplate::from_spec(&o.pod, &o.namespace, &o.name, o.controller.as_deref()));
            world.after(o.arrival.get(), Event::Arrive(i));
            if let Some(d) = o.departure {
                world.after(d.get(), Event::Depart(i));
            }
        }
    }

    /// The DaemonSet controller: a new node gets a running pod of each
    /// DaemonSet whose node selector it matches.
    pub fn node_registered(&mut self, world: &mut World<'_>, node: &str) {
        let labels = world.cluster.node(node).map(|n| n.labels.clone()).unwrap_or_default();
        for (d, template) in self.daemonsets.iter().enumerate() {
            if template.placement.node_selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
                let pod_name = format!("{}-{node}", self.daemonset_specs[d].name);
                let uid = world.create_pod(template, pod_name, Origin::DaemonSet(d));
                if let Some(p) = world.cluster.pod_mut(&uid) {
                    p.node_name = Some(node.to_string());
                    p.phase = PodPhase::Running;
                }
            }
        }
    }

    /// Workload `w`'s replica count is due for a look: its schedule or its HPA.
    pub fn workload_tick(&mut self, world: &mut World<'_>, w: usize) {
        let workloads = self.workloads;
        let spec = &workloads[w];
        let t = world.elapsed();
        let before = self.replica_sets[w].target;
        let next = match (&spec.replicas, &spec.hpa) {
            (Some(shape), _) => {
                self.replica_sets[w].target = shape.at(t).round().max(0.0) as u32;
                if shape.is_continuous() { Some(CONTINUOUS_TICK) } else { shape.next_change(t).map(|p| p - t) }
            }
            (None, Some(hpa)) => {
                self.replica_sets[w].target = self.hpa_desired(world, w, hpa);
                Some(hpa.sync_period.get())
            }
            (None, None) => None,
        };
        let after = self.replica_sets[w].target;
        if after != before && spec.replicas.is_some() {
            world.journal.replicas_changed();
        }
        if after != before {
            let name = self.replica_sets[w].name.clone();
            world.record(&name, TimelineEvent::Replicas { from: before, to: after });
        }
        self.reconcile(world, w);
        if let Some(d) = next {
            world.after(d, Event::Workload(w));
        }
    }

    /// The HPA algorithm on CPU: `ceil(usage / (target × request))`, with the
    /// controller's tolerance, scale-up rate limit and scale-down stabilisation.
    fn hpa_desired(&mut self, world: &World<'_>, w: usize, hpa: &HpaSpec) -> u32 {
        let usage =
            self.workloads[w].usage.as_ref().and_then(|u| u.cpu.as_ref()).map_or(0.0, |s| s.at(world.elapsed()));
        let request = self.replica_sets[w].template.requests.cpu_milli as f64 / 1000.0;
        let current = self.replica_sets[w].target;
        let running = running(world, w) as f64;
        let target = hpa.target_cpu_utilization.0;
        let mut raw = ((usage / (target * request)).ceil() as u32).clamp(hpa.min_replicas, hpa.max_replicas);
        if running > 0.0 && ((usage / (running * request)) / target - 1.0).abs() <= HPA_TOLERANCE {
            raw = current;
        }
        let now = world.now();
        let state = &mut self.replica_sets[w];
        state.recommendations.push_back((now, raw));
        let window = hpa.scale_down_stabilization.get();
        while state.recommendations.front().is_some_and(|(t, _)| elapsed(now, *t) > window) {
            state.recommendations.pop_front();
        }
        if raw >= current {
            raw.min((current + 4).max(current * 2)).max(hpa.min_replicas)
        } else {
            let stable = state.recommendations.iter().map(|(_, r)| *r).max().unwrap_or(raw);
            stable.min(current)
        }
    }

    /// The ReplicaSet controller: create or delete pods to match the target.
    /// Deletion order is the ReplicaSet's: unscheduled pods first, then pods
    /// on nodes crowded with replicas, then the newest.
    fn reconcile(&mut self, world: &mut World<'_>, w: usize) {
        let target = self.replica_sets[w].target as usize;
        let active = world.cluster.active_count(Origin::Workload(w));
        if active < target {
            for _ in active..target {
                let rs = &mut self.replica_sets[w];
                rs.next_pod += 1;
                let name = format!("{}-{}", rs.name, rs.next_pod);
                world.create_pod(&rs.template, name, Origin::Workload(w));
            }
        } else if active > target {
            let active: Vec<(&str, Option<&str>, Timestamp)> = world
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
                world.delete_pod(&uid, None);
            }
        }
    }

    /// One-off pod `i` arrives (again, if its controller recreates it).
    pub fn arrive(&mut self, world: &mut World<'_>, i: usize) {
        let spec = &self.oneoff_specs[i];
        if spec.departure.is_some_and(|d| world.elapsed() >= d.get()) {
            return;
        }
        let incarnation = world.cluster.pods_of(Origin::OneOff(i)).count();
        let name = if incarnation == 0 { spec.name.clone() } else { format!("{}-{}", spec.name, incarnation + 1) };
        world.create_pod(&self.oneoffs[i], name, Origin::OneOff(i));
    }

    pub fn depart(&mut self, world: &mut World<'_>, i: usize) {
        let uids: Vec<String> = world
            .cluster
            .pods_of(Origin::OneOff(i))
            .filter(|p| p.deletion.is_none())
            .map(|p| p.uid.to_string())
            .collect();
        for uid in uids {
            world.delete_pod(&uid, None);
        }
    }

    /// A pod of `origin` was evicted: its controller, if it has one, replaces it.
    pub fn replace(&mut self, world: &mut World<'_>, origin: Origin) {
        match origin {
            Origin::Workload(w) => self.reconcile(world, w),
            Origin::OneOff(i) if self.oneoff_specs[i].controller.is_some() => self.arrive(world, i),
            // Drains leave DaemonSet pods; jobs and trace pods are the generators'.
            Origin::OneOff(_) | Origin::DaemonSet(_) | Origin::Job(_) | Origin::Trace(..) => {}
        }
    }

    /// The disruption controller: refreshes each PDB's `disruptionsAllowed`
    /// from the pods (done just before the autoscaler reads them).
    pub fn refresh_pdbs(&self, world: &mut World<'_>) {
        let expected: BTreeMap<String, u32> = self.replica_sets.iter().map(|w| (w.name.clone(), w.target)).collect();
        world.cluster.refresh_pdbs(&|name| expected.get(name).copied(), &self.pdb_rules);
    }

    /// A template change of the workload `workload` names (the placement
    /// advisor's preferred pod affinity, added or removed), under the
    /// executor's contract of `SetPreferredAffinity`: nothing while a rollout
    /// is in progress or the PDB would not allow the rollout's one
    /// unavailable replica; nothing to do when the template is already so.
    /// The rollout itself is [`Controllers::roll`]'s.
    pub fn change_template(
        &mut self,
        world: &World<'_>,
        workload: &heatscaler_core::model::WorkloadRef,
        term: &heatscaler_core::model::PodAffinityTerm,
        weight: Option<i32>,
    ) -> Result<bool, String> {
        let Some(w) = self.workloads.iter().position(|s| &s.workload_ref() == workload) else {
            return Err(format!("no workload {workload}"));
        };
        let template = &self.replica_sets[w].template;
        let has = template.placement.preferred_pod_affinity.iter().any(|t| &t.term == term && Some(t.weight) == weight);
        let carries = template.placement.preferred_pod_affinity.iter().any(|t| &t.term == term);
        if (weight.is_some() && has) || (weight.is_none() && !carries) {
            return Ok(false);
        }
        if self.rolling(world, w) {
            return Err("a rollout is in progress".into());
        }
        if let Some(&p) = self.pdb_of.get(&w)
            && world.cluster.snap.pdbs.get(p).is_some_and(|pdb| pdb.disruptions_allowed < 1)
        {
            return Err("its PodDisruptionBudget allows no disruption now".into());
        }
        let placement = std::sync::Arc::make_mut(&mut self.replica_sets[w].template.placement);
        placement.preferred_pod_affinity.retain(|t| &t.term != term);
        if let Some(weight) = weight {
            placement
                .preferred_pod_affinity
                .push(heatscaler_core::model::WeightedPodAffinityTerm { weight, term: term.clone() });
        }
        Ok(true)
    }

    /// Pods of workload `w` not yet on its template, or not running yet.
    fn rolling(&self, world: &World<'_>, w: usize) -> bool {
        let template = &self.replica_sets[w].template.placement;
        world.cluster.pods_of(Origin::Workload(w)).filter(|p| p.deletion.is_none()).any(|p| {
            p.placement.preferred_pod_affinity != template.preferred_pod_affinity || p.phase != PodPhase::Running
        })
    }

    /// One step of every rollout, as a Deployment's default strategy rolls
    /// a workload of fewer than four replicas (`maxSurge` 25 % → 1,
    /// `maxUnavailable` 25 % → 0): once every replica runs, one more is
    /// created on the new template; once it runs too, the oldest replica
    /// on the old template is deleted. Returns the pods replaced.
    pub fn roll(&mut self, world: &mut World<'_>) -> u32 {
        let mut replaced = 0;
        for w in 0..self.replica_sets.len() {
            let template = self.replica_sets[w].template.placement.clone();
            let pods: Vec<&heatscaler_core::model::Pod> =
                world.cluster.pods_of(Origin::Workload(w)).filter(|p| p.deletion.is_none()).collect();
            if pods.iter().any(|p| p.phase != PodPhase::Running || p.node_name.is_none()) {
                continue;
            }
            let old = pods
                .iter()
                .filter(|p| p.placement.preferred_pod_affinity != template.preferred_pod_affinity)
                .min_by_key(|p| (p.created, p.name.clone()))
                .map(|p| p.uid.clone());
            let rs = &mut self.replica_sets[w];
            match (old, rs.surging) {
                (None, _) => rs.surging = false,
                (Some(_), false) => {
                    rs.next_pod += 1;
                    let name = format!("{}-{}", rs.name, rs.next_pod);
                    world.create_pod(&rs.template, name, Origin::Workload(w));
                    rs.surging = true;
                }
                (Some(old), true) => {
                    world.delete_pod(&old, None);
                    rs.surging = false;
                    replaced += 1;
                }
            }
        }
        replaced
    }

    /// What each workload uses now (by workload index), from its usage shapes.
    pub fn usage(&self, world: &World<'_>) -> Vec<WorkloadUsage> {
        let t = world.elapsed();
        self.workloads
            .iter()
            .enumerate()
            .map(|(w, spec)| {
                let u = spec.usage.as_ref();
                WorkloadUsage {
                    cpu: u.and_then(|u| u.cpu.as_ref()).map(|s| s.at(t)),
                    memory: u.and_then(|u| u.memory.as_ref()).map(|s| s.at(t)),
                    running: running(world, w),
                }
            })
            .collect()
    }
}

/// Pods of workload `w` bound and running, not being deleted.
fn running(world: &World<'_>, w: usize) -> usize {
    world
        .cluster
        .pods_of(Origin::Workload(w))
        .filter(|p| p.node_name.is_some() && p.deletion.is_none() && p.phase == PodPhase::Running)
        .count()
}
