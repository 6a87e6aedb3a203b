//! Which pods keep a node, which move, and the PodDisruptionBudget allowance
//! shared by every drain and simulation in one pass.
//!
//! Rules follow cluster-autoscaler's drainability checks, so an operator's
//! annotations mean what they already mean there.

use crate::model::Pod;
use crate::policy::ScaleDownPolicy;

use super::explain::BlockReason;
use super::index::{Index, PdbIx, Table};

/// Controllers that recreate an evicted pod elsewhere (cluster-autoscaler's list).
const REPLICATING_CONTROLLERS: [&str; 5] = ["ReplicaSet", "ReplicationController", "StatefulSet", "Job", "DaemonSet"];

#[derive(Clone, Debug, PartialEq)]
pub enum Disposition {
    /// DaemonSet, mirror or finished pods: they go with the node.
    Stays,
    /// Already terminating: nothing to move, the drain waits for it.
    Leaving,
    Movable,
    Blocked(BlockReason),
}

/// `has_pdb` is asked only for kube-system pods (matching PDB selectors is
/// the costly part of classifying).
pub fn classify(pod: &Pod, has_pdb: impl FnOnce() -> bool, policy: &ScaleDownPolicy) -> Disposition {
    if pod.mirror || pod.is_terminal() || pod.is_daemonset() {
        return Disposition::Stays;
    }
    if pod.deletion.is_some() {
        return Disposition::Leaving;
    }
    match pod.safe_to_evict {
        Some(true) => return Disposition::Movable,
        Some(false) => return Disposition::Blocked(BlockReason::NotSafeToEvict),
        None => {}
    }
    let Some(owner) = &pod.owner else {
        return Disposition::Blocked(BlockReason::NoController);
    };
    if policy.skip_nodes_with_custom_controller_pods && !REPLICATING_CONTROLLERS.contains(&owner.kind.as_str()) {
        return Disposition::Blocked(BlockReason::CustomController { kind: owner.kind.clone() });
    }
    if policy.skip_nodes_with_system_pods && pod.namespace == "kube-system" && !has_pdb() {
        return Disposition::Blocked(BlockReason::SystemPodWithoutPdb);
    }
    if policy.skip_nodes_with_local_storage && pod.local_storage {
        return Disposition::Blocked(BlockReason::LocalStorage);
    }
    Disposition::Movable
}

/// `disruptionsAllowed` of every PDB, minus what this pass already plans to
/// disrupt: evictions of drains in progress first, then scale-down simulation.
#[derive(Clone, Debug)]
pub struct PdbBudget {
    /// `disruptionsAllowed` as observed.
    allowed: Table<PdbIx, i32>,
    remaining: Table<PdbIx, i32>,
}

/// When a drain can evict a pod its PDBs cover.
#[derive(Clone, Debug, PartialEq)]
pub enum Turn {
    /// In this round: one disruption taken from each of these PDBs.
    Now(Vec<PdbIx>),
    /// In a later round: this pass's allowance of one of its PDBs is spent
    /// (by this drain's earlier pods or another's), and comes back once their
    /// replacements are Ready.
    Later,
}

impl PdbBudget {
    pub fn new(ix: &Index<'_>) -> Self {
        let allowed: Table<PdbIx, i32> = ix.pdbs().map(|(_, p)| p.disruptions_allowed).collect();
        Self { remaining: allowed.clone(), allowed }
    }

    /// Takes one disruption from every PDB covering `pod`, or none if one of
    /// them is exhausted (that one is returned).
    pub fn take(&mut self, ix: &Index<'_>, pod: &Pod) -> Result<Vec<PdbIx>, PdbIx> {
        let covering: Vec<PdbIx> = ix.pdbs_covering(pod).collect();
        if let Some(&blocked) = covering.iter().find(|&&p| self.remaining[p] < 1) {
            return Err(blocked);
        }
        for &p in &covering {
            self.remaining[p] -= 1;
        }
        Ok(covering)
    }

    /// Whether a drain can evict `pod` at all, progressively: when every PDB
    /// covering it allows a disruption now, it is evicted in this round if
    /// they all have one left this pass (taken), else in a later one, after
    /// the replacements of the pods evicted before it are Ready and the
    /// allowance is back — Karpenter's drain, and what the eviction API
    /// enforces anyway. Never takes past the allowance. A PDB that allows no
    /// disruption now (its pods unhealthy, or `maxUnavailable: 0`) blocks:
    /// nothing says it will ever allow one (that one is returned).
    pub fn take_after(&mut self, ix: &Index<'_>, pod: &Pod) -> Result<Turn, PdbIx> {
        let covering: Vec<PdbIx> = ix.pdbs_covering(pod).collect();
        if let Some(&blocked) = covering.iter().find(|&&p| self.allowed[p] < 1) {
            return Err(blocked);
        }
        if covering.iter().any(|&p| self.remaining[p] < 1) {
            return Ok(Turn::Later);
        }
        for &p in &covering {
            self.remaining[p] -= 1;
        }
        Ok(Turn::Now(covering))
    }

    pub fn give_back(&mut self, taken: &[PdbIx]) {
        for &p in taken {
            self.remaining[p] += 1;
        }
    }
}

/// `namespace/name`, as explanations name a PDB.
pub fn pdb_name(ix: &Index<'_>, p: PdbIx) -> String {
    let pdb = ix.pdb(p);
    format!("{}/{}", pdb.namespace, pdb.name)
}

/// A pod being deleted on a node that is not Ready: its kubelet is not there to
/// finish the deletion (on a real cluster it stays `Terminating` until the
/// Node object goes), so a drain must not wait for it. The actuator applies
/// the same rule to the pods it lists.
pub fn abandoned(pod: &Pod, node_ready: bool) -> bool {
    !node_ready && pod.deletion.is_some()
}
