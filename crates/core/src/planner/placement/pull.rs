//! The reverse pull of a co-location. kube-scheduler scores inter-pod
//! affinity symmetrically: the client's preferred term towards the server
//! also draws every server replica created later (a drain, a rollout, a
//! scale-up) to the nodes of the client's replicas. For a server with one
//! caller that is the point; for a replicated server that others call too,
//! it stacks the replicas where the advised client runs and the other
//! callers' calls cross nodes instead (docs/co-scheduling.md, hs-cosched7's
//! trace: all three post-storage replicas on one node, home-timeline and
//! compose-post on the other).
//!
//! So a co-location is judged the way DRS judges a move, by the whole call
//! graph: its own gain less what the pull costs the server's other callers (and
//! the calls the server itself makes, which move with its replicas).
//! The scheduling model predicts the pull: the client's replicas rolled out
//! with the term, then every server replica re-created one after the other,
//! as the standing advice will see them over its life (it stays until the
//! pair's traffic goes away, and scale-down drains every node in time).
//!
//! The forward counterpart: the rollout moves the client's own replicas,
//! with all its terms, and kube-scheduler sums a preferred term's weight per
//! pod it selects, so a new term towards three stacked replicas of one
//! server outscores an earlier one towards a single replica of another. The
//! client then leaves the server it was co-located with (hs-cosched9's trace:
//! home-timeline left its redis for post-storage). What that costs the
//! client's other calls — its standing co-locations first — is predicted
//! from the same rollout.
//!
//! A group move: the workloads a standing term keeps the client next to
//! (its partners) can be re-created with the same term, towards the server,
//! so they follow the client instead of being left behind. The prediction
//! then re-creates them after the client's rollout, and the client's move is
//! costed against where they end, plus what their own other calls pay.

use std::sync::Arc;

use crate::model::{Pod, PodAffinityTerm, WeightedPodAffinityTerm, WorkloadRef};

use super::super::index::Index;
use super::super::scheduling::{Placer, SchedNode};
use super::evidence::share_between;

/// Another workload the server exchanges calls with — a caller, or one the
/// server calls (its replicas move, so those calls move too) — with what
/// the calls pay for crossing nodes. The share of calls crossing is the same
/// either way round.
#[derive(Clone, Debug)]
pub(super) struct Peer<'p> {
    pub workload: WorkloadRef,
    /// The nodes its replicas run on, one entry per replica.
    pub nodes: Vec<&'p str>,
    pub requests_per_second: f64,
    /// What a call pays more across nodes than on one node (ms).
    pub saving_ms: f64,
}

/// The advised term's effect as the scheduling model predicts it.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Pull {
    /// The server's replicas' nodes now and once re-created, one entry per replica.
    pub servers_before: Vec<String>,
    pub servers_after: Vec<String>,
    /// What the move costs the calls between the server and its peers, in ms of tail latency per
    /// second (negative: they gain).
    pub cost: f64,
    /// The client's replicas' nodes once rolled out with the term, one entry per replica.
    pub clients_after: Vec<String>,
    /// What the client's rollout costs the calls between the client and its own peers — and, in a
    /// group move, what the partners' re-creation costs theirs — in ms of tail latency per second
    /// (negative: they gain).
    pub client_move: f64,
}

/// A workload moved with the client (a group move): its replicas are
/// re-created with the client's term after the client's rollout.
#[derive(Clone, Debug)]
pub(super) struct Partner<'a, 'p> {
    pub workload: WorkloadRef,
    pub pods: Vec<&'a Pod>,
    /// The workloads it exchanges calls with, the client and the server left out.
    pub peers: Vec<Peer<'p>>,
}

