//! Per workload: the rate limit and the disruption budget, then how each due
//! update can happen — in place, by evict-and-recreate onto another node, or
//! not until capacity exists.

use rustc_hash::FxHashMap;

use crate::model::ResourceKind;
use crate::model::{ChangeRequirement, Name, PodPhase, Resources, Timestamp, UpdateMode, VerticalScaling};
use crate::planner::Cx;
use crate::planner::explain::{ResizeDecision, UpdateBlock, UpdateReason};
use crate::planner::index::{NodeIx, PodIx, Table, VpaIx};
use crate::planner::memory::{PodTimers, ResizeMemory};
use crate::planner::scheduling::Placer;
use crate::planner::time::after;

use super::{Evaluation, Relief, ScaleUpInput, Urgency, Wanted};

/// How a decided update happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum How {
    InPlace,
    Recreate,
}

#[derive(Debug)]
pub(crate) struct Planned<'w> {
    pub want: &'w Wanted<'w>,
    pub how: How,
    pub reason: UpdateReason,
    /// Where a recreated pod is to land at its new size (another node), if
    /// it moves: scale-down keeps that room and that node.
    pub dest: Option<NodeIx>,
}

#[derive(Debug, Default)]
pub(crate) struct Assessment<'w> {
    /// Updates to issue this pass (recreations still need the PDB allowance).
    pub updates: Vec<Planned<'w>>,
    /// Over-requested pods held back by the rate limit or the disruption
    /// budget (why, if scale-up does not use them): shrunk only if scale-up
    /// uses the capacity they free.
    pub forcible: Vec<(&'w Wanted<'w>, ResizeDecision)>,
    /// New sizes that fit no node: node-level demand.
    pub demand: Vec<Planned<'w>>,
    /// Updates due but held back by the rate limit or the disruption budget:
    /// scale-down counts their growth (`Adjustments`).
    pub waiting: Vec<&'w Wanted<'w>>,
    /// Everything else, explained: (pod, its VPA object, decision).
    pub settled: Vec<(PodIx, VpaIx, ResizeDecision)>,
    pub relief: Vec<Relief>,
    /// Pods off target now (uid → since), for `Memory::resize`.
    pub off_target: PodTimers,
}

