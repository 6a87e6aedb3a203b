//! The kubelet side of in-place resize: admitting a new allocation
//! (Infeasible / Deferred / accepted), then actuating it.

use serde_json::{Value, json};

use super::status::{container_status_mut, cpu_memory};
use crate::kinds::pod_requests_from_spec;

/// Whether the desired spec's cpu/memory differ from the allocated spec's.
pub fn differs(desired: &Value, allocated: &Value) -> bool {
    for list in ["containers", "initContainers"] {
        let desired = desired[list].as_array().cloned().unwrap_or_default();
        for c in desired {
            let a = allocated[list].as_array().and_then(|a| a.iter().find(|x| x["name"] == c["name"]));
            let a = a.map(|a| cpu_memory(&a["resources"])).unwrap_or_else(|| json!({}));
            if cpu_memory(&c["resources"]) != a {
                return true;
            }
        }
    }
    false
}

/// Node capacity as the kubelet sees it (allocatable).
#[derive(Clone, Copy, Debug, Default)]
pub struct Capacity {
    pub cpu: i64,
    pub mem: i64,
    pub pods: i64,
}

/// Resources admitted pods hold.
#[derive(Clone, Copy, Debug, Default)]
pub struct Used {
    pub cpu: i64,
    pub mem: i64,
    pub pods: i64,
}

pub enum Verdict {
    Fits,
    /// (reason, message) for PodResizePending.
    Pending(&'static str, String),
}

/// canResizePod: infeasible if the pod cannot fit the node at all, deferred
/// if it does not fit next to the other admitted pods.
pub fn judge(desired_spec: &Value, capacity: Capacity, others: Used) -> Verdict {
    let (cpu, mem) = pod_requests_from_spec(desired_spec);
    if cpu > capacity.cpu || mem > capacity.mem {
        let msg = if mem > capacity.mem {
            format!("memory, requested: {mem}, capacity: {}", capacity.mem)
        } else {
            format!("cpu, requested: {cpu}, capacity: {}", capacity.cpu)
        };
        return Verdict::Pending("Infeasible", format!("Node didn't have enough capacity: {msg}"));
    }
    if let Some(msg) = admission_shortfall(cpu, mem, capacity, others, false) {
        return Verdict::Pending("Deferred", msg);
    }
    Verdict::Fits
}

/// The kubelet admission message for the first insufficient resource, if any.
pub fn admission_shortfall(cpu: i64, mem: i64, capacity: Capacity, others: Used, new_pod: bool) -> Option<String> {
    let fmt = |r: &str, req: i64, used: i64, cap: i64| {
        format!("Node didn't have enough resource: {r}, requested: {req}, used: {used}, capacity: {cap}")
    };
    if new_pod && others.pods + 1 > capacity.pods {
        return Some(fmt("pods", 1, others.pods, capacity.pods));
    }
    if cpu > 0 && others.cpu + cpu > capacity.cpu {
        return Some(fmt("cpu", cpu, others.cpu, capacity.cpu));
    }
    if mem > 0 && others.mem + mem > capacity.mem {
        return Some(fmt("memory", mem, others.mem, capacity.mem));
    }
    None
}

/// Records an accepted allocation in the container statuses.
pub fn record_allocation(pod: &mut Value, allocated_spec: &Value) {
    for c in allocated_spec["containers"].as_array().cloned().unwrap_or_default() {
        let name = c["name"].as_str().unwrap_or("").to_string();
        if let Some(s) = container_status_mut(pod, &name) {
            let requests = cpu_memory(&c["resources"]).get("requests").cloned().unwrap_or_else(|| json!({}));
            s["allocatedResources"] = requests;
        }
    }
}

/// Resources whose change needs a container restart under its resizePolicy.
pub fn needs_restart(container: &Value, old: &Value, new: &Value) -> bool {
    ["cpu", "memory"].iter().any(|res| {
        let changed = ["requests", "limits"].iter().any(|f| old[f][res] != new[f][res]);
        let policy = container["resizePolicy"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["resourceName"] == *res))
            .and_then(|p| p["restartPolicy"].as_str())
            .unwrap_or("NotRequired");
        changed && policy == "RestartContainer"
    })
}
