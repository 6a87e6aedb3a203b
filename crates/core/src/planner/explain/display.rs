//! Human wording of the explanation: what `heatscaler explain`, Events and
//! alerts print. Kept apart from the data so wording can change without it.

use std::fmt;
use std::time::Duration;

use crate::model::Timestamp;
use crate::planner::time::compact;

use super::*;

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
            Note::ScaleUpAvoided { pods, resized, freed } => {
                write!(f, "scale-up avoided: resizing {resized} pods frees {freed} for {pods} pending pod(s)")
            }
            Note::AutoscalingHalted(u) => write!(f, "{u}"),
            Note::Replacing { node, group, saving_per_hour, break_even_secs } => write!(
                f,
                "replacing {node} by a new minion of {group}: {saving_per_hour:.2}/h cheaper, repaid after {}",
                compact(Duration::from_secs(*break_even_secs))
            ),
            Note::ScaleUpBalanced { chosen, split } => {
                let split: Vec<String> = split.iter().map(|(g, n)| format!("{g} +{n}")).collect();
                write!(
                    f,
                    "scale-up of {chosen} balanced across similar groups (balance-similar-node-groups): {}",
                    split.join(", ")
                )
            }
        }
    }
}

impl fmt::Display for Unhealthy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "autoscaling halted: {} of {} nodes are unready, more than ok-total-unready-count {} and than \
             max-total-unready-percentage {}%; no group grows and no removal starts until nodes recover",
            self.unready, self.nodes, self.ok_count, self.max_percentage
        )
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
            PodOutcome::FitsOnceTerminated { node, terminating } => {
                write!(f, "fits node {node} once {terminating} terminating pod(s) there are gone")
            }
            PodOutcome::FitsAfterResize { node, resized } => {
                write!(f, "fits node {node} once {resized} over-requested pod(s) there shrink in place")
            }
            PodOutcome::TriggersScaleUp { group } => write!(f, "triggered scale-up of group {group}"),
            PodOutcome::ScaleUpDisabled => f.write_str("scale-up is disabled"),
            PodOutcome::AutoscalingHalted => {
                f.write_str("pod didn't trigger scale-up: autoscaling is halted, too many nodes are unready")
            }
            PodOutcome::NoScaleUp { scheduler, groups } => {
                f.write_str("pod didn't trigger scale-up: ")?;
                if groups.is_empty() {
                    f.write_str("no node groups")?;
                }
                for (i, v) in groups.iter().enumerate() {
                    let sep = if i == 0 { "" } else { "; " };
                    write!(f, "{sep}group {}: {}", v.group, v.rejection)?;
                }
                write!(f, " (scheduler: {scheduler})")
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
            NodeStatus::MoveDestination { pod } => {
                write!(
                    f,
                    "kept: pod {pod} was evicted to move here at its new size, and its replacement is not scheduled yet"
                )
            }
            NodeStatus::GrowthRoom { pod } => {
                write!(f, "kept: pod {pod}'s coming growth fits no node as they are, and this one, drained, holds it")
            }
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
            NodeStatus::AutoscalingHalted => {
                f.write_str("not evaluated: autoscaling is halted, too many nodes are unready")
            }
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
            Hold::YoungPod { pod, until } => {
                write!(f, "pod {pod} is not evicted before {} (min-pod-age)", ts(until))
            }
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
            RollbackReason::GroupAtMinSize { min } => {
                write!(
                    f,
                    "its group would fall below its min size {min} (members lost or failed since the drain began)"
                )
            }
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
            Alert::ResizeUnsupported { vpa, pods, example, why } => {
                write!(f, "VPA {vpa}: {pods} pod(s) not updated, e.g. {example}: {why}")
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
            Alert::AutoscalingHalted(u) => write!(f, "{u}"),
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
                    "  option {}: +{} minion(s) for {} pod(s), waste {:.2}, priority {}{}{}",
                    o.group,
                    o.new_nodes,
                    o.pods,
                    o.waste,
                    o.priority,
                    if o.preference != 0 { format!(", preference {}", o.preference) } else { String::new() },
                    if o.chosen { " (chosen)" } else { "" }
                )?;
            }
        }
        for p in &self.pods {
            writeln!(f, "pod {}: {}", p.pod, p.outcome)?;
        }
        for r in &self.resizes {
            writeln!(f, "pod {} (vpa {}): {}", r.pod, r.vpa, r.decision)?;
        }
        for c in &self.resize_counts {
            writeln!(f, "{} pod(s) (vpa {}): {}", c.pods, c.vpa, c.decision)?;
        }
        for p in &self.placement {
            writeln!(f, "placement {p}")?;
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

impl fmt::Display for EvictionBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pdb {
            Some(pdb) => write!(f, "{} blocked by PodDisruptionBudget {pdb}", self.pod),
            None => write!(f, "{} not evicted", self.pod),
        }
    }
}
