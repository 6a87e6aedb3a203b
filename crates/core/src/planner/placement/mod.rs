//! The placement advisor's pure core, after VMware DRS for VMs: from the
//! traffic between workloads and its tail latency by placement, it advises
//! co-locating chatty workloads (a preferred pod affinity on the caller's
//! template) or, when the latency comes from CPU or memory pressure, more
//! resources — with hysteresis, a rate limit, and never beyond what the node
//! groups can provide.
//!
//! Pure like the planner: [`advise`] reads the observations, the snapshot
//! and its [`AdvisorMemory`] and returns [`Advice`] and the next memory.
//! `planner::plan` calls it in every pass ([`in_plan`]): applied co-location
//! becomes a `SetPreferredAffinity` action (a rolling template change within
//! the PDBs), an applied resource increase the pod level's target, planned
//! with scale-up (docs/decisions.md). Reading the mesh's metrics belongs to
//! the daemon.

mod capacity;
mod evidence;
pub(crate) mod in_plan;
mod memory;
mod pooled;
mod pull;
mod share;
#[cfg(test)]
mod tests;

use std::fmt;

use crate::model::{PodAffinityTerm, Resources, Snapshot, Timestamp, WorkloadRef};
use crate::policy::{AdvisorMode, PlacementAdvisorPolicy};

use super::time::{after, elapsed};

pub use memory::{AdvisorMemory, AppliedAffinity, Floor};
pub use pooled::CostSample;

/// Calls from one workload to another over the last observation window, as
/// a service mesh reports them (Istio's `istio_requests_total` and
/// `istio_request_duration_milliseconds_bucket` by `source_workload` and
/// `destination_workload`, split by whether the two pods shared a node).
#[derive(Clone, Debug, PartialEq)]
pub struct Flow {
    pub client: WorkloadRef,
    pub server: WorkloadRef,
    pub requests_per_second: f64,
    /// p99 of the calls whose two pods ran on one node, as the client's
    /// proxy measured them (Istio's `reporter="source"`: the whole sub-call,
    /// the hop and the server's own downstream calls included); `None`:
    /// none seen.
    pub p99_same_node_ms: Option<f64>,
    /// p99 of the calls between pods on different nodes, client side; `None`:
    /// none seen.
    pub p99_cross_node_ms: Option<f64>,
    /// p99 of the same-node calls as the server's proxy measured them
    /// (`reporter="destination"`: the server's time, its downstream calls
    /// included, the network hop excluded); `None`: the mesh reports no
    /// server side for the pair, or none seen.
    pub server_p99_same_node_ms: Option<f64>,
    /// p99 of the cross-node calls, server side.
    pub server_p99_cross_node_ms: Option<f64>,
}

impl Flow {
    /// What one call saves in the tail by not crossing nodes, in ms; `None`
    /// when no cross-node call was seen (nothing to measure).
    ///
    /// Judged per hop: on each side (same node, cross node) the hop's own
    /// cost — network and proxies — is the client side's p99 less the
    /// server side's, and the saving is the cross-node hop's less the
    /// same-node hop's. The two sides' whole sub-calls differ also by which
    /// server replica answered and what its downstream calls cost (a
    /// replica far from its own servers is slower for every caller), which
    /// co-locating this pair does not change; subtracting the server side of
    /// the same calls takes that out. Without the server side on both
    /// sides the whole sub-call's difference stands in — an upper bound of
    /// the hop's when the downstream calls do not favour the near replicas
    /// (docs/decisions.md, "A pair's saving is its hop's"). No same-node call
    /// seen: `assumed` (`assumed-same-node-saving-ms`).
    pub fn saving_ms(&self, assumed: f64) -> Option<f64> {
        let (cross, same) = match (self.p99_cross_node_ms, self.p99_same_node_ms) {
            (Some(cross), Some(same)) => (cross, same),
            (Some(_), None) => return Some(assumed),
            (None, _) => return None,
        };
        let saving = match (self.server_p99_cross_node_ms, self.server_p99_same_node_ms) {
            (Some(server_cross), Some(server_same)) => (cross - server_cross) - (same - server_same),
            _ => cross - same,
        };
        Some(saving.max(0.0))
    }
}

