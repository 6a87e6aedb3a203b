//! Where scaling events go: the contract every destination implements.
//!
//! A sink only knows how to deliver one event once. Queuing, deduplication,
//! retries and timeouts are the dispatcher's ([`super::Dispatcher`]), the same
//! for every sink, so a new destination cannot get them subtly wrong.

use std::time::Duration;

use futures::future::BoxFuture;

use super::ScalingEvent;

/// A destination for scaling events.
pub trait EventSink: Send + Sync + 'static {
    /// Whether this sink can take the event at all (the Kubernetes sink needs
    /// an object to attach the Event to). Checked before queuing.
    fn accepts(&self, _event: &ScalingEvent) -> bool {
        true
    }

    /// Delivers the event once. Errors say whether trying again can help and
    /// must never contain a secret (a webhook URL with a token, a key).
    fn publish<'a>(&'a self, event: &'a ScalingEvent) -> BoxFuture<'a, Result<(), SinkError>>;
}

/// Why a delivery failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// Worth retrying: 5xx, 429, 408, connection errors, timeouts.
    #[error("{message}")]
    Retryable {
        message: String,
        /// The receiver's `Retry-After`, honoured up to retry-max.
        retry_after: Option<Duration>,
    },
    /// Retrying cannot help: 4xx (bad payload, forbidden, not found), redirects.
    #[error("{0}")]
    Permanent(String),
    /// Not delivered, on purpose: the destination is failing and the sink
    /// drops what comes meanwhile instead of adding load to it (it says so
    /// once itself). Counted as dropped, not retried, not logged per event.
    #[error("{0}")]
    Dropped(String),
}

impl SinkError {
    pub fn retryable(message: impl Into<String>) -> Self {
        SinkError::Retryable { message: message.into(), retry_after: None }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, SinkError::Retryable { .. })
    }
}
