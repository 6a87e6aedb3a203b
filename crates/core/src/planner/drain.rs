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
    remaining: Table<PdbIx, i32>,
}

impl PdbBudget {
    pub fn new(ix: &Index<'_>) -> Self {
        Self { remaining: ix.pdbs().map(|(_, p)| p.disruptions_allowed).collect() }
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
