//! Why the planner did — or did not — act. Every decision and non-decision of
//! a pass is recorded here as data (serialisable for `heatscaler explain
//! --json`, Events and alerts) with a human `Display` that reads like
//! cluster-autoscaler's event messages.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::model::{PodKey, Timestamp};

use super::protocol::{Phase, RemovalKind};
use super::scheduling::Unfit;
use super::time::compact;

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
    TriggersScaleUp {
        group: String,
    },
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
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "hold", rename_all = "kebab-case")]
pub enum Hold {
    UnneededTime,
    GroupAtMinSize { min: u32 },
    MaxNodesPerStep { max: u32 },
    MaxDrainParallelism { max: u32 },
    Cooldown { cause: Cooldown, until: Timestamp },
    ScaleUpThisPass,
    ScaleDownDisabled,
    StackBusy,
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

impl fmt::Display for EvictionBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pdb {
            Some(pdb) => write!(f, "{} blocked by PodDisruptionBudget {pdb}", self.pod),
            None => write!(f, "{} not evicted", self.pod),
        }
    }
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
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "cause", rename_all = "kebab-case")]
pub enum ProvisioningFailure {
    /// Heat reports `CREATE_FAILED` (quota, image, flavor, scheduling).
    CreateFailed,
    /// No node registered within `max-node-provision-time`.
    NoNode { limit_secs: u64 },
}

// ------------------------------------------------------------------- Display

fn ts(t: &Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::ScaleUpDisabled => f.write_str("scale-up is disabled"),
            Note::ScaleDownDisabled => f.write_str("scale-down is disabled"),
            Note::ScaleDownCooldown { cause, until } => {
                write!(f, "scale-down in cooldown ({}) until {}", cause, ts(until))
            }
            Note::ScaleDownAfterScaleUp => f.write_str("scale-down skipped: a scale-up was decided in this pass"),
            Note::CandidatesCapped { simulated, eligible } => {
                write!(f, "simulated {simulated} of {eligible} under-utilised nodes this pass")
            }
        }
    }
}

impl fmt::Display for Cooldown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cooldown::AfterAdd => "delay-after-add",
            Cooldown::AfterDelete => "delay-after-delete",
            Cooldown::AfterFailure => "delay-after-failure",
        })
    }
}

impl fmt::Display for PodOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PodOutcome::TooYoung { until } => {
                write!(f, "too young to act on (new-pod-scale-up-delay) until {}", ts(until))
            }
            PodOutcome::Nominated { node } => write!(f, "nominated to node {node} (preemption)"),
            PodOutcome::FitsExistingNode { node } => {
                write!(f, "fits existing node {node}; the scheduler will place it")
            }
            PodOutcome::FitsUpcomingNode { group } => write!(f, "fits a minion of group {group} that is on its way"),
            PodOutcome::ReclaimsNode { node } => write!(f, "fits drained node {node}, which is taken back"),
            PodOutcome::TriggersScaleUp { group } => write!(f, "triggered scale-up of group {group}"),
            PodOutcome::ScaleUpDisabled => f.write_str("scale-up is disabled"),
            PodOutcome::NoScaleUp { scheduler, groups } => {
                write!(f, "pod didn't trigger scale-up: {scheduler}")?;
                for v in groups {
                    write!(f, "; group {}: {}", v.group, v.rejection)?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for GroupRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupRejection::DoesNotFit { filter } => write!(f, "a new minion wouldn't fit: {filter}"),
            GroupRejection::BackedOff { until } => {
                write!(f, "backed off after a failed provisioning until {}", ts(until))
            }
            GroupRejection::StackBusy => f.write_str("Heat stack update in progress"),
            GroupRejection::Repairing => f.write_str("failed members are being removed this pass"),
            GroupRejection::MaxSize { max } => write!(f, "at max size {max}"),
            GroupRejection::MaxNodesPerScaleUp { max } => write!(f, "max-nodes-per-scale-up {max} reached"),
            GroupRejection::ClusterLimit { limit } => write!(f, "cluster limit {limit} reached"),
            GroupRejection::NoTemplate => f.write_str("no node template (no nodes and none configured)"),
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::MaxNodesTotal => "max-nodes-total",
            Limit::MaxCoresTotal => "max-cores-total",
            Limit::MaxMemoryTotal => "max-memory-total",
        })
    }
}

