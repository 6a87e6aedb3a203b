//! The pod-level updater: which pods under a VPA object heatscaler handles
//! are resized in place, recreated, or left alone — planned together with the
//! node level from the same snapshot.
//!
//! A pass, in order:
//! 1. [`wanted::evaluate`] each pod: its recommended requests (limits keep
//!    their ratio, `recommender::apply_to_container`) and whether an update
//!    is due — a request outside `[lowerBound, upperBound]`, an OOM kill since
//!    its size was last set with a target asking for more memory, or off
//!    target by more than `min-change-fraction` for `update-off-target-after`;
//!    or whether the kubelet gave up on an in-place resize (`Infeasible`,
//!    `Deferred` longer than `deferred-timeout`, `Error`).
//! 2. [`assess::assess`] per workload: `min-update-interval` (OOM kills are
//!    exempt), at most `max-disruption-fraction` of the replicas in flight,
//!    then how: in place when the new size fits the node; else evict and
//!    recreate where the mode allows it, the pod is `min-pod-age` old (OOM
//!    kills are not exempt) and the new size fits another node; else the new
//!    size is a node-level need handed to scale-up.
//! 3. Scale-up places pending pods on existing nodes as they are once
//!    over-requested pods there shrink ([`Relief`]) before it grows a group,
//!    and treats the needs of step 2 like pending pods.
//! 4. [`issue::issue`] turns the decisions into `ResizePod` / `RecreatePod`
//!    (evictions share the PDB allowance of drains), records timers, and
//!    tells scale-down which pods will have new requests ([`Adjustments`]).

mod admission;
mod assess;
mod issue;
mod wanted;

use rustc_hash::FxHashMap;

use crate::model::{Pod, QosClass, Resources};

use super::action::ContainerResize;
use super::explain::{CpuMemory, ResizeDecision, UpdateReason};
use super::index::{NodeIx, PodIx, VpaIx};

pub(crate) use admission::{recreated, recreated_from};
pub(crate) use assess::assess;
pub(crate) use issue::issue;
pub(crate) use wanted::evaluate_all;

/// What one pod's recommendation asks of it.
#[derive(Debug)]
pub(crate) struct Wanted<'a> {
    pub pod: &'a Pod,
    /// Explanations follow snapshot order.
    pub index: PodIx,
    pub node: NodeIx,
    /// Its VPA object.
    pub vertical: VpaIx,
    pub containers: Vec<ContainerResize>,
    /// The pod's requests as the scheduler will count them after the update.
    pub requests: Resources,
    /// The pod at its new size, built on first use (most passes need only
    /// `requests`; cloning 300,000 pods would not be cheap).
    resized: std::cell::OnceCell<Box<Pod>>,
    /// The pod at the larger of its current and its new size, per resource,
    /// built on first use: what it will need while its update waits.
    future: std::cell::OnceCell<Box<Pod>>,
    /// The pod as its replacement is created, built on first use: what a
    /// move places and what scale-up sizes a new node for.
    reborn: std::cell::OnceCell<Box<Pod>>,
    pub reason: UpdateReason,
    /// It replaces a resize of its own the kubelet deferred: the pod already
    /// counts against the disruption budget, and re-sending takes no new slot.
    pub resend: bool,
    pub urgency: Urgency,
    /// No request grows: the node has room by definition.
    pub shrink_only: bool,
    /// (from, to) when the update would change the pod's QoS class, which
    /// Kubernetes refuses in place: worked out with the rest of the
    /// evaluation, while the pod's containers are in the cache — read again
    /// later, at 124,000 due pods, they were mostly cache misses (issue 22).
    qos_change: Option<(QosClass, QosClass)>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Urgency {
    /// A new update, subject to the rate limit and the disruption budget.
    /// `grows`: some request grows (VPA updates those first); `change`: VPA's
    /// relative resource difference (larger first).
    Fresh { oom: bool, grows: bool, change: f64 },
    /// The kubelet gave up on a resize already in flight: the pod already
    /// counts against the budget.
    Fallback,
}

