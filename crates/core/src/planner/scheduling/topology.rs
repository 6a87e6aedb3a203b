//! Inter-pod affinity, anti-affinity and topology spread over any topology
//! key: a domain is every node sharing the value of the key, so a check of
//! one node reads the pods of its whole domain. `kubernetes.io/hostname`
//! terms stay node-local (every node is its own domain, new minions whose
//! template carries no hostname label included), which keeps the common case
//! as cheap as before.

use std::collections::BTreeMap;

use crate::model::{Pod, PodAffinityTerm, TopologySpread};

/// kube-scheduler's `hardPodAffinityWeight` default: what an existing pod's
/// *required* affinity term that selects the incoming pod adds to the score
/// of the nodes in its domain (the `InterPodAffinity` plugin's symmetry).
pub(crate) const HARD_POD_AFFINITY_WEIGHT: i64 = 1;

use super::{Miss, SchedNode, Unfit, spread_eligible};

/// The nodes a check sees: the candidates (`nodes`, one of which is checked)
/// and the rest of the cluster (`context`), whose pods count for affinity,
/// anti-affinity and spread but which take no pod.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Domains<'v, 'n> {
    pub nodes: &'v [SchedNode<'n>],
    pub context: &'v [SchedNode<'n>],
    /// The context nodes that count (those not also among `nodes`); `None`: all.
    pub live: Option<&'v [usize]>,
    /// Left out of every count: the node being emptied.
    pub skip: Option<usize>,
    /// `nodes` and `context` are the whole cluster: a spread constraint's
    /// floor is its emptiest domain. Otherwise the floor is 0, never looser
    /// than the scheduler.
    pub whole: bool,
    /// Some pod here has required anti-affinity over a key wider than the
    /// hostname, so every check must look for it across the domain.
    pub wide_anti: bool,
    /// Some pod here has a term that scores others (see [`scoring_terms`])
    /// over a key wider than the hostname, so a node's score must look for
    /// it across the node's domain.
    pub wide_scoring: bool,
}

impl<'v, 'n> Domains<'v, 'n> {
    /// `nodes` are the world (one node, for a single check).
    pub fn alone(nodes: &'v [SchedNode<'n>]) -> Self {
        Self { nodes, context: &[], live: None, skip: None, whole: false, wide_anti: false, wide_scoring: false }
    }

    /// Every node whose pods count.
    fn counted(&self) -> impl Iterator<Item = &'v SchedNode<'n>> + '_ {
        let own = self.nodes.iter().enumerate().filter(|(i, n)| Some(*i) != self.skip && !n.excluded).map(|(_, n)| n);
        let context: Box<dyn Iterator<Item = &'v SchedNode<'n>>> = match self.live {
            Some(live) => Box::new(live.iter().map(|&k| &self.context[k])),
            None => Box::new(self.context.iter()),
        };
        own.chain(context.filter(|n| !n.excluded))
    }

    /// The counted nodes of one domain.
    fn peers<'s>(&'s self, key: &'s str, value: &'s str) -> impl Iterator<Item = &'v SchedNode<'n>> + 's {
        self.counted().filter(move |n| n.labels.get(key).is_some_and(|v| v == value))
    }

    /// A pod `term` selects runs in `node`'s domain of the term's key.
    fn in_domain(&self, term: &PodAffinityTerm, node: &SchedNode<'_>) -> bool {
        if term.per_node() {
            return node.pods.iter().any(|o| term.matches(o));
        }
        let Some(value) = node.labels.get(&term.topology_key) else { return false };
        self.peers(&term.topology_key, value).any(|n| n.pods.iter().any(|o| term.matches(o)))
    }

    /// How many pods `term` selects in `node`'s domain of the term's key:
    /// kube-scheduler adds a preferred term's weight once per such pod.
    fn count_in_domain(&self, term: &PodAffinityTerm, node: &SchedNode<'_>) -> i64 {
        let on = |n: &SchedNode<'_>| n.pods.iter().filter(|o| term.matches(o)).count() as i64;
        if term.per_node() {
            return on(node);
        }
        let Some(value) = node.labels.get(&term.topology_key) else { return 0 };
        self.peers(&term.topology_key, value).map(on).sum()
    }

    /// What the pods already in `node`'s domains add to its score for `pod`
    /// through their own terms that select `pod` (kube-scheduler's symmetry):
    /// a client's preferred affinity towards a server draws a re-created
    /// server replica to the client's node, as the real scheduler does.
    fn drawn_by_others(&self, pod: &Pod, node: &SchedNode<'_>) -> i64 {
        // Pods on the node share every domain the node has a key for.
        let shares = |t: &PodAffinityTerm| t.per_node() || node.labels.contains_key(&t.topology_key);
        let mut score: i64 = node
            .pods
            .iter()
            .flat_map(|o| scoring_terms(o))
            .filter(|(t, _)| shares(t) && t.matches(pod))
            .map(|(_, w)| w)
            .sum();
        if self.wide_scoring {
            for n in self.counted().filter(|n| !std::ptr::eq(*n, node)) {
                for o in &n.pods {
                    score += scoring_terms(o)
                        .filter(|(t, _)| !t.per_node())
                        .filter(|(t, _)| {
                            let key = &t.topology_key;
                            n.labels.get(key).is_some_and(|v| node.labels.get(key) == Some(v)) && t.matches(pod)
                        })
                        .map(|(_, w)| w)
                        .sum::<i64>();
                }
            }
        }
        score
    }

    /// Pods counting towards `spread` of `pod` in `node`'s domain; `None`
    /// when the node has no value for the key (it belongs to no domain).
    fn spread_count(&self, pod: &Pod, spread: &TopologySpread, node: &SchedNode<'_>) -> Option<u32> {
        if spread.per_node() {
            return Some(count_on(pod, spread, node));
        }
        let value = node.labels.get(&spread.topology_key)?;
        let peers = self.peers(&spread.topology_key, value).filter(|n| spread_eligible(pod, n));
        Some(peers.map(|n| count_on(pod, spread, n)).sum())
    }
}

