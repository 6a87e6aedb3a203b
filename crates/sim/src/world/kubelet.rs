//! What the kubelets report of each pod's containers, and the API server's
//! and kubelet's answers to an in-place resize (Kubernetes 1.33+):
//!
//! - the `resize` subresource refuses a change of the pod's QoS class
//!   (422 "Pod QOS Class may not change") and otherwise sets the spec at once;
//! - the kubelet then admits it: `Infeasible` when the new requests exceed
//!   what the node can ever offer, `Deferred` while they do not fit beside the
//!   node's other pods as it admitted them (their `allocated` resources, not
//!   resizes of theirs it deferred; retried on each metrics tick, as the
//!   kubelet retries when pods leave), else applied (`allocated` = the spec);
//! - a container whose working set exceeds its memory limit is OOM-killed and
//!   restarts with the same resources after the restart delay.
//!
//! The scheduler counts a pod at the larger of desired and applied requests
//! per container while a resize is pending, as kube-scheduler does.

use std::time::Duration as StdDuration;

use heatscaler_core::model::{Container, Pod, ResizeState, Resources, Timestamp, VerticalScaling};
use heatscaler_core::planner::action::ContainerResize;
use heatscaler_core::planner::time::{after_std, elapsed};

use super::World;

/// One pod's containers as their kubelet runs them.
#[derive(Clone, Debug)]
pub struct ContainerRun {
    /// When the containers last started (bound, or restarted after an OOM kill).
    pub started: Timestamp,
    /// Serving from then on (after the restart delay).
    pub serving_from: Timestamp,
    /// How long they had run when last OOM-killed (VPA's quick-OOM rule).
    pub last_oom_after: Option<StdDuration>,
    pub restarts: u32,
}

/// What the API server and the kubelet answered to a resize request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResizeAnswer {
    /// 404, or another pod (uid) has the name.
    Gone,
    /// The spec already asks for these resources: nothing sent.
    AlreadyRequested,
    /// 422: the change is invalid (it would change the QoS class).
    Invalid(String),
    /// Accepted; the kubelet's verdict.
    Requested(Admission),
}

/// The kubelet's verdict on a pod's desired resources.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Applied,
    Deferred,
    Infeasible,
}

/// A pod's QoS class, from its containers' requests and limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QosClass {
    Guaranteed,
    Burstable,
    BestEffort,
}

impl QosClass {
    pub fn of(containers: &[Container]) -> Self {
        let set = |r: &Resources| r.cpu_milli > 0 || r.memory > 0;
        if !containers.iter().any(|c| set(&c.requests) || set(&c.limits)) {
            return QosClass::BestEffort;
        }
        // A request left unset defaults to its limit.
        let equal = |req: i64, lim: i64| lim > 0 && (req == 0 || req == lim);
        let guaranteed = containers
            .iter()
            .all(|c| equal(c.requests.cpu_milli, c.limits.cpu_milli) && equal(c.requests.memory, c.limits.memory));
        if guaranteed { QosClass::Guaranteed } else { QosClass::Burstable }
    }

    pub fn name(self) -> &'static str {
        match self {
            QosClass::Guaranteed => "Guaranteed",
            QosClass::Burstable => "Burstable",
            QosClass::BestEffort => "BestEffort",
        }
    }
}

/// `containers` with a resize applied to their spec.
fn resized(containers: &[Container], changes: &[ContainerResize]) -> Vec<Container> {
    let mut out = containers.to_vec();
    for r in changes {
        let Some(c) = out.iter_mut().find(|c| c.name == r.container) else { continue };
        r.apply_to(c);
    }
    out
}

/// What the kubelet has admitted for a pod: its containers' allocated CPU
/// and memory (their requests where never resized); a pod without
/// containers, its requests.
fn allocation(pod: &Pod) -> Resources {
    if pod.containers.is_empty() {
        return pod.requests.clone();
    }
    let mut out = pod.requests.clone();
    (out.cpu_milli, out.memory) = (0, 0);
    for c in &pod.containers {
        let a = c.allocated.as_ref().unwrap_or(&c.requests);
        out.cpu_milli += a.cpu_milli;
        out.memory += a.memory;
    }
    out
}

