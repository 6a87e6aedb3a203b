//! The recorder: one run's report collected while the engine runs. It
//! integrates what changes between events — members paid for, pending pods,
//! the fluid lower bound ([`crate::bound`]) — samples the series, notes pods
//! no group could host, and at the end joins the world's journal into a
//! [`Run`].

use std::collections::{BTreeMap, HashMap};

use heatscaler_core::model::{Pod, Resources, Timestamp};
use heatscaler_core::planner::time::elapsed;

use crate::bound::{self, BoundModel};
use crate::report::{
    GroupSummary, LowerBound, NodeLevel, Run, Sample, TimelineEntry, TimelineEvent, UNHOSTABLE_LISTED, Unhostable,
    percentile,
};
use crate::world::World;
use crate::world::cluster::Cluster;
use crate::world::journal::Journal;

/// Totals over every pod, kept up to date from the cluster's change log.
#[derive(Clone, Debug, Default)]
struct PodState {
    pending: u32,
    running: u32,
    demand: bound::Demand,
    bound: bound::Instant,
    /// What each pod adds to the totals.
    parts: HashMap<String, Part>,
}

#[derive(Clone, Debug)]
struct Part {
    pending: bool,
    running: bool,
    /// The pod's class (`bound::BoundModel::counts`) and requests.
    demand: Option<(usize, Resources)>,
}

pub struct Recorder {
    epoch: Timestamp,
    last: Timestamp,
    bound_model: BoundModel,
    pods: PodState,
    bound_node_seconds: f64,
    bound_cost_seconds: f64,
    /// Per group: member-seconds paid for, and the price per hour.
    node_seconds: BTreeMap<String, (f64, f64)>,
    pending_pod_seconds: f64,
    /// By uid: pods no group could host, in the order first seen.
    unhostable: HashMap<String, usize>,
    unhostable_listed: Vec<Unhostable>,
    series: Vec<Sample>,
}

impl Recorder {
    pub fn new(epoch: Timestamp, mut bound_model: BoundModel) -> Self {
        // The bound before the first pod change is the bound of no demand
        // (the minimum sizes), not "none": a sample taken then must agree
        // with a recount.
        let pods = PodState { bound: bound_model.at(&bound::Demand::default()), ..PodState::default() };
        Self {
            epoch,
            last: epoch,
            bound_model,
            pods,
            bound_node_seconds: 0.0,
            bound_cost_seconds: 0.0,
            node_seconds: BTreeMap::new(),
            pending_pod_seconds: 0.0,
            unhostable: HashMap::new(),
            unhostable_listed: Vec::new(),
            series: Vec::new(),
        }
    }

    fn secs(&self, t: Timestamp) -> f64 {
        elapsed(t, self.epoch).as_secs_f64()
    }

    /// Integrates the piecewise-constant state from the last event up to `to`.
    pub fn advance(&mut self, to: Timestamp, world: &mut World<'_>) {
        let dt = elapsed(to, self.last).as_secs_f64();
        self.last = to;
        if dt <= 0.0 {
            return;
        }
        for g in &world.heat.groups {
            let e = self.node_seconds.entry(g.name.clone()).or_insert((0.0, g.price_per_hour));
            e.0 += f64::from(g.billed()) * dt;
        }
        let pods = self.pod_state(&mut world.cluster);
        let (pending, bound) = (pods.pending, pods.bound);
        self.pending_pod_seconds += f64::from(pending) * dt;
        self.bound_node_seconds += f64::from(bound.nodes.unwrap_or(0)) * dt;
        self.bound_cost_seconds += bound.cost_per_hour * dt;
    }

