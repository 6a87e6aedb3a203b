//! The pure planner: from one snapshot of the cluster, the policy, a small
//! memory of earlier passes and the time, decide what to do and say why.
//!
//! No I/O, no clock, no unseeded randomness: [`plan`] with the same inputs
//! returns the same [`Plan`]. The daemon calls it on changes (debounced) and
//! at least every resync interval; the simulator calls it the same way.
//!
//! A pass, in order:
//! 0. [`placement`] (advise): the placement advisor reads this pass's
//!    observations; in `apply` mode a resource increase becomes a floor under
//!    the pod level's target for its workload, so step 2 plans it.
//!    [`health`]: with too many nodes unready, nothing new starts at the
//!    node level this pass (cluster-autoscaler's unready limits).
//! 1. [`provisioning`]: Ready, upcoming and failed members per group; back-offs.
//! 2. [`resize`] (assess): per pod under a VPA object, the update due and how
//!    it can happen; shrinks that free capacity, resized pods that fit nowhere.
//! 3. [`scale_up`]: pending pods (and resized pods that fit nowhere) →
//!    existing nodes, existing nodes once over-requested pods shrink,
//!    upcoming, reclaimable, new capacity; [`balance`] splits a scale-up
//!    across similar groups.
//! 4. [`removal`]: the next step of every removal recorded on a node.
//! 5. [`resize`] (issue): resizes and recreations, sharing the PDB allowance
//!    with the drains of step 4; then [`placement`] (issue): applied
//!    co-location becomes a template change taking its disruption from the
//!    same allowance, and every piece of advice its explanation entry.
//! 6. [`scale_down`]: unneeded minions, judged with the requests pods will
//!    have once their resizes apply; new removals.
//! 7. [`members`]: one exact-removal request per group.
//!
//! [`for_peers`] is the small part of the pass's machinery that the
//! simulator's re-implementations of other autoscalers build on, so a peer
//! judges drainability and fit exactly as the planner does.

pub mod action;
mod balance;
mod drain;
mod expander;
pub mod explain;
mod health;
mod index;
mod limits;
mod members;
pub mod memory;
pub mod placement;
pub mod policy;
pub mod protocol;
mod provisioning;
mod removal;
mod resize;
mod scale_down;
mod scale_up;
pub mod scheduling;
pub mod time;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{Resources, Snapshot, Timestamp};

use drain::PdbBudget;
use index::{GroupIx, Index, Table};
use provisioning::GroupView;
use removal::RemovalProgress;
use resize::Adjustments;
use scale_up::ScaleUpOutcome;

/// The planner's view of a snapshot and its drainability rules, for peers:
/// the simulator's cluster-autoscaler re-implementation (`ca_defaults`)
/// plans over the same [`Index`](for_peers::Index) and classifies pods with
/// the same [`classify`](for_peers::classify), so a difference between the
/// two policies is a difference of policy, not of how the cluster was read.
/// The fit itself is [`scheduling`], which is public for the same reason.
///
/// - [`Index`](for_peers::Index): built once per loop from a snapshot; pods
///   by node, node ↔ Heat member, removal records, PDBs by namespace.
/// - [`NodeIx`](for_peers::NodeIx), [`GroupIx`](for_peers::GroupIx),
///   [`MemberIx`](for_peers::MemberIx): positions in the snapshot, handed
///   out by the index only (`ix.nodes()`, `ix.groups()`, `ix.members(g)`).
/// - [`classify`](for_peers::classify) and [`Disposition`](for_peers::Disposition):
///   whether a pod stays with its node, moves, or blocks the drain.
/// - [`PdbBudget`](for_peers::PdbBudget): PodDisruptionBudget allowances
///   shared by every drain of one loop.
///
/// Changing these changes the peers; that is the point of naming them here.
pub mod for_peers {
    pub use super::drain::{Disposition, PdbBudget, classify};
    pub use super::index::{GroupIx, Index, MemberIx, NodeIx};
}

pub use action::{Action, ActionKind};
pub use drain::abandoned;
pub use explain::Explanation;
pub use memory::Memory;
pub use policy::{Policy, ResizePolicy, Tuning};

/// Everything one pass reads.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    pub snapshot: &'a Snapshot,
    /// Observed usage per node name (kubelet stats), for `use-observed-usage`.
    pub usage: Option<&'a BTreeMap<String, Resources>>,
    /// What the previous pass returned as [`Plan::memory`] (default when lost).
    pub memory: &'a Memory,
    pub now: Timestamp,
    /// The service mesh's traffic and the workloads' pressure over the last
    /// window, for the placement advisor; `None` when they could not be read
    /// (standing advice is kept, nothing new is advised).
    pub observations: Option<&'a placement::Observations>,
}

