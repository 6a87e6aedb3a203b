//! Lasting OpenStack failures: a group whose Heat reads (Keystone included)
//! have failed for longer than `openstack.failure-alert-after` is news for an
//! operator — one critical `OpenStackFailing` alert through every sink when it
//! starts, the `heatscaler_openstack_failing{group,reason}` gauge while it
//! lasts, a `degraded:` line in `/readyz` — and no longer holds the other
//! groups back at start-up. WARN lines and an error counter alone were
//! silence. A group that reads again is logged and cleared.
//!
//! Both are checked by [`OutageWatch`], a task of its own on a one-second
//! timer, not by the control loop: the loop waits (a debounce, a pass's
//! actions, a Heat update settling, a removal being confirmed) for minutes at
//! a time, and an outage that began during such a wait went unreported until
//! it ended (the chaos soak's heat-engine outage, docs/reliability.md).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::alerts::{Dispatcher, ScalingEvent};
use crate::observe::{Failing, HeatFailures, WatchHealth, Watched};
use crate::telemetry::{Health, Metrics};

/// How often the outage watch looks: the delay an alert may add to
/// `failure-alert-after`.
pub const OUTAGE_CHECK: Duration = Duration::from_secs(1);

/// What the outage watch reads and alerts through: the parts a configuration
/// reload replaces (a new Heat poller, new sinks, new bounds).
#[derive(Clone, Debug)]
pub struct OutageSources {
    pub heat: HeatFailures,
    pub alerts: Dispatcher,
    /// `openstack.failure-alert-after`.
    pub openstack_bound: Duration,
    /// `kubernetes.failure-alert-after`.
    pub kubernetes_bound: Duration,
}

/// The task that reports lasting outages, whatever the control loop is
/// waiting for. It owns the reporters' state, so an outage is alerted once
/// however often it is looked at. Dropping it stops the task.
#[derive(Debug)]
pub struct OutageWatch {
    sources: watch::Sender<Option<OutageSources>>,
    task: JoinHandle<()>,
}

impl Drop for OutageWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl OutageWatch {
    /// Starts watching the Kubernetes watches at once; Heat and the sinks
    /// from the first [`Self::follow`].
    pub fn start(kube: WatchHealth, metrics: Arc<Metrics>, health: Health, every: Duration) -> Self {
        let (sources, rx) = watch::channel(None);
        let task = tokio::spawn(Self::run(rx, kube, metrics, health, every));
        Self { sources, task }
    }

    /// Reports through these from now on (at start, after each reload).
    pub fn follow(&self, sources: OutageSources) {
        self.sources.send_replace(Some(sources));
    }

    async fn run(
        mut sources: watch::Receiver<Option<OutageSources>>,
        kube: WatchHealth,
        metrics: Arc<Metrics>,
        health: Health,
        every: Duration,
    ) {
        let mut openstack = OutageReporter::default();
        let mut kubernetes = KubernetesOutage::default();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                changed = sources.changed() => if changed.is_err() { return },
            }
            let Some(s) = sources.borrow_and_update().clone() else { continue };
            let now = Instant::now();
            openstack.update(&s.heat.failing(), s.openstack_bound, now, &s.alerts, &metrics, &health);
            kubernetes.update(&kube.data_age(), &kube.failing(), s.kubernetes_bound, &s.alerts);
        }
    }
}

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

/// Lasting Kubernetes API failures: the watches the daemon plans on failing
/// (or never listed) for longer than `kubernetes.failure-alert-after`. One
/// critical `KubernetesFailing` alert through every sink when it starts —
/// webhook and Alertmanager sinks do not need the failing API server — and a
/// log line when the watches follow the cluster again. The
/// `heatscaler_kubernetes_watch_data_age_seconds` gauge says the same to
/// Prometheus, but its rule is evaluated minutes later.
#[derive(Debug, Default)]
pub struct KubernetesOutage {
    alerted: bool,
}

impl KubernetesOutage {
    /// `ages`: each watch's data age (`WatchHealth::data_age`); `errors`: the
    /// failing watches with their latest error.
    pub fn update(
        &mut self,
        ages: &[(Watched, Duration)],
        errors: &[(Watched, String)],
        bound: Duration,
        alerts: &Dispatcher,
    ) {
        if let Some(event) = self.check(ages, errors, bound) {
            alerts.dispatch(event);
        }
    }

    /// The alert to send now, if any: once per outage.
    fn check(
        &mut self,
        ages: &[(Watched, Duration)],
        errors: &[(Watched, String)],
        bound: Duration,
    ) -> Option<ScalingEvent> {
        let lasting: Vec<&(Watched, Duration)> = ages.iter().filter(|(_, age)| *age >= bound).collect();
        if lasting.is_empty() {
            if std::mem::take(&mut self.alerted) {
                tracing::info!("the Kubernetes watches follow the cluster again after a lasting failure");
            }
            return None;
        }
        if self.alerted {
            return None;
        }
        self.alerted = true;
        let watches = lasting.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(",");
        let lasted = lasting.iter().map(|(_, a)| *a).max().unwrap_or_default();
        let error = lasting
            .iter()
            .find_map(|(k, _)| errors.iter().find(|(e, _)| e == k).map(|(_, e)| e.clone()))
            .unwrap_or_else(|| "no first list yet".to_string());
        tracing::error!(%watches, ?lasted, %error, "Kubernetes API failing");
        Some(ScalingEvent::kubernetes_failing(&watches, lasted, &error))
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

    #[test]
    fn a_lasting_watch_failure_is_alerted_once_per_outage() {
        let mut k = KubernetesOutage::default();
        let bound = Duration::from_secs(30);
        let secs = Duration::from_secs;
        let errors = vec![(Watched::Pods, "503 Service Unavailable".to_string())];
        let short = [(Watched::Nodes, secs(0)), (Watched::Pods, secs(29))];
        assert!(k.check(&short, &errors, bound).is_none(), "not yet lasting");
        let long = [(Watched::Nodes, secs(31)), (Watched::Pods, secs(31))];
        let event = k.check(&long, &errors, bound).expect("alerted once it lasts");
        assert_eq!(event.reason, crate::alerts::Reason::KubernetesFailing);
        assert!(event.message.contains("503 Service Unavailable"), "{}", event.message);
        assert!(event.message.contains("nodes,pods"), "{}", event.message);
        assert!(k.check(&long, &errors, bound).is_none(), "once per outage");
        let healthy = [(Watched::Nodes, secs(0)), (Watched::Pods, secs(0))];
        assert!(k.check(&healthy, &[], bound).is_none());
        assert!(k.check(&long, &errors, bound).is_some(), "a new outage is news again");
    }
}