/// A workload's usage over its requests (a high percentile over the window):
/// at or above `pressure-threshold`, latency is blamed on resources.
#[derive(Clone, Debug, PartialEq)]
pub struct Pressure {
    pub workload: WorkloadRef,
    pub cpu: Option<f64>,
    pub memory: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observations {
    pub flows: Vec<Flow>,
    pub pressure: Vec<Pressure>,
}

pub struct AdvisorInput<'a> {
    pub snapshot: &'a Snapshot,
    pub observations: &'a Observations,
    pub memory: &'a AdvisorMemory,
    pub now: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Resource {
    Cpu,
    Memory,
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Resource::Cpu => "cpu",
            Resource::Memory => "memory",
        })
    }
}

/// What a pair's traffic showed.
#[derive(Clone, Debug, PartialEq)]
pub struct PairEvidence {
    pub requests_per_second: f64,
    /// Share of the client's calls that cross nodes, from where the pods run
    /// now (calls spread evenly over the server's replicas).
    pub cross_node_share: f64,
    pub p99_same_node_ms: Option<f64>,
    pub p99_cross_node_ms: Option<f64>,
    /// What one call saves by not crossing nodes ([`Flow::saving_ms`]; the
    /// hop's own cost when the server side is reported, the two p99s'
    /// difference otherwise).
    pub saving_ms: f64,
    /// Tail latency the crossing calls cost, in ms per second: this
    /// window's, or — in advice given this pass — its mean over
    /// `raise-after`, what the advice was judged on.
    pub latency_cost: f64,
}

/// The new requests of one container.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerTarget {
    pub container: String,
    pub requests: Resources,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Proposal {
    /// Add a preferred pod affinity towards the server's pods (same node)
    /// to the client's template.
    CoLocate {
        client: WorkloadRef,
        server: WorkloadRef,
        weight: i32,
        term: PodAffinityTerm,
        evidence: PairEvidence,
        /// Client replicas that would find room next to a server replica now.
        room: u32,
        /// `latency_cost` scaled by the share of replicas that find room,
        /// less `reverse_pull` and `client_move`.
        expected_gain: f64,
        /// What the term's symmetric pull on the server's re-created
        /// replicas costs the server's other callers and its own calls, in
        /// ms of tail latency per second (`planner::placement::pull`).
        reverse_pull: f64,
        /// What the client's rollout with the term (and all its other
        /// terms) costs the client's other calls — its standing
        /// co-locations among them — in ms of tail latency per second
        /// (`planner::placement::pull`); in a group move, with `partners`
        /// moving too.
        client_move: f64,
        /// A group move: the workloads standing advice keeps the client
        /// next to, which would otherwise be left behind; each gets the
        /// same term, towards the server, on its template, so its
        /// re-created replicas follow the client.
        partners: Vec<WorkloadRef>,
    },
    /// Raise one resource's requests of every replica of a workload.
    IncreaseResources {
        workload: WorkloadRef,
        resource: Resource,
        /// Observed usage over request.
        usage: f64,
        factor: f64,
        containers: Vec<ContainerTarget>,
        /// Minions the larger replicas need beyond the room nodes have now
        /// (within the groups' max sizes; scale-up adds them when applied).
        new_minions: u32,
        /// The pair whose latency pointed here.
        evidence: PairEvidence,
    },
}

impl Proposal {
    /// The key hysteresis, rate limit and cooldown track it by.
    pub fn subject(&self) -> String {
        match self {
            Proposal::CoLocate { client, server, .. } => format!("co-locate {client} with {server}"),
            Proposal::IncreaseResources { workload, resource, .. } => format!("increase {resource} of {workload}"),
        }
    }

    /// The workload the proposal changes.
    pub fn workload(&self) -> &WorkloadRef {
        match self {
            Proposal::CoLocate { client, .. } => client,
            Proposal::IncreaseResources { workload, .. } => workload,
        }
    }

    /// The workload the proposal changes and, for a co-location, the
    /// server it is moved towards.
    fn ends(&self) -> (&WorkloadRef, Option<&WorkloadRef>) {
        match self {
            Proposal::CoLocate { client, server, .. } => (client, Some(server)),
            Proposal::IncreaseResources { workload, .. } => (workload, None),
        }
    }

    fn cost(&self) -> f64 {
        match self {
            Proposal::CoLocate { evidence, .. } | Proposal::IncreaseResources { evidence, .. } => evidence.latency_cost,
        }
    }

