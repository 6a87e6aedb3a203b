//! Which candidates are unneeded: every pod on them could move to another
//! node, all of them together — and since when each has been unneeded.
//!
//! A candidate found unneeded normally *reserves* what its removal would
//! use: its pods stay placed on the other nodes, it is no destination for
//! the next candidates, and its evictions take from the PDB allowances. One
//! whose group is at its min size (counting the removals in progress and
//! the candidates of its group found unneeded before it) will not be
//! removed: it keeps its verdict and its timer, but reserves nothing, or a
//! node of another group could be found "no place for pod" or "PDB blocks"
//! only because of a removal that never happens.
//!
//! PDBs count progressively: a node whose pods of one PDB outnumber its
//! allowance is drained in rounds (see [`crate::planner::drain::PdbBudget::take_after`]),
//! so it is unneeded when each such PDB allows a disruption now; only one
//! allowing none blocks.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::model::{Pod, PodTemplate, Resources};
use crate::planner::Cx;
use crate::planner::Pass;
use crate::planner::drain::{Disposition, Turn, classify, pdb_name};
use crate::planner::explain::NodeStatus;
use crate::planner::index::{GroupIx, NodeIx, PdbIx, Table};
use crate::planner::memory::Memory;
use crate::planner::resize;
use crate::planner::scheduling::{Placer, SchedNode, fits, room_for};

use super::{Candidate, Statuses, staying as staying_in_group};

/// The candidates found unneeded (indices into the candidates), in the
/// order they were simulated.
#[derive(Debug, Default)]
pub(super) struct Unneeded {
    /// Every one: their unneeded timers run.
    pub found: Vec<usize>,
    /// Those among them their group cannot lose (at its min size): they
    /// reserved nothing in the simulation, so their removal must not start.
    kept: BTreeSet<usize>,
}

impl Unneeded {
    /// Whether candidate `k` was found unneeded but kept by its group's min size.
    pub fn kept(&self, k: usize) -> bool {
        self.kept.contains(&k)
    }

    /// The unneeded candidates whose removal the simulation reserved for.
    pub fn removable(&self) -> impl Iterator<Item = usize> + '_ {
        self.found.iter().copied().filter(|k| !self.kept(*k))
    }
}

