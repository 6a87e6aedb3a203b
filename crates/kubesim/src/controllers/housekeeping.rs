//! Cluster housekeeping the control plane does in the background:
//! garbage collection of dependents whose owners are gone, pod GC for pods
//! bound to nodes that no longer exist, namespace termination, and the event TTL.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::podutil;
use crate::registry::DeleteOptions;
use crate::resources::Kind;
use crate::sim::Sim;
use crate::store::{EventType, Informer, InformerBatch, ObjKey};
use crate::subresources::binding::set_condition;
use crate::time;

pub async fn run(sim: Arc<Sim>) {
    let mut owners = [Kind::Deployment, Kind::ReplicaSet, Kind::DaemonSet, Kind::VerticalPodAutoscaler]
        .map(|k| Informer::new(sim.store.clone(), k));
    let mut nodes = Informer::new(sim.store.clone(), Kind::Node);
    let mut namespaces = Informer::new(sim.store.clone(), Kind::Namespace);
    // Pod GC's period; scanning every pod, so not shortened below a few seconds.
    let mut periodic = tokio::time::interval(sim.scale.seconds(20).max(Duration::from_secs(2)));
    let mut events_ttl = tokio::time::interval(Duration::from_secs(60));
    loop {
        let [a, b, c, d] = &mut owners;
        tokio::select! {
            batch = a.next() => collect_garbage(&sim, batch),
            batch = b.next() => collect_garbage(&sim, batch),
            batch = c.next() => collect_garbage(&sim, batch),
            batch = d.next() => collect_garbage(&sim, batch),
            batch = nodes.next() => {
                if let InformerBatch::Changes(changes) = batch
                    && changes.iter().any(|c| c.event == EventType::Deleted)
                {
                    gc_orphaned_pods(&sim);
                }
            }
            batch = namespaces.next() => {
                drop(batch);
                terminate_namespaces(&sim);
            }
            _ = periodic.tick() => {
                gc_orphaned_pods(&sim);
                terminate_namespaces(&sim);
            }
            _ = events_ttl.tick() => expire_events(&sim),
        }
    }
}

/// Background cascading deletion: dependents all of whose owners are gone are deleted.
fn collect_garbage(sim: &Sim, batch: InformerBatch) {
    let InformerBatch::Changes(changes) = batch else { return };
    for change in changes.iter().filter(|c| c.event == EventType::Deleted) {
        let owner_uid = change.obj.uid();
        for kind in Kind::DEPENDENTS {
            let (items, _) = sim.store.list(kind, Some(&change.obj.key.namespace));
            for dep in items.into_iter().filter(|d| d.owned_by(owner_uid)) {
                let refs = dep.value()["metadata"]["ownerReferences"].as_array().cloned().unwrap_or_default();
                if !refs.iter().any(|r| r["uid"] == owner_uid) {
                    continue;
                }
                let any_alive = refs.iter().any(|r| owner_alive(sim, &dep.key.namespace, r));
                if !any_alive {
                    let opts = DeleteOptions { precondition_uid: Some(dep.uid().to_string()), ..Default::default() };
                    let _ = sim.registry.delete(kind, &dep.key, &opts);
                }
            }
        }
    }
}

fn owner_alive(sim: &Sim, namespace: &str, owner: &Value) -> bool {
    let Some(kind) = owner["kind"].as_str().and_then(Kind::from_kind_name) else { return true };
    let name = owner["name"].as_str().unwrap_or("");
    let key = if kind.namespaced() { ObjKey::new(namespace, name) } else { ObjKey::cluster(name) };
    sim.store.get(kind, &key).is_some_and(|o| o.uid() == owner["uid"].as_str().unwrap_or(""))
}

