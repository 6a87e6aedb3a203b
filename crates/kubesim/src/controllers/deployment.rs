//! The Deployment controller: one ReplicaSet per pod template (named with the
//! pod-template-hash), scale changes propagated, a template change creating a
//! new ReplicaSet and scaling the old ones to zero (no surge/unavailability
//! pacing), status and conditions aggregated.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Value, json};

use super::cache::ObjCache;
use crate::ids;
use crate::podutil;
use crate::resources::Kind;
use crate::sim::Sim;
use crate::store::{Informer, Obj, ObjKey, Written};
use crate::time;

const HASH_LABEL: &str = "pod-template-hash";
const REVISION: &str = "deployment.kubernetes.io/revision";
const COMPONENT: &str = "deployment-controller";

pub async fn run(sim: Arc<Sim>) {
    let mut deploy_informer = Informer::new(sim.store.clone(), Kind::Deployment);
    let mut rs_informer = Informer::new(sim.store.clone(), Kind::ReplicaSet);
    let mut c = Controller {
        sim,
        deployments: ObjCache::default(),
        sets: ObjCache::default(),
        owned: HashMap::new(),
        dirty: HashSet::new(),
    };
    loop {
        tokio::select! {
            b = deploy_informer.next() => {
                for u in c.deployments.apply_batch(b) {
                    c.dirty.insert(u.key);
                }
            }
            b = rs_informer.next() => c.on_sets(b),
        }
        while let Some(b) = rs_informer.try_next() {
            c.on_sets(b);
        }
        let dirty: Vec<ObjKey> = c.dirty.drain().collect();
        for key in dirty {
            c.reconcile(&key);
        }
    }
}

struct Controller {
    sim: Arc<Sim>,
    deployments: ObjCache,
    sets: ObjCache,
    /// Deployment uid → keys of its ReplicaSets.
    owned: HashMap<String, HashSet<ObjKey>>,
    dirty: HashSet<ObjKey>,
}

/// The pod-template-hash: FNV-1a of the template, in apimachinery's safe alphabet.
pub fn template_hash(template: &Value) -> String {
    let bytes = serde_json::to_vec(template).unwrap_or_default();
    ids::safe_encode(&ids::fnv32a(&bytes).to_string())
}

fn without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(labels) = t["metadata"]["labels"].as_object_mut() {
        labels.remove(HASH_LABEL);
    }
    t
}

impl Controller {
    fn on_sets(&mut self, batch: crate::store::InformerBatch) {
        for u in self.sets.apply_batch(batch) {
            self.set_changed(&u.key, u.old.as_deref(), u.new.as_deref());
        }
    }

    fn set_changed(&mut self, key: &ObjKey, old: Option<&Obj>, new: Option<&Obj>) {
        for (obj, adding) in [(old, false), (new, true)] {
            let Some(obj) = obj else { continue };
            let value = obj.value();
            let Some(owner) = podutil::controller_ref(&value).filter(|r| r["kind"] == "Deployment") else {
                continue;
            };
            let uid = owner["uid"].as_str().unwrap_or("").to_string();
            let name = owner["name"].as_str().unwrap_or("").to_string();
            let set = self.owned.entry(uid.clone()).or_default();
            if adding {
                set.insert(key.clone());
            } else {
                set.remove(key);
            }
            self.dirty.insert(ObjKey::new(&key.namespace, &name));
        }
    }

    fn note_set(&mut self, written: Result<Written, crate::error::ApiError>) {
        if let Ok(Written::Created(o) | Written::Updated(o)) = written
            && let Some(u) = self.sets.note_written(&o)
        {
            self.set_changed(&u.key, u.old.as_deref(), u.new.as_deref());
        }
    }