impl<'w> Assessment<'w> {
    /// The demand at the size each pod comes back at (`Wanted::reborn`), the
    /// size its move will place.
    pub fn scale_up_input(&self, cx: &Cx<'_>) -> ScaleUpInput<'w> {
        ScaleUpInput { relief: self.relief.clone(), demand: self.demand.iter().map(|p| p.want.reborn(cx)).collect() }
    }
}

pub(crate) fn assess<'w>(cx: &Cx<'w>, evaluations: &'w [Evaluation<'w>], memory: &ResizeMemory) -> Assessment<'w> {
    let updater = &cx.policy.resize.updater;
    let mut out = Assessment { settled: Vec::with_capacity(evaluations.len()), ..Assessment::default() };
    // Per VPA object by position, visited in that order (as a map by
    // position would be), without a tree insert per pod.
    let mut per_workload: Table<VpaIx, Vec<&'w Wanted<'w>>> = Table::filled(Vec::new(), cx.ix.snap.vertical.len());
    // Pods off target (uid, since), sorted once into the map at the end.
    let mut off_target: Vec<(&'w Name, Timestamp)> = Vec::new();
    for e in evaluations {
        match e {
            Evaluation::Wanted(w) => per_workload[w.vertical].push(w),
            Evaluation::Growing { want, decision } => {
                if let ResizeDecision::OffTarget { since, .. } = decision {
                    off_target.push((&want.pod.uid, *since));
                }
                out.waiting.push(want);
                out.settled.push((want.index, want.vertical, decision.clone()));
            }
            Evaluation::Settled { pod, index, vertical, decision, in_flight } => {
                if let ResizeDecision::OffTarget { since, .. } = decision {
                    off_target.push((&pod.uid, *since));
                }
                if let Some(f) = in_flight
                    && (f.freed.cpu_milli > 0 || f.freed.memory > 0)
                {
                    out.relief.push(Relief { node: f.node, freed: f.freed.clone() });
                }
                out.settled.push((*index, *vertical, decision.clone()));
            }
        }
    }

    let mut fit = Fit::default();
    let stats = counts(cx, evaluations);
    for (v, mut wants) in per_workload.into_iter() {
        if wants.is_empty() {
            continue;
        }
        let vertical = cx.ix.vpa(v);
        let key = vertical.workload.to_string();
        let stat = stats[v];
        let replicas = vertical.replicas.unwrap_or(stat.live);
        let max_in_flight = ((f64::from(replicas) * updater.max_disruption_fraction.0).floor() as u32).max(1);
        let mut in_flight = stat.in_flight + replicas.saturating_sub(stat.live);
        let rate_limited_until = memory
            .last_update
            .get(&key)
            .map(|&t| after(t, updater.min_update_interval))
            .filter(|&until| cx.now < until);
        // Keys computed once per pod, not per comparison: a first pass over
        // a cluster newly under VPA objects sorts 124,000 due pods, most of
        // them tied on rank and change, and each comparison went through
        // two shared names to their lengths before comparing the bytes.
        // The same order as a stable sort by the key (`sort_by_cached_key`).
        wants.sort_by_cached_key(|w| {
            let (rank, change) = priority(w);
            (rank, std::cmp::Reverse(TotalOrder(change)), w.pod.name.as_str())
        });
        for w in wants {
            if let UpdateReason::OffTarget { since, .. } = &w.reason {
                off_target.push((&w.pod.uid, *since));
            }
            let fresh_oom = matches!(w.urgency, Urgency::Fresh { oom: true, .. });
            if w.urgency != Urgency::Fallback {
                // A re-sent deferred resize is already among those in flight.
                let others = in_flight - u32::from(w.resend && in_flight > 0);
                let held = match rate_limited_until.filter(|_| !fresh_oom) {
                    Some(until) => Some(ResizeDecision::RateLimited { until }),
                    None if others >= max_in_flight => {
                        Some(ResizeDecision::DisruptionBudget { in_flight, max: max_in_flight })
                    }
                    None => None,
                };
                if let Some(held) = held {
                    if over_requested(w) && vertical.update_mode.in_place() {
                        // Shrinking in place restarts nothing and evicts no
                        // one: neither the rate limit nor the disruption
                        // budget holds it back when scale-up uses what it
                        // frees (issued then, else explained as `held`).
                        out.relief.push(Relief { node: w.node, freed: freed(w) });
                        out.forcible.push((w, held));
                    } else {
                        out.waiting.push(w);
                        out.settled.push((w.index, v, held));
                    }
                    continue;
                }
            }
            match decide(cx, &mut fit, vertical, replicas, w) {
                Decision::Update(how, dest) => {
                    if w.urgency != Urgency::Fallback && !w.resend {
                        in_flight += 1;
                    }
                    if how == How::InPlace && w.shrink_only {
                        out.relief.push(Relief { node: w.node, freed: freed(w) });
                    }
                    out.updates.push(Planned { want: w, how, reason: w.reason.clone(), dest });
                }
                Decision::Demand(reason) => {
                    out.demand.push(Planned { want: w, how: How::Recreate, reason, dest: None })
                }
                Decision::Blocked(reason, why) => {
                    out.settled.push((w.index, v, ResizeDecision::Blocked { reason, why }))
                }
                Decision::Wait(decision) => {
                    // Its growth is counted while it waits, as under the rate limit.
                    out.waiting.push(w);
                    out.settled.push((w.index, v, decision));
                }
            }
        }
    }
    // Sized once (the last entry of a uid wins, as with any insert); the
    // memory shares the pods' uids.
    out.off_target = PodTimers::with_capacity_and_hasher(off_target.len(), Default::default());
    out.off_target.extend(off_target.into_iter().map(|(uid, since)| (uid.clone(), since)));
    out
}

/// (rank, change): kubelet fallbacks first (already in flight), then OOM
/// kills, then growth (as VPA's updater), each by the larger change.
fn priority(w: &Wanted<'_>) -> (u8, f64) {
    match w.urgency {
        Urgency::Fallback => (0, 0.0),
        Urgency::Fresh { oom: true, change, .. } => (1, change),
        Urgency::Fresh { grows: true, change, .. } => (2, change),
        Urgency::Fresh { grows: false, change, .. } => (3, change),
    }
}

/// An `f64` ordered by [`f64::total_cmp`], for sort keys.
#[derive(Clone, Copy, Debug)]
struct TotalOrder(f64);