/// What the scheduler reserves for a pod: per container the larger of
/// desired and applied CPU and memory (only the applied once the resize is
/// `Infeasible`, `Container::counted`); other resources as they were.
pub fn refresh_requests(pod: &mut Pod) {
    let (mut cpu, mut memory) = (0, 0);
    for c in &pod.containers {
        let held = c.counted(&pod.resize);
        cpu += held.cpu_milli;
        memory += held.memory;
    }
    pod.requests.cpu_milli = cpu;
    pod.requests.memory = memory;
}

/// A new pod's containers as an admission controller (VPA's, or
/// heatscaler's webhook) sets them: `recommender::admitted`, the function
/// the webhook and the planner's model use, so the simulated cluster does
/// what the daemon's webhook does.
pub fn admitted(containers: &mut [Container], vertical: &VerticalScaling) {
    for c in containers {
        let Some(applied) = heatscaler_core::recommender::admitted(c, vertical) else { continue };
        c.requests = applied.requests;
        c.limits = applied.limits;
    }
}

impl World<'_> {
    /// The scheduler bound a pod: its containers start.
    pub fn containers_started(&mut self, uid: &str) {
        let now = self.now();
        let serving_from = after_std(now, self.provisioning.container_restart.get());
        self.kubelet
            .insert(uid.to_string(), ContainerRun { started: now, serving_from, last_oom_after: None, restarts: 0 });
    }

    /// How the pod's containers run, once bound.
    pub fn container_run(&self, uid: &str) -> Option<&ContainerRun> {
        self.kubelet.get(uid)
    }

    /// Whether the pod is bound and its containers serve now.
    pub fn serving(&self, uid: &str) -> bool {
        self.kubelet.get(uid).is_some_and(|r| self.now() >= r.serving_from)
            && self.cluster.pod(uid).is_some_and(|p| p.deletion.is_none())
    }

    /// A container's working set went over its memory limit: it is killed
    /// and restarts with the same resources.
    pub fn oom_kill(&mut self, uid: &str, container: &str) {
        let now = self.now();
        let restart = self.provisioning.container_restart.get();
        let Some(pod) = self.cluster.pod_mut(uid) else { return };
        let Some(c) = pod.containers.iter_mut().find(|c| c.name == container) else { return };
        c.oom_kills += 1;
        c.last_oom = Some(now);
        if let Some(run) = self.kubelet.get_mut(uid) {
            run.last_oom_after = Some(elapsed(now, run.started));
            run.started = now;
            run.serving_from = after_std(now, restart);
            run.restarts += 1;
        }
        self.journal.pod_level.oom_kills += 1;
        if let Some(w) = self.workload_of(uid) {
            self.journal.pod_meter.oom_kill(w);
        }
    }

    /// The `resize` subresource, then the kubelet's admission.
    pub fn resize_pod(&mut self, uid: &str, changes: &[ContainerResize]) -> ResizeAnswer {
        let Some(pod) = self.cluster.pod(uid) else { return ResizeAnswer::Gone };
        if pod.deletion.is_some() {
            return ResizeAnswer::Gone;
        }
        if changes.iter().any(|r| !pod.containers.iter().any(|c| c.name == r.container)) {
            return ResizeAnswer::Invalid("no such container".into());
        }
        let wanted = resized(&pod.containers, changes);
        if wanted.iter().zip(&pod.containers).all(|(a, b)| a.requests == b.requests && a.limits == b.limits) {
            return ResizeAnswer::AlreadyRequested;
        }
        let (before, after) = (QosClass::of(&pod.containers), QosClass::of(&wanted));
        if before != after {
            self.journal.pod_level.resizes_invalid += 1;
            return ResizeAnswer::Invalid(format!(
                "Pod QOS Class may not change as a result of resizing ({} to {})",
                before.name(),
                after.name()
            ));
        }
        let Some(pod) = self.cluster.pod_mut(uid) else { return ResizeAnswer::Gone };
        let mut wanted = wanted;
        if pod.node_name.is_some() {
            // The kubelet keeps running what it admitted until it admits the
            // new spec: a container never resized has its creation requests.
            for (w, c) in wanted.iter_mut().zip(&pod.containers) {
                w.allocated = Some(c.allocated.clone().unwrap_or_else(|| c.requests.clone()));
            }
        }
        pod.containers = wanted;
        pod.resize = ResizeState::None;
        self.journal.pod_level.resizes_requested += 1;
        ResizeAnswer::Requested(self.admit_resize(uid))
    }

    /// The kubelets look again at resizes they deferred.
    pub fn retry_resizes(&mut self) {
        let deferred: Vec<String> = self
            .cluster
            .snap
            .pods
            .iter()
            .filter(|p| matches!(p.resize, ResizeState::Deferred { .. }) && p.deletion.is_none())
            .map(|p| p.uid.to_string())
            .collect();
        for uid in deferred {
            self.admit_resize(&uid);
        }
    }

    /// The kubelet's admission of a pod's desired resources.
    fn admit_resize(&mut self, uid: &str) -> Admission {
        let now = self.now();
        let Some(pod) = self.cluster.pod(uid) else { return Admission::Applied };
        let Some(node) = pod.node_name.clone().and_then(|n| self.cluster.node(&n).cloned()) else {
            // Not bound yet: the scheduler places it at the new size.
            if let Some(pod) = self.cluster.pod_mut(uid) {
                for c in &mut pod.containers {
                    c.allocated = None;
                }
                refresh_requests(pod);
            }
            return Admission::Applied;
        };
        let mut desired = Resources::default();
        for c in &pod.containers {
            desired.cpu_milli += c.requests.cpu_milli;
            desired.memory += c.requests.memory;
        }
        // The other pods as this kubelet admitted them: their allocation, not
        // a resize of theirs it deferred (kube-scheduler holds the larger of
        // the two; the kubelet admits against what it actually gave). Else a
        // neighbour's deferred growth would defer even a shrink.
        let mut others = Resources::default();
        for p in &self.cluster.snap.pods {
            if p.uid != uid && p.node_name.as_deref() == Some(node.name.as_str()) && !p.is_terminal() {
                others += &allocation(p);
            }
        }
        let alloc = &node.allocatable;
        let since = match &pod.resize {
            ResizeState::Deferred { since, .. } => *since,
            _ => now,
        };
        let was = std::mem::discriminant(&pod.resize);
        let (verdict, state) = if desired.cpu_milli > alloc.cpu_milli || desired.memory > alloc.memory {
            (
                Admission::Infeasible,
                ResizeState::Infeasible { since: now, message: "Node didn't have enough capacity".into() },
            )
        } else if others.cpu_milli + desired.cpu_milli > alloc.cpu_milli
            || others.memory + desired.memory > alloc.memory
        {
            (Admission::Deferred, ResizeState::Deferred { since, message: "Node didn't have enough resource".into() })
        } else {
            (Admission::Applied, ResizeState::None)
        };
        let entered = std::mem::discriminant(&state) != was;
        let Some(pod) = self.cluster.pod_mut(uid) else { return verdict };
        if verdict == Admission::Applied {
            for c in &mut pod.containers {
                c.allocated = Some(c.requests.clone());
            }
        }
        pod.resize = state;
        refresh_requests(pod);
        // Count each time a resize enters a state, not the kubelet's retries.
        match verdict {
            Admission::Applied => {
                self.journal.pod_level.resizes_applied += 1;
                if let Some(w) = self.workload_of(uid) {
                    self.journal.pod_meter.resized(w);
                }
            }
            Admission::Deferred if entered => self.journal.pod_level.resizes_deferred += 1,
            Admission::Infeasible if entered => self.journal.pod_level.resizes_infeasible += 1,
            _ => {}
        }
        // A shrink frees room for pending pods; any change is news to the planner.
        self.cluster_changed = true;
        self.wake = true;
        verdict
    }
}
