//! The node-level peers, **re-implemented** — not the projects themselves:
//! cluster-autoscaler's documented behaviour with its defaults or another
//! `--expander` chain, and a Karpenter-like policy on the same loop
//! ([`PeerConfig`]). Below, cluster-autoscaler's documented default
//! behaviour — not cluster-autoscaler itself. It runs in the same
//! simulated cluster, on the same trace and seed, with the same provisioning
//! delays, so heatscaler can be compared with what most clusters run today.
//!
//! Defaults, as documented in the cluster-autoscaler FAQ
//! (kubernetes/autoscaler, `cluster-autoscaler/FAQ.md`: "How does scale-up
//! work?", "How does scale-down work?", "Does CA work with
//! PodDisruptionBudget in scale-down?", "What are the parameters to CA?"):
//! a loop every `scan-interval` 10 s; scale-up for unschedulable pods with the
//! `binpacking` estimator and the `random` expander, one node group per loop;
//! no scale-down in a loop that scaled up; a node is unneeded when the
//! requests of all its pods (DaemonSet and mirror pods included) are below
//! `scale-down-utilization-threshold` 0.5 of allocatable and its pods can move
//! elsewhere; it is removed after `scale-down-unneeded-time` 10 min, not
//! within `scale-down-delay-after-add` 10 min of a scale-up,
//! `scale-down-delay-after-delete` (the scan interval) of a deletion or
//! `scale-down-delay-after-failure` 3 min of a failure; empty nodes go in bulk
//! up to `max-empty-bulk-delete` 10, non-empty nodes one at a time, drained
//! through the eviction API retried for up to 2 min (then the node is
//! released), and deleted as soon as they are drained — no cooldown hold;
//! nodes not registered within `max-node-provision-time` 15 min are removed;
//! `scale-down-candidates-pool-ratio` 0.1 / `-min-count` 50. Back-off of a
//! group after a failed scale-up uses cluster-autoscaler's flag defaults
//! (5 min, doubling, at most 30 min); they are not in the FAQ's table.
//!
//! Not modelled: `balance-similar-node-groups` (off by default), the
//! `scale-down-non-empty-candidates-count` limit of 30 (every candidate in the
//! pool is simulated), `node-delete-delay-after-taint` 5 s (an empty node is
//! tainted and deleted in the same loop), unready-node handling
//! (`scale-down-unready-time`, `max-total-unready-percentage`), deleting a
//! node whose evicted pods outlive `max-graceful-termination-sec` (simulated
//! pods terminate within their termination delay), expendable pods
//! (priority cutoff), scale-up of node groups from zero without a template,
//! and the scheduler-framework details of its simulations (the planner's
//! scheduling model stands in for them). The cluster's `max-nodes-total` is
//! taken from the scenario, as an operator would pass the same limit.

mod scale_down;
mod scale_up;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand_chacha::ChaCha8Rng;

use heatscaler_core::model::{MemberStatus, Snapshot, Timestamp};
use heatscaler_core::planner::action::{MemberRemoval, RemovalCause, RemoveMembers};
use heatscaler_core::planner::explain::{ProvisioningFailure, RollbackReason};
use heatscaler_core::planner::for_peers::{GroupIx, Index};
use heatscaler_core::planner::protocol::{Phase, RemovalState};
use heatscaler_core::planner::{Action, Policy};
use heatscaler_core::policy::ScaleDownPolicy;

use crate::streams;

/// `--scan-interval`.
pub const SCAN_INTERVAL: Duration = Duration::from_secs(10);
/// `--scale-down-delay-after-delete` (defaults to the scan interval).
const DELAY_AFTER_DELETE: Duration = SCAN_INTERVAL;
/// `--scale-down-delay-after-failure`.
const DELAY_AFTER_FAILURE: Duration = Duration::from_secs(180);
/// `--max-node-provision-time`.
const MAX_NODE_PROVISION_TIME: Duration = Duration::from_secs(900);
/// Evictions are retried for this long before the node is released.
const MAX_POD_EVICTION_TIME: Duration = Duration::from_secs(120);
/// `--max-graceful-termination-sec`.
const MAX_GRACEFUL_TERMINATION: Duration = Duration::from_secs(600);
/// `--scale-down-candidates-pool-min-count` and `-ratio`.
const POOL_MIN: usize = 50;
const POOL_RATIO: f64 = 0.1;
/// `--initial-node-group-backoff-duration`, `--max-node-group-backoff-duration`.
const BACKOFF_INITIAL: Duration = Duration::from_secs(300);
const BACKOFF_MAX: Duration = Duration::from_secs(1800);

