//! The removal state machine: for each node carrying a removal record, the
//! next idempotent step, decided from the record on the node and the snapshot
//! alone (so a restarted daemon continues exactly where the last one was).
//!
//! ```text
//! (unneeded) ─StartRemoval─▶ draining ─EvictPods…─▶ draining ─MarkDrained─▶ drained
//!      drained ─cooldown─▶ (RemoveMembers: phase removing, then Heat) ─▶ removing ─member gone─▶ DeleteNode
//!  draining/drained ─timeout, needed again, pods returned, inconsistent─▶ RollBackRemoval
//! ```
//! `removing` is never rolled back: Heat may already be deleting the server.

use std::collections::BTreeMap;

use crate::model::{MemberStatus, Pod, Timestamp};

use super::action::{Action, DeleteNode, EvictPods, Eviction, MarkDrained, RollBackRemoval};
use super::drain::{Disposition, PdbBudget, classify, pdb_name};
use super::explain::{Alert, EvictionBlock, Explanation, NodeExplanation, NodeStatus, RemovalStep, RollbackReason};
use super::index::{GroupIx, MemberIx, NodeIx, PdbIx};
use super::protocol::{Phase, RemovalKind, RemovalRecord, RemovalState};
use super::time::after;
use super::{Cx, Pass};

/// A drained node whose member may be handed to Heat now.
#[derive(Clone, Debug)]
pub struct ReadyMember {
    pub member: MemberIx,
    pub node: NodeIx,
    pub drained: Timestamp,
}

#[derive(Debug, Default)]
pub struct RemovalProgress {
    pub actions: Vec<Action>,
    /// Per group: drained members (past cooldown) or `removing` ones Heat has
    /// not acted on yet.
    pub ready: BTreeMap<GroupIx, Vec<ReadyMember>>,
    /// Per group: nodes whose removal continues (not rolled back).
    pub in_removal: BTreeMap<GroupIx, u32>,
    /// Nodes in `draining` with `kind: drain` (against max-drain-parallelism).
    pub draining_with_pods: u32,
    /// Per group: live members whose removal Heat was asked for (`removing`),
    /// counted before any other node is stepped.
    asked: BTreeMap<GroupIx, u32>,
    /// Per group: nodes in `draining` or `drained` kept so far this pass.
    kept: BTreeMap<GroupIx, u32>,
}

/// Reads the scale-up of `pass` (nodes taken back, groups Heat is growing);
/// evictions take from its PDB allowance.
pub fn progress(cx: &Cx<'_>, pass: &mut Pass<'_>) -> RemovalProgress {
    let mut out = RemovalProgress { asked: asked_of_heat(cx), ..RemovalProgress::default() };
    for (i, state) in cx.ix.removals() {
        let node = cx.ix.node(i);
        let (status, group) = match state {
            RemovalState::None => continue,
            RemovalState::Inconsistent { problem, cordoned_before } => {
                let reason = RollbackReason::Inconsistent { problem: problem.clone() };
                (roll_back(&mut out, &mut pass.ex, &node.name, *cordoned_before != Some(true), reason), None)
            }
            RemovalState::Active(record) => {
                let status = step(cx, pass, i, record, &mut out);
                (status, Some(record.group.clone()))
            }
        };
        pass.ex.nodes.push(NodeExplanation { node: node.name.clone(), group, status });
    }
    out
}

fn roll_back(
    out: &mut RemovalProgress,
    ex: &mut Explanation,
    node: &str,
    uncordon: bool,
    reason: RollbackReason,
) -> NodeStatus {
    out.actions.push(Action::RollBackRemoval(RollBackRemoval {
        node: node.to_string(),
        uncordon,
        reason: reason.clone(),
    }));
    if !matches!(reason, RollbackReason::NeededAgain { .. }) {
        ex.alerts.push(Alert::DrainRolledBack { node: node.to_string(), reason: reason.clone() });
    }
    NodeStatus::RolledBack { reason }
}

/// Per group, the live members (Heat still counts them) whose node is in
/// `removing`: they leave whatever else happens.
fn asked_of_heat(cx: &Cx<'_>) -> BTreeMap<GroupIx, u32> {
    let mut asked = BTreeMap::new();
    for (_, state) in cx.ix.removals() {
        let RemovalState::Active(record) = state else { continue };
        if record.phase != Phase::Removing {
            continue;
        }
        let Some(m) = cx.ix.group_named(&record.group).and_then(|g| cx.ix.member_named(g, &record.member)) else {
            continue;
        };
        if matches!(cx.ix.member(m).status, MemberStatus::InProgress | MemberStatus::Complete) {
            *asked.entry(m.group()).or_insert(0) += 1;
        }
    }
    asked
}

