//! Nodes: capacity, readiness, taints, and the annotations the planner reads.

use k8s_openapi::api::core::v1 as k8s;

use super::{resources, time};
use heatscaler_core::model::{Node, Taint, TaintEffect, Timestamp};
use heatscaler_core::planner::protocol::SCALE_DOWN_DISABLED;

/// Annotations worth keeping: heatscaler's own (the removal record) and
/// cluster-autoscaler's `scale-down-disabled`. A node's other annotations
/// (kubeadm, CNI, volumes attached) are often kilobytes and never read.
pub fn annotation_kept(key: &str) -> bool {
    key.starts_with("heatscaler.io/") || key == SCALE_DOWN_DISABLED
}

pub fn node(n: &k8s::Node) -> Node {
    let meta = &n.metadata;
    let spec = n.spec.as_ref();
    let status = n.status.as_ref();
    Node {
        name: meta.name.clone().unwrap_or_default(),
        labels: meta.labels.clone().unwrap_or_default(),
        annotations: meta
            .annotations
            .iter()
            .flatten()
            .filter(|(k, _)| annotation_kept(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        taints: spec.and_then(|s| s.taints.as_deref()).unwrap_or_default().iter().filter_map(taint).collect(),
        allocatable: resources(status.and_then(|s| s.allocatable.as_ref())),
        unschedulable: spec.and_then(|s| s.unschedulable).unwrap_or(false),
        ready: status
            .and_then(|s| s.conditions.as_deref())
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True"),
        provider_id: spec.and_then(|s| s.provider_id.clone()).filter(|p| !p.is_empty()),
        created: time(meta.creation_timestamp.as_ref()).unwrap_or(Timestamp::UNIX_EPOCH),
    }
}

/// Where the node's kubelet serves, `https://<InternalIP>:<port>` (the port
/// it registered in `daemonEndpoints`), or why the Node does not say. Read
/// from the watched Node so that `usage.kubelet: direct` needs no API
/// request per node and scrape (issue 22: a GET of every Node every round).
pub fn kubelet_address(n: &k8s::Node) -> Result<String, String> {
    let status = n.status.as_ref();
    let ip = status
        .and_then(|s| s.addresses.as_ref())
        .and_then(|a| a.iter().find(|a| a.type_ == "InternalIP"))
        .map(|a| a.address.as_str())
        .ok_or("the Node has no InternalIP")?;
    let port = status
        .and_then(|s| s.daemon_endpoints.as_ref())
        .and_then(|d| d.kubelet_endpoint.as_ref())
        .map(|e| e.port)
        .filter(|p| *p > 0)
        .ok_or("the Node has no kubelet port (daemonEndpoints)")?;
    let host = match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => format!("[{v6}]"),
        Ok(v4) => v4.to_string(),
        Err(_) => return Err(format!("InternalIP {ip:?} is not an address")),
    };
    Ok(format!("https://{host}:{port}"))
}

/// A taint with an effect Kubernetes defines; others cannot be represented
/// (the API server rejects them anyway).
fn taint(t: &k8s::Taint) -> Option<Taint> {
    let effect = match t.effect.as_str() {
        "NoSchedule" => TaintEffect::NoSchedule,
        "PreferNoSchedule" => TaintEffect::PreferNoSchedule,
        "NoExecute" => TaintEffect::NoExecute,
        _ => return None,
    };
    Some(Taint { key: t.key.clone(), value: t.value.clone().filter(|v| !v.is_empty()), effect })
}
