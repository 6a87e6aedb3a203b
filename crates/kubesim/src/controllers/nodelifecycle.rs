//! Node lifecycle: the taints the control plane derives from node state
//! (TaintNodesByCondition): `node.kubernetes.io/unschedulable:NoSchedule` on
//! cordoned nodes, `not-ready` / `unreachable` NoSchedule when the Ready
//! condition is False / Unknown. (No NoExecute taint-based eviction.)

use std::sync::Arc;

use serde_json::{Value, json};

use crate::podutil;
use crate::resources::Kind;
use crate::sim::Sim;
use crate::store::{Informer, InformerBatch, Obj};

const MANAGED: [&str; 3] =
    ["node.kubernetes.io/unschedulable", "node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"];

/// How often kubelets renew their node leases.
const LEASE_RENEWAL: std::time::Duration = std::time::Duration::from_secs(10);

pub async fn run(sim: Arc<Sim>) {
    let mut nodes = Informer::new(sim.store.clone(), Kind::Node);
    let mut renew = tokio::time::interval(LEASE_RENEWAL);
    loop {
        let batch = tokio::select! {
            b = nodes.next() => b,
            _ = renew.tick() => {
                renew_leases(&sim);
                continue;
            }
        };
        let objects: Vec<Arc<Obj>> = match batch {
            InformerBatch::Resync(items) => items,
            InformerBatch::Changes(changes) => {
                changes.into_iter().filter(|c| c.event != crate::store::EventType::Deleted).map(|c| c.obj).collect()
            }
        };
        for node in objects {
            let wanted = desired_taints(&node.value);
            let current: Vec<Value> = node.value["spec"]["taints"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|t| MANAGED.contains(&t["key"].as_str().unwrap_or("")) && t["effect"] == "NoSchedule")
                .cloned()
                .collect();
            let same =
                wanted.len() == current.len() && wanted.iter().all(|w| current.iter().any(|c| c["key"] == w["key"]));
            if same {
                continue;
            }
            let _ = sim.registry.mutate(Kind::Node, &node.key, Some(node.uid()), |v| {
                let mut taints: Vec<Value> = v["spec"]["taints"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|t| !(MANAGED.contains(&t["key"].as_str().unwrap_or("")) && t["effect"] == "NoSchedule"))
                    .cloned()
                    .collect();
                taints.extend(wanted);
                if taints.is_empty() {
                    v["spec"].as_object_mut().map(|m| m.remove("taints"));
                } else {
                    v["spec"]["taints"] = Value::Array(taints);
                }
                Ok(())
            });
        }
    }
}

fn desired_taints(node: &Value) -> Vec<Value> {
    let now = crate::time::now_string();
    let mut taints = Vec::new();
    if node["spec"]["unschedulable"] == true {
        taints.push(json!({"key": MANAGED[0], "effect": "NoSchedule", "timeAdded": now}));
    }
    match podutil::condition(node, "Ready").and_then(|c| c["status"].as_str()) {
        Some("True") => {}
        Some("False") => taints.push(json!({"key": MANAGED[1], "effect": "NoSchedule", "timeAdded": now})),
        _ => taints.push(json!({"key": MANAGED[2], "effect": "NoSchedule", "timeAdded": now})),
    }
    taints
}

/// Ready nodes' kubelets renew their leases; a node that is not Ready does not.
fn renew_leases(sim: &Sim) {
    let (nodes, _) = sim.store.list(Kind::Node, None);
    let now = crate::time::format_micro(crate::time::now());
    for node in nodes.iter().filter(|n| podutil::condition_true(&n.value, "Ready")) {
        let key = crate::store::ObjKey::new("kube-node-lease", &node.key.name);
        let _ = sim.registry.mutate(Kind::Lease, &key, None, |lease| {
            lease["spec"]["renewTime"] = json!(now);
            Ok(())
        });
    }
}
