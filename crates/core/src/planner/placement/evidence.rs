//! From observations to candidate advice: where each workload's replicas run,
//! how much of a pair's traffic crosses nodes and what that costs, and
//! whether the latency points to placement or to resource pressure.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{HOSTNAME, LabelSelector, Pod, PodAffinityTerm, Snapshot, WorkloadRef};
use crate::policy::PlacementAdvisorPolicy;

use super::share::GraphPair;
use super::{ContainerTarget, Flow, Observations, PairEvidence, Proposal, Resource, Withheld};

/// Labels that differ between replicas or revisions of one workload: a term
/// selecting by them would miss replicas.
const PER_REPLICA_LABELS: [&str; 4] = [
    "pod-template-hash",
    "controller-revision-hash",
    "statefulset.kubernetes.io/pod-name",
    "apps.kubernetes.io/pod-index",
];

#[derive(Debug)]
pub(super) struct Candidate {
    pub subject: String,
    /// Not yet checked against capacity (`room`, `new_minions` are 0).
    pub proposal: Proposal,
    /// A co-location's cost were all its calls to cross nodes (what standing
    /// advice is judged by); a resource increase's own cost.
    pub potential: f64,
    /// Why it cannot be given whatever the capacity.
    pub blocked: Option<Withheld>,
    /// No cross-node call of the pair was seen in the window, so its cost
    /// were it separated is unknown — as after co-location succeeded.
    pub unmeasured: bool,
}

/// Running replicas per workload.
fn replicas(snapshot: &Snapshot) -> BTreeMap<&WorkloadRef, Vec<&Pod>> {
    let mut by: BTreeMap<&WorkloadRef, Vec<&Pod>> = BTreeMap::new();
    for pod in &snapshot.pods {
        if let Some(w) = &pod.workload
            && pod.node_name.is_some()
            && pod.deletion.is_none()
            && !pod.is_terminal()
        {
            by.entry(w).or_default().push(pod);
        }
    }
    by
}

/// The share of calls from `a` to `b` between pods on different nodes, calls
/// spread evenly over both sides' replicas: 1 − Σ_node aₙ·bₙ / (A·B).
pub(super) fn cross_node_share(a: &[&Pod], b: &[&Pod]) -> f64 {
    share_between(&nodes_of(a), &nodes_of(b))
}

fn nodes_of<'p>(pods: &[&'p Pod]) -> Vec<&'p str> {
    pods.iter().map(|p| p.node_name.as_deref().unwrap_or_default()).collect()
}

/// [`cross_node_share`] of replicas given by their nodes' names.
pub(super) fn share_between(a: &[&str], b: &[&str]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let mut on: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for n in a {
        on.entry(n).or_default().0 += 1;
    }
    for n in b {
        on.entry(n).or_default().1 += 1;
    }
    let same: usize = on.values().map(|(x, y)| x * y).sum();
    1.0 - same as f64 / (a.len() * b.len()) as f64
}

fn in_scope(policy: &PlacementAdvisorPolicy, workload: &WorkloadRef, pods: &[&Pod]) -> bool {
    (policy.namespaces.is_empty() || policy.namespaces.iter().any(|n| *n == workload.namespace))
        && pods.iter().all(|p| policy.pod_labels.iter().all(|(k, v)| p.labels.get(k) == Some(v)))
}

/// The labels every replica carries, per-replica ones left out.
fn common_labels(pods: &[&Pod]) -> LabelSelector {
    let mut labels: BTreeMap<String, String> = pods.first().map(|p| (*p.labels).clone()).unwrap_or_default();
    labels.retain(|k, v| !PER_REPLICA_LABELS.contains(&k.as_str()) && pods.iter().all(|p| p.labels.get(k) == Some(v)));
    LabelSelector { match_labels: labels, ..LabelSelector::default() }
}

/// The client already keeps its replicas next to the server's on its own
/// (a hostname affinity term, required or preferred, selecting them).
fn already_near(client: &[&Pod], server: &[&Pod]) -> bool {
    let Some(c) = client.first() else { return false };
    let p = &c.placement;
    let terms = p.pod_affinity.iter().chain(p.preferred_pod_affinity.iter().map(|w| &w.term));
    terms.filter(|t| t.per_node()).any(|t| server.iter().any(|s| t.matches(s)))
}

/// What one window's observations show.
#[derive(Debug, Default)]
pub(super) struct Gathered {
    pub candidates: Vec<Candidate>,
    /// Every co-location pair in scope with its potential cost, those already
    /// near included: the graph the relative threshold (`cost-share`) is
    /// judged against. A pair with no cross-node call to measure counts with
    /// `assumed-same-node-saving-ms`, so that co-location working does not
    /// shrink the graph and let ever smaller pairs in.
    pub graph: Vec<GraphPair>,
}

