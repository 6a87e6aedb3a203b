//! What the planner asks the world to do. The actuator (against Kubernetes and
//! Heat) and the simulator execute the same actions under the same contract:
//!
//! - **Each action is independent and idempotent.** Executing one twice, or
//!   after the daemon restarted, is harmless; a failure of one never requires
//!   skipping another. Order within a plan does not matter for safety.
//! - **Each action names what it expects to find** (a Heat desired size, a
//!   removal phase, a pod uid). The executor re-reads that state right before
//!   acting and does nothing when it differs: the plan was made from a
//!   snapshot that may be stale, and the next pass plans again from fresh data.
//! - Failures are reported and retried by the next pass, never by the executor
//!   replaying a stale action in a loop.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::model::{Name, PodAffinityTerm, PodKey, Timestamp, WorkloadRef};
use crate::policy::Expander;

use super::explain::{CpuMemory, ProvisioningFailure, RollbackReason, UpdateReason};
use super::protocol::{self, NodePatch, Phase, RemovalRecord};

/// One thing the planner asks the world to do. Its facts — [`kind`](Action::kind),
/// [`target`](Action::target), [`group`](Action::group) and, through
/// `Display`, the one line that says what it does — are answered here, so
/// the actuator, the simulator, logs, Events and tests all say the same.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    ScaleUp(ScaleUp),
    RemoveMembers(RemoveMembers),
    StartRemoval(StartRemoval),
    EvictPods(EvictPods),
    MarkDrained(MarkDrained),
    RollBackRemoval(RollBackRemoval),
    DeleteNode(DeleteNode),
    ResizePod(ResizePod),
    RecreatePod(RecreatePod),
    SetPreferredAffinity(SetPreferredAffinity),
    RemovePreferredAffinity(RemovePreferredAffinity),
}

/// Which [`Action`] it is, without its data: the name in `explain --json`
/// (the serialised `action` tag), logs, Events and the simulator's timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    ScaleUp,
    RemoveMembers,
    StartRemoval,
    EvictPods,
    MarkDrained,
    RollBackRemoval,
    DeleteNode,
    ResizePod,
    RecreatePod,
    SetPreferredAffinity,
    RemovePreferredAffinity,
}

impl ActionKind {
    /// Every kind, in declaration order.
    pub const ALL: [ActionKind; 11] = [
        ActionKind::ScaleUp,
        ActionKind::RemoveMembers,
        ActionKind::StartRemoval,
        ActionKind::EvictPods,
        ActionKind::MarkDrained,
        ActionKind::RollBackRemoval,
        ActionKind::DeleteNode,
        ActionKind::ResizePod,
        ActionKind::RecreatePod,
        ActionKind::SetPreferredAffinity,
        ActionKind::RemovePreferredAffinity,
    ];

    /// `scale-up`, `evict-pods`, ...: the same as the serialised tag.
    pub const fn as_str(self) -> &'static str {
        match self {
            ActionKind::ScaleUp => "scale-up",
            ActionKind::RemoveMembers => "remove-members",
            ActionKind::StartRemoval => "start-removal",
            ActionKind::EvictPods => "evict-pods",
            ActionKind::MarkDrained => "mark-drained",
            ActionKind::RollBackRemoval => "roll-back-removal",
            ActionKind::DeleteNode => "delete-node",
            ActionKind::ResizePod => "resize-pod",
            ActionKind::RecreatePod => "recreate-pod",
            ActionKind::SetPreferredAffinity => "set-preferred-affinity",
            ActionKind::RemovePreferredAffinity => "remove-preferred-affinity",
        }
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an action acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target<'a> {
    /// A node group (Heat requests).
    Group(&'a str),
    /// A node (the steps of a removal).
    Node(&'a str),
    /// A pod (the pod level).
    Pod(&'a PodKey),
    /// A workload's pod template (the placement advisor).
    Workload(&'a WorkloadRef),
}

impl<'a> Target<'a> {
    /// The group's, node's or pod's name (a pod's without its namespace).
    pub fn name(self) -> &'a str {
        match self {
            Target::Group(name) | Target::Node(name) => name,
            Target::Pod(pod) => &pod.name,
            Target::Workload(w) => &w.name,
        }
    }
}

impl Action {
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::ScaleUp(_) => ActionKind::ScaleUp,
            Action::RemoveMembers(_) => ActionKind::RemoveMembers,
            Action::StartRemoval(_) => ActionKind::StartRemoval,
            Action::EvictPods(_) => ActionKind::EvictPods,
            Action::MarkDrained(_) => ActionKind::MarkDrained,
            Action::RollBackRemoval(_) => ActionKind::RollBackRemoval,
            Action::DeleteNode(_) => ActionKind::DeleteNode,
            Action::ResizePod(_) => ActionKind::ResizePod,
            Action::RecreatePod(_) => ActionKind::RecreatePod,
            Action::SetPreferredAffinity(_) => ActionKind::SetPreferredAffinity,
            Action::RemovePreferredAffinity(_) => ActionKind::RemovePreferredAffinity,
        }
    }

    /// The group, node or pod the action changes (the object of its Event).
    pub fn target(&self) -> Target<'_> {
        match self {
            Action::ScaleUp(a) => Target::Group(&a.group),
            Action::RemoveMembers(a) => Target::Group(&a.group),
            Action::StartRemoval(a) => Target::Node(&a.node),
            Action::EvictPods(a) => Target::Node(&a.node),
            Action::MarkDrained(a) => Target::Node(&a.node),
            Action::RollBackRemoval(a) => Target::Node(&a.node),
            Action::DeleteNode(a) => Target::Node(&a.node),
            Action::ResizePod(a) => Target::Pod(&a.pod),
            Action::RecreatePod(a) => Target::Pod(&a.pod),
            Action::SetPreferredAffinity(a) => Target::Workload(&a.workload),
            Action::RemovePreferredAffinity(a) => Target::Workload(&a.workload),
        }
    }

