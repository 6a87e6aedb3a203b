//! Why each pod under a VPA object was — or was not — updated this pass.

use std::fmt;

use serde::Serialize;

use crate::model::{Name, PodKey, QosClass, Timestamp, quantity};

use super::PodOutcome;

/// CPU (millicores) and memory (bytes): what a resize changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CpuMemory {
    pub cpu_milli: i64,
    pub memory: i64,
}

impl fmt::Display for CpuMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cpu {}, memory {}", quantity::format_cpu_milli(self.cpu_milli), quantity::format_bytes(self.memory))
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ResizeExplanation {
    pub pod: PodKey,
    /// `kind/namespace/name` of the workload: one string per VPA object,
    /// shared by every entry of its pods (a pass lists up to one per pod).
    pub workload: Name,
    /// The VPA object (`namespace/name`), shared like `workload`.
    pub vpa: Name,
    pub decision: ResizeDecision,
}

/// Pods of one VPA object that share a decision needing nothing of them now
/// (see [`ResizeDecision::is_counted`]): counted rather than listed, so a pass
/// over hundreds of thousands of settled pods does not build an entry each.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ResizeCount {
    /// `kind/namespace/name` of the workload.
    pub workload: Name,
    /// The VPA object (`namespace/name`).
    pub vpa: Name,
    pub decision: ResizeDecision,
    pub pods: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum ResizeDecision {
    /// Requests within the recommended bounds and close enough to the target.
    UpToDate,
    /// `updateMode` `Off` or `Initial`: the recommendation is written, the pod left alone.
    RecommendationOnly { mode: &'static str },
    /// The recommender has no history for the workload yet.
    NoRecommendation,
    /// Inside the bounds but off target; updated once it has been for `update-off-target-after`.
    OffTarget { since: Timestamp, update_at: Timestamp, change: f64 },
    /// The workload was updated less than `min-update-interval` ago.
    RateLimited { until: Timestamp },
    /// `max-disruption-fraction` of the workload's replicas are already in flight.
    DisruptionBudget { in_flight: u32, max: u32 },
    /// The update needs an eviction and the pod is younger than the planner's
    /// `min-pod-age` (it was just created, often by an eviction): not before `until`.
    YoungPod { reason: UpdateReason, until: Timestamp },
    /// A resize is pending or in progress on the node; waiting for the kubelet.
    Resizing { state: String },
    /// The kubelet defers the pod's growth (no room beside the other pods on
    /// its node) and the pod is never moved to where it fits (`why`), so no
    /// node is added for it: it grows once pods on its node shrink or leave.
    DeferredInPlace { message: String, why: UpdateBlock },
    /// Not running on a node (pending, terminating, finished).
    NotRunning,
    /// Resized in place now.
    Resize { reason: UpdateReason, from: CpuMemory, to: CpuMemory },
    /// Evicted now, to come back resized (or on a node where the resize fits).
    Recreate { reason: UpdateReason, to: CpuMemory },
    /// The new size fits no node: handed to scale-up as demand.
    NeedsCapacity { reason: UpdateReason, to: CpuMemory, outcome: PodOutcome },
    /// An update is due but may not happen.
    Blocked { reason: UpdateReason, why: UpdateBlock },
}

impl ResizeDecision {
    /// Decisions that say nothing about the pod itself — the same for every
    /// pod of the workload it applies to — are explained by count.
    pub fn is_counted(&self) -> bool {
        matches!(
            self,
            ResizeDecision::UpToDate
                | ResizeDecision::RecommendationOnly { .. }
                | ResizeDecision::NoRecommendation
                | ResizeDecision::NotRunning
                | ResizeDecision::RateLimited { .. }
                | ResizeDecision::DisruptionBudget { .. }
        )
    }
}

/// Why a pod is updated.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum UpdateReason {
    /// A request is below the recommendation's lower bound (or unset).
    BelowLowerBound { container: Name, resource: &'static str },
    /// A request is above the recommendation's upper bound.
    AboveUpperBound { container: Name, resource: &'static str },
    /// Off target by `change` (VPA's resource diff) for `update-off-target-after`.
    OffTarget { since: Timestamp, change: f64 },
    /// OOM-killed since its size was last set, and the target asks for more memory.
    OomKilled { container: Name },
    /// Shrinking it lets pending pods schedule without growing a group.
    FreesCapacity { pending: usize },
    /// The kubelet reported the in-place resize `Infeasible`.
    ResizeInfeasible { message: String },
    /// The kubelet has deferred the resize for longer than `deferred-timeout`.
    ResizeDeferred { since: Timestamp, message: String },
    /// The kubelet failed to actuate the resize.
    ResizeFailed { message: String },
    /// A resize the kubelet deferred asks for what the recommendation has
    /// since left by `change` (VPA's resource diff): sent again with the
    /// newer target.
    StaleDeferredAsk { change: f64 },
    /// The new size does not fit the pod's node now.
    DoesNotFitNode { node: String },
}

/// Why a due update does not happen.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "block", rename_all = "kebab-case")]
pub enum UpdateBlock {
    /// Evict-and-recreate needs at least `min` replicas (`min-replicas`, or the VPA's `minReplicas`).
    MinReplicas { replicas: u32, min: u32 },
    /// The PodDisruptionBudget allows no eviction now.
    Pdb { pdb: String },
    /// `evictionRequirements` are not met by this change.
    EvictionRequirements,
    /// `InPlace` mode and the resize cannot happen on this node.
    InPlaceOnly,
    /// The update needs an eviction (`Recreate` mode, or `InPlaceOrRecreate`
    /// when the new size does not fit the pod's node), but no admission
    /// controller applies recommendations to new pods: the replacement would
    /// come back with its template's requests.
    NoAdmissionController,
    /// The update would change the pod's QoS class, which Kubernetes refuses
    /// in place, and it cannot be recreated instead (no admission controller,
    /// or an update mode that never evicts).
    QosClassChange { from: QosClass, to: QosClass },
}

impl fmt::Display for ResizeDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ts = |t: &Timestamp| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        match self {
            ResizeDecision::UpToDate => f.write_str("requests within the recommended bounds"),
            ResizeDecision::RecommendationOnly { mode } => {
                write!(f, "update mode {mode}: recommendation written, pod left alone")
            }
            ResizeDecision::NoRecommendation => f.write_str("no recommendation yet (no usage history)"),
            ResizeDecision::OffTarget { since, update_at, change } => write!(
                f,
                "within bounds, {:.0}% off target since {}; updated at {} if it stays so",
                change * 100.0,
                ts(since),
                ts(update_at)
            ),
            ResizeDecision::RateLimited { until } => {
                write!(f, "workload updated recently (min-update-interval) until {}", ts(until))
            }
            ResizeDecision::DisruptionBudget { in_flight, max } => {
                write!(f, "{in_flight} of at most {max} replicas already being updated (max-disruption-fraction)")
            }
            ResizeDecision::YoungPod { reason, until } => {
                write!(f, "update due ({reason}) but the pod is not evicted before {} (min-pod-age)", ts(until))
            }
            ResizeDecision::Resizing { state } => write!(f, "resize {state}; waiting for the kubelet"),
            ResizeDecision::DeferredInPlace { message, why } => write!(
                f,
                "resize deferred by the kubelet ({message}); not moved to a node where it fits ({why}), so no node \
                 is added for it: it grows when pods on its node shrink or leave"
            ),
            ResizeDecision::NotRunning => f.write_str("not running on a node"),
            ResizeDecision::Resize { reason, from, to } => write!(f, "resized in place ({reason}): {from} → {to}"),
            ResizeDecision::Recreate { reason, to } => write!(f, "evicted to be recreated ({reason}) at {to}"),
            ResizeDecision::NeedsCapacity { reason, to, outcome } => {
                write!(f, "{reason}; {to} fits no node: node-level need ({outcome})")
            }
            ResizeDecision::Blocked { reason, why } => write!(f, "update due ({reason}) but {why}"),
        }
    }
}

