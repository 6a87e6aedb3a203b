//! heatscaler's core: what a cluster is ([`model`]), what the operator allows
//! ([`policy`]), and the pure decisions over them — the [`planner`] (both
//! levels, one pass) and the [`recommender`] (VPA's algorithm).
//!
//! Nothing here does I/O, reads a clock or draws an unseeded random number:
//! the daemon (`heatscaler-daemon`) and the simulator (`heatscaler-sim`) feed
//! the same functions the same kind of data, which is why a simulated policy
//! behaves like the deployed one. The crate depends on no async runtime and
//! no Kubernetes or OpenStack client; `docs/architecture.md` draws the arrows.

#[cfg(any(test, feature = "test-support"))]
pub mod fuzz;
pub mod model;
pub mod planner;
pub mod policy;
pub mod recommender;
pub mod yaml;
