//! The scheduler: binds pending pods to nodes that fit, with the filters of
//! kube-scheduler's default profile that matter for capacity planning
//! (unschedulable nodes, taints/tolerations, node selector and required node
//! affinity, host ports, cpu/memory/pods fit, required pod anti-affinity) and
//! its failure messages, node sampling (percentageOfNodesToScore) and
//! LeastAllocated (or MostAllocated) scoring. No preemption.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::cache::{ObjCache, Update};
use crate::options::Scoring;
use crate::podutil;
use crate::quantity;
use crate::resources::Kind;
use crate::selectors::{LabelSelector, node_selector_terms_match};
use crate::sim::Sim;
use crate::store::{Informer, Obj, ObjKey, Written};
use crate::subresources::binding::{bind_pod, set_condition};

const SCHEDULER_NAME: &str = "default-scheduler";
const HOSTNAME: &str = "kubernetes.io/hostname";
const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";

#[derive(Clone, Copy, Default)]
struct Res {
    cpu: i64,
    mem: i64,
    pods: i64,
}

struct AntiTerm {
    selector: LabelSelector,
    namespaces: Vec<String>,
    topology_key: String,
}

impl AntiTerm {
    fn selects(&self, pod: &Facts) -> bool {
        self.namespaces.contains(&pod.namespace) && self.selector.matches_labels(&pod.labels)
    }
}

/// A `DoNotSchedule` topology spread constraint.
struct Spread {
    selector: LabelSelector,
    topology_key: String,
    max_skew: i64,
    min_domains: usize,
}

/// What scheduling needs from a pod version, parsed once.
struct Facts {
    namespace: String,
    labels: Value,
    req: Res,
    /// Requests of other resources (`ephemeral-storage`, extended resources such as `nvidia.com/gpu`).
    other: Vec<(String, i64)>,
    /// Required pod affinity terms.
    affinity: Vec<AntiTerm>,
    spread: Vec<Spread>,
    deleting: bool,
    ports: Vec<(String, i64, String)>,
    node_selector: Value,
    required_terms: Value,
    tolerations: Vec<Value>,
    anti: Vec<AntiTerm>,
    preemption_never: bool,
}

impl Facts {
    fn of(pod: &Value) -> Facts {
        let spec = &pod["spec"];
        let namespace = pod["metadata"]["namespace"].as_str().unwrap_or("").to_string();
        let (cpu, mem) = podutil::effective_requests(pod);
        let mut ports = Vec::new();
        for list in ["initContainers", "containers"] {
            for c in spec[list].as_array().into_iter().flatten() {
                for p in c["ports"].as_array().into_iter().flatten() {
                    if let Some(hp) = p["hostPort"].as_i64().filter(|p| *p > 0) {
                        let proto = p["protocol"].as_str().unwrap_or("TCP").to_string();
                        let ip = p["hostIP"].as_str().unwrap_or("0.0.0.0").to_string();
                        ports.push((proto, hp, ip));
                    }
                }
            }
        }
        let terms = |kind: &str| -> Vec<AntiTerm> {
            spec["affinity"][kind]["requiredDuringSchedulingIgnoredDuringExecution"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| {
                    let selector = LabelSelector::from_json(&t["labelSelector"], LabelSelector::nothing()).ok()?;
                    let mut namespaces: Vec<String> = t["namespaces"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|n| n.as_str().map(str::to_string))
                        .collect();
                    if namespaces.is_empty() {
                        namespaces.push(namespace.clone());
                    }
                    Some(AntiTerm {
                        selector,
                        namespaces,
                        topology_key: t["topologyKey"].as_str().unwrap_or(HOSTNAME).to_string(),
                    })
                })
                .collect()
        };
        let anti = terms("podAntiAffinity");
        let affinity = terms("podAffinity");
        let spread = spec["topologySpreadConstraints"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["whenUnsatisfiable"] == "DoNotSchedule")
            .filter_map(|c| {
                Some(Spread {
                    // No selector: matches no pod (so the constraint counts nothing).
                    selector: LabelSelector::from_json(&c["labelSelector"], LabelSelector::nothing()).ok()?,
                    topology_key: c["topologyKey"].as_str()?.to_string(),
                    max_skew: c["maxSkew"].as_i64().unwrap_or(1).max(1),
                    min_domains: c["minDomains"].as_u64().unwrap_or(1).max(1) as usize,
                })
            })
            .collect();
        Facts {
            labels: pod["metadata"]["labels"].clone(),
            req: Res { cpu, mem, pods: 1 },
            other: other_requests(spec),
            affinity,
            spread,
            deleting: podutil::is_deleting(pod),
            ports,
            node_selector: spec["nodeSelector"].clone(),
            required_terms:
                spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
                    .clone(),
            tolerations: spec["tolerations"].as_array().cloned().unwrap_or_default(),
            anti,
            preemption_never: spec["preemptionPolicy"] == "Never",
            namespace,
        }
    }

