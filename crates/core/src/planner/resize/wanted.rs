//! Per pod: what its recommendation asks, and whether an update is due.

use crate::model::ResourceKind;
use crate::model::{Name, Pod, PodPhase, ResizeState, Resources, Timestamp, UpdateMode, VerticalScaling};
use crate::planner::Cx;
use crate::planner::action::ContainerResize;
use crate::planner::explain::{ResizeDecision, UpdateBlock, UpdateReason};
use crate::planner::index::{NodeIx, PodIx, VpaIx};
use crate::planner::memory::ResizeMemory;
use crate::planner::time::{after, elapsed};
use crate::recommender::apply_to_container;

use super::{Evaluation, InFlight, Urgency, Wanted, cpu_memory};

/// Every pod of every workload under a VPA object, in snapshot order.
pub(crate) fn evaluate_all<'a>(cx: &Cx<'a>, memory: &ResizeMemory) -> Vec<Evaluation<'a>> {
    if !cx.policy.resize.enabled || cx.ix.snap.vertical.is_empty() {
        return Vec::new();
    }
    // Sized for every pod at once: growing a vector of 300,000 evaluations
    // copied it over and over (pages never written are never touched).
    let mut out = Vec::with_capacity(cx.ix.snap.pods.len());
    for (index, pod) in cx.ix.pods() {
        let Some(v) = pod.workload.as_ref().and_then(|w| cx.ix.vpa_of(w)) else { continue };
        if pod.is_terminal() {
            continue;
        }
        let node = pod.node_name.as_deref().and_then(|n| cx.ix.node_named(n));
        out.push(evaluate(cx, memory, v, (index, pod), node));
    }
    out
}

fn evaluate<'a>(
    cx: &Cx<'a>,
    memory: &ResizeMemory,
    v: VpaIx,
    (index, pod): (PodIx, &'a Pod),
    node: Option<NodeIx>,
) -> Evaluation<'a> {
    let vertical = cx.ix.vpa(v);
    let Some(node) = node.filter(|_| pod.phase == PodPhase::Running && pod.deletion.is_none()) else {
        return Evaluation::Settled { pod, index, vertical: v, decision: ResizeDecision::NotRunning, in_flight: None };
    };
    // A resize sent that the kubelet has not taken up yet (no condition so
    // far): the scheduler counts the old size until it is applied, then the
    // new one, as for a resize in progress — so is what a shrink frees.
    let unacknowledged = awaits_the_kubelet(pod);
    let settled = |decision| Evaluation::Settled {
        pod,
        index,
        vertical: v,
        decision,
        in_flight: unacknowledged.then(|| Box::new(in_flight(pod, node))),
    };
    if matches!(vertical.update_mode, UpdateMode::Off | UpdateMode::Initial) {
        return settled(ResizeDecision::RecommendationOnly { mode: vertical.update_mode.as_str() });
    }
    if vertical.recommendations.is_empty() {
        return settled(ResizeDecision::NoRecommendation);
    }
    let mut desired = Desired::of(vertical, pod);
    let updater = &cx.policy.resize.updater;

    // A deferred ask the recommendation has since left behind, on a pod that
    // is never moved: the newer target is sent in its place.
    if matches!(pod.resize, ResizeState::Deferred { .. })
        && vertical.update_mode.in_place()
        && never_moved(cx, vertical).is_some()
        && let Some((reason, urgency)) = stale_ask(cx, memory, &desired, pod)
    {
        let mut wanted = desired.into_wanted((index, pod), node, v, reason, urgency);
        wanted.resend = true;
        return Evaluation::Wanted(wanted);
    }

    // A resize in flight: wait for the kubelet, or fall back when it gave up.
    let fallback = match &pod.resize {
        ResizeState::None => None,
        ResizeState::Infeasible { message, .. } => Some(UpdateReason::ResizeInfeasible { message: message.clone() }),
        ResizeState::Deferred { since, message } if elapsed(cx.now, *since) > updater.deferred_timeout.get() => {
            Some(UpdateReason::ResizeDeferred { since: *since, message: message.clone() })
        }
        ResizeState::Error { message, .. } => Some(UpdateReason::ResizeFailed { message: message.clone() }),
        ResizeState::Deferred { .. } | ResizeState::InProgress { .. } => {
            let decision = match &pod.resize {
                ResizeState::Deferred { since, message } => deferred(cx, vertical, *since, message),
                _ => ResizeDecision::Resizing { state: "in progress".to_string() },
            };
            return Evaluation::Settled {
                pod,
                index,
                vertical: v,
                decision,
                in_flight: Some(Box::new(in_flight(pod, node))),
            };
        }
    };
    if let Some(reason) = fallback {
        return Evaluation::Wanted(desired.into_wanted((index, pod), node, v, reason, Urgency::Fallback));
    }
    if !desired.changes(pod) {
        if unacknowledged {
            return settled(ResizeDecision::Resizing { state: "sent, not taken up yet".to_string() });
        }
        return settled(ResizeDecision::UpToDate);
    }

    let (grows, change) = (desired.grows, desired.change);
    let urgency = |oom| Urgency::Fresh { oom, grows, change };
    if let Some(reason) = oom_killed(memory, &desired, pod) {
        return Evaluation::Wanted(desired.into_wanted((index, pod), node, v, reason, urgency(true)));
    }
    if let Some(reason) = desired.outside_bounds.take() {
        return Evaluation::Wanted(desired.into_wanted((index, pod), node, v, reason, urgency(false)));
    }
    if desired.change >= updater.min_change_fraction.0 {
        let since = memory.off_target_since.get(&pod.uid).copied().unwrap_or(cx.now);
        let update_at = after(since, updater.update_off_target_after);
        let reason = UpdateReason::OffTarget { since, change: desired.change };
        if cx.now >= update_at {
            return Evaluation::Wanted(desired.into_wanted((index, pod), node, v, reason, urgency(false)));
        }
        let decision = ResizeDecision::OffTarget { since, update_at, change: desired.change };
        if grows && !unacknowledged {
            // Its growth comes at `update_at`: counted from now, as a growth
            // the rate limit holds back is, so scale-down does not give its
            // room away meanwhile (issue 17: pod-shapes' `diurnal`).
            let want = desired.into_wanted((index, pod), node, v, reason, urgency(false));
            return Evaluation::Growing { want, decision };
        }
        return settled(decision);
    }
    settled(ResizeDecision::UpToDate)
}

