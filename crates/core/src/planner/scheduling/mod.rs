//! The scheduling model: the kube-scheduler filter predicates that decide
//! whether a pod fits a node, with the scheduler's own wording for "why not".
//!
//! Used by scale-up (do pending pods fit existing, upcoming or new minions?),
//! by scale-down (can every pod of a node move elsewhere?) and by the
//! simulator's scheduler — one model, so the simulator cannot disagree with
//! the planner about what fits.

mod free_index;
mod placer;
mod score;
mod topology;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::model::{NodeShape, Pod, ResourceShortfall, Resources, Taint, TaintEffect};

pub use placer::Placer;
pub use score::least_allocated;
pub(crate) use topology::{Domains, Prepared};
pub use topology::{check_among, preference};

use super::protocol::UNSCHEDULABLE_TAINT;

/// A node as the scheduler model sees it: its constraints, what is already
/// requested on it, and the pods that matter for anti-affinity and host ports.
#[derive(Clone, Debug)]
pub struct SchedNode<'a> {
    pub name: Cow<'a, str>,
    pub labels: &'a BTreeMap<String, String>,
    pub taints: Cow<'a, [Taint]>,
    pub unschedulable: bool,
    pub allocatable: Resources,
    pub requested: Resources,
    pub pods: Vec<&'a Pod>,
    /// Taken out of consideration for good in this pass (e.g. being removed).
    pub excluded: bool,
}

impl<'a> SchedNode<'a> {
    /// A minion not yet created: the group's node shape, with the DaemonSet
    /// pods that would land on it already requesting their share.
    pub fn new_minion(name: String, shape: &'a NodeShape, daemonsets: &[&'a Pod]) -> Self {
        let mut node = SchedNode {
            name: Cow::Owned(name),
            labels: &shape.labels,
            taints: Cow::Borrowed(shape.taints.as_slice()),
            unschedulable: false,
            allocatable: shape.allocatable.clone(),
            requested: Resources::default(),
            pods: Vec::new(),
            excluded: false,
        };
        for &ds in daemonsets {
            if fits(ds, &node) {
                node.add(ds);
            }
        }
        node
    }

    pub fn add(&mut self, pod: &'a Pod) {
        self.requested += &pod.requests;
        self.pods.push(pod);
    }

    /// Undoes the latest [`SchedNode::add`] of `pod`.
    pub fn remove(&mut self, pod: &Pod) {
        if let Some(i) = self.pods.iter().rposition(|p| std::ptr::eq(*p, pod)) {
            self.pods.remove(i);
            self.requested -= &pod.requests;
        }
    }
}

/// Why a pod does not fit a node: the first failing kube-scheduler filter.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(tag = "filter", rename_all = "kebab-case")]
pub enum Unfit {
    Unschedulable,
    Taint {
        key: String,
        value: String,
    },
    NodeAffinity,
    HostPorts,
    Resources {
        resource: String,
    },
    AntiAffinity,
    ExistingAntiAffinity,
    Affinity,
    TopologySpread,
    /// Left out by the caller (being removed, the node being drained itself).
    Excluded,
}

impl fmt::Display for Unfit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unfit::Unschedulable => f.write_str("node(s) were unschedulable"),
            Unfit::Taint { key, value } => write!(f, "node(s) had untolerated taint {{{key}: {value}}}"),
            Unfit::NodeAffinity => f.write_str("node(s) didn't match Pod's node affinity/selector"),
            Unfit::HostPorts => f.write_str("node(s) didn't have free ports for the requested pod ports"),
            Unfit::Resources { resource } => write!(f, "Insufficient {resource}"),
            Unfit::AntiAffinity => f.write_str("node(s) didn't match pod anti-affinity rules"),
            Unfit::ExistingAntiAffinity => f.write_str("node(s) didn't satisfy existing pods anti-affinity rules"),
            Unfit::Affinity => f.write_str("node(s) didn't match pod affinity rules"),
            Unfit::TopologySpread => f.write_str("node(s) didn't match pod topology spread constraints"),
            Unfit::Excluded => f.write_str("node(s) are being removed"),
        }
    }
}

impl From<ResourceShortfall> for Unfit {
    fn from(s: ResourceShortfall) -> Self {
        Unfit::Resources { resource: s.resource }
    }
}