    /// Pending and running pods and the bound, as of the cluster's latest
    /// change: only the pods changed since the last call are looked at.
    fn pod_state(&mut self, cluster: &mut Cluster) -> &PodState {
        let changes = cluster.take_changes();
        if changes.is_empty() {
            return &self.pods;
        }
        let state = &mut self.pods;
        for uid in changes {
            if let Some(old) = state.parts.remove(&uid) {
                state.pending -= u32::from(old.pending);
                state.running -= u32::from(old.running);
                if let Some((class, d)) = &old.demand {
                    state.demand.remove(*class, d);
                }
            }
            let Some(p) = cluster.pod(&uid) else { continue };
            if !self.unhostable.contains_key(&uid)
                && let Some(reason) = self.bound_model.why_unhostable(p)
            {
                self.unhostable.insert(uid.clone(), self.unhostable.len());
                if self.unhostable_listed.len() < UNHOSTABLE_LISTED {
                    self.unhostable_listed.push(Unhostable { pod: format!("{}/{}", p.namespace, p.name), reason });
                }
            }
            let part = Part {
                pending: p.deletion.is_none() && p.node_name.is_none(),
                running: p.deletion.is_none() && p.node_name.is_some(),
                demand: self.bound_model.counts(p).map(|class| (class, p.requests.clone())),
            };
            state.pending += u32::from(part.pending);
            state.running += u32::from(part.running);
            if let Some((class, d)) = &part.demand {
                state.demand.add(*class, d);
            }
            state.parts.insert(uid, part);
        }
        state.bound = self.bound_model.at(&state.demand);
        &self.pods
    }

    /// The bound's cheapest fractional mix of minions per group for `pods`.
    pub fn initial_mix(&mut self, pods: &[Pod]) -> Vec<f64> {
        let mut demand = bound::Demand::default();
        for p in pods {
            if let Some(class) = self.bound_model.counts(p) {
                demand.add(class, &p.requests);
            }
        }
        self.bound_model.mix(&demand)
    }

    /// Samples the series now.
    pub fn sample(&mut self, world: &mut World<'_>) {
        let at = world.now();
        let ready_nodes: std::collections::HashSet<&str> =
            world.cluster.snap.nodes.iter().filter(|n| n.ready).map(|n| n.name.as_str()).collect();
        let mut ready = BTreeMap::new();
        let mut desired = BTreeMap::new();
        for g in &world.heat.groups {
            let n = g.members.iter().filter(|m| ready_nodes.contains(m.id.as_str())).count();
            ready.insert(g.name.clone(), n as u32);
            desired.insert(g.name.clone(), g.desired);
        }
        let billed = world.heat.groups.iter().map(|g| g.billed()).sum();
        let cost_per_hour = world.heat.groups.iter().map(|g| f64::from(g.billed()) * g.price_per_hour).sum();
        let pods = self.pod_state(&mut world.cluster);
        let (pending, running, bound) = (pods.pending, pods.running, pods.bound);
        #[cfg(debug_assertions)]
        {
            // The incremental tally must equal a recount (tests run in debug).
            let live = world.cluster.snap.pods.iter().filter(|p| p.deletion.is_none());
            let recount = live.fold((0u32, 0u32), |(p, r), pod| match pod.node_name {
                None => (p + 1, r),
                Some(_) => (p, r + 1),
            });
            let mut demand = bound::Demand::default();
            for p in &world.cluster.snap.pods {
                if let Some(class) = self.bound_model.counts(p) {
                    demand.add(class, &p.requests);
                }
            }
            let tally = &self.pods.demand;
            assert_eq!((pending, running), recount, "pending and running pods drifted");
            assert_eq!(bound, self.bound_model.at(&demand), "the bound's demand drifted");
            assert!(self.bound_model.same(&demand, tally), "the bound's demand drifted");
        }
        self.series.push(Sample {
            at_secs: self.secs(at),
            ready,
            desired,
            billed,
            cost_per_hour,
            pending_pods: pending,
            running_pods: running,
            bound,
        });
    }

