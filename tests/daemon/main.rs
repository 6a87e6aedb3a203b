//! The daemon's Kubernetes side against kubesim over HTTP, in one test binary
//! (each module was a binary of its own; linking the crates once per binary
//! was most of the test build's time):
//!
//! - [`actuator`], [`cluster`] (the observers), [`election`], [`pod_level`]:
//!   the library driven in process;
//! - [`explain`]: the `heatscaler explain` binary;
//! - [`alerts`], [`telemetry`]: sinks and `/metrics` over real HTTP;
//! - [`manifests`]: the in-cluster manifests and the RBAC they grant;
//! - [`topology`]: zone affinity observed from the API and planned on;
//! - [`mesh`]: a service mesh's traffic read from a real Prometheus.
//!
//! `cargo test --test daemon pod_level::` runs one module.

mod actuator;
mod alerts;
mod cluster;
mod dashboards;
mod election;
mod explain;
mod manifests;
mod mesh;
mod pod_level;
mod process;
mod telemetry;
mod topology;
