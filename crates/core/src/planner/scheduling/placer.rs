//! Placing many pods on many nodes without quadratic scans.
//!
//! Pods of one workload are alike (same placement, requests, namespace), and
//! within one simulation capacity is only ever consumed: once a node has been
//! found unfit for a pod of a class it stays unfit for the whole class. Each
//! class therefore keeps a cursor past the leading run of nodes known unfit,
//! so placing thousands of replicas costs about one scan of the nodes, not one
//! scan per replica. Checkpoints let a caller try a whole node's pods and undo
//! them if one does not fit (scale-down), restoring cursors with them.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::rc::Rc;
use std::sync::Arc;

use crate::model::{Pod, Resources};

use super::free_index::FreeIndex;
use super::score::{normalize_affinity, spread_scores, total};
use super::topology::{
    Domains, Prepared, affinity_at, draws, has_preferences, has_wide_anti, has_wide_scoring, preference_at,
    scoring_terms, soft_spread_counts, wide_anti, wide_scoring,
};
use super::{FitSummary, Miss, SchedNode, first_miss_in, least_allocated};

/// A node a pod with preferences fits, with its plugins' raw scores.
struct Candidate {
    node: usize,
    affinity: i64,
    /// Per `ScheduleAnyway` constraint; `None` where the node lacks the key.
    counts: Vec<Option<u32>>,
    /// LeastAllocated, when it ranks.
    free: Option<f64>,
}

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
    /// Private so that every change goes through the placer and reaches
    /// `free` (read them with [`Placer::nodes`]).
    nodes: Vec<SchedNode<'a>>,
    /// The nodes by free capacity, for [`Placer::best`]: built on its first
    /// use, updated by every placement, rollback and exclusion.
    free: Option<FreeIndex>,
    cursors: HashMap<Class<'a>, usize>,
    explained: HashMap<Class<'a>, FitSummary>,
    journal: Vec<Undo<'a>>,
    /// The nodes are every node a pod could go to (see [`Placer::whole_cluster`]).
    whole: bool,
    /// The rest of the cluster, for terms over zones and other wide keys
    /// (see [`Placer::with_context`]).
    context: Rc<Vec<SchedNode<'a>>>,
    /// The context nodes not also among `nodes` (by name).
    live: Vec<usize>,
    /// Some pod of `nodes` or `context` has anti-affinity wider than a node.
    wide_anti: bool,
    /// Some pod of `nodes` or `context` has a scoring term wider than a node.
    wide_scoring: bool,
    /// One pod per distinct placement among those ever here whose terms
    /// score other pods (kube-scheduler's symmetry): whether a pod is drawn
    /// by any of them decides whether its nodes must be ranked. Never
    /// shrunk on rollback: a pod no longer here only costs a ranking that
    /// finds no preference, the same answer.
    holders: Vec<&'a Pod>,
    held: HashSet<usize>,
    /// `nodes` are sorted by name (see [`Placer::in_name_order`]).
    in_name_order: bool,
}

impl<'a> Placer<'a> {
    pub fn new(nodes: Vec<SchedNode<'a>>) -> Self {
        let wide_anti = has_wide_anti(&nodes);
        let wide_scoring = has_wide_scoring(&nodes);
        let mut placer = Self { nodes, wide_anti, wide_scoring, ..Self::default() };
        let pods: Vec<&'a Pod> = placer.nodes.iter().flat_map(|n| n.pods.iter().copied()).collect();
        placer.hold(pods);
        placer
    }

    /// Remembers the pods among `pods` whose terms score others.
    fn hold(&mut self, pods: impl IntoIterator<Item = &'a Pod>) {
        for pod in pods {
            if scoring_terms(pod).next().is_some() && self.held.insert(Arc::as_ptr(&pod.placement) as usize) {
                self.holders.push(pod);
            }
        }
    }

