//! A sink that keeps every event it is given, for tests that assert on what a
//! component alerted: the daemon's unit tests and the integration tests
//! (feature `test-support`). Not built into the daemon.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;

use super::{Dispatcher, EventSink, RetryPolicy, ScalingEvent, Severity, SinkError, SinkPolicy};
use crate::telemetry::Metrics;

/// Every event published to it, in order.
#[derive(Default)]
pub struct Captured(pub Mutex<Vec<ScalingEvent>>);

impl EventSink for Captured {
    fn publish<'a>(&'a self, event: &'a ScalingEvent) -> BoxFuture<'a, Result<(), SinkError>> {
        self.0.lock().unwrap().push(event.clone());
        Box::pin(async { Ok(()) })
    }
}

/// A dispatcher whose only sink is a [`Captured`]: every severity, no dedup
/// window, one delivery attempt.
pub fn capturing_dispatcher(metrics: Arc<Metrics>) -> (Dispatcher, Arc<Captured>) {
    let captured = Arc::new(Captured::default());
    let policy = SinkPolicy {
        name: "capture".into(),
        min_severity: Severity::Info,
        include_details: true,
        queue_capacity: 1000,
        dedup_window: Duration::ZERO,
        timeout: Duration::from_secs(1),
        retry: RetryPolicy { initial: Duration::from_millis(10), max: Duration::from_millis(10), max_attempts: 1 },
    };
    let sink: Arc<dyn EventSink> = captured.clone();
    (Dispatcher::with_sinks(vec![(sink, policy)], Duration::ZERO, metrics), captured)
}