    /// The name of its [`target`](Action::target), for logs and timelines.
    pub fn subject(&self) -> &str {
        self.target().name()
    }

    /// The node group the action concerns, where it names one: the group
    /// itself, or the group of the member a removal record is for.
    pub fn group(&self) -> Option<&str> {
        match self {
            Action::ScaleUp(a) => Some(&a.group),
            Action::RemoveMembers(a) => Some(&a.group),
            Action::StartRemoval(a) => Some(&a.record.group),
            Action::MarkDrained(a) => Some(&a.record.group),
            Action::DeleteNode(a) => Some(&a.group),
            Action::EvictPods(_)
            | Action::RollBackRemoval(_)
            | Action::ResizePod(_)
            | Action::RecreatePod(_)
            | Action::SetPreferredAffinity(_)
            | Action::RemovePreferredAffinity(_) => None,
        }
    }
}

/// One line saying what the action does, after "would" in a dry run: for
/// logs, Events and `heatscaler explain`.
impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::ScaleUp(a) => write!(
                f,
                "grow node group {} from {} to {} for {} pending pod(s)",
                a.group, a.expected_desired, a.new_desired, a.pod_count
            ),
            Action::RemoveMembers(a) => write!(
                f,
                "remove member(s) {} from node group {} ({} -> {})",
                a.members.iter().map(|m| m.member.as_str()).collect::<Vec<_>>().join(", "),
                a.group,
                a.expected_desired,
                a.new_desired
            ),
            Action::StartRemoval(a) => write!(
                f,
                "taint and cordon node {} to remove member {}/{} ({} removal)",
                a.node,
                a.record.group,
                a.record.member,
                a.record.kind.as_str()
            ),
            Action::EvictPods(a) => write!(
                f,
                "evict {} pod(s) from node {}: {}",
                a.pods.len(),
                a.node,
                a.pods.iter().map(|e| e.pod.to_string()).collect::<Vec<_>>().join(", ")
            ),
            Action::MarkDrained(a) => write!(f, "mark node {} drained", a.node),
            Action::RollBackRemoval(a) => {
                write!(
                    f,
                    "give node {} back{} ({})",
                    a.node,
                    if a.uncordon { " and uncordon it" } else { "" },
                    a.reason
                )
            }
            Action::DeleteNode(a) => {
                write!(f, "delete node {} (member {}/{} is gone from Heat)", a.node, a.group, a.member)
            }
            Action::ResizePod(a) => {
                write!(f, "resize pod {} in place ({}): {}", a.pod, a.reason, Containers(&a.containers))
            }
            Action::RecreatePod(a) => {
                write!(f, "evict pod {} to be recreated ({}): {}", a.pod, a.reason, Containers(&a.containers))
            }
            Action::SetPreferredAffinity(a) => write!(
                f,
                "add a preferred pod affinity (weight {}) towards {} to the template of {}, rolled out within its PDB: {}",
                a.weight, a.server, a.workload, a.reason
            ),
            Action::RemovePreferredAffinity(a) => write!(
                f,
                "remove the preferred pod affinity towards {} from the template of {}, rolled out within its PDB: {}",
                a.server, a.workload, a.reason
            ),
        }
    }
}