/// Whether any pod on these nodes has required anti-affinity wider than a node.
pub(crate) fn has_wide_anti<'x, 'n: 'x>(nodes: impl IntoIterator<Item = &'x SchedNode<'n>>) -> bool {
    nodes.into_iter().any(|n| n.pods.iter().any(|p| wide_anti(p)))
}

pub(crate) fn wide_anti(pod: &Pod) -> bool {
    pod.placement.pod_anti_affinity.iter().any(|t| !t.per_node())
}

/// The terms of an existing pod that score an incoming pod they select, with
/// what each adds to the nodes of its domain: its preferred affinity terms
/// (+weight), preferred anti-affinity terms (−weight) and required affinity
/// terms ([`HARD_POD_AFFINITY_WEIGHT`]), as kube-scheduler's
/// `InterPodAffinity` scores by default (`ignorePreferredTermsOfExistingPods`
/// false).
pub(crate) fn scoring_terms(pod: &Pod) -> impl Iterator<Item = (&PodAffinityTerm, i64)> {
    let p = &pod.placement;
    let preferred = p.preferred_pod_affinity.iter().map(|w| (&w.term, i64::from(w.weight)));
    let avoided = p.preferred_pod_anti_affinity.iter().map(|w| (&w.term, -i64::from(w.weight)));
    let required = p.pod_affinity.iter().map(|t| (t, HARD_POD_AFFINITY_WEIGHT));
    preferred.chain(avoided).chain(required)
}

/// Whether `holder`'s terms score `pod` (see [`scoring_terms`]).
pub(crate) fn draws(holder: &Pod, pod: &Pod) -> bool {
    scoring_terms(holder).any(|(t, _)| t.matches(pod))
}

/// Whether `pod` has a scoring term over a key wider than a node.
pub(crate) fn wide_scoring(pod: &Pod) -> bool {
    scoring_terms(pod).any(|(t, _)| !t.per_node())
}

/// Whether any pod on these nodes has a scoring term wider than a node.
pub(crate) fn has_wide_scoring<'x, 'n: 'x>(nodes: impl IntoIterator<Item = &'x SchedNode<'n>>) -> bool {
    nodes.into_iter().any(|n| n.pods.iter().any(|p| wide_scoring(p)))
}

/// Preferred terms or `ScheduleAnyway` spread: nodes that fit are ranked.
/// (Other pods' terms that select this one rank nodes too: see
/// [`Placer::prefers`](super::Placer).)
pub(crate) fn has_preferences(pod: &Pod) -> bool {
    let p = &pod.placement;
    !p.preferred_pod_affinity.is_empty()
        || !p.preferred_pod_anti_affinity.is_empty()
        || p.spread.iter().any(|s| !s.is_filter())
}

