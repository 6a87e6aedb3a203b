//! Advice never asks for more than the node groups can provide. Both checks
//! use the scheduling model the planner uses for scale-up, so the advisor
//! cannot count room the scheduler would not give.

use std::rc::Rc;

use crate::model::{Pod, Snapshot, WorkloadRef};
use crate::policy::PlacementAdvisorPolicy;

use super::super::index::Index;
use super::super::policy::Policy;
use super::super::scheduling::{Placer, SchedNode, check_among};
use super::evidence::scaled;
use super::pull::{self, Partner, Peer};
use super::{Observations, Proposal, Withheld};

/// The proposal with its capacity figures filled in, or why it may not be given.
pub(super) fn settle(
    snapshot: &Snapshot,
    observations: &Observations,
    policy: &PlacementAdvisorPolicy,
    proposal: &Proposal,
    blocked: Option<Withheld>,
    standing_partners: &[WorkloadRef],
) -> Result<Proposal, Withheld> {
    if let Some(why) = blocked {
        return Err(why);
    }
    let ix = Index::build(snapshot, &Policy::default());
    let mut settled = proposal.clone();
    match &mut settled {
        Proposal::CoLocate {
            client,
            server,
            weight,
            term,
            room,
            expected_gain,
            reverse_pull,
            client_move,
            evidence,
            partners,
        } => {
            let of = |w: &WorkloadRef| -> Vec<&Pod> {
                ix.nodes()
                    .flat_map(|i| ix.pods_on(i).iter().copied())
                    .filter(|p| p.workload.as_ref() == Some(w) && p.deletion.is_none())
                    .collect()
            };
            let (clients, servers) = (of(client), of(server));
            let fits = room_near(&ix, &clients, &servers);
            if fits == 0 {
                return Err(Withheld::NoRoomNearServer);
            }
            let apart = clients.iter().filter(|c| !servers.iter().any(|s| s.node_name == c.node_name)).count();
            let own = evidence.latency_cost * (f64::from(fits) / apart.max(1) as f64).min(1.0);
            let peers = peers_of(observations, policy, server, client, &of);
            let client_peers = peers_of(observations, policy, client, server, &of);
            // A pull that happens to help others is no evidence of a gain
            // (it is a prediction of the worst case over the advice's life):
            // it only ever lowers the expected gain. So does the client's
            // own move: one that happens to bring it nearer another peer is
            // that pair's advice to give, on its own evidence.
            let judge = |group: &[Partner<'_, '_>]| {
                let predicted = pull::predict(&ix, &clients, &servers, *weight, term, &peers, &client_peers, group);
                let cost = predicted.cost.max(0.0);
                if cost > 0.0 && own <= cost {
                    return Err(Withheld::ReversePull { gain: own, cost });
                }
                let moved = predicted.client_move.max(0.0);
                if moved > 0.0 && own - cost <= moved {
                    return Err(Withheld::ClientMove { gain: own - cost, cost: moved });
                }
                Ok((cost, moved))
            };
            // The client alone first; when only what it would leave behind
            // holds it, the group: its standing partners re-created with the
            // same term, judged where the scheduling model puts them
            // (docs/decisions.md, "A client moves with the stores it is kept
            // next to").
            let ((cost, moved), group) = match judge(&[]) {
                Ok(judged) => (judged, Vec::new()),
                Err(alone @ Withheld::ClientMove { .. }) if !standing_partners.is_empty() => {
                    let group: Vec<Partner<'_, '_>> = standing_partners
                        .iter()
                        .map(|w| Partner {
                            workload: w.clone(),
                            pods: of(w),
                            peers: peers_of(observations, policy, w, client, &of)
                                .into_iter()
                                .filter(|p| &p.workload != server)
                                .collect(),
                        })
                        .filter(|p| !p.pods.is_empty())
                        .collect();
                    match judge(&group) {
                        Ok(judged) if !group.is_empty() => (judged, group.into_iter().map(|p| p.workload).collect()),
                        _ => return Err(alone),
                    }
                }
                Err(why) => return Err(why),
            };
            *room = fits;
            *reverse_pull = cost;
            *client_move = moved;
            *expected_gain = own - cost - moved;
            *partners = group;
        }
        Proposal::IncreaseResources { workload, resource, factor, new_minions, .. } => {
            let pods: Vec<&Pod> = snapshot
                .pods
                .iter()
                .filter(|p| p.workload.as_ref() == Some(&*workload) && p.node_name.is_some() && p.deletion.is_none())
                .collect();
            let larger: Vec<Pod> = pods
                .iter()
                .map(|p| {
                    let mut q = (*p).clone();
                    q.requests = scaled(&p.requests, *resource, *factor);
                    q
                })
                .collect();
            *new_minions = room_for_larger(&ix, snapshot, &pods, &larger)?;
        }
    }
    Ok(settled)
}