/// Finds which candidates could all go together. Pods moved in the
/// simulation stay where they were moved, and a node found unneeded is no
/// destination for the next ones — unless its group cannot lose it (see the
/// module documentation). Reads the groups, the removals in progress and the
/// resize adjustments of `pass`; takes from its PDB allowance.
pub(super) fn find<'a>(
    cx: &Cx<'a>,
    pass: &mut Pass<'a>,
    candidates: &[Candidate],
    incoming: &Table<NodeIx, Vec<&'a Pod>>,
    statuses: &mut Statuses,
) -> Unneeded {
    let Pass { adjust, budget, groups: views, removals, .. } = pass;
    // The destinations in name order: the placer's tie-break by name then
    // compares positions (one sort here, not a string compare at every step
    // of thousands of searches).
    let mut destinations: Vec<NodeIx> =
        cx.ix.nodes().filter(|&i| cx.ix.node(i).ready && cx.ix.removal(i).is_none()).collect();
    destinations.sort_unstable_by(|&a, &b| cx.ix.node(a).name.cmp(&cx.ix.node(b).name));
    let mut slot: Table<NodeIx, Option<usize>> = Table::filled(None, cx.ix.node_count());
    let mut nodes = Vec::with_capacity(destinations.len());
    let mut seen_nodes = Vec::with_capacity(destinations.len());
    for i in destinations {
        slot[i] = Some(nodes.len());
        let mut node = cx.ix.sched_node(i);
        for pod in &incoming[i] {
            node.add(pod);
        }
        let mut seen = node.clone();
        adjust.apply(i, &mut node.requested);
        adjust.apply_seen(i, &mut seen.requested);
        nodes.push(node);
        seen_nodes.push(seen);
    }
    // What every schedulable destination still has free, summed: pods that
    // need more than that cannot all move, whatever the placement (a cheap
    // necessary condition that spares the placement search in a full cluster).
    let free = |n: &SchedNode<'_>| {
        if n.unschedulable {
            return Resources::default();
        }
        let mut f =
            Resources::new(n.allocatable.cpu_milli - n.requested.cpu_milli, n.allocatable.memory - n.requested.memory);
        f.pods = n.allocatable.pods - n.requested.pods;
        f
    };
    let mut free_total = Resources::default();
    for n in &nodes {
        free_total += &free(n);
    }
    // Evicted pods come back at the size their replacement is created with
    // (their template, VPA's admission controller), not the size they run at.
    // Without an admission controller a replacement at its template's size
    // still has its pending growth ahead of it (an in-place resize later, on
    // whichever node it lands), and what other admission plugins add at
    // creation (a LimitRange's defaults) is in the running pod, not in the
    // template: it counts at the larger of the two.
    let admission = cx.ix.snap.admission_applies_recommendations;
    // Looked up by uid only (never iterated): Fx hashing, not SipHash, for
    // a map rebuilt at every pass.
    let mut templates = Templates::default();
    let recreated: FxHashMap<&str, Pod> = candidates
        .iter()
        .flat_map(|c| cx.ix.pods_on(c.node).iter())
        .filter_map(|p| {
            let mut reborn = resize::recreated_from(cx, p, templates.of(cx, p))?;
            if !admission {
                reborn.requests = reborn.requests.max(&adjust.pod(p).requests);
            }
            Some((p.uid.as_str(), reborn))
        })
        .collect();
    // Two views of the same nodes: `placer` counts every pod at the size it
    // will have (growths held back, rooms kept for moves) and says whether
    // all of it still fits; `seen` counts what kube-scheduler sees, and says
    // where a drained pod will really be bound. Placed by the first alone, a
    // drained pod lands in the simulation beside the room a growth needs,
    // and in the cluster inside it (issue 17, pod-shapes seed 3 at 27.3 h).
    let mut placer = Placer::new(nodes).whole_cluster().in_name_order();
    let mut seen = Placer::new(seen_nodes).whole_cluster().in_name_order();
    let mut moved_in: Vec<Vec<&Pod>> = vec![Vec::new(); placer.nodes().len()];
    // A growth to come that its node cannot hold is a move to come: its
    // replacement's room is taken before any candidate's pods are placed,
    // and the node it leaves keeps the pod at its present size only. One
    // that fits no node is unmet demand, as a pending pod is: the first
    // candidate that, drained, would hold it stays (issue 17, pod-shapes
    // seed 4 at 28.3 h: removed, it was added back when the growth came due).
    let mut unmet = Vec::new();
    for growth in adjust.moving_growth(cx) {
        let Some(m) = slot[growth.node] else { continue };
        let n = &placer.nodes()[m];
        if n.requested.cpu_milli <= n.allocatable.cpu_milli && n.requested.memory <= n.allocatable.memory {
            continue;
        }
        match placer.best(growth.reborn, Some(m)) {
            Some(dest) => {
                placer.place(growth.reborn, dest);
                moved_in[dest].push(growth.reborn);
                let requested = placer.nodes()[m].requested.clone() - &growth.growth;
                placer.set_requested(m, requested);
            }
            None => unmet.push(growth),
        }
    }
    let mut unneeded = Unneeded::default();
    // Per group, the candidates found unneeded that reserved their removal.
    let mut leaving: BTreeMap<GroupIx, u32> = BTreeMap::new();
    for (k, c) in candidates.iter().enumerate() {
        // A node that is not Ready is no destination (no slot) but may go.
        let me = slot[c.node];
        if me.is_none() && !c.unready {
            continue;
        }
        let moved_here: &[&Pod] = me.map_or(&[], |m| moved_in[m].as_slice());
        let pods: Vec<(&Pod, Disposition)> = cx
            .ix
            .pods_on(c.node)
            .iter()
            .filter(|p| !adjust.leaving(p))
            .map(|p| recreated.get(p.uid.as_str()).unwrap_or_else(|| adjust.pod(p)))
            .chain(incoming[c.node].iter().copied())
            .chain(moved_here.iter().copied())
            .map(|p| (p, classify(p, || cx.ix.has_pdb(p), &cx.policy.scale_down)))
            .collect();
        let mut moving = Resources::default();
        for (pod, _) in pods.iter().filter(|(_, d)| *d == Disposition::Movable) {
            moving.cpu_milli += pod.requests.cpu_milli;
            moving.memory += pod.requests.memory;
            moving.pods += 1;
        }
        let own = me.map_or_else(Resources::default, |m| free(&placer.nodes()[m]));
        let short = [
            ("cpu", moving.cpu_milli, free_total.cpu_milli - own.cpu_milli),
            ("memory", moving.memory, free_total.memory - own.memory),
            ("pods", moving.pods, free_total.pods - own.pods),
        ]
        .into_iter()
        .find(|(_, need, have)| need > have);
        if let Some((resource, _, _)) = short
            && let Some((pod, _)) = pods.iter().find(|(_, d)| *d == Disposition::Movable)
        {
            statuses.insert(
                c.node,
                NodeStatus::NoPlaceForPod {
                    pod: pod.key(),
                    scheduler: format!("the other nodes lack the {resource} its pods request, all together"),
                },
            );
            continue;
        }
        let checkpoint = (placer.checkpoint(), seen.checkpoint());
        let mut taken: Vec<PdbIx> = Vec::new();
        let mut moving: Vec<&Pod> = Vec::new();
        let mut staying: Vec<&Pod> = Vec::new();
        let mut failure = None;
        for (pod, disposition) in pods {
            match disposition {
                Disposition::Stays => {
                    staying.push(pod);
                    continue;
                }
                Disposition::Leaving => continue,
                Disposition::Blocked(reason) => {
                    failure = Some(NodeStatus::PodBlocks { pod: pod.key(), reason });
                    break;
                }
                Disposition::Movable => {}
            }
            // A pod whose PDB allowance this pass has spent goes in a later
            // round of the drain: it still moves, so it still needs room.
            match budget.take_after(&cx.ix, pod) {
                Ok(Turn::Now(t)) => taken.extend(t),
                Ok(Turn::Later) => {}
                Err(pdb) => {
                    failure = Some(NodeStatus::PdbBlocks { pod: pod.key(), pdb: pdb_name(&cx.ix, pdb) });
                    break;
                }
            }
            moving.push(pod);
        }
        let mut moves: Vec<(usize, &Pod)> = Vec::new();
        if failure.is_none() {
            arrival_order(&mut moving, &cx.ix.node(c.node).allocatable);
            for pod in moving {
                // Where the scheduler will bind the replacement, not merely
                // some node with room: the room a later, larger pod needs may
                // be the emptiest node, which an earlier small one takes.
                // Counted at the sizes its pods will have, that node must
                // still have room: the scheduler's choice, made on what it
                // sees, must not take room a growth held back or a move's
                // replacement needs. Room by the scheduler's own rule (a
                // resource the pod requests none of is not checked; ephemeral
                // storage and extended resources are); its other filters the
                // choice has passed already.
                match seen.best(pod, me) {
                    Some(dest) if !room_for(&pod.requests, &placer.nodes()[dest]) => {
                        failure = Some(NodeStatus::NoPlaceForPod {
                            pod: pod.key(),
                            scheduler: format!(
                                "the scheduler would bind it to node {}, into room a pod's coming growth needs",
                                placer.nodes()[dest].name
                            ),
                        });
                        break;
                    }
                    Some(dest) => {
                        placer.place(pod, dest);
                        seen.place(pod, dest);
                        moves.push((dest, pod));
                    }
                    None => {
                        failure = Some(NodeStatus::NoPlaceForPod {
                            pod: pod.key(),
                            scheduler: "no other node can host it where the scheduler places the pods before it".into(),
                        });
                        break;
                    }
                }
            }
        }
        let going = leaving.get(&c.group).copied().unwrap_or(0);
        let at_min_size = staying_in_group(views, removals, c.group, going) <= cx.ix.group(c.group).min_size;
        if failure.is_none()
            && !at_min_size
            && let Some(m) = me
            && let Some(g) = unmet.iter().position(|g| drained_holds(&placer.nodes()[m], &staying, g.reborn))
        {
            failure = Some(NodeStatus::GrowthRoom { pod: unmet.remove(g).pod.key() });
        }
        match failure {
            Some(status) => {
                placer.rollback(checkpoint.0);
                seen.rollback(checkpoint.1);
                budget.give_back(&taken);
                statuses.insert(c.node, status);
            }
            None if at_min_size => {
                // Unneeded, but it stays: its pods stay, it stays a destination.
                placer.rollback(checkpoint.0);
                seen.rollback(checkpoint.1);
                budget.give_back(&taken);
                unneeded.found.push(k);
                unneeded.kept.insert(k);
            }
            None => {
                // Its free capacity is gone; what moved left the others.
                let own = me.map_or_else(Resources::default, |m| free(&placer.nodes()[m]));
                free_total -= &own;
                for (_, pod) in &moves {
                    free_total.cpu_milli -= pod.requests.cpu_milli;
                    free_total.memory -= pod.requests.memory;
                    free_total.pods -= 1;
                }
                if let Some(me) = me {
                    placer.exclude(me);
                    seen.exclude(me);
                }
                for (dest, pod) in moves {
                    moved_in[dest].push(pod);
                }
                *leaving.entry(c.group).or_insert(0) += 1;
                unneeded.found.push(k);
            }
        }
    }
    unneeded
}

