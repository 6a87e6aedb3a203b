//! What the daemon reports to [`super::Metrics`]: closed sets of outcomes and
//! purposes, so a label value cannot be misspelt at a call site.

/// A node group's size as Heat and Kubernetes see it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupSizes {
    /// What Heat was last asked for.
    pub desired: u64,
    /// Members whose node is registered and `Ready`.
    pub ready: u64,
    /// Members being created or whose node has not registered yet.
    pub provisioning: u64,
    /// Members Heat reports `*_FAILED`, or that never registered in time.
    pub failed: u64,
}

/// Why a scale-up did not deliver nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleUpFailure {
    /// The Heat stack update was refused or ended `UPDATE_FAILED` (quota, template).
    HeatUpdateFailed,
    /// A new member ended `CREATE_FAILED`.
    CreateFailed,
    /// A new member did not become a `Ready` node within max-node-provision-time.
    ProvisioningTimedOut,
}

impl ScaleUpFailure {
    pub const ALL: [ScaleUpFailure; 3] =
        [ScaleUpFailure::HeatUpdateFailed, ScaleUpFailure::CreateFailed, ScaleUpFailure::ProvisioningTimedOut];

    pub(super) const fn as_str(self) -> &'static str {
        match self {
            ScaleUpFailure::HeatUpdateFailed => "heat_update_failed",
            ScaleUpFailure::CreateFailed => "create_failed",
            ScaleUpFailure::ProvisioningTimedOut => "provisioning_timed_out",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DrainOutcome {
    /// Every pod that had to go is gone.
    Finished,
    /// Gave up (drain timeout, pods that cannot be evicted); the node is uncordoned.
    Failed,
    /// The node became needed again before the drain finished.
    Aborted,
}

impl DrainOutcome {
    pub(super) const fn as_str(self) -> &'static str {
        match self {
            DrainOutcome::Finished => "finished",
            DrainOutcome::Failed => "failed",
            DrainOutcome::Aborted => "aborted",
        }
    }
}

/// Why a pod is evicted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvictionPurpose {
    /// Emptying a node before its removal.
    Drain,
    /// Evict-and-recreate where an in-place resize is impossible and the policy allows it.
    Resize,
}

impl EvictionPurpose {
    pub(super) const fn as_str(self) -> &'static str {
        match self {
            EvictionPurpose::Drain => "drain",
            EvictionPurpose::Resize => "resize",
        }
    }
}

/// What became of one pod resize.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResizeOutcome {
    /// The `resize` subresource accepted the new requests and the kubelet applied them.
    Applied,
    /// The kubelet reported `PodResizePending` with reason `Deferred`.
    Deferred,
    /// The kubelet reported `PodResizePending` with reason `Infeasible`.
    Infeasible,
    /// Applied by evicting the pod so its controller recreates it with new requests.
    Evicted,
    /// The API refused the resize.
    Failed,
}

impl ResizeOutcome {
    pub(super) const fn as_str(self) -> &'static str {
        match self {
            ResizeOutcome::Applied => "applied",
            ResizeOutcome::Deferred => "deferred",
            ResizeOutcome::Infeasible => "infeasible",
            ResizeOutcome::Evicted => "evicted",
            ResizeOutcome::Failed => "failed",
        }
    }
}

/// How the admission webhook answered one review. Every answer admits the
/// pod: the problems are counted so an operator sees pods that came back at
/// their template's size and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AdmissionOutcome {
    /// The pod got its recommendation (or was marked as already at it).
    Patched,
    /// Nothing to do: not a pod's creation, no controller, no handled VPA
    /// object, no recommendation, or the object is `Off`.
    Unchanged,
    /// The pod would have been patched, but the daemon runs dry.
    DryRun,
    /// The VPA objects have not been listed yet.
    NotSynced,
    /// The pod's ReplicaSet has not been seen yet: its workload is unknown.
    WorkloadUnknown,
    /// The request could not be read (malformed, too large, too slow).
    Invalid,
}

impl AdmissionOutcome {
    pub(super) const fn as_str(self) -> &'static str {
        match self {
            AdmissionOutcome::Patched => "patched",
            AdmissionOutcome::Unchanged => "unchanged",
            AdmissionOutcome::DryRun => "dry_run",
            AdmissionOutcome::NotSynced => "not_synced",
            AdmissionOutcome::WorkloadUnknown => "workload_unknown",
            AdmissionOutcome::Invalid => "invalid",
        }
    }
}

/// A resource the recommender sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceName {
    /// In cores.
    Cpu,
    /// In bytes.
    Memory,
}

impl ResourceName {
    pub(super) const fn as_str(self) -> &'static str {
        match self {
            ResourceName::Cpu => "cpu",
            ResourceName::Memory => "memory",
        }
    }
}

/// A VPA-style recommendation for one container and resource, in base units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RecommendationValues {
    pub target: f64,
    pub lower_bound: f64,
    pub upper_bound: f64,
}

/// What happened to one notification for one alert sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertOutcome {
    /// The receiver accepted it.
    Sent,
    /// Refused (4xx) or retries exhausted.
    Failed,
    /// Pushed out of a full queue (the oldest goes), still queued at
    /// shutdown, or dropped by its sink while the destination fails
    /// (Kubernetes Events while the API server fails).
    Dropped,
    /// The same reason and object was already sent within the dedup window.
    Deduplicated,
}

impl AlertOutcome {
    pub const fn as_str(self) -> &'static str {
        match self {
            AlertOutcome::Sent => "sent",
            AlertOutcome::Failed => "failed",
            AlertOutcome::Dropped => "dropped",
            AlertOutcome::Deduplicated => "deduplicated",
        }
    }
}