fn count_on(pod: &Pod, spread: &TopologySpread, node: &SchedNode<'_>) -> u32 {
    node.pods.iter().filter(|o| spread.counts(pod, o)).count() as u32
}

/// What a check needs per pod rather than per node.
#[derive(Clone, Debug, Default)]
pub(crate) struct Prepared {
    /// Per spread constraint of the pod, in order: the emptiest eligible
    /// domain's count (0 for `ScheduleAnyway`, or while fewer domains than
    /// `min_domains` are eligible).
    pub floors: Vec<u32>,
    /// The pod matches all its required affinity terms and no pod anywhere
    /// matches any of them: kube-scheduler lets the first pod of such a group
    /// go to any node that has the terms' topology keys.
    pub first_of_group: bool,
}

impl Prepared {
    pub fn new(pod: &Pod, d: &Domains<'_, '_>) -> Self {
        let p = &pod.placement;
        let first_of_group = !p.pod_affinity.is_empty()
            && p.pod_affinity.iter().all(|t| t.matches(pod))
            && !d.counted().any(|n| n.pods.iter().any(|o| p.pod_affinity.iter().any(|t| t.matches(o))));
        Self { floors: floors(pod, d), first_of_group }
    }
}

fn floors(pod: &Pod, d: &Domains<'_, '_>) -> Vec<u32> {
    let spreads = &pod.placement.spread;
    if !d.whole || !spreads.iter().any(TopologySpread::is_filter) {
        return Vec::new();
    }
    // kube-scheduler counts only nodes that carry every key the pod's
    // DoNotSchedule constraints name.
    let keys: Vec<&str> =
        spreads.iter().filter(|s| s.is_filter() && !s.per_node()).map(|s| s.topology_key.as_str()).collect();
    let eligible: Vec<&SchedNode<'_>> =
        d.counted().filter(|n| spread_eligible(pod, n) && keys.iter().all(|k| n.labels.contains_key(*k))).collect();
    let floor = |spread: &TopologySpread| {
        if !spread.is_filter() {
            return 0;
        }
        let counts: Vec<u32> = if spread.per_node() {
            eligible.iter().map(|n| count_on(pod, spread, n)).collect()
        } else {
            let mut by_value: BTreeMap<&str, u32> = BTreeMap::new();
            for n in &eligible {
                let value = n.labels[&spread.topology_key].as_str();
                *by_value.entry(value).or_insert(0) += count_on(pod, spread, n);
            }
            by_value.into_values().collect()
        };
        if (counts.len() as u32) < spread.min_domains.max(1) {
            return 0;
        }
        counts.into_iter().min().unwrap_or(0)
    };
    spreads.iter().map(floor).collect()
}

/// Required inter-pod anti-affinity (the pod's and the existing pods'), then
/// required affinity, each over its term's domain.
pub(crate) fn inter_pod_miss<'a>(pod: &Pod, d: &Domains<'_, '_>, i: usize, prepared: &Prepared) -> Option<Miss<'a>> {
    let node = &d.nodes[i];
    let p = &pod.placement;
    if p.pod_anti_affinity.iter().any(|t| d.in_domain(t, node)) {
        return Some(Miss::AntiAffinity);
    }
    // Pods on the node share every domain the node has a key for.
    let shares = |t: &PodAffinityTerm| t.per_node() || node.labels.contains_key(&t.topology_key);
    for other in &node.pods {
        if other.placement.pod_anti_affinity.iter().any(|t| shares(t) && t.matches(pod)) {
            return Some(Miss::ExistingAntiAffinity);
        }
    }
    if d.wide_anti {
        for n in d.counted().filter(|n| !std::ptr::eq(*n, node)) {
            for other in &n.pods {
                let hit = other.placement.pod_anti_affinity.iter().filter(|t| !t.per_node()).any(|t| {
                    let key = &t.topology_key;
                    n.labels.get(key).is_some_and(|v| node.labels.get(key) == Some(v)) && t.matches(pod)
                });
                if hit {
                    return Some(Miss::ExistingAntiAffinity);
                }
            }
        }
    }
    for t in &p.pod_affinity {
        if d.in_domain(t, node) {
            continue;
        }
        if !(prepared.first_of_group && shares(t)) {
            return Some(Miss::Affinity);
        }
    }
    None
}

