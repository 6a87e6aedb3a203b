//! What a simulation tells: a timeline of scaling events, sampled series, and
//! a summary of cost and waiting.
//!
//! A [`Report`] holds one [`Run`] per policy simulated on the same scenario
//! (heatscaler and the baselines), side by side. A run's results come in
//! sections: [`NodeLevel`] (cost, the fluid lower bound, waiting, scaling
//! activity) and, beside it, the sections of other levels. [`Run::series`] is
//! the sampled state for plots.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration as StdDuration;

use serde::Serialize;

use heatscaler_core::model::Timestamp;
use heatscaler_core::planner::action::{RemovalCause, RemoveMembers, ScaleUp};
use heatscaler_core::planner::time::{compact, elapsed};

use super::bound::{self, BoundModel};
use super::cluster::Cluster;

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub scenario: String,
    pub description: Option<String>,
    pub seed: u64,
    pub duration_secs: f64,
    /// Every policy run on the same scenario, seed and provisioning model.
    pub runs: Vec<Run>,
}

/// One policy's run. Node-level results are in [`Run::node_level`]; results
/// of other levels (pod-level resizing) are further sections beside it.
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    /// What ran, said honestly (a baseline is labelled as a re-implementation).
    pub label: String,
    /// Short machine name (`heatscaler`, `ca-defaults`).
    pub policy: String,
    /// The demand this run was fed; identical for every run of a scenario
    /// (the same trace), which the report lets anyone check.
    pub input: InputSummary,
    pub node_level: NodeLevel,
    pub timeline: Vec<TimelineEntry>,
    pub series: Vec<Sample>,
}

/// Counts of the scenario's own demand events (not the pods controllers
/// recreated after evictions).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct InputSummary {
    /// Replica-count changes scheduled by the scenario's replica shapes.
    pub replica_changes: u64,
    /// Bursts from the bursty (Poisson) generators, and the jobs they brought.
    pub bursts: u64,
    pub jobs: u64,
    /// Rows of trace files replayed.
    pub trace_rows: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct TimelineEntry {
    /// Seconds since the start of the simulation.
    pub at_secs: f64,
    /// The group (or node, or the daemon) the event is about.
    pub subject: String,
    #[serde(flatten)]
    pub event: TimelineEvent,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum TimelineEvent {
    Initial {
        size: u32,
    },
    ScaleUp {
        from: u32,
        to: u32,
        pods: usize,
        example: Option<String>,
    },
    MinionReady {
        node: String,
        ready: u32,
    },
    CreateFailed {
        member: String,
    },
    RemovalStarted {
        node: String,
        kind: String,
        utilization: f64,
    },
    Drained {
        node: String,
    },
    RolledBack {
        node: String,
        reason: String,
    },
    ScaleDown {
        from: u32,
        to: u32,
        members: Vec<String>,
        cause: String,
    },
    MembersDeleted {
        members: Vec<String>,
    },
    NodeDeleted {
        node: String,
    },
    DaemonRestarted,
    /// A workload's replica count changed (its schedule or its HPA).
    Replicas {
        from: u32,
        to: u32,
    },
    /// The executor found the world changed and did not act (the contract).
    Refused {
        action: String,
        why: String,
    },
}

#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    pub at_secs: f64,
    /// Ready nodes per group.
    pub ready: BTreeMap<String, u32>,
    /// Heat desired size per group.
    pub desired: BTreeMap<String, u32>,
    /// Members paid for (being built, running, being deleted), all groups.
    pub billed: u32,
    /// What they cost per hour.
    pub cost_per_hour: f64,
    pub pending_pods: u32,
    pub running_pods: u32,
    /// The fluid lower bound at this instant (see `bound`).
    pub bound: bound::Instant,
}

/// What a run cost and how long pods waited for capacity.
#[derive(Clone, Debug, Default, Serialize)]
pub struct NodeLevel {
    pub planner_passes: u64,
    pub groups: Vec<GroupSummary>,
    pub node_hours: f64,
    pub cost: f64,
    pub lower_bound: LowerBound,
    /// `node_hours / lower_bound.node_hours` (single shape only).
    pub node_hours_ratio: Option<f64>,
    /// `cost / lower_bound.cost`.
    pub cost_ratio: Option<f64>,
    /// Integral of the number of pending pods over time.
    pub pending_pod_seconds: f64,
    /// Pods that were ever unschedulable, and how long each waited for a node
    /// (pods still waiting at the end count with the time they had waited).
    pub waited_pods: usize,
    pub wait_p50_secs: Option<f64>,
    pub wait_p99_secs: Option<f64>,
    pub never_scheduled: usize,
    /// Pods no group's minion could ever host (a resource no shape offers,
    /// more than a whole minion, a taint or affinity no group matches): not
    /// demand, never a reason to grow, left out of the waits above. The
    /// first [`UNHOSTABLE_LISTED`] with the reason, and how many in all.
    pub unhostable: Vec<Unhostable>,
    pub unhostable_pods: usize,
    pub scale_ups: u32,
    pub nodes_added: u32,
    pub scale_downs: u32,
    pub nodes_removed: u32,
    pub evictions: u32,
    pub evictions_refused: u32,
    pub provisioning_failures: u32,
    pub rollbacks: u32,
}