    /// Whether the nodes `pod` fits must be ranked before LeastAllocated:
    /// its own preferences, or terms of pods here that select it.
    fn prefers(&self, pod: &Pod) -> bool {
        has_preferences(pod) || self.holders.iter().any(|h| draws(h, pod))
    }

    /// These nodes are the cluster as it is (not a set of new or upcoming
    /// minions): topology spread is checked against the emptiest of them, as
    /// kube-scheduler does. Otherwise the emptiest node counts as empty, which
    /// is never looser than the scheduler.
    pub fn whole_cluster(mut self) -> Self {
        self.whole = true;
        self
    }

    /// The caller gave the nodes sorted by name: [`Placer::best`]'s tie-break
    /// by name then compares positions, not strings (the same answers; worth
    /// it where one placer answers many queries, as in scale-down's removal
    /// simulation). Checked in debug builds.
    pub fn in_name_order(mut self) -> Self {
        self.in_name_order = true;
        self
    }

    /// The rest of the cluster, whose pods count for affinity, anti-affinity
    /// and spread over zones and other keys but which takes no pod here: the
    /// existing nodes, when these are new or upcoming minions. A context node
    /// with the name of one of `nodes` is left out (that one is counted). With
    /// a context, spread floors are the emptiest domain's, as with
    /// [`Placer::whole_cluster`].
    pub fn with_context(mut self, context: Rc<Vec<SchedNode<'a>>>) -> Self {
        let own: HashSet<&str> = self.nodes.iter().map(|n| n.name.as_ref()).collect();
        self.live = (0..context.len()).filter(|&k| !own.contains(context[k].name.as_ref())).collect();
        self.wide_anti = has_wide_anti(&self.nodes) || has_wide_anti(context.iter());
        self.wide_scoring = has_wide_scoring(&self.nodes) || has_wide_scoring(context.iter());
        let pods: Vec<&'a Pod> = self.live.iter().flat_map(|&k| context[k].pods.iter().copied()).collect();
        self.hold(pods);
        self.whole = self.whole || !context.is_empty();
        self.context = context;
        self
    }

    /// The nodes, in the order given (indices are positions here).
    pub fn nodes(&self) -> &[SchedNode<'a>] {
        &self.nodes
    }

    /// Sets what node `i` has requested (a pod changing size in place).
    pub fn set_requested(&mut self, i: usize, requested: Resources) {
        self.nodes[i].requested = requested;
        self.explained.clear();
        if let Some(free) = &mut self.free {
            free.update(i, &self.nodes);
        }
    }

    fn domains(&self, skip: Option<usize>) -> Domains<'_, 'a> {
        Domains {
            nodes: &self.nodes,
            context: &self.context,
            live: Some(&self.live),
            skip,
            whole: self.whole,
            wide_anti: self.wide_anti,
            wide_scoring: self.wide_scoring,
        }
    }

    /// How much `pod` prefers node `i` (its preferred terms, the terms of
    /// pods here that select it, and `ScheduleAnyway` spread; 0 without any).
    pub fn preference(&self, pod: &Pod, i: usize) -> i64 {
        if !self.prefers(pod) {
            return 0;
        }
        preference_at(pod, &self.domains(None), i)
    }

    /// Every node where `pod` fits, never `skip`. Commits nothing.
    pub fn fitting(&self, pod: &'a Pod, skip: Option<usize>) -> Vec<usize> {
        let domains = self.domains(skip);
        let prepared = Prepared::new(pod, &domains);
        (0..self.nodes.len())
            .filter(|&i| Some(i) != skip && first_miss_in(pod, &domains, i, &prepared).is_none())
            .collect()
    }

