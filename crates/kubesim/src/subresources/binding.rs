//! pods/binding: assigning a pending pod to a node (what the scheduler does).

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::registry::Registry;
use crate::resources::Kind;
use crate::sim::Sim;
use crate::store::{ObjKey, Written};
use crate::time;

/// Binds a pod to a node: sets spec.nodeName and PodScheduled=True.
pub fn bind_pod(registry: &Registry, key: &ObjKey, uid: Option<&str>, node: &str) -> Result<Written, ApiError> {
    registry.mutate(Kind::Pod, key, uid, |pod| {
        let current = pod["spec"]["nodeName"].as_str().unwrap_or("");
        if !current.is_empty() {
            return Err(ApiError::conflict(
                Kind::Pod,
                &key.name,
                &format!("pod {} is already assigned to node \"{current}\"", key.name),
            ));
        }
        if !pod["metadata"]["deletionTimestamp"].is_null() {
            return Err(ApiError::conflict(Kind::Pod, &key.name, "pod is being deleted, cannot be assigned to a host"));
        }
        pod["spec"]["nodeName"] = json!(node);
        set_condition(pod, "PodScheduled", "True", None, None);
        Ok(())
    })
}

/// Sets a pod condition, keeping lastTransitionTime when the status is unchanged.
pub fn set_condition(pod: &mut Value, kind: &str, status: &str, reason: Option<&str>, message: Option<&str>) {
    let now = time::now_string();
    let mut conditions = pod["status"]["conditions"].as_array().cloned().unwrap_or_default();
    let mut condition =
        json!({"type": kind, "status": status, "lastProbeTime": Value::Null, "lastTransitionTime": now});
    if let Some(r) = reason {
        condition["reason"] = json!(r);
    }
    if let Some(m) = message {
        condition["message"] = json!(m);
    }
    if let Some(existing) = conditions.iter_mut().find(|c| c["type"] == kind) {
        if existing["status"] == status {
            condition["lastTransitionTime"] = existing["lastTransitionTime"].clone();
        }
        *existing = condition;
    } else {
        conditions.push(condition);
    }
    pod["status"]["conditions"] = Value::Array(conditions);
}

pub fn remove_condition(pod: &mut Value, kind: &str) {
    if let Some(conditions) = pod["status"]["conditions"].as_array_mut() {
        conditions.retain(|c| c["type"] != kind);
    }
}

pub fn bind(sim: &Sim, key: &ObjKey, binding: &Value) -> Result<Value, ApiError> {
    if let Some(name) = binding["metadata"]["name"].as_str()
        && !name.is_empty()
        && name != key.name
    {
        return Err(ApiError::bad_request("name in URL does not match name in Binding object"));
    }
    let node = binding["target"]["name"].as_str().unwrap_or("");
    if node.is_empty() {
        return Err(ApiError::invalid(
            Kind::Pod,
            &key.name,
            &[crate::error::Cause { reason: "FieldValueRequired", message: "Required value", field: "target.name" }],
        ));
    }
    let uid = binding["metadata"]["uid"].as_str().filter(|u| !u.is_empty());
    let bound = bind_pod(&sim.registry, key, uid, node)?;
    if bound.object().is_none() {
        return Err(ApiError::not_found(Kind::Pod, &key.name));
    }
    Ok(crate::error::success_status(201, None))
}