/// Where the client's, its `partners'` and the server's replicas end up,
/// and what that costs the server's `peers`, the client's `client_peers` and
/// the partners' own peers.
#[allow(clippy::too_many_arguments)] // one rollout's inputs, read together
pub(super) fn predict<'a>(
    ix: &Index<'a>,
    clients: &[&'a Pod],
    servers: &[&'a Pod],
    weight: i32,
    term: &PodAffinityTerm,
    peers: &[Peer<'_>],
    client_peers: &[Peer<'_>],
    partners: &[Partner<'a, '_>],
) -> Pull {
    let (servers_before, clients_before) = (nodes(servers), nodes(clients));
    let partners_before: Vec<Vec<String>> = partners.iter().map(|p| nodes(&p.pods)).collect();
    let (clients_after, partners_after, servers_after) = re_created(ix, clients, servers, weight, term, partners)
        .unwrap_or_else(|| (clients_before.clone(), partners_before.clone(), servers_before.clone()));
    // A partner's calls with the client are judged where both end; the
    // rest of the client's peers stay where they are.
    let moved_with = |c: &Peer<'_>| -> Option<(Vec<&str>, Vec<&str>)> {
        let k = partners.iter().position(|p| p.workload == c.workload)?;
        Some((strs(&partners_before[k]), strs(&partners_after[k])))
    };
    let client_move = moved_cost(client_peers, &clients_before, &clients_after, moved_with)
        + partners
            .iter()
            .zip(partners_before.iter().zip(&partners_after))
            .map(|(p, (before, after))| moved_cost(&p.peers, before, after, |_| None))
            .sum::<f64>();
    Pull {
        cost: moved_cost(peers, &servers_before, &servers_after, |_| None),
        client_move,
        servers_before,
        servers_after,
        clients_after,
    }
}

fn nodes(pods: &[&Pod]) -> Vec<String> {
    pods.iter().map(|p| p.node_name.clone().unwrap_or_default()).collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// What moving one workload's replicas from `before` to `after` costs its
/// calls with `peers`: each peer's calls × saving × the rise of the share
/// crossing nodes. A peer that moves too (`moved_with`: its nodes before
/// and after) is judged at its own new nodes.
fn moved_cost<'n>(
    peers: &'n [Peer<'_>],
    before: &[String],
    after: &[String],
    moved_with: impl Fn(&Peer<'_>) -> Option<(Vec<&'n str>, Vec<&'n str>)>,
) -> f64 {
    let before = strs(before);
    let after = strs(after);
    peers
        .iter()
        .map(|c| {
            let (was, is) = moved_with(c).unwrap_or_else(|| (c.nodes.clone(), c.nodes.clone()));
            let added = share_between(&is, &after) - share_between(&was, &before);
            c.requests_per_second * c.saving_ms * added
        })
        .sum()
}

/// Nodes, one entry per replica: the client's, each partner's, the server's.
type Placed = (Vec<String>, Vec<Vec<String>>, Vec<String>);

/// The client replicas' nodes after its rollout with the term, each
/// partner's after its re-creation with the same term, and the server
/// replicas' after the re-creation of every one of them; `None` without a
/// client.
fn re_created<'a>(
    ix: &Index<'a>,
    clients: &[&'a Pod],
    servers: &[&'a Pod],
    weight: i32,
    term: &PodAffinityTerm,
    partners: &[Partner<'a, '_>],
) -> Option<Placed> {
    clients.first()?;
    let advised = with_term(clients, weight, term);
    let partners_advised: Vec<Vec<Pod>> = partners.iter().map(|p| with_term(&p.pods, weight, term)).collect();

    // The rollout: the old client replicas leave, the new ones are bound
    // where the scheduler ranks first (the term, then free capacity).
    let nodes: Vec<SchedNode<'_>> = ix
        .nodes()
        .filter(|&i| ix.node(i).ready)
        .map(|i| {
            let mut node = ix.sched_node(i);
            // Every pod counts here, whatever the index left out for speed:
            // the new term makes the pod lists matter.
            node.pods = ix.pods_on(i).to_vec();
            for c in clients {
                node.remove(c);
            }
            node
        })
        .collect();
    let mut rollout = Placer::new(nodes).whole_cluster();
    let clients_after = place_each(&mut rollout, advised.iter().zip(clients.iter().copied()));

    // Each partner's replicas re-created, once the client has moved.
    let mut partners_after = Vec::with_capacity(partners.len());
    for (p, advised) in partners.iter().zip(&partners_advised) {
        let mut nodes = rollout.nodes().to_vec();
        for node in &mut nodes {
            for q in &p.pods {
                node.remove(q);
            }
        }
        rollout = Placer::new(nodes).whole_cluster();
        partners_after.push(place_each(&mut rollout, advised.iter().zip(p.pods.iter().copied())));
    }

    // Every server replica re-created, one after the other.
    let mut nodes = rollout.nodes().to_vec();
    for node in &mut nodes {
        for s in servers {
            node.remove(s);
        }
    }
    let mut recreate = Placer::new(nodes).whole_cluster();
    let after = place_each(&mut recreate, servers.iter().map(|&s| (s, s)));
    Some((clients_after, partners_after, after))
}

/// The workload's replicas as its template gives them once it carries the
/// term: one placement for all, not yet bound.
fn with_term(pods: &[&Pod], weight: i32, term: &PodAffinityTerm) -> Vec<Pod> {
    let Some(first) = pods.first() else { return Vec::new() };
    let mut placement = (*first.placement).clone();
    placement.preferred_pod_affinity.push(WeightedPodAffinityTerm { weight, term: term.clone() });
    let placement = Arc::new(placement);
    pods.iter().map(|c| Pod { placement: Arc::clone(&placement), node_name: None, ..(*c).clone() }).collect()
}

/// Binds each pod, one after the other, where `placer` ranks first; the
/// nodes they end on, or — for a pod that fits nowhere — the node of the
/// replica it stands for (`(new, old)` pairs).
fn place_each<'a>(placer: &mut Placer<'a>, pods: impl Iterator<Item = (&'a Pod, &'a Pod)>) -> Vec<String> {
    pods.map(|(pod, old)| match placer.best(pod, None) {
        Some(k) => {
            placer.place(pod, k);
            placer.nodes()[k].name.to_string()
        }
        None => old.node_name.clone().unwrap_or_default(),
    })
    .collect()
}
