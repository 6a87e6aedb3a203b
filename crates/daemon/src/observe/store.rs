//! The compact cluster state the watches keep: a [`Snapshot`] updated in
//! place, object by object, so planning reads it without copying 150,000 pods.
//!
//! Pods, nodes and budgets arrive decoded into [`super::slim`] types (only the fields
//! the model needs), each converted on arrival (see [`super::convert`]) and
//! dropped. A re-list (start-up, or after the API server expired
//! our resourceVersion) updates the store in place and, at its end, drops
//! what it did not list (mark and sweep): no second copy of 150,000 pods is
//! ever held. While one is under way [`ClusterStore::relisting`] says so and
//! the run loop does not plan, so a half-listed state is never planned on.
//! Every `apply_*` returns whether the compact state changed: status
//! heartbeats that change nothing the planner reads wake nobody.
//!
//! Namespaces are kept for their labels only, copied into the placement of
//! each of their pods ([`Placement::namespace_labels`]): what other pods'
//! affinity terms with a `namespaceSelector` select by. A namespace whose
//! labels change re-shares its pods' placements.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::Hash;
use std::sync::Arc;

use k8s_openapi::api::core::v1 as k8s;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::watcher::Event;

use super::{convert, slim};
use crate::vpa::upstream::UpstreamMark;
use heatscaler_core::model::{
    GroupState, Name, Node, OwnerRef, Pdb, Placement, Pod, PodTemplate, Snapshot, WorkloadRef,
};

/// One kind of object the store watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Watched {
    Nodes,
    Pods,
    PodDisruptionBudgets,
    ReplicaSets,
    Namespaces,
}

impl Watched {
    pub const ALL: [Watched; 5] =
        [Watched::Nodes, Watched::Pods, Watched::PodDisruptionBudgets, Watched::ReplicaSets, Watched::Namespaces];

    pub const fn as_str(self) -> &'static str {
        match self {
            Watched::Nodes => "nodes",
            Watched::Pods => "pods",
            Watched::PodDisruptionBudgets => "poddisruptionbudgets",
            Watched::ReplicaSets => "replicasets",
            Watched::Namespaces => "namespaces",
        }
    }
}

/// (namespace, name) of a ReplicaSet.
type RsKey = (String, String);

/// What a ReplicaSet re-list has gathered so far; swapped in at its end.
#[derive(Debug, Default)]
struct ReplicaSetRelist {
    owners: HashMap<RsKey, Option<String>>,
    templates: HashMap<String, PodTemplate>,
}

#[derive(Debug, Default)]
pub struct ClusterStore {
    snapshot: Snapshot,
    node_ix: Index<String>,
    pod_ix: Index<PodId>,
    pdb_ix: Index<String>,
    placements: Interner<Placement>,
    labels: Interner<BTreeMap<String, String>>,
    owners: Interner<OwnerRef>,
    /// The workloads' kinds, namespaces and names, and the pods' namespaces.
    names: Names,
    /// The Deployment controlling each ReplicaSet (`None`: no Deployment).
    replica_sets: HashMap<RsKey, Option<String>>,
    /// Pods (by key) whose ReplicaSet has not been seen yet.
    unresolved: HashMap<RsKey, HashSet<PodId>>,
    relist_replica_sets: Option<ReplicaSetRelist>,
    /// Pods (by uid) upstream VPA's updater or admission controller acted on.
    upstream_vpa: HashMap<String, UpstreamMark>,
    /// Pods (by uid) heatscaler's admission webhook marked (`admission::ANNOTATION`).
    admitted: HashSet<String>,
    /// Each node's kubelet address, or why its Node gives none
    /// ([`convert::kubelet_address`]): the model's nodes do not carry it.
    kubelets: HashMap<String, Result<String, String>>,
    /// Each namespace's labels (namespaces without labels are left out:
    /// they select like a namespace not yet seen).
    namespaces: HashMap<String, Labels>,
    /// What a Namespace re-list has gathered so far; swapped in at its end.
    relist_namespaces: Option<HashMap<String, Labels>>,
}

type Labels = BTreeMap<String, String>;