    fn tolerates(&self, key: &str, value: &str, effect: &str) -> bool {
        self.tolerations.iter().any(|t| podutil::tolerates(t, key, value, effect))
    }
}

struct NodeInfo {
    obj: Arc<Obj>,
    name: String,
    unschedulable: bool,
    /// NoSchedule/NoExecute taints: (key, value, effect).
    taints: Vec<(String, String, String)>,
    labels: HashMap<String, String>,
    alloc: Res,
    used: Res,
    /// Allocatable and requested of every other resource.
    alloc_other: HashMap<String, i64>,
    used_other: HashMap<String, i64>,
    ports: HashMap<(String, i64, String), u32>,
    pods: HashSet<ObjKey>,
}

impl NodeInfo {
    fn new(obj: Arc<Obj>) -> NodeInfo {
        let mut n = NodeInfo {
            name: obj.key.name.clone(),
            obj,
            unschedulable: false,
            taints: Vec::new(),
            labels: HashMap::new(),
            alloc: Res::default(),
            used: Res::default(),
            alloc_other: HashMap::new(),
            used_other: HashMap::new(),
            ports: HashMap::new(),
            pods: HashSet::new(),
        };
        n.refresh();
        n
    }

    /// Re-reads what filters need from the node object.
    fn refresh(&mut self) {
        let value = self.obj.value();
        let v = &value;
        self.unschedulable = v["spec"]["unschedulable"] == true;
        self.taints = v["spec"]["taints"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["effect"] == "NoSchedule" || t["effect"] == "NoExecute")
            .map(|t| {
                let s = |k: &str| t[k].as_str().unwrap_or("").to_string();
                (s("key"), s("value"), s("effect"))
            })
            .collect();
        self.labels = v["metadata"]["labels"]
            .as_object()
            .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
            .unwrap_or_default();
        let a = &v["status"]["allocatable"];
        let get = |k: &str| a[k].as_str().map(str::to_string).unwrap_or_default();
        self.alloc = Res {
            cpu: quantity::cpu_millis(&get("cpu")).unwrap_or(0),
            mem: quantity::whole_units(&get("memory")).unwrap_or(0),
            pods: quantity::whole_units(&get("pods")).unwrap_or(0),
        };
        self.alloc_other = a
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| !matches!(k.as_str(), "cpu" | "memory" | "pods"))
            .filter_map(|(k, v)| Some((k.clone(), quantity::whole_units(v.as_str()?)?)))
            .collect();
    }

    fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }
}

struct Placed {
    node: String,
    facts: Arc<Facts>,
}

/// Why a pod fits nowhere, as kube-scheduler reports it.
struct FitError {
    nodes: usize,
    reasons: BTreeMap<String, usize>,
    resolvable: usize,
    unresolvable: usize,
    preemption_never: bool,
}