impl fmt::Display for NodeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeStatus::ControlPlane => f.write_str("control plane: never removed"),
            NodeStatus::NotInGroup => f.write_str("not in a node group: never removed"),
            NodeStatus::NotReady => f.write_str("not Ready"),
            NodeStatus::Cordoned => f.write_str("cordoned by someone else"),
            NodeStatus::ScaleDownDisabled => f.write_str("scale-down disabled by annotation"),
            NodeStatus::MemberNotComplete => f.write_str("its Heat member is not complete"),
            NodeStatus::Utilized { resource, utilization, threshold } => write!(
                f,
                "{resource} requests at {:.0}% of allocatable (threshold {:.0}%)",
                utilization * 100.0,
                threshold * 100.0
            ),
            NodeStatus::UsageUnknown => f.write_str("no observed usage (use-observed-usage is on)"),
            NodeStatus::NotEvaluated => f.write_str("under-utilised; not simulated this pass (candidate budget)"),
            NodeStatus::PodBlocks { pod, reason } => write!(f, "pod {pod} cannot be moved: {reason}"),
            NodeStatus::PdbBlocks { pod, pdb } => {
                write!(f, "pod {pod} cannot be moved: PodDisruptionBudget {pdb} allows no more disruptions")
            }
            NodeStatus::NoPlaceForPod { pod, scheduler } => write!(f, "pod {pod} fits no other node: {scheduler}"),
            NodeStatus::Unneeded { since, removable_at, held } => {
                write!(f, "unneeded since {}, removable at {}", ts(since), ts(removable_at))?;
                match held {
                    Some(h) => write!(f, "; held: {h}"),
                    None => Ok(()),
                }
            }
            NodeStatus::RemovalStarted { kind } => write!(f, "removal started ({})", kind.as_str()),
            NodeStatus::Removal { phase, step } => write!(f, "removal {phase}: {step}"),
            NodeStatus::RolledBack { reason } => write!(f, "removal rolled back: {reason}"),
        }
    }
}

impl fmt::Display for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hold::UnneededTime => f.write_str("waiting for unneeded-time"),
            Hold::GroupAtMinSize { min } => write!(f, "group at min size {min}"),
            Hold::MaxNodesPerStep { max } => write!(f, "max-nodes-per-step {max} reached"),
            Hold::MaxDrainParallelism { max } => write!(f, "max-drain-parallelism {max} reached"),
            Hold::Cooldown { cause, until } => write!(f, "{cause} until {}", ts(until)),
            Hold::ScaleUpThisPass => f.write_str("a scale-up was decided this pass"),
            Hold::ScaleDownDisabled => f.write_str("scale-down is disabled"),
            Hold::StackBusy => f.write_str("Heat stack update in progress"),
        }
    }
}

impl fmt::Display for BlockReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockReason::NotSafeToEvict => f.write_str("annotated safe-to-evict: false"),
            BlockReason::NoController => f.write_str("not managed by a controller"),
            BlockReason::CustomController { kind } => write!(f, "managed by a custom controller ({kind})"),
            BlockReason::LocalStorage => f.write_str("uses local storage"),
            BlockReason::SystemPodWithoutPdb => f.write_str("kube-system pod without a PodDisruptionBudget"),
        }
    }
}

