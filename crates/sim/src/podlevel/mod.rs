//! The pod-level simulation: workloads whose replicas follow usage shapes
//! feed the real recommender on the simulated clock; the real planner decides
//! resizes (heatscaler) or a re-implementation of VPA's updater with its
//! defaults does (the baseline); a simulated kubelet applies them, defers or
//! refuses them when they do not fit, and OOM-kills containers whose memory
//! exceeds their limit. Each workload runs alone on its node pool, once per
//! policy, with the same usage and seed. See `docs/pod-resizing.md`.

pub(crate) mod cluster;
mod report;
mod run;
pub(crate) mod spec;

#[cfg(test)]
mod tests;

pub use crate::signals::Signal;
pub use report::{PodLevelReport, Row};
pub use spec::{HeatscalerSide, NodePool, PodLevelSpec, PodWorkload, Side};

use std::time::Duration;

/// Runs every workload under heatscaler and under the VPA-defaults baseline.
pub fn run(spec: &PodLevelSpec, duration: Duration, seed: u64) -> PodLevelReport {
    run_with_progress(spec, duration, seed, &crate::Silent)
}

/// [`run`], telling `progress` as each (workload, policy) run finishes.
pub fn run_with_progress(
    spec: &PodLevelSpec,
    duration: Duration,
    seed: u64,
    progress: &dyn crate::Progress,
) -> PodLevelReport {
    let mut rows = Vec::new();
    let total = spec.workloads.len() * 2;
    for w in 0..spec.workloads.len() {
        for side in [Side::Heatscaler, Side::VpaDefaults] {
            rows.push(run::simulate(spec, w, side, duration, seed));
            progress.runs_finished(rows.len(), total);
        }
    }
    PodLevelReport { duration_secs: duration.as_secs(), seed, rows }
}
