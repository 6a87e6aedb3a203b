//! The advisor inside a pass of the planner, so that co-location's and
//! resource increases' capacity needs go through the same plan as scale-up
//! and resizing and the three levels never fight:
//!
//! - [`advise_pass`] runs first, on the snapshot as observed. In `apply`
//!   mode a resource increase becomes a floor under the pod level's target
//!   for its workload ([`floored`]): the resize path then plans it like any
//!   recommendation — in place, by recreation, or as a node-level need
//!   scale-up provides for.
//! - [`issue`] runs after the pod level has issued its updates: applied
//!   co-location becomes [`SetPreferredAffinity`] (withdrawn co-location
//!   [`RemovePreferredAffinity`]), each taking a disruption from the PDB
//!   allowance drains and recreations share; every piece of advice gets its
//!   explanation entry. `recommend` mode explains and changes nothing.

use crate::model::{
    ContainerRecommendation, Pod, Resources, Snapshot, Timestamp, UpdateMode, VerticalScaling, WorkloadRef,
};
use crate::policy::{AdvisorMode, PlacementAdvisorPolicy};

use super::super::action::{Action, RemovePreferredAffinity, SetPreferredAffinity};
use super::super::drain::pdb_name;
use super::super::explain::{PlacementExplanation, PlacementOutcome};
use super::super::time::{after, elapsed};
use super::super::{Cx, Pass};
use super::{Advice, AdvisorInput, AdvisorMemory, AppliedAffinity, Floor, Observations, Proposal, Resource, advise};

/// The name a floor's VPA stand-in carries when the workload has no VPA
/// object of its own (explanations and Events name it).
pub const FLOOR_VPA: &str = "placement-advisor";

/// Subject of the explanation entry for a pass without observations.
pub const ADVISOR: &str = "placement advisor";

/// What the advisor decided at the start of a pass, for [`issue`].
#[derive(Debug, Default)]
pub(crate) struct Advising {
    /// `None`: mode off, or no observations this pass.
    advice: Option<Advice>,
    memory: AdvisorMemory,
    apply: bool,
    no_observations: bool,
}

impl Advising {
    /// The resource increases in force (`apply` mode).
    pub fn floors(&self) -> impl Iterator<Item = &Floor> {
        self.memory.floors.values()
    }
}

/// Step 0 of a pass: the advice from this pass's observations.
pub(crate) fn advise_pass(
    snapshot: &Snapshot,
    observations: Option<&Observations>,
    memory: &AdvisorMemory,
    policy: &PlacementAdvisorPolicy,
    now: Timestamp,
) -> Advising {
    if policy.mode == AdvisorMode::Off {
        // Off drops the memory (policy::AdvisorMode::Off); applied terms stay
        // on the templates (docs/decisions.md).
        return Advising::default();
    }
    let apply = policy.mode == AdvisorMode::Apply;
    let Some(observations) = observations else {
        // Missing metrics are no evidence that traffic stopped: keep
        // everything, advise nothing new, withdraw nothing.
        let mut memory = memory.clone();
        memory.floors.retain(|_, f| now < f.until);
        return Advising { advice: None, memory, apply, no_observations: true };
    };
    let advice = advise(&AdvisorInput { snapshot, observations, memory, now }, policy);
    let mut memory = advice.memory.clone();
    if apply {
        for a in &advice.advised {
            match &a.proposal {
                Proposal::CoLocate { client, server, weight, term, partners, .. } => {
                    let subject = a.proposal.subject();
                    let mut apply = |key: String, workload: &WorkloadRef, reason: String, moves_with| {
                        memory.withdrawing.remove(&key);
                        memory.applied.entry(key).or_insert_with(|| AppliedAffinity {
                            workload: workload.clone(),
                            server: server.clone(),
                            term: term.clone(),
                            weight: *weight,
                            reason,
                            at: now,
                            moves_with,
                        });
                    };
                    // A group move: each partner's template gets the same
                    // term, towards the server, rolled out like the
                    // client's (its own entry, so its own PDB and rollout).
                    for partner in partners {
                        let reason = format!("moves with {client}: {}", a.proposal);
                        apply(partner_subject(partner, server, client), partner, reason, Some(subject.clone()));
                    }
                    apply(subject, client, a.proposal.to_string(), None);
                }
                Proposal::IncreaseResources { workload, resource, containers, .. } if a.new => {
                    let containers = containers
                        .iter()
                        .map(|c| {
                            let value = match resource {
                                Resource::Cpu => c.requests.cpu_milli,
                                Resource::Memory => c.requests.memory,
                            };
                            (c.container.clone(), value)
                        })
                        .collect();
                    // Held through the workload's cooldown, so the pod level
                    // does not undo the increase as soon as it is made.
                    let until = after(now, policy.workload_cooldown);
                    let floor = Floor { workload: workload.clone(), resource: *resource, containers, until };
                    memory.floors.insert(workload.to_string(), floor);
                }
                Proposal::IncreaseResources { .. } => {}
            }
        }
        for subject in &advice.withdrawn {
            // The co-location and the partners that moved with it.
            let going: Vec<String> = memory
                .applied
                .iter()
                .filter(|(k, a)| *k == subject || a.moves_with.as_ref() == Some(subject))
                .map(|(k, _)| k.clone())
                .collect();
            for key in going {
                if let Some(a) = memory.applied.remove(&key) {
                    memory.withdrawing.insert(key, AppliedAffinity { at: now, ..a });
                }
            }
        }
    }
    memory.floors.retain(|_, f| now < f.until);
    Advising { advice: Some(advice), memory, apply, no_observations: false }
}