    /// The proposal with its evidence's cost replaced by `cost`.
    fn costing(&self, cost: f64) -> Proposal {
        let mut out = self.clone();
        match &mut out {
            Proposal::CoLocate { evidence, .. } | Proposal::IncreaseResources { evidence, .. } => {
                evidence.latency_cost = cost;
            }
        }
        out
    }
}

impl fmt::Display for Proposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Proposal::CoLocate {
                client,
                server,
                weight,
                evidence,
                room,
                expected_gain,
                reverse_pull,
                client_move,
                partners,
                ..
            } => {
                write!(
                    f,
                    "co-locate {client} with {server} (preferred pod affinity, weight {weight}): {:.0} req/s, {:.0}% crossing nodes, p99 {} same node vs {} cross-node, {:.1} ms saved per call; {room} replica(s) fit next to it, expected gain {expected_gain:.0} ms/s",
                    evidence.requests_per_second,
                    evidence.cross_node_share * 100.0,
                    ms(evidence.p99_same_node_ms),
                    ms(evidence.p99_cross_node_ms),
                    evidence.saving_ms,
                )?;
                if *reverse_pull > 0.0 {
                    write!(
                        f,
                        " (after {reverse_pull:.0} ms/s its pull on {server}'s replicas costs their other calls)"
                    )?;
                }
                if *client_move > 0.0 {
                    write!(f, " (after {client_move:.0} ms/s moving {client}'s replicas costs its other calls)")?;
                }
                for p in partners {
                    write!(f, "; {p} moves with it (the same term on its template)")?;
                }
                Ok(())
            }
            Proposal::IncreaseResources { workload, resource, usage, factor, new_minions, evidence, .. } => write!(
                f,
                "raise the {resource} requests of {workload} ×{factor:.2}: usage at {:.0}% of requests while p99 is {} even on one node ({:.0} req/s); needs {new_minions} new minion(s)",
                usage * 100.0,
                ms(evidence.p99_same_node_ms.or(evidence.p99_cross_node_ms)),
                evidence.requests_per_second,
            ),
        }
    }
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "unseen".to_string(), |v| format!("{v:.1} ms"))
}

