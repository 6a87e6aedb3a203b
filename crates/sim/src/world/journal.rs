//! What happened in a run, as the report tells it: the timeline, counts of
//! the autoscaler's work and of the demand fed in, and how long pods waited
//! for a node. Components append to it as they act; the recorder (which
//! integrates cost and the bound over time) turns it into the report.

use std::collections::HashMap;

use heatscaler_core::model::Timestamp;
use heatscaler_core::planner::action::{RemovalCause, RemoveMembers, ScaleUp};
use heatscaler_core::planner::time::elapsed;

use super::pod_meter::PodMeter;
use crate::report::{InputSummary, PodLevelCounts, TimelineEntry, TimelineEvent};

/// What the autoscaler under test did, counted.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    pub passes: u64,
    pub scale_ups: u32,
    pub nodes_added: u32,
    pub scale_downs: u32,
    pub nodes_removed: u32,
    pub evictions: u32,
    pub evictions_refused: u32,
    pub provisioning_failures: u32,
    pub rollbacks: u32,
}

pub struct Journal {
    /// The pod level's counts (reported when the scenario has VPA objects).
    pub pod_level: PodLevelCounts,
    /// How each VPA workload's pods were sized against their usage.
    pub pod_meter: PodMeter,
    epoch: Timestamp,
    timeline: Vec<TimelineEntry>,
    input: InputSummary,
    counts: Counts,
    /// Pods found unschedulable and not bound since, by uid: when created.
    waiting: HashMap<String, Timestamp>,
    /// How long each pod that waited waited, in seconds.
    waits: Vec<f64>,
    /// Seconds since the start at which a recommendation target moved by
    /// more than a tenth (a change in demand, as replica changes are).
    recommendation_moves: Vec<f64>,
    /// Pods deleted while still waiting (a Job ended, a ReplicaSet scaled
    /// down, a trace row ended them): uid and how long they had waited. They
    /// were never scheduled and waited their whole life; kept by uid because
    /// the unhostable ones are only known at the end.
    gone_waiting: Vec<(String, f64)>,
}

/// A finished journal.
pub struct Journaled {
    pub pod_level: PodLevelCounts,
    pub pod_meter: PodMeter,
    pub timeline: Vec<TimelineEntry>,
    pub input: InputSummary,
    pub counts: Counts,
    /// Sorted; pods still waiting at the end count with the time they had waited.
    pub waits: Vec<f64>,
    /// Pods never bound: still waiting at the end, or deleted while waiting.
    pub never_scheduled: usize,
    pub recommendation_moves: Vec<f64>,
    /// Of `never_scheduled`, those deleted while waiting.
    pub never_scheduled_deleted: usize,
}

impl Journal {
    pub fn new(epoch: Timestamp) -> Self {
        Self {
            pod_level: PodLevelCounts::default(),
            pod_meter: PodMeter::default(),
            epoch,
            timeline: Vec::new(),
            input: InputSummary::default(),
            counts: Counts::default(),
            waiting: HashMap::new(),
            waits: Vec::new(),
            recommendation_moves: Vec::new(),
            gone_waiting: Vec::new(),
        }
    }

    pub fn event(&mut self, at: Timestamp, subject: &str, event: TimelineEvent) {
        let at_secs = elapsed(at, self.epoch).as_secs_f64();
        self.timeline.push(TimelineEntry { at_secs, subject: subject.to_string(), event });
    }

    /// The timeline so far (the stability property reads it).
    #[cfg(test)]
    pub fn timeline(&self) -> &[TimelineEntry] {
        &self.timeline
    }

    /// The autoscaler made a decision pass.
    pub fn pass(&mut self) {
        self.counts.passes += 1;
    }

    pub fn scale_up(&mut self, at: Timestamp, a: &ScaleUp) {
        self.counts.scale_ups += 1;
        self.counts.nodes_added += a.new_desired.saturating_sub(a.expected_desired);
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
            self.counts.scale_downs += 1;
            self.counts.nodes_removed += drained;
        }
        self.counts.provisioning_failures += failed;
        let cause = match (drained, failed) {
            (0, _) => "failed provisioning",
            (_, 0) => "drained",
            _ => "drained and failed provisioning",
        };
        let members = a.members.iter().map(|m| m.member.clone()).collect();
        self.event(at, &a.group, TimelineEvent::ScaleDown { from, to: a.new_desired, members, cause: cause.into() });
    }

    pub fn evicted(&mut self) {
        self.counts.evictions += 1;
    }

    /// An eviction the API refused (429: a PDB had no disruption left).
    pub fn eviction_refused(&mut self) {
        self.counts.evictions_refused += 1;
    }

    pub fn rolled_back(&mut self) {
        self.counts.rollbacks += 1;
    }

    /// A VPA recommendation target moved by more than a tenth.
    pub fn recommendation_moved(&mut self, at: Timestamp) {
        self.recommendation_moves.push(elapsed(at, self.epoch).as_secs_f64());
    }

    /// A replica count changed on the scenario's schedule.
    pub fn replicas_changed(&mut self) {
        self.input.replica_changes += 1;
    }

    /// A burst of a bursty generator arrived with `jobs` jobs.
    pub fn burst(&mut self, jobs: usize) {
        self.input.bursts += 1;
        self.input.jobs += jobs as u64;
    }

    pub fn trace_row(&mut self) {
        self.input.trace_rows += 1;
    }

    /// Trace rows left out as bad (`--skip-bad-rows`).
    pub fn trace_rows_dropped(&mut self, rows: u64) {
        self.input.trace_rows_dropped += rows;
    }

    /// The scheduler found no node for a pod (the first time).
    pub fn unschedulable(&mut self, uid: &str, created: Timestamp) {
        self.waiting.entry(uid.to_string()).or_insert(created);
    }

    /// The scheduler bound a pod; if it had waited, how long counts.
    pub fn bound(&mut self, uid: &str, created: Timestamp, now: Timestamp) {
        if self.waiting.remove(uid).is_some() {
            self.waits.push(elapsed(now, created).as_secs_f64());
        }
    }

    /// A pod went away at `now`; if it was waiting for capacity, it waited
    /// until now and was never scheduled (forgetting it would hide exactly the
    /// pods an autoscaler failed worst).
    pub fn pod_gone(&mut self, uid: &str, now: Timestamp) {
        if let Some(created) = self.waiting.remove(uid) {
            self.gone_waiting.push((uid.to_string(), elapsed(now, created).as_secs_f64()));
        }
    }

    /// The journal at `end`; pods `unhostable` says no group could host are
    /// not waiting for capacity.
    pub fn finish(mut self, end: Timestamp, unhostable: impl Fn(&str) -> bool) -> Journaled {
        self.waiting.retain(|uid, _| !unhostable(uid));
        self.gone_waiting.retain(|(uid, _)| !unhostable(uid));
        let never_scheduled_deleted = self.gone_waiting.len();
        let never_scheduled = self.waiting.len() + never_scheduled_deleted;
        let mut waits = self.waits;
        waits.extend(self.waiting.values().map(|c| elapsed(end, *c).as_secs_f64()));
        waits.extend(self.gone_waiting.iter().map(|(_, w)| *w));
        waits.sort_by(f64::total_cmp);
        Journaled {
            pod_level: self.pod_level,
            pod_meter: self.pod_meter,
            timeline: self.timeline,
            input: self.input,
            counts: self.counts,
            waits,
            never_scheduled,
            recommendation_moves: self.recommendation_moves,
            never_scheduled_deleted,
        }
    }
}
