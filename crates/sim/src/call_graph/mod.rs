//! The microservice call graph of a scenario (issue 21, item 4): its
//! `call-graph` section — the application's topology (`topology`), the
//! request rate, the replicas and the per-hop latency by placement — which
//! the scenario turns into one workload per service, and the mesh model
//! (`mesh`) samples at run time.
//!
//! The model and its assumptions: docs/co-scheduling.md.

mod topology;

use serde::{Deserialize, Serialize};

use heatscaler_core::policy::Duration;

use crate::shapes::Shape;

pub use topology::{Step, Tier, Topology, TopologyKind};

/// The node label a zone is read from.
pub const ZONE: &str = "topology.kubernetes.io/zone";

/// The scenario's `call-graph` section.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CallGraphSpec {
    #[serde(default = "default_topology")]
    pub topology: TopologyKind,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Requests per second into the front end, over time.
    pub requests_per_second: Shape,
    /// Multiplies the logic tier's replicas (rounded, at least 1).
    #[serde(default = "one")]
    pub replicas_scale: f64,
    /// Requests per second each service's CPU requests are sized for, at
    /// `sized-utilization` of them.
    pub sized_for_rps: f64,
    #[serde(default = "default_sized_utilization")]
    pub sized_utilization: f64,
    /// Round trip of one call between two pods, milliseconds.
    #[serde(default)]
    pub hop: HopLatency,
    /// How often the mesh's metrics are computed (and observed).
    #[serde(default = "default_window")]
    pub window: Duration,
    /// Requests sampled per window.
    #[serde(default = "default_samples")]
    pub samples: u32,
    /// Pairs with fewer sampled calls of a kind in a window report no p99 of
    /// that kind (as a histogram with few counts says little).
    #[serde(default = "default_min_samples")]
    pub min_samples: u32,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct HopLatency {
    pub same_node_ms: f64,
    pub other_node_ms: f64,
    pub other_zone_ms: f64,
    /// Both sidecars' share of every call, wherever the pods run.
    pub proxies_ms: f64,
}

impl Default for HopLatency {
    fn default() -> Self {
        Self { same_node_ms: 0.08, other_node_ms: 0.5, other_zone_ms: 1.2, proxies_ms: 0.4 }
    }
}

fn default_topology() -> TopologyKind {
    TopologyKind::SocialNetwork
}
fn default_namespace() -> String {
    "social-network".into()
}
fn one() -> f64 {
    1.0
}
fn default_sized_utilization() -> f64 {
    0.5
}
fn default_window() -> Duration {
    Duration::from_secs(60)
}
fn default_samples() -> u32 {
    4000
}
fn default_min_samples() -> u32 {
    40
}

impl CallGraphSpec {
    pub fn topology(&self) -> Topology {
        Topology::of(self.topology)
    }

    pub fn replicas(&self, s: &topology::Service) -> u32 {
        match s.tier {
            Tier::Logic => ((f64::from(s.replicas) * self.replicas_scale).round() as u32).max(1),
            Tier::Cache | Tier::Database => s.replicas,
        }
    }

    /// CPU one replica of each service requests, in millicores: its share
    /// of the calls at `sized-for-rps`, at `sized-utilization`, rounded up
    /// to 50m (at least 100m).
    pub fn cpu_request_milli(&self, topo: &Topology, s: usize) -> i64 {
        let calls: f64 =
            topo.edge_rates(self.sized_for_rps).iter().filter(|((_, server), _)| *server == s).map(|(_, r)| r).sum();
        let service = &topo.services[s];
        let cores = calls * service.cpu_ms / 1000.0 / f64::from(self.replicas(service)) / self.sized_utilization;
        (((cores * 1000.0) / 50.0).ceil() as i64 * 50).max(100)
    }
}
