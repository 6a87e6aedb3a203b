//! The simulator: a discrete-event model of a cluster on Heat, driving the
//! real planner the way the daemon does, so a policy can be tried (and a week
//! of a trace replayed in seconds) before it touches a real cluster. It
//! depends on `heatscaler-core` only, never on the daemon.
//!
//! A run is a `world` — the clock and its event queue, the Kubernetes API's
//! objects, Heat's groups, the journal of what happened — and components that
//! own their own state and act on it; `engine` builds both and dispatches
//! each event to its component. The modules' imports form no cycle
//! (tests/standalone/module_graph.rs checks): inputs, then the world, then
//! the components, then the engine.
//!
//! - Input: [`scenario`] (node groups, delays, workloads, policy), [`shapes`]
//!   (values over time, delays), [`trace`] (trace file importers).
//! - `world`: the state every component acts on; `streams`: the random
//!   streams of the seed.
//! - Components: `autoscaler` (the autoscaler under test, [`PolicyKind`]:
//!   heatscaler's planner or a peer from `peers` — cluster-autoscaler's
//!   documented defaults, re-implemented — run as its daemon runs, with the
//!   simulated actuator), `scheduler` (kube-scheduler), `controllers`
//!   (ReplicaSets with HPA, DaemonSets, one-off pods, PDBs), the pod level
//!   (`pod_usage`: per-replica usage and OOM kills; `vpa`: the VPA objects
//!   and the recommender), the demand (`generators`: bursty arrivals;
//!   `replay`: trace rows), and `recorder` (the report, against the fluid
//!   lower bound of [`bound`], and how each VPA workload's pods were sized).
//! - Output: [`report`]; [`display`] for terminals, [`plot`] for SVG;
//!   [`progress`] tells a front end how far the runs have got.
//! - [`frontier`]: the recommender's frontier (`simulate --frontier`);
//!   [`explain_at`]: heatscaler's explanation of chosen passes
//!   (`simulate --explain-at`).
//! - [`bench`]: `heatscaler bench`, the planner, memory and simulator figures.

mod autoscaler;
pub mod bench;
pub mod bound;
pub mod call_graph;
pub mod co_scheduling;
mod controllers;
pub mod display;
mod engine;
pub mod explain_at;
pub mod frontier;
mod generators;
mod mesh;
mod peers;
pub mod plot;
mod pod_usage;
pub mod progress;
mod recorder;
mod replay;
pub mod report;
pub mod scenario;
mod scheduler;
pub mod shapes;
pub mod signals;
mod streams;
pub mod trace;
mod vpa;
mod world;

pub use autoscaler::PolicyKind;
pub use engine::{compare, compare_with_progress, run, run_explained, run_policy};
pub use progress::{Progress, Silent};
pub use report::{Parts, Report};
pub use scenario::{PHP_APACHE, Scenario, ScenarioError};
pub use trace::TraceError;

#[cfg(test)]
mod invariants;
#[cfg(test)]
mod pod_level_tests;
#[cfg(test)]
mod stability;
#[cfg(test)]
mod tests;