    fn reconcile(&mut self, key: &ObjKey) {
        let Some(d) = self.deployments.get(key).cloned() else { return };
        if d.is_deleting() {
            return;
        }
        let uid = d.uid().to_string();
        let replicas = d.value()["spec"]["replicas"].as_i64().unwrap_or(1);
        let template = &d.value()["spec"]["template"];
        let sets: Vec<Arc<Obj>> = self
            .owned
            .get(&uid)
            .into_iter()
            .flatten()
            .filter_map(|k| self.sets.get(k).cloned())
            .filter(|rs| rs.controller().is_some_and(|(_, owner)| owner == uid))
            .collect();
        let current = sets.iter().find(|rs| without_hash(&rs.value()["spec"]["template"]) == *template).cloned();
        let max_revision = sets
            .iter()
            .filter_map(|rs| rs.value()["metadata"]["annotations"][REVISION].as_str()?.parse::<i64>().ok())
            .max()
            .unwrap_or(0);
        match &current {
            None => {
                let hash = template_hash(template);
                let rs = new_replica_set(&d.value(), &hash, replicas, max_revision + 1);
                let created = self.sim.registry.create(Kind::ReplicaSet, Some(&key.namespace), rs, false);
                if let Ok(o) = &created {
                    let msg = format!("Scaled up replica set {} from 0 to {replicas}", o.key.name);
                    self.sim.recorder.record(&d.value(), "Normal", "ScalingReplicaSet", &msg, COMPONENT, None);
                }
                self.note_set(created.map(Written::Created));
            }
            Some(rs) if rs.value()["spec"]["replicas"].as_i64() != Some(replicas) => {
                let from = rs.value()["spec"]["replicas"].as_i64().unwrap_or(0);
                let verb = if replicas > from { "up" } else { "down" };
                let msg = format!("Scaled {verb} replica set {} from {from} to {replicas}", rs.key.name);
                let written = self.sim.registry.mutate(Kind::ReplicaSet, &rs.key, Some(rs.uid()), |v| {
                    v["spec"]["replicas"] = json!(replicas);
                    v["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] =
                        json!(replicas.to_string());
                    Ok(())
                });
                self.sim.recorder.record(&d.value(), "Normal", "ScalingReplicaSet", &msg, COMPONENT, None);
                self.note_set(written);
            }
            Some(_) => {}
        }
        for old in sets.iter().filter(|rs| current.as_ref().is_none_or(|c| c.key != rs.key)) {
            let from = old.value()["spec"]["replicas"].as_i64().unwrap_or(0);
            if from == 0 {
                continue;
            }
            let written = self.sim.registry.mutate(Kind::ReplicaSet, &old.key, Some(old.uid()), |v| {
                v["spec"]["replicas"] = json!(0);
                Ok(())
            });
            let msg = format!("Scaled down replica set {} from {from} to 0", old.key.name);
            self.sim.recorder.record(&d.value(), "Normal", "ScalingReplicaSet", &msg, COMPONENT, None);
            self.note_set(written);
        }
        // Status from the ReplicaSets as now known.
        let sets: Vec<Arc<Obj>> =
            self.owned.get(&uid).into_iter().flatten().filter_map(|k| self.sets.get(k).cloned()).collect();
        let sum =
            |field: &str| -> i64 { sets.iter().map(|rs| rs.value()["status"][field].as_i64().unwrap_or(0)).sum() };
        let (total, ready, available) = (sum("replicas"), sum("readyReplicas"), sum("availableReplicas"));
        let updated = sets
            .iter()
            .find(|rs| without_hash(&rs.value()["spec"]["template"]) == *template)
            .map(|rs| rs.value()["status"]["replicas"].as_i64().unwrap_or(0))
            .unwrap_or(0);
        let generation = d.value()["metadata"]["generation"].clone();
        let available_ok = available >= replicas - max_unavailable(&d.value(), replicas);
        let current_name = current.map(|c| c.key.name.clone()).unwrap_or_default();
        let written = self.sim.registry.mutate(Kind::Deployment, key, Some(&uid), |v| {
            let st = &mut v["status"];
            st["observedGeneration"] = generation;
            st["replicas"] = json!(total);
            st["updatedReplicas"] = json!(updated);
            st["readyReplicas"] = json!(ready);
            st["availableReplicas"] = json!(available);
            st["unavailableReplicas"] = json!((replicas - available).max(0));
            set_deployment_condition(
                v,
                "Available",
                if available_ok { "True" } else { "False" },
                if available_ok { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" },
                if available_ok {
                    "Deployment has minimum availability."
                } else {
                    "Deployment does not have minimum availability."
                },
            );
            let progressing_reason = if updated == replicas && available == replicas {
                "NewReplicaSetAvailable"
            } else {
                "ReplicaSetUpdated"
            };
            let progressing_msg = if progressing_reason == "NewReplicaSetAvailable" {
                format!("ReplicaSet \"{current_name}\" has successfully progressed.")
            } else {
                format!("ReplicaSet \"{current_name}\" is progressing.")
            };
            set_deployment_condition(v, "Progressing", "True", progressing_reason, &progressing_msg);
            Ok(())
        });
        if let Ok(Written::Updated(o)) = written {
            self.deployments.note_written(&o);
        }
    }
}

fn max_unavailable(d: &Value, replicas: i64) -> i64 {
    let v = &d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"];
    if d["spec"]["strategy"]["type"] == "Recreate" {
        return replicas;
    }
    match v {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => {
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(25);
            replicas * pct / 100
        }
        _ => replicas / 4,
    }
}

fn set_deployment_condition(d: &mut Value, kind: &str, status: &str, reason: &str, message: &str) {
    let now = time::now_string();
    let mut conditions = d["status"]["conditions"].as_array().cloned().unwrap_or_default();
    let mut c = json!({"type": kind, "status": status, "reason": reason, "message": message,
        "lastUpdateTime": now, "lastTransitionTime": now});
    if let Some(existing) = conditions.iter_mut().find(|c| c["type"] == kind) {
        if existing["status"] == status && existing["reason"] == reason && existing["message"] == message {
            return;
        }
        if existing["status"] == status {
            c["lastTransitionTime"] = existing["lastTransitionTime"].clone();
        }
        *existing = c;
    } else {
        conditions.push(c);
    }
    d["status"]["conditions"] = Value::Array(conditions);
}

fn new_replica_set(d: &Value, hash: &str, replicas: i64, revision: i64) -> Value {
    let meta = &d["metadata"];
    let mut template = d["spec"]["template"].clone();
    template["metadata"]["labels"][HASH_LABEL] = json!(hash);
    let mut selector = d["spec"]["selector"].clone();
    selector["matchLabels"][HASH_LABEL] = json!(hash);
    let labels = template["metadata"]["labels"].clone();
    json!({
        "metadata": {
            "name": format!("{}-{hash}", meta["name"].as_str().unwrap_or("")),
            "namespace": meta["namespace"],
            "labels": labels,
            "annotations": {
                REVISION: revision.to_string(),
                "deployment.kubernetes.io/desired-replicas": replicas.to_string(),
                "deployment.kubernetes.io/max-replicas": replicas.to_string(),
            },
            "ownerReferences": [{
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": meta["name"],
                "uid": meta["uid"],
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": {"replicas": replicas, "selector": selector, "template": template},
    })
}
