//! The Kubernetes API's objects: the snapshot the planner is shown (kept in
//! place, so a planner pass costs no copy of the cluster), with indexes by
//! uid and by the controller that created each pod.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

use heatscaler_core::model::{
    Container, GroupState, LabelSelector, MemberStatus, Name, Node, NodeShape, OwnerRef, Placement, Pod, PodPhase,
    ResizeState, Resources, Snapshot, Timestamp, Toleration, TolerationOperator,
};

use crate::scenario::{ContainerSpec, PodSpec, pod_requests, resources};

/// Who recreates a pod when it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    Workload(usize),
    OneOff(usize),
    DaemonSet(usize),
    /// A pod of a generated batch job (see `generators`).
    Job(usize),
    /// A pod replayed from a trace file: (trace, pod number in the trace).
    Trace(usize, usize),
}

/// Everything pods of one workload (or one one-off pod) share.
#[derive(Clone, Debug)]
pub struct PodTemplate {
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub owner: Option<OwnerRef>,
    /// The workload pods report, for pods a VPA object targets.
    pub workload: Option<heatscaler_core::model::WorkloadRef>,
    pub requests: Resources,
    pub containers: Vec<Container>,
    pub placement: Arc<Placement>,
    pub priority: i32,
    pub safe_to_evict: Option<bool>,
    pub local_storage: bool,
}

impl PodTemplate {
    pub fn from_spec(spec: &PodSpec, namespace: &str, name: &str, owner_kind: Option<&str>) -> Self {
        let mut labels = BTreeMap::from([("app".to_string(), name.to_string())]);
        labels.extend(spec.labels.clone());
        let tolerations = spec
            .tolerations
            .iter()
            .map(|t| Toleration {
                key: t.key.clone(),
                operator: if t.value.is_some() { TolerationOperator::Equal } else { TolerationOperator::Exists },
                value: t.value.clone(),
                effect: t.effect,
            })
            .collect();
        let anti_affinity = if spec.spread_one_per_node {
            let selector = LabelSelector { match_labels: labels.clone(), ..LabelSelector::default() };
            vec![heatscaler_core::model::PodAffinityTerm::in_namespace(
                selector,
                heatscaler_core::model::HOSTNAME,
                namespace,
            )]
        } else {
            Vec::new()
        };
        let placement = Placement {
            node_selector: spec.node_selector.clone(),
            required_node_affinity: Vec::new(),
            tolerations,
            pod_anti_affinity: anti_affinity,
            host_ports: spec
                .host_ports
                .iter()
                .map(|&port| heatscaler_core::model::HostPort { port, protocol: heatscaler_core::model::Protocol::Tcp })
                .collect(),
            ..Placement::default()
        };
        Self {
            namespace: namespace.to_string(),
            owner: owner_kind.map(|kind| OwnerRef {
                kind: kind.to_string(),
                name: name.to_string(),
                uid: format!("{namespace}/{name}/{kind}"),
            }),
            workload: None,
            requests: pod_requests(spec),
            containers: spec.containers.iter().map(container).collect(),
            placement: Arc::new(placement),
            priority: spec.priority,
            safe_to_evict: spec.safe_to_evict,
            local_storage: spec.local_storage,
            labels,
        }
    }

    /// The sizes the planner reads of it (`Snapshot::templates`).
    pub fn model(&self) -> heatscaler_core::model::PodTemplate {
        heatscaler_core::model::PodTemplate { requests: self.requests.clone(), containers: self.containers.clone() }
    }