    /// The run's report, with what the journal kept.
    pub fn finish(mut self, journal: Journal, label: &str, policy: &str, end: Timestamp) -> Run {
        // A pod nothing can host is not waiting for capacity.
        let unhostable = &self.unhostable;
        let journal = journal.finish(end, |uid| unhostable.contains_key(uid));
        let waits = journal.waits;
        let groups: Vec<GroupSummary> = self
            .node_seconds
            .iter()
            .map(|(g, (secs, price))| GroupSummary {
                group: g.clone(),
                price_per_hour: *price,
                node_hours: secs / 3600.0,
                cost: secs / 3600.0 * price,
            })
            .collect();
        let node_hours: f64 = groups.iter().map(|g| g.node_hours).sum();
        let cost: f64 = groups.iter().map(|g| g.cost).sum();
        let lower_bound = LowerBound {
            node_hours: self.bound_model.single_shape().then_some(self.bound_node_seconds / 3600.0),
            cost: self.bound_cost_seconds / 3600.0,
            lp_solves: self.bound_model.solves,
            lp_seconds: self.bound_model.solve_time.as_secs_f64(),
        };
        let ratio = |actual: f64, bound: f64| (bound > 0.0).then_some(actual / bound);
        let counts = journal.counts;
        let (oscillation_cycles, rescale_cycles) = cycles(&journal.timeline, &journal.recommendation_moves);
        let node_level = NodeLevel {
            planner_passes: counts.passes,
            node_hours,
            cost,
            node_hours_ratio: lower_bound.node_hours.and_then(|b| ratio(node_hours, b)),
            cost_ratio: ratio(cost, lower_bound.cost),
            lower_bound,
            groups,
            pending_pod_seconds: self.pending_pod_seconds,
            waited_pods: waits.len(),
            wait_p50_secs: percentile(&waits, 0.5),
            wait_p99_secs: percentile(&waits, 0.99),
            never_scheduled: journal.never_scheduled,
            never_scheduled_deleted: journal.never_scheduled_deleted,
            unhostable: std::mem::take(&mut self.unhostable_listed),
            unhostable_pods: self.unhostable.len(),
            scale_ups: counts.scale_ups,
            nodes_added: counts.nodes_added,
            scale_downs: counts.scale_downs,
            nodes_removed: counts.nodes_removed,
            evictions: counts.evictions,
            evictions_refused: counts.evictions_refused,
            provisioning_failures: counts.provisioning_failures,
            rollbacks: counts.rollbacks,
            oscillation_cycles,
            rescale_cycles,
        };
        Run {
            label: label.to_string(),
            policy: policy.to_string(),
            input: journal.input,
            node_level,
            pod_level: Some(journal.pod_level),
            pod_workloads: journal.pod_meter.rows(),
            timeline: journal.timeline,
            series: self.series,
            call_graph: None,
        }
    }
}

/// Within this a scale-up, a removal started and a scale-up again are a cycle.
const CYCLE_WINDOW_SECS: f64 = 3600.0;

/// Counts, per group, scale-ups followed by a removal started and another
/// scale-up within [`CYCLE_WINDOW_SECS`]: those with no demand change in
/// between (replica changes, `recommendation_moves`), and all of them.
fn cycles(timeline: &[TimelineEntry], recommendation_moves: &[f64]) -> (u32, u32) {
    let mut demand: Vec<f64> = timeline
        .iter()
        .filter(|e| matches!(e.event, TimelineEvent::Replicas { .. }))
        .map(|e| e.at_secs)
        .chain(recommendation_moves.iter().copied())
        .collect();
    demand.sort_by(f64::total_cmp);
    let mut by_group: BTreeMap<&str, Vec<(f64, bool)>> = BTreeMap::new();
    for e in timeline {
        let up = match e.event {
            TimelineEvent::ScaleUp { .. } => true,
            TimelineEvent::RemovalStarted { .. } => false,
            _ => continue,
        };
        by_group.entry(e.subject.as_str()).or_default().push((e.at_secs, up));
    }
    let (mut steady, mut all) = (0, 0);
    for events in by_group.values() {
        for (i, &(t1, up)) in events.iter().enumerate() {
            if !up {
                continue;
            }
            let Some(j) = events[i + 1..].iter().position(|e| !e.1).map(|k| i + 1 + k) else { continue };
            let Some(t3) = events[j + 1..].iter().find(|e| e.1).map(|e| e.0) else { continue };
            if t3 - t1 > CYCLE_WINDOW_SECS {
                continue;
            }
            all += 1;
            let from = demand.partition_point(|&d| d < t1);
            if demand.get(from).is_none_or(|&d| d > t3) {
                steady += 1;
            }
        }
    }
    (steady, all)
}