impl PartialEq for TotalOrder {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for TotalOrder {}

impl PartialOrd for TotalOrder {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TotalOrder {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// A shrink that is due on its own: above the upper bound, or off target past
/// `update-off-target-after` (issue 17: leaving the latter out let the rate
/// limit delay by seconds a shrink that would have avoided a scale-up).
fn over_requested(w: &Wanted<'_>) -> bool {
    w.shrink_only && matches!(w.reason, UpdateReason::AboveUpperBound { .. } | UpdateReason::OffTarget { .. })
}

fn freed(w: &Wanted<'_>) -> Resources {
    Resources::new(
        (w.pod.requests.cpu_milli - w.requests.cpu_milli).max(0),
        (w.pod.requests.memory - w.requests.memory).max(0),
    )
}

enum Decision {
    /// How, and for a recreated pod that moves, where it lands.
    Update(How, Option<NodeIx>),
    Demand(UpdateReason),
    Blocked(UpdateReason, UpdateBlock),
    /// Due, possible later: held, its growth counted meanwhile.
    Wait(ResizeDecision),
}

fn decide<'w>(
    cx: &Cx<'w>,
    fit: &mut Fit<'w>,
    vertical: &VerticalScaling,
    replicas: u32,
    w: &'w Wanted<'w>,
) -> Decision {
    let mode = vertical.update_mode;
    let fallback = w.urgency == Urgency::Fallback;
    // A replacement gets the recommendation only from an admission controller;
    // without one it comes back at its template's requests, so evicting it —
    // to resize it (Recreate) or to move it where its new size fits
    // (InPlaceOrRecreate) — changes nothing but where it runs, at the old size
    // (issue 17). VPA's updater likewise evicts only while its admission
    // controller runs.
    let admission = cx.ix.snap.admission_applies_recommendations;
    // Kubernetes refuses an in-place resize that changes the QoS class (422):
    // never sent; recreated where that gives the replacement its new size.
    let qos_change = w.qos_change();
    if let Some((from, to)) = qos_change
        && !(mode.recreate() && admission)
    {
        return Decision::Blocked(w.reason.clone(), UpdateBlock::QosClassChange { from, to });
    }
    if mode.in_place() && !fallback && qos_change.is_none() {
        if w.shrink_only || fit.in_place(cx, w) {
            return Decision::Update(How::InPlace, None);
        }
        if mode == UpdateMode::InPlace || !admission {
            // Never evicted: ask anyway when the node could ever hold it (the
            // kubelet defers it until others shrink or leave).
            let why =
                if mode == UpdateMode::InPlace { UpdateBlock::InPlaceOnly } else { UpdateBlock::NoAdmissionController };
            return if fit.within_allocatable(cx, w) {
                Decision::Update(How::InPlace, None)
            } else {
                Decision::Blocked(w.reason.clone(), why)
            };
        }
    }
    if !mode.recreate() {
        return Decision::Blocked(w.reason.clone(), UpdateBlock::InPlaceOnly);
    }
    // Evict and recreate: for Recreate the update itself, for
    // InPlaceOrRecreate a move to where the new size fits.
    let reason = if mode.in_place() && !fallback && qos_change.is_none() {
        UpdateReason::DoesNotFitNode { node: cx.ix.node(w.node).name.clone() }
    } else {
        w.reason.clone()
    };
    if !admission {
        return Decision::Blocked(reason, UpdateBlock::NoAdmissionController);
    }
    let min = vertical.min_replicas.unwrap_or(cx.policy.resize.updater.min_replicas);
    if replicas < min {
        return Decision::Blocked(reason, UpdateBlock::MinReplicas { replicas, min });
    }
    if !eviction_requirements_met(vertical, w) {
        return Decision::Blocked(reason, UpdateBlock::EvictionRequirements);
    }
    // A pod just created — often by an eviction — is not evicted again at
    // once: at most `1h / min-pod-age` evictions per replica and hour. An OOM
    // kill is not exempt (it is from `min-update-interval`, a workload's
    // limit): a replacement OOM-killed at its bumped size would otherwise be
    // recreated at every kill, one bump each (stability seed 49). The kubelet
    // restarts the killed container in place meanwhile, and the bumps keep
    // raising the target the pod gets once it is old enough.
    let until = after(w.pod.created, cx.policy.scale_down.min_pod_age);
    if cx.now < until {
        return Decision::Wait(ResizeDecision::YoungPod { reason, until });
    }
    // The replacement may land on the pod's own node when the new size fits
    // there (a plain Recreate update), else it must fit another one.
    if (mode == UpdateMode::Recreate || qos_change.is_some()) && (w.shrink_only || fit.in_place(cx, w)) {
        return Decision::Update(How::Recreate, None);
    }
    match fit.elsewhere(cx, w) {
        Some(dest) => Decision::Update(How::Recreate, Some(dest)),
        None => Decision::Demand(reason),
    }
}

/// `evictionRequirements`: each must be met by some listed resource of some container.
fn eviction_requirements_met(vertical: &VerticalScaling, w: &Wanted<'_>) -> bool {
    vertical.eviction_requirements.iter().all(|r| {
        w.containers.iter().any(|c| {
            r.resources.iter().any(|&kind| {
                let (old, new) = match kind {
                    ResourceKind::Cpu => (c.from.cpu_milli, c.requests.cpu_milli),
                    ResourceKind::Memory => (c.from.memory, c.requests.memory),
                };
                match r.change {
                    ChangeRequirement::TargetHigherThanRequests => new > old,
                    ChangeRequirement::TargetLowerThanRequests => new < old,
                }
            })
        })
    })
}

/// Room on nodes: growth planned in place per node, and recreated pods placed
/// on the other Ready nodes with the scheduler model (built on first use).
#[derive(Default)]
struct Fit<'w> {
    /// By node position (FxHash: integer keys the index handed out).
    grown: FxHashMap<NodeIx, Resources>,
    /// Built on first use.
    others: Option<Others<'w>>,
}

/// The placer over Ready nodes not being removed.
struct Others<'w> {
    placer: Placer<'w>,
    /// Each snapshot node's slot in the placer.
    slots: Table<NodeIx, Option<usize>>,
    /// Each slot's node.
    nodes: Vec<NodeIx>,
}

