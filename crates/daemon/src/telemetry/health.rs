//! Liveness and readiness, as the daemon reports them and as `/healthz`,
//! `/readyz` and the systemd watchdog read them.
//!
//! Liveness means "the main loop still turns": the loop calls
//! [`Health::heartbeat`] every iteration — also while it waits as a standby for
//! the leader lease — and a heartbeat older than the timeout means the loop is
//! stuck, which only a restart fixes.
//!
//! Readiness means "this daemon has seen the world once": the first successful
//! sync with Kubernetes (watch caches filled) and, when node groups are
//! configured, with Heat. It does *not* depend on holding the leader lease: a
//! synced standby is healthy and ready to take over, and making it unready would
//! stall Deployment rollouts (a rollout waits for new replicas to become ready,
//! and a standby never would). Leadership is reported in the body and in the
//! `heatscaler_leader` metric instead. Once ready, a replica stays ready while
//! its loop is alive: a later API outage is the loop's to retry and report, not
//! a reason for a restart.
//!
//! When the daemon registers its own admission webhook, readiness also waits
//! until the registration read back from the API server trusts this
//! replica's CA ([`Health::await_webhook_registration`]). The Deployment's
//! readinessProbe is what puts a replica behind the webhook's Service: a
//! replica ready before its CA is in the `caBundle` would get the API
//! server's calls, fail their TLS handshake, and every pod sent to it would
//! be admitted unmutated (`failurePolicy: Ignore`). A renewed certificate is
//! served only once its CA is registered (`admission::upkeep`), so the
//! condition, once met, stays met.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How [`Health`] judges the daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthOptions {
    /// A heartbeat older than this means the main loop is stuck. Choose it well
    /// above the longest legitimate loop iteration (a few resync intervals).
    pub heartbeat_timeout: Duration,
    /// Whether readiness waits for a Heat sync (false when no node group is configured).
    pub heat_required: bool,
}

impl Default for HealthOptions {
    fn default() -> Self {
        Self { heartbeat_timeout: Duration::from_secs(120), heat_required: true }
    }
}

/// A cheap, cloneable handle shared by the main loop (writer) and the HTTP
/// server and watchdog (readers). Lock-free but for the list of degraded
/// parts, whose lock is held only to copy it: reading never waits on the loop.
#[derive(Clone, Debug)]
pub struct Health {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    options: HealthOptions,
    started: Instant,
    /// Milliseconds after `started` of the latest heartbeat.
    last_beat_ms: AtomicU64,
    kubernetes_synced: AtomicBool,
    heat_synced: AtomicBool,
    leadership: AtomicU8,
    webhook: AtomicU8,
    /// Lasting problems that do not make the daemon unready (one group's
    /// Heat stack unreadable): shown in the `/readyz` body. A lock held only
    /// to copy a few lines.
    degraded: std::sync::Mutex<Vec<String>>,
}

/// Whether this replica holds the leader lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leadership {
    /// Leader election is disabled: this daemon always acts.
    NotElected,
    Leader,
    Standby,
}

impl Leadership {
    fn to_u8(self) -> u8 {
        match self {
            Leadership::NotElected => 0,
            Leadership::Leader => 1,
            Leadership::Standby => 2,
        }
    }
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Leadership::Leader,
            2 => Leadership::Standby,
            _ => Leadership::NotElected,
        }
    }
    pub const fn as_str(self) -> &'static str {
        match self {
            Leadership::NotElected => "leader election disabled",
            Leadership::Leader => "leader",
            Leadership::Standby => "standby",
        }
    }
}

/// Whether readiness waits for the admission webhook's registration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WebhookRegistration {
    /// The daemon does not register a webhook (none configured, the
    /// operator registers it, or a dry run): nothing to wait for.
    NotRegisteredHere = 0,
    /// Registering: the API server does not yet trust this replica's CA.
    Pending = 1,
    /// The registration read back holds the CA of the certificate served.
    Trusted = 2,
}

impl WebhookRegistration {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Pending,
            2 => Self::Trusted,
            _ => Self::NotRegisteredHere,
        }
    }
}

/// The answer to "is the main loop alive?".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Liveness {
    pub alive: bool,
    /// Age of the latest heartbeat (of start-up before the first one).
    pub heartbeat_age: Duration,
    pub timeout: Duration,
}

/// The answer to "has this daemon synced and is it alive?".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readiness {
    pub ready: bool,
    /// What readiness still waits for, in words for the `/readyz` body.
    pub waiting_for: Vec<&'static str>,
    pub leadership: Leadership,
    /// What works only in part, in words (`node group gpu: ...`).
    pub degraded: Vec<String>,
}

