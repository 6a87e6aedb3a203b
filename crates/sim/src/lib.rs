//! The simulator: a discrete-event model of a cluster on Heat, driving the
//! real planner the way the daemon does, so a policy can be tried (and a week
//! of a trace replayed in seconds) before it touches a real cluster. It
//! depends on `heatscaler-core` only, never on the daemon.
//!
//! - [`scenario`]: the input file (node groups, delays, workloads, policy).
//! - `engine`: the simulated clock, event queue and daemon loop.
//! - `scheduler`, `workloads`, `simulated_heat`: kube-scheduler, controllers
//!   and Heat's node groups.
//! - `actuator`: executes planner actions under the executor contract.
//! - `generators`, `trace`: bursty arrivals and trace replay (the demand).
//! - [`autoscaler`]: which autoscaler a run simulates — heatscaler, or a peer
//!   (`peers`: cluster-autoscaler's and the VPA's documented defaults,
//!   re-implemented).
//! - [`report`]: per policy, the node-level summary against the fluid lower
//!   bound ([`bound`]), timeline and series; `display` for terminals, [`plot`]
//!   for SVG.
//! - [`podlevel`]: pod-level resizing (recommender, updater, kubelet) against a VPA-defaults baseline.
//! - [`bench`]: `heatscaler bench`, the planner, memory and simulator figures.

mod actuator;
pub mod autoscaler;
pub mod bench;
pub mod bound;
mod cluster;
pub mod display;
mod engine;
mod generators;
mod peers;
pub mod plot;
pub mod podlevel;
pub mod report;
pub mod scenario;
mod scheduler;
pub mod shapes;
mod simulated_heat;
pub mod trace;
mod workloads;

pub use autoscaler::PolicyKind;
pub use engine::{compare, run, run_policy};
pub use report::Report;
pub use scenario::{PHP_APACHE, Scenario, ScenarioError};
pub use trace::TraceError;

#[cfg(test)]
mod invariants;
#[cfg(test)]
mod tests;
