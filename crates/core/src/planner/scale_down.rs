//! Scale-down: which minions are unneeded, and which removals start now.
//!
//! A group minion is a candidate when its requested utilisation is under the
//! threshold — or, with `consolidation`, whatever its utilisation, after those
//! under it; it is *unneeded* when every pod on it could move to another node
//! (same scheduling model, PDB allowances shared across the pass, nodes already
//! found unneeded excluded as destinations). It must stay unneeded for
//! `unneeded-time` before its removal starts. Candidates are simulated
//! cheapest first, within a per-pass budget, previously unneeded ones first
//! so their timers survive the budget.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::model::{MemberStatus, Pod, Resources, Timestamp};

use super::Cx;
use super::action::{Action, StartRemoval};
use super::drain::{Disposition, PdbBudget, classify, pdb_name};
use super::explain::{Cooldown, Explanation, Hold, NodeExplanation, NodeStatus, Note};
use super::memory::Memory;
use super::protocol::{Phase, RemovalKind, RemovalRecord, SCALE_DOWN_DISABLED};
use super::provisioning::GroupView;
use super::removal::RemovalProgress;
use super::resize::Adjustments;
use super::scale_up::ScaleUpOutcome;
use super::scheduling::Placer;
use super::time::after;

struct Candidate {
    node: usize,
    group: usize,
    utilization: f64,
    empty: bool,
    /// At or above the threshold: a candidate only for consolidation.
    above_threshold: bool,
    /// Found unneeded by an earlier pass (its timer runs).
    known: bool,
    /// Not Ready: removed after `unready-time`, whatever its utilization.
    unready: bool,
}

/// `adjust`: pods whose requests a resize is changing count at their new size.
#[allow(clippy::too_many_arguments)]
pub fn plan<'a>(
    cx: &Cx<'a>,
    views: &[GroupView],
    removals: &RemovalProgress,
    up: &ScaleUpOutcome<'a>,
    adjust: &Adjustments<'a>,
    budget: &mut PdbBudget,
    memory: &mut Memory,
    ex: &mut Explanation,
) -> Vec<Action> {
    // Pending pods the scheduler is about to place count where they will land.
    let mut incoming: Vec<Vec<&'a Pod>> = vec![Vec::new(); cx.ix.snap.nodes.len()];
    for &(node, pod) in &up.will_schedule {
        incoming[node].push(pod);
    }
    let mut statuses: BTreeMap<usize, NodeStatus> = BTreeMap::new();
    let mut candidates = Vec::new();
    for (i, incoming) in incoming.iter().enumerate() {
        if !cx.ix.removal[i].is_none() {
            continue; // explained by the removal state machine
        }
        match candidate(cx, i, incoming, adjust) {
            Ok(c) => candidates.push(c),
            Err(status) => {
                statuses.insert(i, status);
            }
        }
    }
    let group_nodes = cx.ix.membership.iter().filter(|m| m.is_some()).count();
    let tuning = &cx.policy.tuning;
    let budget_nodes =
        tuning.candidates_pool_min.max((group_nodes as f64 * tuning.candidates_pool_ratio).ceil() as usize);
    let name = |i: usize| cx.ix.node(i).name.as_str();
    for c in &mut candidates {
        c.known = memory.unneeded_since.contains_key(name(c.node));
    }
    candidates.sort_by(|a, b| {
        b.known
            .cmp(&a.known)
            .then(a.above_threshold.cmp(&b.above_threshold))
            .then(b.empty.cmp(&a.empty))
            .then(a.utilization.total_cmp(&b.utilization))
            .then_with(|| name(a.node).cmp(name(b.node)))
    });
    if candidates.len() > budget_nodes {
        ex.notes.push(Note::CandidatesCapped { simulated: budget_nodes, eligible: candidates.len() });
        for c in candidates.drain(budget_nodes..) {
            statuses.insert(c.node, NodeStatus::NotEvaluated);
        }
    }

    let unneeded = simulate(cx, &candidates, &incoming, adjust, budget, &mut statuses);

    let mut since = BTreeMap::new();
    for &k in &unneeded {
        let node = name(candidates[k].node);
        let from = memory.unneeded_since.get(node).copied().unwrap_or(cx.now);
        since.insert(node.to_string(), from);
    }
    memory.unneeded_since = since;

    let actions = start_removals(cx, views, removals, up, memory, &candidates, &unneeded, &mut statuses, ex);
    for (i, status) in statuses {
        let group = cx.ix.membership[i].map(|m| cx.ix.snap.groups[m.group].name.clone());
        ex.nodes.push(NodeExplanation { node: cx.ix.node(i).name.clone(), group, status });
    }
    actions
}

