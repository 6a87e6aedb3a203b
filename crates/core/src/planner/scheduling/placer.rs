//! Placing many pods on many nodes without quadratic scans.
//!
//! Pods of one workload are alike (same placement, requests, namespace), and
//! within one simulation capacity is only ever consumed: once a node has been
//! found unfit for a pod of a class it stays unfit for the whole class. Each
//! class therefore keeps a cursor past the leading run of nodes known unfit,
//! so placing thousands of replicas costs about one scan of the nodes, not one
//! scan per replica. Checkpoints let a caller try a whole node's pods and undo
//! them if one does not fit (scale-down), restoring cursors with them.

use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

use crate::model::{Pod, Resources};

use super::{FitSummary, Miss, SchedNode, first_miss_with, least_allocated, spread_count, spread_eligible};

/// Pods that the scheduler model treats alike.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Class<'a> {
    placement: usize,
    requests: &'a Resources,
    namespace: &'a str,
    /// Owner uid; the pod's own uid for bare pods (a class of one).
    identity: &'a str,
}

impl<'a> Class<'a> {
    fn of(pod: &'a Pod) -> Self {
        Self {
            placement: Arc::as_ptr(&pod.placement) as usize,
            requests: &pod.requests,
            namespace: &pod.namespace,
            identity: pod.owner.as_ref().map_or(pod.uid.as_str(), |o| o.uid.as_str()),
        }
    }
}

#[derive(Debug)]
enum Undo<'a> {
    Placed { node: usize, pod: &'a Pod },
    Cursor { class: Class<'a>, old: usize },
}

/// A position in the placer's history to roll back to.
#[derive(Clone, Copy, Debug)]
pub struct Checkpoint(usize);

#[derive(Debug, Default)]
pub struct Placer<'a> {
    pub nodes: Vec<SchedNode<'a>>,
    cursors: HashMap<Class<'a>, usize>,
    explained: HashMap<Class<'a>, FitSummary>,
    journal: Vec<Undo<'a>>,
    /// The nodes are every node a pod could go to (see [`Placer::whole_cluster`]).
    whole: bool,
}

impl<'a> Placer<'a> {
    pub fn new(nodes: Vec<SchedNode<'a>>) -> Self {
        Self { nodes, ..Self::default() }
    }

    /// These nodes are the cluster as it is (not a set of new or upcoming
    /// minions): topology spread is checked against the emptiest of them, as
    /// kube-scheduler does. Otherwise the emptiest node counts as empty, which
    /// is never looser than the scheduler.
    pub fn whole_cluster(mut self) -> Self {
        self.whole = true;
        self
    }

    /// Per spread constraint of `pod`, the matching pods on the emptiest
    /// eligible node (never `skip` nor excluded ones); 0 while there are fewer
    /// eligible nodes than its `min_domains`.
    fn floors(&self, pod: &Pod, skip: Option<usize>) -> Vec<u32> {
        if !self.whole || pod.placement.spread_hostname.is_empty() {
            return Vec::new();
        }
        let domains: Vec<&SchedNode<'a>> = (0..self.nodes.len())
            .filter(|&i| Some(i) != skip && !self.nodes[i].excluded && spread_eligible(pod, &self.nodes[i]))
            .map(|i| &self.nodes[i])
            .collect();
        let floor = |spread: &crate::model::HostnameSpread| {
            if (domains.len() as u32) < spread_min_domains(spread) {
                return 0;
            }
            domains.iter().map(|n| spread_count(pod, n, spread)).min().unwrap_or(0)
        };
        pod.placement.spread_hostname.iter().map(floor).collect()
    }

