//! The ReplicaSet controller: keeps `spec.replicas` active pods from the
//! template (owner references, generateName), replaces evicted or deleted
//! pods at once, and reports status.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Value, json};

use super::cache::ObjCache;
use crate::podutil;
use crate::registry::DeleteOptions;
use crate::resources::Kind;
use crate::sim::Sim;
use crate::store::{Informer, Obj, ObjKey};

/// Pods created or deleted per ReplicaSet per pass (the real controller's burst).
const BURST: usize = 500;
const COMPONENT: &str = "replicaset-controller";

pub async fn run(sim: Arc<Sim>) {
    let mut rs_informer = Informer::new(sim.store.clone(), Kind::ReplicaSet);
    let mut pod_informer = Informer::new(sim.store.clone(), Kind::Pod);
    let mut c = Controller {
        sim,
        sets: ObjCache::default(),
        pods: ObjCache::default(),
        owned: HashMap::new(),
        dirty: HashSet::new(),
    };
    loop {
        tokio::select! {
            b = rs_informer.next() => c.on_sets(b),
            b = pod_informer.next() => c.on_pods(b),
        }
        while let Some(b) = rs_informer.try_next() {
            c.on_sets(b);
        }
        while let Some(b) = pod_informer.try_next() {
            c.on_pods(b);
        }
        let dirty: Vec<ObjKey> = c.dirty.drain().collect();
        for (i, key) in dirty.iter().enumerate() {
            c.reconcile(key);
            if i % 16 == 15 {
                tokio::task::yield_now().await;
            }
        }
    }
}

struct Controller {
    sim: Arc<Sim>,
    sets: ObjCache,
    pods: ObjCache,
    /// ReplicaSet uid → keys of pods it controls.
    owned: HashMap<String, HashSet<ObjKey>>,
    dirty: HashSet<ObjKey>,
}

fn owner_of(pod: &Value, kind: &str) -> Option<(String, String)> {
    let r = podutil::controller_ref(pod)?;
    (r["kind"] == kind)
        .then(|| (r["uid"].as_str().unwrap_or("").to_string(), r["name"].as_str().unwrap_or("").to_string()))
}

impl Controller {
    fn on_sets(&mut self, batch: crate::store::InformerBatch) {
        for u in self.sets.apply_batch(batch) {
            self.dirty.insert(u.key);
        }
    }

    fn on_pods(&mut self, batch: crate::store::InformerBatch) {
        for u in self.pods.apply_batch(batch) {
            self.pod_changed(&u.key, u.old.as_deref(), u.new.as_deref());
        }
    }

    fn pod_changed(&mut self, key: &ObjKey, old: Option<&Obj>, new: Option<&Obj>) {
        for (obj, adding) in [(old, false), (new, true)] {
            let Some(obj) = obj else { continue };
            let Some((uid, name)) = owner_of(&obj.value(), "ReplicaSet") else { continue };
            let set = self.owned.entry(uid.clone()).or_default();
            if adding {
                set.insert(key.clone());
            } else {
                set.remove(key);
                if set.is_empty() {
                    self.owned.remove(&uid);
                }
            }
            self.dirty.insert(ObjKey::new(&key.namespace, &name));
        }
    }

    fn note_pod(&mut self, obj: &Arc<Obj>, deleted: bool) {
        let update = if deleted { self.pods.note_deleted(obj) } else { self.pods.note_written(obj) };
        if let Some(u) = update {
            self.pod_changed(&u.key, u.old.as_deref(), u.new.as_deref());
        }
    }

