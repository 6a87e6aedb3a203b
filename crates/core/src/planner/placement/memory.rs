//! What the advisor remembers between passes. Losing it restarts the
//! hysteresis timers (evidence must hold for `raise-after` again) and forgets
//! standing advice; applied advice stays on the workloads, so a daemon that
//! keeps this across restarts avoids advising twice, one that does not only
//! waits longer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{PodAffinityTerm, Timestamp, WorkloadRef};

use super::Resource;
use super::pooled::CostSample;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct AdvisorMemory {
    /// Since when each subject's evidence — its cost pooled over
    /// `raise-after` (`costs`) — has held, continuously.
    pub rising: BTreeMap<String, Timestamp>,
    /// Each candidate's cost per pass over the last `raise-after`, advice in
    /// force left out: what its evidence is judged on (`planner::placement::pooled`).
    #[serde(default)]
    pub costs: BTreeMap<String, Vec<CostSample>>,
    /// Co-location advice in force → when it was given.
    pub standing: BTreeMap<String, Timestamp>,
    /// Since when a standing advice's pair has looked not worth it.
    pub falling: BTreeMap<String, Timestamp>,
    /// When each piece of new advice within the window was given, oldest first.
    pub given: Vec<Timestamp>,
    /// Last advice per workload (`kind/namespace/name`).
    pub last_for_workload: BTreeMap<String, Timestamp>,
    /// Last co-location advice per server workload (`kind/namespace/name`):
    /// clients are being moved next to its replicas where they are, so it
    /// is not to be moved towards another server until `workload-cooldown`.
    #[serde(default)]
    pub last_as_server: BTreeMap<String, Timestamp>,
    /// `apply` mode: co-location terms asked of workload templates, by
    /// subject; asked again every pass until the workload's pods carry them.
    #[serde(default)]
    pub applied: BTreeMap<String, AppliedAffinity>,
    /// `apply` mode: withdrawn terms, by subject; their removal is asked
    /// every pass until no pod carries them, or `workload-cooldown` passed.
    #[serde(default)]
    pub withdrawing: BTreeMap<String, AppliedAffinity>,
    /// `apply` mode: resource increases in force, by workload
    /// (`kind/namespace/name`): the pod level's floor for that workload.
    #[serde(default)]
    pub floors: BTreeMap<String, Floor>,
}

/// A preferred pod affinity the advisor asked a workload's template to carry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct AppliedAffinity {
    pub workload: WorkloadRef,
    pub server: WorkloadRef,
    pub term: PodAffinityTerm,
    pub weight: i32,
    /// The evidence when it was given (for the action's reason).
    pub reason: String,
    /// When it was given, or withdrawn (in `withdrawing`).
    pub at: Timestamp,
    /// A group move's partner: the subject of the co-location it moves
    /// with, withdrawn with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moves_with: Option<String>,
}

/// A resource increase in `apply` mode: until `until`, the pod level's target
/// for each listed container of `workload` is at least `value` of `resource`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Floor {
    pub workload: WorkloadRef,
    pub resource: Resource,
    /// Container → the request (millicores or bytes) it is raised to.
    pub containers: BTreeMap<String, i64>,
    pub until: Timestamp,
}
