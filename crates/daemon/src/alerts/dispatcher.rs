//! Fans each scaling event out to a log line and to every sink that wants it,
//! without ever making the caller wait for a receiver.
//!
//! [`Dispatcher::dispatch`] is synchronous and does no I/O: it writes the log
//! line, then, per sink, filters (severity, audience, `accepts`), deduplicates
//! and pushes onto the sink's bounded queue — a few short mutex sections. Each
//! sink has its own worker task, so a hanging receiver only ever delays its
//! own notifications, and when its queue is full the oldest are dropped and
//! counted.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Url;
use secrecy::ExposeSecret;
use tokio::task::JoinHandle;

use super::alertmanager::AlertmanagerSink;
use super::dedup::Deduplicator;
use super::delivery::{RetryPolicy, Worker};
use super::kube_events::KubeEventSink;
use super::queue::{DropOldestQueue, Pushed};
use super::slack::SlackSink;
use super::webhook::WebhookSink;
use super::{Audience, EventSink, ScalingEvent, Severity};
use crate::config::{AlertsConfig, SecretError, SinkConfig, SinkKind};
use crate::telemetry::{AlertOutcome, Metrics};

/// The Kubernetes Events sink's name in logs and metrics.
pub const KUBERNETES_EVENTS_SINK: &str = "kubernetes-events";

/// Per-attempt timeout of the Kubernetes Events sink (webhooks have `timeout`).
const KUBERNETES_EVENTS_TIMEOUT: Duration = Duration::from_secs(10);

/// How one sink is fed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkPolicy {
    /// In logs and the `sink` metric label.
    pub name: String,
    pub min_severity: Severity,
    /// Also send [`Audience::Details`] reasons.
    pub include_details: bool,
    pub queue_capacity: usize,
    /// Same reason and object are sent at most once per window (zero: no deduplication).
    pub dedup_window: Duration,
    /// Per delivery attempt.
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

impl SinkPolicy {
    fn wants(&self, e: &ScalingEvent) -> bool {
        e.severity >= self.min_severity && (self.include_details || e.reason.audience() == Audience::Operators)
    }
}

/// A sink from the configuration could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    #[error("alerts.sinks[{index}] ({name}): {source}")]
    Secret { index: usize, name: String, source: SecretError },
    #[error("alerts.sinks[{index}] ({name}): {problem}")]
    Sink { index: usize, name: String, problem: String },
}

/// Cheap to clone; all clones feed the same sinks.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

struct Inner {
    sinks: Vec<Slot>,
    /// The log line of a repeat within the window drops to DEBUG, so a pod
    /// that stays pending does not print a line per loop at INFO.
    log_dedup: Mutex<Deduplicator>,
    metrics: Arc<Metrics>,
}

struct Slot {
    policy: SinkPolicy,
    sink: Arc<dyn EventSink>,
    dedup: Mutex<Deduplicator>,
    queue: Arc<DropOldestQueue<Arc<ScalingEvent>>>,
    busy: Arc<AtomicBool>,
    dropped: AtomicU64,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher").field("sinks", &self.sink_names()).finish()
    }
}

/// What [`Dispatcher::shutdown`] could not deliver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Notifications abandoned (queued or in flight) when the grace period ended.
    pub dropped: u64,
}