/// Whether group `g` can still lose the node being stepped (in `draining` or `drained`)
/// on top of the removals asked of Heat and those kept before it this pass.
/// Start-up checked min size when the removal began, but members lost or
/// failed since (a Node deleted by hand, a member Heat marks FAILED) no
/// longer count as live: going on would take the group below its min size,
/// and Heat would replace the very minion just drained. cluster-autoscaler's
/// actuator re-checks min size at deletion for the same reason.
fn group_can_lose(cx: &Cx<'_>, live: u32, out: &RemovalProgress, g: GroupIx) -> Result<(), u32> {
    let going = out.asked.get(&g).copied().unwrap_or(0) + out.kept.get(&g).copied().unwrap_or(0) + 1;
    let min = cx.ix.group(g).min_size;
    if live.saturating_sub(going) < min { Err(min) } else { Ok(()) }
}

/// The next step of the removal recorded on node `i`.
fn step(cx: &Cx<'_>, pass: &mut Pass<'_>, i: NodeIx, record: &RemovalRecord, out: &mut RemovalProgress) -> NodeStatus {
    let Pass { up, budget, ex, .. } = pass;
    let node = cx.ix.node(i);
    // The member the record names, wherever Heat lists it.
    let listed = cx.ix.group_named(&record.group).and_then(|g| cx.ix.member_named(g, &record.member));
    let maps_here = listed.is_some_and(|m| cx.ix.membership(i) == Some(m));
    let status = |step| NodeStatus::Removal { phase: record.phase, step };

    if record.phase == Phase::Removing {
        let Some(m) = listed else {
            out.actions.push(Action::DeleteNode(DeleteNode {
                node: node.name.clone(),
                group: record.group.clone(),
                member: record.member.clone(),
            }));
            return status(RemovalStep::DeletingNode);
        };
        let g = m.group();
        let member = cx.ix.member(m);
        if matches!(member.status, MemberStatus::InProgress | MemberStatus::Complete) {
            // Still counted live by provisioning; leaving members are not.
            *out.in_removal.entry(g).or_insert(0) += 1;
        }
        let heat_acting = cx.ix.group(g).stack_busy
            || matches!(member.status, MemberStatus::Deleting | MemberStatus::MarkedForRemoval)
            || up.scaled.contains(&g);
        if heat_acting || !maps_here {
            return status(RemovalStep::AwaitingHeat);
        }
        // Heat has not acted on the request (lost, failed or refused): ask again,
        // after evicting anything that slipped onto the node.
        let workload: Vec<&Pod> = cx.ix.workload_pods(i).filter(|p| p.deletion.is_none()).collect();
        if !workload.is_empty() {
            let (evictions, _) = evictions(cx, &workload, budget);
            push_evictions(cx, out, &node.name, evictions);
            return status(RemovalStep::AwaitingHeat);
        }
        if cx.ix.workload_pods(i).next().is_none() {
            let drained = record.drained.unwrap_or(record.started);
            out.ready.entry(g).or_default().push(ReadyMember { member: m, node: i, drained });
            return status(RemovalStep::RequestingRemoval);
        }
        return status(RemovalStep::AwaitingHeat);
    }

    let uncordon = !record.cordoned_before;
    let Some(m) = listed.filter(|_| maps_here) else {
        let problem = format!("member {} of group {} no longer maps to this node", record.member, record.group);
        return roll_back(out, ex, &node.name, uncordon, RollbackReason::Inconsistent { problem });
    };
    let g = m.group();
    if let Err(min) = group_can_lose(cx, pass.groups[g].live, out, g) {
        return roll_back(out, ex, &node.name, uncordon, RollbackReason::GroupAtMinSize { min });
    }
    // A closure, so that its early returns come back here: only a removal
    // that goes on counts against the min size of the nodes stepped after it.
    let status = (|| match record.phase {
        Phase::Draining => {
            let mut movable = Vec::new();
            let mut terminating = 0;
            for pod in cx.ix.workload_pods(i) {
                match classify(pod, || cx.ix.has_pdb(pod), &cx.policy.scale_down) {
                    Disposition::Stays => {}
                    Disposition::Leaving => terminating += 1,
                    Disposition::Movable => movable.push(pod),
                    Disposition::Blocked(reason) => {
                        return roll_back(
                            out,
                            ex,
                            &node.name,
                            uncordon,
                            RollbackReason::BlockingPod { pod: pod.key(), reason },
                        );
                    }
                }
            }
            if movable.is_empty() && terminating == 0 {
                let mut drained = record.clone();
                drained.phase = Phase::Drained;
                drained.drained = Some(cx.now);
                out.actions.push(Action::MarkDrained(MarkDrained { node: node.name.clone(), record: drained }));
                *out.in_removal.entry(g).or_insert(0) += 1;
                return status(RemovalStep::MarkingDrained);
            }
            let sd = &cx.policy.scale_down;
            if !movable.is_empty() {
                let (to_evict, blocked) = evictions(cx, &movable, budget);
                if cx.now > after(record.started, sd.max_eviction_time) {
                    // Give back what this node took: it evicts nothing now.
                    for (_, taken) in &to_evict {
                        budget.give_back(taken);
                    }
                    let mut blocked = blocked;
                    blocked.extend(to_evict.iter().map(|(p, _)| EvictionBlock { pod: p.key(), pdb: None }));
                    return roll_back(out, ex, &node.name, uncordon, RollbackReason::EvictionTimeout { blocked });
                }
                let pods = movable.len();
                push_evictions(cx, out, &node.name, to_evict);
                count_draining(out, g, record);
                return status(RemovalStep::Evicting { pods, blocked });
            }
            let deadline = after(after(record.started, sd.max_eviction_time), sd.max_graceful_termination);
            if cx.now > deadline {
                return roll_back(
                    out,
                    ex,
                    &node.name,
                    uncordon,
                    RollbackReason::TerminationTimeout { pods: terminating },
                );
            }
            count_draining(out, g, record);
            status(RemovalStep::WaitingForTermination { pods: terminating, deadline })
        }
        Phase::Drained => {
            let returned = cx.ix.workload_pods(i).count();
            if returned > 0 {
                return roll_back(out, ex, &node.name, uncordon, RollbackReason::PodsReturned { pods: returned });
            }
            if let Some(&pods) = up.reclaimed.get(&i) {
                return roll_back(out, ex, &node.name, uncordon, RollbackReason::NeededAgain { pods });
            }
            *out.in_removal.entry(g).or_insert(0) += 1;
            let drained = record.drained.unwrap_or(record.started);
            let until = after(drained, cx.policy.scale_down.cooldown_before_removal);
            if cx.now < until {
                return status(RemovalStep::CoolingDown { until });
            }
            if cx.ix.group(g).stack_busy || up.scaled.contains(&g) {
                return status(RemovalStep::AwaitingHeat);
            }
            out.ready.entry(g).or_default().push(ReadyMember { member: m, node: i, drained });
            status(RemovalStep::RequestingRemoval)
        }
        Phase::Removing => unreachable!("handled above"),
    })();
    if !matches!(status, NodeStatus::RolledBack { .. }) {
        *out.kept.entry(g).or_insert(0) += 1;
    }
    status
}

