//! The DaemonSet controller: one pod per eligible node, pinned with node
//! affinity on metadata.name (the scheduler binds it), with the tolerations
//! the real controller adds so daemons survive cordons and node conditions.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Value, json};

use super::cache::ObjCache;
use super::replicaset::pod_from_template;
use crate::podutil;
use crate::registry::DeleteOptions;
use crate::resources::Kind;
use crate::selectors::node_selector_terms_match;
use crate::sim::Sim;
use crate::store::{Informer, Obj, ObjKey, Written};

const COMPONENT: &str = "daemonset-controller";

pub async fn run(sim: Arc<Sim>) {
    let mut ds_informer = Informer::new(sim.store.clone(), Kind::DaemonSet);
    let mut node_informer = Informer::new(sim.store.clone(), Kind::Node);
    let mut pod_informer = Informer::new(sim.store.clone(), Kind::Pod);
    let mut c = Controller {
        sim,
        sets: ObjCache::default(),
        nodes: ObjCache::default(),
        pods: ObjCache::default(),
        owned: HashMap::new(),
        dirty: HashSet::new(),
    };
    loop {
        let mut all_dirty = false;
        tokio::select! {
            b = ds_informer.next() => {
                for u in c.sets.apply_batch(b) {
                    c.dirty.insert(u.key);
                }
            }
            b = node_informer.next() => all_dirty = !c.nodes.apply_batch(b).is_empty(),
            b = pod_informer.next() => c.on_pods(b),
        }
        while let Some(b) = pod_informer.try_next() {
            c.on_pods(b);
        }
        if all_dirty {
            let keys: Vec<ObjKey> = c.sets.values().map(|o| o.key.clone()).collect();
            c.dirty.extend(keys);
        }
        let dirty: Vec<ObjKey> = c.dirty.drain().collect();
        for key in dirty {
            c.reconcile(&key);
        }
    }
}

struct Controller {
    sim: Arc<Sim>,
    sets: ObjCache,
    nodes: ObjCache,
    pods: ObjCache,
    owned: HashMap<String, HashSet<ObjKey>>,
    dirty: HashSet<ObjKey>,
}

/// The node a daemon pod is pinned to.
fn target_node(pod: &Value) -> Option<String> {
    let bound = podutil::node_name(pod);
    if !bound.is_empty() {
        return Some(bound.to_string());
    }
    pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
        ["matchFields"][0]["values"][0]
        .as_str()
        .map(str::to_string)
}

impl Controller {
    fn on_pods(&mut self, batch: crate::store::InformerBatch) {
        for u in self.pods.apply_batch(batch) {
            self.pod_changed(&u.key, u.old.as_deref(), u.new.as_deref());
        }
    }

    fn pod_changed(&mut self, key: &ObjKey, old: Option<&Obj>, new: Option<&Obj>) {
        for (obj, adding) in [(old, false), (new, true)] {
            let Some(obj) = obj else { continue };
            if obj.controller().is_none_or(|(kind, _)| kind != "DaemonSet") {
                continue;
            }
            let value = obj.value();
            let Some(r) = podutil::controller_ref(&value).filter(|r| r["kind"] == "DaemonSet") else { continue };
            let uid = r["uid"].as_str().unwrap_or("").to_string();
            let name = r["name"].as_str().unwrap_or("").to_string();
            let set = self.owned.entry(uid).or_default();
            if adding {
                set.insert(key.clone());
            } else {
                set.remove(key);
            }
            self.dirty.insert(ObjKey::new(&key.namespace, &name));
        }
    }

    /// The real controller's `NodeShouldRunDaemonPod`: (should a daemon pod
    /// be created there, may an existing one stay). A `NoSchedule` taint the
    /// pod does not tolerate stops new pods only; `NoExecute` evicts.
    fn should_run(&self, template: &Value, node: &Value) -> (bool, bool) {
        let spec = &template["spec"];
        let labels = &node["metadata"]["labels"];
        if let Some(sel) = spec["nodeSelector"].as_object()
            && !sel.iter().all(|(k, v)| labels[k] == *v)
        {
            return (false, false);
        }
        let terms =
            &spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"];
        if !terms.is_null() && !node_selector_terms_match(terms, node) {
            return (false, false);
        }
        let tolerations = daemon_tolerations(spec);
        let tolerated = |effect: &str| {
            node["spec"]["taints"].as_array().into_iter().flatten().filter(|t| t["effect"] == effect).all(|t| {
                let (k, v) = (t["key"].as_str().unwrap_or(""), t["value"].as_str().unwrap_or(""));
                tolerations.iter().any(|tol| podutil::tolerates(tol, k, v, effect))
            })
        };
        let keep = tolerated("NoExecute");
        (keep && tolerated("NoSchedule"), keep)
    }

