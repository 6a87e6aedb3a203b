//! Replacement by a cheaper shape (`scale-down.replace-with-cheaper`): a
//! minion whose pods fit on the other nodes plus one new minion of a cheaper
//! group is replaced by it — the cheaper minion is asked for now, and once it
//! is Ready the old one is an ordinary consolidation candidate, simulated
//! first (see `order_and_cap`) so its pods are found room on the new minion
//! rather than the new, empty minion being found unneeded.
//!
//! Karpenter's single-node replacement does the same (its disruption docs);
//! deletion alone never moves pods off an expensive shape whose pods no other
//! node can hold together. Unlike Karpenter, a replacement here must pay for
//! itself: the two minions run side by side from the request until the old
//! one goes — the observed boot latency, then `unneeded-time` — which costs
//! `new price × overlap`; the replacement saves `old − new price` per hour
//! after that, so it breaks even after `new × overlap / (old − new)`. A
//! replacement is started only on a node whose youngest pod has already run
//! that long: load that has lasted a time is the best guess for load that
//! lasts as long again (the rent-or-buy argument), and no constant of ours
//! enters the rule.
//!
//! Nor may it take the room later pods land on: the old node's spare room is
//! where arrivals went without a boot, so every set of pods that arrived
//! within one boot latency of each other over the same horizon (remembered by
//! `super::arrivals`) must still fit after the replacement, or the next
//! cheaper group is tried (the GPU week's trace: docs/peers.md, "Replacement
//! keeps the room of recent arrivals").
//!
//! One replacement at a time, never while a removal is under way or a
//! scale-up was decided in the pass; it is forgotten once the old node's
//! removal starts, the node is gone, or the provisioning time plus the
//! unneeded time have passed without it (a minion that then stays empty is
//! removed as any other).

use std::time::Duration as StdDuration;

use crate::model::{MemberStatus, Pod, Timestamp};
use crate::planner::action::ScaleUp;
use crate::planner::drain::{Disposition, classify};
use crate::planner::explain::Note;
use crate::planner::index::{GroupIx, NodeIx, Table};
use crate::planner::limits::{Headroom, capacity};
use crate::planner::memory::{Memory, Replacement};
use crate::planner::scale_up::template;
use crate::planner::scheduling::Placer;
use crate::planner::time::after;
use crate::planner::{Cx, Pass};
use crate::policy::Expander;

use super::Candidate;
use super::arrivals;
use super::unneeded::Unneeded;

/// Whether node `name` is the one a replacement under way is for: it is
/// simulated before every other candidate.
pub(super) fn is_replaced(memory: &Memory, name: &str) -> bool {
    memory.replacement.as_ref().is_some_and(|r| r.node == name)
}

/// Forgets a replacement that is done (the old node in removal or gone) or
/// given up (not started within the provisioning and unneeded times).
pub(super) fn settle(cx: &Cx<'_>, memory: &mut Memory) {
    let Some(r) = &memory.replacement else { return };
    let done = cx.ix.node_named(&r.node).is_none_or(|i| !cx.ix.removal(i).is_none());
    let sd = &cx.policy.scale_down;
    let deadline = after(after(r.asked, cx.policy.scale_up.max_node_provision_time), sd.unneeded_time);
    let late = cx.now >= after(deadline, sd.min_pod_age);
    if done || late {
        memory.replacement = None;
    }
}

