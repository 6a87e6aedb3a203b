//! Scale-down: which minions are unneeded, and which removals start now.
//!
//! A group minion is a candidate when its requested utilisation is under the
//! threshold — or, with `consolidation`, whatever its utilisation, after those
//! under it; it is *unneeded* when every pod on it could move to another node
//! (same scheduling model, nodes already found unneeded excluded as
//! destinations) and every PDB covering them allows a disruption now — the
//! allowance is shared across the pass, and pods beyond it are evicted in
//! later rounds of the drain, as their replacements become Ready. It must stay unneeded for
//! `unneeded-time` before its removal starts. Candidates are simulated
//! cheapest first, within a per-pass budget, previously unneeded ones first
//! so their timers survive the budget.
//!
//! In stages, as cluster-autoscaler splits its scale-down:
//! 1. [`eligibility`]: whether a node may be considered at all, and how
//!    utilised it is (cluster-autoscaler's `eligibility`);
//! 2. the candidates in order, capped by the per-pass budget (here);
//! 3. [`unneeded`]: which of them could all go together, and since when they
//!    have been unneeded (its `unneeded` and removal simulation); a node its
//!    group cannot lose (at min size) keeps its verdict but reserves nothing
//!    for its own removal, which will not happen;
//! 4. [`start`]: which unneeded nodes start their removal now — unneeded
//!    long enough, outside the cool-downs, above min size, within the
//!    per-step limits (its `planner`'s "nodes to delete").
//!
//! Carrying a removal out is the removal state machine's (`removal.rs`) and
//! the actuator's, as its `actuation` is.

mod arrivals;
mod eligibility;
mod replace;
mod start;
mod unneeded;

use std::collections::BTreeMap;

use crate::model::Pod;

use super::action::Action;
use super::explain::{NodeExplanation, NodeStatus, Note};
use super::index::{GroupIx, NodeIx, Table};
use super::provisioning::GroupView;
use super::removal::RemovalProgress;
use super::{Cx, Pass};

/// A node that may be removed, if its pods can move.
struct Candidate {
    node: NodeIx,
    group: GroupIx,
    utilization: f64,
    empty: bool,
    /// At or above the threshold: a candidate only for consolidation.
    above_threshold: bool,
    /// Found unneeded by an earlier pass (its timer runs).
    known: bool,
    /// Not Ready: removed after `unready-time`, whatever its utilization.
    unready: bool,
}

/// Why each node that is not in removal is kept or what happens to it.
type Statuses = BTreeMap<NodeIx, NodeStatus>;

/// Reads the groups, the scale-up, the removals and the resize adjustments
/// of `pass` (pods whose requests a resize is changing count at their new
/// size); simulations take from its PDB allowance; keeps the unneeded timers
/// in its memory.
pub fn plan<'a>(cx: &Cx<'a>, pass: &mut Pass<'a>) -> Vec<Action> {
    if let Some(why) = pass.halt.clone() {
        return super::health::halt_scale_down(cx, pass, &why);
    }
    // Pending pods the scheduler is about to place count where they will land.
    let mut incoming: Table<NodeIx, Vec<&Pod>> = Table::filled(Vec::new(), cx.ix.node_count());
    for &(node, pod) in &pass.up.will_schedule {
        incoming[node].push(pod);
    }
    // So do pods evicted this pass to move there, at their new size.
    for (node, pod) in pass.adjust.arriving() {
        incoming[node].push(pod);
    }
    let mut statuses = Statuses::new();
    let mut candidates = Vec::new();
    for (i, incoming) in incoming.iter() {
        if !cx.ix.removal(i).is_none() {
            continue; // explained by the removal state machine
        }
        match eligibility::candidate(cx, i, incoming, &pass.adjust) {
            Ok(c) => candidates.push(c),
            Err(status) => {
                statuses.insert(i, status);
            }
        }
    }
    arrivals::record(cx, &mut pass.memory.arrivals);
    replace::settle(cx, &mut pass.memory);
    order_and_cap(cx, pass, &mut candidates, &mut statuses);

    let unneeded = unneeded::find(cx, pass, &candidates, &incoming, &mut statuses);
    unneeded::track(cx, &mut pass.memory, &candidates, &unneeded.found);

    let actions = start::removals(cx, pass, &candidates, &unneeded, &mut statuses);
    if actions.is_empty() {
        replace::plan(cx, pass, &candidates, &unneeded, &incoming);
    }
    for (i, status) in statuses {
        let group = cx.ix.membership(i).map(|m| cx.ix.group(m.group()).name.clone());
        pass.ex.nodes.push(NodeExplanation { node: cx.ix.node(i).name.clone(), group, status });
    }
    actions
}

/// How many members of group `g` stay once its removals in progress and
/// `leaving` more are done: a group with no more than its min size staying
/// loses no further node. The unneeded simulation and the start of removals
/// count alike, so a node the simulation let reserve room is never one its
/// group then keeps.
fn staying(views: &Table<GroupIx, GroupView>, removals: &RemovalProgress, g: GroupIx, leaving: u32) -> u32 {
    views[g].live.saturating_sub(removals.in_removal.get(&g).copied().unwrap_or(0)).saturating_sub(leaving)
}

/// A node a replacement is for first (its pods go to the new minion, which
/// must not be found unneeded before it), previously unneeded next (their
/// timers run), then below the threshold,
/// empty, least utilised, by name; at most the per-pass budget of them.
fn order_and_cap(cx: &Cx<'_>, pass: &mut Pass<'_>, candidates: &mut Vec<Candidate>, statuses: &mut Statuses) {
    let group_nodes = cx.ix.nodes().filter(|&i| cx.ix.membership(i).is_some()).count();
    let tuning = &cx.policy.tuning;
    let budget_nodes =
        tuning.candidates_pool_min.max((group_nodes as f64 * tuning.candidates_pool_ratio).ceil() as usize);
    let name = |i: NodeIx| cx.ix.node(i).name.as_str();
    for c in candidates.iter_mut() {
        c.known = pass.memory.unneeded_since.contains_key(name(c.node));
    }
    let replaced = |c: &Candidate| replace::is_replaced(&pass.memory, name(c.node));
    candidates.sort_by(|a, b| {
        replaced(b)
            .cmp(&replaced(a))
            .then(b.known.cmp(&a.known))
            .then(a.above_threshold.cmp(&b.above_threshold))
            .then(b.empty.cmp(&a.empty))
            .then(a.utilization.total_cmp(&b.utilization))
            .then_with(|| name(a.node).cmp(name(b.node)))
    });
    if candidates.len() > budget_nodes {
        pass.ex.notes.push(Note::CandidatesCapped { simulated: budget_nodes, eligible: candidates.len() });
        for c in candidates.drain(budget_nodes..) {
            statuses.insert(c.node, NodeStatus::NotEvaluated);
        }
    }
}