    fn reconcile(&mut self, key: &ObjKey) {
        let Some(ds) = self.sets.get(key).cloned() else { return };
        if ds.is_deleting() {
            return;
        }
        let uid = ds.uid().to_string();
        let pods: Vec<Arc<Obj>> = self
            .owned
            .get(&uid)
            .into_iter()
            .flatten()
            .filter_map(|k| self.pods.get(k).cloned())
            .filter(|p| p.is_active())
            .collect();
        let mut by_node: HashMap<String, Vec<Arc<Obj>>> = HashMap::new();
        for p in pods {
            if let Some(n) = target_node(&p.value()) {
                by_node.entry(n).or_default().push(p);
            }
        }
        let template = &ds.value()["spec"]["template"];
        let nodes: Vec<Arc<Obj>> = self.nodes.values().cloned().collect();
        let (mut desired, mut current, mut ready, mut misscheduled) = (0, 0, 0, 0);
        for node in &nodes {
            let name = node.key.name.clone();
            let (wanted, keep) = self.should_run(template, &node.value());
            let existing = by_node.remove(&name).unwrap_or_default();
            if !wanted && keep && !existing.is_empty() {
                // Stays where it runs (e.g. a NoSchedule taint came after it).
                misscheduled += 1;
            } else if wanted {
                desired += 1;
                if existing.is_empty() {
                    let mut pod = pod_from_template(&ds.value(), "DaemonSet");
                    pin(&mut pod, &name);
                    match self.sim.registry.create(Kind::Pod, Some(&key.namespace), pod, false) {
                        Ok(p) => {
                            let msg = format!("Created pod: {}", p.key.name);
                            self.sim.recorder.record(&ds.value(), "Normal", "SuccessfulCreate", &msg, COMPONENT, None);
                            if let Some(u) = self.pods.note_written(&p) {
                                self.pod_changed(&u.key, u.old.as_deref(), u.new.as_deref());
                            }
                        }
                        Err(e) => tracing::debug!(error = %e, "kubesim daemonset: create"),
                    }
                } else {
                    current += 1;
                    if existing.iter().any(|p| p.is_ready()) {
                        ready += 1;
                    }
                }
            } else {
                if !existing.is_empty() {
                    misscheduled += 1;
                }
                for p in existing {
                    let _ = self.sim.registry.delete(Kind::Pod, &p.key, &DeleteOptions::default());
                }
            }
        }
        // Pods pinned to nodes that no longer exist.
        for (_, pods) in by_node {
            for p in pods {
                let _ = self.sim.registry.delete(Kind::Pod, &p.key, &DeleteOptions::default());
            }
        }
        let generation = ds.value()["metadata"]["generation"].clone();
        let written = self.sim.registry.mutate(Kind::DaemonSet, key, Some(&uid), |v| {
            v["status"] = json!({
                "desiredNumberScheduled": desired,
                "currentNumberScheduled": current,
                "numberReady": ready,
                "numberAvailable": ready,
                "updatedNumberScheduled": current,
                "numberMisscheduled": misscheduled,
                "observedGeneration": generation,
            });
            if ready < desired {
                v["status"]["numberUnavailable"] = json!(desired - ready);
            }
            Ok(())
        });
        if let Ok(Written::Updated(o)) = written {
            self.sets.note_written(&o);
        }
    }
}

/// The tolerations the DaemonSet controller adds to its pods.
fn daemon_tolerations(spec: &Value) -> Vec<Value> {
    let mut t = spec["tolerations"].as_array().cloned().unwrap_or_default();
    for (key, effect) in [
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ] {
        t.push(json!({"key": key, "operator": "Exists", "effect": effect}));
    }
    t
}

fn pin(pod: &mut Value, node: &str) {
    pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] = json!({
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]
    });
    pod["spec"]["tolerations"] = Value::Array(daemon_tolerations(&pod["spec"]));
}
