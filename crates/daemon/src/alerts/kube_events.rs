//! Kubernetes Events (events.k8s.io/v1) on the object a scaling event concerns,
//! so `kubectl describe pod` answers "why is it pending?" and `kubectl describe
//! node` "why was it cordoned?" — where operators look first.
//!
//! Published through kube-rs' [`Recorder`] with reporting controller
//! `heatscaler`: it creates the Event, and turns repeats of the same
//! (reason, action, object) within its cache window into an `EventSeries` patch
//! instead of a new object. Events on cluster-scoped objects (nodes) go to the
//! `default` namespace, as the kubelet's and cluster-autoscaler's do.
//! Group-level events have no Kubernetes object: this sink does not accept
//! them, and they go to logs and webhooks only (docs/decisions.md).
//!
//! While the API server fails, Events are dropped instead of retried
//! ([`ApiGate`]): a failing API server gets at most a probe every few
//! seconds to a minute from this sink.
//!
//! RBAC: `create` and `patch` on `events` in API group `events.k8s.io`.

use std::time::Instant;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use super::api_gate::ApiGate;
use super::{EventSink, ObjectRef, ScalingEvent, Severity, SinkError};

/// The `reportingController` of every Event heatscaler writes.
pub const REPORTING_CONTROLLER: &str = "heatscaler";

/// events.k8s.io/v1 limits `note` to 1 kB.
const MAX_NOTE_BYTES: usize = 1024;

pub struct KubeEventSink {
    recorder: Recorder,
    gate: ApiGate,
}

impl std::fmt::Debug for KubeEventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeEventSink").finish_non_exhaustive()
    }
}

impl KubeEventSink {
    /// `instance` is the `reportingInstance` (the daemon's identity, e.g. the
    /// host name, as in leader election); `heatscaler` when `None`.
    pub fn new(client: kube::Client, instance: Option<String>) -> Self {
        let reporter = Reporter { controller: REPORTING_CONTROLLER.into(), instance };
        Self { recorder: Recorder::new(client, reporter), gate: ApiGate::default() }
    }
}

impl EventSink for KubeEventSink {
    fn accepts(&self, event: &ScalingEvent) -> bool {
        event.object.is_some()
    }

    fn publish<'a>(&'a self, event: &'a ScalingEvent) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let Some(object) = &event.object else {
                return Err(SinkError::Permanent("event has no object to attach to".into()));
            };
            if !self.gate.admit(Instant::now()) {
                return Err(SinkError::Dropped("the API server is failing: Event dropped".into()));
            }
            let regarding = object_reference(object);
            // A request the dispatcher's timeout abandons is a failure too.
            let mut pending = Pending(Some(&self.gate));
            let result = self.recorder.publish(&kube_event(event), &regarding).await.map_err(classify);
            pending.0 = None;
            match result {
                Err(e) if e.is_retryable() => {
                    self.gate.failed(Instant::now(), &e.to_string());
                    Err(SinkError::Dropped(e.to_string()))
                }
                // A refusal (403, 422) is the API server answering.
                other => {
                    self.gate.succeeded(Instant::now());
                    other
                }
            }
        })
    }
}

/// A request in flight: dropped unfinished (the dispatcher's per-attempt
/// timeout), it tells the gate the API server did not answer.
struct Pending<'a>(Option<&'a ApiGate>);

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if let Some(gate) = self.0 {
            gate.failed(Instant::now(), "no answer before the sink's timeout");
        }
    }
}

/// The Event written for a scaling event.
pub fn kube_event(e: &ScalingEvent) -> Event {
    Event {
        type_: match e.severity {
            Severity::Info => EventType::Normal,
            Severity::Warning | Severity::Critical => EventType::Warning,
        },
        reason: e.reason.as_str().into(),
        note: Some(truncate(e.message.clone(), MAX_NOTE_BYTES)),
        action: e.reason.action().into(),
        secondary: e.related.as_ref().map(object_reference),
    }
}

pub fn object_reference(o: &ObjectRef) -> ObjectReference {
    ObjectReference {
        api_version: Some(o.api_version.clone()),
        kind: Some(o.kind.clone()),
        namespace: o.namespace.clone(),
        name: Some(o.name.clone()),
        uid: o.uid.clone(),
        ..ObjectReference::default()
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let mut end = max - '…'.len_utf8();
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push('…');
    s
}

/// Throttling and server errors pass; a refusal (403 without RBAC, 422 invalid) does not.
fn classify(e: kube::Error) -> SinkError {
    let message = format!("Kubernetes refused the Event: {e}");
    match &e {
        kube::Error::Api(status) if status.code == 429 || status.code >= 500 => SinkError::retryable(message),
        kube::Error::Api(_) => SinkError::Permanent(message),
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::Auth(_) => SinkError::retryable(message),
        _ => SinkError::Permanent(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    #[test]
    fn event_fields_map_onto_events_k8s_io() {
        let pod = ObjectRef::pod("shop", "web-1").with_uid("0000-1");
        let e = ScalingEvent::pod_evicted(pod.clone(), ObjectRef::node("minion-3"));
        let ev = kube_event(&e);
        assert_eq!(ev.type_, EventType::Normal);
        assert_eq!(ev.reason, "PodEvicted");
        assert_eq!(ev.action, "Evict");
        assert_eq!(ev.note.as_deref(), Some("evicted to drain node minion-3 for scale-down"));
        let related = ev.secondary.unwrap();
        assert_eq!((related.kind.as_deref(), related.name.as_deref()), (Some("Node"), Some("minion-3")));
        let r = object_reference(&pod);
        assert_eq!(r.api_version.as_deref(), Some("v1"));
        assert_eq!(r.namespace.as_deref(), Some("shop"));
        assert_eq!(r.uid.as_deref(), Some("0000-1"));

        let failed = kube_event(&ScalingEvent::drain_failed(ObjectRef::node("n"), "g", "timeout"));
        assert_eq!(failed.type_, EventType::Warning);
    }

    #[test]
    fn long_notes_fit() {
        let ev = kube_event(&ScalingEvent::drain_failed(ObjectRef::node("n"), "g", &"x".repeat(2000)));
        let note = ev.note.unwrap();
        assert!(note.starts_with("drain failed, node uncordoned: xxx"));
        assert!(note.len() <= MAX_NOTE_BYTES && note.ends_with('…'), "{note}");
    }

    #[test]
    fn only_transient_api_errors_are_retried() {
        let api = |code| kube::Error::Api(Status::failure("x", "y").with_code(code).boxed());
        assert!(classify(api(500)).is_retryable());
        assert!(classify(api(429)).is_retryable());
        assert!(!classify(api(403)).is_retryable());
        assert!(!classify(api(422)).is_retryable());
    }
}
