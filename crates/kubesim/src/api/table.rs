//! Server-side printing (`meta.k8s.io` Table), which `kubectl get` asks for:
//! the same columns and cell formats as the API server's printers.

use serde_json::{Value, json};

use crate::resources::{ApiResource, Kind};
use crate::time;

/// What rows carry in `object` (the `includeObject` query parameter).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Include {
    None,
    Metadata,
    Object,
}

impl Include {
    pub fn parse(v: Option<&str>) -> Include {
        match v {
            Some("None") => Include::None,
            Some("Object") => Include::Object,
            _ => Include::Metadata,
        }
    }
}

struct Col(&'static str, &'static str, u8);

fn columns(kind: Kind) -> Vec<Col> {
    match kind {
        Kind::Pod => vec![
            Col("Name", "name", 0),
            Col("Ready", "", 0),
            Col("Status", "", 0),
            Col("Restarts", "", 0),
            Col("Age", "", 0),
            Col("IP", "", 1),
            Col("Node", "", 1),
            Col("Nominated Node", "", 1),
            Col("Readiness Gates", "", 1),
        ],
        Kind::Node => vec![
            Col("Name", "name", 0),
            Col("Status", "", 0),
            Col("Roles", "", 0),
            Col("Age", "", 0),
            Col("Version", "", 0),
            Col("Internal-IP", "", 1),
            Col("External-IP", "", 1),
            Col("OS-Image", "", 1),
            Col("Kernel-Version", "", 1),
            Col("Container-Runtime", "", 1),
        ],
        Kind::Namespace => vec![Col("Name", "name", 0), Col("Status", "", 0), Col("Age", "", 0)],
        Kind::Deployment => vec![
            Col("Name", "name", 0),
            Col("Ready", "", 0),
            Col("Up-to-date", "", 0),
            Col("Available", "", 0),
            Col("Age", "", 0),
            Col("Containers", "", 1),
            Col("Images", "", 1),
            Col("Selector", "", 1),
        ],
        Kind::ReplicaSet => vec![
            Col("Name", "name", 0),
            Col("Desired", "", 0),
            Col("Current", "", 0),
            Col("Ready", "", 0),
            Col("Age", "", 0),
            Col("Containers", "", 1),
            Col("Images", "", 1),
            Col("Selector", "", 1),
        ],
        Kind::DaemonSet => vec![
            Col("Name", "name", 0),
            Col("Desired", "", 0),
            Col("Current", "", 0),
            Col("Ready", "", 0),
            Col("Up-to-date", "", 0),
            Col("Available", "", 0),
            Col("Node Selector", "", 0),
            Col("Age", "", 0),
        ],
        Kind::PodDisruptionBudget => vec![
            Col("Name", "name", 0),
            Col("Min Available", "", 0),
            Col("Max Unavailable", "", 0),
            Col("Allowed Disruptions", "", 0),
            Col("Age", "", 0),
        ],
        Kind::Event => vec![
            Col("Last Seen", "", 0),
            Col("Type", "", 0),
            Col("Reason", "", 0),
            Col("Object", "", 0),
            Col("Subobject", "", 1),
            Col("Source", "", 1),
            Col("Message", "", 0),
            Col("First Seen", "", 1),
            Col("Count", "", 1),
            Col("Name", "name", 1),
        ],
        Kind::Lease => vec![Col("Name", "name", 0), Col("Holder", "", 0), Col("Age", "", 0)],
        // No additionalPrinterColumns in VPA's CRD: what kubectl shows for any such CR.
        Kind::VerticalPodAutoscalerCheckpoint => vec![Col("Name", "name", 0), Col("Age", "", 0)],
        Kind::VerticalPodAutoscaler => vec![
            Col("Name", "name", 0),
            Col("Mode", "", 0),
            Col("CPU", "", 0),
            Col("Mem", "", 0),
            Col("Provided", "", 0),
            Col("Age", "", 0),
        ],
    }
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn or_none(text: String) -> String {
    if text.is_empty() { "<none>".to_string() } else { text }
}

fn age(obj: &Value) -> String {
    time::age(obj["metadata"]["creationTimestamp"].as_str())
}

fn cells(kind: Kind, obj: &Value) -> Vec<Value> {
    let name = json!(obj["metadata"]["name"]);
    match kind {
        Kind::Pod => pod_cells(obj),
        Kind::Node => node_cells(obj),
        Kind::Namespace => vec![name, json!(s(&obj["status"]["phase"])), json!(age(obj))],
        Kind::Deployment => {
            let st = &obj["status"];
            let (containers, images) = containers_and_images(obj);
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    st["readyReplicas"].as_i64().unwrap_or(0),
                    obj["spec"]["replicas"].as_i64().unwrap_or(0)
                )),
                json!(st["updatedReplicas"].as_i64().unwrap_or(0)),
                json!(st["availableReplicas"].as_i64().unwrap_or(0)),
                json!(age(obj)),
                json!(containers),
                json!(images),
                json!(selector_text(&obj["spec"]["selector"])),
            ]
        }
        Kind::ReplicaSet => {
            let st = &obj["status"];
            let (containers, images) = containers_and_images(obj);
            vec![
                name,
                json!(obj["spec"]["replicas"].as_i64().unwrap_or(0)),
                json!(st["replicas"].as_i64().unwrap_or(0)),
                json!(st["readyReplicas"].as_i64().unwrap_or(0)),
                json!(age(obj)),
                json!(containers),
                json!(images),
                json!(selector_text(&obj["spec"]["selector"])),
            ]
        }
        Kind::DaemonSet => {
            let st = &obj["status"];
            let node_selector = obj["spec"]["template"]["spec"]["nodeSelector"]
                .as_object()
                .map(|m| m.iter().map(|(k, v)| format!("{k}={}", s(v))).collect::<Vec<_>>().join(","))
                .unwrap_or_default();
            vec![
                name,
                json!(st["desiredNumberScheduled"].as_i64().unwrap_or(0)),
                json!(st["currentNumberScheduled"].as_i64().unwrap_or(0)),
                json!(st["numberReady"].as_i64().unwrap_or(0)),
                json!(st["updatedNumberScheduled"].as_i64().unwrap_or(0)),
                json!(st["numberAvailable"].as_i64().unwrap_or(0)),
                json!(or_none(node_selector)),
                json!(age(obj)),
            ]
        }
        Kind::PodDisruptionBudget => {
            let spec = &obj["spec"];
            let na = |v: &Value| if v.is_null() { "N/A".to_string() } else { s(v) };
            vec![
                name,
                json!(na(&spec["minAvailable"])),
                json!(na(&spec["maxUnavailable"])),
                json!(obj["status"]["disruptionsAllowed"].as_i64().unwrap_or(0)),
                json!(age(obj)),
            ]
        }
        Kind::Event => event_cells(obj),
        Kind::Lease => vec![name, json!(or_none(s(&obj["spec"]["holderIdentity"]))), json!(age(obj))],
        Kind::VerticalPodAutoscalerCheckpoint => vec![name, json!(age(obj))],
        Kind::VerticalPodAutoscaler => {
            let rec = &obj["status"]["recommendation"]["containerRecommendations"][0]["target"];
            let provided = obj["status"]["conditions"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["type"] == "RecommendationProvided"))
                .map(|c| s(&c["status"]))
                .unwrap_or_default();
            vec![
                name,
                json!(s(&obj["spec"]["updatePolicy"]["updateMode"])),
                json!(s(&rec["cpu"])),
                json!(s(&rec["memory"])),
                json!(provided),
                json!(age(obj)),
            ]
        }
    }
}

