//! The compact cluster state the watches keep: a [`Snapshot`] updated in
//! place, object by object, so planning reads it without copying 150,000 pods.
//!
//! Each watch event is converted on arrival (see [`super::convert`]) and the
//! API object dropped. A re-list (start-up, or after the API server expired
//! our resourceVersion) is buffered and swapped in whole at its end, as
//! kube-runtime's reflector does, so a half-listed state is never planned on.
//! Every `apply_*` returns whether the compact state changed: status
//! heartbeats that change nothing the planner reads wake nobody.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1 as k8s;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::core::PartialObjectMeta;
use kube::runtime::watcher::Event;

use super::convert;
use crate::model::{GroupState, Node, Pdb, Placement, Pod, Snapshot};

/// One kind of object the store watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Watched {
    Nodes,
    Pods,
    PodDisruptionBudgets,
    ReplicaSets,
}

impl Watched {
    pub const ALL: [Watched; 4] = [Watched::Nodes, Watched::Pods, Watched::PodDisruptionBudgets, Watched::ReplicaSets];

    pub const fn as_str(self) -> &'static str {
        match self {
            Watched::Nodes => "nodes",
            Watched::Pods => "pods",
            Watched::PodDisruptionBudgets => "poddisruptionbudgets",
            Watched::ReplicaSets => "replicasets",
        }
    }
}

/// (namespace, name) of a ReplicaSet.
type RsKey = (String, String);

#[derive(Debug, Default)]
pub struct ClusterStore {
    snapshot: Snapshot,
    node_ix: HashMap<String, usize>,
    pod_ix: HashMap<String, usize>,
    pdb_ix: HashMap<String, usize>,
    placements: Interner,
    /// The Deployment controlling each ReplicaSet (`None`: no Deployment).
    replica_sets: HashMap<RsKey, Option<String>>,
    /// Pods (by key) whose ReplicaSet has not been seen yet.
    unresolved: HashMap<RsKey, HashSet<String>>,
    relist_nodes: Option<Vec<Node>>,
    relist_pods: Option<Vec<Pod>>,
    relist_pdbs: Option<Vec<Pdb>>,
    relist_replica_sets: Option<HashMap<RsKey, Option<String>>>,
}

