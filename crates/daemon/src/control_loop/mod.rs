//! `heatscaler run`: the control loop.
//!
//! ```text
//! start: telemetry server, Kubernetes watches, Heat session + poller, alert sinks
//!        wait for every watch's first list and one read of every group
//!        → READY=1 (systemd), /readyz ready
//! loop:  a change (debounced by daemon.debounce) or daemon.resync-interval
//!        → plan (pure) → report, publish the status ConfigMap → execute the
//!        actions (all of it only if this replica leads)
//! SIGHUP: reload the configuration; an invalid file is rejected and alerted
//! SIGTERM: stop planning, let in-flight actions finish (bounded), flush
//!        alerts, STOPPING=1, exit 0 — all within the stop timeout
//! ```
//!
//! Everything the loop must not forget lives on the Kubernetes objects (the
//! removal record on each node) or in Heat; the planner's in-process memory
//! may be lost at any time, so a crash at any point is followed by a restart
//! that continues or rolls back what was in progress.

mod control;
pub mod election;
mod kube_client;
pub mod leadership;
pub mod mesh;
mod outage;
mod parts;
pub mod planning;
pub mod pod_level;
mod reporting;
mod signals;
pub mod status;
mod verdicts;

use std::path::PathBuf;
use std::time::Duration;

pub use control::run;
pub use election::LeaseGate;
pub use kube_client::client as kube_client;
pub use leadership::{AlwaysLeader, LeaderGate};
pub use planning::{Beside, Planned, Planning};

use crate::config::Config;
use crate::telemetry::Notifier;

/// How `heatscaler run` was asked to run.
pub struct RunOptions {
    /// Re-read on SIGHUP.
    pub config_path: PathBuf,
    /// The configuration as loaded at start.
    pub config: Config,
    /// `--dry-run`: on top of `daemon.dry-run` (either one makes it a dry run).
    pub dry_run: bool,
    /// From SIGTERM to exit, everything included.
    pub stop_timeout: Duration,
    pub notifier: Notifier,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("Kubernetes: {0}")]
    Kubernetes(String),
    #[error(transparent)]
    Telemetry(#[from] crate::telemetry::TelemetryError),
    #[error(transparent)]
    AdmissionWebhook(#[from] crate::admission::WebhookError),
    #[error(transparent)]
    Alerts(#[from] crate::alerts::AlertsError),
    #[error(transparent)]
    Cloud(#[from] crate::cloud::CloudError),
    #[error("mesh-metrics: {0}")]
    Mesh(#[from] crate::observe::mesh::QueryError),
    #[error("node groups are configured but there is no openstack section")]
    NoOpenStack,
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}