/// Whether `node`, its pods gone but those that stay through a drain
/// (DaemonSet and mirror pods), holds `pod`.
fn drained_holds<'a>(node: &SchedNode<'a>, staying: &[&'a Pod], pod: &Pod) -> bool {
    let mut drained = node.clone();
    drained.pods.clear();
    drained.requested = Resources::default();
    for p in staying {
        drained.add(p);
    }
    fits(pod, &drained)
}

/// Each controller's pod template, looked up once per pass and controller
/// rather than once per replica: the snapshot's map hashes the owner's uid
/// (SipHash, a string compare), here the address of the owner reference the
/// controller's replicas share. Only the snapshot's pods are asked about, so
/// the addresses outlive the pass and no two owners share one.
#[derive(Default)]
struct Templates<'a> {
    by_owner: FxHashMap<usize, Option<&'a PodTemplate>>,
}

impl<'a> Templates<'a> {
    fn of(&mut self, cx: &Cx<'a>, pod: &'a Pod) -> Option<&'a PodTemplate> {
        let owner = pod.owner.as_ref()?;
        *self.by_owner.entry(Arc::as_ptr(owner) as usize).or_insert_with(|| cx.ix.template_of(pod))
    }
}

/// The order a drain's replacements are simulated in. The scheduler's queue
/// takes higher priority first; among equals they arrive as their controllers
/// recreate them, which nothing here knows (evictions go out together, each
/// owner replaces its own). Smallest first (their share of `allocatable`, the
/// drained node's) is the order least favourable to `LeastAllocated`: each
/// small pod takes the emptiest node before a large one that may need it
/// (stability seeds 13 and 38). A heuristic worst case, not every order.
fn arrival_order(pods: &mut [&Pod], allocatable: &Resources) {
    let share = |p: &Pod| {
        let part = |want: i64, have: i64| if have > 0 { want as f64 / have as f64 } else { 0.0 };
        part(p.requests.cpu_milli, allocatable.cpu_milli) + part(p.requests.memory, allocatable.memory)
    };
    pods.sort_by(|a, b| b.priority.cmp(&a.priority).then(share(a).total_cmp(&share(b))));
}

