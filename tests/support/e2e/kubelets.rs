//! The kubelets of a test world's minions: emulated kubelets (`kubelet-emu`)
//! registering with the real control plane, or kubesim's built-in kubelet
//! model. The harness boots one when Heat creates a member, and silences it
//! when Heat deletes the member (the VM is gone).

use std::collections::BTreeMap;
use std::sync::Arc;

use kubesim::KubeSimHandle;

/// What a minion VM of a group looks like to Kubernetes.
#[derive(Clone, Debug)]
pub struct Shape {
    pub cpu: &'static str,
    pub memory: &'static str,
    /// Other capacity, e.g. `("nvidia.com/gpu", "1")` (emulated kubelets only).
    pub resources: Vec<(&'static str, &'static str)>,
    pub labels: BTreeMap<String, String>,
    /// `(key, value, effect)`, registered with the node (`--register-with-taints`).
    pub taints: Vec<(&'static str, &'static str, &'static str)>,
}

impl Shape {
    pub fn new(cpu: &'static str, memory: &'static str) -> Shape {
        Shape { cpu, memory, resources: Vec::new(), labels: BTreeMap::new(), taints: Vec::new() }
    }

    /// Allocatable as the daemon's `node-template` writes it.
    pub fn allocatable(&self) -> serde_json::Value {
        let mut a = serde_json::json!({"cpu": self.cpu, "memory": self.memory, "pods": "110"});
        for (k, v) in &self.resources {
            a[*k] = (*v).into();
        }
        a
    }
}

pub enum Kubelets {
    /// `kubelet-emu` against the real control plane.
    Emulated(Box<kubelet_emu::Emulator>),
    /// kubesim's kubelet model.
    Kubesim(Arc<KubeSimHandle>),
}

impl Kubelets {
    /// A VM booted and its kubelet registered the Node (Ready) with this providerID.
    pub async fn boot(&self, name: &str, provider_id: Option<&str>, shape: &Shape) -> Result<(), String> {
        match self {
            Kubelets::Emulated(emu) => {
                let mut spec = kubelet_emu::NodeSpec::new(name).cpu(shape.cpu).memory(shape.memory);
                for (k, v) in &shape.resources {
                    spec = spec.resource(k, v);
                }
                for (k, v) in &shape.labels {
                    spec = spec.label(k, v);
                }
                for (k, v, e) in &shape.taints {
                    spec = spec.taint(k, v, e);
                }
                if let Some(p) = provider_id {
                    spec = spec.provider_id(p);
                }
                emu.add_node(spec).await.map(|_| ()).map_err(|e| format!("{e:#}"))
            }
            Kubelets::Kubesim(sim) => {
                assert!(shape.resources.is_empty(), "kubesim nodes have cpu, memory and pods only");
                let mut spec = kubesim::NodeSpec::new(name).cpu(shape.cpu).memory(shape.memory);
                spec.labels = shape.labels.clone();
                for (k, v, e) in &shape.taints {
                    spec = spec.taint(k, v, e);
                }
                spec.provider_id = provider_id.map(str::to_string);
                sim.add_node(spec).map(|_| ()).map_err(|e| e.to_string())
            }
        }
    }

    /// The VM is deleted: its kubelet falls silent for good. The Node object
    /// stays (deleting it is heatscaler's job, or the cloud controller
    /// manager's once the node is NotReady: [`super::minions`]).
    pub fn vm_deleted(&self, name: &str) {
        match self {
            Kubelets::Emulated(emu) => {
                let _ = emu.vm_deleted(name);
            }
            Kubelets::Kubesim(sim) => {
                let _ = sim.set_node_ready(name, false);
            }
        }
    }

    /// The kubelet process stops; the VM stays (emulated kubelets only).
    pub fn stop_kubelet(&self, name: &str) {
        match self {
            Kubelets::Emulated(emu) => emu.stop_kubelet(name).expect("stop the kubelet"),
            Kubelets::Kubesim(_) => panic!("stopping a kubelet is modelled by the real control plane only"),
        }
    }

    pub fn emulator(&self) -> &kubelet_emu::Emulator {
        match self {
            Kubelets::Emulated(emu) => emu,
            Kubelets::Kubesim(_) => panic!("this world runs on kubesim, not on emulated kubelets"),
        }
    }

    pub fn is_real(&self) -> bool {
        matches!(self, Kubelets::Emulated(_))
    }
}