impl Wanted<'_> {
    /// The pod as it would be with the new requests, for placing it.
    pub fn resized(&self) -> &Pod {
        self.resized.get_or_init(|| {
            let mut pod = Box::new(self.pod.clone());
            pod.requests = self.requests.clone();
            for r in &self.containers {
                let Some(c) = pod.containers.iter_mut().find(|c| c.name == r.container) else { continue };
                r.apply_to(c);
                c.allocated = None;
            }
            pod
        })
    }

    /// The pod as its replacement comes back when it is evicted: its
    /// template's requests with the recommendation the admission controller
    /// applies ([`recreated`]); where nothing is known about creation, the
    /// pod at its new size. A move, the scale-up demand and scale-down's
    /// drained pods all size an evicted pod so: placed at its recommendation
    /// instead, a move could reserve a node its replacement does not fit and
    /// scale-up size a minion for a pod smaller than the one that comes.
    pub fn reborn(&self, cx: &super::Cx<'_>) -> &Pod {
        self.reborn.get_or_init(|| match recreated(cx, self.pod) {
            Some(pod) => Box::new(pod),
            None => Box::new(self.resized().clone()),
        })
    }

    /// (from, to) when the update would change the pod's QoS class, which
    /// Kubernetes refuses in place.
    pub fn qos_change(&self) -> Option<(QosClass, QosClass)> {
        self.qos_change
    }

    /// [`Self::qos_change`], worked out once when the evaluation is made.
    fn classes(&self) -> Option<(QosClass, QosClass)> {
        let init = self.pod.init_qos;
        let from = QosClass::of(self.pod.containers.iter().map(|c| (&c.requests, &c.limits))).with_init(init);
        // CPU and memory alone decide the class: no copy of the rest, no vector.
        let after = self.pod.containers.iter().map(|c| {
            let (mut requests, mut limits) = (
                Resources::new(c.requests.cpu_milli, c.requests.memory),
                Resources::new(c.limits.cpu_milli, c.limits.memory),
            );
            if let Some(r) = self.containers.iter().find(|r| r.container == c.name) {
                requests.cpu_milli = r.requests.cpu_milli;
                requests.memory = r.requests.memory;
                if r.limits.cpu_milli > 0 {
                    limits.cpu_milli = r.limits.cpu_milli;
                }
                if r.limits.memory > 0 {
                    limits.memory = r.limits.memory;
                }
            }
            (requests, limits)
        });
        let to = QosClass::of(after).with_init(init);
        (from != to).then_some((from, to))
    }

    /// The pod as it will be while its update waits (rate limit, disruption
    /// budget, capacity, PDB): each request at the larger of what it has and
    /// what it is due, so no plan counts on room its growth will take.
    pub fn future(&self) -> &Pod {
        self.future.get_or_init(|| {
            let mut pod = Box::new(self.pod.clone());
            pod.requests.cpu_milli = self.pod.requests.cpu_milli.max(self.requests.cpu_milli);
            pod.requests.memory = self.pod.requests.memory.max(self.requests.memory);
            for r in &self.containers {
                let Some(c) = pod.containers.iter_mut().find(|c| c.name == r.container) else { continue };
                c.requests.cpu_milli = c.requests.cpu_milli.max(r.requests.cpu_milli);
                c.requests.memory = c.requests.memory.max(r.requests.memory);
            }
            pod
        })
    }
}

/// One pod's evaluation.
#[derive(Debug)]
pub(crate) enum Evaluation<'a> {
    Wanted(Wanted<'a>),
    /// Nothing to do now; `in_flight` when the kubelet is applying a resize.
    Settled {
        pod: &'a Pod,
        index: PodIx,
        vertical: VpaIx,
        decision: ResizeDecision,
        in_flight: Option<Box<InFlight>>,
    },
    /// Off target and growing, its update not due yet (`decision` says
    /// when): nothing to do now, but its growth is coming, so it counts as
    /// an update held back does (`Assessment::waiting`).
    Growing {
        want: Wanted<'a>,
        decision: ResizeDecision,
    },
}

impl<'a> Evaluation<'a> {
    pub fn pod(&self) -> &'a Pod {
        match self {
            Evaluation::Wanted(w) | Evaluation::Growing { want: w, .. } => w.pod,
            Evaluation::Settled { pod, .. } => pod,
        }
    }
}

/// A resize the kubelet is working on (pending or in progress).
#[derive(Debug)]
pub(crate) struct InFlight {
    pub node: NodeIx,
    /// What a shrink frees once applied (zero for growth).
    pub freed: Resources,
    /// The pod at its spec's requests, as it will be once applied.
    pub resized: Pod,
}

/// Capacity a pod frees on its node when it shrinks: a shrink issued this
/// pass, one the kubelet is applying, or an over-requested pod held back by
/// `min-update-interval` that is shrunk if scale-up counts on its node.
#[derive(Clone, Debug)]
pub(crate) struct Relief {
    pub node: NodeIx,
    pub freed: Resources,
}