/// Each container's requests, before and after, comma-separated.
struct Containers<'a>(&'a [ContainerResize]);

impl fmt::Display for Containers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

/// Grow a group: set Heat's desired size from `expected_desired` to `new_desired`.
///
/// Executor: re-read the group; act only if the stack is not busy and its
/// desired size still equals `expected_desired` (compare-and-set, so a replay
/// or a stale snapshot never adds twice). One Heat request.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScaleUp {
    pub group: String,
    pub expected_desired: u32,
    pub new_desired: u32,
    /// Pending pods this growth is for (the first few; `pod_count` is exact).
    pub pods: Vec<PodKey>,
    pub pod_count: usize,
    pub expander: Expander,
}

/// Remove exactly these members of one group, in one Heat request
/// (ResourceGroup: lower the count and name them in the removal policy;
/// AutoScalingGroup: mark them unhealthy, then lower the desired capacity).
///
/// Executor, in this order:
/// 1. Re-read the group: stack not busy, desired equals `expected_desired`,
///    every listed member still listed. Otherwise do nothing.
/// 2. For each member with `node`: re-read the node; it must carry the removal
///    record for this group and member in phase `drained` or `removing`, and
///    run no pods other than DaemonSet and mirror pods. If any node fails
///    this check, do nothing at all. Then patch each such node with
///    [`RemoveMembers::node_patch`] (phase `removing`) — before Heat is asked,
///    so a restart never rolls back a node whose server is being deleted.
/// 3. Ask Heat to set desired to `new_desired`, removing the members.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RemoveMembers {
    pub group: String,
    pub expected_desired: u32,
    /// Never below the members that stay, nor below the group's min size
    /// (at min size a failed member is replaced rather than dropped).
    pub new_desired: u32,
    pub members: Vec<MemberRemoval>,
    pub requested_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MemberRemoval {
    pub member: String,
    /// The drained node, for drained members; `None` for members that never
    /// became a node.
    pub node: Option<String>,
    pub cause: RemovalCause,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "cause", rename_all = "kebab-case")]
pub enum RemovalCause {
    /// Scale-down: the node was drained and held through the cooldown.
    Drained {
        drained: Timestamp,
    },
    ProvisioningFailed {
        failure: ProvisioningFailure,
    },
    /// The member's node vanished from Kubernetes (deleted by hand).
    NodeGone,
}

impl RemoveMembers {
    /// The patch that moves a drained node to phase `removing`.
    pub fn node_patch(&self, record: &RemovalRecord) -> NodePatch {
        let mut r = record.clone();
        r.phase = Phase::Removing;
        r.requested.get_or_insert(self.requested_at);
        NodePatch { set_annotations: r.to_annotations(), ..NodePatch::default() }
    }
}

/// Begin removing a node: taint, cordon, cluster-autoscaler's marks and
/// record, in one patch.
///
/// Executor: re-read the node; act only if it carries no removal taint or
/// record yet, is still the node of `record.member`, and — for
/// `kind: empty` — still runs no workload pods (else skip; the next pass
/// decides again).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StartRemoval {
    pub node: String,
    pub record: RemovalRecord,
    /// Requested-resource utilisation that made it unneeded (dominant resource).
    pub utilization: f64,
    pub unneeded_since: Timestamp,
}

impl StartRemoval {
    pub fn patch(&self) -> NodePatch {
        NodePatch {
            set_annotations: self.record.to_annotations(),
            remove_annotations: Vec::new(),
            add_taint: Some(protocol::removal_taint(self.record.started)),
            remove_taints: Vec::new(),
            unschedulable: Some(true),
            departure: Some(protocol::DepartureMarks::Set(self.record.started)),
        }
    }
}

/// Evict these pods through the eviction API (which enforces PDBs).
///
/// Executor: for each pod, evict with `preconditions.uid` set to `uid` (never
/// a same-named successor) and a grace period of at most `max_grace`. `429
/// Too Many Requests` (PDB) and `404` are not errors: the next pass looks
/// again. Act only while the node still carries a removal record in phase
/// `draining`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EvictPods {
    pub node: String,
    pub pods: Vec<Eviction>,
    #[serde(with = "secs")]
    pub max_grace: Duration,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Eviction {
    pub pod: PodKey,
    pub uid: Name,
}