/// A proposal in force: new this pass, or standing from an earlier one.
#[derive(Clone, Debug, PartialEq)]
pub struct Advised {
    pub proposal: Proposal,
    pub since: Timestamp,
    pub new: bool,
    /// `apply` mode: the daemon carries it out.
    pub apply: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Withheld {
    /// The evidence has held since `since`; advice comes at `until` if it keeps holding.
    Settling { since: Timestamp, until: Timestamp },
    /// `max-new-advice` given within the window; room again at `until`.
    RateLimited { until: Timestamp },
    /// The workload was advised on recently.
    Cooldown { until: Timestamp },
    /// The larger replicas would not fit, not even on new minions up to the
    /// groups' max sizes: `pods` of them find no room.
    BeyondCapacity { pods: usize },
    /// No client replica fits next to a server replica.
    NoRoomNearServer,
    /// The server's replicas share no label a term could select them by.
    NoSelector,
    /// The term would draw the server's re-created replicas to the client's
    /// nodes and cost the server's other calls `cost` ms/s, no less than the
    /// pair would `gain` (`planner::placement::pull`).
    ReversePull { gain: f64, cost: f64 },
    /// The client's replicas, rolled out with the term, would leave the
    /// workloads they exchange calls with — a server an earlier term keeps
    /// them next to, outscored by this one — and cost those calls `cost`
    /// ms/s, no less than the pair would `gain` (after any reverse pull).
    ClientMove { gain: f64, cost: f64 },
}

impl fmt::Display for Withheld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Withheld::Settling { since, until } => {
                write!(f, "the evidence has held since {since}; advice at {until} if it keeps holding (raise-after)")
            }
            Withheld::RateLimited { until } => {
                write!(f, "max-new-advice reached within the window; room again at {until}")
            }
            Withheld::Cooldown { until } => {
                write!(f, "the workload was advised on recently (workload-cooldown) until {until}")
            }
            Withheld::BeyondCapacity { pods } => write!(
                f,
                "{pods} replica(s) at the larger size would fit nowhere, not even on new minions up to the groups' max sizes"
            ),
            Withheld::NoRoomNearServer => f.write_str("no client replica fits next to a server replica"),
            Withheld::NoSelector => f.write_str("the server's replicas share no label a term could select them by"),
            Withheld::ReversePull { gain, cost } => write!(
                f,
                "the term would draw the server's re-created replicas to the client's nodes: {cost:.0} ms/s more for the server's other calls against {gain:.0} ms/s gained"
            ),
            Withheld::ClientMove { gain, cost } => write!(
                f,
                "the client's replicas, rolled out with the term, would leave the workloads they exchange calls with: {cost:.0} ms/s more for the client's other calls against {gain:.0} ms/s gained"
            ),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Advice {
    pub advised: Vec<Advised>,
    /// Standing advice whose evidence went away for `release-after`: to be
    /// undone (apply mode) or no longer reported.
    pub withdrawn: Vec<String>,
    pub withheld: Vec<(String, Withheld)>,
    pub memory: AdvisorMemory,
}

/// One pass of the advisor.
pub fn advise(input: &AdvisorInput<'_>, policy: &PlacementAdvisorPolicy) -> Advice {
    if policy.mode == AdvisorMode::Off {
        return Advice::default();
    }
    let now = input.now;
    let mut memory = input.memory.clone();
    // A last-advice time decides only within `workload-cooldown`: past it,
    // forgotten, so the memory does not grow with every workload ever advised.
    let cooling = |given: &Timestamp| now < after(*given, policy.workload_cooldown);
    memory.last_for_workload.retain(|_, given| cooling(given));
    memory.last_as_server.retain(|_, given| cooling(given));
    let mut advice = Advice::default();
    let standing = memory.standing.keys().cloned().collect();
    let gathered = evidence::gather(input.snapshot, input.observations, policy, &standing);
    let evidence = &gathered.candidates;
    let min = policy.min_latency_cost;
    // The graph's top talkers (`cost-share`), and — hysteresis — the wider
    // set standing advice stays in: the share left out of it is
    // release-fraction of the one left out of the first.
    let share = policy.cost_share.0;
    let top = share::top_pairs(&gathered.graph, share);
    let kept = share::top_pairs(&gathered.graph, 1.0 - (1.0 - share) * policy.release_fraction.0);
    // Each pair is judged on its cost pooled over `raise-after` (an
    // alerting rule's range aggregate), not on one window's: one noisy
    // window must not reset a pair whose cost is well above the threshold.
    let range = policy.raise_after.get();
    let costs: Vec<(&str, f64)> = evidence
        .iter()
        .filter(|c| !memory.standing.contains_key(&c.subject))
        .map(|c| (c.subject.as_str(), c.proposal.cost()))
        .collect();
    pooled::record(&mut memory.costs, now, range, &costs);
    let pooled = |c: &evidence::Candidate| {
        memory.costs.get(&c.subject).map_or_else(|| c.proposal.cost(), |s| pooled::mean(s, now, range))
    };
    let qualifies = |c: &evidence::Candidate| {
        let cost = pooled(c);
        cost >= min || (matches!(c.proposal, Proposal::CoLocate { .. }) && cost > 0.0 && top.contains(&c.subject))
    };

    // Hysteresis on the way up: the pooled evidence must hold continuously
    // (`for:` on the range aggregate).
    let rising: Vec<&evidence::Candidate> = evidence.iter().filter(|c| qualifies(c)).collect();
    memory.rising.retain(|s, _| rising.iter().any(|c| &c.subject == s));
    for c in &rising {
        memory.rising.entry(c.subject.clone()).or_insert(now);
    }

    // …and on the way down: standing advice goes only after its pair's
    // potential cost (were it separated again) has stayed low for a while.
    // Judging it by the cost that remains after co-location would undo the
    // advice because it worked, and give it again: oscillation.
    // A pair still calling but with no cross-node call left to measure
    // (co-location worked) has an unknown cost apart: no evidence that it
    // became cheap, so it holds.
    let release = min * policy.release_fraction.0;
    for (subject, since) in memory.standing.clone() {
        let current = evidence.iter().find(|c| c.subject == subject);
        if current.is_some_and(|c| c.potential >= release || c.unmeasured || (share > 0.0 && kept.contains(&c.subject)))
        {
            memory.falling.remove(&subject);
        } else {
            let low_since = *memory.falling.entry(subject.clone()).or_insert(now);
            if elapsed(now, low_since) >= policy.release_after.get() {
                memory.standing.remove(&subject);
                memory.falling.remove(&subject);
                advice.withdrawn.push(subject);
                continue;
            }
        }
        if let Some(c) = current {
            advice.advised.push(Advised {
                proposal: c.proposal.clone(),
                since,
                new: false,
                apply: policy.mode == AdvisorMode::Apply,
            });
        }
    }

    // New advice, the costliest first, within the rate limit.
    memory.given.retain(|t| elapsed(now, *t) < policy.window.get());
    let mut fresh: Vec<(&evidence::Candidate, f64)> =
        rising.into_iter().filter(|c| !memory.standing.contains_key(&c.subject)).map(|c| (c, pooled(c))).collect();
    fresh.sort_by(|(a, x), (b, y)| y.total_cmp(x).then_with(|| a.subject.cmp(&b.subject)));
    for (c, cost) in fresh {
        let since = memory.rising[&c.subject];
        let until = after(since, policy.raise_after);
        if now < until {
            advice.withheld.push((c.subject.clone(), Withheld::Settling { since, until }));
            continue;
        }
        // A chain must not be advised at both links at once. Co-location
        // rolls the client out next to the server's replicas where they are
        // now, and kube-scheduler's symmetric scoring draws the server's
        // re-created replicas to the client's nodes. So a pair waits while
        // its server is itself being moved (advised, as a client or a
        // resource increase, within `workload-cooldown`), or while clients are
        // being moved next to its client's replicas: advised together, A → B
        // and B → C send A after B's old places while B leaves for C's
        // (docs/co-scheduling.md, hs-cosched7's trace). Several clients of
        // one server move towards the same replicas and may go together.
        let (client_ref, server_ref) = c.proposal.ends();
        let client = client_ref.to_string();
        let server = server_ref.map(ToString::to_string);
        // The servers standing advice keeps the client next to: they may
        // move with it (a group move, `capacity::settle`).
        let partners: Vec<WorkloadRef> = evidence
            .iter()
            .filter(|s| memory.standing.contains_key(&s.subject))
            .filter_map(|s| match &s.proposal {
                Proposal::CoLocate { client: of, server: partner, .. }
                    if of == client_ref && Some(partner) != server_ref =>
                {
                    Some(partner.clone())
                }
                _ => None,
            })
            .collect();
        let last = [
            memory.last_for_workload.get(&client),
            server.as_ref().and_then(|s| memory.last_for_workload.get(s)),
            memory.last_as_server.get(&client),
        ]
        .into_iter()
        .flatten()
        .max();
        if let Some(last) = last {
            let until = after(*last, policy.workload_cooldown);
            if now < until {
                advice.withheld.push((c.subject.clone(), Withheld::Cooldown { until }));
                continue;
            }
        }
        if memory.given.len() >= policy.max_new_advice as usize {
            let until = after(memory.given[0], policy.window);
            advice.withheld.push((c.subject.clone(), Withheld::RateLimited { until }));
            continue;
        }
        let judged = c.proposal.costing(cost);
        let settled =
            capacity::settle(input.snapshot, input.observations, policy, &judged, c.blocked.clone(), &partners);
        let proposal = match settled {
            Ok(p) => p,
            Err(why) => {
                advice.withheld.push((c.subject.clone(), why));
                continue;
            }
        };
        // A group move changes its partners too, so they must not be
        // moving already; only a group waits on them, not the client alone.
        if let Proposal::CoLocate { partners, .. } = &proposal
            && let Some(last) = partners.iter().filter_map(|p| memory.last_for_workload.get(&p.to_string())).max()
        {
            let until = after(*last, policy.workload_cooldown);
            if now < until {
                advice.withheld.push((c.subject.clone(), Withheld::Cooldown { until }));
                continue;
            }
        }
        memory.given.push(now);
        memory.last_for_workload.insert(client, now);
        if let Proposal::CoLocate { partners, .. } = &proposal {
            for p in partners {
                memory.last_for_workload.insert(p.to_string(), now);
            }
        }
        if let Some(server) = server {
            memory.last_as_server.insert(server, now);
        }
        memory.rising.remove(&c.subject);
        memory.costs.remove(&c.subject);
        // A resource increase is done once applied; co-location stands.
        if matches!(proposal, Proposal::CoLocate { .. }) {
            memory.standing.insert(c.subject.clone(), now);
        }
        advice.advised.push(Advised { proposal, since: now, new: true, apply: policy.mode == AdvisorMode::Apply });
    }
    advice.memory = memory;
    advice
}