impl Health {
    pub fn new(options: HealthOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                options,
                started: Instant::now(),
                last_beat_ms: AtomicU64::new(0),
                kubernetes_synced: AtomicBool::new(false),
                heat_synced: AtomicBool::new(false),
                leadership: AtomicU8::new(Leadership::NotElected.to_u8()),
                webhook: AtomicU8::new(WebhookRegistration::NotRegisteredHere as u8),
                degraded: std::sync::Mutex::new(Vec::new()),
            }),
        }
    }

    /// The main loop is alive. Call it once per iteration, and from any wait
    /// that is part of normal operation (standby, backoff).
    pub fn heartbeat(&self) {
        let ms = u64::try_from(self.inner.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.inner.last_beat_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// The Kubernetes watch caches have completed their first list.
    pub fn mark_kubernetes_synced(&self) {
        self.inner.kubernetes_synced.store(true, Ordering::Relaxed);
    }

    /// The Heat stacks of every node group have been read once.
    pub fn mark_heat_synced(&self) {
        self.inner.heat_synced.store(true, Ordering::Relaxed);
    }

    /// This replica registers its admission webhook: not ready until
    /// [`Self::mark_webhook_registered`].
    pub fn await_webhook_registration(&self) {
        let _ = self.inner.webhook.compare_exchange(
            WebhookRegistration::NotRegisteredHere as u8,
            WebhookRegistration::Pending as u8,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// The registration read back from the API server trusts the CA of the
    /// certificate this replica serves.
    pub fn mark_webhook_registered(&self) {
        self.inner.webhook.store(WebhookRegistration::Trusted as u8, Ordering::Relaxed);
    }

    /// Replaces the list of lasting partial failures.
    pub fn set_degraded(&self, degraded: Vec<String>) {
        *self.inner.degraded.lock().expect("degraded lock") = degraded;
    }

    pub fn set_leadership(&self, leadership: Leadership) {
        self.inner.leadership.store(leadership.to_u8(), Ordering::Relaxed);
    }

    pub fn leadership(&self) -> Leadership {
        Leadership::from_u8(self.inner.leadership.load(Ordering::Relaxed))
    }

    pub fn liveness(&self) -> Liveness {
        self.liveness_at(Instant::now())
    }

    /// Liveness as of `now` (a monotonic instant, for tests).
    pub fn liveness_at(&self, now: Instant) -> Liveness {
        let beat = self.inner.started + Duration::from_millis(self.inner.last_beat_ms.load(Ordering::Relaxed));
        let age = now.saturating_duration_since(beat);
        let timeout = self.inner.options.heartbeat_timeout;
        Liveness { alive: age <= timeout, heartbeat_age: age, timeout }
    }

    pub fn readiness(&self) -> Readiness {
        self.readiness_at(Instant::now())
    }

    pub fn readiness_at(&self, now: Instant) -> Readiness {
        let mut waiting_for = Vec::new();
        if !self.inner.kubernetes_synced.load(Ordering::Relaxed) {
            waiting_for.push("first Kubernetes sync");
        }
        if self.inner.options.heat_required && !self.inner.heat_synced.load(Ordering::Relaxed) {
            waiting_for.push("first Heat sync");
        }
        if WebhookRegistration::from_u8(self.inner.webhook.load(Ordering::Relaxed)) == WebhookRegistration::Pending {
            waiting_for.push("the admission webhook's registration to trust this replica's CA");
        }
        if !self.liveness_at(now).alive {
            waiting_for.push("a main loop heartbeat (the loop is stuck)");
        }
        let degraded = self.inner.degraded.lock().expect("degraded lock").clone();
        Readiness { ready: waiting_for.is_empty(), waiting_for, leadership: self.leadership(), degraded }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(heat_required: bool) -> Health {
        Health::new(HealthOptions { heartbeat_timeout: Duration::from_secs(30), heat_required })
    }

    #[test]
    fn start_up_counts_as_a_heartbeat_then_a_silent_loop_dies() {
        let h = health(true);
        let t0 = h.inner.started;
        assert!(h.liveness_at(t0 + Duration::from_secs(30)).alive);
        let stale = h.liveness_at(t0 + Duration::from_secs(31));
        assert!(!stale.alive);
        assert_eq!(stale.heartbeat_age, Duration::from_secs(31));
    }

    #[test]
    fn a_heartbeat_renews_liveness() {
        let h = health(true);
        h.heartbeat();
        let beat = Instant::now();
        assert!(h.liveness_at(beat + Duration::from_secs(29)).alive);
        assert!(!h.liveness_at(beat + Duration::from_secs(32)).alive);
    }

    #[test]
    fn ready_needs_both_syncs_unless_heat_is_not_used() {
        let h = health(true);
        let now = Instant::now();
        assert_eq!(h.readiness_at(now).waiting_for, ["first Kubernetes sync", "first Heat sync"]);
        h.mark_kubernetes_synced();
        assert_eq!(h.readiness_at(now).waiting_for, ["first Heat sync"]);
        h.mark_heat_synced();
        assert!(h.readiness_at(now).ready);

        let pods_only = health(false);
        pods_only.mark_kubernetes_synced();
        assert!(pods_only.readiness_at(now).ready);
    }

    #[test]
    fn a_stuck_loop_is_not_ready_and_standby_is() {
        let h = health(false);
        h.mark_kubernetes_synced();
        h.set_leadership(Leadership::Standby);
        let now = h.inner.started;
        let r = h.readiness_at(now);
        assert!(r.ready, "a synced standby is ready");
        assert_eq!(r.leadership, Leadership::Standby);
        assert!(!h.readiness_at(now + Duration::from_secs(60)).ready);
    }

    #[test]
    fn a_replica_registering_its_webhook_is_ready_only_once_the_registration_trusts_its_ca() {
        let now = Instant::now();
        let h = health(false);
        h.await_webhook_registration();
        h.mark_kubernetes_synced();
        let r = h.readiness_at(now);
        assert!(!r.ready, "synced, but the API server would fail TLS to it");
        assert_eq!(r.waiting_for, ["the admission webhook's registration to trust this replica's CA"]);
        h.mark_webhook_registered();
        assert!(h.readiness_at(now).ready);
        // Asked again (a restart of the webhook's upkeep): once trusted, it stays so.
        h.await_webhook_registration();
        assert!(h.readiness_at(now).ready);

        // Trusted before the sync: still waits for the sync.
        let early = health(false);
        early.await_webhook_registration();
        early.mark_webhook_registered();
        assert_eq!(early.readiness_at(now).waiting_for, ["first Kubernetes sync"]);

        // A daemon that registers nothing (dry run, operator's registration) does not wait.
        let unregistered = health(false);
        unregistered.mark_kubernetes_synced();
        assert!(unregistered.readiness_at(now).ready);
    }
}
