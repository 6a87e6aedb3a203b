//! The disruption controller: keeps each PodDisruptionBudget's status
//! (currentHealthy, desiredHealthy, expectedPods, disruptionsAllowed,
//! observedGeneration, DisruptionAllowed condition) current, scales
//! maxUnavailable and percentages by the pods' controllers as the real
//! controller does, and expires status.disruptedPods entries.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::cache::ObjCache;
use crate::podutil;
use crate::resources::Kind;
use crate::selectors::LabelSelector;
use crate::sim::Sim;
use crate::store::{Informer, ObjKey, Written};
use crate::time;

/// How long an eviction's entry in disruptedPods holds if the pod is not deleted.
const DELETION_TIMEOUT: Duration = Duration::from_secs(120);

pub async fn run(sim: Arc<Sim>) {
    let mut pdb_informer = Informer::new(sim.store.clone(), Kind::PodDisruptionBudget);
    let mut pod_informer = Informer::new(sim.store.clone(), Kind::Pod);
    let mut rs_informer = Informer::new(sim.store.clone(), Kind::ReplicaSet);
    let mut deploy_informer = Informer::new(sim.store.clone(), Kind::Deployment);
    let recheck_every = sim.scale.scale(DELETION_TIMEOUT / 4).max(Duration::from_millis(100));
    let mut recheck = tokio::time::interval(recheck_every);
    let mut c = Controller {
        sim,
        pdbs: ObjCache::default(),
        pods: ObjCache::default(),
        sets: ObjCache::default(),
        deployments: ObjCache::default(),
        pods_by_ns: HashMap::new(),
        dirty: HashSet::new(),
    };
    loop {
        tokio::select! {
            b = pdb_informer.next() => {
                for u in c.pdbs.apply_batch(b) {
                    c.dirty.insert(u.key);
                }
            }
            b = pod_informer.next() => c.on_pods(b),
            b = rs_informer.next() => {
                let namespaces: Vec<String> = c.sets.apply_batch(b).into_iter().map(|u| u.key.namespace).collect();
                c.dirty_namespaces(namespaces);
            }
            b = deploy_informer.next() => {
                let namespaces: Vec<String> = c.deployments.apply_batch(b).into_iter().map(|u| u.key.namespace).collect();
                c.dirty_namespaces(namespaces);
            }
            _ = recheck.tick() => {
                let keys: Vec<ObjKey> = c.pdbs.values().filter(|p| has_disrupted(&p.value())).map(|p| p.key.clone()).collect();
                c.dirty.extend(keys);
            }
        }
        while let Some(b) = pod_informer.try_next() {
            c.on_pods(b);
        }
        let dirty: Vec<ObjKey> = c.dirty.drain().collect();
        for key in dirty {
            c.reconcile(&key);
        }
    }
}

fn has_disrupted(pdb: &serde_json::Value) -> bool {
    pdb["status"]["disruptedPods"].as_object().is_some_and(|m| !m.is_empty())
}

struct Controller {
    sim: Arc<Sim>,
    pdbs: ObjCache,
    pods: ObjCache,
    sets: ObjCache,
    deployments: ObjCache,
    /// The cached pods per namespace (the same objects as `pods`): a PDB's
    /// reconcile scans its namespace's pods without a look-up each.
    pods_by_ns: HashMap<String, HashMap<ObjKey, Arc<crate::store::Obj>>>,
    dirty: HashSet<ObjKey>,
}

/// policy/v1: a null selector selects nothing, an empty one every pod.
fn selector_of(pdb: &Value) -> LabelSelector {
    LabelSelector::from_json(&pdb["spec"]["selector"], LabelSelector::nothing())
        .unwrap_or_else(|_| LabelSelector::nothing())
}

/// An int-or-percent scaled against `total`, rounding up (GetScaledValueFromIntOrPercent).
fn scaled(v: &Value, total: i64) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => match s.strip_suffix('%') {
            Some(p) => p.parse::<i64>().ok().map(|p| (p * total + 99) / 100),
            None => s.parse().ok(),
        },
        _ => None,
    }
}

impl Controller {
    fn dirty_namespaces(&mut self, namespaces: Vec<String>) {
        let namespaces: HashSet<String> = namespaces.into_iter().collect();
        let keys: Vec<ObjKey> =
            self.pdbs.values().filter(|p| namespaces.contains(&p.key.namespace)).map(|p| p.key.clone()).collect();
        self.dirty.extend(keys);
    }