impl FitError {
    fn message(&self) -> String {
        if self.nodes == 0 {
            return "no nodes available to schedule pods".to_string();
        }
        let mut reasons: Vec<String> = self.reasons.iter().map(|(r, c)| format!("{c} {r}")).collect();
        reasons.sort();
        let mut msg = format!("0/{} nodes are available: {}.", self.nodes, reasons.join(", "));
        if self.preemption_never {
            msg.push_str(" preemption: not eligible due to preemptionPolicy=Never.");
        } else {
            let mut post = Vec::new();
            if self.resolvable > 0 {
                post.push(format!("{} No preemption victims found for incoming pod", self.resolvable));
            }
            if self.unresolvable > 0 {
                post.push(format!("{} Preemption is not helpful for scheduling", self.unresolvable));
            }
            post.sort();
            msg.push_str(&format!(" preemption: 0/{} nodes are available: {}.", self.nodes, post.join(", ")));
        }
        msg
    }
}

struct Scheduler {
    sim: Arc<Sim>,
    pods: ObjCache,
    node_cache: ObjCache,
    placed: HashMap<ObjKey, Placed>,
    /// Placed pods with required anti-affinity terms (checked against incoming pods).
    anti_pods: HashSet<ObjKey>,
    /// Nodes sorted by name, and where each name is.
    nodes: Vec<NodeInfo>,
    index: HashMap<String, usize>,
    active: VecDeque<ObjKey>,
    queued: HashSet<ObjKey>,
    unschedulable: HashSet<ObjKey>,
    next_start: usize,
}

pub async fn run(sim: Arc<Sim>) {
    let mut pods = Informer::new(sim.store.clone(), Kind::Pod);
    let mut nodes = Informer::new(sim.store.clone(), Kind::Node);
    let flush_every = sim.scale.seconds(300).max(Duration::from_secs(1));
    let mut flush = tokio::time::interval(flush_every);
    let mut s = Scheduler {
        sim,
        pods: ObjCache::default(),
        node_cache: ObjCache::default(),
        placed: HashMap::new(),
        anti_pods: HashSet::new(),
        nodes: Vec::new(),
        index: HashMap::new(),
        active: VecDeque::new(),
        queued: HashSet::new(),
        unschedulable: HashSet::new(),
        next_start: 0,
    };
    loop {
        tokio::select! {
            batch = nodes.next() => s.on_nodes(batch),
            batch = pods.next() => s.on_pods(batch),
            _ = flush.tick() => s.flush_unschedulable(),
        }
        while let Some(batch) = nodes.try_next() {
            s.on_nodes(batch);
        }
        while let Some(batch) = pods.try_next() {
            s.on_pods(batch);
        }
        s.schedule_queue().await;
    }
}

fn is_pending(pod: &Value) -> bool {
    podutil::node_name(pod).is_empty()
        && podutil::is_active(pod)
        && pod["spec"]["schedulerName"].as_str().is_none_or(|n| n == SCHEDULER_NAME)
}

impl Scheduler {
    fn on_nodes(&mut self, batch: crate::store::InformerBatch) {
        let updates = self.node_cache.apply_batch(batch);
        let mut added = Vec::new();
        let mut removed = HashSet::new();
        for u in updates {
            let name = u.key.name.clone();
            match u.new {
                Some(obj) => match self.index.get(&name) {
                    Some(&i) => {
                        self.nodes[i].obj = obj;
                        self.nodes[i].refresh();
                    }
                    None => added.push(NodeInfo::new(obj)),
                },
                None => {
                    removed.insert(name);
                }
            }
        }
        if !added.is_empty() || !removed.is_empty() {
            self.nodes.retain(|n| !removed.contains(&n.name));
            for mut info in added {
                for (key, placed) in &self.placed {
                    if placed.node == info.name {
                        account(&mut info, key, &placed.facts, 1);
                    }
                }
                self.nodes.push(info);
            }
            self.nodes.sort_by(|a, b| a.name.cmp(&b.name));
            self.nodes.dedup_by(|a, b| a.name == b.name);
            self.index = self.nodes.iter().enumerate().map(|(i, n)| (n.name.clone(), i)).collect();
        }
        self.flush_unschedulable();
    }

    fn on_pods(&mut self, batch: crate::store::InformerBatch) {
        for u in self.pods.apply_batch(batch) {
            self.on_pod_update(u);
        }
    }