impl ClusterStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Live pods (by uid) upstream VPA's updater or admission controller has
    /// acted on (`vpa::upstream`).
    pub fn upstream_vpa_marks(&self) -> &HashMap<String, UpstreamMark> {
        &self.upstream_vpa
    }

    /// Live pods (by uid) heatscaler's admission webhook admitted with a
    /// recommendation: the evidence that the API server calls it
    /// (`admission::witness`).
    pub fn admitted_by_webhook(&self) -> &HashSet<String> {
        &self.admitted
    }

    fn mark_upstream_vpa(&mut self, meta: &ObjectMeta) {
        let Some(uid) = meta.uid.as_ref() else { return };
        if crate::admission::admitted_by(meta.annotations.as_ref()).is_some() {
            self.admitted.insert(uid.clone());
        } else {
            self.admitted.remove(uid);
        }
        match crate::vpa::upstream::mark(meta.annotations.as_ref()) {
            Some(mark) => {
                self.upstream_vpa.insert(uid.clone(), mark);
            }
            None => {
                self.upstream_vpa.remove(uid);
            }
        }
    }

    /// The Deployment controlling ReplicaSet `namespace/name` as last seen:
    /// `None` when the ReplicaSet has not been seen, `Some(None)` when no
    /// Deployment controls it (the admission webhook resolves a new pod's
    /// workload with it, as the store resolves a pod's).
    pub fn replica_set_owner(&self, namespace: &str, name: &str) -> Option<Option<&str>> {
        self.replica_sets.get(&(namespace.to_string(), name.to_string())).map(|d| d.as_deref())
    }

    /// Nodes, pods and PDBs as last seen; `groups` as last set.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Replaces the Heat side of the snapshot (assembled per planning pass).
    pub fn set_groups(&mut self, groups: Vec<GroupState>) {
        self.snapshot.groups = groups;
    }

    /// Replaces the pod level of the snapshot (VPA models, assembled per planning pass).
    pub fn set_vertical(&mut self, vertical: Vec<heatscaler_core::model::VerticalScaling>, admission_controller: bool) {
        self.snapshot.vertical = vertical;
        self.snapshot.admission_applies_recommendations = admission_controller;
    }

    /// A re-list of some kind is under way: the state mixes old and new.
    pub fn relisting(&self) -> bool {
        self.node_ix.seen.is_some()
            || self.pod_ix.seen.is_some()
            || self.pdb_ix.seen.is_some()
            || self.relist_replica_sets.is_some()
            || self.relist_namespaces.is_some()
    }

    /// Distinct placements held (pods of one workload share one).
    pub fn placements(&self) -> usize {
        self.placements.set.len()
    }

    /// Where `node`'s kubelet serves, as its watched Node says
    /// (`https://<InternalIP>:<port>`), or why it does not.
    pub fn kubelet_address(&self, node: &str) -> Result<String, String> {
        self.kubelets.get(node).cloned().unwrap_or_else(|| Err("the Node is not (yet) listed".into()))
    }

    /// Makes room at once for the `n` objects of `kind` a list is about to
    /// deliver (the API server's count, [`super::watch`]): filled one page at
    /// a time, the pods' `Vec` would otherwise grow by copying, holding the
    /// old buffer and the new one at once — at 150,000 pods the old one is
    /// 55 MiB, the daemon's peak above its steady state (issue 22). The
    /// capacity the list leaves unused is never touched (not resident) and is
    /// returned when the list completes. `exact`: `n` counts only what the
    /// watch selects; an over-count (terminal pods counted too) is taken only
    /// for the first list, as a re-list of a full store would copy it to
    /// grow into room it does not need.
    pub fn expect(&mut self, kind: Watched, n: usize, exact: bool) {
        match kind {
            Watched::Nodes => self.node_ix.expect(&mut self.snapshot.nodes, n, exact),
            Watched::Pods => self.pod_ix.expect(&mut self.snapshot.pods, n, exact),
            // A few thousand at most: growth costs nothing worth a request.
            Watched::PodDisruptionBudgets | Watched::ReplicaSets | Watched::Namespaces => {}
        }
    }

    pub fn apply_node(&mut self, event: Event<slim::Node>) -> bool {
        let nodes = &mut self.snapshot.nodes;
        match event {
            Event::Init => self.node_ix.start_relist(),
            Event::InitApply(n) => {
                let n = convert_node(&mut self.kubelets, n);
                self.node_ix.upsert(nodes, node_key(&n), n);
                false
            }
            Event::InitDone => {
                let changed = self.node_ix.finish_relist(nodes, node_key);
                self.kubelets.retain(|name, _| self.node_ix.ix.contains_key(name));
                changed
            }
            Event::Apply(n) => {
                let n = convert_node(&mut self.kubelets, n);
                self.node_ix.upsert(nodes, node_key(&n), n)
            }
            Event::Delete(n) => {
                let name = n.metadata.name.unwrap_or_default();
                self.kubelets.remove(&name);
                self.node_ix.remove(nodes, &name, node_key)
            }
        }
    }

    pub fn apply_pdb(&mut self, event: Event<slim::PodDisruptionBudget>) -> bool {
        let pdbs = &mut self.snapshot.pdbs;
        match event {
            Event::Init => self.pdb_ix.start_relist(),
            Event::InitApply(p) => {
                if let Some(pdb) = convert::pdb(&p.into_api()) {
                    self.pdb_ix.upsert(pdbs, pdb_key(&pdb), pdb);
                }
                false
            }
            Event::InitDone => self.pdb_ix.finish_relist(pdbs, pdb_key),
            Event::Apply(p) => {
                let key = meta_key(&p.metadata);
                match convert::pdb(&p.into_api()) {
                    Some(pdb) => self.pdb_ix.upsert(pdbs, pdb_key(&pdb), pdb),
                    // A budget eviction ignores is as good as no budget.
                    None => self.pdb_ix.remove(pdbs, &key, pdb_key),
                }
            }
            Event::Delete(p) => self.pdb_ix.remove(pdbs, &meta_key(&p.metadata), pdb_key),
        }
    }

    pub fn apply_pod(&mut self, event: Event<slim::Pod>) -> bool {
        match event {
            Event::Init => self.pod_ix.start_relist(),
            Event::InitApply(p) => {
                self.mark_upstream_vpa(&p.metadata);
                let pod = self.compact_pod(&p.into_api());
                self.pod_ix.upsert(&mut self.snapshot.pods, pod_key(&pod), pod);
                false
            }
            Event::InitDone => {
                let changed = self.pod_ix.finish_relist(&mut self.snapshot.pods, pod_key);
                if !self.upstream_vpa.is_empty() || !self.admitted.is_empty() {
                    let live: HashSet<&str> = self.snapshot.pods.iter().map(|p| p.uid.as_str()).collect();
                    self.upstream_vpa.retain(|uid, _| live.contains(uid.as_str()));
                    self.admitted.retain(|uid| live.contains(uid.as_str()));
                }
                for waiting in self.unresolved.values_mut() {
                    waiting.retain(|k| self.pod_ix.ix.contains_key(k));
                }
                self.unresolved.retain(|_, w| !w.is_empty());
                self.placements.purge();
                self.labels.purge();
                self.owners.purge();
                self.names.purge();
                changed
            }
            Event::Apply(p) => {
                self.mark_upstream_vpa(&p.metadata);
                let pod = self.compact_pod(&p.into_api());
                let changed = self.pod_ix.upsert(&mut self.snapshot.pods, pod_key(&pod), pod);
                self.placements.maybe_purge();
                self.labels.maybe_purge();
                self.owners.maybe_purge();
                self.names.maybe_purge();
                changed
            }
            Event::Delete(p) => {
                if let Some(uid) = &p.metadata.uid {
                    self.upstream_vpa.remove(uid);
                    self.admitted.remove(uid);
                }
                let key = match p.metadata.uid.as_deref() {
                    Some(uid) if !uid.is_empty() => PodId::of(uid),
                    _ => PodId::Other(meta_key(&p.metadata).into()),
                };
                self.pod_ix.remove(&mut self.snapshot.pods, &key, pod_key)
            }
        }
    }

    /// A ReplicaSet: the Deployment its pods belong to, and the template they
    /// are recreated from (`Snapshot::templates`, by the ReplicaSet's uid).
    pub fn apply_replica_set(&mut self, event: Event<slim::ReplicaSet>) -> bool {
        match event {
            Event::Init => {
                self.relist_replica_sets = Some(ReplicaSetRelist::default());
                false
            }
            Event::InitApply(rs) => {
                let rs = convert::replica_set(&rs.into_api());
                let relist = self.relist_replica_sets.get_or_insert_with(ReplicaSetRelist::default);
                if let Some(template) = rs.template.filter(|_| !rs.uid.is_empty()) {
                    relist.templates.insert(rs.uid, template);
                }
                relist.owners.insert(rs.key, rs.deployment);
                false
            }
            Event::InitDone => {
                let relist = self.relist_replica_sets.take().unwrap_or_default();
                self.replica_sets = relist.owners;
                let templates_changed = self.snapshot.templates != relist.templates;
                self.snapshot.templates = relist.templates;
                self.unresolved.clear();
                self.resolve_all_workloads() || templates_changed
            }
            Event::Apply(rs) => {
                let rs = convert::replica_set(&rs.into_api());
                let template_changed = match rs.template.filter(|_| !rs.uid.is_empty()) {
                    Some(template) => {
                        self.snapshot.templates.get(&rs.uid) != Some(&template) && {
                            self.snapshot.templates.insert(rs.uid.clone(), template);
                            true
                        }
                    }
                    None => self.snapshot.templates.remove(&rs.uid).is_some(),
                };
                let owner_changed = match self.replica_sets.insert(rs.key.clone(), rs.deployment.clone()) {
                    Some(previous) if previous == rs.deployment => false,
                    // Adopted by another Deployment (rare): every pod of it re-resolves.
                    Some(_) => self.resolve_all_workloads(),
                    None => self.resolve_waiting(&rs.key),
                };
                template_changed || owner_changed
            }
            Event::Delete(rs) => {
                // Its pods keep the workload they resolved to; the garbage
                // collector deletes them next.
                let rs = convert::replica_set(&rs.into_api());
                self.replica_sets.remove(&rs.key);
                self.snapshot.templates.remove(&rs.uid).is_some()
            }
        }
    }

    /// A Namespace: its labels, into the placements of its pods. Only a
    /// label change re-shares placements (and wakes the planner).
    pub fn apply_namespace(&mut self, event: Event<slim::Namespace>) -> bool {
        match event {
            Event::Init => {
                self.relist_namespaces = Some(HashMap::new());
                false
            }
            Event::InitApply(ns) => {
                let (name, labels) = namespace_labels(ns);
                let relist = self.relist_namespaces.get_or_insert_with(HashMap::new);
                if !labels.is_empty() {
                    relist.insert(name, labels);
                }
                false
            }
            Event::InitDone => {
                let listed = self.relist_namespaces.take().unwrap_or_default();
                let mut changed: HashSet<String> =
                    self.namespaces.keys().filter(|n| !listed.contains_key(*n)).cloned().collect();
                changed
                    .extend(listed.iter().filter(|(n, l)| self.namespaces.get(*n) != Some(l)).map(|(n, _)| n.clone()));
                self.namespaces = listed;
                // Always a change: the state is whole again (as other kinds' re-lists).
                self.relabel_pods(&changed);
                true
            }
            Event::Apply(ns) => {
                let (name, labels) = namespace_labels(ns);
                if self.namespaces.get(&name).map_or(labels.is_empty(), |l| *l == labels) {
                    return false;
                }
                if labels.is_empty() {
                    self.namespaces.remove(&name);
                } else {
                    self.namespaces.insert(name.clone(), labels);
                }
                self.relabel_pods(&HashSet::from([name]))
            }
            Event::Delete(ns) => {
                let (name, _) = namespace_labels(ns);
                // Its pods are being deleted with it; until they are gone
                // they select like pods of an unlabelled namespace.
                self.namespaces.remove(&name).is_some() && self.relabel_pods(&HashSet::from([name]))
            }
        }
    }

    /// The labels of `namespace` as last seen (empty: none, or not seen).
    pub fn namespace_labels(&self, namespace: &str) -> &Labels {
        static NONE: Labels = BTreeMap::new();
        self.namespaces.get(namespace).unwrap_or(&NONE)
    }

    /// Gives the pods of `namespaces` their namespace's current labels;
    /// whether any pod's placement changed.
    fn relabel_pods(&mut self, namespaces: &HashSet<String>) -> bool {
        if namespaces.is_empty() {
            return false;
        }
        let mut changed = false;
        for i in 0..self.snapshot.pods.len() {
            let pod = &self.snapshot.pods[i];
            if !namespaces.contains(pod.namespace.as_str()) {
                continue;
            }
            let labels = self.namespaces.get(pod.namespace.as_str()).cloned().unwrap_or_default();
            if pod.placement.namespace_labels == labels {
                continue;
            }
            let placement = Arc::new(Placement { namespace_labels: labels, ..(*pod.placement).clone() });
            self.snapshot.pods[i].placement = self.placements.intern(placement);
            changed = true;
        }
        if changed {
            // Drop the placements just replaced now, not at some later
            // amortised purge: a relabel re-shares every pod of the namespace,
            // so the old ones are all garbage at once, and the purge (over the
            // few thousand placements) costs less than the loop above (over
            // the pods). Left in, they made the store count a placement per
            // label state it went through, e.g. two for one workload when the
            // namespace list finished after the pod list.
            self.placements.purge();
        }
        changed
    }

    /// Converts a pod, shares its placement, and resolves its workload.
    fn compact_pod(&mut self, p: &k8s::Pod) -> Pod {
        let mut pod = convert::pod(p);
        pod.namespace = self.names.intern(pod.namespace);
        if let Some(labels) = self.namespaces.get(pod.namespace.as_str()) {
            Arc::make_mut(&mut pod.placement).namespace_labels = labels.clone();
        }
        pod.placement = self.placements.intern(pod.placement);
        pod.labels = self.labels.intern(pod.labels);
        pod.owner = pod.owner.map(|o| self.owners.intern(o));
        pod.workload = self.shared_workload(pod.workload);
        if let Some(owner) = pod.owner.clone().filter(|o| o.kind == "ReplicaSet") {
            let rs = (pod.namespace.to_string(), owner.name.clone());
            match self.replica_sets.get(&rs) {
                Some(deployment) => {
                    let resolved = convert::workload(&owner, &pod.namespace, Some(deployment.as_deref()));
                    pod.workload = self.shared_workload(resolved);
                }
                None => {
                    self.unresolved.entry(rs).or_default().insert(pod_key(&pod));
                }
            }
        }
        pod
    }

    /// The workload as the pods of it already share it.
    fn shared_workload(&mut self, workload: Option<WorkloadRef>) -> Option<WorkloadRef> {
        workload.map(|w| self.names.workload(w))
    }

    fn resolve_waiting(&mut self, rs: &RsKey) -> bool {
        let Some(waiting) = self.unresolved.remove(rs) else { return false };
        let deployment = self.replica_sets.get(rs).cloned().flatten();
        let mut changed = false;
        for key in waiting {
            if let Some(&i) = self.pod_ix.ix.get(&key) {
                let pod = &self.snapshot.pods[i];
                if let Some(owner) = &pod.owner {
                    let resolved = convert::workload(owner, &pod.namespace, Some(deployment.as_deref()));
                    self.snapshot.pods[i].workload = resolved.map(|w| self.names.workload(w));
                    changed = true;
                }
            }
        }
        changed
    }

    fn resolve_all_workloads(&mut self) -> bool {
        let mut changed = false;
        for pod in &mut self.snapshot.pods {
            let Some(owner) = pod.owner.as_ref().filter(|o| o.kind == "ReplicaSet") else { continue };
            let rs = (pod.namespace.to_string(), owner.name.clone());
            let resolved = match self.replica_sets.get(&rs) {
                Some(d) => convert::workload(owner, &pod.namespace, Some(d.as_deref())),
                None => {
                    self.unresolved.entry(rs).or_default().insert(pod_key(pod));
                    None
                }
            };
            if pod.workload != resolved {
                pod.workload = resolved.map(|w| self.names.workload(w));
                changed = true;
            }
        }
        changed
    }
}