/// Record that only DaemonSet and mirror pods remain.
///
/// Executor: re-read the node's pods; act only if no workload pod remains and
/// the node's phase is still `draining`; then apply [`MarkDrained::patch`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MarkDrained {
    pub node: String,
    pub record: RemovalRecord,
}

impl MarkDrained {
    pub fn patch(&self) -> NodePatch {
        NodePatch { set_annotations: self.record.to_annotations(), ..NodePatch::default() }
    }
}

/// Give a node back: remove the taint, cluster-autoscaler's marks and every
/// protocol annotation, and uncordon it unless it was cordoned before the
/// removal started.
///
/// Executor: re-read the node; never act on a node in phase `removing`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RollBackRemoval {
    pub node: String,
    pub uncordon: bool,
    pub reason: RollbackReason,
}

impl RollBackRemoval {
    /// Our taint, and — when the node is uncordoned — the
    /// `node.kubernetes.io/unschedulable` taint the node controller added on
    /// cordon: everything the removal changed goes in the same patch, so the
    /// scheduler sees the node usable at once, not after the controller's turn.
    fn taints_to_remove(&self) -> Vec<String> {
        let mut keys = vec![protocol::REMOVAL_TAINT.to_string()];
        if self.uncordon {
            keys.push(protocol::UNSCHEDULABLE_TAINT.to_string());
        }
        keys
    }

    pub fn patch(&self) -> NodePatch {
        NodePatch {
            set_annotations: BTreeMap::new(),
            remove_annotations: protocol::REMOVAL_ANNOTATIONS.iter().map(|s| s.to_string()).collect(),
            add_taint: None,
            remove_taints: self.taints_to_remove(),
            unschedulable: self.uncordon.then_some(false),
            departure: Some(protocol::DepartureMarks::Clear),
        }
    }
}

/// Delete the Node object of a removed minion.
///
/// Executor: re-read the node (phase `removing`, member `member` of `group`)
/// and the group: act only if Heat no longer lists the member.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeleteNode {
    pub node: String,
    pub group: String,
    pub member: String,
}

/// Resize a running pod in place through its `resize` subresource
/// (Kubernetes 1.33+); the kubelet applies it without restarting containers.
///
/// Executor: one PATCH of `pods/<name>/resize` that tests `metadata.uid` is
/// `uid` (never a same-named successor) and, for each listed container, sets
/// the CPU and memory requests and the limits that are non-zero here (a zero
/// limit stays as it is: unlimited stays unlimited). A pod already at these
/// values needs nothing; a gone or replaced pod (404, failed uid test) is not
/// an error. The kubelet reports progress in the pod's `PodResizePending` /
/// `PodResizeInProgress` conditions, which the next pass reads back into
/// `Pod::resize`. A rejection (LimitRange, quota, validation) is reported.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ResizePod {
    pub pod: PodKey,
    pub uid: Name,
    /// [`Name`]s shared by every action of a pass on the same node and under
    /// the same VPA object: a first pass over a cluster newly under VPA
    /// objects issues an action for most of its pods (124,000 in
    /// `resize_scale`), and a copy of each string per action was a good part
    /// of that pass (issue 22).
    pub node: Name,
    /// The VPA object (`namespace/name`), for Events.
    pub vpa: Name,
    pub containers: Vec<ContainerResize>,
    pub reason: UpdateReason,
}

/// A container's new resources. Only CPU and memory are resized.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ContainerResize {
    /// One [`Name`] per container of a pod, shared with the reason that names it.
    pub container: Name,
    /// The requests it has now (for Events and the executor's no-op check).
    pub from: CpuMemory,
    pub requests: CpuMemory,
    /// Zero: leave that limit as it is.
    pub limits: CpuMemory,
}

impl ContainerResize {
    /// Sets `container`'s spec to the new requests, and to the new limits
    /// where they are given: what the API server stores when the resize is
    /// accepted (the planner's view of a resized pod, the simulated kubelet,
    /// the tests' cluster all apply it the same way).
    pub fn apply_to(&self, container: &mut crate::model::Container) {
        container.requests.cpu_milli = self.requests.cpu_milli;
        container.requests.memory = self.requests.memory;
        if self.limits.cpu_milli > 0 {
            container.limits.cpu_milli = self.limits.cpu_milli;
        }
        if self.limits.memory > 0 {
            container.limits.memory = self.limits.memory;
        }
    }
}