impl ClusterStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Nodes, pods and PDBs as last seen; `groups` as last set.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Replaces the Heat side of the snapshot (assembled per planning pass).
    pub fn set_groups(&mut self, groups: Vec<GroupState>) {
        self.snapshot.groups = groups;
    }

    /// Distinct placements held (pods of one workload share one).
    pub fn placements(&self) -> usize {
        self.placements.set.len()
    }

    pub fn apply_node(&mut self, event: Event<k8s::Node>) -> bool {
        let s = &mut self.snapshot;
        apply(event, &mut s.nodes, &mut self.node_ix, &mut self.relist_nodes, |n| convert::node(&n), node_key)
    }

    pub fn apply_pdb(&mut self, event: Event<PodDisruptionBudget>) -> bool {
        let s = &mut self.snapshot;
        let relist = &mut self.relist_pdbs;
        match event {
            Event::Init => start_relist(relist),
            Event::InitApply(p) => {
                relist.get_or_insert_with(Vec::new).extend(convert::pdb(&p));
                false
            }
            Event::InitDone => finish_relist(relist, &mut s.pdbs, &mut self.pdb_ix, pdb_key),
            Event::Apply(p) => match convert::pdb(&p) {
                Some(pdb) => upsert(&mut s.pdbs, &mut self.pdb_ix, pdb_key(&pdb), pdb),
                // A budget eviction ignores is as good as no budget.
                None => remove(&mut s.pdbs, &mut self.pdb_ix, &meta_key(&p.metadata), pdb_key),
            },
            Event::Delete(p) => remove(&mut s.pdbs, &mut self.pdb_ix, &meta_key(&p.metadata), pdb_key),
        }
    }

    pub fn apply_pod(&mut self, event: Event<k8s::Pod>) -> bool {
        match event {
            Event::Init => start_relist(&mut self.relist_pods),
            Event::InitApply(p) => {
                let pod = self.compact_pod(&p);
                self.relist_pods.get_or_insert_with(Vec::new).push(pod);
                false
            }
            Event::InitDone => {
                let changed = finish_relist(&mut self.relist_pods, &mut self.snapshot.pods, &mut self.pod_ix, pod_key);
                let live: HashSet<&str> = self.pod_ix.keys().map(String::as_str).collect();
                for waiting in self.unresolved.values_mut() {
                    waiting.retain(|k| live.contains(k.as_str()));
                }
                self.unresolved.retain(|_, w| !w.is_empty());
                self.placements.purge();
                changed
            }
            Event::Apply(p) => {
                let pod = self.compact_pod(&p);
                let key = pod_key(&pod);
                let changed = upsert(&mut self.snapshot.pods, &mut self.pod_ix, key, pod);
                self.placements.maybe_purge();
                changed
            }
            Event::Delete(p) => {
                let key = match p.metadata.uid.as_deref() {
                    Some(uid) if !uid.is_empty() => uid.to_string(),
                    _ => meta_key(&p.metadata),
                };
                remove(&mut self.snapshot.pods, &mut self.pod_ix, &key, pod_key)
            }
        }
    }

    pub fn apply_replica_set(&mut self, event: Event<PartialObjectMeta<ReplicaSet>>) -> bool {
        let deployment = |rs: &PartialObjectMeta<ReplicaSet>| {
            convert::owner(rs.metadata.owner_references.as_deref().unwrap_or_default())
                .filter(|o| o.kind == "Deployment")
                .map(|o| o.name)
        };
        let key = |rs: &PartialObjectMeta<ReplicaSet>| {
            (rs.metadata.namespace.clone().unwrap_or_default(), rs.metadata.name.clone().unwrap_or_default())
        };
        match event {
            Event::Init => {
                self.relist_replica_sets = Some(HashMap::new());
                false
            }
            Event::InitApply(rs) => {
                self.relist_replica_sets.get_or_insert_with(HashMap::new).insert(key(&rs), deployment(&rs));
                false
            }
            Event::InitDone => {
                self.replica_sets = self.relist_replica_sets.take().unwrap_or_default();
                self.unresolved.clear();
                self.resolve_all_workloads()
            }
            Event::Apply(rs) => {
                let k = key(&rs);
                let owner = deployment(&rs);
                match self.replica_sets.insert(k.clone(), owner.clone()) {
                    Some(previous) if previous == owner => false,
                    // Adopted by another Deployment (rare): every pod of it re-resolves.
                    Some(_) => self.resolve_all_workloads(),
                    None => self.resolve_waiting(&k),
                }
            }
            Event::Delete(rs) => {
                // Its pods keep the workload they resolved to; the garbage
                // collector deletes them next.
                self.replica_sets.remove(&key(&rs));
                false
            }
        }
    }

    /// Converts a pod, shares its placement, and resolves its workload.
    fn compact_pod(&mut self, p: &k8s::Pod) -> Pod {
        let mut pod = convert::pod(p);
        pod.placement = self.placements.intern(pod.placement);
        if let Some(owner) = pod.owner.as_ref().filter(|o| o.kind == "ReplicaSet") {
            let rs = (pod.namespace.clone(), owner.name.clone());
            match self.replica_sets.get(&rs) {
                Some(deployment) => {
                    pod.workload = convert::workload(owner, &pod.namespace, Some(deployment.as_deref()))
                }
                None => {
                    self.unresolved.entry(rs).or_default().insert(pod_key(&pod));
                }
            }
        }
        pod
    }

    fn resolve_waiting(&mut self, rs: &RsKey) -> bool {
        let Some(waiting) = self.unresolved.remove(rs) else { return false };
        let deployment = self.replica_sets.get(rs).cloned().flatten();
        let mut changed = false;
        for key in waiting {
            if let Some(&i) = self.pod_ix.get(&key) {
                let pod = &mut self.snapshot.pods[i];
                if let Some(owner) = &pod.owner {
                    pod.workload = convert::workload(owner, &pod.namespace, Some(deployment.as_deref()));
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
            let rs = (pod.namespace.clone(), owner.name.clone());
            let resolved = match self.replica_sets.get(&rs) {
                Some(d) => convert::workload(owner, &pod.namespace, Some(d.as_deref())),
                None => {
                    self.unresolved.entry(rs).or_default().insert(pod_key(pod));
                    None
                }
            };
            if pod.workload != resolved {
                pod.workload = resolved;
                changed = true;
            }
        }
        changed
    }
}

fn node_key(n: &Node) -> String {
    n.name.clone()
}

/// By uid: a pod recreated under the same name is another pod.
fn pod_key(p: &Pod) -> String {
    if p.uid.is_empty() { format!("{}/{}", p.namespace, p.name) } else { p.uid.clone() }
}

fn pdb_key(p: &Pdb) -> String {
    format!("{}/{}", p.namespace, p.name)
}

fn meta_key(m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    format!("{}/{}", m.namespace.as_deref().unwrap_or_default(), m.name.as_deref().unwrap_or_default())
}

fn apply<K, T: PartialEq>(
    event: Event<K>,
    items: &mut Vec<T>,
    ix: &mut HashMap<String, usize>,
    relist: &mut Option<Vec<T>>,
    convert: impl Fn(K) -> T,
    key_of: fn(&T) -> String,
) -> bool {
    match event {
        Event::Init => start_relist(relist),
        Event::InitApply(o) => {
            relist.get_or_insert_with(Vec::new).push(convert(o));
            false
        }
        Event::InitDone => finish_relist(relist, items, ix, key_of),
        Event::Apply(o) => {
            let item = convert(o);
            upsert(items, ix, key_of(&item), item)
        }
        Event::Delete(o) => {
            let item = convert(o);
            remove(items, ix, &key_of(&item), key_of)
        }
    }
}

fn start_relist<T>(relist: &mut Option<Vec<T>>) -> bool {
    *relist = Some(Vec::new());
    false
}

fn finish_relist<T>(
    relist: &mut Option<Vec<T>>,
    items: &mut Vec<T>,
    ix: &mut HashMap<String, usize>,
    key_of: fn(&T) -> String,
) -> bool {
    let mut fresh = relist.take().unwrap_or_default();
    fresh.shrink_to_fit();
    *items = fresh;
    ix.clear();
    ix.reserve(items.len());
    for (i, item) in items.iter().enumerate() {
        ix.insert(key_of(item), i);
    }
    true
}

fn upsert<T: PartialEq>(items: &mut Vec<T>, ix: &mut HashMap<String, usize>, key: String, item: T) -> bool {
    match ix.get(&key) {
        Some(&i) if items[i] == item => false,
        Some(&i) => {
            items[i] = item;
            true
        }
        None => {
            ix.insert(key, items.len());
            items.push(item);
            true
        }
    }
}

fn remove<T>(items: &mut Vec<T>, ix: &mut HashMap<String, usize>, key: &str, key_of: fn(&T) -> String) -> bool {
    let Some(i) = ix.remove(key) else { return false };
    items.swap_remove(i);
    if i < items.len() {
        ix.insert(key_of(&items[i]), i);
    }
    true
}

/// One `Arc<Placement>` per distinct placement: the pods of a workload share
/// theirs. Entries only the interner still holds are purged from time to time.
#[derive(Debug, Default)]
struct Interner {
    set: HashSet<Arc<Placement>>,
    size_after_purge: usize,
}

impl Interner {
    fn intern(&mut self, placement: Arc<Placement>) -> Arc<Placement> {
        if let Some(shared) = self.set.get(&placement) {
            return shared.clone();
        }
        self.set.insert(placement.clone());
        placement
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(name: &str, uid: &str, rs: &str) -> k8s::Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns", "uid": uid, "labels": {"app": "web"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs, "uid": "rs-uid", "controller": true}]},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "100m"}}}],
                     "tolerations": [{"key": "k", "operator": "Exists"}]},
        }))
        .unwrap()
    }

    fn replica_set(name: &str, deployment: Option<&str>) -> PartialObjectMeta<ReplicaSet> {
        let mut meta = json!({"name": name, "namespace": "ns"});
        if let Some(d) = deployment {
            meta["ownerReferences"] =
                json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": d, "uid": "d", "controller": true}]);
        }
        serde_json::from_value(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": meta})).unwrap()
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
        assert_eq!(s.placements(), 1);
        assert!(s.snapshot().pods.iter().all(|p| p.workload.is_none()));

        assert!(s.apply_replica_set(Event::Apply(replica_set("web-1", Some("web")))));
        assert!(s.snapshot().pods.iter().all(|p| p.workload.as_ref().unwrap().to_string() == "Deployment/ns/web"));
        // The same ReplicaSet again (a status change): nothing to do.
        assert!(!s.apply_replica_set(Event::Apply(replica_set("web-1", Some("web")))));
        // A pod arriving now resolves at once.
        s.apply_pod(Event::Apply(pod("c", "3", "web-1")));
        assert_eq!(s.snapshot().pods[2].workload.as_ref().unwrap().name, "web");
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
    fn a_relist_replaces_the_state_only_when_complete() {
        let mut s = ClusterStore::new();
        let node = |name: &str| -> k8s::Node { serde_json::from_value(json!({"metadata": {"name": name}})).unwrap() };
        s.apply_node(Event::Apply(node("old")));
        s.apply_node(Event::Init);
        s.apply_node(Event::InitApply(node("new")));
        assert_eq!(s.snapshot().nodes[0].name, "old", "half a list is never visible");
        assert!(s.apply_node(Event::InitDone));
        assert_eq!(s.snapshot().nodes.len(), 1);
        assert_eq!(s.snapshot().nodes[0].name, "new");
    }
}
