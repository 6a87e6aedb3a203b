//! One pass over the snapshot that every later step reads from: pods by node,
//! node ↔ Heat member, control-plane marks, removal records, PDBs by namespace.
//! Built in O(nodes + pods); nothing after it scans all pods again.
//!
//! Nodes, groups, members and PDBs are named by their typed positions
//! ([`NodeIx`], [`GroupIx`], [`MemberIx`], [`PdbIx`]), which only the index
//! hands out: `ix.member(m)` rather than `snap.groups[g].members[k]`.

mod typed;

use std::borrow::Cow;

use rustc_hash::FxHashMap;

use crate::model::{
    GroupState, Member, Node, Pdb, Pod, PodTemplate, Resources, Snapshot, VerticalScaling, WorkloadRef,
};

use super::drain::abandoned;
use super::policy::Policy;
use super::protocol::{self, RemovalState};
use super::scheduling::SchedNode;

pub use typed::{GroupIx, MemberIx, NodeIx, PdbIx, PodIx, VpaIx};
pub(crate) use typed::{Ix, Table};

pub struct Index<'a> {
    pub snap: &'a Snapshot,
    /// Bound to no node, not terminal, not being deleted.
    pub unbound: Vec<&'a Pod>,
    /// One pod per DaemonSet (by owner uid): what a new minion will also run.
    pub daemonsets: Vec<&'a Pod>,
    node_by_name: FxHashMap<&'a str, NodeIx>,
    /// Non-terminal pods bound to each node, terminating ones included (they
    /// still hold their resources).
    pods_on: Table<NodeIx, Vec<&'a Pod>>,
    requested: Table<NodeIx, Resources>,
    membership: Table<NodeIx, Option<MemberIx>>,
    /// Per group, per member: the member's node, if it is in the snapshot.
    node_of: Table<GroupIx, Vec<Option<NodeIx>>>,
    control_plane: Table<NodeIx, bool>,
    removal: Table<NodeIx, RemovalState>,
    pdbs_by_namespace: FxHashMap<&'a str, Vec<PdbIx>>,
    /// The VPA object of each workload: the first listed when several name
    /// one (a misconfiguration VPA leaves undefined). Built once, so a pod's
    /// object is a lookup, not a scan of every object (issue 22).
    vpa_by_workload: FxHashMap<&'a WorkloadRef, VpaIx>,
    /// Some pod uses host ports or inter-pod terms (affinity, anti-affinity,
    /// spread, required or preferred): the scheduling
    /// filters must see which pods run on a node. When none does (the common
    /// case), node pod lists are left empty — the filters would not read them.
    pod_lists_matter: bool,
    /// Some pod has a term whose check on a new or upcoming minion needs the
    /// pods of the rest of the cluster (affinity, spread, anti-affinity over a
    /// zone or another wide key, preferences).
    wide_topology: bool,
}

