//! Scale-up as cluster-autoscaler documents it: unschedulable pods that fit
//! neither existing nor upcoming nodes are bin-packed onto template nodes of
//! each group (the `binpacking` estimator); the expanders of `--expander`
//! narrow the groups that help, in order, each keeping its ties for the next,
//! and a random pick ends the chain (the `random` expander alone by
//! default); one group grows per loop.

use std::collections::BTreeSet;

use rand::Rng;

use heatscaler_core::model::{MemberStatus, Pod, Timestamp};
use heatscaler_core::planner::action::ScaleUp;
use heatscaler_core::planner::for_peers::{GroupIx, Index};
use heatscaler_core::planner::scheduling::{Placer, SchedNode, fits};
use heatscaler_core::policy::Expander;

use super::{CaDefaults, PeerExpander};

/// Pods named in the action (the count is exact).
const PODS_NAMED: usize = 5;

pub(super) fn plan(ca: &mut CaDefaults, ix: &Index<'_>, busy: &BTreeSet<GroupIx>, now: Timestamp) -> Option<ScaleUp> {
    let pending: Vec<&Pod> =
        ix.unbound.iter().copied().filter(|p| p.unschedulable_since.is_some() && !p.is_daemonset()).collect();
    if pending.is_empty() {
        return None;
    }
    let remaining = not_schedulable_anywhere(ix, pending);
    if remaining.is_empty() {
        return None;
    }
    let total: u32 = ix.snap.groups.iter().map(|g| g.desired).sum();
    let mut options = Vec::new();
    for (g, group) in ix.groups() {
        if group.stack_busy || busy.contains(&g) || ca.backed_off(&group.name, now) {
            continue;
        }
        let mut cap = group.max_size.saturating_sub(group.desired);
        if let Some(max_total) = ca.max_nodes_total {
            cap = cap.min(max_total.saturating_sub(total));
        }
        let Some(template) = template(ix, g) else { continue };
        if cap == 0 {
            continue;
        }
        let (nodes, helped) = binpack(&remaining, &template, cap);
        if !helped.is_empty() {
            options.push((g, nodes, helped));
        }
    }
    if options.is_empty() {
        return None;
    }
    for expander in ca.config.expanders {
        options = best(*expander, ix, options);
    }
    let (g, nodes, helped) = options.swap_remove(ca.rng.random_range(0..options.len()));
    let group = ix.group(g);
    Some(ScaleUp {
        group: group.name.clone(),
        expected_desired: group.desired,
        new_desired: group.desired + nodes,
        pods: helped.iter().take(PODS_NAMED).map(|p| p.key()).collect(),
        pod_count: helped.len(),
        expander: match ca.config.expanders.first() {
            Some(PeerExpander::LeastWaste) => Expander::LeastWaste,
            Some(PeerExpander::Price | PeerExpander::CheapestFit) => Expander::Price,
            Some(PeerExpander::Priority) => Expander::Priority,
            None => Expander::Random,
        },
    })
}

/// A group that helps: it, how many new nodes, and the pods they would take.
type Candidate<'a> = (GroupIx, u32, Vec<&'a Pod>);

/// The options one expander finds best, ties kept (for the next expander).
fn best<'a>(expander: PeerExpander, ix: &Index<'a>, options: Vec<Candidate<'a>>) -> Vec<Candidate<'a>> {
    let scores: Vec<f64> = options.iter().map(|o| score(expander, ix, o)).collect();
    let least = scores.iter().copied().fold(f64::INFINITY, f64::min);
    options.into_iter().zip(scores).filter(|(_, s)| *s == least).map(|(o, _)| o).collect()
}

/// Lower is better.
fn score(expander: PeerExpander, ix: &Index<'_>, (g, nodes, helped): &Candidate<'_>) -> f64 {
    let group = ix.group(*g);
    let Some(shape) = group.template.as_ref() else { return f64::INFINITY };
    let n = f64::from(*nodes);
    match expander {
        // The idle share of the new nodes' CPU plus that of their memory
        // (cluster-autoscaler's least-waste: GPUs and other resources not counted).
        PeerExpander::LeastWaste => {
            let idle = |requested: i64, per_node: i64| {
                let have = per_node as f64 * n;
                if have > 0.0 { (have - requested as f64) / have } else { 0.0 }
            };
            let cpu: i64 = helped.iter().map(|p| p.requests.cpu_milli).sum();
            let memory: i64 = helped.iter().map(|p| p.requests.memory).sum();
            idle(cpu, shape.allocatable.cpu_milli) + idle(memory, shape.allocatable.memory)
        }
        // What the new nodes cost against what the pods they take are worth,
        // each pod priced at the cheapest price per unit of its dominant
        // resource among the groups (cluster-autoscaler's price expander
        // divides the nodes' price by the pods' price the same way; its
        // preferred-node-size term is not modelled).
        PeerExpander::Price => {
            let worth: f64 = helped.iter().map(|p| pod_worth(ix, p)).sum();
            group.price_per_hour * n / worth.max(f64::MIN_POSITIVE)
        }
        // Karpenter-like: the lowest price of the new nodes per pod they place.
        PeerExpander::CheapestFit => group.price_per_hour * n / helped.len().max(1) as f64,
        // The priority expander: the highest priority wins.
        PeerExpander::Priority => -f64::from(group.priority),
    }
}