pub(super) fn gather(
    snapshot: &Snapshot,
    observations: &Observations,
    policy: &PlacementAdvisorPolicy,
    standing: &BTreeSet<String>,
) -> Gathered {
    let replicas = replicas(snapshot);
    let mut out = Vec::new();
    let mut graph = Vec::new();
    for flow in &observations.flows {
        if flow.requests_per_second < policy.min_requests_per_second || flow.client == flow.server {
            continue;
        }
        let (Some(client), Some(server)) = (replicas.get(&flow.client), replicas.get(&flow.server)) else { continue };
        let share = cross_node_share(client, server);
        let pressure = observations.pressure.iter().find(|p| p.workload == flow.server);
        let pressed = pressure.and_then(|p| {
            let over = |v: Option<f64>| v.filter(|u| *u >= policy.pressure_threshold.0);
            // The scarcer resource first when both are pressed.
            match (over(p.cpu), over(p.memory)) {
                (Some(c), Some(m)) if m > c => Some((Resource::Memory, m)),
                (Some(c), _) => Some((Resource::Cpu, c)),
                (None, Some(m)) => Some((Resource::Memory, m)),
                (None, None) => None,
            }
        });
        if let Some((resource, usage)) = pressed {
            if in_scope(policy, &flow.server, server)
                && let Some(c) = increase(flow, server, resource, usage, share, policy)
            {
                out.push(c);
            }
            // The latency is the server's, wherever the client runs.
            continue;
        }
        if !in_scope(policy, &flow.client, client) {
            continue;
        }
        let saving = flow.saving_ms(policy.assumed_same_node_saving_ms).unwrap_or(0.0);
        let potential = flow.requests_per_second * saving;
        let proposal = Proposal::CoLocate {
            client: flow.client.clone(),
            server: flow.server.clone(),
            weight: policy.affinity_weight,
            term: PodAffinityTerm::in_namespace(common_labels(server), HOSTNAME, &flow.server.namespace),
            evidence: evidence(flow, share, saving, potential * share),
            room: 0,
            expected_gain: 0.0,
            reverse_pull: 0.0,
            client_move: 0.0,
            partners: Vec::new(),
        };
        let subject = proposal.subject();
        let ranked = match flow.p99_cross_node_ms {
            Some(_) => potential,
            None => flow.requests_per_second * policy.assumed_same_node_saving_ms,
        };
        graph.push(GraphPair {
            subject: subject.clone(),
            client: flow.client.to_string(),
            server: flow.server.to_string(),
            potential: ranked,
        });
        if already_near(client, server) && !standing.contains(&subject) {
            continue;
        }
        let blocked = match &proposal {
            Proposal::CoLocate { term, .. } if term.selector.match_labels.is_empty() => Some(Withheld::NoSelector),
            _ => None,
        };
        let unmeasured = flow.p99_cross_node_ms.is_none();
        out.push(Candidate { subject, proposal, potential, blocked, unmeasured });
    }
    Gathered { candidates: one_per_subject(out), graph }
}

/// Every caller of a pressed server brings evidence for the same resource
/// increase; the advisor remembers proposals by subject (settling, standing),
/// so it must see each once: the costliest caller's evidence is kept, where
/// the first of them stood.
fn one_per_subject(candidates: Vec<Candidate>) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = Vec::with_capacity(candidates.len());
    let mut at: BTreeMap<String, usize> = BTreeMap::new();
    for c in candidates {
        match at.get(&c.subject) {
            Some(&i) if out[i].potential >= c.potential => {}
            Some(&i) => out[i] = c,
            None => {
                at.insert(c.subject.clone(), out.len());
                out.push(c);
            }
        }
    }
    out
}

fn evidence(flow: &Flow, share: f64, saving_ms: f64, cost: f64) -> PairEvidence {
    PairEvidence {
        requests_per_second: flow.requests_per_second,
        cross_node_share: share,
        p99_same_node_ms: flow.p99_same_node_ms,
        p99_cross_node_ms: flow.p99_cross_node_ms,
        saving_ms,
        latency_cost: cost,
    }
}

/// More of `resource` for every replica of the server: usage brought to
/// `target-utilization` of the request, at most `max-increase` times it.
fn increase(
    flow: &Flow,
    server: &[&Pod],
    resource: Resource,
    usage: f64,
    share: f64,
    policy: &PlacementAdvisorPolicy,
) -> Option<Candidate> {
    let factor = (usage / policy.target_utilization.0).min(policy.max_increase);
    if factor <= 1.0 {
        return None;
    }
    let first = server.first()?;
    let containers = first
        .containers
        .iter()
        .map(|c| ContainerTarget { container: c.name.clone(), requests: scaled(&c.requests, resource, factor) })
        .collect();
    // Ranked by the latency its calls see, wherever they run.
    let p99 = flow.p99_same_node_ms.or(flow.p99_cross_node_ms).unwrap_or(0.0);
    let cost = flow.requests_per_second * p99;
    let proposal = Proposal::IncreaseResources {
        workload: flow.server.clone(),
        resource,
        usage,
        factor,
        containers,
        new_minions: 0,
        evidence: evidence(flow, share, flow.saving_ms(policy.assumed_same_node_saving_ms).unwrap_or(0.0), cost),
    };
    Some(Candidate { subject: proposal.subject(), proposal, potential: cost, blocked: None, unmeasured: false })
}

/// `requests` with one resource multiplied by `factor`, rounded up.
pub(super) fn scaled(requests: &crate::model::Resources, resource: Resource, factor: f64) -> crate::model::Resources {
    let mut out = requests.clone();
    match resource {
        Resource::Cpu => out.cpu_milli = (requests.cpu_milli as f64 * factor).ceil() as i64,
        Resource::Memory => out.memory = (requests.memory as f64 * factor).ceil() as i64,
    }
    out
}
