//! What heatscaler tells the machines that watch it: Prometheus metrics, the
//! `/healthz` and `/readyz` probes, and systemd's readiness and watchdog.
//!
//! The daemon owns one [`Metrics`] (behind an `Arc`) and one [`Health`], updates
//! them from its loop, and hands clones to [`TelemetryServer`] and
//! [`Notifier::spawn_watchdog`], which only read.

mod allocator;
mod health;
mod metrics;
mod operations;
mod outcomes;
mod server;
mod systemd;

pub use allocator::{AllocatorSample, spawn_sampler as spawn_allocator_sampler};
pub use health::{Health, HealthOptions, Leadership, Liveness, Readiness};
pub use metrics::Metrics;
pub use operations::{HeatOperation, KubeResource, KubeVerb};
pub use outcomes::{
    AdmissionOutcome, AlertOutcome, DrainOutcome, EvictionPurpose, GroupSizes, RecommendationValues, ResizeOutcome,
    ResourceName, ScaleUpFailure,
};
pub use server::{OPENMETRICS_CONTENT_TYPE, TelemetryError, TelemetryServer};
pub use systemd::Notifier;
