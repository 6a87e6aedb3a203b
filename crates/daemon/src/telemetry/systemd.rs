//! systemd integration for `Type=notify` units (`config/systemd/heatscaler.service`).
//!
//! * `READY=1` once the first sync with Kubernetes and Heat succeeded, so
//!   `systemctl start` and units ordered `After=heatscaler.service` wait for a
//!   daemon that actually works, not one that merely forked.
//! * `WATCHDOG=1` while — and only while — the main loop's heartbeat is
//!   recent. A timer that fed the watchdog unconditionally would keep a
//!   deadlocked daemon "healthy" forever; tying it to [`Health`] makes systemd
//!   restart a stuck loop (`WatchdogSec=` + `Restart=on-failure`).
//! * `STATUS=` one-liners for `systemctl status`, `RELOADING=1` on SIGHUP and
//!   `STOPPING=1` on shutdown.
//!
//! Outside systemd (`NOTIFY_SOCKET` unset: a terminal, a container) every call
//! is a no-op, so the daemon calls these unconditionally.

use std::time::Duration;

use sd_notify::NotifyState;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::Health;

/// Sends state changes to systemd's notification socket.
#[derive(Clone, Debug)]
pub struct Notifier {
    enabled: bool,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` as systemd set them.
    pub fn from_env() -> Self {
        Self { enabled: std::env::var_os("NOTIFY_SOCKET").is_some(), watchdog: sd_notify::watchdog_enabled() }
    }

    /// A notifier that never sends (for `simulate`, tests, or when the unit is not `Type=notify`).
    pub fn disabled() -> Self {
        Self { enabled: false, watchdog: None }
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// `WatchdogSec=` of the unit, when systemd enabled the watchdog for this process.
    pub fn watchdog_timeout(&self) -> Option<Duration> {
        self.watchdog.filter(|_| self.enabled)
    }

    /// Start-up is complete: the first sync succeeded.
    pub fn ready(&self, status: &str) {
        let status = one_line(status);
        self.send(&[NotifyState::Ready, NotifyState::Status(&status)]);
    }

    /// A line for `systemctl status`.
    pub fn status(&self, status: &str) {
        let status = one_line(status);
        self.send(&[NotifyState::Status(&status)]);
    }

    /// The configuration is being reloaded (SIGHUP); call [`Notifier::ready`] when done.
    pub fn reloading(&self) {
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.send(&[NotifyState::Reloading, now]),
            Err(e) => tracing::warn!(error = %e, "cannot read CLOCK_MONOTONIC for RELOADING=1"),
        }
    }

    /// Shutdown has begun.
    pub fn stopping(&self, status: &str) {
        let status = one_line(status);
        self.send(&[NotifyState::Stopping, NotifyState::Status(&status)]);
    }

    /// Feeds the systemd watchdog at half its timeout (as `sd_watchdog_enabled(3)`
    /// recommends) for as long as `health` reports the main loop alive. Returns
    /// `None` when the watchdog is not enabled for this process.
    pub fn spawn_watchdog(&self, health: Health) -> Option<JoinHandle<()>> {
        let timeout = self.watchdog_timeout()?;
        let period = (timeout / 2).max(Duration::from_millis(1));
        let notifier = self.clone();
        tracing::info!(
            watchdog_sec = timeout.as_secs_f64(),
            "feeding the systemd watchdog from the main loop heartbeat"
        );
        Some(tokio::spawn(async move { notifier.feed_watchdog(health, period).await }))
    }

    async fn feed_watchdog(self, health: Health, period: Duration) {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut feeding = true;
        loop {
            tick.tick().await;
            let l = health.liveness();
            if l.alive {
                if !feeding {
                    tracing::info!("main loop heartbeat is back; feeding the systemd watchdog again");
                    feeding = true;
                }
                self.send(&[NotifyState::Watchdog]);
            } else if feeding {
                let age = l.heartbeat_age.as_secs();
                tracing::error!(
                    heartbeat_age_s = age,
                    limit_s = l.timeout.as_secs(),
                    "main loop is stuck; no longer feeding the systemd watchdog, which will restart the service"
                );
                self.status(&format!("main loop stuck: no heartbeat for {age}s"));
                feeding = false;
            }
        }
    }

    fn send(&self, states: &[NotifyState]) {
        if !self.enabled {
            return;
        }
        if let Err(e) = sd_notify::notify(states) {
            // Not fatal: systemd times the start or the watchdog out and says so.
            tracing::warn!(error = %e, "cannot notify systemd");
        }
    }
}

/// sd_notify messages are newline-separated assignments: a newline in a status
/// would start a bogus assignment.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}
