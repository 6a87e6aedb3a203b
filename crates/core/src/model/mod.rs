//! Plain owned data describing a cluster at one instant.
//!
//! Observers (the Kubernetes watch, the Heat poller, the simulator) produce it;
//! the planner reads it. It is deliberately smaller than the Kubernetes API
//! objects — only what decisions need — so that 300,000 pods fit in memory and
//! a plan over them takes milliseconds, and so the simulator can build it
//! without JSON.

mod affinity;
mod name;
pub mod quantity;
mod resource_policy;
mod resources;
mod selectors;
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;
mod vertical;
mod workload;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub use affinity::{HOSTNAME, PodAffinityTerm, TopologySpread, WeightedPodAffinityTerm, WhenUnsatisfiable};
pub use jiff::{SignedDuration, Timestamp};
pub use name::Name;
pub use resource_policy::{
    Capping, ContainerResourcePolicy, ContainerScalingMode, ControlledValues, DEFAULT_CONTAINER_POLICY,
    PodResourcePolicy, ResourceKind,
};
pub use resources::{Extended, ResourceShortfall, Resources};
pub use selectors::{
    LabelSelector, NodeSelectorOperator, NodeSelectorRequirement, NodeSelectorTerm, SelectorOperator,
    SelectorRequirement,
};
pub use vertical::{ChangeRequirement, ContainerRecommendation, EvictionRequirement, UpdateMode, VerticalScaling};
pub use workload::{Container, OwnerRef, PodPhase, PodTemplate, QosClass, ResizeState, WorkloadRef};

/// A node as the planner sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Only the annotations heatscaler and cluster-autoscaler define
    /// (removal progress, `scale-down-disabled`); others are dropped on import.
    pub annotations: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    pub allocatable: Resources,
    /// `spec.unschedulable` (cordoned).
    pub unschedulable: bool,
    /// The `Ready` condition is `True`.
    pub ready: bool,
    /// `spec.providerID`, e.g. `openstack:///<server uuid>`.
    pub provider_id: Option<String>,
    pub created: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Taint {
    pub key: String,
    pub value: Option<String>,
    pub effect: TaintEffect,
}

/// A taint's `effect`, spelled as in the Kubernetes API (and in node templates).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
pub enum TaintEffect {
    NoSchedule,
    PreferNoSchedule,
    NoExecute,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Toleration {
    /// Empty key with `Exists` tolerates everything.
    pub key: Option<String>,
    pub operator: TolerationOperator,
    pub value: Option<String>,
    /// `None` tolerates every effect.
    pub effect: Option<TaintEffect>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TolerationOperator {
    Equal,
    Exists,
}

impl Toleration {
    pub fn tolerates(&self, taint: &Taint) -> bool {
        if self.effect.is_some_and(|effect| effect != taint.effect) {
            return false;
        }
        match (&self.key, self.operator) {
            (None, TolerationOperator::Exists) => true,
            (None, TolerationOperator::Equal) => false,
            (Some(k), _) if *k != taint.key => false,
            (Some(_), TolerationOperator::Exists) => true,
            (Some(_), TolerationOperator::Equal) => {
                self.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
            }
        }
    }
}

/// Where and how a pod may be scheduled. Pods of one workload share one
/// `Arc<Placement>`, which keeps a 300,000-pod snapshot small.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Placement {
    pub node_selector: BTreeMap<String, String>,
    /// `requiredDuringSchedulingIgnoredDuringExecution` node affinity: the node
    /// must match at least one term. Empty: no constraint.
    pub required_node_affinity: Vec<NodeSelectorTerm>,
    pub tolerations: Vec<Toleration>,
    /// Required pod anti-affinity (`requiredDuringScheduling…`): no pod a
    /// term selects may run in the candidate node's domain of its topology key.
    pub pod_anti_affinity: Vec<PodAffinityTerm>,
    /// Required pod affinity: the candidate node's domain must run a pod each
    /// term selects (see the scheduling model for the first pod of a group).
    pub pod_affinity: Vec<PodAffinityTerm>,
    /// Preferred pod affinity: scores, never filters.
    pub preferred_pod_affinity: Vec<WeightedPodAffinityTerm>,
    /// Preferred pod anti-affinity: scores, never filters.
    pub preferred_pod_anti_affinity: Vec<WeightedPodAffinityTerm>,
    /// Topology spread constraints, `DoNotSchedule` (filters) and
    /// `ScheduleAnyway` (scores).
    pub spread: Vec<TopologySpread>,
    pub host_ports: Vec<HostPort>,
    /// The labels of the pod's namespace: what other pods' affinity terms
    /// with a `namespaceSelector` select by. Shared per workload like the rest.
    pub namespace_labels: BTreeMap<String, String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub port: u16,
    pub protocol: Protocol,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

/// A pod as the planner sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Pod {
    /// [`Name`]s, not `String`s: a pass under VPA objects copies a pod's uid
    /// and key into every resize action, explanation entry and timer of the
    /// resize memory — at 300,000 pods a copy of each string per pass was
    /// the largest part of its allocation (issue 22); a `Name` is copied by
    /// a reference count. The daemon's store shares one namespace `Name`
    /// between the pods of a namespace.
    pub uid: Name,
    pub namespace: Name,
    pub name: Name,
    /// Shared between pods with the same labels (the replicas of a workload):
    /// a label map costs more than half a kilobyte, times 150,000 pods.
    pub labels: Arc<BTreeMap<String, String>>,
    /// Shared between the pods of one controller, like `labels`: three
    /// strings (kind, name, uid) repeated in every replica were about 170
    /// bytes a pod, inline and on the heap (issue 22).
    pub owner: Option<Arc<OwnerRef>>,
    /// The workload the pod belongs to (Deployment through its ReplicaSet,
    /// StatefulSet, DaemonSet, ...), for recommendations and PDB-aware pacing.
    /// Its strings are [`Name`]s the workload's pods share.
    pub workload: Option<WorkloadRef>,
    pub node_name: Option<String>,
    pub phase: PodPhase,
    /// What the scheduler reserves: max(sum of containers, largest init
    /// container) plus overhead, and one `pods` slot.
    pub requests: Resources,
    pub containers: Vec<Container>,
    /// The QoS class its init containers alone have (`None`: it has none):
    /// the pod's class counts them too ([`QosClass::with_init`]), and an
    /// in-place resize may not change it.
    pub init_qos: Option<QosClass>,
    pub placement: Arc<Placement>,
    pub priority: i32,
    pub created: Timestamp,
    /// Since when `PodScheduled=False, reason=Unschedulable`; `None` if not.
    pub unschedulable_since: Option<Timestamp>,
    /// `status.nominatedNodeName`: the scheduler will place it after preemption.
    pub nominated_node: Option<String>,
    /// Set when the pod is terminating.
    pub deletion: Option<Timestamp>,
    /// `cluster-autoscaler.kubernetes.io/safe-to-evict`, when present.
    pub safe_to_evict: Option<bool>,
    /// Uses `emptyDir` (not memory-backed) or `hostPath` volumes.
    pub local_storage: bool,
    /// A static pod mirrored by the kubelet (`kubernetes.io/config.mirror`).
    pub mirror: bool,
    pub resize: ResizeState,
}

impl Pod {
    pub fn key(&self) -> PodKey {
        PodKey { namespace: self.namespace.clone(), name: self.name.clone() }
    }
    pub fn is_daemonset(&self) -> bool {
        self.owner.as_ref().is_some_and(|o| o.kind == "DaemonSet")
    }
    pub fn is_terminal(&self) -> bool {
        matches!(self.phase, PodPhase::Succeeded | PodPhase::Failed)
    }
    /// Pending, not bound, and the scheduler said it fits nowhere.
    pub fn is_unschedulable(&self) -> bool {
        self.node_name.is_none() && self.unschedulable_since.is_some() && self.deletion.is_none()
    }
}

/// Namespace and name: how Events and the eviction API address a pod. The
/// pod's own [`Name`]s, shared (ordered, hashed and serialised as the
/// strings they hold).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct PodKey {
    pub namespace: Name,
    pub name: Name,
}

