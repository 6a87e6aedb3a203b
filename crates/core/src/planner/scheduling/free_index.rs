//! Finding the node `LeastAllocated` ranks first without scoring every node.
//!
//! Scale-down's removal simulation and the simulator's scheduler bind every
//! pod to the emptiest node that fits it (see [`super::least_allocated`]).
//! Scanning all nodes for each pod made a pass over a few hundred drain
//! candidates cost candidates × pods × nodes checks (issue 18, item 5). This
//! index is a segment tree over the placer's nodes that keeps, per range of
//! nodes, the most free CPU, memory and pod slots any of them has, the range
//! of their allocatable CPU and memory and the first name among them. From
//! these a search bounds the best score a range can reach and skips it when
//! that bound is below the best node found so far, or when no node of it has
//! room for the pod at all (a pod that fits nowhere costs a few range checks,
//! not a scan).
//!
//! The answer is exactly the scan's: the bound is computed with the same
//! floating-point operations as the score, and rounding is monotone, so it is
//! never below the score of any node in the range; ties go to the first node
//! by name, then by position, as the scan's did. Every node the search does
//! not skip is checked with all the filters.
//!
//! Two things keep the search short where a pass asks it thousands of times
//! (issue 18, item 5). The node a query skips — in scale-down, the drained
//! candidate itself, usually among the emptiest — is taken out of the tree
//! while it is skipped ([`FreeIndex::hide`]), so the search does not first
//! walk down to a node it must refuse. And when the caller's nodes are in
//! name order ([`FreeIndex::build`]'s `in_name_order`), the name tie-break
//! compares positions instead of strings at every join and every pruning.

use super::SchedNode;
use crate::model::{Pod, Resources};

/// What a range of nodes offers at best. `live: false`: no node in the range
/// can take any pod (empty, or every node excluded).
#[derive(Clone, Copy, Debug)]
struct Span {
    live: bool,
    free_cpu: i64,
    free_memory: i64,
    free_pods: i64,
    cpu: Allocatable,
    memory: Allocatable,
    /// The most any node of the range has free, as shares of its own
    /// allocatable CPU and memory added up (see [`Span::bound`]).
    shares: f64,
    /// The range's first node by name (then position): ties go to it.
    first: usize,
}

/// The allocatable amounts of one resource over a range: the smallest and
/// largest positive ones, and whether some node has none (its share counts 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Allocatable {
    min: i64,
    max: i64,
    none: bool,
}

impl Allocatable {
    const EMPTY: Self = Self { min: i64::MAX, max: 0, none: false };

    fn of(amount: i64) -> Self {
        if amount > 0 { Self { min: amount, max: amount, none: false } } else { Self { none: true, ..Self::EMPTY } }
    }

    fn join(self, other: Self) -> Self {
        Self { min: self.min.min(other.min), max: self.max.max(other.max), none: self.none || other.none }
    }

    /// The largest share left free (as `least_allocated` computes it) of any
    /// node in the range with at most `free` left once the pod is added.
    /// For `free ≥ 0` the smallest allocatable gives the largest share, for
    /// `free < 0` the largest one does; a node without this resource scores 0.
    fn best_share(self, free: i64) -> f64 {
        let mut best = f64::NEG_INFINITY;
        if self.max > 0 {
            let divisor = if free >= 0 { self.min } else { self.max };
            best = free as f64 / divisor as f64;
        }
        if self.none {
            best = best.max(0.0);
        }
        best
    }
}

impl Span {
    const DEAD: Self = Self {
        live: false,
        free_cpu: i64::MIN,
        free_memory: i64::MIN,
        free_pods: i64::MIN,
        cpu: Allocatable::EMPTY,
        memory: Allocatable::EMPTY,
        shares: f64::NEG_INFINITY,
        first: usize::MAX,
    };

    fn of(node: &SchedNode<'_>, i: usize) -> Self {
        if node.excluded {
            return Self::DEAD;
        }
        let (a, r) = (&node.allocatable, &node.requested);
        let share = |have: i64, used: i64| if have > 0 { (have - used) as f64 / have as f64 } else { 0.0 };
        Self {
            live: true,
            free_cpu: a.cpu_milli - r.cpu_milli,
            free_memory: a.memory - r.memory,
            free_pods: a.pods - r.pods,
            cpu: Allocatable::of(a.cpu_milli),
            memory: Allocatable::of(a.memory),
            shares: share(a.cpu_milli, r.cpu_milli) + share(a.memory, r.memory),
            first: i,
        }
    }