/// The taint a cordon amounts to, for tolerations to be checked against.
static CORDON: std::sync::LazyLock<Taint> = std::sync::LazyLock::new(|| Taint {
    key: UNSCHEDULABLE_TAINT.into(),
    value: None,
    effect: TaintEffect::NoSchedule,
});

/// All filters, in kube-scheduler's order; the first failure is the reason.
pub fn check(pod: &Pod, node: &SchedNode<'_>) -> Result<(), Unfit> {
    match first_miss(pod, node) {
        None => Ok(()),
        Some(miss) => Err(miss.into()),
    }
}

/// [`check`] without saying why: nothing is allocated, for placement loops.
pub fn fits(pod: &Pod, node: &SchedNode<'_>) -> bool {
    first_miss(pod, node).is_none()
}

/// The filters that depend only on the node, not on what runs there:
/// cordon, taints, node selector and required node affinity.
pub fn check_node(pod: &Pod, node: &SchedNode<'_>) -> Result<(), Unfit> {
    match node_miss(pod, node) {
        None => Ok(()),
        Some(miss) => Err(miss.into()),
    }
}

/// Why a pod does not fit, borrowed from the pod and the node: the hot paths
/// (placement, "0/N nodes" summaries) compare and count these without
/// allocating; [`Unfit`] is made only for what is reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Miss<'a> {
    Excluded,
    Unschedulable,
    Taint(&'a Taint),
    NodeAffinity,
    HostPorts,
    Resource(&'a str),
    AntiAffinity,
    ExistingAntiAffinity,
    Affinity,
    TopologySpread,
}

impl From<Miss<'_>> for Unfit {
    fn from(m: Miss<'_>) -> Self {
        match m {
            Miss::Excluded => Unfit::Excluded,
            Miss::Unschedulable => Unfit::Unschedulable,
            Miss::Taint(t) => Unfit::Taint { key: t.key.clone(), value: t.value.clone().unwrap_or_default() },
            Miss::NodeAffinity => Unfit::NodeAffinity,
            Miss::HostPorts => Unfit::HostPorts,
            Miss::Resource(r) => Unfit::Resources { resource: r.to_string() },
            Miss::AntiAffinity => Unfit::AntiAffinity,
            Miss::ExistingAntiAffinity => Unfit::ExistingAntiAffinity,
            Miss::Affinity => Unfit::Affinity,
            Miss::TopologySpread => Unfit::TopologySpread,
        }
    }
}

/// All filters with `node` as the whole world (a domain of one node).
pub(crate) fn first_miss<'a>(pod: &'a Pod, node: &'a SchedNode<'_>) -> Option<Miss<'a>> {
    let nodes = std::slice::from_ref(node);
    let domains = Domains::alone(nodes);
    let prepared = Prepared::new(pod, &domains);
    first_miss_in(pod, &domains, 0, &prepared)
}

/// All filters for node `i` of `domains`, whose other nodes' pods count for
/// terms over wider topology keys; `prepared` holds what is per pod, not per
/// node (spread floors, whether the pod is the first of its affinity group).
pub(crate) fn first_miss_in<'a>(
    pod: &'a Pod,
    domains: &Domains<'a, '_>,
    i: usize,
    prepared: &Prepared,
) -> Option<Miss<'a>> {
    let node = &domains.nodes[i];
    node_miss(pod, node)
        .or_else(|| host_ports_miss(pod, node))
        .or_else(|| resources_miss(&pod.requests, &node.allocatable, &node.requested).map(Miss::Resource))
        .or_else(|| topology::inter_pod_miss(pod, domains, i, prepared))
        .or_else(|| topology::spread_miss(pod, domains, i, prepared))
}