/// The snapshot with every floor applied to the pod level's targets, or
/// `None` when no floor is in force. A workload under a VPA object gets the
/// larger of the recommendation and the floor (target and bounds, so the
/// update is due at once); one without gets a stand-in object named
/// [`FLOOR_VPA`] in `InPlaceOrRecreate` mode that sets only the raised
/// resource. A VPA object in mode `Off` or `Initial` keeps its mode: the
/// operator said running pods are not touched.
pub(crate) fn floored<'f>(snapshot: &Snapshot, floors: impl Iterator<Item = &'f Floor>) -> Option<Snapshot> {
    let floors: Vec<&Floor> = floors.collect();
    if floors.is_empty() {
        return None;
    }
    let mut out = snapshot.clone();
    for floor in floors {
        let raise = |r: &mut Resources, value: i64| match floor.resource {
            Resource::Cpu => r.cpu_milli = r.cpu_milli.max(value),
            Resource::Memory => r.memory = r.memory.max(value),
        };
        if let Some(v) = out.vertical.iter_mut().find(|v| v.workload == floor.workload) {
            for (container, &value) in &floor.containers {
                let Some(rec) = v.recommendations.iter_mut().find(|r| &r.container_name == container) else {
                    continue;
                };
                for r in [&mut rec.target, &mut rec.lower_bound, &mut rec.upper_bound, &mut rec.uncapped_target] {
                    raise(r, value);
                }
            }
            continue;
        }
        let recommendations = floor
            .containers
            .iter()
            .map(|(container, &value)| {
                let mut target = Resources::default();
                raise(&mut target, value);
                ContainerRecommendation {
                    container_name: container.clone(),
                    target: target.clone(),
                    lower_bound: target.clone(),
                    upper_bound: target.clone(),
                    uncapped_target: target,
                    capped: Vec::new(),
                }
            })
            .collect();
        out.vertical.push(VerticalScaling {
            namespace: floor.workload.namespace.to_string(),
            name: FLOOR_VPA.to_string(),
            workload: floor.workload.clone(),
            update_mode: UpdateMode::InPlaceOrRecreate,
            min_replicas: None,
            resource_policy: Default::default(),
            eviction_requirements: Vec::new(),
            replicas: None,
            recommendations,
        });
    }
    Some(out)
}