    fn on_pod_update(&mut self, u: Update) {
        let key = u.key;
        let mut freed = false;
        if let Some(p) = self.placed.remove(&key) {
            if let Some(&i) = self.index.get(&p.node) {
                account(&mut self.nodes[i], &key, &p.facts, -1);
            }
            self.anti_pods.remove(&key);
            freed = true;
        }
        match &u.new {
            Some(obj) => {
                let pod = &obj.value();
                let node = podutil::node_name(pod);
                if !node.is_empty() && !podutil::is_terminal(pod) {
                    let facts = Arc::new(Facts::of(pod));
                    if let Some(&i) = self.index.get(node) {
                        account(&mut self.nodes[i], &key, &facts, 1);
                    }
                    if !facts.anti.is_empty() {
                        self.anti_pods.insert(key.clone());
                    }
                    // A pod placed elsewhere still holding resources it held before frees nothing.
                    freed &= u.old.as_ref().is_none_or(|o| o.node_name() != node);
                    self.placed.insert(key.clone(), Placed { node: node.to_string(), facts });
                }
                if is_pending(pod) {
                    let relevant_change = u
                        .old
                        .as_ref()
                        .is_none_or(|o| o.value()["spec"] != pod["spec"] || o.labels() != pod["metadata"]["labels"]);
                    if !self.unschedulable.contains(&key) || relevant_change {
                        self.unschedulable.remove(&key);
                        self.enqueue(key.clone());
                    }
                } else {
                    self.unschedulable.remove(&key);
                }
            }
            None => {
                self.unschedulable.remove(&key);
            }
        }
        if freed {
            self.flush_unschedulable();
        }
    }

    fn enqueue(&mut self, key: ObjKey) {
        if self.queued.insert(key.clone()) {
            self.active.push_back(key);
        }
    }

    fn flush_unschedulable(&mut self) {
        let keys: Vec<ObjKey> = self.unschedulable.drain().collect();
        for k in keys {
            self.enqueue(k);
        }
    }

    async fn schedule_queue(&mut self) {
        let mut done = 0usize;
        while let Some(key) = self.active.pop_front() {
            self.queued.remove(&key);
            let Some(obj) = self.pods.get(&key).cloned() else { continue };
            if !is_pending(&obj.value()) {
                continue;
            }
            self.schedule_one(&key, &obj);
            done += 1;
            if done.is_multiple_of(64) {
                tokio::task::yield_now().await;
            }
        }
    }

    fn schedule_one(&mut self, key: &ObjKey, obj: &Arc<Obj>) {
        let pod = &obj.value();
        let uid = obj.uid().to_string();
        let registry = self.sim.registry.clone();
        if pod["spec"]["schedulingGates"].as_array().is_some_and(|g| !g.is_empty()) {
            let written = registry.mutate(Kind::Pod, key, Some(&uid), |p| {
                set_condition(
                    p,
                    "PodScheduled",
                    "False",
                    Some("SchedulingGated"),
                    Some("Scheduling is blocked due to non-empty scheduling gates"),
                );
                Ok(())
            });
            self.note(written);
            self.unschedulable.insert(key.clone());
            return;
        }
        let facts = Facts::of(pod);
        match self.find_node(&facts) {
            Ok(node) => {
                let written = bind_pod(&registry, key, Some(&uid), &node);
                if let Ok(Written::Updated(bound)) = &written {
                    let message = format!("Successfully assigned {}/{} to {node}", key.namespace, key.name);
                    self.sim.recorder.record(&bound.value(), "Normal", "Scheduled", &message, SCHEDULER_NAME, None);
                }
                self.note(written);
            }
            Err(fit) => {
                let message = fit.message();
                self.unschedulable.insert(key.clone());
                let written = registry.mutate(Kind::Pod, key, Some(&uid), |p| {
                    set_condition(p, "PodScheduled", "False", Some("Unschedulable"), Some(&message));
                    Ok(())
                });
                self.sim.recorder.record(pod, "Warning", "FailedScheduling", &message, SCHEDULER_NAME, None);
                self.note(written);
            }
        }
    }

