//! The service mesh's traffic between workloads, read from the Prometheus
//! that scrapes the mesh's proxies (issue 21): requests per second and p99
//! latency per calling and called workload, split by whether the two pods
//! shared a node, as the caller's and (where the mesh names the caller in
//! them) the callee's proxies measured it, for the placement advisor's
//! [`heatscaler_core::planner::placement::Observations`].
//!
//! - [`prometheus`]: the HTTP API's instant query.
//! - [`mapping`]: Istio's and Linkerd's metric and label names, and the PromQL.
//! - [`histogram`]: bucket rates merged by placement and their quantile.
//! - [`flows`]: series → flows, against the watched placement.
//!
//! An observer: it reads, never decides and never writes.

pub mod flows;
pub mod histogram;
pub mod mapping;
pub mod prometheus;

use heatscaler_core::model::Snapshot;

pub use flows::{MeshReading, Side};
pub use mapping::Mapping;
pub use prometheus::{Prometheus, QueryError, Sample};

use crate::config::MeshMetricsConfig;

/// One Prometheus and the mesh whose metrics it holds.
#[derive(Debug)]
pub struct MeshObserver {
    prometheus: Prometheus,
    mapping: Mapping,
    /// PromQL range, whole seconds (`300s`).
    window: String,
}

impl MeshObserver {
    pub fn new(config: &MeshMetricsConfig) -> Result<Self, QueryError> {
        Ok(Self {
            prometheus: Prometheus::new(config)?,
            mapping: Mapping::of(config.mesh, &config.pod_label),
            window: format!("{}s", config.window.get().as_secs().max(1)),
        })
    }

    /// Reads the last window's traffic and joins it with where the pods run
    /// in `snapshot` (the placement at the end of the window: a pod moved
    /// within it has its calls counted on its current node's side).
    pub async fn read(&self, snapshot: &Snapshot) -> Result<MeshReading, QueryError> {
        Ok(self.join(&self.fetch().await?, snapshot))
    }

    /// The window's series, before the placement is looked at: fetched
    /// without holding the cluster store.
    pub async fn fetch(&self) -> Result<MeshSeries, QueryError> {
        let requests = self.prometheus.query(&self.mapping.requests_query(&self.window)).await?;
        let buckets = self.prometheus.query(&self.mapping.buckets_query(&self.window)).await?;
        let server_buckets = match self.mapping.server_buckets_query(&self.window) {
            Some(query) => self.prometheus.query(&query).await?,
            None => Vec::new(),
        };
        Ok(MeshSeries { requests, buckets, server_buckets })
    }

    pub fn join(&self, series: &MeshSeries, snapshot: &Snapshot) -> MeshReading {
        flows::flows(&self.mapping, snapshot, &series.requests, &series.buckets, &series.server_buckets)
    }
}

/// One read's samples.
#[derive(Clone, Debug, Default)]
pub struct MeshSeries {
    pub requests: Vec<Sample>,
    pub buckets: Vec<Sample>,
    /// The callee's own reports' buckets (empty: the mesh has none per pair).
    pub server_buckets: Vec<Sample>,
}