    pub fn push(&mut self, node: SchedNode<'a>) -> usize {
        self.explained.clear();
        self.wide_anti |= has_wide_anti(std::iter::once(&node));
        self.wide_scoring |= has_wide_scoring(std::iter::once(&node));
        let pods: Vec<&'a Pod> = node.pods.clone();
        self.hold(pods);
        self.free = None;
        self.in_name_order &= self.nodes.last().is_none_or(|last| last.name <= node.name);
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    /// The first node, in order, where `pod` fits, never `skip` — or, for a
    /// pod with preferences (preferred terms, `ScheduleAnyway` spread, terms
    /// of pods here that select it), the fitting node with the highest sum of
    /// the preference plugins' normalised scores (`score`), the first on a
    /// tie. Commits nothing.
    pub fn find(&mut self, pod: &'a Pod, skip: Option<usize>) -> Option<usize> {
        self.search(pod, skip, false)
    }

    /// The node kube-scheduler would bind `pod` to: of the nodes where it
    /// fits (never `skip`), the one [`least_allocated`] ranks first — for a
    /// pod with preferences, the highest weighted sum of the plugins'
    /// normalised scores, `LeastAllocated` among them (`score`) — the first
    /// by name on a tie. Commits nothing. Without preferences the
    /// answer comes from the free-capacity index (no scan of every node);
    /// with them, every node past the class's cursor is ranked.
    pub fn best(&mut self, pod: &'a Pod, skip: Option<usize>) -> Option<usize> {
        if self.prefers(pod) {
            return self.search(pod, skip, true);
        }
        let free = self.free.get_or_insert_with(|| FreeIndex::build(&self.nodes, self.in_name_order));
        free.hide(skip, &self.nodes);
        let domains = self.domains(skip);
        let prepared = Prepared::new(pod, &domains);
        let fits = |i: usize| Some(i) != skip && first_miss_in(pod, &domains, i, &prepared).is_none();
        let score = |i: usize| least_allocated(&self.nodes[i], pod);
        self.free.as_ref().and_then(|free| free.best(&self.nodes, pod, fits, score))
    }

    /// [`Placer::best`] by ranking every node past the class's cursor, as it
    /// did before the free-capacity index: the reference the index is tested
    /// against.
    #[cfg(test)]
    pub(super) fn best_by_scan(&mut self, pod: &'a Pod, skip: Option<usize>) -> Option<usize> {
        self.search(pod, skip, true)
    }

    /// The first fitting node, or the best-ranked one (with preferences, the
    /// plugins' weighted sum, `LeastAllocated` in it with
    /// `least_allocated_first`; without, the emptiest node); moves the class's
    /// cursor past the leading run of nodes that do not fit.
    fn search(&mut self, pod: &'a Pod, skip: Option<usize>, least_allocated_first: bool) -> Option<usize> {
        let class = Class::of(pod);
        let preferring = self.prefers(pod);
        let ranked = preferring || least_allocated_first;
        let (found, advanced, start) = {
            let domains = self.domains(skip);
            let prepared = Prepared::new(pod, &domains);
            // A rising spread floor, a pod placed in an affinity domain or a
            // preference can make a node that was passed over the answer: no
            // cursor then. LeastAllocated alone keeps it: the leading unfit
            // nodes stay unfit for the class whatever the ranking.
            let cursor = prepared.floors.is_empty() && pod.placement.pod_affinity.is_empty() && !preferring;
            let start = if cursor { self.cursors.get(&class).copied().unwrap_or(0) } else { 0 };
            let mut unfit_prefix = cursor;
            // Without preferences: the LeastAllocated score alone (or the
            // first fit). With them: every fitting node is collected, for
            // the plugins' scores are normalised over all of them.
            let mut found: Option<(usize, f64)> = None;
            let mut candidates: Vec<Candidate> = Vec::new();
            let mut advanced = start;
            for i in start..self.nodes.len() {
                if Some(i) == skip {
                    unfit_prefix = false;
                    continue;
                }
                if first_miss_in(pod, &domains, i, &prepared).is_some() {
                    if unfit_prefix {
                        advanced = i + 1;
                    }
                    continue;
                }
                unfit_prefix = false;
                if !ranked {
                    found = Some((i, 0.0));
                    break;
                }
                let free = if least_allocated_first { Some(least_allocated(&self.nodes[i], pod)) } else { None };
                if preferring {
                    let affinity = affinity_at(pod, &domains, i);
                    let counts = soft_spread_counts(pod, &domains, i);
                    candidates.push(Candidate { node: i, affinity, counts, free });
                    continue;
                }
                let free = free.unwrap_or(0.0);
                let better = match found {
                    None => true,
                    // The first by name on a tie.
                    Some((b, bf)) => free > bf || (free == bf && self.nodes[i].name < self.nodes[b].name),
                };
                if better {
                    found = Some((i, free));
                }
            }
            let found =
                if preferring { self.rank(pod, &candidates, least_allocated_first) } else { found.map(|f| f.0) };
            (found, advanced, start)
        };
        if advanced != start {
            self.journal.push(Undo::Cursor { class: class.clone(), old: start });
            self.cursors.insert(class, advanced);
        }
        found
    }

    /// The candidate kube-scheduler would pick: the highest weighted sum of
    /// the plugins' normalised scores ([`score`](super::score)); on a tie the
    /// first by name (with LeastAllocated) or the first in order (a
    /// first-fit search).
    fn rank(&self, pod: &Pod, candidates: &[Candidate], least_allocated_first: bool) -> Option<usize> {
        let affinity = normalize_affinity(&candidates.iter().map(|c| c.affinity).collect::<Vec<_>>());
        let soft: Vec<_> = pod.placement.spread.iter().filter(|s| !s.is_filter()).collect();
        // Each constraint's domains among the feasible nodes.
        let domains: Vec<usize> = soft
            .iter()
            .map(|s| {
                let mut values: Vec<&str> = candidates
                    .iter()
                    .filter_map(|c| {
                        let node = &self.nodes[c.node];
                        if s.per_node() {
                            Some(node.name.as_ref())
                        } else {
                            node.labels.get(&s.topology_key).map(String::as_str)
                        }
                    })
                    .collect();
                values.sort_unstable();
                values.dedup();
                values.len()
            })
            .collect();
        let skews: Vec<u32> = soft.iter().map(|s| s.max_skew).collect();
        let counts: Vec<Option<Vec<u32>>> =
            candidates.iter().map(|c| c.counts.iter().copied().collect::<Option<Vec<u32>>>()).collect();
        let spread = spread_scores(&counts, &domains, &skews);
        let mut best: Option<(usize, f64)> = None;
        for (k, c) in candidates.iter().enumerate() {
            let score = total(affinity[k], spread[k], c.free);
            let better = match best {
                None => true,
                Some((b, bs)) => {
                    score > bs
                        || (least_allocated_first
                            && score == bs
                            && self.nodes[c.node].name < self.nodes[candidates[b].node].name)
                }
            };
            if better {
                best = Some((k, score));
            }
        }
        best.map(|(k, _)| candidates[k].node)
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
        let domains = self.domains(skip);
        let prepared = Prepared::new(pod, &domains);
        for i in 0..self.nodes.len() {
            let miss = if Some(i) == skip { Some(Miss::Excluded) } else { first_miss_in(pod, &domains, i, &prepared) };
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
        self.wide_anti |= wide_anti(pod);
        self.wide_scoring |= wide_scoring(pod);
        self.hold(std::iter::once(pod));
        self.nodes[node].add(pod);
        self.reindex(node);
        self.journal.push(Undo::Placed { node, pod });
    }

    /// Takes a node out of consideration for the rest of this placer's life.
    pub fn exclude(&mut self, node: usize) {
        self.nodes[node].excluded = true;
        self.reindex(node);
    }

    fn reindex(&mut self, node: usize) {
        if let Some(free) = &mut self.free {
            free.update(node, &self.nodes);
        }
    }

    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint(self.journal.len())
    }

    pub fn rollback(&mut self, to: Checkpoint) {
        self.explained.clear();
        while self.journal.len() > to.0 {
            match self.journal.pop() {
                Some(Undo::Placed { node, pod }) => {
                    self.nodes[node].remove(pod);
                    self.reindex(node);
                }
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
