//! The operator's policy as types: what the planner is allowed to do and how
//! fast, in the units operators write (`10m`, `16Gi`, `0.5`).
//!
//! These are the sections of the configuration file that the planner, the
//! recommender and the simulator read — so they are defined here, below all
//! three, and the daemon's `config` (which loads the file, resolves secrets
//! and checks the rest) re-exports them. A scenario file embeds the same
//! sections, so a policy tried in the simulator is the policy the daemon runs.

mod node_template;
mod placement;
mod pod_resize;
mod scaling;
mod units;

pub use node_template::{NodeTemplate, TaintConfig};
pub use placement::{AdvisorMode, PlacementAdvisorPolicy};
pub use pod_resize::{RecommenderSettings, UpdaterSettings};
pub use scaling::{ClusterLimits, Expander, ScaleDownPolicy, ScaleUpPolicy, scaling_problems};
pub use units::{Duration, Fraction, Quantity};

/// The control loop's default pacing (`daemon.debounce`,
/// `daemon.resync-interval`, `daemon.heat-poll-interval`): the daemon's
/// configuration starts from them and so does the simulator's model of the
/// daemon, so a simulated pass happens when a real one would.
pub mod loop_defaults {
    use super::Duration;

    /// Watch events within this window are planned together.
    pub const DEBOUNCE: Duration = Duration::from_millis(200);
    /// A full pass at least this often, events or not (timers expire silently).
    pub const RESYNC_INTERVAL: Duration = Duration::from_secs(10);
    /// How often Heat stacks are read for member state.
    pub const HEAT_POLL_INTERVAL: Duration = Duration::from_secs(30);
}

/// One thing wrong with a policy section, at its key path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path, as in the configuration file (`scale-down.max-nodes-per-step`).
    pub path: String,
    /// What is wrong and, where it helps, what would be right.
    pub problem: String,
}

impl Problem {
    pub fn new(path: impl Into<String>, problem: impl Into<String>) -> Self {
        Self { path: path.into(), problem: problem.into() }
    }
}
