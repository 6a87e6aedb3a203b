//! Tests that need no server: the simulator through the `heatscaler` binary
//! (or, built without it, what the binary says instead), the systemd unit,
//! and the repository's own rules — the dependency arrows the compiler
//! cannot check, the simulator's module graph, and the paths its code and
//! documents cite.

mod cli;
mod container;
mod dependency_arrows;
mod doc_paths;
mod from_ca;
mod module_graph;
#[cfg(feature = "simulator")]
mod simulate;
mod systemd_unit;
mod version;
#[cfg(not(feature = "simulator"))]
mod without_simulator;
