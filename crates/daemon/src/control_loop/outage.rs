//! Lasting OpenStack failures: a group whose Heat reads (Keystone included)
//! have failed for longer than `openstack.failure-alert-after` is news for an
//! operator — one critical `OpenStackFailing` alert through every sink when it
//! starts, the `heatscaler_openstack_failing{group,reason}` gauge while it
//! lasts, a `degraded:` line in `/readyz` — and no longer holds the other
//! groups back at start-up. WARN lines and an error counter alone were
//! silence. A group that reads again is logged and cleared.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::alerts::{Dispatcher, ScalingEvent};
use crate::observe::Failing;
use crate::telemetry::{Health, Metrics};

#[derive(Debug, Default)]
pub struct OutageReporter {
    /// Groups alerted as failing, with the reason their gauge carries.
    alerted: BTreeMap<String, &'static str>,
}

impl OutageReporter {
    /// Groups failing for at least `bound` as of `now`.
    pub fn lasting(failing: &[Failing], bound: Duration, now: Instant) -> Vec<&Failing> {
        failing.iter().filter(|f| now.saturating_duration_since(f.since) >= bound).collect()
    }

    pub fn update(
        &mut self,
        failing: &[Failing],
        bound: Duration,
        now: Instant,
        alerts: &Dispatcher,
        metrics: &Metrics,
        health: &Health,
    ) {
        let lasting = Self::lasting(failing, bound, now);
        let mut degraded = Vec::new();
        for f in &lasting {
            let lasted = now.saturating_duration_since(f.since);
            degraded.push(format!(
                "node group {}: Heat has not been readable for {}s ({}): {}",
                f.group,
                lasted.as_secs(),
                f.reason,
                f.error
            ));
            match self.alerted.get(&f.group) {
                Some(reason) if *reason == f.reason => continue,
                Some(old) => metrics.set_openstack_failing(&f.group, old, false),
                None => {
                    tracing::error!(group = %f.group, reason = f.reason, ?lasted, error = %f.error, "OpenStack failing");
                    alerts.dispatch(ScalingEvent::openstack_failing(&f.group, f.reason, lasted, &f.error));
                }
            }
            metrics.set_openstack_failing(&f.group, f.reason, true);
            self.alerted.insert(f.group.clone(), f.reason);
        }
        let recovered: Vec<String> =
            self.alerted.keys().filter(|g| !lasting.iter().any(|f| &&f.group == g)).cloned().collect();
        for group in recovered {
            if let Some(reason) = self.alerted.remove(&group) {
                metrics.set_openstack_failing(&group, reason, false);
                tracing::info!(%group, "Heat is readable again after a lasting failure");
            }
        }
        health.set_degraded(degraded);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_past_the_bound_count() {
        let t0 = Instant::now();
        let f = |group: &str, failing_for: u64| Failing {
            group: group.into(),
            since: t0 + Duration::from_secs(100) - Duration::from_secs(failing_for),
            reason: "heat_unreachable",
            error: "x".into(),
        };
        let failing = vec![f("a", 61), f("b", 59)];
        let now = t0 + Duration::from_secs(100);
        let lasting = OutageReporter::lasting(&failing, Duration::from_secs(60), now);
        assert_eq!(lasting.iter().map(|f| f.group.as_str()).collect::<Vec<_>>(), ["a"]);
    }
}