    /// A DaemonSet's pod template: tolerates everything, as DaemonSet pods do.
    pub fn daemonset(
        name: &str,
        namespace: &str,
        requests: Resources,
        node_selector: BTreeMap<String, String>,
    ) -> Self {
        let placement = Placement {
            node_selector,
            tolerations: vec![Toleration {
                key: None,
                operator: TolerationOperator::Exists,
                value: None,
                effect: None,
            }],
            ..Placement::default()
        };
        let mut requests = requests;
        requests.pods = 1;
        Self {
            namespace: namespace.to_string(),
            labels: BTreeMap::from([("app".to_string(), name.to_string())]),
            owner: Some(OwnerRef {
                kind: "DaemonSet".into(),
                name: name.into(),
                uid: format!("{namespace}/{name}/DaemonSet"),
            }),
            workload: None,
            requests,
            containers: Vec::new(),
            placement: Arc::new(placement),
            priority: 0,
            safe_to_evict: None,
            local_storage: false,
        }
    }
}

fn container(c: &ContainerSpec) -> Container {
    Container {
        name: c.name.clone(),
        requests: resources(&c.requests),
        limits: resources(&c.limits),
        allocated: None,
        oom_kills: 0,
        last_oom: None,
    }
}

/// Pods are added, changed and removed through the methods below (never
/// through `snap.pods` directly): they keep the indexes and the change
/// counter the report's bookkeeping relies on.
#[derive(Default)]
pub struct Cluster {
    pub snap: Snapshot,
    pub origin: HashMap<String, Origin>,
    index: HashMap<String, usize>,
    /// Pods by who created them, in creation order (uids are `uid-<n>`, the
    /// key is `n`), so a controller's work is proportional to its own pods.
    by_origin: HashMap<Origin, BTreeMap<u64, String>>,
    /// Pods of each origin being deleted (still listed in `by_origin`).
    terminating: HashMap<Origin, usize>,
    /// The PDBs (indices into `snap.pdbs`) covering each pod, parallel to
    /// `snap.pods`: labels never change, so matching is done once per pod.
    pod_pdbs: Vec<Vec<usize>>,
    next_uid: u64,
    /// Pods added, possibly changed or removed since the last
    /// [`Cluster::take_changes`], so totals over all pods are kept
    /// incrementally.
    changes: Vec<String>,
    /// One `Arc` per distinct label map, owner and namespace of the pods.
    shared: Shared,
}

/// The label maps, owner references and namespaces of the pods, each
/// distinct value held once and shared by the pods that have it, as the
/// daemon's store shares them between the replicas of a workload. The
/// planner's per-pass caches (which PDBs cover a label map, which template
/// an owner has) key on these addresses: a fresh copy per pod made every
/// lookup a miss, so the simulator did not measure what the daemon runs.
#[derive(Default)]
struct Shared {
    labels: HashMap<BTreeMap<String, String>, Arc<BTreeMap<String, String>>>,
    owners: HashMap<OwnerRef, Arc<OwnerRef>>,
    namespaces: HashMap<String, Name>,
}

impl Shared {
    fn labels(&mut self, labels: &BTreeMap<String, String>) -> Arc<BTreeMap<String, String>> {
        if let Some(shared) = self.labels.get(labels) {
            return Arc::clone(shared);
        }
        let shared = Arc::new(labels.clone());
        self.labels.insert(labels.clone(), Arc::clone(&shared));
        shared
    }

    fn owner(&mut self, owner: &OwnerRef) -> Arc<OwnerRef> {
        if let Some(shared) = self.owners.get(owner) {
            return Arc::clone(shared);
        }
        let shared = Arc::new(owner.clone());
        self.owners.insert(owner.clone(), Arc::clone(&shared));
        shared
    }

    fn namespace(&mut self, namespace: &str) -> Name {
        if let Some(shared) = self.namespaces.get(namespace) {
            return shared.clone();
        }
        let shared = Name::from(namespace);
        self.namespaces.insert(namespace.to_string(), shared.clone());
        shared
    }
}

