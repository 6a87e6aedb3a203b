//! The simulated kube-scheduler: binds pending pods with the planner's own
//! scheduling model, scoring with its `least_allocated` (the default
//! profile's `LeastAllocated`, spread) as scale-down's removal simulation
//! does, and marks the ones that fit nowhere `Unschedulable`. It keeps no
//! state between calls: it reads the world and binds.

use std::borrow::Cow;
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};

use heatscaler_core::model::PodPhase;
use heatscaler_core::planner::scheduling::{Placer, SchedNode};

use crate::world::World;

/// Binds what fits of the pending pods; returns the uids of the pods bound,
/// in the order they were.
pub fn schedule(world: &mut World<'_>) -> Vec<String> {
    let snap = &world.cluster.snap;
    let mut pending: Vec<usize> = (0..snap.pods.len())
        .filter(|&i| {
            let p = &snap.pods[i];
            p.node_name.is_none() && p.deletion.is_none() && !p.is_terminal()
        })
        .collect();
    if pending.is_empty() {
        return Vec::new();
    }
    pending.sort_by(|&a, &b| {
        let (a, b) = (&snap.pods[a], &snap.pods[b]);
        b.priority.cmp(&a.priority).then(a.created.cmp(&b.created)).then(a.name.cmp(&b.name))
    });
    let ready: Vec<usize> = (0..snap.nodes.len()).filter(|&i| snap.nodes[i].ready).collect();
    let slot: FxHashMap<&str, usize> =
        ready.iter().enumerate().map(|(k, &i)| (snap.nodes[i].name.as_str(), k)).collect();
    // The filters read a node's pods only for host ports and inter-pod terms.
    let lists = snap.pods.iter().any(|p| {
        let p = &p.placement;
        !p.host_ports.is_empty()
            || !p.pod_anti_affinity.is_empty()
            || !p.pod_affinity.is_empty()
            || !p.spread.is_empty()
            || !p.preferred_pod_affinity.is_empty()
            || !p.preferred_pod_anti_affinity.is_empty()
    });
    let mut nodes: Vec<SchedNode<'_>> = ready
        .iter()
        .map(|&i| {
            let n = &snap.nodes[i];
            SchedNode {
                name: Cow::Borrowed(n.name.as_str()),
                labels: &n.labels,
                taints: Cow::Borrowed(n.taints.as_slice()),
                unschedulable: n.unschedulable,
                allocatable: n.allocatable.clone(),
                requested: Default::default(),
                pods: Vec::new(),
                excluded: false,
            }
        })
        .collect();
    for p in snap.pods.iter().filter(|p| !p.is_terminal()) {
        if let Some(&k) = p.node_name.as_deref().and_then(|n| slot.get(n)) {
            if lists {
                nodes[k].add(p);
            } else {
                nodes[k].requested += &p.requests;
            }
        }
    }
    // The whole cluster: spread floors and affinity domains as kube-scheduler sees them.
    let mut placer = Placer::new(nodes).whole_cluster();
    // Pods alike (placement, requests, owner) that found no node: the
    // next one will not either, nodes only fill up within a call (a pod with
    // required pod affinity excepted: a pod placed since may satisfy it).
    let mut hopeless: FxHashSet<(usize, &heatscaler_core::model::Resources, Option<&str>)> = FxHashSet::default();
    let mut decisions = Vec::with_capacity(pending.len());
    for &i in &pending {
        let pod = &snap.pods[i];
        let class = (Arc::as_ptr(&pod.placement) as usize, &pod.requests, pod.owner.as_ref().map(|o| o.uid.as_str()));
        if pod.placement.pod_affinity.is_empty() && hopeless.contains(&class) {
            decisions.push((pod.uid.to_string(), None));
            continue;
        }
        // Preferred terms and ScheduleAnyway spread first, then
        // LeastAllocated: the ranking scale-down's simulation binds with.
        let best = placer.best(pod, None);
        match best {
            Some(k) => placer.place(pod, k),
            None => {
                hopeless.insert(class);
            }
        }
        decisions.push((pod.uid.to_string(), best.map(|k| placer.nodes()[k].name.to_string())));
    }
    let now = world.now();
    let mut bound = Vec::new();
    for (uid, node) in decisions {
        let Some(pod) = world.cluster.pod_mut(&uid) else { continue };
        match node {
            Some(node) => {
                pod.node_name = Some(node);
                pod.phase = PodPhase::Running;
                pod.unschedulable_since = None;
                let created = pod.created;
                world.journal.bound(&uid, created, now);
                world.containers_started(&uid);
                bound.push(uid);
            }
            None => {
                if pod.unschedulable_since.is_none() {
                    pod.unschedulable_since = Some(now);
                    let created = pod.created;
                    world.wake_autoscaler();
                    world.journal.unschedulable(&uid, created);
                }
            }
        }
    }
    bound
}