impl Dispatcher {
    /// Builds the sinks of `alerts` (resolving their secrets now, so a missing
    /// one fails start-up or reload, not the first alert) plus the Kubernetes
    /// Events sink when `alerts.kubernetes-events` is on and one is given.
    /// Spawns one worker per sink: call it inside the Tokio runtime.
    pub fn from_config(
        alerts: &AlertsConfig,
        kube_events: Option<KubeEventSink>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, AlertsError> {
        let retry = RetryPolicy {
            initial: alerts.retry_initial.get(),
            max: alerts.retry_max.get(),
            max_attempts: alerts.max_attempts.max(1),
        };
        let queue_capacity = usize::try_from(alerts.queue_capacity).unwrap_or(usize::MAX).max(1);
        let dedup_window = alerts.dedup_window.get();
        let mut sinks: Vec<(Arc<dyn EventSink>, SinkPolicy)> = Vec::new();
        if let Some(k) = kube_events.filter(|_| alerts.kubernetes_events) {
            let policy = SinkPolicy {
                name: KUBERNETES_EVENTS_SINK.into(),
                min_severity: Severity::Info,
                include_details: true,
                queue_capacity,
                dedup_window,
                timeout: KUBERNETES_EVENTS_TIMEOUT,
                retry,
            };
            sinks.push((Arc::new(k), policy));
        }
        for (index, cfg) in alerts.sinks.iter().enumerate() {
            let name = cfg.effective_name(index);
            let sink = build_sink(cfg, dedup_window).map_err(|e| e.at(index, &name))?;
            let policy = SinkPolicy {
                name,
                min_severity: cfg.effective_min_severity(),
                include_details: cfg.include_details,
                queue_capacity,
                dedup_window,
                timeout: cfg.timeout.get(),
                retry,
            };
            sinks.push((sink, policy));
        }
        Ok(Self::with_sinks(sinks, dedup_window, metrics))
    }

    /// A dispatcher over given sinks (custom sinks, tests). Spawns one worker per sink.
    pub fn with_sinks(
        sinks: Vec<(Arc<dyn EventSink>, SinkPolicy)>,
        log_dedup_window: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        let slots = sinks
            .into_iter()
            .map(|(sink, policy)| {
                metrics.register_alert_sink(&policy.name);
                let queue = Arc::new(DropOldestQueue::new(policy.queue_capacity));
                let busy = Arc::new(AtomicBool::new(false));
                let worker = Worker {
                    name: policy.name.clone(),
                    sink: sink.clone(),
                    queue: queue.clone(),
                    timeout: policy.timeout,
                    retry: policy.retry,
                    metrics: metrics.clone(),
                    busy: busy.clone(),
                };
                Slot {
                    dedup: Mutex::new(Deduplicator::new(policy.dedup_window)),
                    policy,
                    sink,
                    queue,
                    busy,
                    dropped: AtomicU64::new(0),
                    worker: Mutex::new(Some(tokio::spawn(worker.run()))),
                }
            })
            .collect();
        Self {
            inner: Arc::new(Inner {
                sinks: slots,
                log_dedup: Mutex::new(Deduplicator::new(log_dedup_window)),
                metrics,
            }),
        }
    }

    pub fn sink_names(&self) -> Vec<&str> {
        self.inner.sinks.iter().map(|s| s.policy.name.as_str()).collect()
    }

    /// Logs the event and queues it for every sink that wants it. Never waits
    /// on the network; safe to call from the control loop and from sync code.
    pub fn dispatch(&self, event: ScalingEvent) {
        let now = Instant::now();
        let key = event.dedup_key();
        let first = self.inner.log_dedup.lock().expect("log dedup lock").admit(&key, now);
        log(&event, first);

        let event = Arc::new(event);
        let metrics = &self.inner.metrics;
        for slot in &self.inner.sinks {
            let name = slot.policy.name.as_str();
            if !slot.policy.wants(&event) || !slot.sink.accepts(&event) {
                continue;
            }
            if !slot.dedup.lock().expect("sink dedup lock").admit(&key, now) {
                metrics.record_alert(name, AlertOutcome::Deduplicated);
                continue;
            }
            match slot.queue.push(event.clone()) {
                Pushed::Queued => {}
                Pushed::DroppedOldest(old) => {
                    metrics.record_alert(name, AlertOutcome::Dropped);
                    // Logged at 1, 2, 4, 8... drops: a dead receiver must not flood the log too.
                    let dropped = slot.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                    if dropped.is_power_of_two() {
                        tracing::warn!(
                            sink = name, dropped_so_far = dropped, dropped_reason = %old.reason,
                            capacity = slot.policy.queue_capacity,
                            "alert queue full: dropping the oldest notifications"
                        );
                    }
                }
                Pushed::Closed(_) => metrics.record_alert(name, AlertOutcome::Dropped),
            }
            metrics.set_alert_queue_length(name, slot.queue.len());
        }
    }

    /// Stops accepting notifications and lets the workers deliver what is
    /// queued for at most `grace`; whatever is left then is dropped and counted.
    pub async fn shutdown(&self, grace: Duration) -> ShutdownReport {
        for slot in &self.inner.sinks {
            slot.queue.close();
        }
        let deadline = tokio::time::Instant::now() + grace;
        let mut report = ShutdownReport::default();
        for slot in &self.inner.sinks {
            let Some(mut handle) = slot.worker.lock().expect("worker lock").take() else { continue };
            if tokio::time::timeout_at(deadline, &mut handle).await.is_err() {
                handle.abort();
                let _ = handle.await;
                let left = slot.queue.take_all().len() as u64 + u64::from(slot.busy.load(Ordering::Relaxed));
                self.inner.metrics.record_alerts(&slot.policy.name, AlertOutcome::Dropped, left);
                self.inner.metrics.set_alert_queue_length(&slot.policy.name, 0);
                if left > 0 {
                    tracing::warn!(sink = %slot.policy.name, dropped = left, "undelivered notifications at shutdown");
                }
                report.dropped += left;
            }
        }
        report
    }
}

struct BuildError(Result<SecretError, String>);

impl BuildError {
    fn at(self, index: usize, name: &str) -> AlertsError {
        let name = name.to_string();
        match self.0 {
            Ok(source) => AlertsError::Secret { index, name, source },
            Err(problem) => AlertsError::Sink { index, name, problem },
        }
    }
}

fn build_sink(cfg: &SinkConfig, dedup_window: Duration) -> Result<Arc<dyn EventSink>, BuildError> {
    let secret = |s: &crate::config::SecretSource| s.resolve().map_err(|e| BuildError(Ok(e)));
    // A URL from a secret is never quoted in an error; a plain one may be.
    let url = match (&cfg.url, &cfg.url_secret) {
        (Some(u), _) => Url::parse(u).map_err(|e| BuildError(Err(format!("url `{u}` is invalid: {e}"))))?,
        (None, Some(s)) => Url::parse(secret(s)?.expose_secret())
            .map_err(|e| BuildError(Err(format!("url-secret is not a valid URL: {e}"))))?,
        (None, None) => return Err(BuildError(Err("needs `url` or `url-secret`".into()))),
    };
    Ok(match cfg.kind {
        SinkKind::Alertmanager => Arc::new(AlertmanagerSink::new(url, dedup_window)),
        SinkKind::Webhook => {
            let key = cfg.hmac_secret.as_ref().map(secret).transpose()?;
            Arc::new(WebhookSink::new(url, key))
        }
        SinkKind::Slack => {
            let url = secrecy::SecretString::from(url.to_string());
            Arc::new(SlackSink::new(&url).map_err(|e| BuildError(Err(e.to_string())))?)
        }
    })
}

/// The structured log line every event gets.
fn log(e: &ScalingEvent, first_in_window: bool) {
    let fields = serde_json::to_string(&e.fields).unwrap_or_default();
    let (kind, namespace, name) = match &e.object {
        Some(o) => (Some(o.kind.as_str()), o.namespace.as_deref(), Some(o.name.as_str())),
        None => (None, None, None),
    };
    macro_rules! emit {
        ($level:expr) => {
            tracing::event!(
                $level,
                reason = e.reason.as_str(),
                severity = e.severity.as_str(),
                group = e.group.as_deref(),
                object_kind = kind,
                namespace,
                name,
                fields = %fields,
                event_id = %e.id,
                repeat = !first_in_window,
                "{}: {}", e.target(), e.message
            )
        };
    }
    match (first_in_window, e.severity) {
        (false, _) => emit!(tracing::Level::DEBUG),
        (true, Severity::Info) => emit!(tracing::Level::INFO),
        (true, Severity::Warning) => emit!(tracing::Level::WARN),
        (true, Severity::Critical) => emit!(tracing::Level::ERROR),
    }
}
