//! The pod level: in-place resizes through the `resize` subresource and, where
//! the VPA's update mode allows it, evict-and-recreate through the eviction API
//! (PodDisruptionBudgets enforced by the API server). The `vpa` client does the
//! re-read and the guarded write; this arm reports what came of it.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;

use super::error::ActuatorError;
use super::{Actuator, Outcome};
use crate::alerts::{ObjectRef, ScalingEvent};
use crate::telemetry::{EvictionPurpose, ResizeOutcome as ResizeMetric};
use crate::vpa::client::{self, EvictOutcome, ResizeOutcome};
use heatscaler_core::model::quantity::{format_bytes, format_cpu_milli};
use heatscaler_core::model::{ResizeState, Timestamp};
use heatscaler_core::planner::action::{ContainerResize, RecreatePod, ResizePod};

/// Resizes the API server refused as invalid (422), per pod uid: the
/// request, and the API server's message. The planner predicts the known
/// refusal (a change of QoS class) and never plans it; this catches what it
/// cannot see (init containers, admission webhooks), so a refused resize is
/// reported once instead of being sent again at every `min-update-interval`.
/// A different resize of the same pod replaces the entry; the map is
/// bounded (emptied past [`REFUSED_MAX`]: the worst case is one more refusal
/// per pod).
#[derive(Debug, Default)]
pub(super) struct RefusedResizes(Mutex<HashMap<String, String>>);

/// Pods remembered at most.
const REFUSED_MAX: usize = 10_000;

impl RefusedResizes {
    fn signature(a: &ResizePod) -> String {
        a.containers
            .iter()
            .map(|c| {
                format!(
                    "{}:{}/{}:{}/{}",
                    c.container, c.requests.cpu_milli, c.requests.memory, c.limits.cpu_milli, c.limits.memory
                )
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Whether this very resize of this pod was refused before.
    fn was_refused(&self, a: &ResizePod) -> bool {
        let refused = self.0.lock().expect("refused resizes lock");
        refused.get(a.uid.as_str()).is_some_and(|s| *s == Self::signature(a))
    }

    fn remember(&self, a: &ResizePod) {
        let mut refused = self.0.lock().expect("refused resizes lock");
        if refused.len() >= REFUSED_MAX {
            refused.clear();
        }
        refused.insert(a.uid.to_string(), Self::signature(a));
    }
}

impl Actuator {
    pub(super) async fn resize_pod(&self, a: &ResizePod, now: Timestamp) -> Result<Outcome, ActuatorError> {
        if self.refused.was_refused(a) {
            return Ok(Outcome::Skipped(format!(
                "the API server refused this resize of {} before (see the PodResizeFailed event); not sent again",
                a.pod
            )));
        }
        let pods: Api<Pod> = Api::namespaced(self.kube.client().clone(), &a.pod.namespace);
        let pod_ref = ObjectRef::pod(&a.pod.namespace, &a.pod.name);
        let outcome = match client::resize_pod(&pods, a, now).await {
            Ok(o) => o,
            Err(e) => {
                self.metrics.record_resize(ResizeMetric::Failed);
                self.alerts.dispatch(ScalingEvent::pod_resize_failed(pod_ref, &e.to_string()));
                return Err(e.into());
            }
        };
        match outcome {
            ResizeOutcome::Gone => Ok(Outcome::Skipped("the pod is gone or was replaced".into())),
            ResizeOutcome::Refused { message } => {
                self.refused.remember(a);
                self.metrics.record_resize(ResizeMetric::Failed);
                let error = format!("{message} (not sent again while the pod and the recommendation stay)");
                self.alerts.dispatch(ScalingEvent::pod_resize_failed(pod_ref, &error));
                Ok(Outcome::Skipped(format!("resize of {} refused by the API server: {message}", a.pod)))
            }
            ResizeOutcome::AlreadyRequested => Ok(Outcome::Skipped("the pod already requests these resources".into())),
            ResizeOutcome::Requested { state } => {
                let metric = match &state {
                    ResizeState::Deferred { message, .. } => {
                        self.alerts.dispatch(ScalingEvent::pod_resize_deferred(pod_ref.clone(), message));
                        ResizeMetric::Deferred
                    }
                    ResizeState::Infeasible { message, .. } => {
                        self.alerts.dispatch(ScalingEvent::pod_resize_infeasible(pod_ref.clone(), message));
                        ResizeMetric::Infeasible
                    }
                    ResizeState::Error { message, .. } => {
                        self.alerts.dispatch(ScalingEvent::pod_resize_failed(pod_ref.clone(), message));
                        ResizeMetric::Failed
                    }
                    ResizeState::None | ResizeState::InProgress { .. } => ResizeMetric::Applied,
                };
                self.metrics.record_resize(metric);
                for c in &a.containers {
                    for (resource, from, to) in changes(c) {
                        self.alerts.dispatch(ScalingEvent::pod_resized(
                            pod_ref.clone(),
                            &c.container,
                            resource,
                            &from,
                            &to,
                        ));
                    }
                }
                Ok(Outcome::Done(format!("resize of {} requested ({}) for {}", a.pod, state_name(&state), a.reason)))
            }
        }
    }

    pub(super) async fn recreate_pod(&self, a: &RecreatePod) -> Result<Outcome, ActuatorError> {
        let pods: Api<Pod> = Api::namespaced(self.kube.client().clone(), &a.pod.namespace);
        match client::recreate_pod(&pods, a).await? {
            EvictOutcome::Evicted => {
                self.metrics.record_eviction(EvictionPurpose::Resize);
                self.metrics.record_resize(ResizeMetric::Evicted);
                let why = a.reason.to_string();
                self.alerts.dispatch(ScalingEvent::pod_evicted_for_resize(
                    ObjectRef::pod(&a.pod.namespace, &a.pod.name),
                    &why,
                    a.recommendation_applied,
                ));
                Ok(Outcome::Done(format!("evicted {} to be recreated ({why})", a.pod)))
            }
            EvictOutcome::Refused => {
                self.metrics.record_pdb_rejection(EvictionPurpose::Resize);
                Ok(Outcome::Skipped("a PodDisruptionBudget allows no disruption now".into()))
            }
            EvictOutcome::Gone => Ok(Outcome::Skipped("the pod is gone or was replaced".into())),
        }
    }
}

/// (resource, from, to) for each request the resize changes, as quantities.
fn changes(c: &ContainerResize) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    if c.from.cpu_milli != c.requests.cpu_milli {
        out.push(("cpu", format_cpu_milli(c.from.cpu_milli), format_cpu_milli(c.requests.cpu_milli)));
    }
    if c.from.memory != c.requests.memory {
        out.push(("memory", format_bytes(c.from.memory), format_bytes(c.requests.memory)));
    }
    out
}

fn state_name(state: &ResizeState) -> &'static str {
    match state {
        ResizeState::None => "accepted",
        ResizeState::InProgress { .. } => "in progress",
        ResizeState::Deferred { .. } => "deferred by the kubelet",
        ResizeState::Infeasible { .. } => "infeasible on this node",
        ResizeState::Error { .. } => "failed in the kubelet",
    }
}