/// What one pass decided.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Independent, idempotent actions; see [`action`] for the contract.
    pub actions: Vec<Action>,
    pub explanation: Explanation,
    /// To pass to the next call.
    pub memory: Memory,
}

/// What every stage of a pass reads and none changes.
pub(crate) struct Cx<'a> {
    pub ix: Index<'a>,
    pub policy: &'a Policy,
    pub now: Timestamp,
    pub usage: Option<&'a BTreeMap<String, Resources>>,
}

/// A pass in progress: what every stage adds to (the memory for the next
/// pass, the explanation, the PDB allowance that drains, recreations and the
/// scale-down simulation share), and the outputs of the node-level stages,
/// each filled by [`plan`] in the order of the module documentation and read
/// by the stages after it. A stage takes `(&Cx, &mut Pass)` instead of a
/// list of the earlier stages' results.
pub(crate) struct Pass<'w> {
    pub memory: Memory,
    pub ex: Explanation,
    pub budget: PdbBudget,
    /// 1. [`provisioning`]: per group, what it really has.
    pub groups: Table<GroupIx, GroupView>,
    /// 1. Groups repaired this pass (a removal request for failed members).
    pub repairing: BTreeSet<GroupIx>,
    /// 3. [`scale_up`].
    pub up: ScaleUpOutcome<'w>,
    /// 4. [`removal`]: removals in progress, stepped.
    pub removals: RemovalProgress,
    /// 5. [`resize`] (issue): pods whose requests change.
    pub adjust: Adjustments<'w>,
    /// 0. [`health`]: too many nodes unready, nothing new starts at the node level.
    pub halt: Option<explain::Unhealthy>,
}

/// Decides one pass. See the module documentation for the order of steps.
pub fn plan(input: &Input<'_>, policy: &Policy) -> Plan {
    let advising = placement::in_plan::advise_pass(
        input.snapshot,
        input.observations,
        &input.memory.placement,
        &policy.placement,
        input.now,
    );
    // Resource increases in force are the pod level's targets: planned with
    // the node level like any recommendation.
    let floored = placement::in_plan::floored(input.snapshot, advising.floors());
    let snapshot = floored.as_ref().unwrap_or(input.snapshot);
    let cx = Cx { ix: Index::build(snapshot, policy), policy, now: input.now, usage: input.usage };
    // Reads only the resize memory, which the node-level stages leave alone.
    let evaluations = resize::evaluate_all(&cx, &input.memory.resize);
    let mut pass = Pass {
        // The off-target timers are left out: `resize::issue` replaces them.
        memory: input.memory.for_next_pass(),
        ex: Explanation::default(),
        budget: PdbBudget::new(&cx.ix),
        groups: Table::default(),
        repairing: BTreeSet::new(),
        up: ScaleUpOutcome::default(),
        removals: RemovalProgress::default(),
        adjust: Adjustments::default(),
        halt: health::check(&cx),
    };

    pass.groups = provisioning::assess(&cx, &mut pass);
    pass.repairing = members::repairing(&cx, &pass.groups);
    let assessment = resize::assess(&cx, &evaluations, &pass.memory.resize);
    pass.up = scale_up::plan(&cx, &mut pass, &assessment.scale_up_input(&cx));
    pass.removals = removal::progress(&cx, &mut pass);
    let pod_actions;
    (pod_actions, pass.adjust) = resize::issue(&cx, &evaluations, assessment, &mut pass);
    let placement_actions = placement::in_plan::issue(&cx, &mut pass, advising);
    let starts = scale_down::plan(&cx, &mut pass);
    let heat = members::compose(&cx, &mut pass);

    let Pass { mut memory, mut ex, up, removals, .. } = pass;
    for action in &up.actions {
        memory.last_scale_up.insert(action.group.clone(), cx.now);
    }
    memory.last_scale_up.retain(|g, _| cx.ix.snap.groups.iter().any(|x| &x.name == g));

    let mut actions: Vec<Action> = removals.actions;
    actions.extend(heat);
    actions.extend(up.actions.into_iter().map(Action::ScaleUp));
    actions.extend(starts);
    // The pod level's actions are usually the most (124,000 in a first pass
    // over a cluster newly under VPA objects) and the node level's none:
    // then its vector is the plan's, not copied into a new one (issue 22).
    if actions.is_empty() {
        actions = pod_actions;
    } else {
        actions.extend(pod_actions);
    }
    actions.extend(placement_actions);
    ex.nodes.sort_by(|a, b| a.node.cmp(&b.node));
    Plan { actions, explanation: ex, memory }
}