    fn join(self, other: Self, order: Order<'_, '_>) -> Self {
        match (self.live, other.live) {
            (false, _) => other,
            (_, false) => self,
            _ => Self {
                live: true,
                free_cpu: self.free_cpu.max(other.free_cpu),
                free_memory: self.free_memory.max(other.free_memory),
                free_pods: self.free_pods.max(other.free_pods),
                cpu: self.cpu.join(other.cpu),
                memory: self.memory.join(other.memory),
                shares: self.shares.max(other.shares),
                first: if order.before(other.first, self.first) { other.first } else { self.first },
            },
        }
    }

    /// The same summary, field for field (floats bit for bit): a range that
    /// is the same gives every range above it the same join.
    fn same(&self, other: &Self) -> bool {
        self.live == other.live
            && self.free_cpu == other.free_cpu
            && self.free_memory == other.free_memory
            && self.free_pods == other.free_pods
            && self.cpu == other.cpu
            && self.memory == other.memory
            && self.shares.to_bits() == other.shares.to_bits()
            && self.first == other.first
    }

    /// Some node of the range may have room for `request` (CPU, memory and
    /// pod slots; the other resources are left to the filters).
    fn may_fit(&self, request: &Resources) -> bool {
        self.live
            && (request.pods <= 0 || request.pods <= self.free_pods)
            && (request.cpu_milli <= 0 || request.cpu_milli <= self.free_cpu)
            && (request.memory <= 0 || request.memory <= self.free_memory)
    }

    /// No node of the range scores above this for `request`: the smaller of
    /// two upper bounds. The first applies the operations of
    /// `least_allocated` to the range's extremes; it is exact when one node
    /// has both the most CPU and the most memory free, and reached by ties of
    /// equal nodes, which the search prunes by name. When the most free CPU
    /// and the most free memory are on different nodes it is loose, and the
    /// search would visit much of the tree (issue 18, item 5). The second is
    /// tight then: a node's score is half its free shares added up (`shares`,
    /// one number per node, so its maximum is one node's) less the pod's
    /// shares of that node, which are at least its shares of the largest
    /// allocatable in the range (nothing, for a resource some node lacks).
    /// That one is computed differently from the score, so it is raised by
    /// far more than the rounding of either could account for (1e-9 against
    /// about 1e-16): a bound a little high costs a visit, never the answer.
    fn bound(&self, request: &Resources) -> f64 {
        let cpu = self.cpu.best_share(self.free_cpu.saturating_sub(request.cpu_milli));
        let memory = self.memory.best_share(self.free_memory.saturating_sub(request.memory));
        let extremes = (cpu + memory) / 2.0;
        if request.cpu_milli < 0 || request.memory < 0 || !self.shares.is_finite() {
            return extremes;
        }
        let least = |amount: i64, alloc: Allocatable| {
            if alloc.none || alloc.max <= 0 { 0.0 } else { amount as f64 / alloc.max as f64 }
        };
        let shares = (self.shares - least(request.cpu_milli, self.cpu) - least(request.memory, self.memory)) / 2.0;
        extremes.min(shares + 1e-9 * (1.0 + shares.abs()))
    }
}

/// The tie-break between nodes: by name, then position.
#[derive(Clone, Copy)]
struct Order<'n, 'a> {
    nodes: &'n [SchedNode<'a>],
    /// The nodes are in name order (then position), so position alone decides.
    by_position: bool,
}

impl Order<'_, '_> {
    /// Node `a` comes before node `b`.
    fn before(self, a: usize, b: usize) -> bool {
        if self.by_position {
            return a < b;
        }
        match self.nodes[a].name.cmp(&self.nodes[b].name) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Equal => a < b,
            std::cmp::Ordering::Greater => false,
        }
    }
}

