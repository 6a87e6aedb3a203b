//! Containers, owners and workloads: what the pod level plans over.

use super::{Name, Resources, Timestamp};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OwnerRef {
    pub kind: String,
    pub name: String,
    pub uid: String,
}

/// The workload a pod belongs to, resolved through ReplicaSets to their
/// Deployment where possible: the unit VPA objects target.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct WorkloadRef {
    pub kind: Name,
    pub namespace: Name,
    pub name: Name,
}

impl std::fmt::Display for WorkloadRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

/// A pod's quality-of-service class, as Kubernetes derives it from its
/// containers' CPU and memory requests and limits. An in-place resize may not
/// change it (the API server answers 422 "Pod QOS Class may not change").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum QosClass {
    /// Every container limits CPU and memory and requests exactly its limits.
    Guaranteed,
    /// Anything between.
    Burstable,
    /// No container requests or limits CPU or memory.
    BestEffort,
}

impl QosClass {
    /// The class of these containers' (requests, limits); zero is unset.
    /// A pod's class counts its init containers too: see [`Self::with_init`].
    /// Owned or borrowed pairs: the planner asks it of sizes it computes
    /// for every pod it would resize, without collecting them first.
    pub fn of<R: std::borrow::Borrow<Resources>>(containers: impl IntoIterator<Item = (R, R)>) -> Self {
        let (mut any, mut guaranteed) = (false, true);
        for (requests, limits) in containers {
            let (requests, limits) = (requests.borrow(), limits.borrow());
            any |= requests.cpu_milli > 0 || requests.memory > 0 || limits.cpu_milli > 0 || limits.memory > 0;
            guaranteed &= limits.cpu_milli > 0
                && limits.memory > 0
                && requests.cpu_milli == limits.cpu_milli
                && requests.memory == limits.memory;
        }
        match (any, guaranteed) {
            (false, _) => QosClass::BestEffort,
            (true, true) => QosClass::Guaranteed,
            (true, false) => QosClass::Burstable,
        }
    }

    /// The class of a pod whose app containers alone have class `self` and
    /// whose init containers alone have class `init` (`None`: it has none).
    /// Kubernetes derives the class over both (`GetPodQOS`): any request or
    /// limit anywhere makes it at least Burstable, and Guaranteed needs every
    /// container, init containers included, to limit CPU and memory at its
    /// requests. Init containers are never resized, so their class is fixed.
    pub fn with_init(self, init: Option<QosClass>) -> Self {
        match (self, init) {
            (class, None) => class,
            (QosClass::BestEffort, Some(QosClass::BestEffort)) => QosClass::BestEffort,
            (QosClass::Guaranteed, Some(QosClass::Guaranteed)) => QosClass::Guaranteed,
            _ => QosClass::Burstable,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            QosClass::Guaranteed => "Guaranteed",
            QosClass::Burstable => "Burstable",
            QosClass::BestEffort => "BestEffort",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PodPhase {
    Pending,
    Running,
    Succeeded,
    Failed,
    Unknown,
}

/// What a controller creates each of its pods with: its pod template's
/// containers (requests and limits; nothing applied, never OOM-killed) and
/// what the scheduler reserves for a pod made from it. A pod resized in place
/// differs from it; the pod that replaces it does not — unless VPA's
/// admission controller rewrites the new pod (issue 17).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodTemplate {
    /// As [`super::Pod::requests`]: max(sum of containers, largest init
    /// container), and one `pods` slot; no overhead (the RuntimeClass adds it
    /// at creation).
    pub requests: Resources,
    /// The app containers (init containers count only in `requests`).
    pub containers: Vec<Container>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Container {
    pub name: String,
    /// Requests in the pod spec (the desired resources, after a resize request).
    pub requests: Resources,
    pub limits: Resources,
    /// Requests the kubelet has actually applied (`status.containerStatuses[].resources`);
    /// differs from `requests` while a resize is pending or in progress.
    pub allocated: Option<Resources>,
    /// Times this container was OOM-killed, as last seen (`lastState.terminated.reason`).
    pub oom_kills: u32,
    pub last_oom: Option<Timestamp>,
}

impl Container {
    /// What kube-scheduler counts for this container
    /// (`resourcehelper.PodRequests` with status resources, Kubernetes 1.35):
    /// while a resize is pending, the larger of its spec and what the kubelet
    /// applied; once the kubelet calls the resize `Infeasible`, only what it
    /// applied — a growth it refused takes no room. Never observed applied:
    /// the spec.
    pub fn counted(&self, resize: &ResizeState) -> Resources {
        match (&self.allocated, resize) {
            (Some(a), ResizeState::Infeasible { .. }) => a.clone(),
            (Some(a), _) => a.max(&self.requests),
            (None, _) => self.requests.clone(),
        }
    }
}

/// In-place resize progress, from the pod's `PodResizePending` /
/// `PodResizeInProgress` conditions (Kubernetes 1.33+).
#[derive(Clone, Debug, Default, PartialEq)]
pub enum ResizeState {
    #[default]
    None,
    /// The kubelet cannot fit the new requests on this node at all.
    Infeasible {
        since: Timestamp,
        message: String,
    },
    /// It may fit later (other pods must shrink or leave first).
    Deferred {
        since: Timestamp,
        message: String,
    },
    InProgress {
        since: Timestamp,
    },
    /// `PodResizeInProgress` with reason `Error`: the kubelet failed to
    /// actuate it (e.g. a memory limit below current usage) and keeps retrying.
    Error {
        since: Timestamp,
        message: String,
    },
}

impl ResizeState {
    /// A resize has been requested and not yet completed.
    pub fn is_pending(&self) -> bool {
        !matches!(self, ResizeState::None)
    }
}

#[cfg(test)]
mod tests {
    use super::QosClass::{self, *};

    /// Kubernetes' `GetPodQOS` over init and app containers together.
    #[test]
    fn init_containers_count_in_the_pods_qos_class() {
        let cases: [(QosClass, Option<QosClass>, QosClass); 9] = [
            (Guaranteed, None, Guaranteed),
            (Guaranteed, Some(Guaranteed), Guaranteed),
            (Guaranteed, Some(BestEffort), Burstable),
            (Guaranteed, Some(Burstable), Burstable),
            (BestEffort, None, BestEffort),
            (BestEffort, Some(BestEffort), BestEffort),
            (BestEffort, Some(Guaranteed), Burstable),
            (Burstable, Some(Guaranteed), Burstable),
            (Burstable, Some(BestEffort), Burstable),
        ];
        for (app, init, pod) in cases {
            assert_eq!(app.with_init(init), pod, "{app:?} with init {init:?}");
        }
    }
}