/// An OOM kill since the pod's size was last set, with a target asking more
/// memory than the container's spec.
fn oom_killed(memory: &ResizeMemory, desired: &Desired, pod: &Pod) -> Option<UpdateReason> {
    // Most pods were never OOM-killed: no look-up of the uid among every pod
    // resized so far for them.
    if pod.containers.iter().all(|c| c.last_oom.is_none()) {
        return None;
    }
    let last_set = memory.resized.get(&pod.uid).copied().map_or(pod.created, |t| t.max(pod.created));
    let (c, _) = pod.containers.iter().zip(&desired.containers).find(|(c, d)| {
        c.last_oom.is_some_and(|t| t > last_set) && d.as_ref().is_some_and(|d| d.requests.memory > c.requests.memory)
    })?;
    Some(UpdateReason::OomKilled { container: Name::from(c.name.as_str()) })
}

/// Why a pod never leaves its node for its growth (`None`: it may be moved).
fn never_moved(cx: &Cx<'_>, vertical: &VerticalScaling) -> Option<UpdateBlock> {
    if vertical.update_mode == UpdateMode::InPlace {
        Some(UpdateBlock::InPlaceOnly)
    } else if !cx.ix.snap.admission_applies_recommendations {
        Some(UpdateBlock::NoAdmissionController)
    } else {
        None
    }
}