fn containers_and_images(obj: &Value) -> (String, String) {
    let containers = obj["spec"]["template"]["spec"]["containers"].as_array().cloned().unwrap_or_default();
    let names: Vec<String> = containers.iter().map(|c| s(&c["name"])).collect();
    let images: Vec<String> = containers.iter().map(|c| s(&c["image"])).collect();
    (names.join(","), images.join(","))
}

fn selector_text(selector: &Value) -> String {
    let mut parts: Vec<String> = selector["matchLabels"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k}={}", s(v))).collect())
        .unwrap_or_default();
    for e in selector["matchExpressions"].as_array().into_iter().flatten() {
        let values: Vec<String> = e["values"].as_array().into_iter().flatten().map(s).collect();
        let key = s(&e["key"]);
        parts.push(match e["operator"].as_str().unwrap_or("") {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key,
            _ => format!("!{key}"),
        });
    }
    or_none(parts.join(","))
}

fn pod_cells(pod: &Value) -> Vec<Value> {
    let status = &pod["status"];
    let containers = pod["spec"]["containers"].as_array().map(Vec::len).unwrap_or(0);
    let statuses = status["containerStatuses"].as_array().cloned().unwrap_or_default();
    let init_statuses = status["initContainerStatuses"].as_array().cloned().unwrap_or_default();
    let mut restarts: i64 = 0;
    let mut last_restart: Option<time::Timestamp> = None;
    let mut ready = 0;
    let mut reason = if status["reason"].is_string() { s(&status["reason"]) } else { s(&status["phase"]) };
    let mut track_restart = |c: &Value, restarts: &mut i64| {
        *restarts += c["restartCount"].as_i64().unwrap_or(0);
        if let Some(t) = c["lastState"]["terminated"]["finishedAt"].as_str().and_then(time::parse_time)
            && last_restart.is_none_or(|l| t > l)
        {
            last_restart = Some(t);
        }
    };
    let mut initializing = false;
    let init_total = pod["spec"]["initContainers"].as_array().map(Vec::len).unwrap_or(0);
    for (i, c) in init_statuses.iter().enumerate() {
        track_restart(c, &mut restarts);
        let term = &c["state"]["terminated"];
        if term["exitCode"].as_i64() == Some(0) {
            continue;
        }
        if c["started"] == true && c["state"]["running"].is_object() {
            continue; // a running sidecar
        }
        if term.is_object() {
            reason = if term["reason"].is_string() {
                format!("Init:{}", s(&term["reason"]))
            } else {
                format!("Init:ExitCode:{}", term["exitCode"].as_i64().unwrap_or(0))
            };
        } else if c["state"]["waiting"]["reason"].is_string() && c["state"]["waiting"]["reason"] != "PodInitializing" {
            reason = format!("Init:{}", s(&c["state"]["waiting"]["reason"]));
        } else {
            reason = format!("Init:{i}/{init_total}");
        }
        initializing = true;
        break;
    }
    if !initializing {
        restarts = init_statuses.iter().map(|c| c["restartCount"].as_i64().unwrap_or(0)).sum();
        let mut has_running = false;
        for c in statuses.iter().rev() {
            track_restart(c, &mut restarts);
            let state = &c["state"];
            if state["waiting"]["reason"].is_string() {
                reason = s(&state["waiting"]["reason"]);
            } else if state["terminated"]["reason"].is_string() {
                reason = s(&state["terminated"]["reason"]);
            } else if state["terminated"].is_object() {
                reason = format!("ExitCode:{}", state["terminated"]["exitCode"].as_i64().unwrap_or(0));
            } else if c["ready"] == true && state["running"].is_object() {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            let pod_ready = status["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
                .is_some_and(|c| c["status"] == "True");
            reason = if pod_ready { "Running".to_string() } else { "NotReady".to_string() };
        }
    }
    if !pod["metadata"]["deletionTimestamp"].is_null() {
        reason = if status["reason"] == "NodeLost" { "Unknown".to_string() } else { "Terminating".to_string() };
    }
    let restarts_text = match last_restart {
        Some(t) if restarts > 0 => {
            let ago =
                time::human_duration(std::time::Duration::try_from(time::now().duration_since(t)).unwrap_or_default());
            format!("{restarts} ({ago} ago)")
        }
        _ => restarts.to_string(),
    };
    let gates = pod["spec"]["readinessGates"].as_array().map(Vec::len).unwrap_or(0);
    vec![
        json!(pod["metadata"]["name"]),
        json!(format!("{ready}/{containers}")),
        json!(reason),
        json!(restarts_text),
        json!(age(pod)),
        json!(or_none(s(&status["podIP"]))),
        json!(or_none(s(&pod["spec"]["nodeName"]))),
        json!(or_none(s(&status["nominatedNodeName"]))),
        json!(if gates == 0 { "<none>".to_string() } else { format!("0/{gates}") }),
    ]
}

fn node_cells(node: &Value) -> Vec<Value> {
    let ready = node["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .map(|c| match c["status"].as_str() {
            Some("True") => "Ready",
            Some("False") => "NotReady",
            _ => "Unknown",
        })
        .unwrap_or("Unknown");
    let mut status = ready.to_string();
    if node["spec"]["unschedulable"] == true {
        status.push_str(",SchedulingDisabled");
    }
    let mut roles: Vec<String> = node["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                        Some(role.to_string())
                    } else if k == "kubernetes.io/role" {
                        v.as_str().map(str::to_string)
                    } else {
                        None
                    }
                })
                .filter(|r| !r.is_empty())
                .collect()
        })
        .unwrap_or_default();
    roles.sort();
    let address = |t: &str| {
        node["status"]["addresses"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["type"] == t))
            .map(|x| s(&x["address"]))
            .unwrap_or_default()
    };
    let info = &node["status"]["nodeInfo"];
    vec![
        json!(node["metadata"]["name"]),
        json!(status),
        json!(or_none(roles.join(","))),
        json!(age(node)),
        json!(s(&info["kubeletVersion"])),
        json!(or_none(address("InternalIP"))),
        json!(or_none(address("ExternalIP"))),
        json!(s(&info["osImage"])),
        json!(s(&info["kernelVersion"])),
        json!(s(&info["containerRuntimeVersion"])),
    ]
}

