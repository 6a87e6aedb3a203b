//! The kubelet endpoints heatscaler reads through the API server's node proxy:
//! the Summary API (`/stats/summary`, `k8s.io/kubelet/pkg/apis/stats/v1alpha1`),
//! cAdvisor's Prometheus page (`/metrics/cadvisor`) and the resource metrics
//! (`/metrics/resource`, what metrics-server reads) — computed from the usage
//! models at the moment of the request.

use std::collections::HashMap;
use std::fmt::Write as _;

use jiff::Timestamp;
use kubesim::usage::{ContainerSample, PodSample};
use serde_json::{Value, json};

use crate::PodMeta;

fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S.%9fZ").to_string()
}

fn cpu(at: &str, nanocores: u64, core_ns: u64) -> Value {
    json!({"time": at, "usageNanoCores": nanocores, "usageCoreNanoSeconds": core_ns})
}

fn memory(at: &str, working_set: u64, available: Option<u64>) -> Value {
    let mut m = json!({"time": at, "usageBytes": working_set, "workingSetBytes": working_set,
                       "rssBytes": working_set, "pageFaults": 0, "majorPageFaults": 0});
    if let Some(a) = available {
        m["availableBytes"] = json!(a);
    }
    m
}

fn container(at: &str, c: &ContainerSample) -> Value {
    json!({
        "name": c.name,
        "startTime": rfc3339(c.started),
        "cpu": cpu(at, c.cpu_nanocores, c.cpu_core_nanoseconds),
        "memory": memory(at, c.memory_bytes, c.memory_limit.map(|l| l.saturating_sub(c.memory_bytes))),
    })
}

/// The node's summary: node totals and one entry per running pod.
pub fn summary(
    node: &str,
    node_started: Timestamp,
    memory_capacity: u64,
    node_cpu_total: u64,
    pods: &[PodSample],
    now: Timestamp,
) -> Value {
    let at = rfc3339(now);
    let all = || pods.iter().flat_map(|p| &p.containers);
    let node_cpu: u64 = all().map(|c| c.cpu_nanocores).sum();
    let node_mem: u64 = all().map(|c| c.memory_bytes).sum();
    json!({
        "node": {
            "nodeName": node,
            "systemContainers": [],
            "startTime": rfc3339(node_started),
            "cpu": cpu(&at, node_cpu, node_cpu_total),
            "memory": memory(&at, node_mem, Some(memory_capacity.saturating_sub(node_mem))),
        },
        "pods": pods.iter().map(|p| json!({
            "podRef": {"name": p.name, "namespace": p.namespace, "uid": p.uid},
            "startTime": rfc3339(p.started),
            "containers": p.containers.iter().map(|c| container(&at, c)).collect::<Vec<_>>(),
            "cpu": cpu(&at, p.containers.iter().map(|c| c.cpu_nanocores).sum(),
                       p.containers.iter().map(|c| c.cpu_core_nanoseconds).sum()),
            "memory": memory(&at, p.containers.iter().map(|c| c.memory_bytes).sum(), None),
            "volume": [],
        })).collect::<Vec<_>>(),
    })
}

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// cAdvisor's page: cumulative CPU and working set per cgroup — the root (`id="/"`),
/// each pod's cgroup (`container=""`) and each container.
pub fn cadvisor(node_cpu_total: u64, pods: &[PodSample], meta: &HashMap<String, PodMeta>, now: Timestamp) -> String {
    let ms = now.as_millisecond();
    let (mut cpu, mut mem, mut limit) = (String::new(), String::new(), String::new());
    let node_mem: u64 = pods.iter().flat_map(|p| &p.containers).map(|c| c.memory_bytes).sum();
    let root = "container=\"\",id=\"/\",image=\"\",name=\"\",namespace=\"\",pod=\"\"";
    let _ =
        writeln!(cpu, "container_cpu_usage_seconds_total{{{root},cpu=\"total\"}} {} {ms}", node_cpu_total as f64 / 1e9);
    let _ = writeln!(mem, "container_memory_working_set_bytes{{{root}}} {node_mem} {ms}");
    for p in pods {
        let m = meta.get(&p.uid);
        let qos = m.map(|m| m.qos.to_lowercase()).unwrap_or_else(|| "besteffort".into());
        let cgroup = if qos == "guaranteed" {
            format!("/kubepods/pod{}", p.uid)
        } else {
            format!("/kubepods/{qos}/pod{}", p.uid)
        };
        let (ns, name) = (esc(&p.namespace), esc(&p.name));
        let pod_labels =
            format!("container=\"\",id=\"{cgroup}\",image=\"\",name=\"\",namespace=\"{ns}\",pod=\"{name}\"");
        let pod_cpu: f64 = p.containers.iter().map(|c| c.cpu_core_nanoseconds as f64 / 1e9).sum();
        let pod_mem: u64 = p.containers.iter().map(|c| c.memory_bytes).sum();
        let _ = writeln!(cpu, "container_cpu_usage_seconds_total{{{pod_labels},cpu=\"total\"}} {pod_cpu} {ms}");
        let _ = writeln!(mem, "container_memory_working_set_bytes{{{pod_labels}}} {pod_mem} {ms}");
        for c in &p.containers {
            let (id, image) = m
                .and_then(|m| m.containers.iter().find(|(n, _, _)| *n == c.name))
                .map(|(_, id, image)| (id.trim_start_matches("containerd://").to_string(), image.clone()))
                .unwrap_or_default();
            let labels = format!(
                "container=\"{}\",id=\"{cgroup}/{id}\",image=\"{}\",name=\"{id}\",namespace=\"{ns}\",pod=\"{name}\"",
                esc(&c.name),
                esc(&image)
            );
            let _ = writeln!(
                cpu,
                "container_cpu_usage_seconds_total{{{labels},cpu=\"total\"}} {} {ms}",
                c.cpu_core_nanoseconds as f64 / 1e9
            );
            let _ = writeln!(mem, "container_memory_working_set_bytes{{{labels}}} {} {ms}", c.memory_bytes);
            let _ =
                writeln!(limit, "container_spec_memory_limit_bytes{{{labels}}} {} {ms}", c.memory_limit.unwrap_or(0));
        }
    }
    format!(
        "# HELP container_cpu_usage_seconds_total Cumulative cpu time consumed in seconds.\n\
         # TYPE container_cpu_usage_seconds_total counter\n{cpu}\
         # HELP container_memory_working_set_bytes Current working set of the container in bytes\n\
         # TYPE container_memory_working_set_bytes gauge\n{mem}\
         # HELP container_spec_memory_limit_bytes Memory limit for the container.\n\
         # TYPE container_spec_memory_limit_bytes gauge\n{limit}"
    )
}