/// How a peer picks the group to grow: one of cluster-autoscaler's
/// `--expander` values, or Karpenter-like cheapest fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PeerExpander {
    /// `least-waste`: the least idle CPU share plus idle memory share of the new nodes.
    LeastWaste,
    /// `price`: the new nodes' price against the worth of the pods they take.
    Price,
    /// `priority`: the highest group priority (the priority expander's ConfigMap).
    Priority,
    /// Karpenter-like: the lowest price of new nodes per pod they place.
    CheapestFit,
}

/// What distinguishes the peers that share this loop.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PeerConfig {
    /// Applied in order, each keeping its ties; a random pick ends the chain
    /// (empty: the `random` expander).
    pub expanders: &'static [PeerExpander],
    /// `--scale-down-utilization-threshold` (and the GPU one); above 1: every
    /// node whose pods can move is a candidate (Karpenter's `WhenEmptyOrUnderutilized`).
    pub utilization_threshold: f64,
    /// `--scale-down-unneeded-time` (Karpenter: `consolidateAfter`).
    pub unneeded_time: Duration,
    /// `--scale-down-delay-after-add`.
    pub delay_after_add: Duration,
    /// `--max-empty-bulk-delete`; `None`: a tenth of the nodes, at least one
    /// (Karpenter's default disruption budget, `nodes: 10%`).
    pub max_empty_bulk_delete: Option<usize>,
    /// Karpenter's single-node consolidation by replacement: a node whose pods
    /// fit on the other nodes plus one new, cheaper node is replaced by it.
    pub replace_with_cheaper: bool,
}

impl PeerConfig {
    /// cluster-autoscaler with its documented defaults and this `--expander` chain.
    pub const fn cluster_autoscaler(expanders: &'static [PeerExpander]) -> Self {
        Self {
            expanders,
            utilization_threshold: 0.5,
            unneeded_time: Duration::from_secs(600),
            delay_after_add: Duration::from_secs(600),
            max_empty_bulk_delete: Some(10),
            replace_with_cheaper: false,
        }
    }

    /// A Karpenter-like policy (Karpenter's disruption docs): cheapest fit,
    /// consolidation of any node whose pods fit elsewhere (deletion) or on
    /// the others plus one cheaper new node (replacement), 30 s after the
    /// node became consolidatable, no delay after a launch, at most 10% of
    /// the nodes disrupted at once.
    pub const KARPENTER_LIKE: Self = Self {
        expanders: &[PeerExpander::CheapestFit],
        utilization_threshold: f64::INFINITY,
        unneeded_time: Duration::from_secs(30),
        delay_after_add: Duration::ZERO,
        max_empty_bulk_delete: None,
        replace_with_cheaper: true,
    };
}

/// A replacement under way: a cheaper node was asked for so that `node`
/// can go; the new node is not consolidated while `node` is still there.
#[derive(Clone, Debug)]
struct Replacement {
    node: String,
    group: String,
    asked: Timestamp,
}

/// The re-implemented loop and what it keeps in memory (lost on restart).
pub struct CaDefaults {
    config: PeerConfig,
    /// Control-plane labels and the drainability switches (all at
    /// cluster-autoscaler's defaults).
    policy: Policy,
    max_nodes_total: Option<u32>,
    rng: ChaCha8Rng,
    unneeded_since: BTreeMap<String, Timestamp>,
    last_scale_up: Option<Timestamp>,
    last_delete: Option<Timestamp>,
    last_failure: Option<Timestamp>,
    /// Per group: backed off until, and the last back-off's length.
    backoff: BTreeMap<String, (Timestamp, Duration)>,
    /// Members already counted as failed (one back-off per failure).
    failed_seen: BTreeSet<String>,
    /// Just (re)started: cluster-autoscaler clears the deletion taints of
    /// its previous run at start-up.
    starting: bool,
    replacements: Vec<Replacement>,
}

/// Removals to request from Heat this loop, per group.
type Removals = BTreeMap<GroupIx, Vec<MemberRemoval>>;

impl CaDefaults {
    /// `control_plane_labels` and `max_nodes_total` as the operator would
    /// pass them (the scenario's); the random expander draws from its own
    /// stream of `seed`.
    pub fn new(
        control_plane_labels: Option<&[String]>,
        max_nodes_total: Option<u32>,
        seed: u64,
        config: PeerConfig,
    ) -> Self {
        let scale_down = ScaleDownPolicy {
            skip_nodes_with_local_storage: true,
            skip_nodes_with_system_pods: true,
            skip_nodes_with_custom_controller_pods: true,
            ..ScaleDownPolicy::default()
        };
        let mut policy = Policy { scale_down, ..Policy::default() };
        if let Some(labels) = control_plane_labels {
            policy.control_plane_labels = labels.to_vec();
        }
        Self {
            config,
            policy,
            max_nodes_total,
            rng: streams::stream(seed, streams::CA_DEFAULTS),
            unneeded_since: BTreeMap::new(),
            last_scale_up: None,
            last_delete: None,
            last_failure: None,
            backoff: BTreeMap::new(),
            failed_seen: BTreeSet::new(),
            starting: true,
            replacements: Vec::new(),
        }
    }

