//! What a simulation tells: a timeline of scaling events, sampled series, and
//! a summary of cost and waiting.
//!
//! A [`Report`] holds one [`Run`] per policy simulated (today one, labelled
//! `heatscaler`), so baselines can be run side by side; [`Run::series`] is the
//! sampled state for plots; bounds (a fluid lower bound on cost) will be a
//! further field of [`Report`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration as StdDuration;

use serde::Serialize;

use crate::model::Timestamp;
use crate::planner::action::{RemovalCause, RemoveMembers, ScaleUp};
use crate::planner::time::{compact, elapsed};

use super::cluster::Cluster;
use super::scenario::Scenario;

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub scenario: String,
    pub description: Option<String>,
    pub seed: u64,
    pub duration_secs: f64,
    pub runs: Vec<Run>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Run {
    pub label: String,
    pub timeline: Vec<TimelineEntry>,
    pub series: Vec<Sample>,
    pub summary: Summary,
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
    pub pending_pods: u32,
    pub running_pods: u32,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub planner_passes: u64,
    pub groups: Vec<GroupSummary>,
    pub node_hours: f64,
    pub cost: f64,
    /// Integral of the number of pending pods over time.
    pub pending_pod_seconds: f64,
    /// Pods that were ever unschedulable, and how long each waited for a node
    /// (pods still waiting at the end count with the time they had waited).
    pub waited_pods: usize,
    pub wait_p50_secs: Option<f64>,
    pub wait_p99_secs: Option<f64>,
    pub never_scheduled: usize,
    pub scale_ups: u32,
    pub nodes_added: u32,
    pub scale_downs: u32,
    pub nodes_removed: u32,
    pub evictions: u32,
    pub evictions_refused: u32,
    pub provisioning_failures: u32,
    pub rollbacks: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct GroupSummary {
    pub group: String,
    pub node_hours: f64,
    pub cost: f64,
}

/// Collects the report while the engine runs.
pub struct Recorder {
    epoch: Timestamp,
    last: Timestamp,
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
    timeline: Vec<TimelineEntry>,
    series: Vec<Sample>,
}

impl Recorder {
    pub fn new(epoch: Timestamp) -> Self {
        Self {
            epoch,
            last: epoch,
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
            timeline: Vec::new(),
            series: Vec::new(),
        }
    }

    fn secs(&self, t: Timestamp) -> f64 {
        elapsed(t, self.epoch).as_secs_f64()
    }

    /// Integrates the piecewise-constant state from the last event up to `to`.
    pub fn advance(&mut self, to: Timestamp, cluster: &Cluster) {
        let dt = elapsed(to, self.last).as_secs_f64();
        self.last = to;
        if dt <= 0.0 {
            return;
        }
        for g in &cluster.heat {
            let e = self.node_seconds.entry(g.name.clone()).or_insert((0.0, g.price_per_hour));
            e.0 += f64::from(g.billed()) * dt;
        }
        let pending = cluster.snap.pods.iter().filter(|p| p.node_name.is_none() && p.deletion.is_none()).count();
        self.pending_pod_seconds += pending as f64 * dt;
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

    pub fn sample(&mut self, at: Timestamp, cluster: &Cluster) {
        let mut ready = BTreeMap::new();
        let mut desired = BTreeMap::new();
        for g in &cluster.heat {
            let n = cluster.snap.nodes.iter().filter(|n| n.ready && g.members.iter().any(|m| m.id == n.name)).count();
            ready.insert(g.name.clone(), n as u32);
            desired.insert(g.name.clone(), g.desired);
        }
        let pods = &cluster.snap.pods;
        self.series.push(Sample {
            at_secs: self.secs(at),
            ready,
            desired,
            pending_pods: pods.iter().filter(|p| p.node_name.is_none() && p.deletion.is_none()).count() as u32,
            running_pods: pods.iter().filter(|p| p.node_name.is_some() && p.deletion.is_none()).count() as u32,
        });
    }

    pub fn finish(mut self, sc: &Scenario, _cluster: &Cluster, end: Timestamp) -> Report {
        let never_scheduled = self.waiting.len();
        let mut waits = std::mem::take(&mut self.waits);
        waits.extend(self.waiting.values().map(|c| elapsed(end, *c).as_secs_f64()));
        waits.sort_by(f64::total_cmp);
        let groups: Vec<GroupSummary> = self
            .node_seconds
            .iter()
            .map(|(g, (secs, price))| GroupSummary {
                group: g.clone(),
                node_hours: secs / 3600.0,
                cost: secs / 3600.0 * price,
            })
            .collect();
        let summary = Summary {
            planner_passes: self.passes,
            node_hours: groups.iter().map(|g| g.node_hours).sum(),
            cost: groups.iter().map(|g| g.cost).sum(),
            groups,
            pending_pod_seconds: self.pending_pod_seconds,
            waited_pods: waits.len(),
            wait_p50_secs: percentile(&waits, 0.5),
            wait_p99_secs: percentile(&waits, 0.99),
            never_scheduled,
            scale_ups: self.scale_ups,
            nodes_added: self.nodes_added,
            scale_downs: self.scale_downs,
            nodes_removed: self.nodes_removed,
            evictions: self.evictions,
            evictions_refused: self.evictions_refused,
            provisioning_failures: self.provisioning_failures,
            rollbacks: self.rollbacks,
        };
        Report {
            scenario: sc.name.clone(),
            description: sc.description.clone(),
            seed: sc.seed,
            duration_secs: sc.duration.get().as_secs_f64(),
            runs: vec![Run { label: "heatscaler".into(), timeline: self.timeline, series: self.series, summary }],
        }
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn secs(s: f64) -> String {
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
            TimelineEvent::Drained { node } => write!(f, "{node} drained; cooling down"),
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

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "scenario {} (seed {}, {} simulated)", self.scenario, self.seed, secs(self.duration_secs))?;
        if let Some(d) = &self.description {
            write!(f, "\n  {d}")?;
        }
        writeln!(f)?;
        for run in &self.runs {
            writeln!(f, "\n{} timeline", run.label)?;
            for e in &run.timeline {
                writeln!(f, "  {:>8}  {:<12} {}", secs(e.at_secs), e.subject, e.event)?;
            }
            writeln!(f, "\n{} summary", run.label)?;
            write!(f, "{}", run.summary)?;
        }
        Ok(())
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let groups: Vec<String> =
            self.groups.iter().map(|g| format!("{} {:.2} (cost {:.2})", g.group, g.node_hours, g.cost)).collect();
        writeln!(f, "  node-hours             {:.2} (cost {:.2}): {}", self.node_hours, self.cost, groups.join(", "))?;
        writeln!(f, "  pending pod-seconds    {:.0}", self.pending_pod_seconds)?;
        match (self.wait_p50_secs, self.wait_p99_secs) {
            (Some(p50), Some(p99)) => writeln!(
                f,
                "  waited for capacity    {} pod(s): p50 {}, p99 {}; {} never scheduled",
                self.waited_pods,
                secs(p50),
                secs(p99),
                self.never_scheduled
            )?,
            _ => writeln!(f, "  waited for capacity    no pod waited")?,
        }
        writeln!(f, "  scale-ups              {} (+{} minion(s))", self.scale_ups, self.nodes_added)?;
        writeln!(f, "  scale-downs            {} (-{} minion(s))", self.scale_downs, self.nodes_removed)?;
        writeln!(
            f,
            "  evictions              {} ({} refused by PodDisruptionBudgets)",
            self.evictions, self.evictions_refused
        )?;
        writeln!(f, "  provisioning failures  {}", self.provisioning_failures)?;
        writeln!(f, "  rollbacks              {}", self.rollbacks)?;
        writeln!(f, "  planner passes         {}", self.planner_passes)
    }
}