/// What scale-up needs from the updater.
#[derive(Debug, Default)]
pub(crate) struct ScaleUpInput<'w> {
    pub relief: Vec<Relief>,
    /// Pods at their new size that fit no node: node-level demand.
    pub demand: Vec<&'w Pod>,
}

/// Pods whose requests change because of a resize (issued this pass or in
/// flight): scale-down simulates them at their new size.
///
/// FxHash rather than SipHash: up to one entry per pod of the cluster, keyed
/// by uids the API server assigned and by node positions — nothing an
/// attacker picks to make keys collide.
#[derive(Debug, Default)]
pub(crate) struct Adjustments<'w> {
    pods: FxHashMap<&'w str, Resized<'w>>,
    /// Per node: the change of its requested resources.
    node_delta: FxHashMap<NodeIx, Resources>,
    /// The part of `node_delta` no API object shows yet — growths counted
    /// before they are sent, room kept for a move's replacement not created:
    /// kube-scheduler binds pods without it ([`Adjustments::apply_seen`]).
    unseen_delta: FxHashMap<NodeIx, Resources>,
    /// Per node: pods evicted this pass to land there at their new size.
    arriving: FxHashMap<NodeIx, Vec<&'w Pod>>,
    /// Nodes a planned move needs (this pass or an earlier one's, until the
    /// replacement is scheduled), with the pod moving there (`namespace/name`).
    reserved: FxHashMap<NodeIx, String>,
}

/// A growth counted before it is sent, of a pod that will be moved because
/// its node cannot hold it ([`Adjustments::moving_growth`]).
#[derive(Debug, Clone)]
pub(crate) struct MovingGrowth<'w> {
    /// The pod that grows.
    pub pod: &'w Pod,
    /// Where the pod runs now.
    pub node: NodeIx,
    /// What its growth adds there, counted in [`Adjustments::apply`]: the
    /// pod leaves, so once its replacement's room is taken elsewhere its
    /// node keeps only its present size.
    pub growth: Resources,
    /// Its replacement.
    pub reborn: &'w Pod,
}

/// A pod at its new size; built only if scale-down simulates its node.
#[derive(Debug, Clone, Copy)]
enum Resized<'w> {
    Update(&'w Wanted<'w>),
    /// Due but not issued: at its future size.
    Waiting(&'w Wanted<'w>),
    InFlight(&'w Pod),
    /// Evicted this pass to move elsewhere: no longer on its node.
    Leaving,
}

