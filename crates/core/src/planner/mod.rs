//! The pure planner: from one snapshot of the cluster, the policy, a small
//! memory of earlier passes and the time, decide what to do and say why.
//!
//! No I/O, no clock, no unseeded randomness: [`plan`] with the same inputs
//! returns the same [`Plan`]. The daemon calls it on changes (debounced) and
//! at least every resync interval; the simulator calls it the same way.
//!
//! A pass, in order:
//! 1. [`provisioning`]: Ready, upcoming and failed members per group; back-offs.
//! 2. [`resize`] (assess): per pod under a VPA object, the update due and how
//!    it can happen; shrinks that free capacity, resized pods that fit nowhere.
//! 3. [`scale_up`]: pending pods (and resized pods that fit nowhere) →
//!    existing nodes, existing nodes once over-requested pods shrink,
//!    upcoming, reclaimable, new capacity.
//! 4. [`removal`]: the next step of every removal recorded on a node.
//! 5. [`resize`] (issue): resizes and recreations, sharing the PDB allowance
//!    with the drains of step 4.
//! 6. [`scale_down`]: unneeded minions, judged with the requests pods will
//!    have once their resizes apply; new removals.
//! 7. [`members`]: one exact-removal request per group.
//!
//! [`for_peers`] is the small part of the pass's machinery that the
//! simulator's re-implementations of other autoscalers build on, so a peer
//! judges drainability and fit exactly as the planner does.

pub mod action;
mod drain;
mod expander;
pub mod explain;
mod index;
mod limits;
mod members;
pub mod memory;
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

use std::collections::BTreeMap;

use crate::model::{Resources, Snapshot, Timestamp};

/// The planner's view of a snapshot and its drainability rules, for peers:
/// the simulator's cluster-autoscaler re-implementation (`ca_defaults`)
/// plans over the same [`Index`](for_peers::Index) and classifies pods with
/// the same [`classify`](for_peers::classify), so a difference between the
/// two policies is a difference of policy, not of how the cluster was read.
/// The fit itself is [`scheduling`], which is public for the same reason.
/// Changing these changes the peers; that is the point of naming them here.
pub mod for_peers {
    pub use super::drain::{Disposition, PdbBudget, classify};
    pub use super::index::{Index, Membership};
}

pub use action::Action;
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

/// What every step of a pass shares.
pub(crate) struct Cx<'a> {
    pub ix: index::Index<'a>,
    pub policy: &'a Policy,
    pub now: Timestamp,
    pub usage: Option<&'a BTreeMap<String, Resources>>,
}

/// Decides one pass. See the module documentation for the order of steps.
pub fn plan(input: &Input<'_>, policy: &Policy) -> Plan {
    let cx = Cx { ix: index::Index::build(input.snapshot, policy), policy, now: input.now, usage: input.usage };
    let mut memory = input.memory.clone();
    let mut ex = Explanation::default();

    let views = provisioning::assess(&cx, &mut memory, &mut ex);
    let repairing = members::repairing(&cx, &views);
    let evaluations = resize::evaluate_all(&cx, &memory.resize);
    let assessment = resize::assess(&cx, &evaluations, &memory.resize);
    let up = scale_up::plan(&cx, &views, &repairing, &assessment.scale_up_input(), &mut ex);
    let mut budget = drain::PdbBudget::new(&cx.ix);
    let removals = removal::progress(&cx, &up, &mut budget, &mut ex);
    let (pod_actions, adjust) =
        resize::issue(&cx, &evaluations, assessment, &up, &mut budget, &mut memory.resize, &mut ex);
    let starts = scale_down::plan(&cx, &views, &removals, &up, &adjust, &mut budget, &mut memory, &mut ex);
    let heat = members::compose(&cx, &views, &removals, &up, &mut memory);

    for action in &up.actions {
        memory.last_scale_up.insert(action.group.clone(), cx.now);
    }
    memory.last_scale_up.retain(|g, _| cx.ix.snap.groups.iter().any(|x| &x.name == g));

    let mut actions: Vec<Action> = removals.actions;
    actions.extend(heat);
    actions.extend(up.actions.into_iter().map(Action::ScaleUp));
    actions.extend(starts);
    actions.extend(pod_actions);
    ex.nodes.sort_by(|a, b| a.node.cmp(&b.node));
    Plan { actions, explanation: ex, memory }
}
