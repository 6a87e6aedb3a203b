//! Reading the kubelet's answer to a resize back from a pod: the
//! `PodResizePending` / `PodResizeInProgress` conditions (Kubernetes 1.33+)
//! and the resources it has applied (`status.containerStatuses[].resources`).
//! The daemon's pod observer fills `model::Pod::resize` and
//! `model::Container::allocated` with these.

use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodCondition};

use heatscaler_core::model::{ResizeState, Resources, Timestamp};

pub const POD_RESIZE_PENDING: &str = "PodResizePending";
pub const POD_RESIZE_IN_PROGRESS: &str = "PodResizeInProgress";
pub const REASON_INFEASIBLE: &str = "Infeasible";
pub const REASON_DEFERRED: &str = "Deferred";
pub const REASON_ERROR: &str = "Error";

/// The pod's resize progress. A pending resize wins over one in progress (the
/// kubelet reports a new request as pending while finishing the previous one),
/// as VPA's updater reads them. `since` is the condition's last transition, or
/// `observed` when the kubelet left it out.
pub fn resize_state(pod: &Pod, observed: Timestamp) -> ResizeState {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_deref()).unwrap_or_default();
    let find = |kind: &str| conditions.iter().find(|c| c.type_ == kind && c.status == "True");
    let since = |c: &PodCondition| c.last_transition_time.as_ref().map_or(observed, |t| t.0);
    let message = |c: &PodCondition| c.message.clone().unwrap_or_default();
    if let Some(c) = find(POD_RESIZE_PENDING) {
        return match c.reason.as_deref() {
            Some(REASON_DEFERRED) => ResizeState::Deferred { since: since(c), message: message(c) },
            // Infeasible, or a reason a newer kubelet adds: nothing to wait for.
            _ => ResizeState::Infeasible { since: since(c), message: message(c) },
        };
    }
    if let Some(c) = find(POD_RESIZE_IN_PROGRESS) {
        return match c.reason.as_deref() {
            Some(REASON_ERROR) => ResizeState::Error { since: since(c), message: message(c) },
            _ => ResizeState::InProgress { since: since(c) },
        };
    }
    ResizeState::None
}

/// The requests the kubelet has applied to a running container
/// (`status.containerStatuses[].resources.requests`), when it reports them.
pub fn allocated_requests(status: &ContainerStatus) -> Option<Resources> {
    let requests = status.resources.as_ref()?.requests.as_ref()?;
    Resources::from_quantities(requests.iter().map(|(k, v)| (k.as_str(), v.0.as_str()))).ok()
}