impl<'w> Adjustments<'w> {
    pub fn pod<'p>(&self, pod: &'p Pod) -> &'p Pod
    where
        'w: 'p,
    {
        match self.pods.get(pod.uid.as_str()) {
            Some(Resized::Update(w)) => w.resized(),
            Some(Resized::Waiting(w)) => w.future(),
            Some(Resized::InFlight(p)) => p,
            Some(Resized::Leaving) | None => pod,
        }
    }

    /// Evicted this pass to move to another node.
    pub fn leaving(&self, pod: &Pod) -> bool {
        matches!(self.pods.get(pod.uid.as_str()), Some(Resized::Leaving))
    }

    /// Growths counted before they are sent (held back, or off target and
    /// not due yet) of pods that will be moved when their node cannot take
    /// them — recreated at their recommendation by an admission controller —
    /// each with its node and its replacement, by pod name. Scale-down takes
    /// the replacement's room elsewhere before any drain where the node
    /// cannot hold the growth: given to a drain, the move that follows needs
    /// a minion added back (issue 17, pod-shapes' `diurnal` with the webhook).
    pub fn moving_growth(&self, cx: &super::Cx<'_>) -> Vec<MovingGrowth<'w>> {
        if !cx.ix.snap.admission_applies_recommendations {
            return Vec::new();
        }
        let mut out: Vec<&'w Wanted<'w>> = self
            .pods
            .values()
            .filter_map(|r| match r {
                Resized::Waiting(w) if cx.ix.vpa(w.vertical).update_mode.recreate() => Some(*w),
                _ => None,
            })
            .collect();
        out.sort_unstable_by(|a, b| (&a.pod.namespace, &a.pod.name).cmp(&(&b.pod.namespace, &b.pod.name)));
        out.into_iter()
            .map(|w| MovingGrowth {
                pod: w.pod,
                node: w.node,
                growth: Resources::new(
                    (w.requests.cpu_milli - w.pod.requests.cpu_milli).max(0),
                    (w.requests.memory - w.pod.requests.memory).max(0),
                ),
                reborn: w.reborn(cx),
            })
            .collect()
    }

    /// Pods evicted this pass to land on `node` at their new size.
    pub fn arriving(&self) -> impl Iterator<Item = (NodeIx, &'w Pod)> + '_ {
        self.arriving.iter().flat_map(|(&node, pods)| pods.iter().map(move |&p| (node, p)))
    }

    /// The pod (`namespace/name`) a planned move sends to `node`, if any: that
    /// node is not removed before the replacement is scheduled.
    pub fn reserved_for(&self, node: NodeIx) -> Option<&str> {
        self.reserved.get(&node).map(String::as_str)
    }

    pub fn apply(&self, node: NodeIx, requested: &mut Resources) {
        if let Some(d) = self.node_delta.get(&node) {
            *requested += d;
        }
    }

    /// [`Adjustments::apply`] without what kube-scheduler cannot see: the
    /// requests it binds the next pods by (resizes sent or in flight count,
    /// growths held back and rooms kept for moves do not).
    pub fn apply_seen(&self, node: NodeIx, requested: &mut Resources) {
        self.apply(node, requested);
        if let Some(d) = self.unseen_delta.get(&node) {
            *requested -= d;
        }
    }

    fn unseen(&mut self, node: NodeIx, old: &Resources, new: &Resources) {
        let delta = self.unseen_delta.entry(node).or_default();
        delta.cpu_milli += new.cpu_milli - old.cpu_milli;
        delta.memory += new.memory - old.memory;
    }

    fn change(&mut self, node: NodeIx, old: &Resources, new: &Resources) {
        let delta = self.node_delta.entry(node).or_default();
        delta.cpu_milli += new.cpu_milli - old.cpu_milli;
        delta.memory += new.memory - old.memory;
    }

    fn update(&mut self, w: &'w Wanted<'w>) {
        self.change(w.node, &w.pod.requests, &w.requests);
        self.pods.insert(w.pod.uid.as_str(), Resized::Update(w));
    }

    /// An update due but not issued this pass: its growth is counted now.
    fn waiting(&mut self, w: &'w Wanted<'w>) {
        if w.shrink_only {
            return; // it keeps its size until then
        }
        let future = Resources::new(
            w.pod.requests.cpu_milli.max(w.requests.cpu_milli),
            w.pod.requests.memory.max(w.requests.memory),
        );
        self.change(w.node, &w.pod.requests, &future);
        self.unseen(w.node, &w.pod.requests, &future);
        self.pods.insert(w.pod.uid.as_str(), Resized::Waiting(w));
    }

    /// Evicted to land on `dest` as `reborn` (its replacement's size).
    fn moved(&mut self, w: &'w Wanted<'w>, dest: NodeIx, reborn: &'w Pod) {
        self.change(w.node, &w.pod.requests, &Resources::default());
        self.pods.insert(w.pod.uid.as_str(), Resized::Leaving);
        self.arriving.entry(dest).or_default().push(reborn);
        self.reserved.insert(dest, w.pod.key().to_string());
    }

    /// An earlier pass's move whose replacement is not scheduled yet: its
    /// room on `dest` stays taken.
    fn reserve(&mut self, dest: NodeIx, pod: &str, requests: &Resources) {
        self.change(dest, &Resources::default(), requests);
        self.unseen(dest, &Resources::default(), requests);
        self.reserved.entry(dest).or_insert_with(|| pod.to_string());
    }

    fn in_flight(&mut self, node: NodeIx, old: &'w Pod, new: &'w Pod) {
        self.change(node, &old.requests, &new.requests);
        self.pods.insert(old.uid.as_str(), Resized::InFlight(new));
    }
}

pub(crate) fn cpu_memory(r: &Resources) -> CpuMemory {
    CpuMemory { cpu_milli: r.cpu_milli, memory: r.memory }
}

/// Sum of the containers' requests, as the action carries them.
fn total(containers: &[ContainerResize], pick: impl Fn(&ContainerResize) -> CpuMemory) -> CpuMemory {
    containers.iter().map(pick).fold(CpuMemory::default(), |a, b| CpuMemory {
        cpu_milli: a.cpu_milli + b.cpu_milli,
        memory: a.memory + b.memory,
    })
}
