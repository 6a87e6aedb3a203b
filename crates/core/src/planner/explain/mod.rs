//! Why the planner did — or did not — act. Every decision and non-decision of
//! a pass is recorded here as data (serialisable for `heatscaler explain
//! --json`, Events and alerts) with a human `Display` that reads like
//! cluster-autoscaler's event messages.

use serde::Serialize;

use crate::model::{PodKey, Timestamp};

use super::protocol::{Phase, RemovalKind};
use super::scheduling::Unfit;

pub use placement::{PlacementExplanation, PlacementOutcome};
pub use resize::{CpuMemory, ResizeCount, ResizeDecision, ResizeExplanation, UpdateBlock, UpdateReason};

#[derive(Clone, Debug, Default, Serialize)]
pub struct Explanation {
    pub notes: Vec<Note>,
    /// Every pod the scheduler could not place, and what the planner made of it.
    pub pods: Vec<PodExplanation>,
    pub groups: Vec<GroupExplanation>,
    /// Every node: why it is (not) a scale-down candidate, or its removal progress.
    pub nodes: Vec<NodeExplanation>,
    /// Operator-worthy: failed provisioning, failed drains, drift.
    pub alerts: Vec<Alert>,
    /// Pods under a VPA object heatscaler handles whose decision is about
    /// them (an update, a block, a resize in flight), in snapshot order.
    pub resizes: Vec<ResizeExplanation>,
    /// The other pods under those objects, counted per object and decision.
    pub resize_counts: Vec<ResizeCount>,
    /// The placement advisor's advice: given, standing, withdrawn, withheld.
    pub placement: Vec<PlacementExplanation>,
}

impl Explanation {
    pub fn node(&self, name: &str) -> Option<&NodeStatus> {
        self.nodes.iter().find(|n| n.node == name).map(|n| &n.status)
    }
    pub fn pod(&self, key: &PodKey) -> Option<&PodOutcome> {
        self.pods.iter().find(|p| &p.pod == key).map(|p| &p.outcome)
    }
    pub fn group(&self, name: &str) -> Option<&GroupExplanation> {
        self.groups.iter().find(|g| g.group == name)
    }
    pub fn resize(&self, key: &PodKey) -> Option<&ResizeDecision> {
        self.resizes.iter().find(|r| &r.pod == key).map(|r| &r.decision)
    }
    /// How many pods of VPA object `vpa` (`namespace/name`) were counted with `decision`.
    pub fn resize_count(&self, vpa: &str, decision: &ResizeDecision) -> u32 {
        self.resize_counts.iter().filter(|c| c.vpa == vpa && &c.decision == decision).map(|c| c.pods).sum()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "note", rename_all = "kebab-case")]
pub enum Note {
    ScaleUpDisabled,
    ScaleDownDisabled,
    /// No removal starts before `until` (unneeded nodes are still tracked).
    ScaleDownCooldown {
        cause: Cooldown,
        until: Timestamp,
    },
    /// A scale-up was decided this pass; removals wait for the next one.
    ScaleDownAfterScaleUp,
    /// Only part of the under-utilised nodes were simulated this pass.
    CandidatesCapped {
        simulated: usize,
        eligible: usize,
    },
    /// Pending pods fit once over-requested pods shrink: no group grows for them.
    ScaleUpAvoided {
        pods: usize,
        resized: usize,
        freed: CpuMemory,
    },
    /// Too many nodes are unready: nothing new starts at the node level.
    AutoscalingHalted(Unhealthy),
    /// A cheaper minion was asked for to replace `node` (`replace-with-cheaper`);
    /// the replacement repays running both after `break_even_secs`.
    Replacing {
        node: String,
        group: String,
        saving_per_hour: f64,
        break_even_secs: u64,
    },
    /// A scale-up was split across similar groups to keep their sizes balanced.
    ScaleUpBalanced {
        /// The group the expander chose.
        chosen: String,
        /// Every group that grows, with the minions it gets.
        split: Vec<(String, u32)>,
    },
}

/// More nodes unready than `cluster-limits.ok-total-unready-count` and than
/// `max-total-unready-percentage` of all nodes (planner::health).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Unhealthy {
    pub unready: usize,
    pub nodes: usize,
    pub ok_count: u32,
    pub max_percentage: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cooldown {
    AfterAdd,
    AfterDelete,
    AfterFailure,
}