/// With `replace-with-cheaper` on and nothing else under way, asks for one
/// cheaper minion to replace the most expensive candidate that pays for it;
/// the scale-up joins the pass's own (so the cool-down after an addition and
/// the memory of the last scale-up count it).
pub(super) fn plan<'a>(
    cx: &Cx<'a>,
    pass: &mut Pass<'a>,
    candidates: &[Candidate],
    unneeded: &Unneeded,
    incoming: &Table<NodeIx, Vec<&'a Pod>>,
) {
    let sd = &cx.policy.scale_down;
    if !sd.replace_with_cheaper
        || !sd.enabled
        || !cx.policy.scale_up.enabled
        || pass.halt.is_some()
        || pass.memory.replacement.is_some()
        || !pass.up.scaled.is_empty()
        || cx.ix.removals().any(|(_, state)| !state.is_none())
    {
        return;
    }
    let price = |g: GroupIx| cx.ix.group(g).price_per_hour;
    let cheapest = cx.ix.groups().map(|(g, _)| price(g)).fold(f64::INFINITY, f64::min);
    let mut order: Vec<&Candidate> = candidates
        .iter()
        .enumerate()
        .filter(|(k, c)| !unneeded.found.contains(k) && !c.unready && price(c.group) > cheapest)
        .map(|(_, c)| c)
        .collect();
    if order.is_empty() {
        return;
    }
    order.sort_by(|a, b| price(b.group).total_cmp(&price(a.group)).then(a.utilization.total_cmp(&b.utilization)));
    let boot = boot_latency(cx);
    let headroom = Headroom::new(cx, pass);
    // Destinations: Ready nodes not being removed nor found removable, with
    // what is about to land there.
    let going: Vec<NodeIx> = unneeded.removable().map(|k| candidates[k].node).collect();
    let mut slot: Table<NodeIx, Option<usize>> = Table::filled(None, cx.ix.node_count());
    let mut nodes = Vec::new();
    for (i, s) in slot.iter_mut() {
        if cx.ix.node(i).ready && cx.ix.removal(i).is_none() && !going.contains(&i) {
            *s = Some(nodes.len());
            let mut node = cx.ix.sched_node(i);
            pass.adjust.apply(i, &mut node.requested);
            for pod in &incoming[i] {
                node.add(pod);
            }
            nodes.push(node);
        }
    }
    // The arrivals remembered, oldest first (cloned: the placer borrows them
    // while the pass's memory is written).
    let history: Vec<std::sync::Arc<Pod>> = pass.memory.arrivals.pods.iter().cloned().collect();
    let mut placer = Placer::new(nodes).whole_cluster();
    for c in order {
        let Some(me) = slot[c.node] else { continue };
        let Some(pods) = movable(cx, pass, c.node) else { continue };
        let Some(youngest) = pods.iter().map(|p| p.created).max() else { continue };
        // Pods that are not yet `min-pod-age` old would hold the old node anyway.
        if cx.now < after(youngest, sd.min_pod_age) {
            continue;
        }
        let age = cx.now.duration_since(youngest).unsigned_abs();
        // The pods that the other nodes cannot take (first fit: the search
        // is cheap, the exact one runs when the new minion is there); they
        // stay placed while the cheaper groups are tried.
        let checkpoint = placer.checkpoint();
        let mut left: Vec<&Pod> = Vec::new();
        for &pod in &pods {
            match placer.find(pod, Some(me)) {
                Some(n) => placer.place(pod, n),
                None => left.push(pod),
            }
        }
        let chosen = if left.is_empty() {
            None // a deletion, when the simulation finds it unneeded
        } else {
            let recent = recent_arrivals(cx, c.group, &history, age);
            cheaper_that_pays(cx, pass, &headroom, &mut placer, me, c.group, &left, &recent, age, boot)
        };
        placer.rollback(checkpoint);
        let Some((g, saving, break_even)) = chosen else { continue };
        let group = cx.ix.group(g);
        let node = cx.ix.node(c.node).name.clone();
        pass.up.scaled.insert(g);
        pass.up.actions.push(ScaleUp {
            group: group.name.clone(),
            expected_desired: group.desired,
            new_desired: group.desired + 1,
            pods: left.iter().take(cx.policy.tuning.pods_named_per_reason).map(|p| p.key()).collect(),
            pod_count: left.len(),
            expander: Expander::Price,
        });
        pass.ex.notes.push(Note::Replacing {
            node: node.clone(),
            group: group.name.clone(),
            saving_per_hour: saving,
            break_even_secs: break_even.as_secs(),
        });
        pass.memory.replacement = Some(Replacement { node, group: group.name.clone(), asked: cx.now });
        return;
    }
}

/// The remembered arrivals of the last `horizon` (the rent-or-buy horizon:
/// the old node's pods have run that long, so the next `horizon` is guessed
/// to bring what the last one did) that a minion of the old node's `group`
/// could hold — the ones its spare room was there for. Oldest first.
fn recent_arrivals<'h>(
    cx: &Cx<'_>,
    group: GroupIx,
    history: &'h [std::sync::Arc<Pod>],
    horizon: StdDuration,
) -> Vec<&'h Pod> {
    let Some(t) = template(cx, group, 0) else { return Vec::new() };
    let mut old = Placer::new(vec![t]);
    history
        .iter()
        .map(|p| &**p)
        .filter(|p| !arrivals::older_than(cx.now, p.created, horizon))
        .filter(|&p| old.find(p, None).is_some())
        .collect()
}