fn count_draining(out: &mut RemovalProgress, g: GroupIx, record: &RemovalRecord) {
    *out.in_removal.entry(g).or_insert(0) += 1;
    if record.kind == RemovalKind::Drain {
        out.draining_with_pods += 1;
    }
}

type Evictions<'a> = Vec<(&'a Pod, Vec<PdbIx>)>;

/// Which of `pods` may be evicted now without exceeding any PDB's allowance
/// (shared across all drains of this pass), and which wait, with the PDB.
fn evictions<'a>(cx: &Cx<'a>, pods: &[&'a Pod], budget: &mut PdbBudget) -> (Evictions<'a>, Vec<EvictionBlock>) {
    let mut evict = Vec::new();
    let mut blocked = Vec::new();
    for &pod in pods {
        match budget.take(&cx.ix, pod) {
            Ok(taken) => evict.push((pod, taken)),
            Err(pdb) => blocked.push(EvictionBlock { pod: pod.key(), pdb: Some(pdb_name(&cx.ix, pdb)) }),
        }
    }
    (evict, blocked)
}

fn push_evictions(cx: &Cx<'_>, out: &mut RemovalProgress, node: &str, evictions: Evictions<'_>) {
    if evictions.is_empty() {
        return;
    }
    out.actions.push(Action::EvictPods(EvictPods {
        node: node.to_string(),
        pods: evictions.into_iter().map(|(p, _)| Eviction { pod: p.key(), uid: p.uid.clone() }).collect(),
        max_grace: cx.policy.scale_down.max_graceful_termination.get(),
    }));
}