impl<'w> Fit<'w> {
    /// The node has room for the growth now, after other growth planned there.
    fn in_place(&mut self, cx: &Cx<'_>, w: &Wanted<'_>) -> bool {
        let node = cx.ix.node(w.node);
        let grown = self.grown.entry(w.node).or_default();
        let delta =
            Resources::new(w.requests.cpu_milli - w.pod.requests.cpu_milli, w.requests.memory - w.pod.requests.memory);
        let requested = cx.ix.requested(w.node);
        let fits = requested.cpu_milli + grown.cpu_milli + delta.cpu_milli <= node.allocatable.cpu_milli
            && requested.memory + grown.memory + delta.memory <= node.allocatable.memory;
        if fits {
            *grown += &delta;
        }
        fits
    }

    /// The new size alone fits the node's allocatable (the kubelet would defer, not refuse).
    fn within_allocatable(&self, cx: &Cx<'_>, w: &Wanted<'_>) -> bool {
        let alloc = &cx.ix.node(w.node).allocatable;
        w.requests.cpu_milli <= alloc.cpu_milli && w.requests.memory <= alloc.memory
    }

    /// The Ready node the scheduler would bind the replacement to at its new
    /// size — the size it comes back at, `Wanted::reborn` — (placing it
    /// there): the emptiest that fits, not the first — the node the move
    /// reserves must be the one it lands on.
    fn elsewhere(&mut self, cx: &Cx<'w>, w: &'w Wanted<'w>) -> Option<NodeIx> {
        let o = self.others.get_or_insert_with(|| {
            let mut slots = Table::filled(None, cx.ix.node_count());
            let mut sched = Vec::new();
            let mut nodes = Vec::new();
            for (i, slot) in slots.iter_mut() {
                if cx.ix.node(i).ready && cx.ix.removal(i).is_none() {
                    *slot = Some(sched.len());
                    sched.push(cx.ix.sched_node(i));
                    nodes.push(i);
                }
            }
            Others { placer: Placer::new(sched), slots, nodes }
        });
        let reborn = w.reborn(cx);
        let dest = o.placer.best(reborn, o.slots[w.node])?;
        o.placer.place(reborn, dest);
        Some(o.nodes[dest])
    }
}

/// Live pods and pods in flight per VPA object.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    live: u32,
    in_flight: u32,
}

/// From the evaluations: every non-terminal pod of every handled workload,
/// per VPA object by position (one slot each, no hashing per pod).
fn counts(cx: &Cx<'_>, evaluations: &[Evaluation<'_>]) -> Table<VpaIx, Counts> {
    let mut out: Table<VpaIx, Counts> = Table::filled(Counts::default(), cx.ix.snap.vertical.len());
    for e in evaluations {
        let (pod, v) = match e {
            Evaluation::Wanted(w) | Evaluation::Growing { want: w, .. } => (w.pod, w.vertical),
            Evaluation::Settled { pod, vertical, .. } => (*pod, *vertical),
        };
        let c = &mut out[v];
        c.live += 1;
        if pod.deletion.is_some() || pod.phase != PodPhase::Running || pod.resize.is_pending() {
            c.in_flight += 1;
        }
    }
    out
}
