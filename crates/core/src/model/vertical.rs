//! Vertical scaling as the planner sees it: one entry per VerticalPodAutoscaler
//! object heatscaler handles, with the recommendation the recommender made for
//! it. The daemon builds these from the VPA watch (`vpa::to_model`) and the
//! recommender; the simulator builds them directly.
//!
//! The recommendation is plain data here, shaped like VPA's status, so the
//! recommender (which fills it) and the planner (which reads it) share one
//! type and neither depends on the other's internals.

use super::{Capping, PodResourcePolicy, ResourceKind, Resources, WorkloadRef};

/// A VPA object heatscaler handles.
#[derive(Clone, Debug, PartialEq)]
pub struct VerticalScaling {
    /// The VPA object (for Events and status).
    pub namespace: String,
    pub name: String,
    /// Its `targetRef`, resolved to the workload pods report (`Pod::workload`).
    pub workload: WorkloadRef,
    pub update_mode: UpdateMode,
    /// `updatePolicy.minReplicas`: overrides `pod-resize.updater.min-replicas`.
    pub min_replicas: Option<u32>,
    pub resource_policy: PodResourcePolicy,
    /// `updatePolicy.evictionRequirements`: all must hold for an evict-and-recreate.
    pub eviction_requirements: Vec<EvictionRequirement>,
    /// Replicas the workload's controller asks for, when known; else the
    /// planner counts the workload's live pods.
    pub replicas: Option<u32>,
    /// The latest recommendation, one entry per container (empty: none yet).
    pub recommendations: Vec<ContainerRecommendation>,
}

impl VerticalScaling {
    pub fn recommendation(&self, container: &str) -> Option<&ContainerRecommendation> {
        self.recommendations.iter().find(|r| r.container_name == container)
    }
}

/// One entry of `status.recommendation.containerRecommendations[]`. Only
/// controlled resources are set; the others are zero (absent).
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerRecommendation {
    pub container_name: String,
    pub target: Resources,
    pub lower_bound: Resources,
    pub upper_bound: Resources,
    /// The target before `minAllowed`/`maxAllowed`.
    pub uncapped_target: Resources,
    /// Which resources of the target the policy moved, for Events/annotations.
    pub capped: Vec<(ResourceKind, Capping)>,
}

/// `spec.updatePolicy.updateMode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
pub enum UpdateMode {
    /// Recommendations are written; no pod is touched.
    Off,
    /// Requests are set when a pod is created (by an admission controller);
    /// running pods are never updated.
    Initial,
    /// Running pods are updated by evict-and-recreate. VPA's deprecated `Auto`
    /// means this too.
    #[default]
    Recreate,
    /// Running pods are resized in place; evict-and-recreate when the resize
    /// is infeasible or stays deferred.
    InPlaceOrRecreate,
    /// In place only; a resize that cannot happen is reported, never forced.
    InPlace,
}

impl UpdateMode {
    /// Whether running pods may be resized through the `resize` subresource.
    pub fn in_place(self) -> bool {
        matches!(self, UpdateMode::InPlaceOrRecreate | UpdateMode::InPlace)
    }

    /// Whether running pods may be evicted so they come back resized.
    pub fn recreate(self) -> bool {
        matches!(self, UpdateMode::Recreate | UpdateMode::InPlaceOrRecreate)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            UpdateMode::Off => "Off",
            UpdateMode::Initial => "Initial",
            UpdateMode::Recreate => "Recreate",
            UpdateMode::InPlaceOrRecreate => "InPlaceOrRecreate",
            UpdateMode::InPlace => "InPlace",
        }
    }
}

/// One `updatePolicy.evictionRequirements[]` entry: an eviction is allowed
/// only if, for at least one of `resources`, the target moves the request in
/// the required direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvictionRequirement {
    pub resources: Vec<ResourceKind>,
    pub change: ChangeRequirement,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeRequirement {
    TargetHigherThanRequests,
    TargetLowerThanRequests,
}
