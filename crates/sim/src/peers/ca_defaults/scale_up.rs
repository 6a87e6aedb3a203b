//! Scale-up as cluster-autoscaler documents it: unschedulable pods that fit
//! neither existing nor upcoming nodes are bin-packed onto template nodes of
//! each group (the `binpacking` estimator); the `random` expander picks one
//! group among those that help; one group grows per loop.

use std::collections::BTreeSet;

use rand::Rng;

use heatscaler_core::model::{MemberStatus, Pod, Timestamp};
use heatscaler_core::planner::action::ScaleUp;
use heatscaler_core::planner::for_peers::{GroupIx, Index};
use heatscaler_core::planner::scheduling::{Placer, SchedNode, fits};
use heatscaler_core::policy::Expander;

use super::CaDefaults;

/// Pods named in the action (the count is exact).
const PODS_NAMED: usize = 5;

pub(super) fn plan(ca: &mut CaDefaults, ix: &Index<'_>, busy: &BTreeSet<GroupIx>, now: Timestamp) -> Option<ScaleUp> {
    let pending: Vec<&Pod> =
        ix.unbound.iter().copied().filter(|p| p.unschedulable_since.is_some() && !p.is_daemonset()).collect();
    if pending.is_empty() {
        return None;
    }
    let remaining = not_schedulable_anywhere(ix, pending);
    if remaining.is_empty() {
        return None;
    }
    let total: u32 = ix.snap.groups.iter().map(|g| g.desired).sum();
    let mut options = Vec::new();
    for (g, group) in ix.groups() {
        if group.stack_busy || busy.contains(&g) || ca.backed_off(&group.name, now) {
            continue;
        }
        let mut cap = group.max_size.saturating_sub(group.desired);
        if let Some(max_total) = ca.max_nodes_total {
            cap = cap.min(max_total.saturating_sub(total));
        }
        let Some(template) = template(ix, g) else { continue };
        if cap == 0 {
            continue;
        }
        let (nodes, helped) = binpack(&remaining, &template, cap);
        if !helped.is_empty() {
            options.push((g, nodes, helped));
        }
    }
    if options.is_empty() {
        return None;
    }
    let (g, nodes, helped) = options.swap_remove(ca.rng.random_range(0..options.len()));
    let group = ix.group(g);
    Some(ScaleUp {
        group: group.name.clone(),
        expected_desired: group.desired,
        new_desired: group.desired + nodes,
        pods: helped.iter().take(PODS_NAMED).map(|p| p.key()).collect(),
        pod_count: helped.len(),
        expander: Expander::Random,
    })
}

/// Pending pods that fit no Ready node and no upcoming node (members asked
/// of Heat whose node is not Ready yet), as the scheduler would place them.
fn not_schedulable_anywhere<'a>(ix: &Index<'a>, pending: Vec<&'a Pod>) -> Vec<&'a Pod> {
    let mut nodes: Vec<SchedNode<'a>> =
        ix.nodes().filter(|&i| ix.node(i).ready && ix.removal(i).is_none()).map(|i| ix.sched_node(i)).collect();
    for (g, group) in ix.groups() {
        // Live members without a Ready node, and desired size Heat has not
        // turned into members yet.
        let live =
            |m: &&heatscaler_core::model::Member| matches!(m.status, MemberStatus::InProgress | MemberStatus::Complete);
        let booting =
            ix.members(g).filter(|(k, m)| live(m) && !ix.node_of(*k).is_some_and(|i| ix.node(i).ready)).count() as u32;
        let listed = group.members.iter().filter(live).count() as u32;
        let upcoming = booting + group.desired.saturating_sub(listed);
        if let Some(t) = template(ix, g) {
            nodes.extend(std::iter::repeat_n(t, upcoming as usize));
        }
    }
    let mut placer = Placer::new(nodes);
    let mut left = Vec::new();
    for pod in pending {
        match placer.find(pod, None) {
            Some(n) => placer.place(pod, n),
            None => left.push(pod),
        }
    }
    left
}

/// A new node of group `g` with the DaemonSet pods it would run.
fn template<'a>(ix: &Index<'a>, g: GroupIx) -> Option<SchedNode<'a>> {
    let group = ix.group(g);
    let shape = group.template.as_ref()?;
    Some(SchedNode::new_minion(format!("template-{}", group.name), shape, &ix.daemonsets))
}

/// The binpacking estimator: pods by decreasing size (CPU plus memory share
/// of the template), each onto the first new node it fits, opening a node
/// when none does, at most `cap` nodes. Returns the nodes and the pods placed.
fn binpack<'a>(pods: &[&'a Pod], template: &SchedNode<'a>, cap: u32) -> (u32, Vec<&'a Pod>) {
    let share = |p: &Pod| {
        let a = &template.allocatable;
        let part = |req: i64, alloc: i64| if alloc > 0 { req as f64 / alloc as f64 } else { 0.0 };
        part(p.requests.cpu_milli, a.cpu_milli) + part(p.requests.memory, a.memory)
    };
    let mut sorted: Vec<&'a Pod> = pods.iter().copied().filter(|p| fits(p, template)).collect();
    sorted.sort_by(|a, b| share(b).total_cmp(&share(a)));
    let mut placer = Placer::new(Vec::new());
    let mut placed = Vec::new();
    for pod in sorted {
        let slot = match placer.find(pod, None) {
            Some(n) => n,
            None if (placer.nodes.len() as u32) < cap => placer.push(template.clone()),
            None => continue,
        };
        placer.place(pod, slot);
        placed.push(pod);
    }
    (placer.nodes.len() as u32, placed)
}
