//! Telling operators what heatscaler does: every scale-up, every step of a
//! scale-down, failed provisioning, resizes, and why it could not scale.
//!
//! The daemon builds a [`ScalingEvent`] (one constructor per [`Reason`]) and
//! hands it to [`Dispatcher::dispatch`], which returns at once. The event
//! becomes a structured log line, a Kubernetes Event on the object it concerns
//! ([`KubeEventSink`]), and notifications to the configured webhooks
//! ([`AlertmanagerSink`], [`WebhookSink`], [`SlackSink`]) — each sink with its
//! own bounded queue, deduplication, retries and timeout, counted in the
//! `heatscaler_alert_notifications_total` metric.
//!
//! Secrets (a Slack URL, an HMAC key) live in `SecretString`s; no `Debug`,
//! error or log line of this module prints them.

mod alertmanager;
mod api_gate;
#[cfg(any(test, feature = "test-support"))]
pub mod capture;
mod dedup;
mod delivery;
mod dispatcher;
mod event;
mod http;
mod kube_events;
mod queue;
mod reason;
mod sink;
mod slack;
pub mod webhook;

pub use crate::config::AlertSeverity as Severity;
pub use alertmanager::AlertmanagerSink;
pub use delivery::RetryPolicy;
pub use dispatcher::{AlertsError, Dispatcher, KUBERNETES_EVENTS_SINK, ShutdownReport, SinkPolicy};
pub use event::{ObjectRef, ScalingEvent};
pub use kube_events::{KubeEventSink, REPORTING_CONTROLLER, kube_event, object_reference};
pub use reason::{Audience, Reason};
pub use sink::{EventSink, SinkError};
pub use slack::{SlackSink, SlackUrlError};
pub use webhook::WebhookSink;
