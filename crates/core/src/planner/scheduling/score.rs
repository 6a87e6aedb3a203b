//! How the scheduler ranks the nodes a pod fits: kube-scheduler's default
//! profile scores with `NodeResourcesFit` in its `LeastAllocated` strategy,
//! which sends each pod to the emptiest node. The simulator's scheduler binds
//! with this score, and scale-down's removal simulation places a drain's
//! replacements with it, so the planner judges a drain by where its pods will
//! land, not by where a first-fit search could put them (issue 17: a small
//! replacement took the emptiest node, the only room a large one needed).
//!
//! Not modelled: `NodeResourcesBalancedAllocation` (the default profile's
//! other resource score, equal weight) and the non-resource scores; ties go
//! to the first node by name, where the real scheduler picks at random.

use crate::model::Pod;

use super::SchedNode;

/// `LeastAllocated`: the mean share of CPU and memory left free on `node`
/// once `pod` is placed there (higher is preferred).
pub fn least_allocated(node: &SchedNode<'_>, pod: &Pod) -> f64 {
    let share = |alloc: i64, used: i64| if alloc > 0 { (alloc - used) as f64 / alloc as f64 } else { 0.0 };
    let cpu = share(node.allocatable.cpu_milli, node.requested.cpu_milli + pod.requests.cpu_milli);
    let mem = share(node.allocatable.memory, node.requested.memory + pod.requests.memory);
    (cpu + mem) / 2.0
}
