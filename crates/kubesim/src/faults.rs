//! Fault injection: failing a share of requests (5xx, 429 with Retry-After),
//! added latency, and dropping every open watch stream at once.

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::error::ApiError;

/// One fault rule. A request matches when its path starts with `path_prefix`
/// (if set) and its verb is in `verbs` (if non-empty); of the matching
/// requests exactly `share` (0..=1) are affected, spread evenly and
/// deterministically (share 0.5 affects every second one).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRule {
    #[serde(default = "one")]
    pub share: f64,
    /// HTTP status to answer with (500, 503, 429, ...); none for latency-only rules.
    #[serde(default)]
    pub status: Option<u16>,
    /// Seconds for `Retry-After` (and `details.retryAfterSeconds`).
    #[serde(default)]
    pub retry_after_seconds: Option<u64>,
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// Kubernetes verbs: get, list, watch, create, update, patch, delete, deletecollection.
    #[serde(default)]
    pub verbs: Vec<String>,
    /// Delay added before answering (or failing) an affected request.
    #[serde(default, with = "millis")]
    pub latency: Duration,
    /// Stop affecting requests after this many.
    #[serde(default)]
    pub max_count: Option<u64>,
}

fn one() -> f64 {
    1.0
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

impl FaultRule {
    /// Fail `share` of all requests with `status`.
    pub fn error(status: u16, share: f64) -> FaultRule {
        FaultRule {
            share,
            status: Some(status),
            retry_after_seconds: None,
            path_prefix: None,
            verbs: vec![],
            latency: Duration::ZERO,
            max_count: None,
        }
    }

    /// Answer `share` of requests with 429 Too Many Requests and a Retry-After.
    pub fn throttle(share: f64, retry_after_seconds: u64) -> FaultRule {
        FaultRule { retry_after_seconds: Some(retry_after_seconds), ..FaultRule::error(429, share) }
    }

    /// Delay every matching request.
    pub fn latency(latency: Duration) -> FaultRule {
        FaultRule { status: None, latency, ..FaultRule::error(0, 1.0) }
    }

    pub fn on_path(mut self, prefix: &str) -> FaultRule {
        self.path_prefix = Some(prefix.to_string());
        self
    }

    pub fn on_verbs(mut self, verbs: &[&str]) -> FaultRule {
        self.verbs = verbs.iter().map(|v| v.to_string()).collect();
        self
    }

    pub fn times(mut self, count: u64) -> FaultRule {
        self.max_count = Some(count);
        self
    }
}

struct Active {
    id: u64,
    rule: FaultRule,
    matched: u64,
    affected: u64,
    /// When each affected request arrived, for tests of clients' back-off.
    hits: Vec<std::time::Instant>,
}

/// What to do with one request.
#[derive(Default)]
pub struct Decision {
    pub delay: Duration,
    pub error: Option<ApiError>,
}

pub struct Faults {
    rules: Mutex<(u64, Vec<Active>)>,
    drop_watches: watch::Sender<u64>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults { rules: Mutex::new((0, Vec::new())), drop_watches: watch::channel(0).0 }
    }
}

impl Faults {
    pub fn add(&self, rule: FaultRule) -> u64 {
        let mut guard = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        guard.0 += 1;
        let id = guard.0;
        guard.1.push(Active { id, rule, matched: 0, affected: 0, hits: Vec::new() });
        id
    }

    pub fn remove(&self, id: u64) -> bool {
        let mut guard = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        let before = guard.1.len();
        guard.1.retain(|a| a.id != id);
        guard.1.len() != before
    }

    /// When each request rule `id` affected arrived (empty for an unknown rule).
    pub fn hits(&self, id: u64) -> Vec<std::time::Instant> {
        let guard = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        guard.1.iter().find(|a| a.id == id).map(|a| a.hits.clone()).unwrap_or_default()
    }

    pub fn clear(&self) {
        self.rules.lock().unwrap_or_else(|e| e.into_inner()).1.clear();
    }

    /// Breaks every open watch connection now (clients see the stream end
    /// abruptly and must re-watch, or relist).
    pub fn drop_watches(&self) {
        self.drop_watches.send_modify(|n| *n += 1);
    }

    pub fn watch_drops(&self) -> watch::Receiver<u64> {
        self.drop_watches.subscribe()
    }

    pub fn decide(&self, verb: &str, path: &str) -> Decision {
        let mut guard = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        let mut decision = Decision::default();
        for active in guard.1.iter_mut() {
            let rule = &active.rule;
            if rule.path_prefix.as_deref().is_some_and(|p| !path.starts_with(p))
                || (!rule.verbs.is_empty() && !rule.verbs.iter().any(|v| v == verb))
                || rule.max_count.is_some_and(|m| active.affected >= m)
            {
                continue;
            }
            let n = active.matched as f64;
            active.matched += 1;
            let share = rule.share.clamp(0.0, 1.0);
            if ((n + 1.0) * share).floor() <= (n * share).floor() {
                continue;
            }
            active.affected += 1;
            active.hits.push(std::time::Instant::now());
            decision.delay += rule.latency;
            if decision.error.is_none()
                && let Some(status) = rule.status
            {
                decision.error = Some(injected_error(status, rule.retry_after_seconds));
            }
        }
        decision
    }
}

fn injected_error(status: u16, retry_after: Option<u64>) -> ApiError {
    match status {
        429 => ApiError::too_many_requests("Too many requests, please try again later.", retry_after),
        503 => ApiError::service_unavailable("kubesim: injected fault: service unavailable", retry_after),
        504 => ApiError::new(
            504,
            "Timeout",
            "kubesim: injected fault: the server was unable to return a response in the time allotted",
        ),
        500 => {
            let mut e = ApiError::internal("kubesim: injected fault");
            e.retry_after = retry_after;
            e
        }
        other => {
            let mut e = ApiError::new(other, "InternalError", format!("kubesim: injected fault ({other})"));
            e.retry_after = retry_after;
            e
        }
    }
}
