//! Tests that need no server: the simulator through the `heatscaler` binary
//! (or, built without it, what the binary says instead), the systemd unit,
//! and the dependency arrows the compiler cannot check.

mod dependency_arrows;
#[cfg(feature = "simulator")]
mod simulate;
mod systemd_unit;
#[cfg(not(feature = "simulator"))]
mod without_simulator;