/// The advisor's actions and explanation entries; its memory into the pass.
pub(crate) fn issue(cx: &Cx<'_>, pass: &mut Pass<'_>, advising: Advising) -> Vec<Action> {
    let Advising { advice, mut memory, apply, no_observations } = advising;
    let explain = |pass: &mut Pass<'_>, subject: &str, outcome| {
        pass.ex.placement.push(PlacementExplanation { subject: subject.to_string(), outcome });
    };
    if no_observations {
        explain(pass, ADVISOR, PlacementOutcome::NoObservations);
    }
    if let Some(advice) = &advice {
        for a in &advice.advised {
            let outcome = PlacementOutcome::Advised {
                detail: a.proposal.to_string(),
                new: a.new,
                applied: a.apply,
                since: a.since,
            };
            explain(pass, &a.proposal.subject(), outcome);
        }
        for subject in &advice.withdrawn {
            explain(
                pass,
                subject,
                PlacementOutcome::Withdrawn { applied: apply && memory.withdrawing.contains_key(subject) },
            );
        }
        for (subject, why) in &advice.withheld {
            explain(pass, subject, PlacementOutcome::Withheld { why: why.to_string() });
        }
    }
    let mut actions = Vec::new();
    if apply {
        for (subject, a) in &memory.applied {
            // Asked again every pass until every replica carries the term
            // (the executor does nothing when the template already has it).
            let Some(pod) = live(cx, a).find(|p| !carries(p, a, true)) else { continue };
            match pass.budget.take(&cx.ix, pod) {
                Ok(_) => actions.push(Action::SetPreferredAffinity(SetPreferredAffinity {
                    workload: a.workload.clone(),
                    server: a.server.clone(),
                    term: a.term.clone(),
                    weight: a.weight,
                    subject: subject.clone(),
                    reason: a.reason.clone(),
                })),
                Err(p) => {
                    explain(pass, subject, PlacementOutcome::WaitingForDisruptionBudget { pdb: pdb_name(&cx.ix, p) })
                }
            }
        }
        let cooldown = cx.policy.placement.workload_cooldown.get();
        memory.withdrawing.retain(|_, a| elapsed(cx.now, a.at) < cooldown && live(cx, a).any(|p| carries(p, a, false)));
        for (subject, a) in &memory.withdrawing {
            let Some(pod) = live(cx, a).find(|p| carries(p, a, false)) else { continue };
            match pass.budget.take(&cx.ix, pod) {
                Ok(_) => actions.push(Action::RemovePreferredAffinity(RemovePreferredAffinity {
                    workload: a.workload.clone(),
                    server: a.server.clone(),
                    term: a.term.clone(),
                    subject: subject.clone(),
                    reason: "withdrawn: the pair's traffic no longer makes co-location worth it".to_string(),
                })),
                Err(p) => {
                    explain(pass, subject, PlacementOutcome::WaitingForDisruptionBudget { pdb: pdb_name(&cx.ix, p) })
                }
            }
        }
    }
    pass.memory.placement = memory;
    actions
}

/// The subject a group move's partner term is applied and explained under:
/// it names the partner first, so Events land on the partner's workload.
pub fn partner_subject(partner: &WorkloadRef, server: &WorkloadRef, client: &WorkloadRef) -> String {
    format!("co-locate {partner} with {server} (moving with {client})")
}

/// The workload's pods that run and are not going away.
fn live<'a, 'c>(cx: &'c Cx<'a>, a: &'c AppliedAffinity) -> impl Iterator<Item = &'a Pod> + 'c {
    cx.ix.pods().map(|(_, p)| p).filter(move |p| {
        p.workload.as_ref() == Some(&a.workload) && p.node_name.is_some() && p.deletion.is_none() && !p.is_terminal()
    })
}

/// The pod carries the term (at its weight, when `weighted`).
fn carries(pod: &Pod, a: &AppliedAffinity, weighted: bool) -> bool {
    pod.placement.preferred_pod_affinity.iter().any(|w| w.term == a.term && (!weighted || w.weight == a.weight))
}