/// `app cpu 100m, memory 128Mi -> cpu 200m, memory 256Mi`: the requests, before and after.
impl fmt::Display for ContainerResize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} -> {}", self.container, self.from, self.requests)
    }
}

/// Evict a pod so that its controller recreates it with the recommended
/// requests, which an admission controller applies
/// (`Snapshot::admission_applies_recommendations`; the planner plans none
/// without one — the replacement would come back at its template's requests).
///
/// Executor: the eviction API with `preconditions.uid` set to `uid` and the
/// pod's own grace period; `429 Too Many Requests` (PodDisruptionBudget) and
/// `404` are not errors — the next pass looks again. The planner never plans
/// more of these than the PDB's `disruptionsAllowed` (shared with drains in
/// the same pass), `min-replicas` and `max-disruption-fraction` allow.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecreatePod {
    pub pod: PodKey,
    pub uid: Name,
    /// Shared, as [`ResizePod`]'s.
    pub node: Name,
    pub vpa: Name,
    /// What the replacement should get.
    pub containers: Vec<ContainerResize>,
    pub reason: UpdateReason,
    /// Whether an admission controller gives the replacement `containers`
    /// (else it comes back at its template's requests): what Events say.
    pub recommendation_applied: bool,
}

/// Add a preferred pod affinity term to a workload's pod template, so that
/// its pods are scheduled next to the pods of `server` (the placement
/// advisor in `apply` mode: co-locating a chatty pair).
///
/// A template change rolls the workload out by its own strategy, and a
/// Deployment's or StatefulSet's rollout deletes pods without asking the
/// eviction API, so PDBs do not hold it back. The executor therefore starts
/// the rollout only when the PDBs would allow it (docs/decisions.md):
///
/// 1. Re-read the workload. Only Deployments and StatefulSets are changed;
///    any other kind is skipped. When its template already carries `term`
///    (same selector, namespaces, topology key) at `weight`, nothing to do.
/// 2. Skip while a rollout is in progress (Deployment: `observedGeneration`
///    below `generation`, or updated/available replicas below `replicas`;
///    StatefulSet: `currentRevision` ≠ `updateRevision`, or ready replicas
///    below `replicas`): the next pass asks again.
/// 3. Skip unless every PDB selecting the workload's pods has
///    `disruptionsAllowed` ≥ the rollout's `maxUnavailable` resolved against
///    `spec.replicas` (Deployment: default 25 % rounded down; StatefulSet:
///    default 1). A surge-only rollout (`maxUnavailable` 0) never lowers the
///    available replicas, so any PDB allows it.
/// 4. Append the term to
///    `spec.template.spec.affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution`
///    in one patch that tests the `resourceVersion` read in step 1, and set
///    the annotation `heatscaler.io/placement-advice` to `subject`, so the
///    term is known to be heatscaler's when it is withdrawn.
///
/// The planner plans one only while the PDBs covering the workload's pods
/// allow a disruption in this pass, and takes that disruption from the
/// allowance drains and recreations share.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SetPreferredAffinity {
    pub workload: WorkloadRef,
    /// The workload whose pods the term selects.
    pub server: WorkloadRef,
    pub term: PodAffinityTerm,
    pub weight: i32,
    /// The advisor's key for it (`co-locate <client> with <server>`).
    pub subject: String,
    /// The evidence, in one line: the pair, the traffic, the latency, the gain.
    pub reason: String,
}

/// Take back a preferred pod affinity the advisor added
/// ([`SetPreferredAffinity`]): the pair's traffic no longer makes it worth it.
///
/// Executor: as [`SetPreferredAffinity`] steps 1–3 (nothing to do when the
/// template does not carry `term`; never remove a term the
/// `heatscaler.io/placement-advice` annotation does not name as heatscaler's,
/// so an operator's own term stays), then one patch that removes the term
/// and the annotation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RemovePreferredAffinity {
    pub workload: WorkloadRef,
    pub server: WorkloadRef,
    pub term: PodAffinityTerm,
    pub subject: String,
    pub reason: String,
}

mod secs {
    pub fn serialize<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }
}