    /// Marks the PDBs whose selectors match a changed pod (before or after
    /// the change). Only the PDBs of namespaces the batch touched are decoded:
    /// comparing every PDB with every changed pod was PDBs × pods, most of
    /// kubesim's CPU while 300,000 pods started under 2,000 PDBs.
    fn on_pods(&mut self, batch: crate::store::InformerBatch) {
        let mut touched: HashMap<String, Vec<Arc<crate::store::Obj>>> = HashMap::new();
        for u in self.pods.apply_batch(batch) {
            let ns = u.key.namespace.clone();
            match &u.new {
                Some(new) => {
                    self.pods_by_ns.entry(ns.clone()).or_default().insert(u.key.clone(), new.clone());
                }
                None => {
                    if let Some(pods) = self.pods_by_ns.get_mut(&ns) {
                        pods.remove(&u.key);
                    }
                }
            }
            touched.entry(ns).or_default().extend([u.old, u.new].into_iter().flatten());
        }
        for pdb in self.pdbs.values() {
            let Some(pods) = touched.get(&pdb.key.namespace) else { continue };
            let selector = selector_of(&pdb.value());
            if pods.iter().any(|p| selector.matches_obj(p)) {
                self.dirty.insert(pdb.key.clone());
            }
        }
    }

    /// The scale of a pod's controller (ReplicaSet, or the Deployment owning it).
    fn controller_scale(&self, namespace: &str, owner: &Value) -> Result<Option<(String, i64)>, String> {
        let (kind, name, uid) = (
            owner["kind"].as_str().unwrap_or(""),
            owner["name"].as_str().unwrap_or(""),
            owner["uid"].as_str().unwrap_or("").to_string(),
        );
        match kind {
            "ReplicaSet" => {
                let Some(rs) = self.sets.get(&ObjKey::new(namespace, name)).filter(|r| r.uid() == uid) else {
                    return Ok(None);
                };
                if let Some(d) = podutil::controller_ref(&rs.value()).filter(|r| r["kind"] == "Deployment") {
                    let d_name = d["name"].as_str().unwrap_or("");
                    if let Some(dep) = self.deployments.get(&ObjKey::new(namespace, d_name)) {
                        return Ok(Some((
                            dep.uid().to_string(),
                            dep.value()["spec"]["replicas"].as_i64().unwrap_or(1),
                        )));
                    }
                }
                Ok(Some((uid, rs.value()["spec"]["replicas"].as_i64().unwrap_or(1))))
            }
            other => Err(format!("{other}/{name} does not implement the scale subresource")),
        }
    }