/// Keeps the time each unneeded node was first found unneeded (now, for new
/// ones); nodes no longer unneeded are forgotten. A node that received a pod
/// since then starts again: it has not been unneeded for `unneeded-time` with
/// that pod, and pods a drain just sent there would otherwise be evicted again
/// at once, hopping from node to node (issue 17, stability seed 58).
pub(super) fn track(cx: &Cx<'_>, memory: &mut Memory, candidates: &[Candidate], unneeded: &[usize]) {
    let mut since = BTreeMap::new();
    for &k in unneeded {
        let i = candidates[k].node;
        let node = cx.ix.node(i).name.as_str();
        let from = memory
            .unneeded_since
            .get(node)
            .copied()
            .filter(|&t| cx.ix.workload_pods(i).all(|p| p.created <= t))
            .unwrap_or(cx.now);
        since.insert(node.to_string(), from);
    }
    memory.unneeded_since = since;
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use crate::model::{OwnerRef, Pod, PodTemplate, Resources, Snapshot, Timestamp, test_support};
    use crate::planner::Cx;
    use crate::planner::index::Index;
    use crate::planner::policy::Policy;

    use super::Templates;

    fn template(cpu_milli: i64) -> PodTemplate {
        PodTemplate { requests: Resources { cpu_milli, pods: 1, ..Resources::default() }, containers: vec![] }
    }

    fn replica(name: &str, owner: Option<&Arc<OwnerRef>>) -> Pod {
        Pod { owner: owner.cloned(), ..test_support::pod(name) }
    }

    #[test]
    fn each_replica_gets_its_own_controller_s_template() {
        let owner = |uid: &str| Arc::new(OwnerRef { kind: "ReplicaSet".into(), name: uid.into(), uid: uid.into() });
        let (web, db, batch) = (owner("rs-web"), owner("rs-db"), owner("job-batch"));
        // A second reference to web's controller, as a pod decoded apart
        // from its siblings would hold: the same template.
        let web_again = owner("rs-web");
        let snap = Snapshot {
            pods: vec![
                replica("web-1", Some(&web)),
                replica("db-1", Some(&db)),
                replica("web-2", Some(&web)),
                replica("batch-1", Some(&batch)),
                replica("bare", None),
                replica("web-3", Some(&web_again)),
                replica("db-2", Some(&db)),
            ],
            templates: HashMap::from([("rs-web".into(), template(100)), ("rs-db".into(), template(700))]),
            ..Snapshot::default()
        };
        let policy = Policy::default();
        let cx = Cx { ix: Index::build(&snap, &policy), policy: &policy, now: Timestamp::UNIX_EPOCH, usage: None };
        let mut templates = Templates::default();
        for pod in &snap.pods {
            let cpu = |t: Option<&PodTemplate>| t.map(|t| t.requests.cpu_milli);
            let want = match pod.owner.as_ref().map(|o| o.uid.as_str()) {
                Some("rs-web") => Some(100),
                Some("rs-db") => Some(700),
                _ => None,
            };
            assert_eq!(cpu(cx.ix.template_of(pod)), want, "{}", pod.name);
            assert_eq!(cpu(templates.of(&cx, pod)), want, "{}", pod.name);
        }
    }
}