/// A deferred resize whose ask (the spec) the recommendation has left: an
/// OOM kill since it was sent with a target asking more memory; or, with no
/// resource asked beyond the ask, the ask outside the new bounds or off the
/// new target by `min-change-fraction` — the thresholds of any update, judged
/// against the ask. The deferred ask
/// waits for room that may never come to a pod never moved, and a newer,
/// smaller one may fit now; left alone, a stale ask (an OOM bump, a growth
/// since shrunk) stays until the kubelet admits the wrong size. Not waiting
/// `update-off-target-after`: the ask is not running, so nothing is
/// disrupted by replacing it. `min-update-interval` still applies (OOM kills
/// exempt, as for any update), and once re-sent the spec is the target, so
/// it is not sent again until the recommendation moves past a threshold.
/// A pod that may be moved is left to its move at `deferred-timeout`, which
/// gives its replacement the newest recommendation.
fn stale_ask(cx: &Cx<'_>, memory: &ResizeMemory, desired: &Desired, pod: &Pod) -> Option<(UpdateReason, Urgency)> {
    if !desired.changes(pod) {
        return None;
    }
    let (grows, change) = (desired.grows, desired.change);
    if let Some(reason) = oom_killed(memory, desired, pod) {
        return Some((reason, Urgency::Fresh { oom: true, grows, change }));
    }
    if grows {
        // More than the ask: the kubelet admits the ask when room comes, and
        // the growth beyond it follows in place. Chasing a rising target with
        // ever larger asks kept each one out of reach and the pod's slot of
        // the disruption budget taken (pod-shapes' `sine`).
        return None;
    }
    let reason = match desired.outside_bounds.clone() {
        Some(reason) => reason,
        None if change >= cx.policy.resize.updater.min_change_fraction.0 => UpdateReason::StaleDeferredAsk { change },
        None => return None,
    };
    Some((reason, Urgency::Fresh { oom: false, grows, change }))
}

/// A growth the kubelet defers, within `deferred-timeout`: what follows it.
/// A pod that may be recreated where it fits is moved after the timeout, or a
/// node is added for it (assess: `DoesNotFitNode` → a move or scale-up
/// demand), as VPA's updater evicts a resize deferred that long. One never
/// moved — `InPlace` mode, or no admission controller to give its replacement
/// the new size — gets no node either: a new minion is room only for a pod the
/// scheduler places, and this one stays where it is. Said, not left silent.
fn deferred(cx: &Cx<'_>, vertical: &VerticalScaling, since: Timestamp, message: &str) -> ResizeDecision {
    match never_moved(cx, vertical) {
        Some(why) => ResizeDecision::DeferredInPlace { message: message.to_string(), why },
        None => {
            let at = after(since, cx.policy.resize.updater.deferred_timeout);
            let at = at.strftime("%Y-%m-%dT%H:%M:%SZ");
            ResizeDecision::Resizing {
                state: format!(
                    "deferred ({message}); moved where it fits, or a node added for it, if still deferred at {at} \
                     (deferred-timeout)"
                ),
            }
        }
    }
}

/// No resize condition, yet some container's spec differs from what the
/// kubelet reports applied (`status.containerStatuses[].resources`): a resize
/// was written and the kubelet has not answered it yet. The window is short
/// (the kubelet's next sync), but a pass planned in it must not take the room
/// a shrink is about to free for missing (issue 17).
fn awaits_the_kubelet(pod: &Pod) -> bool {
    pod.resize == ResizeState::None
        && pod.containers.iter().any(|c| {
            c.allocated.as_ref().is_some_and(|a| a.cpu_milli != c.requests.cpu_milli || a.memory != c.requests.memory)
        })
}

/// A resize the kubelet is applying: the pod at its spec's requests, and what
/// a shrink frees once applied (the scheduler counts the larger of spec and
/// allocated meanwhile).
fn in_flight(pod: &Pod, node: NodeIx) -> InFlight {
    let mut freed = Resources::default();
    for c in &pod.containers {
        if let Some(a) = &c.allocated {
            freed.cpu_milli += (a.cpu_milli - c.requests.cpu_milli).max(0);
            freed.memory += (a.memory - c.requests.memory).max(0);
        }
    }
    let mut resized = pod.clone();
    resized.requests -= &freed;
    InFlight { node, freed, resized }
}