/// A Namespace's name and labels.
fn namespace_labels(ns: slim::Namespace) -> (String, Labels) {
    (ns.metadata.name.unwrap_or_default(), ns.metadata.labels.unwrap_or_default())
}

/// The model's node, noting its kubelet's address on the side.
fn convert_node(kubelets: &mut HashMap<String, Result<String, String>>, n: slim::Node) -> Node {
    let api = n.into_api();
    let node = convert::node(&api);
    kubelets.insert(node.name.clone(), convert::kubelet_address(&api));
    node
}

fn node_key(n: &Node) -> String {
    n.name.clone()
}

/// A pod by uid (a pod recreated under the same name is another pod). UIDs
/// are UUIDs: kept as 16 bytes rather than a 36-character string, per pod,
/// and as two `u64` rather than a `u128`, whose 16-byte alignment padded
/// every index entry from 32 to 48 bytes (issue 22).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum PodId {
    Uuid([u64; 2]),
    Other(Box<str>),
}

impl PodId {
    fn of(uid: &str) -> PodId {
        let hex: String = uid.chars().filter(|c| *c != '-').collect();
        match u128::from_str_radix(&hex, 16) {
            Ok(n) if hex.len() == 32 => PodId::Uuid([(n >> 64) as u64, n as u64]),
            _ => PodId::Other(uid.into()),
        }
    }
}

