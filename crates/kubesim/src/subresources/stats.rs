//! nodes/{name}/proxy/...: the kubelet endpoints heatscaler scrapes — the
//! Summary API (stats/v1alpha1) and cAdvisor / resource metrics in the
//! Prometheus text format — generated from the usage models.

use std::fmt::Write as _;
use std::sync::Arc;

use http::Response;
use serde_json::{Value, json};

use crate::api::Body;
use crate::error::ApiError;
use crate::quantity;
use crate::resources::Kind;
use crate::sim::Sim;
use crate::store::ObjKey;
use crate::time::{self, Timestamp};
use crate::usage::{ContainerSample, PodSample};

pub async fn proxy(sim: &Arc<Sim>, node: &str, tail: &[String]) -> Result<Response<Body>, ApiError> {
    let node_obj = sim.registry.get(Kind::Node, &ObjKey::cluster(node))?;
    if !node_obj.is_ready() {
        return Err(ApiError::service_unavailable(
            format!("error trying to reach service: dial tcp {node}:10250: connect: connection refused"),
            None,
        ));
    }
    let now = time::now();
    let samples = sim.usage.sample(node, now);
    let path: Vec<&str> = tail.iter().map(String::as_str).collect();
    match path.as_slice() {
        ["stats", "summary"] => {
            let summary = summary(sim, &node_obj.value(), &samples, now);
            Ok(crate::api::respond_json(200, &summary))
        }
        ["metrics", "cadvisor"] => Ok(crate::api::respond_text(200, cadvisor(sim, &node_obj.value(), &samples, now))),
        ["metrics", "resource"] => Ok(crate::api::respond_text(200, resource_metrics(sim, node, &samples, now))),
        ["healthz"] => Ok(crate::api::respond_text(200, "ok")),
        _ => Err(ApiError::new(404, "NotFound", "the server could not find the requested resource")),
    }
}

fn node_memory_capacity(node: &Value) -> u64 {
    let cap = &node["status"]["capacity"]["memory"];
    cap.as_str().and_then(quantity::whole_units).unwrap_or(0).max(0) as u64
}

fn cpu_json(now: &str, nanocores: u64, core_ns: u64) -> Value {
    json!({"time": now, "usageNanoCores": nanocores, "usageCoreNanoSeconds": core_ns})
}

fn memory_json(now: &str, working_set: u64, limit: Option<u64>) -> Value {
    let mut m = json!({
        "time": now,
        "usageBytes": working_set,
        "workingSetBytes": working_set,
        "rssBytes": working_set,
        "pageFaults": 0,
        "majorPageFaults": 0,
    });
    if let Some(limit) = limit {
        m["availableBytes"] = json!(limit.saturating_sub(working_set));
    }
    m
}

fn container_json(now: &str, c: &ContainerSample) -> Value {
    json!({
        "name": c.name,
        "startTime": time::format_time(c.started),
        "cpu": cpu_json(now, c.cpu_nanocores, c.cpu_core_nanoseconds),
        "memory": memory_json(now, c.memory_bytes, c.memory_limit),
    })
}

fn pod_json(now: &str, p: &PodSample) -> Value {
    let cpu: u64 = p.containers.iter().map(|c| c.cpu_nanocores).sum();
    let cpu_total: u64 = p.containers.iter().map(|c| c.cpu_core_nanoseconds).sum();
    let mem: u64 = p.containers.iter().map(|c| c.memory_bytes).sum();
    json!({
        "podRef": {"name": p.name, "namespace": p.namespace, "uid": p.uid},
        "startTime": time::format_time(p.started),
        "containers": p.containers.iter().map(|c| container_json(now, c)).collect::<Vec<_>>(),
        "cpu": cpu_json(now, cpu, cpu_total),
        "memory": memory_json(now, mem, None),
        "volume": [],
    })
}

fn summary(sim: &Sim, node: &Value, samples: &[PodSample], now: Timestamp) -> Value {
    let now_s = time::format_time(now);
    let name = node["metadata"]["name"].as_str().unwrap_or("");
    let cpu: u64 = samples.iter().flat_map(|p| &p.containers).map(|c| c.cpu_nanocores).sum();
    let mem: u64 = samples.iter().flat_map(|p| &p.containers).map(|c| c.memory_bytes).sum();
    let cpu_total = sim.usage.node_cpu_total(name, now);
    let capacity = node_memory_capacity(node);
    let mut node_memory = memory_json(&now_s, mem, None);
    node_memory["availableBytes"] = json!(capacity.saturating_sub(mem));
    json!({
        "node": {
            "nodeName": name,
            "systemContainers": [],
            "startTime": node["metadata"]["creationTimestamp"],
            "cpu": cpu_json(&now_s, cpu, cpu_total),
            "memory": node_memory,
        },
        "pods": samples.iter().map(|p| pod_json(&now_s, p)).collect::<Vec<_>>(),
    })
}

/// Escapes a Prometheus label value.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn pod_lookup(sim: &Sim, p: &PodSample) -> Option<Value> {
    sim.store.get(Kind::Pod, &ObjKey::new(&p.namespace, &p.name)).map(|o| o.value().clone())
}

