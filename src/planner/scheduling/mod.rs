//! The scheduling model: the kube-scheduler filter predicates that decide
//! whether a pod fits a node, with the scheduler's own wording for "why not".
//!
//! Used by scale-up (do pending pods fit existing, upcoming or new minions?),
//! by scale-down (can every pod of a node move elsewhere?) and by the
//! simulator's scheduler — one model, so the simulator cannot disagree with
//! the planner about what fits.

mod placer;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::model::{Pod, ResourceShortfall, Resources, Taint, TaintEffect};

pub use placer::Placer;

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
            Unfit::Excluded => f.write_str("node(s) are being removed"),
        }
    }
}

impl From<ResourceShortfall> for Unfit {
    fn from(s: ResourceShortfall) -> Self {
        Unfit::Resources { resource: s.resource }
    }
}

/// All filters, in kube-scheduler's order; the first failure is the reason.
pub fn check(pod: &Pod, node: &SchedNode<'_>) -> Result<(), Unfit> {
    check_node(pod, node)?;
    check_host_ports(pod, node)?;
    check_resources(&pod.requests, &node.allocatable, &node.requested)?;
    check_anti_affinity(pod, node)
}

/// The filters that depend only on the node, not on what runs there:
/// cordon, taints, node selector and required node affinity.
pub fn check_node(pod: &Pod, node: &SchedNode<'_>) -> Result<(), Unfit> {
    let p = &pod.placement;
    if node.excluded {
        return Err(Unfit::Excluded);
    }
    if node.unschedulable {
        let cordon = Taint { key: UNSCHEDULABLE_TAINT.into(), value: None, effect: TaintEffect::NoSchedule };
        if !p.tolerations.iter().any(|t| t.tolerates(&cordon)) {
            return Err(Unfit::Unschedulable);
        }
    }
    for taint in node.taints.iter() {
        if taint.effect == TaintEffect::PreferNoSchedule {
            continue;
        }
        if !p.tolerations.iter().any(|t| t.tolerates(taint)) {
            return Err(Unfit::Taint { key: taint.key.clone(), value: taint.value.clone().unwrap_or_default() });
        }
    }
    if !p.node_selector.iter().all(|(k, v)| node.labels.get(k) == Some(v)) {
        return Err(Unfit::NodeAffinity);
    }
    if !p.required_node_affinity.is_empty()
        && !p.required_node_affinity.iter().any(|t| t.matches(&node.name, node.labels))
    {
        return Err(Unfit::NodeAffinity);
    }
    Ok(())
}

fn check_host_ports(pod: &Pod, node: &SchedNode<'_>) -> Result<(), Unfit> {
    if pod.placement.host_ports.is_empty() {
        return Ok(());
    }
    let taken = node.pods.iter().flat_map(|q| q.placement.host_ports.iter());
    for used in taken {
        if pod.placement.host_ports.contains(used) {
            return Err(Unfit::HostPorts);
        }
    }
    Ok(())
}

/// `requested + request ≤ allocatable` for every resource the pod asks for,
/// in the order the scheduler reports shortfalls; no allocation on the hot path.
pub fn check_resources(request: &Resources, allocatable: &Resources, requested: &Resources) -> Result<(), Unfit> {
    let short = |name: &str| Err(Unfit::Resources { resource: name.to_string() });
    if request.pods > 0 && requested.pods + request.pods > allocatable.pods {
        return short(Resources::PODS);
    }
    if request.cpu_milli > 0 && requested.cpu_milli + request.cpu_milli > allocatable.cpu_milli {
        return short(Resources::CPU);
    }
    if request.memory > 0 && requested.memory + request.memory > allocatable.memory {
        return short(Resources::MEMORY);
    }
    if request.ephemeral_storage > 0
        && requested.ephemeral_storage + request.ephemeral_storage > allocatable.ephemeral_storage
    {
        return short(Resources::EPHEMERAL_STORAGE);
    }
    for (name, &amount) in &request.extended {
        if amount > 0 && requested.get(name) + amount > allocatable.get(name) {
            return short(name);
        }
    }
    Ok(())
}

/// Required pod anti-affinity on `kubernetes.io/hostname`, both ways: the
/// incoming pod's terms against the node's pods, and theirs against it.
fn check_anti_affinity(pod: &Pod, node: &SchedNode<'_>) -> Result<(), Unfit> {
    let own = &pod.placement.anti_affinity_hostname;
    for other in &node.pods {
        if other.namespace != pod.namespace {
            continue;
        }
        if own.iter().any(|s| s.matches(&other.labels)) {
            return Err(Unfit::AntiAffinity);
        }
        if other.placement.anti_affinity_hostname.iter().any(|s| s.matches(&pod.labels)) {
            return Err(Unfit::ExistingAntiAffinity);
        }
    }
    Ok(())
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
