//! Start-up options of a kubesim server.

use std::net::SocketAddr;
use std::time::Duration;

use crate::usage::UsageModel;

/// How the scheduler ranks feasible nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Scoring {
    /// Prefer the emptiest node (kube-scheduler's default `LeastAllocated`).
    #[default]
    LeastAllocated,
    /// Prefer the fullest node (bin packing, `MostAllocated`).
    MostAllocated,
}

#[derive(Clone, Debug)]
pub struct Options {
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Multiplies every delay kubesim imposes (pod start, grace periods,
    /// resize actuation, crash-loop back-off, PDB disrupted-pod timeout).
    /// 1.0 is real time; tests typically use 0.01–0.05.
    pub time_scale: f64,
    /// Time from binding to Running + Ready (before scaling).
    pub pod_start_delay: Duration,
    /// How long an accepted in-place resize stays `PodResizeInProgress` (before scaling).
    pub resize_actuation_delay: Duration,
    /// Changes retained per resource type for watches; older resourceVersions get 410 Gone.
    pub watch_history: usize,
    /// Interval of BOOKMARK events on watches that ask for them.
    pub bookmark_interval: Duration,
    /// Whether built-in components record Events (Scheduled, FailedScheduling, ...).
    pub record_events: bool,
    /// Events older than this are deleted, as the API server's event TTL does.
    pub event_ttl: Duration,
    pub scoring: Scoring,
    /// Usage of containers no usage model targets.
    pub default_usage: UsageModel,
    /// Reported by /version (gitVersion).
    pub kubernetes_version: String,
    /// How long a paginated list's continue token stays usable, then `410
    /// Expired` (etcd's compaction interval: 5 min). Scale harnesses on a
    /// loaded machine, where kubesim serves 300 pages slower than that,
    /// lengthen it.
    pub continue_token_lifetime: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            time_scale: 1.0,
            pod_start_delay: Duration::from_millis(500),
            resize_actuation_delay: Duration::from_millis(500),
            watch_history: 20_000,
            bookmark_interval: Duration::from_secs(5),
            record_events: true,
            event_ttl: Duration::from_secs(3600),
            scoring: Scoring::LeastAllocated,
            default_usage: UsageModel::constant(0, 0),
            kubernetes_version: "v1.35.0".to_string(),
            continue_token_lifetime: Duration::from_secs(300),
        }
    }
}

impl Options {
    /// Options suited to tests: every imposed delay 50× shorter, frequent bookmarks.
    pub fn fast() -> Self {
        Options { time_scale: 0.02, bookmark_interval: Duration::from_millis(500), ..Options::default() }
    }
}