fn cadvisor(sim: &Sim, node: &Value, samples: &[PodSample], now: Timestamp) -> String {
    let ms = now.as_millisecond();
    let name = node["metadata"]["name"].as_str().unwrap_or("");
    let mut cpu = String::new();
    let mut mem = String::new();
    let mut limits = String::new();
    let node_cpu = sim.usage.node_cpu_total(name, now) as f64 / 1e9;
    let node_mem: u64 = samples.iter().flat_map(|p| &p.containers).map(|c| c.memory_bytes).sum();
    let _ = writeln!(
        cpu,
        "container_cpu_usage_seconds_total{{container=\"\",cpu=\"total\",id=\"/\",image=\"\",name=\"\",namespace=\"\",pod=\"\"}} {node_cpu} {ms}"
    );
    let _ = writeln!(
        mem,
        "container_memory_working_set_bytes{{container=\"\",id=\"/\",image=\"\",name=\"\",namespace=\"\",pod=\"\"}} {node_mem} {ms}"
    );
    for p in samples {
        let pod = pod_lookup(sim, p);
        let qos =
            pod.as_ref().and_then(|v| v["status"]["qosClass"].as_str().map(str::to_lowercase)).unwrap_or_default();
        let pod_cgroup = if qos == "guaranteed" {
            format!("/kubepods/pod{}", p.uid)
        } else {
            format!("/kubepods/{qos}/pod{}", p.uid)
        };
        let (ns, pn) = (esc(&p.namespace), esc(&p.name));
        let pod_cpu: f64 = p.containers.iter().map(|c| c.cpu_core_nanoseconds as f64 / 1e9).sum();
        let pod_mem: u64 = p.containers.iter().map(|c| c.memory_bytes).sum();
        let _ = writeln!(
            cpu,
            "container_cpu_usage_seconds_total{{container=\"\",cpu=\"total\",id=\"{pod_cgroup}\",image=\"\",name=\"\",namespace=\"{ns}\",pod=\"{pn}\"}} {pod_cpu} {ms}"
        );
        let _ = writeln!(
            mem,
            "container_memory_working_set_bytes{{container=\"\",id=\"{pod_cgroup}\",image=\"\",name=\"\",namespace=\"{ns}\",pod=\"{pn}\"}} {pod_mem} {ms}"
        );
        for c in &p.containers {
            let (cid, image) = pod
                .as_ref()
                .and_then(|v| v["status"]["containerStatuses"].as_array())
                .and_then(|cs| cs.iter().find(|s| s["name"] == c.name.as_str()))
                .map(|s| {
                    let id = s["containerID"].as_str().unwrap_or("").trim_start_matches("containerd://").to_string();
                    (id, s["image"].as_str().unwrap_or("").to_string())
                })
                .unwrap_or_default();
            let labels = format!(
                "container=\"{}\",id=\"{pod_cgroup}/{cid}\",image=\"{}\",name=\"{cid}\",namespace=\"{ns}\",pod=\"{pn}\"",
                esc(&c.name),
                esc(&image)
            );
            let seconds = c.cpu_core_nanoseconds as f64 / 1e9;
            let _ = writeln!(cpu, "container_cpu_usage_seconds_total{{{labels},cpu=\"total\"}} {seconds} {ms}");
            let _ = writeln!(mem, "container_memory_working_set_bytes{{{labels}}} {} {ms}", c.memory_bytes);
            let _ =
                writeln!(limits, "container_spec_memory_limit_bytes{{{labels}}} {} {ms}", c.memory_limit.unwrap_or(0));
        }
    }
    format!(
        "# HELP container_cpu_usage_seconds_total Cumulative cpu time consumed in seconds.\n# TYPE container_cpu_usage_seconds_total counter\n{cpu}# HELP container_memory_working_set_bytes Current working set of the container in bytes\n# TYPE container_memory_working_set_bytes gauge\n{mem}# HELP container_spec_memory_limit_bytes Memory limit for the container.\n# TYPE container_spec_memory_limit_bytes gauge\n{limits}"
    )
}

/// The kubelet's /metrics/resource (what metrics-server scrapes).
fn resource_metrics(sim: &Sim, node: &str, samples: &[PodSample], now: Timestamp) -> String {
    let ms = now.as_millisecond();
    let mut out = String::new();
    let node_cpu = sim.usage.node_cpu_total(node, now) as f64 / 1e9;
    let node_mem: u64 = samples.iter().flat_map(|p| &p.containers).map(|c| c.memory_bytes).sum();
    let _ = writeln!(
        out,
        "# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds\n# TYPE node_cpu_usage_seconds_total counter\nnode_cpu_usage_seconds_total {node_cpu} {ms}"
    );
    let _ = writeln!(
        out,
        "# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes\n# TYPE node_memory_working_set_bytes gauge\nnode_memory_working_set_bytes {node_mem} {ms}"
    );
    let _ = writeln!(
        out,
        "# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds\n# TYPE container_cpu_usage_seconds_total counter"
    );
    for p in samples {
        for c in &p.containers {
            let _ = writeln!(
                out,
                "container_cpu_usage_seconds_total{{container=\"{}\",namespace=\"{}\",pod=\"{}\"}} {} {ms}",
                esc(&c.name),
                esc(&p.namespace),
                esc(&p.name),
                c.cpu_core_nanoseconds as f64 / 1e9
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes\n# TYPE container_memory_working_set_bytes gauge"
    );
    for p in samples {
        for c in &p.containers {
            let _ = writeln!(
                out,
                "container_memory_working_set_bytes{{container=\"{}\",namespace=\"{}\",pod=\"{}\"}} {} {ms}",
                esc(&c.name),
                esc(&p.namespace),
                esc(&p.name),
                c.memory_bytes
            );
        }
    }
    out
}
