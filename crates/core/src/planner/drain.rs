//! Which pods keep a node, which move, and the PodDisruptionBudget allowance
//! shared by every drain and simulation in one pass.
//!
//! Rules follow cluster-autoscaler's drainability checks, so an operator's
//! annotations mean what they already mean there.

use std::collections::BTreeMap;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::model::{Name, Pod};
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
/// Made for one [`Index`] and asked only with it (its PDB indices, and what
/// it remembers of which PDBs cover which pods, are that index's).
#[derive(Clone, Debug)]
pub struct PdbBudget {
    /// `disruptionsAllowed` as observed.
    allowed: Table<PdbIx, i32>,
    remaining: Table<PdbIx, i32>,
    /// Which PDBs cover a pod, per label set this pass has asked about (see
    /// [`Covers`]).
    covers: Covers,
}

/// The PDBs covering the pods of one namespace and one label set, matched
/// once per pass. The replicas of a workload share their label map (one
/// `Arc`), and scale-down's removal simulation asks for every pod of every
/// candidate at every pass: matching each PDB's selector against each pod
/// again was about a tenth of a simulated pass (issue 18, item 5).
///
/// Keyed by the addresses of the label map and of the namespace string, so a
/// lookup neither hashes nor compares strings. Each entry keeps both alive, so
/// no other label map or namespace can take those addresses while the entry
/// is there: a key never answers for labels it did not match. Two equal label
/// maps in separate allocations get an entry each, with the same answer.
#[derive(Clone, Debug, Default)]
struct Covers {
    by_labels: FxHashMap<(usize, usize, usize), Cover>,
}

#[derive(Clone, Debug)]
struct Cover {
    /// Held only to keep the key's addresses from being reused.
    _labels: Arc<BTreeMap<String, String>>,
    _namespace: Name,
    pdbs: Vec<PdbIx>,
}

impl Covers {
    fn of(&mut self, ix: &Index<'_>, pod: &Pod) -> &[PdbIx] {
        let key = (Arc::as_ptr(&pod.labels) as usize, pod.namespace.as_ptr() as usize, pod.namespace.len());
        &self
            .by_labels
            .entry(key)
            .or_insert_with(|| Cover {
                _labels: Arc::clone(&pod.labels),
                _namespace: pod.namespace.clone(),
                pdbs: ix.pdbs_covering(pod).collect(),
            })
            .pdbs
    }
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
        Self { remaining: allowed.clone(), allowed, covers: Covers::default() }
    }

    /// Takes one disruption from every PDB covering `pod`, or none if one of
    /// them is exhausted (that one is returned).
    pub fn take(&mut self, ix: &Index<'_>, pod: &Pod) -> Result<Vec<PdbIx>, PdbIx> {
        let covering = self.covers.of(ix, pod);
        if let Some(&blocked) = covering.iter().find(|&&p| self.remaining[p] < 1) {
            return Err(blocked);
        }
        for &p in covering {
            self.remaining[p] -= 1;
        }
        Ok(covering.to_vec())
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
        let covering = self.covers.of(ix, pod);
        if let Some(&blocked) = covering.iter().find(|&&p| self.allowed[p] < 1) {
            return Err(blocked);
        }
        if covering.iter().any(|&p| self.remaining[p] < 1) {
            return Ok(Turn::Later);
        }
        for &p in covering {
            self.remaining[p] -= 1;
        }
        Ok(Turn::Now(covering.to_vec()))
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use crate::model::{LabelSelector, Pdb, Pod, Snapshot, test_support};
    use crate::planner::index::{Index, PdbIx};
    use crate::planner::policy::Policy;

    use super::PdbBudget;

    fn labels(app: &str) -> Arc<BTreeMap<String, String>> {
        Arc::new(BTreeMap::from([("app".to_string(), app.to_string())]))
    }

    fn pdb(namespace: &str, app: &str, allowed: i32) -> Pdb {
        Pdb {
            namespace: namespace.into(),
            name: format!("{app}-pdb"),
            selector: LabelSelector {
                match_labels: BTreeMap::from([("app".to_string(), app.to_string())]),
                ..Default::default()
            },
            disruptions_allowed: allowed,
        }
    }

    fn pod(name: &str, namespace: &str, labels: &Arc<BTreeMap<String, String>>) -> Pod {
        Pod { namespace: namespace.into(), labels: Arc::clone(labels), ..test_support::pod(name) }
    }

    /// What the remembered coverage must always equal: the selectors matched afresh.
    fn matched(ix: &Index<'_>, pod: &Pod) -> Vec<PdbIx> {
        ix.pdbs_covering(pod).collect()
    }

    #[test]
    fn one_label_map_in_two_namespaces_is_covered_by_each_namespace_s_pdb() {
        let snap = Snapshot { pdbs: vec![pdb("shop", "web", 1), pdb("blog", "web", 1)], ..Snapshot::default() };
        let ix = Index::build(&snap, &Policy::default());
        let shared = labels("web");
        let (shop, blog) = (pod("a", "shop", &shared), pod("b", "blog", &shared));
        let mut budget = PdbBudget::new(&ix);
        assert_eq!(budget.take(&ix, &shop), Ok(matched(&ix, &shop)));
        assert_eq!(matched(&ix, &shop).len(), 1);
        // Remembered by label map alone, blog's pod would find shop's PDB,
        // whose one disruption is spent.
        assert_eq!(budget.take(&ix, &blog), Ok(matched(&ix, &blog)));
        assert_ne!(matched(&ix, &shop), matched(&ix, &blog));
    }

    #[test]
    fn a_label_map_asked_about_and_dropped_never_answers_for_a_later_one() {
        // Label maps made, asked about and dropped one after another: an
        // allocator hands a freed address to the next map of the same size,
        // so a remembered answer keyed by an address that could be reused
        // would be given to the next map, whose labels differ.
        let snap = Snapshot { pdbs: vec![pdb("default", "web", 1_000)], ..Snapshot::default() };
        let ix = Index::build(&snap, &Policy::default());
        let mut budget = PdbBudget::new(&ix);
        for round in 0..200 {
            let app = if round % 2 == 0 { "web" } else { "db" };
            let p = pod(&format!("p{round}"), "default", &labels(app));
            let want = matched(&ix, &p);
            assert_eq!(want.len(), usize::from(app == "web"));
            assert_eq!(budget.take_after(&ix, &p).map(|_| ()), Ok(()), "round {round}");
            assert_eq!(budget.covers.of(&ix, &p), want.as_slice(), "round {round}: {app}");
        }
    }
}