    fn note(&mut self, written: Result<Written, crate::error::ApiError>) {
        match written {
            Ok(Written::Updated(o)) => {
                if let Some(u) = self.pods.note_written(&o) {
                    self.on_pod_update(u);
                }
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "kubesim scheduler: write failed"),
        }
    }

    /// kube-scheduler's numFeasibleNodesToFind with the adaptive percentage.
    fn nodes_to_find(n: usize) -> usize {
        if n < 100 {
            return n;
        }
        let percentage = (50 - n as i64 / 125).max(5) as usize;
        (n * percentage / 100).max(100)
    }

    fn find_node(&mut self, facts: &Facts) -> Result<String, FitError> {
        let n = self.nodes.len();
        let mut fit = FitError {
            nodes: n,
            reasons: BTreeMap::new(),
            resolvable: 0,
            unresolvable: 0,
            preemption_never: facts.preemption_never,
        };
        if n == 0 {
            return Err(fit);
        }
        let wanted = Self::nodes_to_find(n);
        let mut feasible: Vec<usize> = Vec::new();
        let mut processed = 0;
        for i in 0..n {
            let idx = (self.next_start + i) % n;
            processed += 1;
            let info = &self.nodes[idx];
            match self.filter(info, facts) {
                Ok(()) => {
                    feasible.push(idx);
                    if feasible.len() >= wanted {
                        break;
                    }
                }
                Err((reasons, unresolvable)) => {
                    for r in reasons {
                        *fit.reasons.entry(r).or_default() += 1;
                    }
                    if unresolvable {
                        fit.unresolvable += 1;
                    } else {
                        fit.resolvable += 1;
                    }
                }
            }
        }
        self.next_start = (self.next_start + processed) % n;
        let scoring = self.sim.options.scoring;
        let best = feasible.into_iter().max_by_key(|idx| {
            let info = &self.nodes[*idx];
            // Higher is better; ties go to the first node visited (max_by_key keeps the last, so negate order).
            (score(info, facts, scoring), std::cmp::Reverse(*idx))
        });
        match best {
            Some(idx) => Ok(self.nodes[idx].name.clone()),
            None => Err(fit),
        }
    }

    /// The default profile's filters in order; the first failing one decides
    /// (NodeResourcesFit reports every insufficient resource).
    fn filter(&self, node: &NodeInfo, facts: &Facts) -> Result<(), (Vec<String>, bool)> {
        if node.unschedulable && !facts.tolerates(UNSCHEDULABLE_TAINT, "", "NoSchedule") {
            return Err((vec!["node(s) were unschedulable".to_string()], true));
        }
        for (key, value, effect) in &node.taints {
            if !facts.tolerates(key, value, effect) {
                return Err((vec![format!("node(s) had untolerated taint {{{key}: {value}}}")], true));
            }
        }
        let selector_ok =
            facts.node_selector.as_object().is_none_or(|m| m.iter().all(|(k, want)| node.label(k) == want.as_str()));
        let affinity_ok =
            facts.required_terms.is_null() || node_selector_terms_match(&facts.required_terms, &node.obj.value());
        if !selector_ok || !affinity_ok {
            return Err((vec!["node(s) didn't match Pod's node affinity/selector".to_string()], true));
        }
        for (proto, port, ip) in &facts.ports {
            let clash = node.ports.keys().any(|(p2, port2, ip2)| {
                p2 == proto && port2 == port && (ip == ip2 || ip == "0.0.0.0" || ip2 == "0.0.0.0")
            });
            if clash {
                return Err((vec!["node(s) didn't have free ports for the requested pod ports".to_string()], false));
            }
        }
        let mut insufficient = Vec::new();
        if node.used.pods + 1 > node.alloc.pods {
            insufficient.push("Too many pods".to_string());
        }
        if facts.req.cpu > 0 && facts.req.cpu > node.alloc.cpu - node.used.cpu {
            insufficient.push("Insufficient cpu".to_string());
        }
        if facts.req.mem > 0 && facts.req.mem > node.alloc.mem - node.used.mem {
            insufficient.push("Insufficient memory".to_string());
        }
        for (name, amount) in &facts.other {
            let free =
                node.alloc_other.get(name).copied().unwrap_or(0) - node.used_other.get(name).copied().unwrap_or(0);
            if *amount > free {
                insufficient.push(format!("Insufficient {name}"));
            }
        }
        if !insufficient.is_empty() {
            return Err((insufficient, false));
        }
        if (!facts.anti.is_empty() || !self.anti_pods.is_empty())
            && let Some(reason) = self.anti_affinity(node, facts)
        {
            return Err((vec![reason.to_string()], false));
        }
        if !self.affinity_met(node, facts) {
            return Err((vec!["node(s) didn't match pod affinity rules".to_string()], true));
        }
        if let Some(reason) = self.spread_violated(node, facts) {
            return Err((vec![reason.to_string()], false));
        }
        Ok(())
    }