/// `/metrics/resource`: node and container CPU and working set.
pub fn resource_metrics(node_cpu_total: u64, pods: &[PodSample], now: Timestamp) -> String {
    let ms = now.as_millisecond();
    let node_mem: u64 = pods.iter().flat_map(|p| &p.containers).map(|c| c.memory_bytes).sum();
    let mut out = format!(
        "# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds\n\
         # TYPE node_cpu_usage_seconds_total counter\nnode_cpu_usage_seconds_total {} {ms}\n\
         # HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes\n\
         # TYPE node_memory_working_set_bytes gauge\nnode_memory_working_set_bytes {node_mem} {ms}\n",
        node_cpu_total as f64 / 1e9
    );
    let series = |c: &ContainerSample, p: &PodSample| {
        format!("container=\"{}\",namespace=\"{}\",pod=\"{}\"", esc(&c.name), esc(&p.namespace), esc(&p.name))
    };
    out.push_str(
        "# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds\n\
         # TYPE container_cpu_usage_seconds_total counter\n",
    );
    for p in pods {
        for c in &p.containers {
            let _ = writeln!(
                out,
                "container_cpu_usage_seconds_total{{{}}} {} {ms}",
                series(c, p),
                c.cpu_core_nanoseconds as f64 / 1e9
            );
        }
    }
    out.push_str(
        "# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes\n\
         # TYPE container_memory_working_set_bytes gauge\n",
    );
    for p in pods {
        for c in &p.containers {
            let _ = writeln!(out, "container_memory_working_set_bytes{{{}}} {} {ms}", series(c, p), c.memory_bytes);
        }
    }
    out
}
