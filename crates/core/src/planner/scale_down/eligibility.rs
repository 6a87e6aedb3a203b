//! Whether a node may be considered for removal at all, and how utilised it
//! is: control plane, group membership, readiness, cordon, the
//! `scale-down-disabled` annotation, observed usage, the utilisation threshold.

use std::cmp::Ordering;

use crate::model::{MemberStatus, Pod, Resources};
use crate::planner::Cx;
use crate::planner::explain::NodeStatus;
use crate::planner::index::NodeIx;
use crate::planner::protocol::SCALE_DOWN_DISABLED;
use crate::planner::resize::Adjustments;

use super::Candidate;

/// Whether node `i` may be considered at all, and how utilised it is.
pub(super) fn candidate(
    cx: &Cx<'_>,
    i: NodeIx,
    incoming: &[&Pod],
    adjust: &Adjustments<'_>,
) -> Result<Candidate, NodeStatus> {
    let node = cx.ix.node(i);
    if cx.ix.is_control_plane(i) {
        return Err(NodeStatus::ControlPlane);
    }
    let Some(membership) = cx.ix.membership(i) else { return Err(NodeStatus::NotInGroup) };
    let member = cx.ix.member(membership);
    if member.status != MemberStatus::Complete {
        return Err(NodeStatus::MemberNotComplete);
    }
    if node.unschedulable {
        return Err(NodeStatus::Cordoned);
    }
    if node.annotations.get(SCALE_DOWN_DISABLED).is_some_and(|v| v == "true") {
        return Err(NodeStatus::ScaleDownDisabled);
    }
    if let Some(pod) = adjust.reserved_for(i) {
        // Removing it would undo the move: the pod would come back evicted again.
        return Err(NodeStatus::MoveDestination { pod: pod.to_string() });
    }
    let empty = incoming.is_empty() && cx.ix.workload_pods(i).all(|p| p.deletion.is_some());
    if !node.ready {
        // Still booting: provisioning watches it (max-node-provision-time).
        if cx.now.duration_since(node.created)
            < cx.policy.scale_up.max_node_provision_time.get().try_into().unwrap_or_default()
        {
            return Err(NodeStatus::NotReady);
        }
        // Its capacity is gone: only whether its pods can go elsewhere counts.
        return Ok(Candidate {
            node: i,
            group: membership.group(),
            utilization: 0.0,
            empty,
            above_threshold: false,
            known: false,
            unready: true,
        });
    }
    let sd = &cx.policy.scale_down;
    let observed = if sd.use_observed_usage {
        match cx.usage.and_then(|u| u.get(&node.name)) {
            Some(u) => Some(u),
            None => return Err(NodeStatus::UsageUnknown),
        }
    } else {
        None
    };
    let mut requested = cx.ix.requested(i).clone();
    adjust.apply(i, &mut requested);
    for pod in incoming {
        requested += &pod.requests;
    }
    let (resource, utilization, threshold) = utilization(&node.allocatable, &requested, observed, sd);
    let above_threshold = utilization >= threshold;
    if above_threshold && !sd.consolidation {
        return Err(NodeStatus::Utilized { resource: resource.to_string(), utilization, threshold });
    }
    Ok(Candidate {
        node: i,
        group: membership.group(),
        utilization,
        empty,
        above_threshold,
        known: false,
        unready: false,
    })
}

/// The dominant utilisation (resource, share, threshold): GPUs on GPU nodes,
/// else the larger of CPU and memory. Observed usage, when given, counts if higher.
fn utilization(
    alloc: &Resources,
    requested: &Resources,
    observed: Option<&Resources>,
    sd: &crate::policy::ScaleDownPolicy,
) -> (&'static str, f64, f64) {
    let share = |name: &str| {
        let have = alloc.get(name);
        if have <= 0 {
            return 0.0;
        }
        let used = requested.get(name).max(observed.map_or(0, |o| o.get(name)));
        used as f64 / have as f64
    };
    if alloc.gpus() > 0 {
        return (Resources::GPU, share(Resources::GPU), sd.gpu_utilization_threshold.0);
    }
    let (cpu, memory) = (share(Resources::CPU), share(Resources::MEMORY));
    match cpu.partial_cmp(&memory) {
        Some(Ordering::Less) => (Resources::MEMORY, memory, sd.utilization_threshold.0),
        _ => (Resources::CPU, cpu, sd.utilization_threshold.0),
    }
}
