//! Pod defaulting and validation: immutable spec, resize rules, QoS.

use serde_json::{Value, json};

use crate::error::{ApiError, Cause};
use crate::quantity::{self, Quantity};
use crate::resources::Kind;

const CONTAINER_LISTS: [&str; 2] = ["initContainers", "containers"];

pub fn apply_defaults(pod: &mut Value) {
    default_pod_spec(&mut pod["spec"]);
    canonicalize(pod);
}

pub fn prepare_create(pod: &mut Value) {
    apply_defaults(pod);
    let qos = pod_qos(&pod["spec"]);
    pod["status"] = json!({"phase": "Pending", "qosClass": qos});
    pod["metadata"]["generation"] = json!(1);
}

/// PodSpec defaults the API server applies (also to workload templates).
pub fn default_pod_spec(spec: &mut Value) {
    let defaults = [
        ("restartPolicy", json!("Always")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("dnsPolicy", json!("ClusterFirst")),
        ("securityContext", json!({})),
        ("schedulerName", json!("default-scheduler")),
        ("enableServiceLinks", json!(true)),
        ("priority", json!(0)),
        ("preemptionPolicy", json!("PreemptLowerPriority")),
    ];
    for (k, v) in defaults {
        if spec[k].is_null() {
            spec[k] = v;
        }
    }
    for list in CONTAINER_LISTS {
        if let Some(containers) = spec[list].as_array_mut() {
            for c in containers {
                default_container(c);
            }
        }
    }
    // DefaultTolerationSeconds admission.
    let tolerations = spec["tolerations"].as_array().cloned().unwrap_or_default();
    let mut tolerations = tolerations;
    for key in ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"] {
        let present = tolerations.iter().any(|t| {
            (t["key"] == key || (t["key"].is_null() && t["operator"] == "Exists"))
                && (t["effect"].is_null() || t["effect"] == "NoExecute")
        });
        if !present {
            tolerations
                .push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
        }
    }
    spec["tolerations"] = Value::Array(tolerations);
}

fn default_container(c: &mut Value) {
    if c["imagePullPolicy"].is_null() {
        let image = c["image"].as_str().unwrap_or("");
        let tag = image.rsplit('/').next().and_then(|last| last.split_once(':')).map(|(_, t)| t);
        let policy = if tag.is_none_or(|t| t == "latest") { "Always" } else { "IfNotPresent" };
        c["imagePullPolicy"] = json!(policy);
    }
    if c["terminationMessagePath"].is_null() {
        c["terminationMessagePath"] = json!("/dev/termination-log");
    }
    if c["terminationMessagePolicy"].is_null() {
        c["terminationMessagePolicy"] = json!("File");
    }
    if c["resources"].is_null() {
        c["resources"] = json!({});
    }
    // Requests default to limits when only limits are given.
    if let Some(limits) = c["resources"]["limits"].as_object().cloned() {
        for (name, value) in limits {
            if c["resources"]["requests"][&name].is_null() {
                c["resources"]["requests"][&name] = value;
            }
        }
    }
}

/// Canonical quantities in container resources, like a round trip through the API.
pub fn canonicalize(pod: &mut Value) {
    for list in CONTAINER_LISTS {
        if let Some(containers) = pod["spec"][list].as_array_mut() {
            for c in containers {
                for field in ["requests", "limits"] {
                    quantity::canonicalize_map(&mut c["resources"][field]);
                }
            }
        }
    }
    if let Some(statuses) = pod["status"]["containerStatuses"].as_array_mut() {
        for s in statuses {
            quantity::canonicalize_map(&mut s["allocatedResources"]);
            for field in ["requests", "limits"] {
                quantity::canonicalize_map(&mut s["resources"][field]);
            }
        }
    }
}

fn quantity_of(resources: &Value, field: &str, name: &str) -> Option<Quantity> {
    resources[field][name].as_str().and_then(Quantity::parse)
}