/// A pod's requests priced at the cheapest price per unit of each resource
/// any group offers, its dominant resource counted (what the pod would cost
/// on the flavour that sells that resource cheapest).
fn pod_worth(ix: &Index<'_>, pod: &Pod) -> f64 {
    use heatscaler_core::model::Resources;
    let r = &pod.requests;
    let named: [(&str, i64); 2] = [(Resources::CPU, r.cpu_milli), (Resources::MEMORY, r.memory)];
    let mut worth: f64 = 0.0;
    for (name, amount) in named.into_iter().chain(r.extended.iter().map(|(n, a)| (n.as_str(), *a))) {
        if amount <= 0 {
            continue;
        }
        let unit = ix
            .groups()
            .filter_map(|(_, g)| {
                let have = g.template.as_ref()?.allocatable.get(name);
                (have > 0).then(|| g.price_per_hour / have as f64)
            })
            .fold(f64::INFINITY, f64::min);
        if unit.is_finite() {
            worth = worth.max(unit * amount as f64);
        }
    }
    worth
}

/// Pending pods that fit no Ready node and no upcoming node (members asked
/// of Heat whose node is not Ready yet), as the scheduler would place them.
fn not_schedulable_anywhere<'a>(ix: &Index<'a>, pending: Vec<&'a Pod>) -> Vec<&'a Pod> {
    let mut nodes: Vec<SchedNode<'a>> =
        ix.nodes().filter(|&i| ix.node(i).ready && ix.removal(i).is_none()).map(|i| ix.sched_node(i)).collect();
    for (g, group) in ix.groups() {
        // Live members without a Ready node, and desired size Heat has not
        // turned into members yet.
        let live =
            |m: &&heatscaler_core::model::Member| matches!(m.status, MemberStatus::InProgress | MemberStatus::Complete);
        let booting =
            ix.members(g).filter(|(k, m)| live(m) && !ix.node_of(*k).is_some_and(|i| ix.node(i).ready)).count() as u32;
        let listed = group.members.iter().filter(live).count() as u32;
        let upcoming = booting + group.desired.saturating_sub(listed);
        if let Some(t) = template(ix, g) {
            nodes.extend(std::iter::repeat_n(t, upcoming as usize));
        }
    }
    let mut placer = Placer::new(nodes);
    let mut left = Vec::new();
    for pod in pending {
        match placer.find(pod, None) {
            Some(n) => placer.place(pod, n),
            None => left.push(pod),
        }
    }
    left
}

/// A new node of group `g` with the DaemonSet pods it would run.
fn template<'a>(ix: &Index<'a>, g: GroupIx) -> Option<SchedNode<'a>> {
    let group = ix.group(g);
    let shape = group.template.as_ref()?;
    Some(SchedNode::new_minion(format!("template-{}", group.name), shape, &ix.daemonsets))
}

/// The binpacking estimator: pods by decreasing size (CPU plus memory share
/// of the template), each onto the first new node it fits, opening a node
/// when none does, at most `cap` nodes. Returns the nodes and the pods placed.
fn binpack<'a>(pods: &[&'a Pod], template: &SchedNode<'a>, cap: u32) -> (u32, Vec<&'a Pod>) {
    let share = |p: &Pod| {
        let a = &template.allocatable;
        let part = |req: i64, alloc: i64| if alloc > 0 { req as f64 / alloc as f64 } else { 0.0 };
        part(p.requests.cpu_milli, a.cpu_milli) + part(p.requests.memory, a.memory)
    };
    let mut sorted: Vec<&'a Pod> = pods.iter().copied().filter(|p| fits(p, template)).collect();
    sorted.sort_by(|a, b| share(b).total_cmp(&share(a)));
    let mut placer = Placer::new(Vec::new());
    let mut placed = Vec::new();
    for pod in sorted {
        let slot = match placer.find(pod, None) {
            Some(n) => n,
            None if (placer.nodes().len() as u32) < cap => placer.push(template.clone()),
            None => continue,
        };
        placer.place(pod, slot);
        placed.push(pod);
    }
    (placer.nodes().len() as u32, placed)
}
