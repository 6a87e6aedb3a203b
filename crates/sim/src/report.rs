//! What a simulation tells: a timeline of scaling events, sampled series, and
//! a summary of cost and waiting.
//!
//! A [`Report`] holds one [`Run`] per policy simulated on the same scenario
//! (heatscaler and the baselines), side by side. A run's results come in
//! sections: [`NodeLevel`] (cost, the fluid lower bound, waiting, scaling
//! activity) and, beside it, the sections of other levels. [`Run::series`] is
//! the sampled state for plots. (The recorder, `recorder`, collects them
//! while a run goes.)

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration as StdDuration;

use serde::Serialize;

use heatscaler_core::planner::time::compact;

use crate::bound;

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub scenario: String,
    pub description: Option<String>,
    pub seed: u64,
    pub duration_secs: f64,
    /// Every policy run on the same scenario, seed and provisioning model.
    pub runs: Vec<Run>,
    /// The strongest peer of this report, the one heatscaler is held
    /// against: the cheapest, fewer pending pod-seconds breaking a tie
    /// (`None` without a peer).
    pub reference: Option<String>,
}

impl Report {
    /// The cheapest peer's policy name (see [`Report::reference`]).
    pub fn strongest_peer(runs: &[Run]) -> Option<String> {
        runs.iter()
            .filter(|r| !r.policy.starts_with("heatscaler"))
            .min_by(|a, b| {
                let (a, b) = (&a.node_level, &b.node_level);
                a.cost.total_cmp(&b.cost).then(a.pending_pod_seconds.total_cmp(&b.pending_pod_seconds))
            })
            .map(|r| r.policy.clone())
    }
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
    /// The pod level's counts, for scenarios with VPA objects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_level: Option<PodLevelCounts>,
    /// Per workload with a VPA object: how its pods' requests fit their
    /// usage, OOM kills, updates, evictions (`world::pod_meter`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pod_workloads: Vec<PodWorkload>,
    pub timeline: Vec<TimelineEntry>,
    pub series: Vec<Sample>,
    /// For scenarios with a `call-graph`: latency, cross-node traffic and
    /// the placement advisor's advice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_graph: Option<CallGraphStats>,
}

/// What the pod level did, counted: the updater's requests and the
/// kubelet's answers, evictions to recreate, OOM kills.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PodLevelCounts {
    /// Resizes the API accepted, and what the kubelet did with them (each
    /// time a resize entered a state, not its retries).
    pub resizes_requested: u32,
    pub resizes_applied: u32,
    pub resizes_deferred: u32,
    pub resizes_infeasible: u32,
    /// Refused by the API (422: the QoS class would change).
    pub resizes_invalid: u32,
    /// Pods evicted to be recreated (the updater's), and evictions refused by a PDB.
    pub recreations: u32,
    pub recreations_refused: u32,
    pub oom_kills: u32,
}

/// One workload's pods (or, pooled, several workloads'), measured on the
/// metrics tick: the requests the kubelet applied against the usage sampled.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PodWorkload {
    pub workload: String,
    /// (Σ request − Σ usage) / Σ usage over the time containers served.
    pub cpu_over_provisioning: f64,
    pub memory_over_provisioning: f64,
    /// Share of serving time with usage above the request (memory above the
    /// limit is an OOM kill instead).
    pub cpu_under_provisioned_share: f64,
    pub memory_under_provisioned_share: f64,
    pub ooms_per_pod_day: f64,
    /// In-place resizes applied plus evictions to recreate, per pod-day.
    pub updates_per_pod_day: f64,
    /// Every eviction of the workload's pods (to recreate, or by a drain), per pod-day.
    pub evictions_per_pod_day: f64,
    /// Share of pod time not serving (pending, starting, restarting after an OOM kill).
    pub unavailable_share: f64,
    /// The sums behind the ratios, for pooling workloads.
    pub totals: PodTotals,
}

/// Sums of one workload's run: seconds, core-seconds, byte-seconds, counts.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PodTotals {
    /// Container-seconds measured (serving).
    pub measured: f64,
    pub cpu_request: f64,
    pub cpu_usage: f64,
    pub memory_request: f64,
    pub memory_usage: f64,
    pub cpu_under: f64,
    pub memory_under: f64,
    /// Pod time alive (not deleted), in days and seconds; `down`: of it not serving.
    pub pod_days: f64,
    pub total: f64,
    pub down: f64,
    pub ooms: u64,
    pub updates: u64,
    pub evictions: u64,
}

impl PodTotals {
    pub fn add(&mut self, o: &PodTotals) {
        self.measured += o.measured;
        self.cpu_request += o.cpu_request;
        self.cpu_usage += o.cpu_usage;
        self.memory_request += o.memory_request;
        self.memory_usage += o.memory_usage;
        self.cpu_under += o.cpu_under;
        self.memory_under += o.memory_under;
        self.pod_days += o.pod_days;
        self.total += o.total;
        self.down += o.down;
        self.ooms += o.ooms;
        self.updates += o.updates;
        self.evictions += o.evictions;
    }

    /// The ratios of these sums.
    pub fn row(&self, workload: &str) -> PodWorkload {
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        PodWorkload {
            workload: workload.to_string(),
            cpu_over_provisioning: ratio(self.cpu_request - self.cpu_usage, self.cpu_usage),
            memory_over_provisioning: ratio(self.memory_request - self.memory_usage, self.memory_usage),
            cpu_under_provisioned_share: ratio(self.cpu_under, self.measured),
            memory_under_provisioned_share: ratio(self.memory_under, self.measured),
            ooms_per_pod_day: ratio(self.ooms as f64, self.pod_days),
            updates_per_pod_day: ratio(self.updates as f64, self.pod_days),
            evictions_per_pod_day: ratio(self.evictions as f64, self.pod_days),
            unavailable_share: ratio(self.down, self.total),
            totals: self.clone(),
        }
    }
}