/// Whether `nodes` are in name order: [`Order`] may then compare positions.
pub(super) fn in_name_order(nodes: &[SchedNode<'_>]) -> bool {
    nodes.windows(2).all(|w| w[0].name <= w[1].name)
}

/// The segment tree over a placer's nodes, kept in step by the placer: it
/// must be given the same nodes at every call.
#[derive(Clone, Debug, Default)]
pub(super) struct FreeIndex {
    /// Leaves at `width..width + n`, ranges above them; `tree[1]` is all.
    tree: Vec<Span>,
    width: usize,
    /// The nodes were given in name order (see [`Order`]).
    by_position: bool,
    /// The node taken out of the tree while queries skip it ([`FreeIndex::hide`]).
    hidden: Option<usize>,
}

/// The best node found so far: its score and position.
type Best = Option<(f64, usize)>;

impl FreeIndex {
    /// `in_name_order`: the caller vouches that `nodes` are sorted by name
    /// (checked in debug builds); ties are then broken by position alone.
    pub fn build(nodes: &[SchedNode<'_>], in_name_order: bool) -> Self {
        debug_assert!(!in_name_order || self::in_name_order(nodes), "nodes not in name order");
        let width = nodes.len().next_power_of_two().max(1);
        let mut tree = vec![Span::DEAD; 2 * width];
        for (i, node) in nodes.iter().enumerate() {
            tree[width + i] = Span::of(node, i);
        }
        let order = Order { nodes, by_position: in_name_order };
        for k in (1..width).rev() {
            tree[k] = tree[2 * k].join(tree[2 * k + 1], order);
        }
        Self { tree, width, by_position: in_name_order, hidden: None }
    }

    fn order<'n, 'a>(&self, nodes: &'n [SchedNode<'a>]) -> Order<'n, 'a> {
        Order { nodes, by_position: self.by_position }
    }

    /// Node `i` of `nodes` changed (a pod added or removed, excluded).
    pub fn update(&mut self, i: usize, nodes: &[SchedNode<'_>]) {
        let leaf = if self.hidden == Some(i) { Span::DEAD } else { Span::of(&nodes[i], i) };
        self.set(i, leaf, nodes);
    }

    /// Takes `skip` out of the tree (and puts back the node hidden before):
    /// a query that must refuse a node then never descends to it. The
    /// answers do not change, only the work — a skipped node never fits.
    pub fn hide(&mut self, skip: Option<usize>, nodes: &[SchedNode<'_>]) {
        if self.hidden == skip {
            return;
        }
        let shown = std::mem::replace(&mut self.hidden, skip);
        if let Some(i) = shown {
            self.set(i, Span::of(&nodes[i], i), nodes);
        }
        if let Some(i) = skip {
            self.set(i, Span::DEAD, nodes);
        }
    }

    /// Puts `leaf` at node `i` and joins the ranges above it again, up to
    /// the first one the change leaves as it was: every range above that one
    /// is a join of ranges that did not change either. Most placements take
    /// a little from a node that is not the emptiest of its range, so the
    /// walk up usually stops after a level or two instead of the tree's height.
    fn set(&mut self, i: usize, leaf: Span, nodes: &[SchedNode<'_>]) {
        let order = self.order(nodes);
        let mut k = self.width + i;
        if self.tree[k].same(&leaf) {
            return;
        }
        self.tree[k] = leaf;
        while k > 1 {
            k /= 2;
            let joined = self.tree[2 * k].join(self.tree[2 * k + 1], order);
            if self.tree[k].same(&joined) {
                return;
            }
            self.tree[k] = joined;
        }
    }

    /// Of `nodes` where `fits` holds, the one `score` ranks first (the first
    /// by name, then position, on a tie); `score` must be `least_allocated`
    /// for `pod`.
    pub fn best(
        &self,
        nodes: &[SchedNode<'_>],
        pod: &Pod,
        fits: impl Fn(usize) -> bool,
        score: impl Fn(usize) -> f64,
    ) -> Option<usize> {
        let mut best: Best = None;
        let bound = self.tree[1].bound(&pod.requests);
        self.descend(1, bound, self.order(nodes), &pod.requests, &fits, &score, &mut best);
        best.map(|(_, i)| i)
    }

    /// `bound` is `self.tree[k].bound(request)`, computed once by the
    /// caller (which ranks the two halves by it) instead of again here.
    #[allow(clippy::too_many_arguments)] // the search's state, passed down a recursion
    fn descend(
        &self,
        k: usize,
        bound: f64,
        order: Order<'_, '_>,
        request: &Resources,
        fits: &impl Fn(usize) -> bool,
        score: &impl Fn(usize) -> f64,
        best: &mut Best,
    ) {
        let span = &self.tree[k];
        if !span.may_fit(request) {
            return;
        }
        if let Some((s, b)) = *best
            && (bound < s || (bound == s && !order.before(span.first, b)))
        {
            return;
        }
        if k >= self.width {
            let i = k - self.width;
            if !fits(i) {
                return;
            }
            let s = score(i);
            let better = match *best {
                None => true,
                Some((bs, b)) => s > bs || (s == bs && order.before(i, b)),
            };
            if better {
                *best = Some((s, i));
            }
            return;
        }
        // The more promising half first, so the other is more often skipped.
        // A half where no node has room is never entered (the call would
        // return at once): its bound, four divisions, is not computed, and
        // the other half is the only one searched.
        let (l, r) = (2 * k, 2 * k + 1);
        match (self.tree[l].may_fit(request), self.tree[r].may_fit(request)) {
            (false, false) => {}
            (true, false) => self.descend(l, self.tree[l].bound(request), order, request, fits, score, best),
            (false, true) => self.descend(r, self.tree[r].bound(request), order, request, fits, score, best),
            (true, true) => {
                let (bl, br) = (self.tree[l].bound(request), self.tree[r].bound(request));
                let (first, second) = if br > bl { ((r, br), (l, bl)) } else { ((l, bl), (r, br)) };
                self.descend(first.0, first.1, order, request, fits, score, best);
                self.descend(second.0, second.1, order, request, fits, score, best);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::collections::BTreeMap;

    use super::*;

    /// The walk up after a change stops at the first range the change left
    /// as it was: every range must still be the join of its halves, as a
    /// tree built afresh from the same nodes has it. Changes that leave a
    /// range as it was (a pod on a node not the emptiest of its range) and
    /// changes that reach the root are both made, on a width that is not a
    /// power of two, with hidden and excluded nodes.
    #[test]
    fn every_range_after_changes_is_the_range_a_fresh_build_gives() {
        let labels = BTreeMap::new();
        let names: Vec<String> = (0..13).map(|i| format!("n{i:02}")).collect();
        let mut nodes: Vec<SchedNode<'_>> = names
            .iter()
            .enumerate()
            .map(|(i, name)| SchedNode {
                name: Cow::Borrowed(name.as_str()),
                labels: &labels,
                taints: Cow::Owned(vec![]),
                unschedulable: false,
                allocatable: Resources {
                    cpu_milli: [1000, 2000, 4000][i % 3],
                    memory: [1 << 30, 4 << 30][i % 2],
                    pods: 110,
                    ..Resources::default()
                },
                requested: Resources::default(),
                pods: vec![],
                excluded: false,
            })
            .collect();
        let mut index = FreeIndex::build(&nodes, true);
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        for step in 0..2000 {
            let i = next(nodes.len() as u64) as usize;
            match next(20) {
                0 => nodes[i].excluded = !nodes[i].excluded,
                1 => {
                    let skip = (next(2) == 0).then_some(i);
                    index.hide(skip, &nodes);
                }
                2 => {}
                _ => {
                    let n = &mut nodes[i];
                    let cpu = next(300) as i64 - 150;
                    n.requested.cpu_milli = (n.requested.cpu_milli + cpu).clamp(0, n.allocatable.cpu_milli + 500);
                    let memory = (next(64) as i64 - 32) << 20;
                    n.requested.memory = (n.requested.memory + memory).clamp(0, n.allocatable.memory);
                    n.requested.pods = (n.requested.pods + next(3) as i64 - 1).max(0);
                }
            }
            index.update(i, &nodes);
            let mut fresh = FreeIndex::build(&nodes, true);
            fresh.hide(index.hidden, &nodes);
            // Compared as printed (every field; floats print as the exact
            // value), not with `Span::same`, which the walk itself uses.
            for k in 1..index.tree.len() {
                assert_eq!(format!("{:?}", index.tree[k]), format!("{:?}", fresh.tree[k]), "step {step}, range {k}");
            }
        }
    }
}
