//! The simulator: a discrete-event model of a cluster on Heat, driving the
//! real planner the way the daemon does, so a policy can be tried (and a week
//! of a trace replayed in seconds) before it touches a real cluster.
//!
//! - [`scenario`]: the input file (node groups, delays, workloads, policy).
//! - `engine`: the simulated clock, event queue and daemon loop.
//! - `scheduler`, `workloads`, `heat`: kube-scheduler, controllers and Heat.
//! - `actuator`: executes planner actions under the executor contract.
//! - [`report`]: timeline, series and summary.
//! - [`podlevel`]: pod-level resizing (recommender, updater, kubelet) against a VPA-defaults baseline.

mod actuator;
mod cluster;
mod engine;
mod heat;
pub mod podlevel;
pub mod report;
pub mod scenario;
mod scheduler;
pub mod shapes;
mod workloads;

pub use engine::run;
pub use report::Report;
pub use scenario::{PHP_APACHE, Scenario, ScenarioError};

#[cfg(test)]
mod tests;
