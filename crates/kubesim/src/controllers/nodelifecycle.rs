//! Node lifecycle, as kube-controller-manager's node lifecycle controller:
//! - the taints derived from node state (TaintNodesByCondition and
//!   TaintBasedEvictions): `node.kubernetes.io/unschedulable:NoSchedule` on
//!   cordoned nodes, `not-ready` / `unreachable` with both `NoSchedule` and
//!   `NoExecute` when the Ready condition is False / Unknown;
//! - pods on a node that is not Ready are marked not Ready;
//! - taint-based eviction: pods on a node with a `NoExecute` taint they do
//!   not tolerate are deleted — at once, or after their `tolerationSeconds`
//!   (every pod tolerates not-ready/unreachable for 300 s by default,
//!   added at admission). On a node that is not Ready nothing finishes the
//!   deletion (the kubelet model stands still there): the pods stay
//!   Terminating until the node is Ready again or deleted.
//!
//! Delays scale with `Options::time_scale`.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::podutil;
use crate::registry::DeleteOptions;
use crate::resources::Kind;
use crate::sim::Sim;
use crate::store::{Informer, InformerBatch, Obj};
use crate::subresources::binding::set_condition;

/// (key, effect) of the taints this controller owns.
const MANAGED: [(&str, &str); 5] = [
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ("node.kubernetes.io/not-ready", "NoSchedule"),
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoSchedule"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
];

/// How often kubelets renew their node leases.
const LEASE_RENEWAL: std::time::Duration = std::time::Duration::from_secs(10);

fn managed(t: &Value) -> bool {
    MANAGED.iter().any(|(k, e)| t["key"] == *k && t["effect"] == *e)
}