/// A pod no group could host, and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Unhostable {
    pub pod: String,
    pub reason: String,
}

pub const UNHOSTABLE_LISTED: usize = 20;

/// The fluid lower bound integrated over the run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LowerBound {
    /// Minion-hours, when every group has one shape (exact); `None` otherwise.
    pub node_hours: Option<f64>,
    pub cost: f64,
    /// Several shapes: distinct demands solved as linear programs, and the
    /// wall time that took (the cost of the bound itself).
    pub lp_solves: u64,
    pub lp_seconds: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct GroupSummary {
    pub group: String,
    pub price_per_hour: f64,
    pub node_hours: f64,
    pub cost: f64,
}

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
    demand: Option<(usize, heatscaler_core::model::Resources)>,
}

/// Collects one run's report while the engine runs.
pub struct Recorder {
    epoch: Timestamp,
    last: Timestamp,
    bound_model: BoundModel,
    pods: PodState,
    bound_node_seconds: f64,
    bound_cost_seconds: f64,
    pub input: InputSummary,
    pub passes: u64,
    pub evictions: u32,
    pub evictions_refused: u32,
    pub rollbacks: u32,
    scale_ups: u32,
    nodes_added: u32,
    scale_downs: u32,
    nodes_removed: u32,
    provisioning_failures: u32,
    node_seconds: BTreeMap<String, (f64, f64)>,
    pending_pod_seconds: f64,
    waiting: HashMap<String, Timestamp>,
    waits: Vec<f64>,
    /// By uid: pods no group could host, in the order first seen.
    unhostable: HashMap<String, usize>,
    unhostable_listed: Vec<Unhostable>,
    timeline: Vec<TimelineEntry>,
    series: Vec<Sample>,
}

impl Recorder {
    pub fn new(epoch: Timestamp, bound_model: BoundModel) -> Self {
        Self {
            epoch,
            last: epoch,
            bound_model,
            pods: PodState::default(),
            bound_node_seconds: 0.0,
            bound_cost_seconds: 0.0,
            input: InputSummary::default(),
            passes: 0,
            evictions: 0,
            evictions_refused: 0,
            rollbacks: 0,
            scale_ups: 0,
            nodes_added: 0,
            scale_downs: 0,
            nodes_removed: 0,
            provisioning_failures: 0,
            node_seconds: BTreeMap::new(),
            pending_pod_seconds: 0.0,
            waiting: HashMap::new(),
            waits: Vec::new(),
            unhostable: HashMap::new(),
            unhostable_listed: Vec::new(),
            timeline: Vec::new(),
            series: Vec::new(),
        }
    }

    fn secs(&self, t: Timestamp) -> f64 {
        elapsed(t, self.epoch).as_secs_f64()
    }