#[derive(Clone, Debug, Serialize)]
pub struct PodExplanation {
    pub pod: PodKey,
    pub outcome: PodOutcome,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum PodOutcome {
    /// Younger than `new-pod-scale-up-delay`.
    TooYoung {
        until: Timestamp,
    },
    /// The scheduler will place it after preemption.
    Nominated {
        node: String,
    },
    /// Fits an existing node; the scheduler has not caught up yet.
    FitsExistingNode {
        node: String,
    },
    /// Fits capacity already on its way (a minion booting or being created).
    FitsUpcomingNode {
        group: String,
    },
    /// Fits a drained node in cooldown, which is therefore taken back.
    ReclaimsNode {
        node: String,
    },
    /// Fits an existing node once the pods terminating there (within their
    /// grace period) are gone; the scheduler will place it then.
    FitsOnceTerminated {
        node: String,
        terminating: usize,
    },
    /// Fits an existing node once over-requested pods there shrink in place.
    FitsAfterResize {
        node: String,
        resized: usize,
    },
    TriggersScaleUp {
        group: String,
    },
    /// Would trigger a scale-up, but too many nodes are unready.
    AutoscalingHalted,
    /// No group can help it now; why, per group.
    NoScaleUp {
        scheduler: String,
        groups: Vec<GroupVerdict>,
    },
    ScaleUpDisabled,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupVerdict {
    pub group: String,
    pub rejection: GroupRejection,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum GroupRejection {
    /// A new minion of this group would not fit the pod (permanent until the template changes).
    DoesNotFit {
        filter: Unfit,
    },
    BackedOff {
        until: Timestamp,
    },
    /// Heat is updating the stack; nothing may be asked of it now.
    StackBusy,
    /// The group is being repaired this pass (failed members removed).
    Repairing,
    MaxSize {
        max: u32,
    },
    MaxNodesPerScaleUp {
        max: u32,
    },
    ClusterLimit {
        limit: Limit,
    },
    /// Neither existing nodes nor a configured template say what a minion looks like.
    NoTemplate,
}

impl GroupRejection {
    /// Whether the pod could never be helped by this group as configured
    /// (as opposed to "not now").
    pub fn is_permanent(&self) -> bool {
        matches!(self, GroupRejection::DoesNotFit { .. } | GroupRejection::NoTemplate)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Limit {
    MaxNodesTotal,
    MaxCoresTotal,
    MaxMemoryTotal,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct GroupExplanation {
    pub group: String,
    pub desired: u32,
    pub min: u32,
    pub max: u32,
    /// Members with a Ready node.
    pub ready: u32,
    /// Members (or requested capacity) not yet a Ready node, within the provision time.
    pub upcoming: u32,
    pub backoff_until: Option<Timestamp>,
    /// Scale-up options evaluated this pass, best first.
    pub options: Vec<OptionScore>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OptionScore {
    pub group: String,
    pub new_nodes: u32,
    pub pods: usize,
    /// Share of the new minions' CPU and memory left unused (least-waste's score).
    pub waste: f64,
    pub priority: i32,
    pub price_per_hour: f64,
    pub chosen: bool,
    /// How much the pods placed prefer this group's minions (their preferred
    /// pod affinity and anti-affinity, `ScheduleAnyway` spread): only the
    /// options with the highest go to the expander. 0 without preferences.
    #[serde(skip_serializing_if = "is_zero")]
    pub preference: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

#[derive(Clone, Debug, Serialize)]
pub struct NodeExplanation {
    pub node: String,
    pub group: Option<String>,
    pub status: NodeStatus,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum NodeStatus {
    ControlPlane,
    /// Not a member of any node group: heatscaler never removes it.
    NotInGroup,
    NotReady,
    /// Cordoned by someone else.
    Cordoned,
    /// `cluster-autoscaler.kubernetes.io/scale-down-disabled: "true"`.
    ScaleDownDisabled,
    /// Its Heat member is not `Complete` (being created, failed, or leaving).
    MemberNotComplete,
    Utilized {
        resource: String,
        utilization: f64,
        threshold: f64,
    },
    /// `use-observed-usage` is on and no usage was observed for the node.
    UsageUnknown,
    /// Under-utilised, but beyond this pass's simulation budget.
    NotEvaluated,
    PodBlocks {
        pod: PodKey,
        reason: BlockReason,
    },
    PdbBlocks {
        pod: PodKey,
        pdb: String,
    },
    NoPlaceForPod {
        pod: PodKey,
        scheduler: String,
    },
    /// A pod (`namespace/name`) was evicted to move here at its new size and
    /// its replacement is not scheduled yet.
    MoveDestination {
        pod: String,
    },
    /// A pod's coming growth fits no node as they are, and this one,
    /// drained, holds it: removed, the growth would need a minion added back.
    GrowthRoom {
        pod: PodKey,
    },
    Unneeded {
        since: Timestamp,
        removable_at: Timestamp,
        held: Option<Hold>,
    },
    RemovalStarted {
        kind: RemovalKind,
    },
    Removal {
        phase: Phase,
        step: RemovalStep,
    },
    RolledBack {
        reason: RollbackReason,
    },
    /// Not judged: too many nodes are unready (planner::health).
    AutoscalingHalted,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "hold", rename_all = "kebab-case")]
pub enum Hold {
    UnneededTime,
    GroupAtMinSize {
        min: u32,
    },
    MaxNodesPerStep {
        max: u32,
    },
    MaxDrainParallelism {
        max: u32,
    },
    Cooldown {
        cause: Cooldown,
        until: Timestamp,
    },
    ScaleUpThisPass,
    ScaleDownDisabled,
    StackBusy,
    /// A pod on the node is younger than the planner's `min-pod-age`: it was
    /// just created (often by an eviction) and is not evicted again before `until`.
    YoungPod {
        pod: PodKey,
        until: Timestamp,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum BlockReason {
    /// `cluster-autoscaler.kubernetes.io/safe-to-evict: "false"`.
    NotSafeToEvict,
    NoController,
    CustomController {
        kind: String,
    },
    LocalStorage,
    SystemPodWithoutPdb,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EvictionBlock {
    pub pod: PodKey,
    /// The exhausted PodDisruptionBudget; `None` when the eviction API refused
    /// for another reason (the pod is still there after its evictions).
    pub pdb: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum RemovalStep {
    Evicting {
        pods: usize,
        blocked: Vec<EvictionBlock>,
    },
    WaitingForTermination {
        pods: usize,
        deadline: Timestamp,
    },
    MarkingDrained,
    CoolingDown {
        until: Timestamp,
    },
    /// Drained and cooled down; Heat is asked to remove the member in this pass.
    RequestingRemoval,
    /// Waiting for Heat (stack busy, member deleting, or a scale-up of the group this pass).
    AwaitingHeat,
    DeletingNode,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum RollbackReason {
    /// Evictions still refused after `max-eviction-time`.
    EvictionTimeout {
        blocked: Vec<EvictionBlock>,
    },
    /// Evicted pods still running after `max-eviction-time` + `max-graceful-termination`.
    TerminationTimeout {
        pods: usize,
    },
    /// Pending pods fit it again during cooldown: uncordoning beats booting.
    NeededAgain {
        pods: usize,
    },
    BlockingPod {
        pod: PodKey,
        reason: BlockReason,
    },
    /// Workload pods were scheduled onto the drained node (they tolerate the taint).
    PodsReturned {
        pods: usize,
    },
    /// Taint and annotations disagree, or do not match the node's Heat member.
    Inconsistent {
        problem: String,
    },
    /// The group can no longer lose the node: members lost or failed since
    /// the removal started (or a raised min size) leave it at `min`.
    GroupAtMinSize {
        min: u32,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "alert", rename_all = "kebab-case")]
pub enum Alert {
    /// A minion never became a node; the member is removed and the group backed off.
    ProvisioningFailed {
        group: String,
        member: String,
        cause: ProvisioningFailure,
        backoff_until: Timestamp,
    },
    DrainRolledBack {
        node: String,
        reason: RollbackReason,
    },
    /// Pods that no group can ever host as configured.
    PodsUnhelpable {
        pods: usize,
        example: PodKey,
        why: String,
    },
    /// The member's node is gone (deleted by hand?) — the member is removed, nothing else.
    MemberLostNode {
        group: String,
        member: String,
        node: String,
    },
    /// A node labelled as a group's minion that Heat does not list.
    NodeWithoutMember {
        node: String,
        group: String,
    },
    /// Heat's desired size exceeds its members for longer than the provision time.
    DesiredExceedsMembers {
        group: String,
        desired: u32,
        members: u32,
    },
    /// A registered minion that is not Ready after the provision time; not
    /// counted as capacity, not removed automatically.
    NodeUnready {
        node: String,
        group: String,
        member: String,
    },
    /// Pods of a VPA object whose update Kubernetes would refuse (it changes
    /// their QoS class) and that cannot be recreated instead: nothing is sent;
    /// the configuration has to change.
    ResizeUnsupported {
        vpa: String,
        pods: usize,
        example: PodKey,
        why: String,
    },
    /// Too many nodes are unready: no scale-up, no new removal.
    AutoscalingHalted(Unhealthy),
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "cause", rename_all = "kebab-case")]
pub enum ProvisioningFailure {
    /// Heat reports `CREATE_FAILED` (quota, image, flavor, scheduling).
    CreateFailed,
    /// No node registered within `max-node-provision-time`.
    NoNode { limit_secs: u64 },
}

mod display;
mod placement;
mod resize;
