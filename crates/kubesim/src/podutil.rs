//! Small predicates on pod (and owner) JSON shared by controllers and subresources.

use serde_json::Value;

pub fn phase(pod: &Value) -> &str {
    pod["status"]["phase"].as_str().unwrap_or("")
}

pub fn is_terminal(pod: &Value) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

pub fn is_deleting(obj: &Value) -> bool {
    !obj["metadata"]["deletionTimestamp"].is_null()
}

pub fn node_name(pod: &Value) -> &str {
    pod["spec"]["nodeName"].as_str().unwrap_or("")
}

pub fn condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a Value> {
    obj["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == kind)
}

pub fn condition_true(obj: &Value, kind: &str) -> bool {
    condition(obj, kind).is_some_and(|c| c["status"] == "True")
}

pub fn is_ready(pod: &Value) -> bool {
    condition_true(pod, "Ready")
}

/// The ownerReference with controller=true, if any.
pub fn controller_ref(obj: &Value) -> Option<&Value> {
    obj["metadata"]["ownerReferences"].as_array()?.iter().find(|r| r["controller"] == true)
}

/// Active in the controllers' sense: not terminal and not being deleted.
pub fn is_active(pod: &Value) -> bool {
    !is_terminal(pod) && !is_deleting(pod)
}

/// The requests a node has to account for a pod (cpu millicores, memory
/// bytes). While an in-place resize is pending or in progress this is the
/// larger of desired (spec) and actual (status) per container — except for an
/// infeasible resize, where only the actual resources count — as the
/// scheduler does.
pub fn effective_requests(pod: &Value) -> (i64, i64) {
    let statuses = pod["status"]["containerStatuses"].as_array();
    let Some(statuses) = statuses.filter(|s| s.iter().any(|c| !c["resources"].is_null())) else {
        return crate::kinds::pod_requests_from_spec(&pod["spec"]);
    };
    let infeasible = condition(pod, "PodResizePending").is_some_and(|c| c["reason"] == "Infeasible");
    let mut spec = pod["spec"].clone();
    if let Some(containers) = spec["containers"].as_array_mut() {
        for c in containers {
            let Some(actual) = statuses.iter().find(|s| s["name"] == c["name"]).map(|s| &s["resources"]["requests"])
            else {
                continue;
            };
            if actual.is_null() {
                continue;
            }
            for res in ["cpu", "memory"] {
                let parse = |v: &Value| -> i64 {
                    let text = v.as_str().unwrap_or("");
                    if res == "cpu" {
                        crate::quantity::cpu_millis(text).unwrap_or(0)
                    } else {
                        crate::quantity::whole_units(text).unwrap_or(0)
                    }
                };
                let desired = &c["resources"]["requests"][res];
                let chosen = if infeasible || parse(&actual[res]) > parse(desired) {
                    actual[res].clone()
                } else {
                    desired.clone()
                };
                if !chosen.is_null() {
                    c["resources"]["requests"][res] = chosen;
                }
            }
        }
    }
    crate::kinds::pod_requests_from_spec(&spec)
}

/// Whether a toleration tolerates a taint (key, value, effect), by the API rules.
pub fn tolerates(toleration: &Value, key: &str, value: &str, effect: &str) -> bool {
    let t_effect = toleration["effect"].as_str().unwrap_or("");
    if !t_effect.is_empty() && t_effect != effect {
        return false;
    }
    let t_key = toleration["key"].as_str().unwrap_or("");
    let op = toleration["operator"].as_str().unwrap_or("Equal");
    if t_key.is_empty() {
        return op == "Exists";
    }
    if t_key != key {
        return false;
    }
    match op {
        "Exists" => true,
        _ => toleration["value"].as_str().unwrap_or("") == value,
    }
}
