//! Whether the cluster is healthy enough to autoscale, as cluster-autoscaler
//! judges it (`--max-total-unready-percentage`, `--ok-total-unready-count`):
//! when many nodes are unready at once, the cause is an outage that new
//! minions will not mend (the network, the control plane, the cloud), and
//! both growing (more VMs for the same outage) and shrinking (draining onto
//! nodes that may come back) make it worse. So a pass in an unhealthy
//! cluster starts nothing new at the node level: no scale-up, no removal,
//! and the unneeded timers restart once it recovers. Removals already under
//! way continue (a half-drained minion is best finished or rolled back by
//! its own rules); the pod level is not affected.
//!
//! A node counts as unready as in cluster-autoscaler: not Ready, not being
//! removed (a removal record, as its `ToBeDeleted` taint) and not still
//! starting (registered less than `max-node-provision-time` ago — a booting
//! minion is provisioning's business). Every node of the cluster counts, in
//! a group or not.

use super::explain::{Alert, NodeExplanation, NodeStatus, Note, Unhealthy};
use super::time::elapsed;
use super::{Cx, Pass};
use crate::planner::action::Action;

/// `Some` when autoscaling must halt this pass.
pub fn check(cx: &Cx<'_>) -> Option<Unhealthy> {
    let limits = &cx.policy.limits;
    let starting = cx.policy.scale_up.max_node_provision_time.get();
    let unready = cx
        .ix
        .nodes()
        .filter(|&i| {
            let node = cx.ix.node(i);
            !node.ready && cx.ix.removal(i).is_none() && elapsed(cx.now, node.created) >= starting
        })
        .count();
    let nodes = cx.ix.node_count();
    let over_count = unready > limits.ok_total_unready_count as usize;
    let over_share = unready as f64 > limits.max_total_unready_percentage / 100.0 * nodes as f64;
    (over_count && over_share).then_some(Unhealthy {
        unready,
        nodes,
        ok_count: limits.ok_total_unready_count,
        max_percentage: limits.max_total_unready_percentage,
    })
}

/// Scale-down in an unhealthy cluster: no node is judged, every timer
/// restarts (cluster-autoscaler forgets its unneeded nodes too), and each
/// node not in removal says why.
pub fn halt_scale_down(cx: &Cx<'_>, pass: &mut Pass<'_>, why: &Unhealthy) -> Vec<Action> {
    pass.memory.unneeded_since.clear();
    pass.ex.notes.push(Note::AutoscalingHalted(why.clone()));
    pass.ex.alerts.push(Alert::AutoscalingHalted(why.clone()));
    for i in cx.ix.nodes().filter(|&i| cx.ix.removal(i).is_none()) {
        let group = cx.ix.membership(i).map(|m| cx.ix.group(m.group()).name.clone());
        pass.ex.nodes.push(NodeExplanation {
            node: cx.ix.node(i).name.clone(),
            group,
            status: NodeStatus::AutoscalingHalted,
        });
    }
    Vec::new()
}