pub async fn run(sim: Arc<Sim>) {
    let mut nodes = Informer::new(sim.store.clone(), Kind::Node);
    let mut renew = tokio::time::interval(LEASE_RENEWAL);
    let mut evict = tokio::time::interval(sim.scale.seconds(1).max(std::time::Duration::from_millis(100)));
    loop {
        let batch = tokio::select! {
            b = nodes.next() => b,
            _ = renew.tick() => {
                renew_leases(&sim);
                continue;
            }
            _ = evict.tick() => {
                no_execute(&sim);
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
            let wanted = desired_taints(&node.value());
            let current: Vec<Value> = node.value()["spec"]["taints"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|t| managed(t))
                .cloned()
                .collect();
            let same = wanted.len() == current.len()
                && wanted.iter().all(|w| current.iter().any(|c| c["key"] == w["key"] && c["effect"] == w["effect"]));
            if same {
                continue;
            }
            let _ = sim.registry.mutate(Kind::Node, &node.key, Some(node.uid()), |v| {
                let mut taints: Vec<Value> =
                    v["spec"]["taints"].as_array().into_iter().flatten().filter(|t| !managed(t)).cloned().collect();
                // A taint that stays keeps the time it was added (evictions count from it).
                for w in wanted {
                    let kept = current.iter().find(|c| c["key"] == w["key"] && c["effect"] == w["effect"]);
                    taints.push(kept.cloned().unwrap_or(w));
                }
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
    let taint = |key: &str, effect: &str| json!({"key": key, "effect": effect, "timeAdded": now});
    if node["spec"]["unschedulable"] == true {
        taints.push(taint("node.kubernetes.io/unschedulable", "NoSchedule"));
    }
    let key = match podutil::condition(node, "Ready").and_then(|c| c["status"].as_str()) {
        Some("True") => return taints,
        Some("False") => "node.kubernetes.io/not-ready",
        _ => "node.kubernetes.io/unreachable",
    };
    taints.push(taint(key, "NoSchedule"));
    taints.push(taint(key, "NoExecute"));
    taints
}

/// Marks the pods of nodes that are not Ready not Ready, and deletes those a
/// `NoExecute` taint evicts (see the module documentation).
fn no_execute(sim: &Sim) {
    let (nodes, _) = sim.store.list(Kind::Node, None);
    // From the stored facts, not the decoded nodes: this runs every 100 ms
    // in fast tests and almost always finds nothing.
    let affected: Vec<&Arc<Obj>> = nodes.iter().filter(|n| !n.is_ready() || n.has_no_execute_taint()).collect();
    if affected.is_empty() {
        return;
    }
    let now = crate::time::now();
    let (pods, _) = sim.store.list(Kind::Pod, None);
    for node in affected {
        let ready = node.is_ready();
        let node_value = node.value();
        let taints: Vec<&Value> = node_value["spec"]["taints"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["effect"] == "NoExecute")
            .collect();
        for pod in pods.iter().filter(|p| p.node_name() == node.key.name) {
            let v = &pod.value();
            if podutil::is_terminal(v) || podutil::is_deleting(v) {
                continue;
            }
            if !ready && podutil::condition_true(v, "Ready") {
                let _ = sim.registry.mutate(Kind::Pod, &pod.key, Some(pod.uid()), |p| {
                    set_condition(p, "Ready", "False", None, None);
                    set_condition(p, "ContainersReady", "False", None, None);
                    Ok(())
                });
            }
            if taints.iter().any(|t| evicts(sim, v, t, now)) {
                let _ = sim.registry.delete(Kind::Pod, &pod.key, &DeleteOptions::default());
            }
        }
    }
}

/// Whether `taint` (NoExecute) evicts `pod` by now: not tolerated, or tolerated
/// for `tolerationSeconds` (scaled) that have passed since it was added.
fn evicts(sim: &Sim, pod: &Value, taint: &Value, now: crate::time::Timestamp) -> bool {
    let (key, value) = (taint["key"].as_str().unwrap_or(""), taint["value"].as_str().unwrap_or(""));
    let tolerations = pod["spec"]["tolerations"].as_array().cloned().unwrap_or_default();
    let matching: Vec<&Value> = tolerations.iter().filter(|t| podutil::tolerates(t, key, value, "NoExecute")).collect();
    if matching.is_empty() {
        return true;
    }
    if matching.iter().any(|t| t["tolerationSeconds"].is_null()) {
        return false;
    }
    let seconds = matching.iter().filter_map(|t| t["tolerationSeconds"].as_i64()).min().unwrap_or(0);
    let added = taint["timeAdded"].as_str().and_then(crate::time::parse_time).unwrap_or(now);
    let elapsed: std::time::Duration = now.duration_since(added).try_into().unwrap_or_default();
    elapsed >= sim.scale.seconds(seconds)
}

/// Ready nodes' kubelets renew their leases; a node that is not Ready does not.
fn renew_leases(sim: &Sim) {
    let (nodes, _) = sim.store.list(Kind::Node, None);
    let now = crate::time::format_micro(crate::time::now());
    for node in nodes.iter().filter(|n| n.is_ready()) {
        let key = crate::store::ObjKey::new("kube-node-lease", &node.key.name);
        let _ = sim.registry.mutate(Kind::Lease, &key, None, |lease| {
            lease["spec"]["renewTime"] = json!(now);
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::nodes::NodeSpec;
    use crate::options::Options;
    use crate::store::{ObjKey, decodes_on_this_thread};

    /// The eviction scan runs every 100 ms in fast tests over every node; on
    /// a healthy cluster it must find nothing from the stored facts alone.
    /// Decoding each node there took most of a core at 5,000 nodes and left
    /// kubesim too slow to serve the daemon's scale run.
    #[test]
    fn the_eviction_scan_decodes_no_healthy_node() {
        let sim = Sim::new(Options::fast());
        for i in 0..50 {
            let node = NodeSpec::new(&format!("n-{i}")).to_node(i, "v1.35.0");
            sim.registry.create(Kind::Node, None, node, false).unwrap();
        }
        let before = decodes_on_this_thread();
        no_execute(&sim);
        assert_eq!(decodes_on_this_thread() - before, 0, "50 ready, untainted nodes");

        // A NoExecute taint is still seen: the scan looks at that node.
        sim.registry
            .mutate(Kind::Node, &ObjKey::cluster("n-7"), None, |n| {
                n["spec"]["taints"] = json!([{"key": "evict", "effect": "NoExecute"}]);
                Ok(())
            })
            .unwrap();
        let before = decodes_on_this_thread();
        no_execute(&sim);
        assert_eq!(decodes_on_this_thread() - before, 1, "the tainted node only");
    }
}