fn pod_key(p: &Pod) -> PodId {
    if p.uid.is_empty() { PodId::Other(format!("{}/{}", p.namespace, p.name).into()) } else { PodId::of(&p.uid) }
}

fn pdb_key(p: &Pdb) -> String {
    format!("{}/{}", p.namespace, p.name)
}

fn meta_key(m: &ObjectMeta) -> String {
    format!("{}/{}", m.namespace.as_deref().unwrap_or_default(), m.name.as_deref().unwrap_or_default())
}

/// Where each object is in its `Vec`, by key, and which keys the re-list
/// under way has seen.
#[derive(Debug)]
struct Index<K> {
    ix: HashMap<K, usize>,
    seen: Option<HashSet<K>>,
}

impl<K> Default for Index<K> {
    fn default() -> Self {
        Self { ix: HashMap::new(), seen: None }
    }
}

impl<K: Hash + Eq + Clone> Index<K> {
    fn start_relist(&mut self) -> bool {
        // As many as the index holds or was made room for: no doubling
        // (with its copy) while the list fills it.
        self.seen = Some(HashSet::with_capacity(self.ix.capacity()));
        false
    }

    /// See [`ClusterStore::expect`].
    fn expect<T>(&mut self, items: &mut Vec<T>, n: usize, exact: bool) {
        if n <= items.capacity() || !(exact || items.is_empty()) {
            return;
        }
        items.reserve_exact(n - items.len());
        self.ix.reserve(n.saturating_sub(self.ix.len()));
    }

