//! The node side of a kubelet: registering the Node object, renewing its
//! Lease in `kube-node-lease`, and posting node status.
//!
//! As the real kubelet (1.35) does: the Lease is the heartbeat (renewed every
//! quarter of its duration); node status is posted when it changes and at
//! least every `nodeStatusReportFrequency`; a restarted kubelet posts status
//! at once. The node lifecycle controller of the real kube-controller-manager
//! reads both and marks the node `Unknown` when they stop.

use std::net::Ipv4Addr;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::config::{NodeSpec, Timing};

pub const KUBELET_VERSION: &str = "v1.35.4";
pub const LEASE_NAMESPACE: &str = "kube-node-lease";

fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The four conditions of a healthy kubelet.
pub fn healthy_conditions(at: &str) -> Value {
    let c = |kind: &str, status: &str, reason: &str, message: &str| {
        json!({"type": kind, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": at, "lastTransitionTime": at})
    };
    json!([
        c("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        c("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        c("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        c("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ])
}

/// The Node object the kubelet of a VM with this spec registers.
pub fn node_object(spec: &NodeSpec, ip: Ipv4Addr, port: u16, boot_id: &str) -> Value {
    let mut labels = json!({
        "kubernetes.io/hostname": spec.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
    });
    for (k, v) in &spec.labels {
        labels[k] = json!(v);
    }
    let mut node_spec = json!({});
    if let Some(p) = &spec.provider_id {
        node_spec["providerID"] = json!(p);
    }
    if !spec.taints.is_empty() {
        node_spec["taints"] = serde_json::to_value(&spec.taints).unwrap_or_default();
    }
    if spec.unschedulable {
        node_spec["unschedulable"] = json!(true);
    }
    let at = now();
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": spec.name,
            "labels": labels,
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": node_spec,
        "status": status_body(spec, ip, port, boot_id, &at),
    })
}

fn status_body(spec: &NodeSpec, ip: Ipv4Addr, port: u16, boot_id: &str, at: &str) -> Value {
    json!({
        "capacity": spec.capacity,
        "allocatable": spec.effective_allocatable(),
        "conditions": healthy_conditions(at),
        "addresses": [
            {"type": "InternalIP", "address": ip.to_string()},
            {"type": "Hostname", "address": spec.name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
        "nodeInfo": {
            "machineID": boot_id.replace('-', ""),
            "systemUUID": boot_id,
            "bootID": boot_id,
            "kernelVersion": "6.12.0-emulated",
            "osImage": "Debian GNU/Linux 13 (trixie)",
            "containerRuntimeVersion": "containerd://2.1.4",
            "kubeletVersion": KUBELET_VERSION,
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
    })
}

/// Registers the node, or (a restarted kubelet) finds it registered and
/// posts its status. Returns whether it was created.
pub async fn register(
    nodes: &Api<Node>,
    spec: &NodeSpec,
    ip: Ipv4Addr,
    port: u16,
    boot_id: &str,
) -> kube::Result<bool> {
    let node: Node = serde_json::from_value(node_object(spec, ip, port, boot_id)).expect("a valid Node");
    match nodes.create(&PostParams::default(), &node).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => {
            post_status(nodes, spec, ip, port, boot_id).await?;
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Posts the full node status (conditions merge by type).
pub async fn post_status(
    nodes: &Api<Node>,
    spec: &NodeSpec,
    ip: Ipv4Addr,
    port: u16,
    boot_id: &str,
) -> kube::Result<()> {
    let body = json!({"status": status_body(spec, ip, port, boot_id, &now())});
    // lastTransitionTime must only move on a transition: keep the old one when
    // the status is unchanged (the node controller may have set Unknown).
    let current = nodes.get_status(&spec.name).await?;
    let mut body = body;
    if let Some(conds) = current.status.and_then(|s| s.conditions) {
        for c in body["status"]["conditions"].as_array_mut().into_iter().flatten() {
            if let Some(old) = conds.iter().find(|o| c["type"] == o.type_.as_str())
                && c["status"] == old.status.as_str()
                && let Some(t) = &old.last_transition_time
            {
                c["lastTransitionTime"] = serde_json::to_value(t).unwrap_or_default();
            }
        }
    }
    nodes.patch_status(&spec.name, &PatchParams::default(), &Patch::Strategic(body)).await?;
    Ok(())
}

/// Creates or renews the node's Lease, owned by the Node so it goes with it.
pub async fn renew_lease(leases: &Api<Lease>, nodes: &Api<Node>, name: &str, timing: &Timing) -> kube::Result<()> {
    let renew = MicroTime(jiff::Timestamp::now());
    match leases.get_opt(name).await? {
        Some(mut lease) => {
            let spec = lease.spec.get_or_insert_with(Default::default);
            spec.renew_time = Some(renew);
            spec.holder_identity = Some(name.to_string());
            spec.lease_duration_seconds = Some(timing.lease_duration.as_secs() as i32);
            leases.replace(name, &PostParams::default(), &lease).await?;
        }
        None => {
            let node = nodes.get(name).await?;
            let lease: Lease = serde_json::from_value(json!({
                "metadata": {
                    "name": name,
                    "namespace": LEASE_NAMESPACE,
                    "ownerReferences": [{
                        "apiVersion": "v1", "kind": "Node", "name": name,
                        "uid": node.metadata.uid,
                    }],
                },
                "spec": {
                    "holderIdentity": name,
                    "leaseDurationSeconds": timing.lease_duration.as_secs(),
                    "renewTime": renew,
                },
            }))
            .expect("a valid Lease");
            leases.create(&PostParams::default(), &lease).await?;
        }
    }
    Ok(())
}