/// Pods bound to nodes that do not exist: marked Failed (DisruptionTarget) and force-deleted.
///
/// The nodes are listed once, after the pods (a node created in between is
/// then seen): looking each pod's node up in the store took its lock
/// 300,000 times every 2 s at 10,000 nodes, half of kubesim's CPU, and held
/// up the lists it served.
fn gc_orphaned_pods(sim: &Sim) {
    let (pods, _) = sim.store.list(Kind::Pod, None);
    let (nodes, _) = sim.store.list(Kind::Node, None);
    let nodes: std::collections::HashSet<&str> = nodes.iter().map(|n| n.key.name.as_str()).collect();
    for pod in pods {
        let node = pod.node_name();
        if node.is_empty() || nodes.contains(node) {
            continue;
        }
        let uid = pod.uid().to_string();
        let _ = sim.registry.mutate(Kind::Pod, &pod.key, Some(&uid), |p| {
            if !podutil::is_terminal(p) {
                p["status"]["phase"] = json!("Failed");
            }
            set_condition(p, "DisruptionTarget", "True", Some("DeletionByPodGC"), Some("PodGC: node no longer exists"));
            Ok(())
        });
        let _ = sim.registry.finish_deletion(Kind::Pod, &pod.key, &uid);
    }
}

/// Namespaces being deleted: delete their content, then finalize them.
fn terminate_namespaces(sim: &Sim) {
    let (namespaces, _) = sim.store.list(Kind::Namespace, None);
    for ns in namespaces.into_iter().filter(|n| n.is_deleting()) {
        let name = ns.key.name.clone();
        let mut remaining = 0;
        for kind in Kind::ALL.into_iter().filter(|k| k.namespaced()) {
            let (items, _) = sim.store.list(kind, Some(&name));
            remaining += items.len();
            for obj in items {
                if !obj.is_deleting() {
                    let _ = sim.registry.delete(kind, &obj.key, &DeleteOptions::default());
                }
            }
        }
        if remaining == 0 {
            let _ = sim.registry.mutate(Kind::Namespace, &ns.key, Some(ns.uid()), |v| {
                v["spec"]["finalizers"] = json!([]);
                Ok(())
            });
        }
    }
}

fn expire_events(sim: &Sim) {
    let ttl = sim.options.event_ttl;
    let now = time::now();
    let (events, _) = sim.store.list(Kind::Event, None);
    for ev in events {
        let v = &ev.value();
        let last = v["lastTimestamp"]
            .as_str()
            .or(v["eventTime"].as_str())
            .or(v["metadata"]["creationTimestamp"].as_str())
            .and_then(time::parse_time);
        let expired = last.and_then(|t| t.checked_add(ttl).ok()).is_some_and(|deadline| deadline < now);
        if expired {
            let _ = sim.registry.delete(Kind::Event, &ev.key, &DeleteOptions::default());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::nodes::NodeSpec;
    use crate::options::Options;
    use crate::store::locks_on_this_thread;

    /// Pod GC fails the pods bound to a node that is gone and keeps the
    /// others, taking the store's lock a fixed number of times however many
    /// pods there are (once a pod, it held up kubesim's lists at 10,000 nodes).
    #[test]
    fn pod_gc_removes_pods_of_missing_nodes_in_a_few_store_reads() {
        let sim = Sim::new(Options::fast());
        sim.registry.create(Kind::Namespace, None, json!({"metadata": {"name": "a"}}), false).unwrap();
        sim.registry.create(Kind::Node, None, NodeSpec::new("here").to_node(0, "v1.35.0"), false).unwrap();
        for (i, node) in ["here", "gone", "here", "here"].into_iter().enumerate() {
            let pod = json!({"metadata": {"name": format!("p-{i}"), "namespace": "a"},
                "spec": {"nodeName": node, "containers": [{"name": "app", "image": "app"}]}});
            sim.registry.create(Kind::Pod, Some("a"), pod, false).unwrap();
        }
        let before = locks_on_this_thread();
        gc_orphaned_pods(&sim);
        let (pods, _) = sim.store.list(Kind::Pod, None);
        let names: Vec<&str> = pods.iter().map(|p| p.key.name.as_str()).collect();
        assert_eq!(names, ["p-0", "p-2", "p-3"], "the pod on the missing node is gone");
        // Two lists, and the pod GC'd: its status write and its deletion.
        assert_eq!(locks_on_this_thread() - before - 1, 4, "not one look-up per pod");
    }
}