    pub fn push(&mut self, node: SchedNode<'a>) -> usize {
        self.explained.clear();
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    /// The first node, in order, where `pod` fits, never `skip`. Commits nothing.
    pub fn find(&mut self, pod: &'a Pod, skip: Option<usize>) -> Option<usize> {
        self.search(pod, skip, false)
    }

    /// The node kube-scheduler would bind `pod` to: of the nodes where it
    /// fits (never `skip`), the one [`least_allocated`] ranks first, the
    /// first by name on a tie. Commits nothing. Scans every node past the
    /// class's cursor, where [`Placer::find`] stops at the first fit.
    pub fn best(&mut self, pod: &'a Pod, skip: Option<usize>) -> Option<usize> {
        self.search(pod, skip, true)
    }

    /// The first fitting node, or with `scored` the best-scored one; moves
    /// the class's cursor past the leading run of nodes that do not fit.
    fn search(&mut self, pod: &'a Pod, skip: Option<usize>, scored: bool) -> Option<usize> {
        let class = Class::of(pod);
        let floors = self.floors(pod, skip);
        // A rising spread floor can make a node fit again: no cursor then.
        let cursor = floors.is_empty();
        let start = if cursor { self.cursors.get(&class).copied().unwrap_or(0) } else { 0 };
        let mut unfit_prefix = cursor;
        let mut found: Option<(usize, f64)> = None;
        let mut advanced = start;
        for i in start..self.nodes.len() {
            if Some(i) == skip {
                unfit_prefix = false;
                continue;
            }
            let node = &self.nodes[i];
            if first_miss_with(pod, node, &floors).is_none() {
                unfit_prefix = false;
                if !scored {
                    found = Some((i, 0.0));
                    break;
                }
                let score = least_allocated(node, pod);
                let better = match found {
                    None => true,
                    Some((b, best)) => score > best || (score == best && node.name < self.nodes[b].name),
                };
                if better {
                    found = Some((i, score));
                }
                continue;
            }
            if unfit_prefix {
                advanced = i + 1;
            }
        }
        if advanced != start {
            self.journal.push(Undo::Cursor { class: class.clone(), old: start });
            self.cursors.insert(class, advanced);
        }
        found.map(|(i, _)| i)
    }

    /// Why `pod` fits no node (all nodes checked; `skip` counted as excluded).
    /// Cached per class until nodes are added or a rollback happens.
    pub fn explain(&mut self, pod: &'a Pod, skip: Option<usize>) -> FitSummary {
        let class = Class::of(pod);
        if let Some(summary) = self.explained.get(&class) {
            return summary.clone();
        }
        let mut summary = FitSummary::default();
        // Few distinct reasons: counted here, formatted once each.
        let mut counts: Vec<(Miss<'_>, usize)> = Vec::new();
        let floors = self.floors(pod, skip);
        for (i, node) in self.nodes.iter().enumerate() {
            let miss = if Some(i) == skip { Some(Miss::Excluded) } else { first_miss_with(pod, node, &floors) };
            match miss {
                None => summary.nodes += 1,
                Some(m) => match counts.iter_mut().find(|(c, _)| *c == m) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((m, 1)),
                },
            }
        }
        for (miss, n) in counts {
            summary.add_many(&miss.into(), n);
        }
        self.explained.insert(class, summary.clone());
        summary
    }

    pub fn place(&mut self, pod: &'a Pod, node: usize) {
        self.nodes[node].add(pod);
        self.journal.push(Undo::Placed { node, pod });
    }

    /// Takes a node out of consideration for the rest of this placer's life.
    pub fn exclude(&mut self, node: usize) {
        self.nodes[node].excluded = true;
    }

    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint(self.journal.len())
    }

    pub fn rollback(&mut self, to: Checkpoint) {
        self.explained.clear();
        while self.journal.len() > to.0 {
            match self.journal.pop() {
                Some(Undo::Placed { node, pod }) => self.nodes[node].remove(pod),
                Some(Undo::Cursor { class, old }) => {
                    self.cursors.insert(class, old);
                }
                None => break,
            }
        }
    }

    /// Forgets the history (keeps the placements): for long simulations.
    pub fn commit(&mut self) {
        self.journal.clear();
    }
}

fn spread_min_domains(spread: &crate::model::HostnameSpread) -> u32 {
    spread.min_domains.max(1)
}