/// `DoNotSchedule` topology spread: placing the pod in the node's domain must
/// not put it more than `max_skew` matching pods above the floor. A node
/// without the key belongs to no domain and is unfit.
pub(crate) fn spread_miss<'a>(pod: &Pod, d: &Domains<'_, '_>, i: usize, prepared: &Prepared) -> Option<Miss<'a>> {
    let node = &d.nodes[i];
    for (k, spread) in pod.placement.spread.iter().enumerate().filter(|(_, s)| s.is_filter()) {
        let Some(count) = d.spread_count(pod, spread, node) else { return Some(Miss::TopologySpread) };
        let own = u32::from(spread.selector.matches(&pod.labels));
        let floor = prepared.floors.get(k).copied().unwrap_or(0);
        if (count + own).saturating_sub(floor) > spread.max_skew {
            return Some(Miss::TopologySpread);
        }
    }
    None
}

/// How much the pod prefers node `i` (higher is better), as kube-scheduler's
/// `InterPodAffinity` score counts it: each preferred affinity term's weight
/// once per pod it selects in the node's domain, minus the same for its
/// preferred anti-affinity terms, plus what the pods already there add
/// through their own terms that select this pod (symmetry,
/// [`scoring_terms`]); then minus the matching pods already in the domain of
/// each `ScheduleAnyway` constraint: the raw figures, as `Placer::preference`
/// reports them. The placer ranks by the plugins' normalised, weighted
/// sum instead (`score`), as kube-scheduler does.
pub(crate) fn preference_at(pod: &Pod, d: &Domains<'_, '_>, i: usize) -> i64 {
    let mut score = affinity_at(pod, d, i);
    for count in soft_spread_counts(pod, d, i) {
        // A node outside every domain ranks below any domain.
        score -= count.map_or(i64::from(u32::MAX), i64::from);
    }
    score
}

/// kube-scheduler's `InterPodAffinity` score of node `i` for `pod` before
/// normalisation: the pod's preferred terms and the terms of the pods there
/// that select it (see [`preference_at`]).
pub(crate) fn affinity_at(pod: &Pod, d: &Domains<'_, '_>, i: usize) -> i64 {
    let node = &d.nodes[i];
    let p = &pod.placement;
    let mut score = 0i64;
    for w in &p.preferred_pod_affinity {
        score += i64::from(w.weight) * d.count_in_domain(&w.term, node);
    }
    for w in &p.preferred_pod_anti_affinity {
        score -= i64::from(w.weight) * d.count_in_domain(&w.term, node);
    }
    score + d.drawn_by_others(pod, node)
}

/// Per `ScheduleAnyway` constraint of `pod`, in order, the matching pods in
/// node `i`'s domain; `None` where the node has no value for the key.
pub(crate) fn soft_spread_counts(pod: &Pod, d: &Domains<'_, '_>, i: usize) -> Vec<Option<u32>> {
    let node = &d.nodes[i];
    pod.placement.spread.iter().filter(|s| !s.is_filter()).map(|s| d.spread_count(pod, s, node)).collect()
}

/// [`super::check`] of `node` as one more node of the cluster `context`:
/// affinity, anti-affinity and spread see the pods of its domains there
/// (a group's template node, say, in its zone).
pub fn check_among(pod: &Pod, node: &SchedNode<'_>, context: &[SchedNode<'_>]) -> Result<(), Unfit> {
    let nodes = std::slice::from_ref(node);
    let d = among(nodes, context);
    let prepared = Prepared::new(pod, &d);
    match super::first_miss_in(pod, &d, 0, &prepared) {
        None => Ok(()),
        Some(miss) => Err(miss.into()),
    }
}

/// [`preference_at`] of `node` as one more node of the cluster `context`.
pub fn preference(pod: &Pod, node: &SchedNode<'_>, context: &[SchedNode<'_>]) -> i64 {
    let nodes = std::slice::from_ref(node);
    preference_at(pod, &among(nodes, context), 0)
}

fn among<'v, 'n>(nodes: &'v [SchedNode<'n>], context: &'v [SchedNode<'n>]) -> Domains<'v, 'n> {
    let whole = !context.is_empty();
    let wide_anti = has_wide_anti(context) || has_wide_anti(nodes);
    let wide_scoring = has_wide_scoring(context) || has_wide_scoring(nodes);
    Domains { nodes, context, live: None, skip: None, whole, wide_anti, wide_scoring }
}
