//! The pod status a kubelet reports: container statuses, conditions, IPs.

use rand::Rng;
use serde_json::{Map, Value, json};

use crate::quantity;
use crate::subresources::binding::set_condition;

/// The cpu/memory part of a container's resources (what resize manages).
pub fn cpu_memory(resources: &Value) -> Value {
    let mut out = Map::new();
    for field in ["requests", "limits"] {
        let mut m = Map::new();
        for res in ["cpu", "memory"] {
            if let Some(v) = resources[field].get(res).filter(|v| !v.is_null()) {
                m.insert(res.to_string(), v.clone());
            }
        }
        if !m.is_empty() {
            out.insert(field.to_string(), Value::Object(m));
        }
    }
    Value::Object(out)
}

pub fn container_id() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("containerd://{hex}")
}

fn image_id(image: &str) -> String {
    let h1 = crate::ids::fnv32a(image.as_bytes());
    let digest: String = (0..8u32).map(|i| format!("{:08x}", h1.wrapping_mul(i * 2 + 1).rotate_left(i))).collect();
    let repo = image.split(':').next().unwrap_or(image);
    format!("{repo}@sha256:{digest}")
}

pub fn memory_limit(container: &Value) -> Option<u64> {
    container["resources"]["limits"]["memory"].as_str().and_then(quantity::whole_units).map(|b| b.max(0) as u64)
}

fn running_container(c: &Value, now: &str) -> Value {
    let resources = cpu_memory(&c["resources"]);
    let image = c["image"].as_str().unwrap_or("");
    json!({
        "name": c["name"],
        "image": image,
        "imageID": image_id(image),
        "containerID": container_id(),
        "ready": true,
        "started": true,
        "restartCount": 0,
        "state": {"running": {"startedAt": now}},
        "lastState": {},
        "resources": resources,
        "allocatedResources": resources.get("requests").cloned().unwrap_or_else(|| json!({})),
    })
}

fn completed_init(c: &Value, now: &str) -> Value {
    let image = c["image"].as_str().unwrap_or("");
    json!({
        "name": c["name"],
        "image": image,
        "imageID": image_id(image),
        "containerID": container_id(),
        "ready": true,
        "started": false,
        "restartCount": 0,
        "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}},
        "lastState": {},
    })
}

/// Turns a bound pod's status into Running + Ready.
pub fn set_running(pod: &mut Value, host_ip: &str, pod_ip: &str, now: &str) {
    let containers: Vec<Value> =
        pod["spec"]["containers"].as_array().into_iter().flatten().map(|c| running_container(c, now)).collect();
    let inits: Vec<Value> = pod["spec"]["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| if c["restartPolicy"] == "Always" { running_container(c, now) } else { completed_init(c, now) })
        .collect();
    let generation = pod["metadata"]["generation"].clone();
    let status = &mut pod["status"];
    status["phase"] = json!("Running");
    status["hostIP"] = json!(host_ip);
    status["hostIPs"] = json!([{"ip": host_ip}]);
    status["podIP"] = json!(pod_ip);
    status["podIPs"] = json!([{"ip": pod_ip}]);
    status["startTime"] = json!(now);
    status["containerStatuses"] = Value::Array(containers);
    if !inits.is_empty() {
        status["initContainerStatuses"] = Value::Array(inits);
    }
    status["observedGeneration"] = generation;
    for kind in ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady"] {
        set_condition(pod, kind, "True", None, None);
    }
}

/// Marks readiness from the container statuses (all ready → Ready).
pub fn refresh_readiness(pod: &mut Value) {
    let statuses = pod["status"]["containerStatuses"].as_array().cloned().unwrap_or_default();
    let unready: Vec<String> =
        statuses.iter().filter(|s| s["ready"] != true).filter_map(|s| s["name"].as_str().map(str::to_string)).collect();
    if unready.is_empty() {
        set_condition(pod, "Ready", "True", None, None);
        set_condition(pod, "ContainersReady", "True", None, None);
    } else {
        let msg = format!("containers with unready status: [{}]", unready.join(" "));
        set_condition(pod, "Ready", "False", Some("ContainersNotReady"), Some(&msg));
        set_condition(pod, "ContainersReady", "False", Some("ContainersNotReady"), Some(&msg));
    }
}

/// Every container terminated with `reason` (graceful shutdown on deletion).
pub fn set_terminated(pod: &mut Value, now: &str) {
    if let Some(statuses) = pod["status"]["containerStatuses"].as_array_mut() {
        for s in statuses {
            let started = s["state"]["running"]["startedAt"].clone();
            s["state"] = json!({"terminated": {
                "exitCode": 0, "reason": "Completed", "startedAt": started, "finishedAt": now,
                "containerID": s["containerID"],
            }});
            s["ready"] = json!(false);
            s["started"] = json!(false);
        }
    }
    pod["status"]["phase"] = json!("Succeeded");
    set_condition(pod, "Ready", "False", Some("PodCompleted"), None);
    set_condition(pod, "ContainersReady", "False", Some("PodCompleted"), None);
    set_condition(pod, "PodReadyToStartContainers", "False", None, None);
}

pub fn container_status_mut<'a>(pod: &'a mut Value, name: &str) -> Option<&'a mut Value> {
    pod["status"]["containerStatuses"].as_array_mut()?.iter_mut().find(|s| s["name"] == name)
}
