//! Usage collection: what each container and node uses, read from every
//! kubelet through the API server's node proxy, and OOM kills read from pod
//! status. Observers only: nothing here decides anything.
//!
//! - [`summary`]: the kubelet Summary API (`/stats/summary`, stats/v1alpha1 JSON).
//! - [`cadvisor`]: the kubelet's cAdvisor endpoint (`/metrics/cadvisor`, Prometheus text).
//! - [`counters`]: turns cumulative CPU counters into rates between scrapes.
//! - [`collector`]: scrapes all nodes with bounded concurrency and a per-node timeout.
//! - [`pressure`]: each workload's usage over its requests, for the placement advisor.
//! - [`oom`]: OOM kills read from container status (the recommender's
//!   `OomTracker` reports each once).
//!
//! Nothing here keeps raw samples: a scrape's output is handed to the
//! recommender, which folds it into fixed-size histograms.

pub mod cadvisor;
pub mod collector;
pub mod counters;
pub mod direct;
pub mod oom;
pub mod pressure;
pub mod summary;

use jiff::Timestamp;

pub use collector::{NodeHealth, NodeScrapeError, ScrapeFailure, ScrapeTarget, UsageCollector};
pub use oom::last_oom_kill;

use heatscaler_core::recommender::ContainerUsage;

/// A node's total usage (all cgroups, system daemons included).
#[derive(Clone, Debug, PartialEq)]
pub struct NodeUsage {
    pub node: String,
    pub at: Timestamp,
    pub cpu_cores: Option<f64>,
    pub memory_working_set: Option<i64>,
}

/// Everything one round of scraping produced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UsageScrape {
    pub containers: Vec<ContainerUsage>,
    pub nodes: Vec<NodeUsage>,
    /// Nodes that failed this round; the others are complete.
    pub errors: Vec<NodeScrapeError>,
}

/// A container's readings as parsed, before CPU counters become rates.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerReading {
    pub series: counters::SeriesKey,
    pub cpu: Option<CpuReading>,
    /// `(when, working set bytes)`.
    pub memory: Option<(Timestamp, i64)>,
}

/// A CPU measurement as the kubelet reports it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CpuReading {
    pub at: Timestamp,
    /// Cumulative core-seconds since the container started.
    pub cumulative_core_seconds: Option<f64>,
    /// The kubelet's own recent average (Summary API `usageNanoCores`).
    pub recent_cores: Option<f64>,
    /// Container start: a different start means the counter restarted.
    pub started: Option<Timestamp>,
}

/// One node's scrape, parsed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeReadings {
    pub containers: Vec<ContainerReading>,
    pub node_cpu: Option<CpuReading>,
    pub node_memory: Option<(Timestamp, i64)>,
}