/// The cheapest group cheaper than `old` with room left by the headroom whose
/// minion takes the `left` pods, repays the overlap within `age`, and keeps
/// the room the `recent` arrivals needed: every set of them that arrived
/// within one `boot` latency must still fit, on the other nodes (`placer`,
/// the old node `me` excluded, its movable pods placed) or beside the `left`
/// pods on the new minion — otherwise the next such arrivals wait for a
/// boot, which the old node's room spared them. `(group, saving per hour,
/// break-even)`.
#[allow(clippy::too_many_arguments)]
fn cheaper_that_pays<'a>(
    cx: &Cx<'a>,
    pass: &Pass<'a>,
    headroom: &Headroom,
    placer: &mut Placer<'a>,
    me: usize,
    old: GroupIx,
    left: &[&'a Pod],
    recent: &[&'a Pod],
    age: StdDuration,
    boot: StdDuration,
) -> Option<(GroupIx, f64, StdDuration)> {
    let sd = &cx.policy.scale_down;
    let price = |g: GroupIx| cx.ix.group(g).price_per_hour;
    let mut cheaper: Vec<GroupIx> = cx
        .ix
        .groups()
        .map(|(g, _)| g)
        .filter(|&g| price(g) < price(old) && capacity(cx, pass, g, headroom).is_ok())
        .collect();
    cheaper.sort_by(|&a, &b| price(a).total_cmp(&price(b)).then(a.cmp(&b)));
    for g in cheaper {
        let saving = price(old) - price(g);
        let overlap = boot + sd.unneeded_time.get();
        let break_even = overlap.mul_f64(price(g) / saving);
        if age < break_even {
            continue;
        }
        let Some(t) = template(cx, g, 0) else { continue };
        let mut new = Placer::new(vec![t]);
        if !left.iter().all(|&pod| place_first(&mut new, pod, None)) {
            continue;
        }
        let keeps_room = arrivals::within(recent, boot).all(|burst| {
            let (here, there) = (placer.checkpoint(), new.checkpoint());
            let fits = burst.iter().all(|&pod| place_first(placer, pod, Some(me)) || place_first(&mut new, pod, None));
            placer.rollback(here);
            new.rollback(there);
            fits
        });
        if keeps_room {
            return Some((g, saving, break_even));
        }
    }
    None
}

/// Places `pod` on the first node of `placer` where it fits (never `skip`).
fn place_first<'a>(placer: &mut Placer<'a>, pod: &'a Pod, skip: Option<usize>) -> bool {
    match placer.find(pod, skip) {
        Some(n) => {
            placer.place(pod, n);
            true
        }
        None => false,
    }
}

/// The pods a drain of node `i` would move, at the size they would come back
/// with; `None` when one blocks the drain or a PDB allows no disruption.
fn movable<'a>(cx: &Cx<'a>, pass: &Pass<'a>, i: NodeIx) -> Option<Vec<&'a Pod>> {
    let mut budget = pass.budget.clone();
    let mut pods = Vec::new();
    for pod in cx.ix.pods_on(i).iter().filter(|p| !pass.adjust.leaving(p)) {
        let pod = pass.adjust.pod(pod);
        match classify(pod, || cx.ix.has_pdb(pod), &cx.policy.scale_down) {
            Disposition::Stays | Disposition::Leaving => {}
            Disposition::Blocked(_) => return None,
            Disposition::Movable => {
                budget.take(&cx.ix, pod).ok()?;
                pods.push(pod);
            }
        }
    }
    Some(pods)
}

/// How long a new minion takes to register: the median, over the group
/// minions in the snapshot, of their node's creation after their Heat
/// member's; the provisioning time when none shows it (an upper bound).
fn boot_latency(cx: &Cx<'_>) -> StdDuration {
    let mut seen: Vec<StdDuration> = cx
        .ix
        .nodes()
        .filter_map(|i| {
            let m = cx.ix.member(cx.ix.membership(i)?);
            let created: Timestamp = m.created.filter(|_| m.status == MemberStatus::Complete)?;
            let took = cx.ix.node(i).created.duration_since(created);
            (!took.is_negative()).then(|| took.unsigned_abs())
        })
        .collect();
    if seen.is_empty() {
        return cx.policy.scale_up.max_node_provision_time.get();
    }
    seen.sort();
    seen[seen.len() / 2]
}
