//! One pass over the snapshot that every later step reads from: pods by node,
//! node ↔ Heat member, control-plane marks, removal records, PDBs by namespace.
//! Built in O(nodes + pods); nothing after it scans all pods again.

use std::borrow::Cow;
use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use crate::model::{Node, Pod, Resources, Snapshot};

use super::drain::abandoned;
use super::policy::Policy;
use super::protocol::{self, RemovalState};
use super::scheduling::SchedNode;

/// Where a node sits in the Heat view: `snapshot.groups[group].members[member]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Membership {
    pub group: usize,
    pub member: usize,
}

pub struct Index<'a> {
    pub snap: &'a Snapshot,
    /// Non-terminal pods bound to each node, terminating ones included (they
    /// still hold their resources).
    pub pods_on: Vec<Vec<&'a Pod>>,
    pub requested: Vec<Resources>,
    /// Bound to no node, not terminal, not being deleted.
    pub unbound: Vec<&'a Pod>,
    pub membership: Vec<Option<Membership>>,
    /// `node_of[group][member]`: index of the member's node, if it is in the snapshot.
    pub node_of: Vec<Vec<Option<usize>>>,
    pub control_plane: Vec<bool>,
    pub removal: Vec<RemovalState>,
    /// One pod per DaemonSet (by owner uid): what a new minion will also run.
    pub daemonsets: Vec<&'a Pod>,
    pdbs_by_namespace: FxHashMap<&'a str, Vec<usize>>,
    /// Some pod uses host ports, required pod (anti-)affinity or a topology
    /// spread: the scheduling filters must see which pods run on a node. When
    /// none does (the common case), node pod lists are left empty — the
    /// filters would not read them.
    pod_lists_matter: bool,
}

impl<'a> Index<'a> {
    pub fn build(snap: &'a Snapshot, policy: &Policy) -> Self {
        let n = snap.nodes.len();
        let node_by_name: FxHashMap<&str, usize> =
            snap.nodes.iter().enumerate().map(|(i, node)| (node.name.as_str(), i)).collect();
        // Each pod's node, looked up once; lists are sized before filling.
        let node_of_pod: Vec<Option<usize>> =
            snap.pods.iter().map(|p| p.node_name.as_deref().and_then(|name| node_by_name.get(name).copied())).collect();
        let mut counts = vec![0usize; n];
        for i in node_of_pod.iter().flatten() {
            counts[*i] += 1;
        }
        let mut pods_on: Vec<Vec<&Pod>> = counts.into_iter().map(Vec::with_capacity).collect();
        let mut requested = vec![Resources::default(); n];
        let mut unbound = Vec::new();
        let mut daemonsets: BTreeMap<&str, &Pod> = BTreeMap::new();
        for (pod, node) in snap.pods.iter().zip(&node_of_pod) {
            if pod.is_terminal() {
                continue;
            }
            if pod.is_daemonset() && pod.deletion.is_none() {
                let uid = pod.owner.as_ref().map_or("", |o| o.uid.as_str());
                daemonsets.entry(uid).or_insert(pod);
            }
            match pod.node_name.as_deref() {
                Some(_) => {
                    if let Some(i) = *node {
                        pods_on[i].push(pod);
                        requested[i] += &pod.requests;
                    }
                }
                None if pod.deletion.is_none() => unbound.push(pod),
                None => {}
            }
        }
        let mut membership = vec![None; n];
        let mut node_of = Vec::with_capacity(snap.groups.len());
        for (g, group) in snap.groups.iter().enumerate() {
            let mut nodes = Vec::with_capacity(group.members.len());
            for (m, member) in group.members.iter().enumerate() {
                let node = member.node_name.as_deref().and_then(|name| node_by_name.get(name).copied());
                if let Some(i) = node {
                    membership[i] = Some(Membership { group: g, member: m });
                }
                nodes.push(node);
            }
            node_of.push(nodes);
        }
        let control_plane = snap
            .nodes
            .iter()
            .map(|node| policy.control_plane_labels.iter().any(|l| node.labels.contains_key(l)))
            .collect();
        let removal = snap.nodes.iter().map(protocol::read).collect();
        let mut pdbs_by_namespace: FxHashMap<&str, Vec<usize>> = FxHashMap::default();
        for (i, pdb) in snap.pdbs.iter().enumerate() {
            pdbs_by_namespace.entry(pdb.namespace.as_str()).or_default().push(i);
        }
        Self {
            snap,
            pods_on,
            requested,
            unbound,
            membership,
            node_of,
            control_plane,
            removal,
            daemonsets: daemonsets.into_values().collect(),
            pdbs_by_namespace,
            pod_lists_matter: snap.pods.iter().any(|p| {
                let p = &p.placement;
                !p.host_ports.is_empty()
                    || !p.anti_affinity_hostname.is_empty()
                    || !p.affinity_hostname.is_empty()
                    || !p.spread_hostname.is_empty()
            }),
        }
    }

    pub fn node(&self, i: usize) -> &'a Node {
        &self.snap.nodes[i]
    }

    /// PDBs (indices into `snapshot.pdbs`) whose selector covers `pod`.
    pub fn pdbs_covering<'s>(&'s self, pod: &'s Pod) -> impl Iterator<Item = usize> + 's {
        let candidates = self.pdbs_by_namespace.get(pod.namespace.as_str()).map_or(&[][..], Vec::as_slice);
        candidates.iter().copied().filter(move |&i| self.snap.pdbs[i].selector.matches(&pod.labels))
    }

    pub fn has_pdb(&self, pod: &Pod) -> bool {
        self.pdbs_by_namespace
            .get(pod.namespace.as_str())
            .is_some_and(|v| v.iter().any(|&i| self.snap.pdbs[i].selector.matches(&pod.labels)))
    }

    /// The node as a scheduling target, with what already runs there.
    pub fn sched_node(&self, i: usize) -> SchedNode<'a> {
        let node = self.node(i);
        SchedNode {
            name: Cow::Borrowed(node.name.as_str()),
            labels: &node.labels,
            taints: Cow::Borrowed(node.taints.as_slice()),
            unschedulable: node.unschedulable,
            allocatable: node.allocatable.clone(),
            requested: self.requested[i].clone(),
            pods: if self.pod_lists_matter { self.pods_on[i].clone() } else { Vec::new() },
            excluded: false,
        }
    }

    /// Workload pods on a node: what a drain must move (not DaemonSet, not
    /// mirror; terminating ones included, the drain waits for them — except on
    /// a node that is not Ready, where no kubelet will finish them: those go
    /// with the node, see [`abandoned`](super::abandoned)).
    pub fn workload_pods(&self, i: usize) -> impl Iterator<Item = &'a Pod> + '_ {
        let ready = self.node(i).ready;
        self.pods_on[i].iter().copied().filter(move |p| !p.is_daemonset() && !p.mirror && !abandoned(p, ready))
    }
}