/// The workloads `who` exchanges calls with (it calls them or they call
/// it), `other` — the far end of the advised pair — left out, with what
/// their calls pay for crossing nodes (a pair with no crossing call measured
/// counts with `assumed-same-node-saving-ms`, as the cost-share graph does:
/// the move is what would make its calls cross).
fn peers_of<'p>(
    observations: &Observations,
    policy: &PlacementAdvisorPolicy,
    who: &WorkloadRef,
    other: &WorkloadRef,
    of: &dyn Fn(&WorkloadRef) -> Vec<&'p Pod>,
) -> Vec<Peer<'p>> {
    observations
        .flows
        .iter()
        .filter_map(|f| {
            let peer = match (&f.client, &f.server) {
                (c, s) if s == who && c != other && c != who => c,
                (c, s) if c == who && s != other && s != who => s,
                _ => return None,
            };
            let saving_ms =
                f.saving_ms(policy.assumed_same_node_saving_ms).unwrap_or(policy.assumed_same_node_saving_ms);
            let nodes = of(peer).iter().filter_map(|p| p.node_name.as_deref()).collect();
            Some(Peer { workload: peer.clone(), nodes, requests_per_second: f.requests_per_second, saving_ms })
        })
        .collect()
}

/// How many client replicas not yet next to a server replica would fit on
/// the nodes that run one (as they are now, one after the other).
fn room_near<'a>(ix: &Index<'a>, clients: &[&'a Pod], servers: &[&'a Pod]) -> u32 {
    let near: Vec<_> = ix
        .nodes()
        .filter(|&i| {
            let node = ix.node(i);
            node.ready && servers.iter().any(|s| s.node_name.as_deref() == Some(node.name.as_str()))
        })
        .collect();
    // The rest of the cluster counts for the client's terms over zones and
    // other wide keys: a spread over zones is judged against every zone, not
    // only the server's (which alone would always look balanced).
    let cluster: Vec<SchedNode<'a>> = ix.nodes().filter(|&i| ix.node(i).ready).map(|i| ix.sched_node(i)).collect();
    let mut placer =
        Placer::new(near.iter().map(|&i| ix.sched_node(i)).collect()).whole_cluster().with_context(Rc::new(cluster));
    let mut fits = 0;
    for &c in clients {
        if near.iter().any(|&i| c.node_name.as_deref() == Some(ix.node(i).name.as_str())) {
            continue;
        }
        if let Some(k) = placer.find(c, None) {
            placer.place(c, k);
            fits += 1;
        }
    }
    fits
}

/// Where every replica goes at its larger size: in place when its node has
/// room, else on another node, else on new minions of a group below its max
/// size. Returns the minions needed, or how many replicas find no room.
fn room_for_larger<'a>(
    ix: &Index<'a>,
    snapshot: &'a Snapshot,
    pods: &[&'a Pod],
    larger: &'a [Pod],
) -> Result<u32, Withheld> {
    let ready: Vec<_> = ix.nodes().filter(|&i| ix.node(i).ready).collect();
    let existing: Vec<SchedNode<'a>> = ready.iter().map(|&i| ix.sched_node(i)).collect();
    let context = existing.clone();
    let mut placer = Placer::new(existing).whole_cluster();
    let mut headroom: Vec<u32> = snapshot.groups.iter().map(|g| g.max_size.saturating_sub(g.desired)).collect();
    let mut new_minions = 0;
    let mut homeless = 0;
    for (old, new) in pods.iter().zip(larger) {
        let home = ready.iter().position(|&i| old.node_name.as_deref() == Some(ix.node(i).name.as_str()));
        if let Some(h) = home {
            // The replica leaves its old size behind wherever it goes.
            let node = &placer.nodes()[h];
            let mut requested = node.requested.clone();
            requested -= &old.requests;
            let in_place =
                super::super::scheduling::check_resources(&new.requests, &node.allocatable, &requested).is_ok();
            if in_place {
                requested += &new.requests;
            }
            placer.set_requested(h, requested);
            if in_place {
                continue;
            }
        }
        if let Some(k) = placer.find(new, home) {
            placer.place(new, k);
            continue;
        }
        let group = snapshot.groups.iter().enumerate().find_map(|(g, group)| {
            let shape = group.template.as_ref()?;
            let template = SchedNode::new_minion(format!("advisor-{}-{g}", group.name), shape, &ix.daemonsets);
            (headroom[g] > 0 && check_among(new, &template, &context).is_ok()).then_some((g, template))
        });
        match group {
            Some((g, template)) => {
                headroom[g] -= 1;
                new_minions += 1;
                let k = placer.push(template);
                placer.place(new, k);
            }
            None => homeless += 1,
        }
    }
    if homeless > 0 {
        return Err(Withheld::BeyondCapacity { pods: homeless });
    }
    Ok(new_minions)
}