    fn reconcile(&mut self, key: &ObjKey) {
        let Some(pdb) = self.pdbs.get(key).cloned() else { return };
        let selector = selector_of(&pdb.value());
        let pods: Vec<Arc<crate::store::Obj>> = self
            .pods_by_ns
            .get(&key.namespace)
            .into_iter()
            .flat_map(|pods| pods.values())
            .filter(|p| selector.matches_obj(p))
            .cloned()
            .collect();
        let spec = &pdb.value()["spec"];
        let mut failure: Option<String> = None;
        let (expected, desired) = if !spec["maxUnavailable"].is_null() || spec["minAvailable"].is_string() {
            // Expected pods come from the controllers' scale.
            let mut controllers: HashMap<String, i64> = HashMap::new();
            for p in &pods {
                let value = p.value();
                let Some(owner) = podutil::controller_ref(&value) else { continue };
                match self.controller_scale(&key.namespace, owner) {
                    Ok(Some((uid, scale))) => {
                        controllers.insert(uid, scale);
                    }
                    Ok(None) => {}
                    Err(e) => failure = Some(e),
                }
            }
            let expected: i64 = controllers.values().sum();
            let desired = if !spec["maxUnavailable"].is_null() {
                (expected - scaled(&spec["maxUnavailable"], expected).unwrap_or(0)).max(0)
            } else {
                scaled(&spec["minAvailable"], expected).unwrap_or(0)
            };
            (expected, desired)
        } else if !spec["minAvailable"].is_null() {
            (pods.len() as i64, scaled(&spec["minAvailable"], 0).unwrap_or(0))
        } else {
            (0, 0)
        };
        let now = time::now();
        let timeout = self.sim.scale.scale(DELETION_TIMEOUT);
        let generation = pdb.value()["metadata"]["generation"].clone();
        let written = self.sim.registry.mutate(Kind::PodDisruptionBudget, key, Some(pdb.uid()), |v| {
            // The disruptions recorded are read from the budget as stored, not
            // as this controller last saw it: an eviction may just have
            // recorded one for a pod this controller still sees healthy.
            let recorded = v["status"]["disruptedPods"].as_object().cloned().unwrap_or_default();
            let mut disrupted = Map::new();
            for p in &pods {
                let Some(at) = recorded.get(&p.key.name).and_then(|v| v.as_str()) else { continue };
                if p.is_deleting() {
                    continue;
                }
                let expired = time::parse_time(at)
                    .and_then(|t| t.checked_add(timeout).ok())
                    .is_some_and(|deadline| deadline < now);
                if !expired {
                    disrupted.insert(p.key.name.clone(), json!(at));
                }
            }
            let healthy = pods
                .iter()
                .filter(|p| !p.is_deleting() && !disrupted.contains_key(&p.key.name) && p.is_ready())
                .count() as i64;
            let mut allowed = healthy - desired;
            if expected <= 0 || allowed < 0 || failure.is_some() {
                allowed = 0;
            }
            let (cond_status, reason, message) = match &failure {
                Some(e) => ("False", "SyncFailed", e.clone()),
                None if allowed > 0 => ("True", "SufficientPods", String::new()),
                None => ("False", "InsufficientPods", String::new()),
            };
            let st = &mut v["status"];
            st["currentHealthy"] = json!(healthy);
            st["desiredHealthy"] = json!(desired);
            st["expectedPods"] = json!(expected);
            st["disruptionsAllowed"] = json!(allowed);
            st["observedGeneration"] = generation.clone();
            if disrupted.is_empty() {
                st.as_object_mut().map(|m| m.remove("disruptedPods"));
            } else {
                st["disruptedPods"] = Value::Object(disrupted);
            }
            let mut condition = json!({
                "type": "DisruptionAllowed",
                "status": cond_status,
                "reason": reason,
                "message": message,
                "observedGeneration": generation,
                "lastTransitionTime": time::now_string(),
            });
            let existing =
                st["conditions"].as_array().and_then(|c| c.iter().find(|c| c["type"] == "DisruptionAllowed")).cloned();
            if let Some(e) = existing
                && e["status"] == cond_status
            {
                condition["lastTransitionTime"] = e["lastTransitionTime"].clone();
            }
            st["conditions"] = json!([condition]);
            Ok(())
        });
        if let Ok(Written::Updated(o)) = written {
            self.pdbs.note_written(&o);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Options;
    use crate::store::{InformerBatch, decodes_on_this_thread};
    use serde_json::json;

    /// A changed pod dirties the PDBs of its own namespace that select it,
    /// and no PDB of another namespace is even decoded: with 2,000 PDBs and
    /// 300,000 pods starting, comparing every PDB with every changed pod
    /// kept kubesim too busy to serve the daemon's scale run.
    #[test]
    fn a_pod_change_looks_only_at_its_namespaces_pdbs() {
        let sim = Sim::new(Options::fast());
        for ns in ["a", "b", "c"] {
            sim.registry.create(Kind::Namespace, None, json!({"metadata": {"name": ns}}), false).unwrap();
            for app in ["web", "db"] {
                let pdb = json!({"metadata": {"name": app, "namespace": ns},
                    "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": app}}}});
                sim.registry.create(Kind::PodDisruptionBudget, Some(ns), pdb, false).unwrap();
            }
        }
        let mut c = Controller {
            sim: sim.clone(),
            pdbs: ObjCache::default(),
            pods: ObjCache::default(),
            sets: ObjCache::default(),
            deployments: ObjCache::default(),
            pods_by_ns: HashMap::new(),
            dirty: HashSet::new(),
        };
        let (pdbs, _) = sim.store.list(Kind::PodDisruptionBudget, None);
        c.pdbs.apply_batch(InformerBatch::Resync(pdbs));
        let seen = sim.store.current_rv();
        let pod = json!({"metadata": {"name": "web-1", "namespace": "a", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": "app"}]}});
        sim.registry.create(Kind::Pod, Some("a"), pod, false).unwrap();
        let (changes, _) = sim.store.changes_since(Kind::Pod, seen, 100).unwrap();

        let before = decodes_on_this_thread();
        c.on_pods(InformerBatch::Changes(changes));
        assert_eq!(decodes_on_this_thread() - before, 2, "the two PDBs of namespace a, not the four of b and c");
        assert_eq!(c.dirty, HashSet::from([crate::store::ObjKey::new("a", "web")]));
        assert_eq!(c.pods_by_ns["a"].len(), 1);
    }
}
