//! Scale-down as cluster-autoscaler documents it: nodes below the utilisation
//! threshold whose pods can all move elsewhere are unneeded; after the
//! unneeded time, outside the cool-downs, empty ones are deleted in bulk and
//! otherwise one non-empty node is drained and deleted. The Karpenter-like
//! peer also replaces a node by a cheaper one ([`replacement`]).

use std::collections::BTreeMap;

use heatscaler_core::model::{MemberStatus, Timestamp};
use heatscaler_core::planner::Action;
use heatscaler_core::planner::action::{EvictPods, Eviction, MarkDrained, MemberRemoval, RemovalCause, StartRemoval};
use heatscaler_core::planner::for_peers::{Disposition, GroupIx, Index, NodeIx, PdbBudget, classify};
use heatscaler_core::planner::protocol::{Phase, RemovalKind, RemovalRecord, SCALE_DOWN_DISABLED};
use heatscaler_core::planner::scheduling::Placer;
use heatscaler_core::planner::time::{after_std, elapsed};

use std::collections::BTreeSet;

use heatscaler_core::model::Pod;
use heatscaler_core::planner::action::ScaleUp;
use heatscaler_core::planner::scheduling::SchedNode;
use heatscaler_core::policy::Expander;

use super::{
    CaDefaults, DELAY_AFTER_DELETE, DELAY_AFTER_FAILURE, MAX_GRACEFUL_TERMINATION, POOL_MIN, POOL_RATIO, Removals,
};

/// A node found unneeded in this loop.
struct Unneeded {
    node: NodeIx,
    group: GroupIx,
    member: String,
    utilization: f64,
    empty: bool,
}

/// Returns whether a removal started (or one is under way) this loop.
pub(super) fn plan(
    ca: &mut CaDefaults,
    ix: &Index<'_>,
    now: Timestamp,
    actions: &mut Vec<Action>,
    removals: &mut Removals,
) -> bool {
    let unneeded = find_unneeded(ca, ix);
    let previous = std::mem::take(&mut ca.unneeded_since);
    ca.unneeded_since = unneeded
        .iter()
        .map(|u| {
            let name = ix.node(u.node).name.clone();
            let since = previous.get(&name).copied().unwrap_or(now);
            (name, since)
        })
        .collect();
    let cooling = |last: Option<Timestamp>, delay| last.is_some_and(|t| after_std(t, delay) > now);
    if cooling(ca.last_scale_up, ca.config.delay_after_add)
        || cooling(ca.last_failure, DELAY_AFTER_FAILURE)
        || cooling(ca.last_delete, DELAY_AFTER_DELETE)
    {
        return true;
    }
    // Removals already under way count against min sizes.
    let mut slack: BTreeMap<GroupIx, i64> = ix
        .groups()
        .map(|(g, group)| {
            let leaving = ix
                .removals()
                .filter_map(|(_, state)| state.record())
                .filter(|r| r.group == group.name && r.phase < Phase::Removing)
                .count()
                + removals.get(&g).map_or(0, Vec::len);
            (g, i64::from(group.desired) - leaving as i64 - i64::from(group.min_size))
        })
        .collect();
    let ready: Vec<&Unneeded> = unneeded
        .iter()
        .filter(|u| elapsed(now, ca.unneeded_since[&ix.node(u.node).name]) >= ca.config.unneeded_time)
        .filter(|u| !ix.group(u.group).stack_busy)
        .collect();
    let bulk = ca.config.max_empty_bulk_delete.unwrap_or_else(|| {
        let nodes = ix.nodes().filter(|&i| ix.membership(i).is_some()).count();
        nodes.div_ceil(10).max(1)
    });
    let mut deleted = 0;
    for u in ready.iter().filter(|u| u.empty) {
        if deleted == bulk || slack[&u.group] <= 0 {
            continue;
        }
        *slack.entry(u.group).or_default() -= 1;
        deleted += 1;
        let start = start(ix, u, RemovalKind::Empty, now);
        let mut record = start.record.clone();
        record.phase = Phase::Drained;
        record.drained = Some(now);
        let node = start.node.clone();
        actions.push(Action::StartRemoval(start));
        actions.push(Action::MarkDrained(MarkDrained { node: node.clone(), record }));
        removals.entry(u.group).or_default().push(MemberRemoval {
            member: u.member.clone(),
            node: Some(node),
            cause: RemovalCause::Drained { drained: now },
        });
    }
    if deleted > 0 {
        return true;
    }
    let draining = ix
        .removals()
        .filter_map(|(_, state)| state.record())
        .any(|r| r.kind == RemovalKind::Drain && r.phase == Phase::Draining);
    if draining {
        return true; // one non-empty node at a time
    }
    let Some(u) = ready.iter().find(|u| !u.empty && slack[&u.group] > 0) else {
        // Nodes waiting out their unneeded time are not replaced either.
        return !unneeded.is_empty();
    };
    {
        let start = start(ix, u, RemovalKind::Drain, now);
        let pods = ix
            .workload_pods(u.node)
            .filter(|p| p.deletion.is_none())
            .map(|p| Eviction { pod: p.key(), uid: p.uid.clone() })
            .collect();
        let node = start.node.clone();
        actions.push(Action::StartRemoval(start));
        actions.push(Action::EvictPods(EvictPods { node, pods, max_grace: MAX_GRACEFUL_TERMINATION }));
    }
    true
}

