//! What the advisor remembers between passes. Losing it restarts the
//! hysteresis timers (evidence must hold for `raise-after` again) and forgets
//! standing advice; applied advice stays on the workloads, so a daemon that
//! keeps this across restarts avoids advising twice, one that does not only
//! waits longer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::Timestamp;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct AdvisorMemory {
    /// Since when each subject's evidence has held, continuously.
    pub rising: BTreeMap<String, Timestamp>,
    /// Co-location advice in force → when it was given.
    pub standing: BTreeMap<String, Timestamp>,
    /// Since when a standing advice's pair has looked not worth it.
    pub falling: BTreeMap<String, Timestamp>,
    /// When each piece of new advice within the window was given, oldest first.
    pub given: Vec<Timestamp>,
    /// Last advice per workload (`kind/namespace/name`).
    pub last_for_workload: BTreeMap<String, Timestamp>,
}
