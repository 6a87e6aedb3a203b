//! Which unneeded nodes start their removal now: the group above its min
//! size, unneeded for `unneeded-time`, outside the cool-downs, scale-down
//! enabled and no scale-up this pass, within
//! `max-nodes-per-step` and `max-drain-parallelism`.

use std::collections::BTreeMap;

use crate::model::{MemberStatus, Pod, Timestamp};
use crate::planner::action::{Action, StartRemoval};
use crate::planner::explain::{Cooldown, Hold, NodeStatus, Note};
use crate::planner::index::GroupIx;
use crate::planner::memory::Memory;
use crate::planner::protocol::{Phase, RemovalKind, RemovalRecord};
use crate::planner::time::after;
use crate::planner::{Cx, Pass};

use super::unneeded::Unneeded;
use super::{Candidate, Statuses, staying};

/// The cool-down in force after a scale-up, a removal or a failure, if any:
/// the one that lasts longest.
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

/// The unneeded nodes whose removal starts now; every other one is explained
/// with what holds it. Reads the groups, the scale-up, the removals in
/// progress and the memory of `pass`.
pub(super) fn removals(
    cx: &Cx<'_>,
    pass: &mut Pass<'_>,
    candidates: &[Candidate],
    unneeded: &Unneeded,
    statuses: &mut Statuses,
) -> Vec<Action> {
    let Pass { groups: views, removals, up, memory, ex, .. } = pass;
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
    let mut started: BTreeMap<GroupIx, u32> = BTreeMap::new();
    let (mut empty_started, mut drains_started) = (0u32, 0u32);
    let mut actions = Vec::new();
    for &k in &unneeded.found {
        let c = &candidates[k];
        let node = cx.ix.node(c.node);
        let since = memory.unneeded_since.get(&node.name).copied().unwrap_or(cx.now);
        let mut removable_at = after(since, if c.unready { sd.unready_time } else { sd.unneeded_time });
        let timer_runs = cx.now < removable_at;
        // Its youngest pod is not evicted before it is `min-pod-age` old.
        let young = if c.unready { None } else { youngest(cx, c) };
        if let Some((_, until)) = &young {
            removable_at = removable_at.max(*until);
        }
        let group = cx.ix.group(c.group);
        let staying = staying(views, removals, c.group, started.get(&c.group).copied().unwrap_or(0));
        // Min size first: it holds the node whatever its timer, and naming the
        // timer instead would read as if the node were about to go. A node the
        // simulation kept reserved nothing for its removal: it never starts,
        // even if fewer nodes of its group start than were found unneeded.
        let held = if unneeded.kept(k) || staying <= group.min_size {
            Some(Hold::GroupAtMinSize { min: group.min_size })
        } else if timer_runs {
            Some(Hold::UnneededTime)
        } else if let Some((pod, until)) = young.filter(|(_, until)| cx.now < *until) {
            Some(Hold::YoungPod { pod: pod.key(), until })
        } else if let Some(h) = &global_hold {
            Some(h.clone())
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
        let membership = cx.ix.membership(c.node).expect("candidates are group members");
        let record = RemovalRecord {
            phase: Phase::Draining,
            kind,
            started: cx.now,
            drained: None,
            requested: None,
            group: group.name.clone(),
            member: cx.ix.member(membership).id.clone(),
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

/// The youngest pod a drain of the candidate would evict, and when it is
/// `min-pod-age` old. A pod that was just evicted elsewhere and landed here
/// is not sent on at once (issue 17, stability seed 26: one replica evicted
/// four times within the hour, twice by drains ten minutes apart).
fn youngest<'a>(cx: &Cx<'a>, c: &Candidate) -> Option<(&'a Pod, Timestamp)> {
    let pod =
        cx.ix.workload_pods(c.node).filter(|p| p.deletion.is_none() && !p.is_terminal()).max_by_key(|p| p.created)?;
    Some((pod, after(pod.created, cx.policy.scale_down.min_pod_age)))
}
