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

use std::sync::Arc;

use crate::model::{Pod, PodAffinityTerm, WeightedPodAffinityTerm};

use super::super::index::Index;
use super::super::scheduling::{Placer, SchedNode};
use super::evidence::share_between;

/// Another workload the server exchanges calls with — a caller, or one the
/// server calls (its replicas move, so those calls move too) — with what
/// the calls pay for crossing nodes. The share of calls crossing is the same
/// either way round.
#[derive(Clone, Debug)]
pub(super) struct Peer<'p> {
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
    /// What the client's rollout costs the calls between the client and its own peers, in ms of
    /// tail latency per second (negative: they gain).
    pub client_move: f64,
}

/// Where the client's and the server's replicas end up, and what that costs
/// the server's `peers` and the client's `client_peers`.
pub(super) fn predict<'a>(
    ix: &Index<'a>,
    clients: &[&'a Pod],
    servers: &[&'a Pod],
    weight: i32,
    term: &PodAffinityTerm,
    peers: &[Peer<'_>],
    client_peers: &[Peer<'_>],
) -> Pull {
    let nodes =
        |pods: &[&Pod]| -> Vec<String> { pods.iter().map(|p| p.node_name.clone().unwrap_or_default()).collect() };
    let (servers_before, clients_before) = (nodes(servers), nodes(clients));
    let (clients_after, servers_after) = re_created(ix, clients, servers, weight, term)
        .unwrap_or_else(|| (clients_before.clone(), servers_before.clone()));
    Pull {
        cost: moved_cost(peers, &servers_before, &servers_after),
        client_move: moved_cost(client_peers, &clients_before, &clients_after),
        servers_before,
        servers_after,
        clients_after,
    }
}

/// What moving one workload's replicas from `before` to `after` costs its
/// calls with `peers`: each peer's calls × saving × the rise of the share
/// crossing nodes.
fn moved_cost(peers: &[Peer<'_>], before: &[String], after: &[String]) -> f64 {
    let before: Vec<&str> = before.iter().map(String::as_str).collect();
    let after: Vec<&str> = after.iter().map(String::as_str).collect();
    peers
        .iter()
        .map(|c| {
            let added = share_between(&c.nodes, &after) - share_between(&c.nodes, &before);
            c.requests_per_second * c.saving_ms * added
        })
        .sum()
}

/// The client replicas' nodes after its rollout with the term, and the
/// server replicas' after the re-creation of every one of them; `None`
/// without a client.
fn re_created<'a>(
    ix: &Index<'a>,
    clients: &[&'a Pod],
    servers: &[&'a Pod],
    weight: i32,
    term: &PodAffinityTerm,
) -> Option<(Vec<String>, Vec<String>)> {
    let first = clients.first()?;
    // One placement for all new replicas, as a template change gives them.
    let mut placement = (*first.placement).clone();
    placement.preferred_pod_affinity.push(WeightedPodAffinityTerm { weight, term: term.clone() });
    let placement = Arc::new(placement);
    let advised: Vec<Pod> =
        clients.iter().map(|c| Pod { placement: Arc::clone(&placement), node_name: None, ..(*c).clone() }).collect();

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

    // Every server replica re-created, one after the other.
    let mut nodes = rollout.nodes().to_vec();
    for node in &mut nodes {
        for s in servers {
            node.remove(s);
        }
    }
    let mut recreate = Placer::new(nodes).whole_cluster();
    let after = place_each(&mut recreate, servers.iter().map(|&s| (s, s)));
    Some((clients_after, after))
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