    fn reconcile(&mut self, key: &ObjKey) {
        let Some(rs) = self.sets.get(key).cloned() else { return };
        if rs.is_deleting() {
            return;
        }
        let uid = rs.uid().to_string();
        let mut pods: Vec<Arc<Obj>> = self
            .owned
            .get(&uid)
            .into_iter()
            .flatten()
            .filter_map(|k| self.pods.get(k))
            .filter(|p| p.controller() == Some(("ReplicaSet", uid.as_str())))
            .cloned()
            .collect();
        pods.retain(|p| p.is_active());
        let want = rs.value()["spec"]["replicas"].as_i64().unwrap_or(1).max(0) as usize;
        let mut requeue = false;
        if pods.len() < want {
            let missing = want - pods.len();
            requeue = missing > BURST;
            for _ in 0..missing.min(BURST) {
                match self.sim.registry.create(
                    Kind::Pod,
                    Some(&key.namespace),
                    pod_from_template(&rs.value(), "ReplicaSet"),
                    false,
                ) {
                    Ok(pod) => {
                        let msg = format!("Created pod: {}", pod.key.name);
                        self.sim.recorder.record(&rs.value(), "Normal", "SuccessfulCreate", &msg, COMPONENT, None);
                        self.note_pod(&pod, false);
                        pods.push(pod);
                    }
                    Err(e) => {
                        let msg = format!("Error creating: {}", e.message);
                        self.sim.recorder.record(&rs.value(), "Warning", "FailedCreate", &msg, COMPONENT, None);
                        break;
                    }
                }
            }
        } else if pods.len() > want {
            // Delete the least valuable first: unscheduled, pending, not ready, newest.
            pods.sort_by_key(|p| {
                let v = &p.value();
                (
                    !podutil::node_name(v).is_empty(),
                    podutil::phase(v) == "Running",
                    podutil::is_ready(v),
                    std::cmp::Reverse(v["metadata"]["creationTimestamp"].as_str().unwrap_or("").to_string()),
                )
            });
            let excess = pods.len() - want;
            requeue = excess > BURST;
            let victims: Vec<Arc<Obj>> = pods.drain(..excess.min(BURST)).collect();
            for p in victims {
                if let Ok(d) = self.sim.registry.delete(Kind::Pod, &p.key, &DeleteOptions::default()) {
                    let msg = format!("Deleted pod: {}", p.key.name);
                    self.sim.recorder.record(&rs.value(), "Normal", "SuccessfulDelete", &msg, COMPONENT, None);
                    let gone = matches!(d, crate::registry::Deleted::Gone(_));
                    self.note_pod(d.object(), gone);
                }
            }
        }
        if requeue {
            self.dirty.insert(key.clone());
        }
        let ready = pods.iter().filter(|p| p.is_ready()).count();
        let template_labels = &rs.value()["spec"]["template"]["metadata"]["labels"];
        let fully_labeled = pods
            .iter()
            .filter(|p| template_labels.as_object().is_none_or(|m| m.iter().all(|(k, v)| p.label(k) == v.as_str())))
            .count();
        let generation = rs.value()["metadata"]["generation"].clone();
        let count = pods.len();
        let written = self.sim.registry.mutate(Kind::ReplicaSet, key, Some(&uid), |v| {
            let st = &mut v["status"];
            st["replicas"] = json!(count);
            st["fullyLabeledReplicas"] = json!(fully_labeled);
            st["readyReplicas"] = json!(ready);
            st["availableReplicas"] = json!(ready);
            st["observedGeneration"] = generation;
            Ok(())
        });
        if let Ok(crate::store::Written::Updated(o)) = written {
            self.sets.note_written(&o);
        }
    }
}

/// A pod from a workload's template, controlled by it.
pub fn pod_from_template(owner: &Value, owner_kind: &str) -> Value {
    let template = &owner["spec"]["template"];
    let meta = &owner["metadata"];
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": format!("{}-", meta["name"].as_str().unwrap_or("")),
            "namespace": meta["namespace"],
            "ownerReferences": [{
                "apiVersion": "apps/v1",
                "kind": owner_kind,
                "name": meta["name"],
                "uid": meta["uid"],
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": template["spec"],
    });
    for field in ["labels", "annotations"] {
        if template["metadata"][field].is_object() {
            pod["metadata"][field] = template["metadata"][field].clone();
        }
    }
    pod
}
