//! The planner's small memory between passes.
//!
//! Everything here may be lost at any time (restart, leader change) without
//! harm: removals in progress live on the nodes (see [`super::protocol`]), and
//! losing this only restarts timers — nodes must be unneeded for the full
//! `unneeded-time` again, back-offs restart from their first step. It is
//! serialisable so a daemon may keep it across restarts if it wants to.

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize, Serializer};

use crate::model::{Name, Timestamp};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Memory {
    /// Since when each node (by name) has been found unneeded, continuously.
    pub unneeded_since: BTreeMap<String, Timestamp>,
    /// Groups backed off after failed provisionings.
    pub backoff: BTreeMap<String, Backoff>,
    /// Failed members (`group/member`) already counted into a back-off, so a
    /// member that stays listed while Heat removes it is counted once.
    pub failures_seen: BTreeSet<String>,
    /// First sighting of members Heat gave no creation time (`group/member`).
    pub member_first_seen: BTreeMap<String, Timestamp>,
    /// Last scale-up decided per group.
    pub last_scale_up: BTreeMap<String, Timestamp>,
    /// Last removal of drained minions requested.
    pub last_scale_down: Option<Timestamp>,
    /// Last failed provisioning seen.
    pub last_failure: Option<Timestamp>,
    /// The pod-level updater's timers.
    #[serde(default)]
    pub resize: ResizeMemory,
    /// The placement advisor's hysteresis, rate limit and applied advice.
    #[serde(default)]
    pub placement: super::placement::AdvisorMemory,
    /// A replacement by a cheaper minion under way (`replace-with-cheaper`).
    /// Lost, the new minion is an ordinary one and the old node keeps its
    /// place in the candidates' order.
    #[serde(default)]
    pub replacement: Option<Replacement>,
    /// The pods seen arriving lately (`replace-with-cheaper` only): a
    /// replacement keeps the room they needed. Not kept across restarts (pods
    /// are not serialisable); lost, the history starts again empty.
    #[serde(skip)]
    pub arrivals: Arrivals,
}

/// The pods that arrived since the planner has been watching, oldest first,
/// for at most a day (see `scale_down::arrivals`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Arrivals {
    /// The pass up to which arrivals were recorded; `None` before the first.
    pub seen_until: Option<Timestamp>,
    pub pods: std::collections::VecDeque<std::sync::Arc<crate::model::Pod>>,
}

/// A cheaper minion was asked for so that `node` can go once it is Ready.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Replacement {
    /// The node to replace.
    pub node: String,
    /// The cheaper group asked to grow.
    pub group: String,
    /// When the new minion was asked for.
    pub asked: Timestamp,
}

/// Losing it restarts the off-target timers (a pod must be off target for the
/// full `update-off-target-after` again) and the per-workload rate limit.
///
/// The per-pod timers are keyed by the snapshot's own uid [`Name`]s in hash
/// maps ([`PodTimers`]): a pass over 300,000 pods under VPA objects records
/// up to one timer per pod, looks one up per pod and copies the map into the
/// next pass's memory. Owned uids in ordered maps made that a string copy per
/// entry, a string comparison per tree level on every look-up and a sort of
/// every off-target uid per pass — the largest items of the pass's profile
/// (issue 22); now it is a reference count and one hash per pod. Nothing
/// iterates these maps to decide anything, so their order cannot move a
/// decision; they serialise sorted by uid, as before.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ResizeMemory {
    /// Last update (resize or recreate) per workload (`kind/namespace/name`).
    pub last_update: BTreeMap<String, Timestamp>,
    /// Since when each pod (by uid) has been off target by more than `min-change-fraction`.
    #[serde(serialize_with = "by_uid")]
    pub off_target_since: PodTimers,
    /// When heatscaler last resized each pod (by uid): an OOM kill after it
    /// shows the new size is too small.
    #[serde(serialize_with = "by_uid")]
    pub resized: PodTimers,
    /// Pods evicted to move (by the evicted pod's uid) whose replacement has
    /// not been scheduled yet: their destination is not removed meanwhile.
    /// Ordered: a pass visits them in uid order (a node two moves reserve
    /// names the first), and there are a few.
    #[serde(default)]
    pub moves: BTreeMap<Name, PlannedMove>,
}

impl Memory {
    /// A copy for the next pass to update, without the pods' off-target
    /// timers: the pass rebuilds those from scratch ([`super::resize`]'s
    /// assessment), and copying one owned uid per off-target pod only to drop
    /// it again was a good part of a pass over 300,000 pods under VPA objects
    /// (issue 22).
    pub(crate) fn for_next_pass(&self) -> Self {
        let ResizeMemory { last_update, off_target_since: _, resized, moves } = &self.resize;
        Self {
            resize: ResizeMemory {
                last_update: last_update.clone(),
                off_target_since: PodTimers::default(),
                resized: resized.clone(),
                moves: moves.clone(),
            },
            unneeded_since: self.unneeded_since.clone(),
            backoff: self.backoff.clone(),
            failures_seen: self.failures_seen.clone(),
            member_first_seen: self.member_first_seen.clone(),
            last_scale_up: self.last_scale_up.clone(),
            last_scale_down: self.last_scale_down,
            last_failure: self.last_failure,
            placement: self.placement.clone(),
            replacement: self.replacement.clone(),
            arrivals: self.arrivals.clone(),
        }
    }
}

/// A time per pod, by uid. FxHash, not SipHash: the keys are uids the API
/// server assigned, nothing a tenant picks to make them collide.
pub type PodTimers = FxHashMap<Name, Timestamp>;

/// [`PodTimers`] in uid order: the same memory always serialises the same.
fn by_uid<S: Serializer>(timers: &PodTimers, s: S) -> Result<S::Ok, S::Error> {
    let sorted: BTreeMap<&str, &Timestamp> = timers.iter().map(|(uid, t)| (uid.as_str(), t)).collect();
    sorted.serialize(s)
}

/// Where an evicted pod was planned to land, at its new size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PlannedMove {
    /// The workload (`kind/namespace/name`) whose replacement is awaited.
    pub workload: String,
    /// The evicted pod (`namespace/name`), for explanations.
    pub pod: String,
    /// The destination node.
    pub node: String,
    /// The replacement's requests.
    pub cpu_milli: i64,
    pub memory: i64,
    /// When the eviction was planned.
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Backoff {
    /// Consecutive failures; the back-off doubles with each.
    pub failures: u32,
    pub until: Timestamp,
}

pub(crate) fn member_key(group: &str, member: &str) -> String {
    format!("{group}/{member}")
}
