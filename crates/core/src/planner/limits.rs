//! How far a group may grow in one pass: its max size, `max-nodes-per-scale-up`,
//! and the cluster-wide limits (`max-nodes-total`, `max-cores-total`,
//! `max-memory-total`) counted over all nodes plus capacity already on its way.

use crate::model::Resources;

use super::explain::{GroupRejection, Limit};
use super::index::GroupIx;
use super::{Cx, Pass};

/// How many more minions the cluster-wide limits allow, per limit.
pub struct Headroom {
    nodes: Option<i64>,
    cores: Option<i64>,
    memory: Option<i64>,
}

impl Headroom {
    pub fn new(cx: &Cx<'_>, pass: &Pass<'_>) -> Self {
        let limits = &cx.policy.limits;
        let mut nodes = cx.ix.snap.nodes.len() as i64;
        let mut cores = 0i64;
        let mut memory = 0i64;
        for node in &cx.ix.snap.nodes {
            cores += cores_of(&node.allocatable);
            memory += node.allocatable.memory;
        }
        for (g, view) in pass.groups.iter() {
            let n = i64::from(view.unregistered);
            nodes += n;
            if let Some(shape) = &cx.ix.group(g).template {
                cores += n * cores_of(&shape.allocatable);
                memory += n * shape.allocatable.memory;
            }
        }
        Self {
            nodes: limits.max_nodes_total.map(|m| i64::from(m) - nodes),
            cores: limits.max_cores_total.map(|m| i64::from(m) - cores),
            memory: limits.max_memory_total.as_ref().map(|m| m.as_units() - memory),
        }
    }

    /// Most minions of this shape the limits allow, and the limit that binds.
    pub fn allows(&self, shape: &Resources) -> (i64, Option<Limit>) {
        let per = |left: Option<i64>, each: i64, limit: Limit| {
            left.map(|l| (if each > 0 { l / each } else { i64::MAX }, limit))
        };
        [
            per(self.nodes, 1, Limit::MaxNodesTotal),
            per(self.cores, cores_of(shape), Limit::MaxCoresTotal),
            per(self.memory, shape.memory, Limit::MaxMemoryTotal),
        ]
        .into_iter()
        .flatten()
        .min_by_key(|(n, _)| *n)
        .map_or((i64::MAX, None), |(n, l)| (n.max(0), Some(l)))
    }

    pub fn consume(&mut self, n: u32, shape: &Resources) {
        let n = i64::from(n);
        if let Some(x) = self.nodes.as_mut() {
            *x -= n;
        }
        if let Some(x) = self.cores.as_mut() {
            *x -= n * cores_of(shape);
        }
        if let Some(x) = self.memory.as_mut() {
            *x -= n * shape.memory;
        }
    }
}

fn cores_of(r: &Resources) -> i64 {
    (r.cpu_milli + 999) / 1000
}

/// How far group `g` may grow now, and why not further.
pub fn capacity(
    cx: &Cx<'_>,
    pass: &Pass<'_>,
    g: GroupIx,
    headroom: &Headroom,
) -> Result<(u32, GroupRejection), GroupRejection> {
    let group = cx.ix.group(g);
    let Some(shape) = &group.template else { return Err(GroupRejection::NoTemplate) };
    if let Some(until) = pass.groups[g].backoff_until {
        return Err(GroupRejection::BackedOff { until });
    }
    if group.stack_busy {
        return Err(GroupRejection::StackBusy);
    }
    if pass.repairing.contains(&g) {
        return Err(GroupRejection::Repairing);
    }
    let room = group.max_size.saturating_sub(group.desired);
    let per_step = cx.policy.scale_up.max_nodes_per_scale_up;
    let (cluster, limit) = headroom.allows(&shape.allocatable);
    let cluster = u32::try_from(cluster).unwrap_or(u32::MAX);
    let (cap, why) = if room <= per_step && room <= cluster {
        (room, GroupRejection::MaxSize { max: group.max_size })
    } else if per_step <= cluster {
        (per_step, GroupRejection::MaxNodesPerScaleUp { max: per_step })
    } else {
        (cluster, GroupRejection::ClusterLimit { limit: limit.unwrap_or(Limit::MaxNodesTotal) })
    };
    if cap == 0 { Err(why) } else { Ok((cap, why)) }
}