    pub fn restart(&mut self) {
        self.unneeded_since.clear();
        self.last_scale_up = None;
        self.last_delete = None;
        self.last_failure = None;
        self.backoff.clear();
        self.failed_seen.clear();
        self.starting = true;
        self.replacements.clear();
    }

    /// One loop (`RunOnce`): removals in flight, failed provisioning,
    /// scale-up, and — if nothing scaled up — scale-down.
    pub fn decide(&mut self, snap: &Snapshot, now: Timestamp) -> Vec<Action> {
        let ix = Index::build(snap, &self.policy);
        let mut actions = Vec::new();
        let mut removals = Removals::new();
        if std::mem::take(&mut self.starting) {
            self.clear_previous_taints(&ix, &mut actions);
        } else {
            self.continue_removals(&ix, now, &mut actions, &mut removals);
        }
        self.failed_provisioning(&ix, now, &mut removals);
        let busy: BTreeSet<GroupIx> = removals.keys().copied().collect();
        match scale_up::plan(self, &ix, &busy, now) {
            Some(up) => {
                self.last_scale_up = Some(now);
                actions.push(Action::ScaleUp(up));
            }
            None => {
                // A replacement's node is kept until the node it replaces is gone
                // (or the replacement is given up with the provisioning time).
                self.replacements.retain(|r| {
                    ix.node_named(&r.node).is_some()
                        && heatscaler_core::planner::time::elapsed(now, r.asked) <= MAX_NODE_PROVISION_TIME
                });
                let replaced = scale_down::plan(self, &ix, now, &mut actions, &mut removals);
                let replacing = !replaced && self.config.replace_with_cheaper && self.replacements.is_empty();
                if let Some((up, node)) = replacing.then(|| scale_down::replacement(self, &ix, &busy, now)).flatten() {
                    self.replacements.push(Replacement { node, group: up.group.clone(), asked: now });
                    self.last_scale_up = Some(now);
                    actions.push(Action::ScaleUp(up));
                }
            }
        }
        self.compose(&ix, now, &mut actions, removals);
        actions
    }

    /// Deletion taints left by a previous run are removed at start-up, except
    /// on nodes whose server is already being deleted.
    fn clear_previous_taints(&self, ix: &Index<'_>, actions: &mut Vec<Action>) {
        for (i, state) in ix.removals() {
            let (uncordon, phase) = match state {
                RemovalState::Active(r) => (!r.cordoned_before, Some(r.phase)),
                RemovalState::Inconsistent { cordoned_before, .. } => (!cordoned_before.unwrap_or(false), None),
                RemovalState::None => continue,
            };
            if phase != Some(Phase::Removing) {
                actions.push(Action::RollBackRemoval(heatscaler_core::planner::action::RollBackRemoval {
                    node: ix.node(i).name.clone(),
                    uncordon,
                    reason: RollbackReason::Inconsistent {
                        problem: "cluster-autoscaler restarted and cleared the taints of its previous run".into(),
                    },
                }));
            }
        }
    }