fn node_miss<'a>(pod: &'a Pod, node: &'a SchedNode<'_>) -> Option<Miss<'a>> {
    let p = &pod.placement;
    if node.excluded {
        return Some(Miss::Excluded);
    }
    if node.unschedulable && !p.tolerations.iter().any(|t| t.tolerates(&CORDON)) {
        return Some(Miss::Unschedulable);
    }
    for taint in node.taints.iter() {
        if taint.effect == TaintEffect::PreferNoSchedule {
            continue;
        }
        if !p.tolerations.iter().any(|t| t.tolerates(taint)) {
            return Some(Miss::Taint(taint));
        }
    }
    if !p.node_selector.iter().all(|(k, v)| node.labels.get(k) == Some(v)) {
        return Some(Miss::NodeAffinity);
    }
    if !p.required_node_affinity.is_empty()
        && !p.required_node_affinity.iter().any(|t| t.matches(&node.name, node.labels))
    {
        return Some(Miss::NodeAffinity);
    }
    None
}

fn host_ports_miss<'a>(pod: &Pod, node: &SchedNode<'_>) -> Option<Miss<'a>> {
    if pod.placement.host_ports.is_empty() {
        return None;
    }
    let mut taken = node.pods.iter().flat_map(|q| q.placement.host_ports.iter());
    taken.any(|used| pod.placement.host_ports.contains(used)).then_some(Miss::HostPorts)
}

/// `requested + request ≤ allocatable` for every resource the pod asks for,
/// in the order the scheduler reports shortfalls.
pub fn check_resources(request: &Resources, allocatable: &Resources, requested: &Resources) -> Result<(), Unfit> {
    match resources_miss(request, allocatable, requested) {
        None => Ok(()),
        Some(resource) => Err(Unfit::Resources { resource: resource.to_string() }),
    }
}

/// Whether `node` has room for `request` by NodeResourcesFit alone: the one
/// fit rule, for callers that ask about room without the other filters.
pub(crate) fn room_for(request: &Resources, node: &SchedNode<'_>) -> bool {
    resources_miss(request, &node.allocatable, &node.requested).is_none()
}

/// The first resource short, without allocating.
fn resources_miss<'a>(request: &'a Resources, allocatable: &Resources, requested: &Resources) -> Option<&'a str> {
    if request.pods > 0 && requested.pods + request.pods > allocatable.pods {
        return Some(Resources::PODS);
    }
    if request.cpu_milli > 0 && requested.cpu_milli + request.cpu_milli > allocatable.cpu_milli {
        return Some(Resources::CPU);
    }
    if request.memory > 0 && requested.memory + request.memory > allocatable.memory {
        return Some(Resources::MEMORY);
    }
    if request.ephemeral_storage > 0
        && requested.ephemeral_storage + request.ephemeral_storage > allocatable.ephemeral_storage
    {
        return Some(Resources::EPHEMERAL_STORAGE);
    }
    request
        .extended
        .iter()
        .find(|&(name, &amount)| amount > 0 && requested.get(name) + amount > allocatable.get(name))
        .map(|(name, _)| name.as_str())
}

/// Whether a node is a domain of the pod's spread constraints: kube-scheduler's
/// default inclusion policy honours node selector and affinity, not taints.
pub(crate) fn spread_eligible(pod: &Pod, node: &SchedNode<'_>) -> bool {
    let p = &pod.placement;
    p.node_selector.iter().all(|(k, v)| node.labels.get(k) == Some(v))
        && (p.required_node_affinity.is_empty()
            || p.required_node_affinity.iter().any(|t| t.matches(&node.name, node.labels)))
}

/// Why a pod fits none of a set of nodes, counted per reason the way the
/// scheduler's `FailedScheduling` event reads: `0/5 nodes are available: ...`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FitSummary {
    pub nodes: usize,
    pub reasons: BTreeMap<String, usize>,
}

impl FitSummary {
    pub fn add(&mut self, unfit: &Unfit) {
        self.nodes += 1;
        *self.reasons.entry(unfit.to_string()).or_insert(0) += 1;
    }

    /// Adds `n` nodes that failed for the same reason.
    pub(crate) fn add_many(&mut self, unfit: &Unfit, n: usize) {
        self.nodes += n;
        *self.reasons.entry(unfit.to_string()).or_insert(0) += n;
    }
}

impl fmt::Display for FitSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0/{} nodes are available", self.nodes)?;
        let mut sep = ": ";
        for (reason, n) in &self.reasons {
            write!(f, "{sep}{n} {reason}")?;
            sep = ", ";
        }
        f.write_str(".")
    }
}

#[cfg(test)]
mod tests;
