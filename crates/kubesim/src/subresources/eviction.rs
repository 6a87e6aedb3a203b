//! pods/eviction: deletion that honours PodDisruptionBudgets exactly as the
//! API server does (including its quirks: a pod matched by two budgets is a
//! 500, a budget the controller has not observed yet is a 429).

use serde_json::{Value, json};

use crate::error::{ApiError, success_status};
use crate::kinds::Sub;
use crate::podutil;
use crate::registry::DeleteOptions;
use crate::resources::Kind;
use crate::selectors::LabelSelector;
use crate::sim::Sim;
use crate::store::{Obj, ObjKey};
use crate::time;

/// More entries than this in status.disruptedPods means the controller is not keeping up.
const MAX_DISRUPTED_PODS: usize = 2000;

const BLOCKED: &str = "Cannot evict pod as it would violate the pod's disruption budget.";

fn blocked(cause: String) -> ApiError {
    ApiError::too_many_requests(BLOCKED, None).with_causes(json!([{"reason": "DisruptionBudget", "message": cause}]))
}

/// A pod whose eviction cannot disrupt anything: not running yet, done, or already going.
fn can_ignore_pdb(pod: &Value) -> bool {
    matches!(podutil::phase(pod), "Succeeded" | "Failed" | "Pending") || podutil::is_deleting(pod)
}

/// Budgets whose selector matches the pod. An empty or null selector matches
/// nothing here (unlike in the disruption controller), as in the API server.
fn matching_pdbs(sim: &Sim, pod: &Obj) -> Vec<std::sync::Arc<Obj>> {
    let (pdbs, _) = sim.store.list(Kind::PodDisruptionBudget, Some(&pod.key.namespace));
    pdbs.into_iter()
        .filter(|pdb| {
            LabelSelector::from_json(&pdb.value()["spec"]["selector"], LabelSelector::nothing())
                .is_ok_and(|s| !s.is_everything() && s.matches_obj(pod))
        })
        .collect()
}

pub fn evict(sim: &Sim, key: &ObjKey, eviction: &Value, dry_run: bool) -> Result<Value, ApiError> {
    if let Some(name) = eviction["metadata"]["name"].as_str()
        && !name.is_empty()
        && name != key.name
    {
        return Err(ApiError::bad_request("name in URL does not match name in Eviction object"));
    }
    let mut opts = DeleteOptions::from_json(&eviction["deleteOptions"]);
    opts.dry_run |= dry_run;
    let pod = sim.registry.get(Kind::Pod, key)?;
    if opts.precondition_uid.is_none() {
        opts.precondition_uid = Some(pod.uid().to_string());
    }
    if can_ignore_pdb(&pod.value()) {
        return delete(sim, key, &opts);
    }
    let pdbs = matching_pdbs(sim, &pod);
    if pdbs.len() > 1 {
        return Err(ApiError::internal(
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
        ));
    }
    let Some(pdb) = pdbs.into_iter().next() else { return delete(sim, key, &opts) };
    let pdb_value = pdb.value();
    let status = &pdb_value["status"];
    if !pod.is_ready() {
        let policy = pdb_value["spec"]["unhealthyPodEvictionPolicy"].as_str().unwrap_or("IfHealthyBudget");
        let healthy = status["currentHealthy"].as_i64().unwrap_or(0);
        let desired = status["desiredHealthy"].as_i64().unwrap_or(0);
        if policy == "AlwaysAllow" || (healthy >= desired && desired > 0) {
            return delete(sim, key, &opts);
        }
    }
    let pod_name = key.name.clone();
    sim.registry.update_with(Kind::PodDisruptionBudget, &pdb.key, Sub::Status, opts.dry_run, |current| {
        let name = current["metadata"]["name"].as_str().unwrap_or("");
        let status = &current["status"];
        let observed = status["observedGeneration"].as_i64().unwrap_or(0);
        let generation = current["metadata"]["generation"].as_i64().unwrap_or(0);
        if observed < generation {
            return Err(blocked(format!("The disruption budget {name} is still being processed by the server.")));
        }
        let allowed = status["disruptionsAllowed"].as_i64().unwrap_or(0);
        if allowed < 0 {
            return Err(ApiError::forbidden("pdb disruptions allowed is negative"));
        }
        if status["disruptedPods"].as_object().is_some_and(|m| m.len() > MAX_DISRUPTED_PODS) {
            return Err(ApiError::forbidden(
                "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
            ));
        }
        if allowed == 0 {
            return Err(blocked(format!(
                "The disruption budget {name} needs {} healthy pods and has {} currently",
                status["desiredHealthy"].as_i64().unwrap_or(0),
                status["currentHealthy"].as_i64().unwrap_or(0)
            )));
        }
        let mut next = current.clone();
        next["status"]["disruptionsAllowed"] = json!(allowed - 1);
        next["status"]["disruptedPods"][&pod_name] = json!(time::now_string());
        Ok(next)
    })?;
    delete(sim, key, &opts)
}

fn delete(sim: &Sim, key: &ObjKey, opts: &DeleteOptions) -> Result<Value, ApiError> {
    sim.registry.delete(Kind::Pod, key, opts)?;
    Ok(success_status(201, None))
}