    /// Drains in progress and nodes being deleted: evict, release after
    /// failed evictions, delete once drained, delete the Node once Heat
    /// removed the server.
    fn continue_removals(
        &mut self,
        ix: &Index<'_>,
        now: Timestamp,
        actions: &mut Vec<Action>,
        removals: &mut Removals,
    ) {
        use heatscaler_core::planner::action::{DeleteNode, EvictPods, Eviction, MarkDrained, RollBackRemoval};
        use heatscaler_core::planner::explain::EvictionBlock;
        for (i, state) in ix.removals() {
            let node = ix.node(i);
            let record = match state {
                RemovalState::None => continue,
                RemovalState::Inconsistent { problem, cordoned_before } => {
                    actions.push(Action::RollBackRemoval(RollBackRemoval {
                        node: node.name.clone(),
                        uncordon: !cordoned_before.unwrap_or(false),
                        reason: RollbackReason::Inconsistent { problem: problem.clone() },
                    }));
                    continue;
                }
                RemovalState::Active(r) => r,
            };
            let Some(g) = ix.group_named(&record.group) else { continue };
            let member = ix.member_named(g, &record.member).map(|m| ix.member(m));
            match record.phase {
                Phase::Removing => match member {
                    None => actions.push(Action::DeleteNode(DeleteNode {
                        node: node.name.clone(),
                        group: record.group.clone(),
                        member: record.member.clone(),
                    })),
                    // Heat did not act on the request: ask again.
                    Some(m) if m.status == MemberStatus::Complete => {
                        removals.entry(g).or_default().push(drained(record, node.name.clone(), now))
                    }
                    Some(_) => {}
                },
                Phase::Drained => removals.entry(g).or_default().push(drained(record, node.name.clone(), now)),
                Phase::Draining => {
                    let workload: Vec<_> = ix.workload_pods(i).collect();
                    if workload.is_empty() {
                        let mut r = record.clone();
                        r.phase = Phase::Drained;
                        r.drained = Some(now);
                        actions.push(Action::MarkDrained(MarkDrained { node: node.name.clone(), record: r.clone() }));
                        removals.entry(g).or_default().push(drained(&r, node.name.clone(), now));
                        continue;
                    }
                    let waiting: Vec<_> = workload.iter().filter(|p| p.deletion.is_none()).collect();
                    if waiting.is_empty() {
                        continue; // evicted pods are terminating
                    }
                    if heatscaler_core::planner::time::elapsed(now, record.started) <= MAX_POD_EVICTION_TIME {
                        actions.push(Action::EvictPods(EvictPods {
                            node: node.name.clone(),
                            pods: waiting.iter().map(|p| Eviction { pod: p.key(), uid: p.uid.clone() }).collect(),
                            max_grace: MAX_GRACEFUL_TERMINATION,
                        }));
                    } else {
                        self.last_failure = Some(now);
                        actions.push(Action::RollBackRemoval(RollBackRemoval {
                            node: node.name.clone(),
                            uncordon: !record.cordoned_before,
                            reason: RollbackReason::EvictionTimeout {
                                blocked: waiting.iter().map(|p| EvictionBlock { pod: p.key(), pdb: None }).collect(),
                            },
                        }));
                    }
                }
            }
        }
    }

    /// Members that failed to create or never registered a node are removed,
    /// and their group backed off.
    fn failed_provisioning(&mut self, ix: &Index<'_>, now: Timestamp, removals: &mut Removals) {
        for (g, group) in ix.groups() {
            for (k, m) in ix.members(g) {
                let timed_out = ix.node_of(k).is_none()
                    && matches!(m.status, MemberStatus::InProgress | MemberStatus::Complete)
                    && m.created
                        .is_some_and(|c| heatscaler_core::planner::time::elapsed(now, c) > MAX_NODE_PROVISION_TIME);
                let failure = match m.status {
                    MemberStatus::Failed => ProvisioningFailure::CreateFailed,
                    _ if timed_out => ProvisioningFailure::NoNode { limit_secs: MAX_NODE_PROVISION_TIME.as_secs() },
                    _ => continue,
                };
                removals.entry(g).or_default().push(MemberRemoval {
                    member: m.id.clone(),
                    node: None,
                    cause: RemovalCause::ProvisioningFailed { failure },
                });
                if self.failed_seen.insert(m.id.clone()) {
                    let next =
                        self.backoff.get(&group.name).map_or(BACKOFF_INITIAL, |(_, d)| (*d * 2).min(BACKOFF_MAX));
                    self.backoff
                        .insert(group.name.clone(), (heatscaler_core::planner::time::after_std(now, next), next));
                }
            }
        }
    }

    fn backed_off(&self, group: &str, now: Timestamp) -> bool {
        self.backoff.get(group).is_some_and(|(until, _)| *until > now)
    }

    /// One Heat request per group for everything it removes this loop; a
    /// group whose stack is busy waits for the next loop.
    fn compose(&mut self, ix: &Index<'_>, now: Timestamp, actions: &mut Vec<Action>, removals: Removals) {
        for (g, members) in removals {
            let group = ix.group(g);
            if group.stack_busy {
                continue;
            }
            if members.iter().any(|m| matches!(m.cause, RemovalCause::Drained { .. })) {
                self.last_delete = Some(now);
            }
            let n = members.len() as u32;
            actions.push(Action::RemoveMembers(RemoveMembers {
                group: group.name.clone(),
                expected_desired: group.desired,
                new_desired: group.desired.saturating_sub(n).max(group.min_size.min(group.desired)),
                members,
                requested_at: now,
            }));
        }
    }
}

fn drained(record: &heatscaler_core::planner::protocol::RemovalRecord, node: String, now: Timestamp) -> MemberRemoval {
    MemberRemoval {
        member: record.member.clone(),
        node: Some(node),
        cause: RemovalCause::Drained { drained: record.drained.unwrap_or(now) },
    }
}