impl<'a> Index<'a> {
    pub fn build(snap: &'a Snapshot, policy: &Policy) -> Self {
        let n = snap.nodes.len();
        let node_by_name: FxHashMap<&str, NodeIx> =
            snap.nodes.iter().enumerate().map(|(i, node)| (node.name.as_str(), NodeIx::new(i))).collect();
        // Each pod's node, looked up once; lists are sized before filling.
        let node_of_pod: Vec<Option<NodeIx>> =
            snap.pods.iter().map(|p| p.node_name.as_deref().and_then(|name| node_by_name.get(name).copied())).collect();
        let mut counts: Table<NodeIx, usize> = Table::filled(0, n);
        for i in node_of_pod.iter().flatten() {
            counts[*i] += 1;
        }
        let mut pods_on: Table<NodeIx, Vec<&Pod>> = counts.values().map(|&c| Vec::with_capacity(c)).collect();
        let mut requested = Table::filled(Resources::default(), n);
        let mut unbound = Vec::new();
        // One pod per DaemonSet, the first listed; hashed here and put in
        // owner-uid order once below (a sorted map's string compares per
        // DaemonSet pod were a visible part of every pass, issue 18 item 5).
        let mut daemonsets: FxHashMap<&str, &Pod> = FxHashMap::default();
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
        let mut membership = Table::filled(None, n);
        let mut node_of = Table::default();
        for (g, group) in snap.groups.iter().enumerate() {
            let g = GroupIx::new(g);
            let mut nodes = Vec::with_capacity(group.members.len());
            for (m, member) in group.members.iter().enumerate() {
                let node = member.node_name.as_deref().and_then(|name| node_by_name.get(name).copied());
                if let Some(i) = node {
                    membership[i] = Some(MemberIx::new(g, m));
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
        let mut pdbs_by_namespace: FxHashMap<&str, Vec<PdbIx>> = FxHashMap::default();
        for (i, pdb) in snap.pdbs.iter().enumerate() {
            pdbs_by_namespace.entry(pdb.namespace.as_str()).or_default().push(PdbIx::new(i));
        }
        let mut vpa_by_workload = FxHashMap::default();
        for (v, vertical) in snap.vertical.iter().enumerate() {
            vpa_by_workload.entry(&vertical.workload).or_insert(VpaIx::new(v));
        }
        Self {
            snap,
            unbound,
            daemonsets: {
                let mut by_owner: Vec<(&str, &Pod)> = daemonsets.into_iter().collect();
                by_owner.sort_unstable_by_key(|&(uid, _)| uid);
                by_owner.into_iter().map(|(_, pod)| pod).collect()
            },
            node_by_name,
            pods_on,
            requested,
            membership,
            node_of,
            control_plane,
            removal,
            pdbs_by_namespace,
            vpa_by_workload,
            pod_lists_matter: snap.pods.iter().any(|p| {
                let p = &p.placement;
                !p.host_ports.is_empty()
                    || !p.pod_anti_affinity.is_empty()
                    || !p.pod_affinity.is_empty()
                    || !p.preferred_pod_affinity.is_empty()
                    || !p.preferred_pod_anti_affinity.is_empty()
                    || !p.spread.is_empty()
            }),
            wide_topology: snap.pods.iter().any(|p| {
                let p = &p.placement;
                !p.pod_affinity.is_empty()
                    || p.pod_anti_affinity.iter().any(|t| !t.per_node())
                    || !p.preferred_pod_affinity.is_empty()
                    || !p.preferred_pod_anti_affinity.is_empty()
                    || !p.spread.is_empty()
            }),
        }
    }

    // ---------------------------------------------------------------- nodes

    /// Every node, in snapshot order.
    pub fn nodes(&self) -> impl Iterator<Item = NodeIx> + use<> {
        (0..self.snap.nodes.len()).map(NodeIx::new)
    }

    pub fn node_count(&self) -> usize {
        self.snap.nodes.len()
    }

    pub fn node(&self, i: NodeIx) -> &'a Node {
        &self.snap.nodes[i.get()]
    }

    /// The node with this name (the last one listed, should two share it).
    pub fn node_named(&self, name: &str) -> Option<NodeIx> {
        self.node_by_name.get(name).copied()
    }

    /// Non-terminal pods bound to the node, terminating ones included.
    pub fn pods_on(&self, i: NodeIx) -> &[&'a Pod] {
        &self.pods_on[i]
    }

    /// What the pods bound to the node request, together.
    pub fn requested(&self, i: NodeIx) -> &Resources {
        &self.requested[i]
    }

    /// The Heat member whose node this is, if any.
    pub fn membership(&self, i: NodeIx) -> Option<MemberIx> {
        self.membership[i]
    }

    /// Carries one of the policy's control-plane labels.
    pub fn is_control_plane(&self, i: NodeIx) -> bool {
        self.control_plane[i]
    }

    /// The removal record on the node, as read by [`protocol::read`].
    pub fn removal(&self, i: NodeIx) -> &RemovalState {
        &self.removal[i]
    }

    /// Every node with its removal state, in snapshot order.
    pub fn removals(&self) -> impl Iterator<Item = (NodeIx, &RemovalState)> {
        self.removal.iter()
    }

    /// See the `wide_topology` field: scale-up then gives its placements of
    /// new and upcoming minions the existing nodes as context.
    pub fn wide_topology(&self) -> bool {
        self.wide_topology
    }

    /// The node as a scheduling target, with what already runs there.
    pub fn sched_node(&self, i: NodeIx) -> SchedNode<'a> {
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
    pub fn workload_pods(&self, i: NodeIx) -> impl Iterator<Item = &'a Pod> + '_ {
        let ready = self.node(i).ready;
        self.pods_on[i].iter().copied().filter(move |p| !p.is_daemonset() && !p.mirror && !abandoned(p, ready))
    }

    // --------------------------------------------------------------- groups

    /// Every node group, in snapshot order.
    pub fn groups(&self) -> impl Iterator<Item = (GroupIx, &'a GroupState)> + use<'a> {
        self.snap.groups.iter().enumerate().map(|(g, group)| (GroupIx::new(g), group))
    }

    pub fn group_count(&self) -> usize {
        self.snap.groups.len()
    }

    pub fn group(&self, g: GroupIx) -> &'a GroupState {
        &self.snap.groups[g.get()]
    }

    /// The first group with this name.
    pub fn group_named(&self, name: &str) -> Option<GroupIx> {
        self.snap.groups.iter().position(|g| g.name == name).map(GroupIx::new)
    }

    /// The group's members, in Heat's order.
    pub fn members(&self, g: GroupIx) -> impl Iterator<Item = (MemberIx, &'a Member)> + use<'a> {
        self.group(g).members.iter().enumerate().map(move |(k, member)| (MemberIx::new(g, k), member))
    }

    pub fn member(&self, m: MemberIx) -> &'a Member {
        &self.group(m.group()).members[m.position()]
    }

    /// The first member of the group with this id.
    pub fn member_named(&self, g: GroupIx, id: &str) -> Option<MemberIx> {
        self.group(g).members.iter().position(|m| m.id == id).map(|k| MemberIx::new(g, k))
    }

    /// The member's node, if it is in the snapshot.
    pub fn node_of(&self, m: MemberIx) -> Option<NodeIx> {
        self.node_of[m.group()][m.position()]
    }

    // ----------------------------------------------------------------- PDBs

    pub fn pdb(&self, p: PdbIx) -> &'a Pdb {
        &self.snap.pdbs[p.get()]
    }

    /// Every PDB, in snapshot order.
    pub fn pdbs(&self) -> impl Iterator<Item = (PdbIx, &'a Pdb)> + use<'a> {
        self.snap.pdbs.iter().enumerate().map(|(p, pdb)| (PdbIx::new(p), pdb))
    }

    /// PDBs whose selector covers `pod`.
    pub fn pdbs_covering<'s>(&'s self, pod: &'s Pod) -> impl Iterator<Item = PdbIx> + 's {
        let candidates = self.pdbs_by_namespace.get(pod.namespace.as_str()).map_or(&[][..], Vec::as_slice);
        candidates.iter().copied().filter(move |&p| self.pdb(p).selector.matches(&pod.labels))
    }

    pub fn has_pdb(&self, pod: &Pod) -> bool {
        self.pdbs_by_namespace
            .get(pod.namespace.as_str())
            .is_some_and(|v| v.iter().any(|&p| self.pdb(p).selector.matches(&pod.labels)))
    }

    // ------------------------------------------------- pods and VPA objects

    /// Every pod of the snapshot (terminal ones too), in snapshot order.
    pub fn pods(&self) -> impl Iterator<Item = (PodIx, &'a Pod)> + use<'a> {
        self.snap.pods.iter().enumerate().map(|(p, pod)| (PodIx::new(p), pod))
    }

    pub fn pod(&self, p: PodIx) -> &'a Pod {
        &self.snap.pods[p.get()]
    }

    /// Every VPA object, in snapshot order.
    pub fn vpas(&self) -> impl Iterator<Item = (VpaIx, &'a VerticalScaling)> + use<'a> {
        self.snap.vertical.iter().enumerate().map(|(v, vpa)| (VpaIx::new(v), vpa))
    }

    pub fn vpa(&self, v: VpaIx) -> &'a VerticalScaling {
        &self.snap.vertical[v.get()]
    }

    /// The VPA object that targets `workload`, if any (the first listed).
    pub fn vpa_of(&self, workload: &WorkloadRef) -> Option<VpaIx> {
        self.vpa_by_workload.get(workload).copied()
    }

    /// The pod template `pod`'s controller recreates it from, when known.
    pub fn template_of(&self, pod: &Pod) -> Option<&'a PodTemplate> {
        self.snap.templates.get(pod.owner.as_ref()?.uid.as_str())
    }
}