fn event_cells(ev: &Value) -> Vec<Value> {
    let first = ev["firstTimestamp"].as_str().or(ev["eventTime"].as_str());
    let last = ev["lastTimestamp"].as_str().or(ev["series"]["lastObservedTime"].as_str()).or(first);
    let involved = &ev["involvedObject"];
    let source = {
        let c = s(&ev["source"]["component"]);
        let h = s(&ev["source"]["host"]);
        if h.is_empty() { c } else { format!("{c}, {h}") }
    };
    vec![
        json!(time::age(last)),
        json!(s(&ev["type"])),
        json!(s(&ev["reason"])),
        json!(format!("{}/{}", s(&involved["kind"]).to_lowercase(), s(&involved["name"]))),
        json!(s(&involved["fieldPath"])),
        json!(source),
        json!(s(&ev["message"])),
        json!(time::age(first)),
        json!(ev["count"].as_i64().unwrap_or(1)),
        json!(ev["metadata"]["name"]),
    ]
}

/// The PartialObjectMetadata form of an object.
pub fn partial_metadata(obj: &Value, version: &str) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": format!("meta.k8s.io/{version}"),
        "metadata": obj["metadata"],
    })
}

/// A Table of `objects` (in their storage shape) for `resource`.
pub fn table(resource: &ApiResource, version: &str, objects: &[&Value], list_meta: Value, include: Include) -> Value {
    let kind = resource.bucket;
    let columns: Vec<Value> = columns(kind)
        .into_iter()
        .map(|Col(name, format, priority)| {
            json!({"name": name, "type": "string", "format": format, "description": "", "priority": priority})
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let mut row = json!({"cells": cells(kind, obj)});
            match include {
                Include::None => {}
                Include::Metadata => row["object"] = partial_metadata(obj, version),
                Include::Object => row["object"] = (*obj).clone(),
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": format!("meta.k8s.io/{version}"),
        "metadata": list_meta,
        "columnDefinitions": columns,
        "rows": rows,
    })
}