/// The recommendation applied to one pod.
struct Desired {
    /// Per container (same order as `pod.containers`); `None`: not recommended.
    containers: Vec<Option<crate::recommender::AppliedResources>>,
    outside_bounds: Option<UpdateReason>,
    grows: bool,
    /// VPA's priority measure: Σ over resources |Σ requests − Σ targets| / Σ requests.
    change: f64,
}

impl Desired {
    fn of(vertical: &VerticalScaling, pod: &Pod) -> Self {
        let mut outside_bounds = None;
        let mut grows = false;
        let mut totals = [(0i64, 0i64); 2]; // (requests, targets) per resource kind
        let containers = pod
            .containers
            .iter()
            .map(|c| {
                let rec = vertical.recommendation(&c.name)?;
                let policy = vertical.resource_policy.for_container(&c.name);
                for (k, kind) in ResourceKind::ALL.into_iter().enumerate() {
                    let target = kind.get(&rec.target);
                    if target == 0 {
                        continue; // not controlled
                    }
                    let request = kind.get(&c.requests);
                    totals[k].0 += request;
                    totals[k].1 += target;
                    grows |= target > request;
                    let (lower, upper) = (kind.get(&rec.lower_bound), kind.get(&rec.upper_bound));
                    let resource = kind.name();
                    if outside_bounds.is_none() {
                        if request == 0 || (lower > 0 && request < lower) {
                            outside_bounds = Some(UpdateReason::BelowLowerBound {
                                container: Name::from(c.name.as_str()),
                                resource,
                            });
                        } else if upper > 0 && request > upper {
                            outside_bounds = Some(UpdateReason::AboveUpperBound {
                                container: Name::from(c.name.as_str()),
                                resource,
                            });
                        }
                    }
                }
                Some(apply_to_container(c, &rec.target, policy))
            })
            .collect();
        let change =
            totals.iter().filter(|(_, t)| *t > 0).map(|&(r, t)| (r - t).abs() as f64 / (r.max(1) as f64)).sum();
        Self { containers, outside_bounds, grows, change }
    }

    /// Whether applying it changes any request or limit.
    fn changes(&self, pod: &Pod) -> bool {
        pod.containers
            .iter()
            .zip(&self.containers)
            .any(|(c, d)| d.as_ref().is_some_and(|d| d.requests != c.requests || d.limits != c.limits))
    }

    fn into_wanted<'a>(
        self,
        (index, pod): (PodIx, &'a Pod),
        node: NodeIx,
        v: VpaIx,
        reason: UpdateReason,
        urgency: Urgency,
    ) -> Wanted<'a> {
        let mut requests = pod.requests.clone();
        let mut containers = Vec::with_capacity(pod.containers.len());
        let mut shrink_only = true;
        for (c, d) in pod.containers.iter().zip(self.containers) {
            let Some(d) = d else { continue };
            // What the scheduler holds now (the larger of spec and allocated
            // while a resize is pending; only allocated once it is Infeasible).
            let held = c.counted(&pod.resize);
            requests.cpu_milli += d.requests.cpu_milli - held.cpu_milli;
            requests.memory += d.requests.memory - held.memory;
            shrink_only &= d.requests.cpu_milli <= held.cpu_milli && d.requests.memory <= held.memory;
            // The container's name as the reason holds it, when the reason
            // names it: one string for both.
            let container = match &reason {
                UpdateReason::BelowLowerBound { container, .. }
                | UpdateReason::AboveUpperBound { container, .. }
                | UpdateReason::OomKilled { container }
                    if *container == c.name =>
                {
                    container.clone()
                }
                _ => Name::from(c.name.as_str()),
            };
            containers.push(ContainerResize {
                container,
                from: cpu_memory(&c.requests),
                requests: cpu_memory(&d.requests),
                limits: cpu_memory(&d.limits),
            });
        }
        let mut wanted = Wanted {
            pod,
            index,
            node,
            vertical: v,
            containers,
            requests,
            resized: Default::default(),
            future: Default::default(),
            reborn: Default::default(),
            reason,
            resend: false,
            urgency,
            shrink_only,
            qos_change: None,
        };
        wanted.qos_change = wanted.classes();
        wanted
    }
}