impl fmt::Display for UpdateReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpdateReason::BelowLowerBound { container, resource } => {
                write!(f, "{container} {resource} request below the lower bound")
            }
            UpdateReason::AboveUpperBound { container, resource } => {
                write!(f, "{container} {resource} request above the upper bound")
            }
            UpdateReason::OffTarget { change, .. } => {
                write!(f, "{:.0}% off target for update-off-target-after", change * 100.0)
            }
            UpdateReason::OomKilled { container } => write!(f, "{container} was OOM-killed"),
            UpdateReason::FreesCapacity { pending } => {
                write!(f, "over-requested; shrinking it lets {pending} pending pod(s) schedule")
            }
            UpdateReason::ResizeInfeasible { message } => write!(f, "in-place resize infeasible: {message}"),
            UpdateReason::ResizeDeferred { message, .. } => {
                write!(f, "in-place resize deferred beyond deferred-timeout: {message}")
            }
            UpdateReason::ResizeFailed { message } => write!(f, "in-place resize failed: {message}"),
            UpdateReason::StaleDeferredAsk { change } => {
                write!(f, "the deferred resize asks {:.0}% off the newer target", change * 100.0)
            }
            UpdateReason::DoesNotFitNode { node } => write!(f, "the new size does not fit node {node}"),
        }
    }
}

impl fmt::Display for UpdateBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpdateBlock::MinReplicas { replicas, min } => {
                write!(f, "evict-and-recreate needs {min} replicas, the workload has {replicas}")
            }
            UpdateBlock::Pdb { pdb } => write!(f, "PodDisruptionBudget {pdb} allows no eviction now"),
            UpdateBlock::EvictionRequirements => f.write_str("the VPA's evictionRequirements are not met"),
            UpdateBlock::InPlaceOnly => f.write_str("update mode InPlace never evicts"),
            UpdateBlock::QosClassChange { from, to } => write!(
                f,
                "it would change the pod's QoS class from {} to {}, which Kubernetes refuses in place, and it is not \
                 recreated instead (that needs an update mode that evicts and pod-resize.admission-controller); set \
                 requests (BestEffort) or controlledValues: RequestsAndLimits (Guaranteed) on the workload",
                from.as_str(),
                to.as_str()
            ),
            UpdateBlock::NoAdmissionController => f.write_str(
                "no admission controller applies recommendations to new pods (pod-resize.admission-controller), \
                 so it is not evicted: its replacement would come back at its template's requests",
            ),
        }
    }
}