    /// Drops what the re-list did not list. Always a change: at least the
    /// state is whole again.
    fn finish_relist<T>(&mut self, items: &mut Vec<T>, key_of: fn(&T) -> K) -> bool {
        let Some(seen) = self.seen.take() else { return true };
        let gone: Vec<K> = self.ix.keys().filter(|k| !seen.contains(*k)).cloned().collect();
        for k in &gone {
            self.remove(items, k, key_of);
        }
        items.shrink_to_fit();
        true
    }

    fn upsert<T: PartialEq>(&mut self, items: &mut Vec<T>, key: K, item: T) -> bool {
        if let Some(seen) = &mut self.seen {
            seen.insert(key.clone());
        }
        match self.ix.get(&key) {
            Some(&i) if items[i] == item => false,
            Some(&i) => {
                items[i] = item;
                true
            }
            None => {
                // Grow by a quarter, not double: at 150,000 pods a doubling
                // leaves up to 70 MiB of capacity unused, and needs old and
                // new buffers at once while it copies.
                if items.len() == items.capacity() {
                    items.reserve_exact((items.len() / 4).max(64));
                }
                self.ix.insert(key, items.len());
                items.push(item);
                true
            }
        }
    }

    fn remove<T>(&mut self, items: &mut Vec<T>, key: &K, key_of: fn(&T) -> K) -> bool {
        let Some(i) = self.ix.remove(key) else { return false };
        items.swap_remove(i);
        if i < items.len() {
            self.ix.insert(key_of(&items[i]), i);
        }
        true
    }
}

/// One `Arc` per distinct value (placement, label map): the pods of a
/// workload share theirs. Entries only the interner still holds are purged
/// from time to time.
#[derive(Debug)]
struct Interner<T> {
    set: HashSet<Arc<T>>,
    size_after_purge: usize,
}

impl<T> Default for Interner<T> {
    fn default() -> Self {
        Self { set: HashSet::new(), size_after_purge: 0 }
    }
}

impl<T: Hash + Eq> Interner<T> {
    fn intern(&mut self, value: Arc<T>) -> Arc<T> {
        if let Some(shared) = self.set.get(&value) {
            return shared.clone();
        }
        self.set.insert(value.clone());
        value
    }

    fn maybe_purge(&mut self) {
        if self.set.len() > 2 * self.size_after_purge + 1024 {
            self.purge();
        }
    }

    fn purge(&mut self) {
        self.set.retain(|p| Arc::strong_count(p) > 1);
        self.size_after_purge = self.set.len();
    }
}

/// One [`Name`] per distinct string the pods repeat; as [`Interner`], names
/// only the set still holds are purged from time to time.
#[derive(Debug, Default)]
struct Names {
    set: HashSet<Name>,
    size_after_purge: usize,
}

impl Names {
    fn intern(&mut self, name: Name) -> Name {
        if let Some(shared) = self.set.get(name.as_str()) {
            return shared.clone();
        }
        self.set.insert(name.clone());
        name
    }

    /// The workload with the strings its siblings already hold.
    fn workload(&mut self, w: WorkloadRef) -> WorkloadRef {
        WorkloadRef { kind: self.intern(w.kind), namespace: self.intern(w.namespace), name: self.intern(w.name) }
    }

    fn maybe_purge(&mut self) {
        if self.set.len() > 2 * self.size_after_purge + 1024 {
            self.purge();
        }
    }

