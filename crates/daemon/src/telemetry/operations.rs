//! The API calls whose latency and errors are measured, as closed sets: a
//! label value that can only come from these enums cannot explode the number
//! of series or drift in spelling between call sites. Add a variant when a
//! new kind of call appears.

/// A call to Keystone or Heat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HeatOperation {
    /// Keystone token issue (password or application credential).
    Authenticate,
    /// `GET /stacks/{name}/{id}`: status and parameters.
    GetStack,
    /// `PATCH /stacks/{name}/{id}`: new count, removal list or desired capacity.
    UpdateStack,
    /// `GET .../resources?nested_depth=N`: the group's members.
    ListResources,
    /// `GET .../resources/{name}`: one member.
    GetResource,
    /// `PATCH .../resources/{member}` with `mark_unhealthy`.
    MarkUnhealthy,
    /// `POST .../resources/{policy}/signal`.
    SignalPolicy,
}

impl HeatOperation {
    pub const fn as_str(self) -> &'static str {
        match self {
            HeatOperation::Authenticate => "authenticate",
            HeatOperation::GetStack => "get_stack",
            HeatOperation::UpdateStack => "update_stack",
            HeatOperation::ListResources => "list_resources",
            HeatOperation::GetResource => "get_resource",
            HeatOperation::MarkUnhealthy => "mark_unhealthy",
            HeatOperation::SignalPolicy => "signal_policy",
        }
    }
}

/// The verb of a Kubernetes API call, as the API server's own metrics name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KubeVerb {
    Get,
    List,
    Watch,
    Create,
    Patch,
    Update,
    Delete,
}

impl KubeVerb {
    pub const fn as_str(self) -> &'static str {
        match self {
            KubeVerb::Get => "get",
            KubeVerb::List => "list",
            KubeVerb::Watch => "watch",
            KubeVerb::Create => "create",
            KubeVerb::Patch => "patch",
            KubeVerb::Update => "update",
            KubeVerb::Delete => "delete",
        }
    }
}

/// The resource (or subresource) of a Kubernetes API call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KubeResource {
    Node,
    Pod,
    /// `pods/eviction`.
    PodEviction,
    /// `pods/resize`.
    PodResize,
    PodDisruptionBudget,
    /// Namespaces, watched for their labels (pod affinity's `namespaceSelector`).
    Namespace,
    /// `nodes/proxy` stats (summary API or cAdvisor).
    NodeStats,
    Event,
    Lease,
    VerticalPodAutoscaler,
    VerticalPodAutoscalerCheckpoint,
    /// Workload controllers looked up to resolve owners (ReplicaSet, Deployment, ...).
    Workload,
    /// The status ConfigMap (`kube-system/heatscaler-status`).
    ConfigMap,
}

impl KubeResource {
    pub const fn as_str(self) -> &'static str {
        match self {
            KubeResource::Node => "nodes",
            KubeResource::Pod => "pods",
            KubeResource::PodEviction => "pods/eviction",
            KubeResource::PodResize => "pods/resize",
            KubeResource::PodDisruptionBudget => "poddisruptionbudgets",
            KubeResource::Namespace => "namespaces",
            KubeResource::NodeStats => "nodes/proxy",
            KubeResource::Event => "events",
            KubeResource::Lease => "leases",
            KubeResource::VerticalPodAutoscaler => "verticalpodautoscalers",
            KubeResource::VerticalPodAutoscalerCheckpoint => "verticalpodautoscalercheckpoints",
            KubeResource::Workload => "workloads",
            KubeResource::ConfigMap => "configmaps",
        }
    }
}
