//! While the API server fails, Kubernetes Events are dropped, not retried.
//!
//! Every Event is one request, and the dispatcher retries each failed one
//! with its own back-off, starting afresh for the next: during an API server
//! outage the Events sink kept sending requests to it at the pace of the
//! retry policy, on top of the watches' relists (the chaos soak counted them
//! among the requests reaching a killed API server). The other writes stop
//! while the API server fails (no action while a watch fails); Events do the
//! same here, on their own evidence: after a failure that retrying could help
//! (5xx, 429, no connection), Events are dropped without a request until a
//! probe is due — one Event is tried after a jittered back-off growing from
//! [`PROBE_INITIAL`] to [`PROBE_MAX`] — and the first success closes the gate.
//! Said once when the gate opens and once when it closes (with the count of
//! dropped Events); each drop is counted as `dropped` in
//! `heatscaler_alert_notifications_total`. An Event dropped is not lost news:
//! the same scaling event went to the log and to every webhook sink.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// First wait, after the failure that opened the gate, before a probe.
pub const PROBE_INITIAL: Duration = Duration::from_secs(5);
/// Longest wait between probes.
pub const PROBE_MAX: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
pub struct ApiGate(Mutex<Option<Open>>);

#[derive(Debug)]
struct Open {
    since: Instant,
    /// No request before this (the next probe).
    until: Instant,
    delays: ExponentialBackoff,
    dropped: u64,
}

impl ApiGate {
    /// Whether an Event may be sent now: the gate is closed, or it is open
    /// and a probe is due (the probe's own wait is set at once, so nothing
    /// else goes while it is in flight). A refusal counts as a drop.
    pub fn admit(&self, now: Instant) -> bool {
        let mut gate = self.0.lock().expect("api gate lock");
        let Some(open) = gate.as_mut() else { return true };
        if now < open.until {
            open.dropped += 1;
            return false;
        }
        open.until = now + open.delays.next().unwrap_or(PROBE_MAX);
        true
    }

    /// A request failed in a way retrying could help: the API server is failing.
    pub fn failed(&self, now: Instant, error: &str) {
        let mut gate = self.0.lock().expect("api gate lock");
        if let Some(open) = gate.as_mut() {
            open.dropped += 1;
            return;
        }
        let mut delays = ExponentialBuilder::default()
            .with_min_delay(PROBE_INITIAL)
            .with_max_delay(PROBE_MAX)
            .without_max_times()
            .with_jitter()
            .build();
        let first = delays.next().unwrap_or(PROBE_INITIAL);
        tracing::warn!(
            %error,
            probe_in = ?first,
            "the API server is failing: Kubernetes Events are dropped, not retried, until it answers again"
        );
        *gate = Some(Open { since: now, until: now + first, delays, dropped: 1 });
    }

    /// A request succeeded: the gate closes.
    pub fn succeeded(&self, now: Instant) {
        if let Some(open) = self.0.lock().expect("api gate lock").take() {
            let lasted = now.saturating_duration_since(open.since);
            tracing::info!(
                dropped = open.dropped,
                ?lasted,
                "the API server answers again: Kubernetes Events are written again"
            );
        }
    }

    /// Events dropped in the current outage (0 when the gate is closed).
    #[cfg(test)]
    pub fn dropped(&self) -> u64 {
        self.0.lock().expect("api gate lock").as_ref().map_or(0, |o| o.dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_holds_every_request_until_a_growing_probe() {
        let gate = ApiGate::default();
        let t0 = Instant::now();
        assert!(gate.admit(t0), "closed: everything goes");
        gate.failed(t0, "503");
        // A minute of Events, one every 100 ms: only the probes go.
        let mut probes = Vec::new();
        for i in 1..=600 {
            let now = t0 + Duration::from_millis(100 * i);
            if gate.admit(now) {
                probes.push(now - t0);
                gate.failed(now, "503");
            }
        }
        assert!((2..=6).contains(&probes.len()), "probes in a minute: {probes:?}");
        assert!(probes[0] >= PROBE_INITIAL / 2, "{probes:?}");
        assert!(probes.windows(2).all(|w| w[1] - w[0] >= PROBE_INITIAL / 2), "{probes:?}");
        assert_eq!(gate.dropped(), 601, "every Event of the outage is counted as dropped");
        // The API server answers the next probe: everything goes again.
        let later = t0 + Duration::from_secs(200);
        assert!(gate.admit(later));
        gate.succeeded(later);
        assert!(gate.admit(later) && gate.admit(later));
        assert_eq!(gate.dropped(), 0);
    }
}