impl Cluster {
    pub fn add_pod(&mut self, t: &PodTemplate, name: String, now: Timestamp, origin: Origin) -> String {
        self.next_uid += 1;
        let uid = format!("uid-{}", self.next_uid);
        self.by_origin.entry(origin).or_default().insert(self.next_uid, uid.clone());
        self.changes.push(uid.clone());
        let pdbs = self.pdbs_covering(&t.namespace, &t.labels);
        self.pod_pdbs.push(pdbs);
        self.snap.pods.push(Pod {
            uid: uid.as_str().into(),
            namespace: self.shared.namespace(&t.namespace),
            name: name.into(),
            labels: self.shared.labels(&t.labels),
            owner: t.owner.as_ref().map(|o| self.shared.owner(o)),
            workload: t.workload.clone(),
            node_name: None,
            phase: PodPhase::Pending,
            requests: t.requests.clone(),
            containers: t.containers.clone(),
            init_qos: None,
            placement: t.placement.clone(),
            priority: t.priority,
            created: now,
            unschedulable_since: None,
            nominated_node: None,
            deletion: None,
            safe_to_evict: t.safe_to_evict,
            local_storage: t.local_storage,
            mirror: false,
            resize: ResizeState::None,
        });
        self.index.insert(uid.clone(), self.snap.pods.len() - 1);
        self.origin.insert(uid.clone(), origin);
        uid
    }

    pub fn pod(&self, uid: &str) -> Option<&Pod> {
        self.index.get(uid).map(|&i| &self.snap.pods[i])
    }

    pub fn pod_mut(&mut self, uid: &str) -> Option<&mut Pod> {
        let i = *self.index.get(uid)?;
        self.changes.push(uid.to_string());
        Some(&mut self.snap.pods[i])
    }