    /// Integrates the piecewise-constant state from the last event up to `to`.
    pub fn advance(&mut self, to: Timestamp, cluster: &mut Cluster) {
        let dt = elapsed(to, self.last).as_secs_f64();
        self.last = to;
        if dt <= 0.0 {
            return;
        }
        for g in &cluster.heat {
            let e = self.node_seconds.entry(g.name.clone()).or_insert((0.0, g.price_per_hour));
            e.0 += f64::from(g.billed()) * dt;
        }
        let pods = self.pod_state(cluster);
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
    pub fn initial_mix(&mut self, pods: &[heatscaler_core::model::Pod]) -> Vec<f64> {
        let mut demand = bound::Demand::default();
        for p in pods {
            if let Some(class) = self.bound_model.counts(p) {
                demand.add(class, &p.requests);
            }
        }
        self.bound_model.mix(&demand)
    }

    pub fn event(&mut self, at: Timestamp, subject: &str, event: TimelineEvent) {
        self.timeline.push(TimelineEntry { at_secs: self.secs(at), subject: subject.to_string(), event });
    }

    pub fn scale_up(&mut self, at: Timestamp, a: &ScaleUp) {
        self.scale_ups += 1;
        self.nodes_added += a.new_desired.saturating_sub(a.expected_desired);
        let example = a.pods.first().map(|p| p.to_string());
        self.event(
            at,
            &a.group,
            TimelineEvent::ScaleUp { from: a.expected_desired, to: a.new_desired, pods: a.pod_count, example },
        );
    }

    pub fn remove_members(&mut self, at: Timestamp, a: &RemoveMembers, from: u32) {
        let drained = a.members.iter().filter(|m| matches!(m.cause, RemovalCause::Drained { .. })).count() as u32;
        let failed = a.members.len() as u32 - drained;
        if drained > 0 {
            self.scale_downs += 1;
            self.nodes_removed += drained;
        }
        self.provisioning_failures += failed;
        let cause = match (drained, failed) {
            (0, _) => "failed provisioning",
            (_, 0) => "drained",
            _ => "drained and failed provisioning",
        };
        let members = a.members.iter().map(|m| m.member.clone()).collect();
        self.event(at, &a.group, TimelineEvent::ScaleDown { from, to: a.new_desired, members, cause: cause.into() });
    }

    pub fn unschedulable(&mut self, uid: &str, created: Timestamp) {
        self.waiting.entry(uid.to_string()).or_insert(created);
    }

    pub fn bound(&mut self, uid: &str, created: Timestamp, now: Timestamp) {
        if self.waiting.remove(uid).is_some() {
            self.waits.push(elapsed(now, created).as_secs_f64());
        }
    }

    /// A pod went away; if it was waiting, it waited for nothing.
    pub fn pod_gone(&mut self, uid: &str) {
        self.waiting.remove(uid);
    }

    pub fn sample(&mut self, at: Timestamp, cluster: &mut Cluster) {
        let ready_nodes: std::collections::HashSet<&str> =
            cluster.snap.nodes.iter().filter(|n| n.ready).map(|n| n.name.as_str()).collect();
        let mut ready = BTreeMap::new();
        let mut desired = BTreeMap::new();
        for g in &cluster.heat {
            let n = g.members.iter().filter(|m| ready_nodes.contains(m.id.as_str())).count();
            ready.insert(g.name.clone(), n as u32);
            desired.insert(g.name.clone(), g.desired);
        }
        let billed = cluster.heat.iter().map(|g| g.billed()).sum();
        let cost_per_hour = cluster.heat.iter().map(|g| f64::from(g.billed()) * g.price_per_hour).sum();
        let pods = self.pod_state(cluster);
        let (pending, running, bound) = (pods.pending, pods.running, pods.bound);
        #[cfg(debug_assertions)]
        {
            // The incremental tally must equal a recount (tests run in debug).
            let live = cluster.snap.pods.iter().filter(|p| p.deletion.is_none());
            let recount = live.fold((0u32, 0u32), |(p, r), pod| match pod.node_name {
                None => (p + 1, r),
                Some(_) => (p, r + 1),
            });
            let mut demand = bound::Demand::default();
            for p in &cluster.snap.pods {
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

    pub fn finish(mut self, label: &str, policy: &str, end: Timestamp) -> Run {
        // A pod nothing can host is not waiting for capacity.
        let unhostable = &self.unhostable;
        self.waiting.retain(|uid, _| !unhostable.contains_key(uid));
        let never_scheduled = self.waiting.len();
        let mut waits = std::mem::take(&mut self.waits);
        waits.extend(self.waiting.values().map(|c| elapsed(end, *c).as_secs_f64()));
        waits.sort_by(f64::total_cmp);
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
        let node_level = NodeLevel {
            planner_passes: self.passes,
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
            never_scheduled,
            unhostable: std::mem::take(&mut self.unhostable_listed),
            unhostable_pods: self.unhostable.len(),
            scale_ups: self.scale_ups,
            nodes_added: self.nodes_added,
            scale_downs: self.scale_downs,
            nodes_removed: self.nodes_removed,
            evictions: self.evictions,
            evictions_refused: self.evictions_refused,
            provisioning_failures: self.provisioning_failures,
            rollbacks: self.rollbacks,
        };
        Run {
            label: label.to_string(),
            policy: policy.to_string(),
            input: self.input,
            node_level,
            timeline: self.timeline,
            series: self.series,
        }
    }
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

pub fn secs(s: f64) -> String {
    compact(StdDuration::from_secs_f64(s.max(0.0)))
}

impl fmt::Display for TimelineEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimelineEvent::Initial { size } => write!(f, "{size} minion(s) at start"),
            TimelineEvent::ScaleUp { from, to, pods, example } => {
                write!(f, "{from} → {to} minions: scale-up for {pods} unschedulable pod(s)")?;
                match example {
                    Some(e) => write!(f, ", e.g. {e}"),
                    None => Ok(()),
                }
            }
            TimelineEvent::MinionReady { node, ready } => write!(f, "minion {node} is a Ready node ({ready} Ready)"),
            TimelineEvent::CreateFailed { member } => write!(f, "member {member} CREATE_FAILED"),
            TimelineEvent::RemovalStarted { node, kind, utilization } => {
                write!(f, "removal of {node} started ({kind}; {:.0}% requested)", utilization * 100.0)
            }
            TimelineEvent::Drained { node } => write!(f, "{node} drained"),
            TimelineEvent::RolledBack { node, reason } => write!(f, "removal of {node} rolled back: {reason}"),
            TimelineEvent::ScaleDown { from, to, members, cause } => {
                write!(f, "{from} → {to} minions: Heat removes {} ({cause})", members.join(", "))
            }
            TimelineEvent::MembersDeleted { members } => write!(f, "Heat deleted {}", members.join(", ")),
            TimelineEvent::NodeDeleted { node } => write!(f, "Node {node} deleted"),
            TimelineEvent::DaemonRestarted => f.write_str("daemon restarted; planner memory lost"),
            TimelineEvent::Replicas { from, to } => write!(f, "{from} → {to} replicas"),
            TimelineEvent::Refused { action, why } => write!(f, "{action} not executed: {why}"),
        }
    }
}