impl std::fmt::Display for PodKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A PodDisruptionBudget with the API server's own count of allowed
/// disruptions (`status.disruptionsAllowed`), which is what eviction enforces.
#[derive(Clone, Debug, PartialEq)]
pub struct Pdb {
    pub namespace: String,
    pub name: String,
    pub selector: LabelSelector,
    pub disruptions_allowed: i32,
}

impl Pdb {
    pub fn covers(&self, pod: &Pod) -> bool {
        self.namespace == pod.namespace && self.selector.matches(&pod.labels)
    }
}

/// A Heat-managed group of minions, as last read from Heat.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupState {
    pub name: String,
    /// The size Heat is asked to keep (ResourceGroup count / ASG desired capacity).
    pub desired: u32,
    pub min_size: u32,
    pub max_size: u32,
    pub members: Vec<Member>,
    /// The stack is `*_IN_PROGRESS`: nothing may be asked of Heat now.
    pub stack_busy: bool,
    /// What a new minion looks like (from the group's nodes, else its configured template).
    pub template: Option<NodeShape>,
    /// Cost of one minion per hour, for reports and the expander.
    pub price_per_hour: f64,
    /// Rank for the priority expander.
    pub priority: i32,
}

/// One Heat member of a group and the node it maps to.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    /// The member's resource name inside the group (what removal policies name).
    pub id: String,
    /// The Kubernetes node it maps to, once one has registered.
    pub node_name: Option<String>,
    pub status: MemberStatus,
    /// When Heat started creating it.
    pub created: Option<Timestamp>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemberStatus {
    /// Being created or updated by Heat.
    InProgress,
    /// Created; the server exists.
    Complete,
    /// `CREATE_FAILED` (quota, image, scheduling): will never become a node.
    Failed,
    /// Marked unhealthy (`CHECK_FAILED`) so Heat removes it next.
    MarkedForRemoval,
    /// Being deleted by Heat.
    Deleting,
}

/// The shape of a minion: what a new node of a group will offer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeShape {
    pub allocatable: Resources,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
}

/// Everything the planner knows at one instant.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub nodes: Vec<Node>,
    pub pods: Vec<Pod>,
    pub pdbs: Vec<Pdb>,
    pub groups: Vec<GroupState>,
    /// VPA objects heatscaler handles, with their recommendations.
    pub vertical: Vec<VerticalScaling>,
    /// New pods get the recommended requests at creation: an admission
    /// controller applies `status.recommendation` (VPA's does, whichever
    /// recommender wrote it). Without one, a recreated pod comes back with its
    /// template's requests, so evict-and-recreate only moves it.
    pub admission_applies_recommendations: bool,
    /// The pod template of each controller (by `OwnerRef::uid`) that
    /// recreates its pods from one, where known (the daemon watches
    /// ReplicaSets): the size an evicted pod comes back at without an
    /// admission controller. Missing: the planner takes the pod as it runs.
    pub templates: HashMap<String, PodTemplate>,
}
