//! One sink's worker: takes notifications off its queue in order and delivers
//! each with a per-attempt timeout and exponential backoff between attempts.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

use super::queue::DropOldestQueue;
use super::{EventSink, ScalingEvent, SinkError};
use crate::telemetry::{AlertOutcome, Metrics};

/// Exponential backoff between attempts: `initial`, doubling, capped at `max`,
/// with jitter so many daemons do not retry in lockstep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    pub initial: Duration,
    pub max: Duration,
    /// Attempts in total, the first included (at least 1).
    pub max_attempts: u32,
}

pub(crate) struct Worker {
    pub(crate) name: String,
    pub(crate) sink: Arc<dyn EventSink>,
    pub(crate) queue: Arc<DropOldestQueue<Arc<ScalingEvent>>>,
    pub(crate) timeout: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) metrics: Arc<Metrics>,
    /// Set while a notification is being delivered, so a shutdown that has to
    /// abandon the worker counts the one in flight as dropped.
    pub(crate) busy: Arc<AtomicBool>,
}

impl Worker {
    pub(crate) async fn run(self) {
        while let Some(event) = self.queue.pop().await {
            self.busy.store(true, Ordering::Relaxed);
            self.metrics.set_alert_queue_length(&self.name, self.queue.len());
            match self.deliver(&event).await {
                Ok(attempts) => {
                    self.metrics.record_alert(&self.name, AlertOutcome::Sent);
                    tracing::debug!(sink = %self.name, reason = %event.reason, event_id = %event.id, attempts, "notification sent");
                }
                Err((SinkError::Dropped(why), _)) => {
                    self.metrics.record_alert(&self.name, AlertOutcome::Dropped);
                    tracing::debug!(sink = %self.name, reason = %event.reason, event_id = %event.id, %why, "notification dropped");
                }
                Err((error, attempts)) => {
                    self.metrics.record_alert(&self.name, AlertOutcome::Failed);
                    tracing::warn!(
                        sink = %self.name,
                        reason = %event.reason,
                        target = %event.target(),
                        event_id = %event.id,
                        attempts,
                        %error,
                        "notification could not be delivered"
                    );
                }
            }
            self.busy.store(false, Ordering::Relaxed);
        }
    }

    /// Ok(attempts) or the last error and the attempts made.
    async fn deliver(&self, event: &ScalingEvent) -> Result<u32, (SinkError, u32)> {
        let mut delays = ExponentialBuilder::default()
            .with_min_delay(self.retry.initial)
            .with_max_delay(self.retry.max)
            .with_max_times(self.retry.max_attempts.saturating_sub(1) as usize)
            .with_jitter()
            .build();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = match tokio::time::timeout(self.timeout, self.sink.publish(event)).await {
                Ok(r) => r,
                Err(_) => Err(SinkError::retryable(format!("no answer within {}s", self.timeout.as_secs_f64()))),
            };
            let error = match result {
                Ok(()) => return Ok(attempt),
                Err(e) if e.is_retryable() => e,
                Err(e) => return Err((e, attempt)),
            };
            let Some(mut delay) = delays.next() else {
                return Err((error, attempt));
            };
            if let SinkError::Retryable { retry_after: Some(asked), .. } = &error {
                delay = delay.max((*asked).min(self.retry.max));
            }
            tracing::debug!(
                sink = %self.name, reason = %event.reason, attempt, %error,
                retry_in_ms = delay.as_millis() as u64, "notification failed; retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }
}