    /// Required pod affinity: every term has a matching pod in the node's
    /// domain — or, as kube-scheduler allows, no pod anywhere matches a term
    /// the incoming pod itself matches (the first of a group kept together).
    fn affinity_met(&self, node: &NodeInfo, facts: &Facts) -> bool {
        facts.affinity.iter().all(|term| {
            let here = self
                .same_domain(node, &term.topology_key)
                .any(|n| n.pods.iter().filter_map(|k| self.placed.get(k)).any(|p| term.selects(&p.facts)));
            here || (term.selects(facts) && !self.placed.values().any(|p| term.selects(&p.facts)))
        })
    }

    /// `DoNotSchedule` topology spread: the pod's domain may hold at most
    /// `maxSkew` more matching pods (it included) than the emptiest domain of
    /// the nodes its node selector and affinity allow (0 with fewer than
    /// `minDomains` domains); a node without the topology label fails.
    fn spread_violated(&self, node: &NodeInfo, facts: &Facts) -> Option<&'static str> {
        for c in &facts.spread {
            let domain_of = |n: &NodeInfo| -> Option<String> {
                if c.topology_key == HOSTNAME {
                    Some(n.name.clone())
                } else {
                    n.label(&c.topology_key).map(str::to_string)
                }
            };
            let Some(mine) = domain_of(node) else {
                return Some("node(s) didn't match pod topology spread constraints (missing required label)");
            };
            let mut counts: HashMap<String, i64> = HashMap::new();
            for n in &self.nodes {
                let eligible =
                    facts.node_selector.as_object().is_none_or(|m| m.iter().all(|(k, v)| n.label(k) == v.as_str()))
                        && (facts.required_terms.is_null()
                            || node_selector_terms_match(&facts.required_terms, &n.obj.value()));
                let Some(d) = domain_of(n).filter(|_| eligible) else { continue };
                let matching = n
                    .pods
                    .iter()
                    .filter_map(|k| self.placed.get(k))
                    .filter(|p| {
                        !p.facts.deleting
                            && p.facts.namespace == facts.namespace
                            && c.selector.matches_labels(&p.facts.labels)
                    })
                    .count() as i64;
                *counts.entry(d).or_default() += matching;
            }
            let min = if counts.len() < c.min_domains { 0 } else { counts.values().copied().min().unwrap_or(0) };
            let own = i64::from(c.selector.matches_labels(&facts.labels));
            if counts.get(&mine).copied().unwrap_or(0) + own - min > c.max_skew {
                return Some("node(s) didn't match pod topology spread constraints");
            }
        }
        None
    }

    /// Nodes in the same topology domain as `node` for `key` (just `node` for hostname).
    fn same_domain<'a>(&'a self, node: &'a NodeInfo, key: &'a str) -> Box<dyn Iterator<Item = &'a NodeInfo> + 'a> {
        if key == HOSTNAME {
            return Box::new(std::iter::once(node));
        }
        match node.label(key) {
            Some(value) => Box::new(self.nodes.iter().filter(move |n| n.label(key) == Some(value))),
            None => Box::new(std::iter::empty()),
        }
    }

    fn anti_affinity(&self, node: &NodeInfo, facts: &Facts) -> Option<&'static str> {
        for term in &facts.anti {
            for other in self.same_domain(node, &term.topology_key) {
                let clash = other.pods.iter().filter_map(|k| self.placed.get(k)).any(|p| term.selects(&p.facts));
                if clash {
                    return Some("node(s) didn't match pod anti-affinity rules");
                }
            }
        }
        for key in &self.anti_pods {
            let Some(existing) = self.placed.get(key) else { continue };
            let Some(existing_node) = self.index.get(&existing.node).map(|&i| &self.nodes[i]) else { continue };
            for term in &existing.facts.anti {
                let same = if term.topology_key == HOSTNAME {
                    existing.node == node.name
                } else {
                    node.label(&term.topology_key).is_some()
                        && node.label(&term.topology_key) == existing_node.label(&term.topology_key)
                };
                if same && term.selects(facts) {
                    return Some("node(s) didn't satisfy existing pods anti-affinity rules");
                }
            }
        }
        None
    }
}

