//! How the scheduler ranks the nodes a pod fits, as kube-scheduler's default
//! profile does: each score plugin rates every feasible node, normalises its
//! ratings to 0–100 over them, and the node with the highest weighted sum
//! wins. The simulator's scheduler binds with this ranking, and scale-down's
//! removal simulation places a drain's replacements with it, so the planner
//! judges a drain by where its pods will land, not by where a first-fit
//! search could put them (issue 17: a small replacement took the emptiest
//! node, the only room a large one needed).
//!
//! The plugins the model has, with the default profile's weights
//! (`pkg/scheduler/apis/config/v1/default_plugins.go`): `InterPodAffinity`
//! (2), `PodTopologySpread` for `ScheduleAnyway` constraints (2) and
//! `NodeResourcesFit` in its `LeastAllocated` strategy (1). Not modelled:
//! `NodeResourcesBalancedAllocation` (1), `TaintToleration` (3; it only
//! separates nodes by `PreferNoSchedule` taints), `NodeAffinity` (2; preferred
//! node affinity), `ImageLocality` (1). `LeastAllocated` is kept as a real
//! number where the scheduler truncates to an integer, so pods without
//! preferences rank nodes exactly as before; ties go to the first node by
//! name, where the real scheduler picks at random.

use crate::model::Pod;

use super::SchedNode;

/// The highest normalised score of one plugin (`framework.MaxNodeScore`).
pub(crate) const MAX_NODE_SCORE: i64 = 100;
/// The default profile's plugin weights.
pub(crate) const INTER_POD_AFFINITY_WEIGHT: i64 = 2;
pub(crate) const POD_TOPOLOGY_SPREAD_WEIGHT: i64 = 2;
pub(crate) const NODE_RESOURCES_FIT_WEIGHT: f64 = 1.0;

/// `LeastAllocated`: the mean share of CPU and memory left free on `node`
/// once `pod` is placed there (higher is preferred).
pub fn least_allocated(node: &SchedNode<'_>, pod: &Pod) -> f64 {
    let share = |alloc: i64, used: i64| if alloc > 0 { (alloc - used) as f64 / alloc as f64 } else { 0.0 };
    let cpu = share(node.allocatable.cpu_milli, node.requested.cpu_milli + pod.requests.cpu_milli);
    let mem = share(node.allocatable.memory, node.requested.memory + pod.requests.memory);
    (cpu + mem) / 2.0
}

/// `InterPodAffinity`'s `NormalizeScore`: each node's raw score scaled
/// between the lowest (0) and the highest (100) over the feasible nodes,
/// truncated; all 0 when they are equal.
pub(crate) fn normalize_affinity(raw: &[i64]) -> Vec<i64> {
    let (Some(&min), Some(&max)) = (raw.iter().min(), raw.iter().max()) else { return Vec::new() };
    let spread = max - min;
    raw.iter()
        .map(|&s| if spread > 0 { (MAX_NODE_SCORE as f64 * ((s - min) as f64 / spread as f64)) as i64 } else { 0 })
        .collect()
}

/// `PodTopologySpread`'s scores for the `ScheduleAnyway` constraints, from
/// the matching pods in each feasible node's domain per constraint (`None`:
/// the node lacks a key) and each constraint's `max_skew`. Raw score: Σ count
/// × ln(domains + 2) + (max_skew − 1), rounded, the domains counted among the
/// feasible nodes; normalised as `100 × (max + min − s) / max` (fewer
/// matching pods score higher), a node lacking a key 0. A pod without such
/// constraints scores 0 everywhere (the plugin skips it).
pub(crate) fn spread_scores(counts: &[Option<Vec<u32>>], domains: &[usize], max_skews: &[u32]) -> Vec<i64> {
    if max_skews.is_empty() {
        return vec![0; counts.len()];
    }
    let raw: Vec<Option<i64>> = counts
        .iter()
        .map(|c| {
            let c = c.as_ref()?;
            let sum: f64 = c
                .iter()
                .zip(domains)
                .zip(max_skews)
                .map(|((&n, &size), &skew)| f64::from(n) * ((size + 2) as f64).ln() + f64::from(skew) - 1.0)
                .sum();
            Some(sum.round() as i64)
        })
        .collect();
    let min = raw.iter().flatten().copied().min().unwrap_or(0);
    let max = raw.iter().flatten().copied().max().unwrap_or(0);
    raw.iter()
        .map(|s| match s {
            None => 0,
            Some(_) if max == 0 => MAX_NODE_SCORE,
            Some(s) => MAX_NODE_SCORE * (max + min - s) / max,
        })
        .collect()
}

/// The weighted sum of the plugins' normalised scores, `LeastAllocated`
/// left out for a first-fit search (`free` None).
pub(crate) fn total(affinity: i64, spread: i64, free: Option<f64>) -> f64 {
    let plugins = (INTER_POD_AFFINITY_WEIGHT * affinity + POD_TOPOLOGY_SPREAD_WEIGHT * spread) as f64;
    plugins + free.map_or(0.0, |f| NODE_RESOURCES_FIT_WEIGHT * MAX_NODE_SCORE as f64 * f)
}
