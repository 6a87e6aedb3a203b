//! Minions joining and leaving: Node objects as a kubelet would register them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::registry::DeleteOptions;
use crate::resources::Kind;
use crate::sim::Sim;
use crate::store::{Obj, ObjKey};
use crate::subresources::binding::set_condition;
use crate::time;

/// A taint on a node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Taint {
    pub key: String,
    #[serde(default)]
    pub value: String,
    /// NoSchedule, PreferNoSchedule or NoExecute.
    pub effect: String,
}

/// A node to add. Quantities use Kubernetes notation ("4", "3500m", "16Gi").
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeSpec {
    pub name: String,
    pub cpu: String,
    pub memory: String,
    pub pods: u32,
    /// Allocatable (defaults to capacity).
    pub allocatable_cpu: Option<String>,
    pub allocatable_memory: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    pub provider_id: Option<String>,
    pub ready: bool,
    pub unschedulable: bool,
    /// More capacity (and allocatable): extended resources such as
    /// `nvidia.com/gpu`, or `ephemeral-storage` instead of its 100Gi.
    pub resources: BTreeMap<String, String>,
}

impl Default for NodeSpec {
    fn default() -> Self {
        NodeSpec {
            name: String::new(),
            cpu: "4".into(),
            memory: "16Gi".into(),
            pods: 110,
            allocatable_cpu: None,
            allocatable_memory: None,
            labels: BTreeMap::new(),
            taints: Vec::new(),
            provider_id: None,
            ready: true,
            unschedulable: false,
            resources: BTreeMap::new(),
        }
    }
}

impl NodeSpec {
    pub fn new(name: &str) -> NodeSpec {
        NodeSpec { name: name.to_string(), ..NodeSpec::default() }
    }

    pub fn cpu(mut self, cpu: &str) -> Self {
        self.cpu = cpu.to_string();
        self
    }

    pub fn memory(mut self, memory: &str) -> Self {
        self.memory = memory.to_string();
        self
    }

    pub fn pods(mut self, pods: u32) -> Self {
        self.pods = pods;
        self
    }

    pub fn allocatable(mut self, cpu: &str, memory: &str) -> Self {
        self.allocatable_cpu = Some(cpu.to_string());
        self.allocatable_memory = Some(memory.to_string());
        self
    }

    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_string(), value.to_string());
        self
    }

    pub fn taint(mut self, key: &str, value: &str, effect: &str) -> Self {
        self.taints.push(Taint { key: key.into(), value: value.into(), effect: effect.into() });
        self
    }

    /// Any capacity entry, e.g. `resource("nvidia.com/gpu", "1")`.
    pub fn resource(mut self, name: &str, amount: &str) -> Self {
        self.resources.insert(name.to_string(), amount.to_string());
        self
    }

    pub fn provider_id(mut self, id: &str) -> Self {
        self.provider_id = Some(id.to_string());
        self
    }

    pub fn not_ready(mut self) -> Self {
        self.ready = false;
        self
    }

    pub fn unschedulable(mut self) -> Self {
        self.unschedulable = true;
        self
    }

    /// The Node object a kubelet with this configuration registers.
    pub fn to_node(&self, index: u32, kubelet_version: &str) -> Value {
        let mut labels = json!({
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": "amd64",
        });
        for (k, v) in &self.labels {
            labels[k] = json!(v);
        }
        let cidr = format!("10.{}.{}.0/24", 64 + (index / 256) % 64, index % 256);
        let address = format!("10.0.{}.{}", index / 250, index % 250 + 2);
        let mut capacity = json!({
            "cpu": self.cpu, "memory": self.memory, "pods": self.pods.to_string(),
            "ephemeral-storage": "100Gi", "hugepages-1Gi": "0", "hugepages-2Mi": "0",
        });
        for (name, amount) in &self.resources {
            capacity[name] = json!(amount);
        }
        let mut allocatable = capacity.clone();
        if let Some(c) = &self.allocatable_cpu {
            allocatable["cpu"] = json!(c);
        }
        if let Some(m) = &self.allocatable_memory {
            allocatable["memory"] = json!(m);
        }
        let now = time::now_string();
        let condition = |kind: &str, status: &str, reason: &str, message: &str| {
            json!({"type": kind, "status": status, "reason": reason, "message": message,
                   "lastHeartbeatTime": now, "lastTransitionTime": now})
        };
        let ready = if self.ready {
            condition("Ready", "True", "KubeletReady", "kubelet is posting ready status")
        } else {
            condition("Ready", "False", "KubeletNotReady", "container runtime network not ready")
        };
        let mut spec = json!({"podCIDR": cidr, "podCIDRs": [cidr]});
        if let Some(p) = &self.provider_id {
            spec["providerID"] = json!(p);
        }
        if self.unschedulable {
            spec["unschedulable"] = json!(true);
        }
        if !self.taints.is_empty() {
            spec["taints"] = serde_json::to_value(&self.taints).unwrap_or_default();
        }
        let boot = crate::ids::new_uid();
        json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.name,
                "labels": labels,
                "annotations": {
                    "node.alpha.kubernetes.io/ttl": "0",
                    "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                },
            },
            "spec": spec,
            "status": {
                "capacity": capacity,
                "allocatable": allocatable,
                "conditions": [
                    condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                    condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                    condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                    ready,
                ],
                "addresses": [
                    {"type": "InternalIP", "address": address},
                    {"type": "Hostname", "address": self.name},
                ],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {
                    "machineID": boot.replace('-', ""),
                    "systemUUID": boot,
                    "bootID": crate::ids::new_uid(),
                    "kernelVersion": "6.1.0-kubesim",
                    "osImage": "Debian GNU/Linux 12 (bookworm)",
                    "containerRuntimeVersion": "containerd://1.7.24",
                    "kubeletVersion": kubelet_version,
                    "kubeProxyVersion": kubelet_version,
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                },
            },
        })
    }
}