/// Every workload of `rows` pooled: the ratios of their summed totals.
pub fn pooled(rows: &[PodWorkload]) -> PodWorkload {
    let mut t = PodTotals::default();
    for r in rows {
        t.add(&r.totals);
    }
    t.row("all")
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
    /// Rows of trace files left out as bad (`--skip-bad-rows`), up to where
    /// the run stopped reading: a report on a trace with holes says so.
    pub trace_rows_dropped: u64,
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
    /// An in-place resize the API accepted, and the kubelet's verdict.
    PodResized {
        pod: String,
        change: String,
        kubelet: String,
    },
    /// A pod evicted to be recreated with other requests.
    PodRecreated {
        pod: String,
        wanted: String,
    },
    /// The executor found the world changed and did not act (the contract).
    Refused {
        action: String,
        why: String,
    },
    /// A workload's template changed (the placement advisor); its
    /// controller rolls the change out.
    Template {
        change: String,
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
    /// (pods still waiting at the end count with the time they had waited;
    /// pods deleted while waiting, with their whole wait).
    pub waited_pods: usize,
    pub wait_p50_secs: Option<f64>,
    pub wait_p99_secs: Option<f64>,
    /// Pods that waited and were never bound: still waiting at the end, or
    /// deleted while waiting (`never_scheduled_deleted` of them).
    pub never_scheduled: usize,
    pub never_scheduled_deleted: usize,
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
    /// A group scaled up, started removing one of its nodes and scaled up
    /// again within an hour while the demand did not change (no replica
    /// target changed, no recommendation target moved by more than 10 %):
    /// docs/testing.md's oscillation cycle, counted once per first scale-up.
    pub oscillation_cycles: u32,
    /// The same pattern whatever the demand did (an upper bound on churn).
    pub rescale_cycles: u32,
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
            TimelineEvent::PodResized { pod, change, kubelet } => {
                write!(f, "{pod} resized in place: {change} (kubelet: {kubelet})")
            }
            TimelineEvent::PodRecreated { pod, wanted } => write!(f, "{pod} evicted to be recreated ({wanted})"),
            TimelineEvent::Refused { action, why } => write!(f, "{action} not executed: {why}"),
            TimelineEvent::Template { change } => write!(f, "{change}"),
        }
    }
}

/// What the report says about the call graph over a run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CallGraphStats {
    /// p99 of every sampled request's end-to-end latency, ms (all windows pooled).
    pub p99_ms: f64,
    pub p50_ms: f64,
    /// Mean over windows of the windows' p99, ms.
    pub mean_window_p99_ms: f64,
    /// p99 over the last quarter of the run (after the advisor has acted), ms.
    pub late_p99_ms: f64,
    /// p99 per request kind, ms (all windows pooled).
    pub p99_by_kind_ms: BTreeMap<String, f64>,
    /// Calls between pods on different nodes, millions, and their share of all calls.
    pub cross_node_calls_m: f64,
    pub cross_node_share: f64,
    /// The same over the last quarter of the run.
    pub late_cross_node_share: f64,
    pub cross_zone_calls_m: f64,
    /// Pods replaced by template changes (rollouts).
    pub rollout_restarts: u32,
    /// Sampled requests that met a service with no running replica (each
    /// such call counts a second).
    pub timed_out: usize,
    /// Advice given (new), withdrawn, and subjects advised again after
    /// being withdrawn (an oscillation cycle).
    pub advised: u32,
    pub withdrawn: u32,
    pub oscillations: u32,
    /// Where the tail's time goes: per window, the requests at or above
    /// its p99, their critical paths' parts summed, as shares of the total.
    pub tail: Parts,
}

/// Where one request's time went along its critical path (the slowest
/// branch of each parallel step), in milliseconds: what answers "where does
/// the p99 come from" — network hops by placement, the sidecars, the
/// services' own time and the queueing CPU pressure adds to it.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Parts {
    /// The network part of hops between pods on different nodes.
    pub cross_node_hops: f64,
    /// …and of hops between pods on one node.
    pub same_node_hops: f64,
    /// Both sidecars of every hop.
    pub proxies: f64,
    /// The services' time as if unloaded.
    pub service: f64,
    /// What CPU pressure adds to it (the queue's stretch).
    pub queueing: f64,
    /// Of `service` + `queueing`, the part spent in databases.
    pub in_databases: f64,
    /// A call to a service with no running replica (a second each).
    pub timeouts: f64,
}

impl Parts {
    pub fn total(&self) -> f64 {
        self.cross_node_hops + self.same_node_hops + self.proxies + self.service + self.queueing + self.timeouts
    }

    pub(crate) fn add(&mut self, o: &Parts) {
        self.cross_node_hops += o.cross_node_hops;
        self.same_node_hops += o.same_node_hops;
        self.proxies += o.proxies;
        self.service += o.service;
        self.queueing += o.queueing;
        self.in_databases += o.in_databases;
        self.timeouts += o.timeouts;
    }

    /// Each part over the total (`in_databases` too): the shares of the time.
    pub fn shares(&self) -> Parts {
        let t = self.total();
        if t <= 0.0 {
            return Parts::default();
        }
        Parts {
            cross_node_hops: self.cross_node_hops / t,
            same_node_hops: self.same_node_hops / t,
            proxies: self.proxies / t,
            service: self.service / t,
            queueing: self.queueing / t,
            in_databases: self.in_databases / t,
            timeouts: self.timeouts / t,
        }
    }
}