    /// The uids of pods added, handed out mutably or removed since the last call.
    pub fn take_changes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.changes)
    }

    /// Marks a pod as being deleted; `Some(unbound)` if it was not already.
    pub fn start_deletion(&mut self, uid: &str, now: Timestamp) -> Option<bool> {
        let origin = self.origin.get(uid).copied();
        let pod = self.pod_mut(uid)?;
        if pod.deletion.is_some() {
            return None;
        }
        pod.deletion = Some(now);
        let unbound = pod.node_name.is_none();
        if let Some(origin) = origin {
            *self.terminating.entry(origin).or_insert(0) += 1;
        }
        Some(unbound)
    }

    /// Pods of `origin` that exist and are not being deleted.
    pub fn active_count(&self, origin: Origin) -> usize {
        let listed = self.by_origin.get(&origin).map_or(0, BTreeMap::len);
        listed - self.terminating.get(&origin).copied().unwrap_or(0)
    }

    pub fn remove_pod(&mut self, uid: &str) -> Option<Pod> {
        let i = self.index.remove(uid)?;
        self.changes.push(uid.to_string());
        if let Some(origin) = self.origin.remove(uid) {
            if let Some(set) = self.by_origin.get_mut(&origin) {
                set.remove(&uid_number(uid));
            }
            if self.snap.pods[i].deletion.is_some()
                && let Some(n) = self.terminating.get_mut(&origin)
            {
                *n -= 1;
            }
        }
        self.pod_pdbs.swap_remove(i);
        let pod = self.snap.pods.swap_remove(i);
        if let Some(moved) = self.snap.pods.get(i) {
            self.index.insert(moved.uid.to_string(), i);
        }
        Some(pod)
    }

    pub fn add_node(&mut self, name: &str, shape: &NodeShape, now: Timestamp) {
        let mut labels = shape.labels.clone();
        labels.insert("kubernetes.io/hostname".into(), name.to_string());
        self.snap.nodes.push(Node {
            name: name.to_string(),
            labels,
            annotations: BTreeMap::new(),
            taints: shape.taints.clone(),
            allocatable: shape.allocatable.clone(),
            unschedulable: false,
            ready: true,
            provider_id: Some(format!("openstack:///{name}")),
            created: now,
        });
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.snap.nodes.iter().find(|n| n.name == name)
    }

    pub fn node_mut(&mut self, name: &str) -> Option<&mut Node> {
        self.snap.nodes.iter_mut().find(|n| n.name == name)
    }

    /// Deletes a Node object and the pods bound to it (their kubelet is gone).
    pub fn delete_node(&mut self, name: &str) -> Vec<Pod> {
        self.snap.nodes.retain(|n| n.name != name);
        let uids: Vec<String> =
            self.snap.pods.iter().filter(|p| p.node_name.as_deref() == Some(name)).map(|p| p.uid.to_string()).collect();
        uids.iter().filter_map(|u| self.remove_pod(u)).collect()
    }

    /// The pods `origin` created that still exist, oldest first.
    pub fn pods_of(&self, origin: Origin) -> impl Iterator<Item = &Pod> {
        self.by_origin
            .get(&origin)
            .into_iter()
            .flat_map(|m| m.values())
            .filter_map(|uid| self.index.get(uid).map(|&i| &self.snap.pods[i]))
    }

    /// Adds a PodDisruptionBudget and notes which existing pods it covers.
    pub fn add_pdb(&mut self, pdb: heatscaler_core::model::Pdb) {
        let i = self.snap.pdbs.len();
        for (k, p) in self.snap.pods.iter().enumerate() {
            if p.namespace == pdb.namespace && pdb.selector.matches(&p.labels) {
                self.pod_pdbs[k].push(i);
            }
        }
        self.snap.pdbs.push(pdb);
    }

    fn pdbs_covering(&self, namespace: &str, labels: &BTreeMap<String, String>) -> Vec<usize> {
        (0..self.snap.pdbs.len())
            .filter(|&i| self.snap.pdbs[i].namespace == namespace && self.snap.pdbs[i].selector.matches(labels))
            .collect()
    }

    /// Shows the planner Heat's view of a group (a poll, or the re-read an
    /// executor does after acting).
    pub fn show_group(&mut self, view: GroupState) {
        match self.snap.groups.iter_mut().find(|x| x.name == view.name) {
            Some(slot) => *slot = view,
            None => self.snap.groups.push(view),
        }
    }

    /// Maps members to nodes the way the observer does by node name: a member
    /// maps to the node named like its server, once that node has registered.
    pub fn map_members(&mut self) {
        let names: rustc_hash::FxHashSet<&str> = self.snap.nodes.iter().map(|n| n.name.as_str()).collect();
        let mut mapped = Vec::new();
        for g in &self.snap.groups {
            for m in &g.members {
                mapped.push(names.contains(m.id.as_str()) && m.status != MemberStatus::Failed);
            }
        }
        let mut k = 0;
        for g in &mut self.snap.groups {
            for m in &mut g.members {
                m.node_name = mapped[k].then(|| m.id.clone());
                k += 1;
            }
        }
    }

    /// Refreshes each PDB's `disruptionsAllowed` from the pods, as the
    /// disruption controller does.
    pub fn refresh_pdbs(&mut self, expected: &dyn Fn(&str) -> Option<u32>, rules: &[PdbRule]) {
        let mut healthy = vec![0i64; self.snap.pdbs.len()];
        for (p, pdbs) in self.snap.pods.iter().zip(&self.pod_pdbs) {
            if p.node_name.is_some() && p.deletion.is_none() && p.phase == PodPhase::Running {
                for &i in pdbs {
                    healthy[i] += 1;
                }
            }
        }
        for ((pdb, rule), healthy) in self.snap.pdbs.iter_mut().zip(rules).zip(healthy) {
            let desired_healthy = match *rule {
                PdbRule::MinAvailable(n) => i64::from(n),
                PdbRule::MaxUnavailable(n) => i64::from(expected(&pdb.name).unwrap_or(0)) - i64::from(n),
            };
            pdb.disruptions_allowed = (healthy - desired_healthy).max(0) as i32;
        }
    }
}

fn uid_number(uid: &str) -> u64 {
    uid.strip_prefix("uid-").and_then(|n| n.parse().ok()).unwrap_or(0)
}

#[derive(Clone, Copy, Debug)]
pub enum PdbRule {
    MinAvailable(u32),
    MaxUnavailable(u32),
}