    fn purge(&mut self) {
        // `None`: a literal, never freed.
        self.set.retain(|n| Name::strong_count(n).is_none_or(|held| held > 1));
        self.size_after_purge = self.set.len();
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(name: &str, uid: &str, rs: &str) -> slim::Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns", "uid": uid, "labels": {"app": "web"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs, "uid": "rs-uid", "controller": true}]},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "100m"}}}],
                     "tolerations": [{"key": "k", "operator": "Exists"}]},
        }))
        .unwrap()
    }

    fn replica_set(name: &str, deployment: Option<&str>) -> slim::ReplicaSet {
        replica_set_of(name, deployment, "100m")
    }

    /// A ReplicaSet whose template's one container `c` requests `cpu`.
    fn replica_set_of(name: &str, deployment: Option<&str>, cpu: &str) -> slim::ReplicaSet {
        let mut meta = json!({"name": name, "namespace": "ns", "uid": format!("{name}-uid")});
        if let Some(d) = deployment {
            meta["ownerReferences"] =
                json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": d, "uid": "d", "controller": true}]);
        }
        serde_json::from_value(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": meta,
            "spec": {"template": {"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}}}}))
        .unwrap()
    }

    /// Issue 17: the planner reads the size an evicted pod comes back at from
    /// its ReplicaSet's template, kept by uid through lists, changes and deletes.
    #[test]
    fn replica_set_templates_are_kept_by_uid_and_follow_changes() {
        let mut s = ClusterStore::new();
        let cpu = |s: &ClusterStore, uid: &str| s.snapshot().templates.get(uid).map(|t| t.requests.cpu_milli);
        s.apply_replica_set(Event::Init);
        s.apply_replica_set(Event::InitApply(replica_set_of("web-1", Some("web"), "250m")));
        s.apply_replica_set(Event::InitApply(replica_set_of("web-2", Some("web"), "500m")));
        assert!(s.relisting());
        assert!(s.snapshot().templates.is_empty(), "swapped in when the list is complete");
        assert!(s.apply_replica_set(Event::InitDone));
        assert_eq!((cpu(&s, "web-1-uid"), cpu(&s, "web-2-uid")), (Some(250), Some(500)));
        let t = &s.snapshot().templates["web-1-uid"];
        assert_eq!((t.containers.len(), t.containers[0].name.as_str(), t.requests.pods), (1, "c", 1));

        assert!(!s.apply_replica_set(Event::Apply(replica_set_of("web-1", Some("web"), "250m"))), "unchanged");
        assert!(s.apply_replica_set(Event::Apply(replica_set_of("web-1", Some("web"), "300m"))), "edited");
        assert_eq!(cpu(&s, "web-1-uid"), Some(300));
        assert!(s.apply_replica_set(Event::Delete(replica_set_of("web-2", Some("web"), "500m"))));
        assert_eq!(cpu(&s, "web-2-uid"), None);
        // A re-list drops what it did not list.
        s.apply_replica_set(Event::Init);
        s.apply_replica_set(Event::InitApply(replica_set_of("web-3", Some("web"), "1")));
        assert!(s.apply_replica_set(Event::InitDone));
        assert_eq!(s.snapshot().templates.keys().collect::<Vec<_>>(), ["web-3-uid"]);
    }

    fn namespace(name: &str, labels: serde_json::Value) -> slim::Namespace {
        serde_json::from_value(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": labels}}))
        .unwrap()
    }

    /// A namespace's labels arriving after its pods (the namespace list
    /// finishing last, as under load) re-share the pods' placements and drop
    /// the ones they replace: the store holds one placement per workload,
    /// not one per label state it went through.
    #[test]
    fn a_namespace_listed_after_its_pods_leaves_one_placement() {
        let mut s = ClusterStore::new();
        s.apply_pod(Event::Init);
        s.apply_pod(Event::InitApply(pod("a", "1", "web-1")));
        s.apply_pod(Event::InitApply(pod("b", "2", "web-1")));
        s.apply_pod(Event::InitDone);
        assert_eq!(s.placements(), 1);

        s.apply_namespace(Event::Init);
        s.apply_namespace(Event::InitApply(namespace("ns", json!({"kubernetes.io/metadata.name": "ns"}))));
        assert!(s.apply_namespace(Event::InitDone));
        assert!(Arc::ptr_eq(&s.snapshot().pods[0].placement, &s.snapshot().pods[1].placement));
        assert_eq!(s.placements(), 1, "the placement without the namespace's labels is dropped");

        // And again when the labels change.
        assert!(s.apply_namespace(Event::Apply(namespace("ns", json!({"tier": "web"})))));
        assert_eq!(s.placements(), 1);
    }

    /// Issue 21: a pod's placement carries its namespace's labels, whichever
    /// of the two arrives first, and follows them when they change.
    #[test]
    fn pods_carry_their_namespaces_labels_and_follow_them() {
        let mut s = ClusterStore::new();
        let labels = |s: &ClusterStore, i: usize| s.snapshot().pods[i].placement.namespace_labels.clone();
        let tier = |v: &str| BTreeMap::from([("tier".to_string(), v.to_string())]);
        // A pod seen before its namespace: no labels yet.
        s.apply_pod(Event::Init);
        s.apply_pod(Event::InitApply(pod("a", "1", "web-1")));
        s.apply_pod(Event::InitDone);
        assert!(labels(&s, 0).is_empty());

        assert!(!s.apply_namespace(Event::Init));
        assert!(!s.apply_namespace(Event::InitApply(namespace("ns", json!({"tier": "infra"})))));
        assert!(!s.apply_namespace(Event::InitApply(namespace("other", json!({"tier": "web"})))));
        assert!(s.relisting());
        assert!(labels(&s, 0).is_empty(), "swapped in when the list is complete");
        assert!(s.apply_namespace(Event::InitDone));
        assert!(!s.relisting());
        assert_eq!(labels(&s, 0), tier("infra"));
        assert_eq!(s.namespace_labels("other"), &tier("web"));

        // A pod arriving now gets them at once, and shares the placement.
        s.apply_pod(Event::Apply(pod("b", "2", "web-1")));
        assert_eq!(labels(&s, 1), tier("infra"));
        assert!(Arc::ptr_eq(&s.snapshot().pods[0].placement, &s.snapshot().pods[1].placement));

        assert!(!s.apply_namespace(Event::Apply(namespace("ns", json!({"tier": "infra"})))), "unchanged");
        assert!(!s.apply_namespace(Event::Apply(namespace("other", json!({"tier": "db"})))), "no pod there");
        assert!(s.apply_namespace(Event::Apply(namespace("ns", json!({"tier": "db"})))));
        assert_eq!((labels(&s, 0), labels(&s, 1)), (tier("db"), tier("db")));
        assert!(Arc::ptr_eq(&s.snapshot().pods[0].placement, &s.snapshot().pods[1].placement));
        assert_eq!(s.snapshot().pods[0].placement.tolerations.len(), 1, "the rest of the placement is kept");

        // Labels removed, then the namespace deleted, then re-listed without it.
        assert!(s.apply_namespace(Event::Apply(namespace("ns", json!(null)))));
        assert!(labels(&s, 0).is_empty());
        assert!(!s.apply_namespace(Event::Delete(namespace("ns", json!(null)))));
        assert!(s.apply_namespace(Event::Apply(namespace("ns", json!({"tier": "infra"})))));
        s.apply_namespace(Event::Init);
        s.apply_namespace(Event::InitApply(namespace("other", json!({"tier": "db"}))));
        assert!(s.apply_namespace(Event::InitDone));
        assert!(labels(&s, 0).is_empty() && labels(&s, 1).is_empty());
        assert!(s.namespace_labels("ns").is_empty());
        assert_eq!(s.namespace_labels("other"), &tier("db"));
        s.apply_namespace(Event::Apply(namespace("ns", json!({"tier": "web"}))));
        assert!(s.apply_namespace(Event::Delete(namespace("ns", json!({"tier": "web"})))));
        assert!(labels(&s, 0).is_empty());
    }

    #[test]
    fn pods_share_placements_and_resolve_workloads_whenever_the_replica_set_arrives() {
        let mut s = ClusterStore::new();
        // Pods listed before their ReplicaSet is known.
        assert!(!s.apply_pod(Event::Init));
        assert!(!s.apply_pod(Event::InitApply(pod("a", "1", "web-1"))));
        assert!(!s.apply_pod(Event::InitApply(pod("b", "2", "web-1"))));
        assert!(s.apply_pod(Event::InitDone));
        assert_eq!(s.snapshot().pods.len(), 2);
        assert!(Arc::ptr_eq(&s.snapshot().pods[0].placement, &s.snapshot().pods[1].placement));
        assert!(Arc::ptr_eq(&s.snapshot().pods[0].labels, &s.snapshot().pods[1].labels));
        assert_eq!(s.placements(), 1);
        assert!(s.snapshot().pods.iter().all(|p| p.workload.is_none()));

        assert!(s.apply_replica_set(Event::Apply(replica_set("web-1", Some("web")))));
        assert!(s.snapshot().pods.iter().all(|p| p.workload.as_ref().unwrap().to_string() == "Deployment/ns/web"));
        // Issue 22: the replicas share their owner and their workload's names.
        let (a, b) = (&s.snapshot().pods[0], &s.snapshot().pods[1]);
        assert!(Arc::ptr_eq(a.owner.as_ref().unwrap(), b.owner.as_ref().unwrap()));
        let (wa, wb) = (a.workload.as_ref().unwrap(), b.workload.as_ref().unwrap());
        assert!(Name::ptr_eq(&wa.name, &wb.name) && Name::ptr_eq(&wa.namespace, &wb.namespace));
        assert!(Name::ptr_eq(&wa.kind, &wb.kind));
        // ... and their namespace, with the workload's.
        assert!(Name::ptr_eq(&a.namespace, &b.namespace) && Name::ptr_eq(&a.namespace, &wa.namespace));
        // The same ReplicaSet again (a status change): nothing to do.
        assert!(!s.apply_replica_set(Event::Apply(replica_set("web-1", Some("web")))));
        // A pod arriving now resolves at once.
        s.apply_pod(Event::Apply(pod("c", "3", "web-1")));
        assert_eq!(s.snapshot().pods[2].workload.as_ref().unwrap().name, "web");
        let (a, c) = (&s.snapshot().pods[0], &s.snapshot().pods[2]);
        assert!(Name::ptr_eq(&a.workload.as_ref().unwrap().name, &c.workload.as_ref().unwrap().name));
        assert!(Arc::ptr_eq(a.owner.as_ref().unwrap(), c.owner.as_ref().unwrap()));
    }

    /// Issue 22: the first list of pods grew their `Vec` a quarter at a
    /// time, each growth a copy holding old and new buffers at once (55 MiB
    /// above the steady state at 150,000 pods). Told the list's size, the
    /// store fills room made once; an over-count is given back at the end,
    /// and a re-list of a full store is not grown on an over-count.
    #[test]
    fn a_list_of_known_size_fills_room_made_once_and_never_copies_the_pods() {
        let mut s = ClusterStore::new();
        s.expect(Watched::Pods, 1_200, false);
        s.apply_pod(Event::Init);
        let buffer = s.snapshot().pods.as_ptr();
        for i in 0..1_000 {
            s.apply_pod(Event::InitApply(pod(&format!("p{i}"), &format!("uid-{i}"), "web-1")));
            assert_eq!(s.snapshot().pods.as_ptr(), buffer, "moved at pod {i}");
        }
        assert!(s.apply_pod(Event::InitDone));
        assert_eq!(s.snapshot().pods.capacity(), 1_000, "the over-count given back");
        // A re-list counted with terminal pods (not exact) leaves a full store as it is.
        s.expect(Watched::Pods, 1_100, false);
        assert_eq!(s.snapshot().pods.capacity(), 1_000);
        // An exact count makes room for the growth the re-list brings, once.
        s.expect(Watched::Pods, 1_100, true);
        s.apply_pod(Event::Init);
        let buffer = s.snapshot().pods.as_ptr();
        for i in 0..1_100 {
            s.apply_pod(Event::InitApply(pod(&format!("p{i}"), &format!("uid-{i}"), "web-1")));
        }
        assert_eq!(s.snapshot().pods.as_ptr(), buffer);
        assert!(s.apply_pod(Event::InitDone));
        assert_eq!(s.snapshot().pods.len(), 1_100);
    }

    #[test]
    fn a_pod_index_entry_is_32_bytes_and_uuids_of_any_case_are_one_key() {
        // 150,000 entries (and as many in a re-list's `seen`): 16 bytes of
        // padding each was 2.4 MiB per set at 5,000 nodes.
        assert_eq!(std::mem::size_of::<(PodId, usize)>(), 32);
        let uid = "0a1b2c3d-0000-4000-8000-00000000beef";
        assert_eq!(PodId::of(uid), PodId::of(&uid.to_uppercase()));
        assert_ne!(PodId::of(uid), PodId::of("0a1b2c3d-0000-4000-8000-00000000beee"));
        assert!(matches!(PodId::of("not-a-uuid"), PodId::Other(_)));
    }

    #[test]
    fn unchanged_objects_wake_nobody_and_deletes_keep_the_index_right() {
        let mut s = ClusterStore::new();
        assert!(s.apply_pod(Event::Apply(pod("a", "1", "x"))));
        assert!(s.apply_pod(Event::Apply(pod("b", "2", "x"))));
        assert!(s.apply_pod(Event::Apply(pod("c", "3", "x"))));
        assert!(!s.apply_pod(Event::Apply(pod("a", "1", "x"))), "same compact pod");
        assert!(s.apply_pod(Event::Delete(pod("a", "1", "x"))));
        assert!(!s.apply_pod(Event::Delete(pod("a", "1", "x"))));
        let names: Vec<_> = s.snapshot().pods.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["c", "b"]);
        // The moved pod is still found by its key.
        assert!(s.apply_pod(Event::Delete(pod("c", "3", "x"))));
        assert_eq!(s.snapshot().pods.len(), 1);
        assert_eq!(s.snapshot().pods[0].name, "b");
    }

    #[test]
    fn a_relist_is_marked_until_complete_and_then_drops_what_it_did_not_list() {
        let mut s = ClusterStore::new();
        let node = |name: &str| -> slim::Node { serde_json::from_value(json!({"metadata": {"name": name}})).unwrap() };
        s.apply_node(Event::Apply(node("old")));
        s.apply_node(Event::Apply(node("kept")));
        assert!(!s.relisting());
        s.apply_node(Event::Init);
        s.apply_node(Event::InitApply(node("kept")));
        s.apply_node(Event::InitApply(node("new")));
        assert!(s.relisting(), "half a list is flagged, so nobody plans on it");
        assert!(s.apply_node(Event::InitDone));
        assert!(!s.relisting());
        let mut names: Vec<_> = s.snapshot().nodes.iter().map(|n| n.name.as_str()).collect();
        names.sort();
        assert_eq!(names, ["kept", "new"]);
        assert_eq!(s.kubelet_address("kept").unwrap_err(), "the Node has no InternalIP");
        assert!(s.kubelet_address("old").is_err(), "swept with its node");
        let with_address: slim::Node = serde_json::from_value(json!({"metadata": {"name": "new"},
            "status": {"addresses": [{"type": "Hostname", "address": "new"}, {"type": "InternalIP", "address": "10.0.0.7"}],
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}}))
        .unwrap();
        s.apply_node(Event::Apply(with_address));
        assert_eq!(s.kubelet_address("new").unwrap(), "https://10.0.0.7:10250");
        // The index still finds every node after the sweep moved them.
        assert!(s.apply_node(Event::Delete(node("new"))));
        assert!(s.apply_node(Event::Delete(node("kept"))));
        assert!(s.snapshot().nodes.is_empty());
        assert!(s.kubelet_address("new").is_err(), "forgotten with its node");
    }

    /// heatscaler's admission mark survives the pod watch's decoding (which
    /// drops every annotation nothing reads), is tracked per live pod, and is
    /// never taken for upstream VPA's.
    #[test]
    fn pods_with_heatscalers_admission_mark_are_tracked_apart_from_upstreams() {
        let mut s = ClusterStore::new();
        let mut marked = json!({"metadata": {"name": "a", "namespace": "ns", "uid": "ua",
            "annotations": {crate::admission::ANNOTATION: "Pod resources updated by heatscaler from VPA web: container 0: cpu request",
                            "unread": "x"}}, "spec": {"containers": [{"name": "c"}]}});
        let pod = |v: &serde_json::Value| -> slim::Pod { serde_json::from_value(v.clone()).unwrap() };
        s.apply_pod(Event::Apply(pod(&marked)));
        s.apply_pod(Event::Apply(pod(&json!({"metadata": {"name": "b", "namespace": "ns", "uid": "ub"},
            "spec": {"containers": [{"name": "c"}]}}))));
        assert_eq!(s.admitted_by_webhook(), &HashSet::from(["ua".to_string()]));
        assert!(s.upstream_vpa_marks().is_empty(), "not upstream's admission controller");
        marked["metadata"]["annotations"] = json!({});
        s.apply_pod(Event::Apply(pod(&marked)));
        assert!(s.admitted_by_webhook().is_empty(), "the mark removed");
        marked["metadata"]["annotations"] = json!({crate::admission::ANNOTATION: "Pod resources updated by heatscaler from VPA web: container 0: at the recommendation"});
        s.apply_pod(Event::Apply(pod(&marked)));
        s.apply_pod(Event::Delete(pod(&marked)));
        assert!(s.admitted_by_webhook().is_empty(), "forgotten with its pod");
    }
}