/// Karpenter's single-node consolidation by replacement: the most expensive
/// node whose movable pods fit on the other nodes plus one new node of a
/// cheaper group, and that group (the cheapest that takes them). The node is
/// then consolidated by deletion once the new node is Ready.
pub(super) fn replacement(
    ca: &CaDefaults,
    ix: &Index<'_>,
    busy: &BTreeSet<GroupIx>,
    now: Timestamp,
) -> Option<(ScaleUp, String)> {
    let draining = ix.removals().any(|(_, state)| state.record().is_some());
    if draining {
        return None;
    }
    let mut candidates: Vec<(NodeIx, GroupIx)> = ix
        .nodes()
        .filter_map(|i| {
            let m = ix.membership(i)?;
            let node = ix.node(i);
            let ok = node.ready
                && !node.unschedulable
                && ix.member(m).status == MemberStatus::Complete
                && ix.removal(i).is_none()
                && !ix.is_control_plane(i)
                && node.annotations.get(SCALE_DOWN_DISABLED).is_none_or(|v| v != "true");
            ok.then_some((i, m.group()))
        })
        .collect();
    let price = |g: GroupIx| ix.group(g).price_per_hour;
    candidates.sort_by(|a, b| price(b.1).total_cmp(&price(a.1)).then(a.0.cmp(&b.0)));
    let destinations: Vec<NodeIx> = ix.nodes().filter(|&i| ix.node(i).ready && ix.removal(i).is_none()).collect();
    let slot: BTreeMap<NodeIx, usize> = destinations.iter().enumerate().map(|(k, &i)| (i, k)).collect();
    let total: u32 = ix.snap.groups.iter().map(|g| g.desired).sum();
    for (i, own_group) in candidates {
        let mut placer = Placer::new(destinations.iter().map(|&d| ix.sched_node(d)).collect());
        let mut budget = PdbBudget::new(ix);
        let mut left: Vec<&Pod> = Vec::new();
        let mut movable = true;
        for pod in ix.workload_pods(i) {
            match classify(pod, || ix.has_pdb(pod), &ca.policy.scale_down) {
                Disposition::Stays | Disposition::Leaving => {}
                Disposition::Blocked(_) => movable = false,
                Disposition::Movable => {
                    if budget.take(ix, pod).is_err() {
                        movable = false;
                    } else if let Some(n) = placer.find(pod, Some(slot[&i])) {
                        placer.place(pod, n);
                    } else {
                        left.push(pod);
                    }
                }
            }
        }
        if !movable || left.is_empty() {
            continue; // not movable, or a deletion (find_unneeded's) does it
        }
        let mut cheaper: Vec<(GroupIx, SchedNode<'_>)> = ix
            .groups()
            .filter(|(g, group)| {
                price(*g) < price(own_group)
                    && !group.stack_busy
                    && !busy.contains(g)
                    && !ca.backed_off(&group.name, now)
                    && group.desired < group.max_size
                    && ca.max_nodes_total.is_none_or(|m| total < m)
            })
            .filter_map(|(g, group)| {
                let shape = group.template.as_ref()?;
                Some((g, SchedNode::new_minion(format!("template-{}", group.name), shape, &ix.daemonsets)))
            })
            .collect();
        cheaper.sort_by(|a, b| price(a.0).total_cmp(&price(b.0)).then(a.0.cmp(&b.0)));
        for (g, template) in cheaper {
            let mut new = Placer::new(vec![template]);
            let all = left.iter().all(|&pod| match new.find(pod, None) {
                Some(n) => {
                    new.place(pod, n);
                    true
                }
                None => false,
            });
            if all {
                let group = ix.group(g);
                let up = ScaleUp {
                    group: group.name.clone(),
                    expected_desired: group.desired,
                    new_desired: group.desired + 1,
                    pods: left.iter().take(5).map(|p| p.key()).collect(),
                    pod_count: left.len(),
                    expander: Expander::Price,
                };
                return Some((up, ix.node(i).name.clone()));
            }
        }
    }
    None
}

fn start(ix: &Index<'_>, u: &Unneeded, kind: RemovalKind, now: Timestamp) -> StartRemoval {
    let node = ix.node(u.node);
    StartRemoval {
        node: node.name.clone(),
        record: RemovalRecord {
            phase: Phase::Draining,
            kind,
            started: now,
            drained: None,
            requested: None,
            group: ix.group(u.group).name.clone(),
            member: u.member.clone(),
            cordoned_before: node.unschedulable,
        },
        utilization: u.utilization,
        unneeded_since: now,
    }
}

/// Candidates below the threshold, previously unneeded ones first, then by
/// utilisation; each is unneeded if all its pods can be moved to the other
/// nodes (pods moved for an earlier candidate stay moved, and earlier
/// unneeded nodes take no pods), within the PDBs' allowances.
fn find_unneeded(ca: &CaDefaults, ix: &Index<'_>) -> Vec<Unneeded> {
    let mut candidates: Vec<(NodeIx, GroupIx, String, f64)> = Vec::new();
    let mut group_nodes = 0usize;
    for i in ix.nodes() {
        let node = ix.node(i);
        let Some(m) = ix.membership(i) else { continue };
        group_nodes += 1;
        let member = ix.member(m);
        if !node.ready
            || node.unschedulable
            || member.status != MemberStatus::Complete
            || !ix.removal(i).is_none()
            || ix.is_control_plane(i)
            || node.annotations.get(SCALE_DOWN_DISABLED).is_some_and(|v| v == "true")
        {
            continue;
        }
        // A replacement's new node waits for the node it replaces to go.
        let replacing = ca
            .replacements
            .iter()
            .any(|r| r.group == ix.group(m.group()).name && member.created.is_some_and(|c| c >= r.asked));
        let u = utilization(ix, i);
        if u < ca.config.utilization_threshold && !replacing {
            candidates.push((i, m.group(), member.id.clone(), u));
        }
    }
    candidates.sort_by(|a, b| {
        let known = |c: &(NodeIx, GroupIx, String, f64)| !ca.unneeded_since.contains_key(&ix.node(c.0).name);
        known(a).cmp(&known(b)).then(a.3.total_cmp(&b.3)).then(a.0.cmp(&b.0))
    });
    candidates.truncate(POOL_MIN.max((group_nodes as f64 * POOL_RATIO).ceil() as usize));

    let destinations: Vec<NodeIx> = ix.nodes().filter(|&i| ix.node(i).ready && ix.removal(i).is_none()).collect();
    let slot: BTreeMap<NodeIx, usize> = destinations.iter().enumerate().map(|(k, &i)| (i, k)).collect();
    let mut placer = Placer::new(destinations.iter().map(|&i| ix.sched_node(i)).collect());
    let mut budget = PdbBudget::new(ix);
    let mut unneeded = Vec::new();
    'candidates: for (i, group, member, utilization) in candidates {
        let own = slot[&i];
        let checkpoint = placer.checkpoint();
        let mut taken = Vec::new();
        for pod in ix.workload_pods(i) {
            let fail = match classify(pod, || ix.has_pdb(pod), &ca.policy.scale_down) {
                Disposition::Stays | Disposition::Leaving => continue,
                Disposition::Blocked(_) => true,
                Disposition::Movable => match budget.take(ix, pod) {
                    Err(_) => true,
                    Ok(t) => {
                        taken.push(t);
                        match placer.find(pod, Some(own)) {
                            Some(n) => {
                                placer.place(pod, n);
                                false
                            }
                            None => true,
                        }
                    }
                },
            };
            if fail {
                placer.rollback(checkpoint);
                for t in &taken {
                    budget.give_back(t);
                }
                continue 'candidates;
            }
        }
        placer.commit();
        placer.exclude(own);
        let empty = ix.workload_pods(i).next().is_none();
        unneeded.push(Unneeded { node: i, group, member, utilization, empty });
    }
    unneeded
}

/// Requested share of the node (all its pods, DaemonSet and mirror pods
/// included): GPUs on GPU nodes, else the larger of CPU and memory.
fn utilization(ix: &Index<'_>, i: NodeIx) -> f64 {
    let alloc = &ix.node(i).allocatable;
    let req = ix.requested(i);
    let share = |r: i64, a: i64| if a > 0 { r as f64 / a as f64 } else { 0.0 };
    if alloc.gpus() > 0 {
        return share(req.gpus(), alloc.gpus());
    }
    share(req.cpu_milli, alloc.cpu_milli).max(share(req.memory, alloc.memory))
}