impl fmt::Display for RemovalStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemovalStep::Evicting { pods, blocked } => {
                write!(f, "evicting {pods} pod(s)")?;
                for b in blocked {
                    write!(f, "; {b}")?;
                }
                Ok(())
            }
            RemovalStep::WaitingForTermination { pods, deadline } => {
                write!(f, "waiting for {pods} pod(s) to terminate (deadline {})", ts(deadline))
            }
            RemovalStep::MarkingDrained => f.write_str("drained"),
            RemovalStep::CoolingDown { until } => write!(f, "cooling down until {}", ts(until)),
            RemovalStep::RequestingRemoval => f.write_str("asking Heat to remove the member"),
            RemovalStep::AwaitingHeat => f.write_str("waiting for Heat"),
            RemovalStep::DeletingNode => f.write_str("member gone from Heat; deleting the Node"),
        }
    }
}

impl fmt::Display for RollbackReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RollbackReason::EvictionTimeout { blocked } => {
                f.write_str("evictions refused past max-eviction-time")?;
                for b in blocked {
                    write!(f, "; {b}")?;
                }
                Ok(())
            }
            RollbackReason::TerminationTimeout { pods } => {
                write!(f, "{pods} pod(s) still terminating past max-graceful-termination")
            }
            RollbackReason::NeededAgain { pods } => write!(f, "needed again by {pods} pending pod(s)"),
            RollbackReason::BlockingPod { pod, reason } => write!(f, "pod {pod} cannot be moved: {reason}"),
            RollbackReason::PodsReturned { pods } => {
                write!(f, "{pods} workload pod(s) scheduled onto the drained node")
            }
            RollbackReason::Inconsistent { problem } => write!(f, "inconsistent removal record: {problem}"),
        }
    }
}

impl fmt::Display for ProvisioningFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProvisioningFailure::CreateFailed => f.write_str("Heat reports CREATE_FAILED"),
            ProvisioningFailure::NoNode { limit_secs } => {
                write!(f, "no Ready node within max-node-provision-time {}", compact(Duration::from_secs(*limit_secs)))
            }
        }
    }
}

impl fmt::Display for Alert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Alert::ProvisioningFailed { group, member, cause, backoff_until } => write!(
                f,
                "group {group}: member {member} failed to provision ({cause}); removed it, group backed off until {}",
                ts(backoff_until)
            ),
            Alert::DrainRolledBack { node, reason } => write!(f, "node {node}: removal rolled back: {reason}"),
            Alert::PodsUnhelpable { pods, example, why } => {
                write!(f, "{pods} pending pod(s) no node group can host, e.g. {example}: {why}")
            }
            Alert::MemberLostNode { group, member, node } => {
                write!(f, "group {group}: node {node} of member {member} is gone; removing that member only")
            }
            Alert::NodeWithoutMember { node, group } => {
                write!(f, "node {node} is labelled for group {group} but Heat lists no member for it")
            }
            Alert::DesiredExceedsMembers { group, desired, members } => {
                write!(f, "group {group}: Heat desired size {desired} but only {members} member(s)")
            }
            Alert::NodeUnready { node, group, member } => {
                write!(f, "group {group}: node {node} (member {member}) not Ready after max-node-provision-time")
            }
        }
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        for g in &self.groups {
            write!(
                f,
                "group {}: desired {} (min {}, max {}), {} ready, {} upcoming",
                g.group, g.desired, g.min, g.max, g.ready, g.upcoming
            )?;
            if let Some(until) = &g.backoff_until {
                write!(f, ", backed off until {}", ts(until))?;
            }
            writeln!(f)?;
            for o in &g.options {
                writeln!(
                    f,
                    "  option {}: +{} minion(s) for {} pod(s), waste {:.2}, priority {}{}",
                    o.group,
                    o.new_nodes,
                    o.pods,
                    o.waste,
                    o.priority,
                    if o.chosen { " (chosen)" } else { "" }
                )?;
            }
        }
        for p in &self.pods {
            writeln!(f, "pod {}: {}", p.pod, p.outcome)?;
        }
        for n in &self.nodes {
            match &n.group {
                Some(g) => writeln!(f, "node {} ({g}): {}", n.node, n.status)?,
                None => writeln!(f, "node {}: {}", n.node, n.status)?,
            }
        }
        for a in &self.alerts {
            writeln!(f, "alert: {a}")?;
        }
        Ok(())
    }
}
