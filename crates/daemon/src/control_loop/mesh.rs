//! Reads the mesh's traffic on its own timer, so a slow Prometheus never
//! holds a planning pass, and hands the planner the latest reading while it
//! is fresh. A read that fails is retried sooner (2 s, doubling up to the
//! interval); failing for longer than `mesh-metrics.failure-alert-after` is
//! one `MeshMetricsFailing` alert, and the planner gets no observations
//! meanwhile — which keeps standing advice and gives none new
//! (docs/decisions.md): stale traffic is no evidence.

use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::alerts::{Dispatcher, ScalingEvent};
use crate::config::MeshMetricsConfig;
use crate::observe::ClusterStore;
use crate::observe::mesh::{MeshObserver, MeshReading, QueryError};
use heatscaler_core::planner::placement::Flow;

const FIRST_RETRY: Duration = Duration::from_secs(2);

#[derive(Debug, Default)]
struct Latest {
    reading: Option<(Instant, MeshReading)>,
    failing_since: Option<Instant>,
    alerted: bool,
}

/// The mesh reader of one configuration; dropping it stops the task.
#[derive(Debug)]
pub struct MeshFeed {
    latest: Arc<StdMutex<Latest>>,
    /// A reading older than this is not handed out.
    max_age: Duration,
    task: JoinHandle<()>,
}

impl Drop for MeshFeed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MeshFeed {
    pub fn start(
        config: &MeshMetricsConfig,
        store: Arc<Mutex<ClusterStore>>,
        alerts: Dispatcher,
    ) -> Result<Self, QueryError> {
        let observer = MeshObserver::new(config)?;
        let latest = Arc::new(StdMutex::new(Latest::default()));
        let interval = config.interval.get();
        let alert_after = config.failure_alert_after.get();
        let task = tokio::spawn(run(observer, store, alerts, latest.clone(), interval, alert_after));
        // Two missed reads and a request's time: one failed read alone does
        // not take the observations away.
        let max_age = interval * 2 + config.request_timeout.get();
        Ok(Self { latest, max_age, task })
    }

    /// The flows of the latest read if it is fresh; `None` otherwise.
    pub fn flows(&self) -> Option<Vec<Flow>> {
        let latest = self.latest.lock().expect("mesh reading lock");
        let (at, reading) = latest.reading.as_ref()?;
        (at.elapsed() <= self.max_age).then(|| reading.flows.clone())
    }
}

async fn run(
    observer: MeshObserver,
    store: Arc<Mutex<ClusterStore>>,
    alerts: Dispatcher,
    latest: Arc<StdMutex<Latest>>,
    interval: Duration,
    alert_after: Duration,
) {
    let mut retries = retry_delays(interval);
    loop {
        // Prometheus is read without the store's lock, the placement under it.
        let result = match observer.fetch().await {
            Ok(series) => Ok(observer.join(&series, store.lock().await.snapshot())),
            Err(e) => Err(e),
        };
        let delay = match result {
            Ok(reading) => {
                let mut l = latest.lock().expect("mesh reading lock");
                if let Some(since) = l.failing_since.take() {
                    tracing::info!(failed_for_s = since.elapsed().as_secs(), "Prometheus read again");
                }
                l.alerted = false;
                tracing::debug!(
                    flows = reading.flows.len(),
                    unknown_pairs = reading.unknown_pairs,
                    unsplit_rps = reading.unsplit_requests_per_second,
                    "mesh traffic read"
                );
                l.reading = Some((Instant::now(), reading));
                retries = retry_delays(interval);
                interval
            }
            Err(e) => {
                let mut l = latest.lock().expect("mesh reading lock");
                let since = *l.failing_since.get_or_insert_with(Instant::now);
                tracing::warn!(error = %e, retryable = e.retryable(), "the mesh's traffic could not be read from Prometheus");
                if since.elapsed() >= alert_after && !l.alerted {
                    l.alerted = true;
                    alerts.dispatch(ScalingEvent::mesh_metrics_failing(since.elapsed(), &e.to_string()));
                }
                retries.next().unwrap_or(interval)
            }
        };
        tokio::time::sleep(delay).await;
    }
}

/// The waits after consecutive failed reads: 2 s, 4 s, 8 s … up to the
/// interval, never ending (the reader runs as long as the daemon); a
/// successful read starts them over.
fn retry_delays(interval: Duration) -> ExponentialBackoff {
    ExponentialBuilder::default()
        .with_min_delay(FIRST_RETRY.min(interval))
        .with_max_delay(interval)
        .without_max_times()
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::Reason;
    use crate::alerts::capture::capturing_dispatcher;
    use crate::config::{Duration as ConfigDuration, MeshKind};
    use crate::telemetry::Metrics;

    #[tokio::test]
    async fn a_lasting_read_failure_is_alerted_once_and_takes_the_observations_away() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = MeshMetricsConfig {
            prometheus_url: format!("http://127.0.0.1:{port}/secret-path-token"),
            mesh: MeshKind::Istio,
            window: ConfigDuration::from_secs(60),
            interval: ConfigDuration::from_secs(1),
            pod_label: "pod".into(),
            ca_bundle: None,
            bearer_token: None,
            request_timeout: ConfigDuration::from_secs(1),
            failure_alert_after: ConfigDuration::from_secs(2),
        };
        let (alerts, captured) = capturing_dispatcher(Arc::new(Metrics::new()));
        let feed = MeshFeed::start(&config, Arc::new(Mutex::new(ClusterStore::new())), alerts).unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        while captured.0.lock().unwrap().is_empty() {
            assert!(Instant::now() < deadline, "no alert");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // A few more failed retries: still one alert.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let events = captured.0.lock().unwrap().clone();
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].reason, Reason::MeshMetricsFailing);
        assert!(!events[0].message.contains("secret-path-token"), "{}", events[0].message);
        assert!(feed.flows().is_none());
    }

    #[test]
    fn retries_double_up_to_the_interval() {
        let i = Duration::from_secs(60);
        let d: Vec<u64> = retry_delays(i).take(7).map(|d| d.as_secs()).collect();
        assert_eq!(d, [2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(retry_delays(i).nth(1000), Some(i));
        // An interval shorter than the first retry: every retry waits the interval.
        let short = Duration::from_secs(1);
        assert_eq!(retry_delays(short).take(3).collect::<Vec<_>>(), [short; 3]);
    }
}