/// The pod's QoS class from its spec (Guaranteed, Burstable, BestEffort).
pub fn pod_qos(spec: &Value) -> &'static str {
    let mut any = false;
    let mut guaranteed = true;
    for list in CONTAINER_LISTS {
        for c in spec[list].as_array().into_iter().flatten() {
            let r = &c["resources"];
            for field in ["requests", "limits"] {
                if r[field].as_object().is_some_and(|m| m.keys().any(|k| k == "cpu" || k == "memory")) {
                    any = true;
                }
            }
            for name in ["cpu", "memory"] {
                let (req, lim) = (quantity_of(r, "requests", name), quantity_of(r, "limits", name));
                match (req, lim) {
                    (Some(req), Some(lim)) if req.nanos == lim.nanos => {}
                    (None, Some(_)) => {}
                    _ => guaranteed = false,
                }
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// Effective pod requests (cpu millicores, memory bytes) from a spec: the sum
/// of app containers and sidecars, or the largest init container if bigger,
/// plus pod overhead — the scheduler's and kubelet's formula.
pub fn pod_requests_from_spec(spec: &Value) -> (i64, i64) {
    let req = |c: &Value, name: &str| quantity_of(&c["resources"], "requests", name);
    let cpu = |c: &Value| req(c, "cpu").map(|q| q.millis()).unwrap_or(0);
    let mem = |c: &Value| req(c, "memory").map(|q| q.value()).unwrap_or(0);
    let (mut sum_cpu, mut sum_mem) = (0, 0);
    for c in spec["containers"].as_array().into_iter().flatten() {
        sum_cpu += cpu(c);
        sum_mem += mem(c);
    }
    let (mut init_cpu, mut init_mem, mut sidecar_cpu, mut sidecar_mem) = (0, 0, 0, 0);
    for c in spec["initContainers"].as_array().into_iter().flatten() {
        if c["restartPolicy"] == "Always" {
            sidecar_cpu += cpu(c);
            sidecar_mem += mem(c);
        } else {
            init_cpu = init_cpu.max(cpu(c) + sidecar_cpu);
            init_mem = init_mem.max(mem(c) + sidecar_mem);
        }
    }
    let overhead = &spec["overhead"];
    let oc = overhead["cpu"].as_str().and_then(quantity::cpu_millis).unwrap_or(0);
    let om = overhead["memory"].as_str().and_then(quantity::whole_units).unwrap_or(0);
    ((sum_cpu + sidecar_cpu).max(init_cpu) + oc, (sum_mem + sidecar_mem).max(init_mem) + om)
}

fn invalid(name: &str, field: &str, reason: &str, message: &str) -> ApiError {
    ApiError::invalid(Kind::Pod, name, &[Cause { reason, message, field }])
}

pub fn validate(pod: &Value, name: &str) -> Result<(), ApiError> {
    let spec = &pod["spec"];
    let containers = spec["containers"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if containers.is_empty() {
        return Err(invalid(name, "spec.containers", "FieldValueRequired", "Required value"));
    }
    let mut names = std::collections::BTreeSet::new();
    for list in CONTAINER_LISTS {
        for (i, c) in spec[list].as_array().into_iter().flatten().enumerate() {
            let path = format!("spec.{list}[{i}]");
            let cname = c["name"].as_str().unwrap_or("");
            if cname.is_empty() {
                return Err(invalid(name, &format!("{path}.name"), "FieldValueRequired", "Required value"));
            }
            if !names.insert(cname.to_string()) {
                return Err(invalid(
                    name,
                    &format!("{path}.name"),
                    "FieldValueDuplicate",
                    &format!("Duplicate value: \"{cname}\""),
                ));
            }
            if c["image"].as_str().unwrap_or("").is_empty() {
                return Err(invalid(name, &format!("{path}.image"), "FieldValueRequired", "Required value"));
            }
            validate_resources(&c["resources"], &format!("{path}.resources"), name)?;
        }
    }
    Ok(())
}

fn validate_resources(r: &Value, path: &str, name: &str) -> Result<(), ApiError> {
    for field in ["requests", "limits"] {
        for (k, v) in r[field].as_object().into_iter().flatten() {
            let text = v.as_str().unwrap_or("");
            match Quantity::parse(text) {
                None => {
                    return Err(invalid(
                        name,
                        &format!("{path}.{field}[{k}]"),
                        "FieldValueInvalid",
                        &format!("Invalid value: \"{text}\": must be a valid quantity"),
                    ));
                }
                Some(q) if q.nanos < 0 => {
                    return Err(invalid(
                        name,
                        &format!("{path}.{field}[{k}]"),
                        "FieldValueInvalid",
                        &format!("Invalid value: \"{text}\": must be greater than or equal to 0"),
                    ));
                }
                _ => {}
            }
        }
    }
    for (k, v) in r["requests"].as_object().into_iter().flatten() {
        if let (Some(req), Some(lim)) = (v.as_str().and_then(Quantity::parse), quantity_of(r, "limits", k))
            && req.nanos > lim.nanos
        {
            return Err(invalid(
                name,
                &format!("{path}.requests"),
                "FieldValueInvalid",
                &format!(
                    "Invalid value: \"{}\": must be less than or equal to {k} limit of {}",
                    v.as_str().unwrap_or(""),
                    lim.canonical()
                ),
            ));
        }
    }
    Ok(())
}

const SPEC_UPDATE_FORBIDDEN: &str = "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// A pod's spec is immutable apart from images, activeDeadlineSeconds,
/// added tolerations and removed scheduling gates; resources change only
/// through pods/resize, the node only through pods/binding.
pub fn validate_spec_update(new: &Value, old: &Value, name: &str) -> Result<(), ApiError> {
    let mask = |spec: &Value| {
        let mut s = spec.clone();
        for list in CONTAINER_LISTS {
            if let Some(cs) = s[list].as_array_mut() {
                for c in cs {
                    c.as_object_mut().map(|m| m.remove("image"));
                }
            }
        }
        if let Some(m) = s.as_object_mut() {
            for f in ["activeDeadlineSeconds", "tolerations", "schedulingGates", "terminationGracePeriodSeconds"] {
                m.remove(f);
            }
        }
        s
    };
    if mask(&new["spec"]) != mask(&old["spec"]) {
        return Err(invalid(name, "spec", "FieldValueForbidden", SPEC_UPDATE_FORBIDDEN));
    }
    let old_tolerations = old["spec"]["tolerations"].as_array().cloned().unwrap_or_default();
    let new_tolerations = new["spec"]["tolerations"].as_array().cloned().unwrap_or_default();
    if old_tolerations.iter().any(|t| !new_tolerations.contains(t)) {
        return Err(invalid(
            name,
            "spec.tolerations",
            "FieldValueForbidden",
            "Forbidden: existing toleration can not be modified except its tolerationSeconds",
        ));
    }
    let old_gates = old["spec"]["schedulingGates"].as_array().cloned().unwrap_or_default();
    let new_gates = new["spec"]["schedulingGates"].as_array().cloned().unwrap_or_default();
    if new_gates.iter().any(|g| !old_gates.contains(g)) {
        return Err(invalid(
            name,
            "spec.schedulingGates",
            "FieldValueForbidden",
            "Forbidden: only deletion is allowed, but found new scheduling gate",
        ));
    }
    Ok(())
}

/// pods/resize keeps everything of the old pod except container resources and
/// resize policies (the API server silently drops other changes).
pub fn keep_only_resize(new: &mut Value, old: &Value) {
    let mut merged = old.clone();
    for list in CONTAINER_LISTS {
        let Some(containers) = merged["spec"][list].as_array_mut() else { continue };
        for c in containers {
            let cname = c["name"].clone();
            let updated = new["spec"][list].as_array().and_then(|a| a.iter().find(|n| n["name"] == cname));
            if let Some(u) = updated {
                c["resources"] = u["resources"].clone();
                if !u["resizePolicy"].is_null() {
                    c["resizePolicy"] = u["resizePolicy"].clone();
                }
            }
        }
    }
    if let Some(rv) = new["metadata"].get("resourceVersion") {
        merged["metadata"]["resourceVersion"] = rv.clone();
    }
    *new = merged;
}

pub fn validate_resize(new: &Value, old: &Value, name: &str) -> Result<(), ApiError> {
    validate(new, name)?;
    for list in CONTAINER_LISTS {
        for (i, c) in new["spec"][list].as_array().into_iter().flatten().enumerate() {
            let old_c = &old["spec"][list][i];
            for field in ["requests", "limits"] {
                let keys = |v: &Value| -> Vec<String> {
                    v["resources"][field].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
                };
                let (nk, ok) = (keys(c), keys(old_c));
                let changed_other = nk
                    .iter()
                    .chain(ok.iter())
                    .any(|k| k != "cpu" && k != "memory" && c["resources"][field][k] != old_c["resources"][field][k]);
                if changed_other {
                    return Err(invalid(
                        name,
                        "spec",
                        "FieldValueForbidden",
                        "Forbidden: only cpu and memory resources are mutable",
                    ));
                }
                for k in ["cpu", "memory"] {
                    if !old_c["resources"][field][k].is_null() && c["resources"][field][k].is_null() {
                        return Err(invalid(
                            name,
                            &format!("spec.{list}[{i}].resources.{field}[{k}]"),
                            "FieldValueForbidden",
                            &format!("Forbidden: resource {field} for {k} cannot be removed"),
                        ));
                    }
                }
            }
            if list == "initContainers" && c["restartPolicy"] != "Always" && c["resources"] != old_c["resources"] {
                return Err(invalid(
                    name,
                    &format!("spec.initContainers[{i}].resources"),
                    "FieldValueForbidden",
                    "Forbidden: resources for non-sidecar init containers are immutable",
                ));
            }
        }
    }
    let (old_qos, new_qos) = (pod_qos(&old["spec"]), pod_qos(&new["spec"]));
    if old_qos != new_qos {
        return Err(invalid(
            name,
            "spec",
            "FieldValueInvalid",
            &format!("Invalid value: \"{new_qos}\": Pod QOS Class may not change as a result of resizing"),
        ));
    }
    Ok(())
}
