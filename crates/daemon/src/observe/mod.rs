//! Observers: the outside world as plain owned data for the planner.
//!
//! - [`KubeObserver`]: kube-runtime watches of nodes, pods, PodDisruptionBudgets
//!   and ReplicaSets, pods, nodes and ReplicaSets decoded into [`slim`]
//!   types, each object converted on arrival ([`convert`]) into the compact
//!   [`ClusterStore`] — the planner's
//!   [`heatscaler_core::model::Snapshot`], kept in place.
//! - [`HeatObserver`] (`stack_poller`): reads each node group's stack through
//!   its backend (Heat has no watch), on a timer and when poked.
//! - [`GroupAssembler`]: joins the two into the planner's groups at each pass.
//! - [`mesh`]: a service mesh's traffic between workloads, from Prometheus.
//! - [`Changes`]: bumped whenever something the planner reads changed.
//!
//! Observers never decide and never write.

mod changes;
pub mod convert;
mod groups;
pub mod mesh;
pub mod slim;
mod stack_poller;
mod store;
mod watch;

pub use changes::Changes;
pub use groups::GroupAssembler;
pub use stack_poller::{Failing, GroupRead, HeatFailures, HeatObserver, HeatPoke};
pub use store::{ClusterStore, Watched};
pub use watch::{KubeObserver, WatchHealth};