fn account(info: &mut NodeInfo, key: &ObjKey, facts: &Facts, sign: i64) {
    if sign > 0 && !info.pods.insert(key.clone()) {
        return;
    }
    if sign < 0 && !info.pods.remove(key) {
        return;
    }
    info.used.cpu += sign * facts.req.cpu;
    info.used.mem += sign * facts.req.mem;
    info.used.pods += sign;
    for (name, amount) in &facts.other {
        *info.used_other.entry(name.clone()).or_default() += sign * amount;
    }
    for port in &facts.ports {
        let entry = info.ports.entry(port.clone()).or_default();
        if sign > 0 {
            *entry += 1;
        } else {
            *entry = entry.saturating_sub(1);
            if *entry == 0 {
                info.ports.remove(port);
            }
        }
    }
}

/// NodeResourcesFit scoring, 0..=100, with the scheduler's non-zero defaults
/// for pods that request nothing.
fn score(info: &NodeInfo, facts: &Facts, scoring: Scoring) -> i64 {
    let req_cpu = if facts.req.cpu == 0 { 100 } else { facts.req.cpu };
    let req_mem = if facts.req.mem == 0 { 200 << 20 } else { facts.req.mem };
    let frac = |used: i64, req: i64, alloc: i64| -> i64 {
        if alloc <= 0 {
            return 0;
        }
        let requested = (used + req).min(alloc);
        match scoring {
            Scoring::LeastAllocated => (alloc - requested) * 100 / alloc,
            Scoring::MostAllocated => requested * 100 / alloc,
        }
    };
    (frac(info.used.cpu, req_cpu, info.alloc.cpu) + frac(info.used.mem, req_mem, info.alloc.mem)) / 2
}

/// What a pod requests of resources other than cpu, memory and pods: the sum
/// over its app containers and sidecars, or its largest init container if
/// larger (requests default to limits at admission, so extended resources
/// given as limits are here).
fn other_requests(spec: &Value) -> Vec<(String, i64)> {
    let mut sum: BTreeMap<String, i64> = BTreeMap::new();
    let mut init: BTreeMap<String, i64> = BTreeMap::new();
    let requests = |c: &Value| -> Vec<(String, i64)> {
        c["resources"]["requests"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| !matches!(k.as_str(), "cpu" | "memory"))
            .filter_map(|(k, v)| Some((k.clone(), quantity::whole_units(v.as_str()?)?)))
            .collect()
    };
    for c in spec["containers"].as_array().into_iter().flatten() {
        for (k, v) in requests(c) {
            *sum.entry(k).or_default() += v;
        }
    }
    for c in spec["initContainers"].as_array().into_iter().flatten() {
        for (k, v) in requests(c) {
            if c["restartPolicy"] == "Always" {
                *sum.entry(k).or_default() += v;
            } else {
                let e = init.entry(k).or_default();
                *e = (*e).max(v);
            }
        }
    }
    for (k, v) in init {
        let e = sum.entry(k).or_default();
        *e = (*e).max(v);
    }
    sum.into_iter().filter(|(_, v)| *v > 0).collect()
}