pub fn add_node(sim: &Sim, spec: &NodeSpec) -> Result<Arc<Obj>, ApiError> {
    let index = sim.node_seq.fetch_add(1, Ordering::Relaxed);
    let node = spec.to_node(index, &sim.options.kubernetes_version);
    let created = sim.registry.create(Kind::Node, None, node, false)?;
    // The kubelet's heartbeat lease, owned by its Node.
    let lease = json!({
        "metadata": {
            "name": spec.name,
            "namespace": "kube-node-lease",
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": spec.name, "uid": created.uid()}],
        },
        "spec": {
            "holderIdentity": spec.name,
            "leaseDurationSeconds": 40,
            "renewTime": time::format_micro(time::now()),
        },
    });
    match sim.registry.create(Kind::Lease, Some("kube-node-lease"), lease, false) {
        Ok(_) => {}
        Err(e) if e.code == 409 => {}
        Err(e) => return Err(e),
    }
    Ok(created)
}

/// The node leaves (its VM is gone): the Node object is deleted and pod GC
/// removes the pods that were bound to it.
pub fn remove_node(sim: &Sim, name: &str) -> Result<(), ApiError> {
    sim.registry.delete(Kind::Node, &ObjKey::cluster(name), &DeleteOptions::default())?;
    let lease = ObjKey::new("kube-node-lease", name);
    match sim.registry.delete(Kind::Lease, &lease, &DeleteOptions::default()) {
        Ok(_) => Ok(()),
        Err(e) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// The kubelet reports Ready (or stops doing so).
pub fn set_node_ready(sim: &Sim, name: &str, ready: bool) -> Result<(), ApiError> {
    let key = ObjKey::cluster(name);
    sim.registry.get(Kind::Node, &key)?;
    sim.registry.mutate(Kind::Node, &key, None, |node| {
        let now = time::now_string();
        if ready {
            set_condition(node, "Ready", "True", Some("KubeletReady"), Some("kubelet is posting ready status"));
        } else {
            set_condition(
                node,
                "Ready",
                "Unknown",
                Some("NodeStatusUnknown"),
                Some("Kubelet stopped posting node status."),
            );
        }
        if let Some(c) =
            node["status"]["conditions"].as_array_mut().and_then(|c| c.iter_mut().find(|c| c["type"] == "Ready"))
        {
            c["lastHeartbeatTime"] = json!(now);
            c.as_object_mut().map(|m| m.remove("lastProbeTime"));
        }
        Ok(())
    })?;
    Ok(())
}