/// Whether node `i` may be considered at all, and how utilised it is.
fn candidate(cx: &Cx<'_>, i: usize, incoming: &[&Pod], adjust: &Adjustments<'_>) -> Result<Candidate, NodeStatus> {
    let node = cx.ix.node(i);
    if cx.ix.control_plane[i] {
        return Err(NodeStatus::ControlPlane);
    }
    let Some(membership) = cx.ix.membership[i] else { return Err(NodeStatus::NotInGroup) };
    let member = &cx.ix.snap.groups[membership.group].members[membership.member];
    if member.status != MemberStatus::Complete {
        return Err(NodeStatus::MemberNotComplete);
    }
    if node.unschedulable {
        return Err(NodeStatus::Cordoned);
    }
    if node.annotations.get(SCALE_DOWN_DISABLED).is_some_and(|v| v == "true") {
        return Err(NodeStatus::ScaleDownDisabled);
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
        let group = membership.group;
        return Ok(Candidate {
            node: i,
            group,
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
    let mut requested = cx.ix.requested[i].clone();
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
        group: membership.group,
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

/// Finds which candidates could all go together; returns their indices into
/// `candidates`. Pods moved in the simulation stay where they were moved, and a
/// node found unneeded is no destination for the next ones.
fn simulate<'a>(
    cx: &Cx<'a>,
    candidates: &[Candidate],
    incoming: &[Vec<&'a Pod>],
    adjust: &Adjustments<'a>,
    budget: &mut PdbBudget,
    statuses: &mut BTreeMap<usize, NodeStatus>,
) -> Vec<usize> {
    let mut slot = vec![None; cx.ix.snap.nodes.len()];
    let mut nodes = Vec::new();
    for (i, slot) in slot.iter_mut().enumerate() {
        if cx.ix.node(i).ready && cx.ix.removal[i].is_none() {
            *slot = Some(nodes.len());
            let mut node = cx.ix.sched_node(i);
            adjust.apply(i, &mut node.requested);
            for pod in &incoming[i] {
                node.add(pod);
            }
            nodes.push(node);
        }
    }
    // What every schedulable destination still has free, summed: pods that
    // need more than that cannot all move, whatever the placement (a cheap
    // necessary condition that spares the placement search in a full cluster).
    let free = |n: &crate::planner::scheduling::SchedNode<'_>| {
        if n.unschedulable {
            return Resources::default();
        }
        let mut f =
            Resources::new(n.allocatable.cpu_milli - n.requested.cpu_milli, n.allocatable.memory - n.requested.memory);
        f.pods = n.allocatable.pods - n.requested.pods;
        f
    };
    let mut free_total = Resources::default();
    for n in &nodes {
        free_total += &free(n);
    }
    let mut placer = Placer::new(nodes).whole_cluster();
    let mut moved_in: Vec<Vec<&Pod>> = vec![Vec::new(); placer.nodes.len()];
    let mut unneeded = Vec::new();
    for (k, c) in candidates.iter().enumerate() {
        // A node that is not Ready is no destination (no slot) but may go.
        let me = slot[c.node];
        if me.is_none() && !c.unready {
            continue;
        }
        let moved_here: &[&Pod] = me.map_or(&[], |m| moved_in[m].as_slice());
        let pods: Vec<(&Pod, Disposition)> = cx.ix.pods_on[c.node]
            .iter()
            .map(|p| adjust.pod(p))
            .chain(incoming[c.node].iter().copied())
            .chain(moved_here.iter().copied())
            .map(|p| (p, classify(p, || cx.ix.has_pdb(p), &cx.policy.scale_down)))
            .collect();
        let mut moving = Resources::default();
        for (pod, _) in pods.iter().filter(|(_, d)| *d == Disposition::Movable) {
            moving.cpu_milli += pod.requests.cpu_milli;
            moving.memory += pod.requests.memory;
            moving.pods += 1;
        }
        let own = me.map_or_else(Resources::default, |m| free(&placer.nodes[m]));
        let short = [
            ("cpu", moving.cpu_milli, free_total.cpu_milli - own.cpu_milli),
            ("memory", moving.memory, free_total.memory - own.memory),
            ("pods", moving.pods, free_total.pods - own.pods),
        ]
        .into_iter()
        .find(|(_, need, have)| need > have);
        if let Some((resource, _, _)) = short
            && let Some((pod, _)) = pods.iter().find(|(_, d)| *d == Disposition::Movable)
        {
            statuses.insert(
                c.node,
                NodeStatus::NoPlaceForPod {
                    pod: pod.key(),
                    scheduler: format!("the other nodes lack the {resource} its pods request, all together"),
                },
            );
            continue;
        }
        let checkpoint = placer.checkpoint();
        let mut taken: Vec<usize> = Vec::new();
        let mut moves: Vec<(usize, &Pod)> = Vec::new();
        let mut failure = None;
        for (pod, disposition) in pods {
            match disposition {
                Disposition::Stays | Disposition::Leaving => continue,
                Disposition::Blocked(reason) => {
                    failure = Some(NodeStatus::PodBlocks { pod: pod.key(), reason });
                    break;
                }
                Disposition::Movable => {}
            }
            match budget.take(&cx.ix, pod) {
                Ok(t) => taken.extend(t),
                Err(pdb) => {
                    failure = Some(NodeStatus::PdbBlocks { pod: pod.key(), pdb: pdb_name(&cx.ix, pdb) });
                    break;
                }
            }
            match placer.find(pod, me) {
                Some(dest) => {
                    placer.place(pod, dest);
                    moves.push((dest, pod));
                }
                None => {
                    failure = Some(NodeStatus::NoPlaceForPod {
                        pod: pod.key(),
                        scheduler: "no other node can host it".into(),
                    });
                    break;
                }
            }
        }
        match failure {
            Some(status) => {
                placer.rollback(checkpoint);
                budget.give_back(&taken);
                statuses.insert(c.node, status);
            }
            None => {
                // Its free capacity is gone; what moved left the others.
                let own = me.map_or_else(Resources::default, |m| free(&placer.nodes[m]));
                free_total -= &own;
                for (_, pod) in &moves {
                    free_total.cpu_milli -= pod.requests.cpu_milli;
                    free_total.memory -= pod.requests.memory;
                    free_total.pods -= 1;
                }
                if let Some(me) = me {
                    placer.exclude(me);
                }
                for (dest, pod) in moves {
                    moved_in[dest].push(pod);
                }
                unneeded.push(k);
            }
        }
    }
    unneeded
}

fn cooldown(cx: &Cx<'_>, memory: &Memory) -> Option<(Cooldown, Timestamp)> {
    let sd = &cx.policy.scale_down;
    let newest_member = cx
        .ix
        .snap
        .groups
        .iter()
        .flat_map(|g| g.members.iter())
        .filter(|m| matches!(m.status, MemberStatus::InProgress | MemberStatus::Complete))
        .filter_map(|m| m.created)
        .max();
    let last_add = memory.last_scale_up.values().copied().chain(newest_member).max();
    [
        (Cooldown::AfterAdd, last_add, sd.delay_after_add),
        (Cooldown::AfterDelete, memory.last_scale_down, sd.delay_after_delete),
        (Cooldown::AfterFailure, memory.last_failure, sd.delay_after_failure),
    ]
    .into_iter()
    .filter_map(|(cause, at, delay)| at.map(|t| (cause, after(t, delay))))
    .filter(|(_, until)| cx.now < *until)
    .max_by_key(|(_, until)| *until)
}

#[allow(clippy::too_many_arguments)]
fn start_removals(
    cx: &Cx<'_>,
    views: &[GroupView],
    removals: &RemovalProgress,
    up: &ScaleUpOutcome<'_>,
    memory: &Memory,
    candidates: &[Candidate],
    unneeded: &[usize],
    statuses: &mut BTreeMap<usize, NodeStatus>,
    ex: &mut Explanation,
) -> Vec<Action> {
    let sd = &cx.policy.scale_down;
    let global_hold = if !sd.enabled {
        ex.notes.push(Note::ScaleDownDisabled);
        Some(Hold::ScaleDownDisabled)
    } else if let Some((cause, until)) = cooldown(cx, memory) {
        ex.notes.push(Note::ScaleDownCooldown { cause, until });
        Some(Hold::Cooldown { cause, until })
    } else if !up.scaled.is_empty() {
        ex.notes.push(Note::ScaleDownAfterScaleUp);
        Some(Hold::ScaleUpThisPass)
    } else {
        None
    };
    let mut started: BTreeMap<usize, u32> = BTreeMap::new();
    let (mut empty_started, mut drains_started) = (0u32, 0u32);
    let mut actions = Vec::new();
    for &k in unneeded {
        let c = &candidates[k];
        let node = cx.ix.node(c.node);
        let since = memory.unneeded_since.get(&node.name).copied().unwrap_or(cx.now);
        let removable_at = after(since, if c.unready { sd.unready_time } else { sd.unneeded_time });
        let group = &cx.ix.snap.groups[c.group];
        let staying = views[c.group]
            .live
            .saturating_sub(removals.in_removal.get(&c.group).copied().unwrap_or(0))
            .saturating_sub(started.get(&c.group).copied().unwrap_or(0));
        let held = if cx.now < removable_at {
            Some(Hold::UnneededTime)
        } else if let Some(h) = &global_hold {
            Some(h.clone())
        } else if staying <= group.min_size {
            Some(Hold::GroupAtMinSize { min: group.min_size })
        } else if empty_started + drains_started >= sd.max_nodes_per_step {
            Some(Hold::MaxNodesPerStep { max: sd.max_nodes_per_step })
        } else if !c.empty && removals.draining_with_pods + drains_started >= sd.max_drain_parallelism {
            Some(Hold::MaxDrainParallelism { max: sd.max_drain_parallelism })
        } else {
            None
        };
        if let Some(held) = held {
            statuses.insert(c.node, NodeStatus::Unneeded { since, removable_at, held: Some(held) });
            continue;
        }
        let kind = if c.empty { RemovalKind::Empty } else { RemovalKind::Drain };
        if c.empty {
            empty_started += 1;
        } else {
            drains_started += 1;
        }
        *started.entry(c.group).or_insert(0) += 1;
        let membership = cx.ix.membership[c.node].expect("candidates are group members");
        let record = RemovalRecord {
            phase: Phase::Draining,
            kind,
            started: cx.now,
            drained: None,
            requested: None,
            group: group.name.clone(),
            member: group.members[membership.member].id.clone(),
            cordoned_before: node.unschedulable,
        };
        actions.push(Action::StartRemoval(StartRemoval {
            node: node.name.clone(),
            record,
            utilization: c.utilization,
            unneeded_since: since,
        }));
        statuses.insert(c.node, NodeStatus::RemovalStarted { kind });
    }
    actions
}
