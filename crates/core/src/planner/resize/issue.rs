//! From decisions to actions, once scale-up has said which shrinks it counts
//! on and which needs it took; timers for the next pass.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use rustc_hash::FxHashSet;

use crate::model::{Name, PodKey, Resources};
use crate::planner::action::{Action, RecreatePod, ResizePod};
use crate::planner::drain::pdb_name;
use crate::planner::explain::{
    Alert, Explanation, PodOutcome, ResizeCount, ResizeDecision, ResizeExplanation, UpdateBlock, UpdateReason,
};
use crate::planner::index::{NodeIx, PodIx, Table, VpaIx};
use crate::planner::memory::{PlannedMove, ResizeMemory};
use crate::planner::time::after;
use crate::planner::{Cx, Pass};

use super::assess::{Assessment, How};
use super::{Adjustments, Evaluation, Wanted, total};

/// Reads the scale-up of `pass` (which shrinks it counts on); recreations
/// take from its PDB allowance; keeps the resize timers in its memory.
pub(crate) fn issue<'w>(
    cx: &Cx<'w>,
    evaluations: &'w [Evaluation<'w>],
    assessment: Assessment<'w>,
    pass: &mut Pass<'w>,
) -> (Vec<Action>, Adjustments<'w>) {
    let Pass { up, budget, memory, ex, .. } = pass;
    let memory = &mut memory.resize;
    forget_gone(memory, evaluations);
    // Sized once: a first pass over a cluster newly under VPA objects issues
    // an update for most of its pods (124,000 of 310,000 in `resize_scale`),
    // and growing these by doubling copied and rehashed them over and over.
    let issuable = assessment.updates.len() + assessment.forcible.len();
    memory.resized.reserve(issuable);
    let mut adjust = Adjustments::default();
    adjust.pods.reserve(issuable + assessment.waiting.len() + assessment.demand.len());
    let vpa_names = cx.ix.vpas().map(|(v, _)| Name::from(vpa_name(cx, v))).collect();
    let mut out = Issued {
        cx,
        actions: Vec::with_capacity(issuable),
        adjust,
        updated: BTreeSet::new(),
        memory,
        vpa_names,
        node_names: Table::filled(None, cx.ix.node_count()),
    };
    for e in evaluations {
        if let Evaluation::Settled { pod, in_flight: Some(f), .. } = e {
            out.adjust.in_flight(f.node, pod, &f.resized);
        }
    }
    out.earlier_moves();

    let mut decisions = Vec::with_capacity(evaluations.len());
    for p in &assessment.updates {
        let w = p.want;
        let decision = match p.how {
            How::InPlace => out.resize(w, p.reason.clone()),
            How::Recreate => match budget.take(&cx.ix, w.pod) {
                Err(pdb) => ResizeDecision::Blocked {
                    reason: p.reason.clone(),
                    why: UpdateBlock::Pdb { pdb: pdb_name(&cx.ix, pdb) },
                },
                Ok(_) => out.recreate(w, p.reason.clone(), p.dest),
            },
        };
        if matches!(decision, ResizeDecision::Blocked { .. }) {
            out.adjust.waiting(w);
        }
        decisions.push((w.index, w.vertical, decision));
    }
    for (w, held) in &assessment.forcible {
        let decision = match up.relief.get(&w.node) {
            Some(&pending) => out.resize(w, UpdateReason::FreesCapacity { pending }),
            None => held.clone(),
        };
        decisions.push((w.index, w.vertical, decision));
    }
    // Scale-up explained the demand's pods as pending ones; their outcome moves
    // into the resize decision (one pass over the pending pods, not one per demand).
    let demand: HashMap<PodKey, usize> =
        assessment.demand.iter().enumerate().map(|(i, p)| (p.want.pod.key(), i)).collect();
    let mut outcomes: Vec<Option<PodOutcome>> = vec![None; demand.len()];
    if !demand.is_empty() {
        ex.pods.retain_mut(|e| match demand.get(&e.pod) {
            Some(&i) => {
                outcomes[i] = Some(std::mem::replace(&mut e.outcome, PodOutcome::ScaleUpDisabled));
                false
            }
            None => true,
        });
    }
    for &w in &assessment.waiting {
        out.adjust.waiting(w);
    }
    for (p, outcome) in assessment.demand.iter().zip(outcomes) {
        let w = p.want;
        out.adjust.waiting(w);
        let outcome = outcome.unwrap_or(PodOutcome::ScaleUpDisabled);
        let to = total(&w.containers, |c| c.requests);
        decisions.push((w.index, w.vertical, ResizeDecision::NeedsCapacity { reason: p.reason.clone(), to, outcome }));
    }
    decisions.extend(assessment.settled);
    unsupported(cx, &decisions, ex);
    explain(cx, decisions, &out.vpa_names, ex);

    let Issued { actions, adjust, updated, memory, .. } = out;
    for v in updated {
        memory.last_update.insert(cx.ix.vpa(v).workload.to_string(), cx.now);
    }
    let workloads: BTreeSet<String> = cx.ix.vpas().map(|(_, v)| v.workload.to_string()).collect();
    memory.last_update.retain(|w, _| workloads.contains(w));
    memory.off_target_since = assessment.off_target;
    (actions, adjust)
}

/// Forgets the resize times of pods no longer under a VPA object heatscaler
/// handles. Done before this pass records its own resizes, which are all of
/// evaluated pods: the result is the same, and a first pass (nothing
/// remembered yet) builds no set of every evaluated pod. FxHash, not SipHash:
/// the keys are uids the API server assigned, not input an attacker chooses
/// to collide.
fn forget_gone(memory: &mut ResizeMemory, evaluations: &[Evaluation<'_>]) {
    if memory.resized.is_empty() {
        return;
    }
    let mut live: FxHashSet<&str> = FxHashSet::default();
    live.reserve(evaluations.len());
    live.extend(evaluations.iter().map(|e| e.pod().uid.as_str()));
    memory.resized.retain(|uid, _| live.contains(uid.as_str()));
}

impl Issued<'_, '_> {
    /// Moves of earlier passes keep their destination until the replacement
    /// is scheduled: while the evicted pod is still listed or a pod of its
    /// workload waits for a node, for at most `max-node-provision-time` (a
    /// replacement still unscheduled then is a pending pod like any other,
    /// which scale-up places).
    fn earlier_moves(&mut self) {
        if self.memory.moves.is_empty() {
            return;
        }
        let cx = self.cx;
        let listed: HashSet<&str> = cx.ix.pods().map(|(_, p)| p.uid.as_str()).collect();
        let waiting: HashSet<String> = cx
            .ix
            .unbound
            .iter()
            .filter(|p| !p.is_terminal() && p.deletion.is_none())
            .filter_map(|p| p.workload.as_ref().map(|w| w.to_string()))
            .collect();
        let bound = cx.policy.scale_up.max_node_provision_time;
        self.memory.moves.retain(|uid, m| {
            cx.now < after(m.at, bound) && (listed.contains(uid.as_str()) || waiting.contains(&m.workload))
        });
        for m in self.memory.moves.values() {
            if let Some(dest) = cx.ix.node_named(&m.node) {
                self.adjust.reserve(dest, &m.pod, &Resources::new(m.cpu_milli, m.memory));
            }
        }
    }
}

struct Issued<'w, 'm> {
    cx: &'m Cx<'w>,
    actions: Vec<Action>,
    adjust: Adjustments<'w>,
    /// VPA objects whose workload got an update this pass.
    updated: BTreeSet<VpaIx>,
    memory: &'m mut ResizeMemory,
    /// Each VPA object's `namespace/name`, formatted once a pass rather than
    /// once an action, and shared by its actions and explanation entries.
    vpa_names: Table<VpaIx, Name>,
    /// The names of the nodes actions were issued on so far, one shared
    /// string per node rather than a copy per action.
    node_names: Table<NodeIx, Option<Name>>,
}

impl<'w> Issued<'w, '_> {
    fn node_name(&mut self, node: NodeIx) -> Name {
        let cx = self.cx;
        self.node_names[node].get_or_insert_with(|| Name::from(cx.ix.node(node).name.as_str())).clone()
    }

    fn resize(&mut self, w: &'w Wanted<'w>, reason: UpdateReason) -> ResizeDecision {
        self.memory.resized.insert(w.pod.uid.clone(), self.cx.now);
        self.adjust.update(w);
        self.updated.insert(w.vertical);
        let decision = ResizeDecision::Resize {
            reason: reason.clone(),
            from: total(&w.containers, |c| c.from),
            to: total(&w.containers, |c| c.requests),
        };
        let node = self.node_name(w.node);
        self.actions.push(Action::ResizePod(ResizePod {
            pod: w.pod.key(),
            uid: w.pod.uid.clone(),
            node,
            vpa: self.vpa_names[w.vertical].clone(),
            containers: w.containers.clone(),
            reason,
        }));
        decision
    }

    /// `dest`: the other node where it is to land (else its own).
    fn recreate(&mut self, w: &'w Wanted<'w>, reason: UpdateReason, dest: Option<NodeIx>) -> ResizeDecision {
        // Planned only where an admission controller gives the replacement
        // its new size (assess), so scale-down counts that size where it lands.
        match dest {
            Some(dest) => {
                let reborn = w.reborn(self.cx);
                self.adjust.moved(w, dest, reborn);
                self.memory.moves.insert(
                    w.pod.uid.clone(),
                    PlannedMove {
                        workload: self.cx.ix.vpa(w.vertical).workload.to_string(),
                        pod: w.pod.key().to_string(),
                        node: self.cx.ix.node(dest).name.clone(),
                        cpu_milli: reborn.requests.cpu_milli,
                        memory: reborn.requests.memory,
                        at: self.cx.now,
                    },
                );
            }
            None => self.adjust.update(w),
        }
        self.memory.resized.remove(&w.pod.uid);
        self.updated.insert(w.vertical);
        let node = self.node_name(w.node);
        self.actions.push(Action::RecreatePod(RecreatePod {
            pod: w.pod.key(),
            uid: w.pod.uid.clone(),
            node,
            vpa: self.vpa_names[w.vertical].clone(),
            containers: w.containers.clone(),
            reason: reason.clone(),
            recommendation_applied: self.cx.ix.snap.admission_applies_recommendations,
        }));
        ResizeDecision::Recreate { reason, to: total(&w.containers, |c| c.requests) }
    }
}

/// One alert per VPA object whose pods' updates Kubernetes would refuse in
/// place and that cannot be recreated: the configuration must change, and a
/// resize sent anyway would only be refused again.
fn unsupported(cx: &Cx<'_>, decisions: &[(PodIx, VpaIx, ResizeDecision)], ex: &mut Explanation) {
    let mut per_vpa: BTreeMap<VpaIx, (usize, PodIx, String)> = BTreeMap::new();
    for (index, v, decision) in decisions {
        if let ResizeDecision::Blocked { why: why @ UpdateBlock::QosClassChange { .. }, .. } = decision {
            let entry = per_vpa.entry(*v).or_insert_with(|| (0, *index, why.to_string()));
            entry.0 += 1;
            if *index < entry.1 {
                (entry.1, entry.2) = (*index, why.to_string());
            }
        }
    }
    for (v, (pods, example, why)) in per_vpa {
        ex.alerts.push(Alert::ResizeUnsupported { vpa: vpa_name(cx, v), pods, example: cx.ix.pod(example).key(), why });
    }
}

/// Decisions about a pod are listed in snapshot order; the rest are counted
/// per VPA object and decision (a handful each).
fn explain(
    cx: &Cx<'_>,
    mut decisions: Vec<(PodIx, VpaIx, ResizeDecision)>,
    vpa_names: &Table<VpaIx, Name>,
    ex: &mut Explanation,
) {
    // One pair of strings per VPA object, shared by its pods' entries.
    let names: Table<VpaIx, (Name, Name)> =
        cx.ix.vpas().map(|(v, vpa)| (Name::from(vpa.workload.to_string()), vpa_names[v].clone())).collect();
    let mut counted: Table<VpaIx, Vec<(ResizeDecision, u32)>> = Table::filled(Vec::new(), names.len());
    // The listed ones stay where they are, in order, the counted ones go: no
    // second vector of a few hundred thousand decisions (issue 22).
    decisions.retain(|(_, v, decision)| {
        if !decision.is_counted() {
            return true;
        }
        match counted[*v].iter_mut().find(|(d, _)| d == decision) {
            Some((_, pods)) => *pods += 1,
            None => counted[*v].push((decision.clone(), 1)),
        }
        false
    });
    let mut listed = decisions;
    listed.sort_unstable_by_key(|(index, _, _)| *index);
    ex.resizes.reserve(listed.len());
    for (index, v, decision) in listed {
        let (workload, vpa) = names[v].clone();
        ex.resizes.push(ResizeExplanation { pod: cx.ix.pod(index).key(), workload, vpa, decision });
    }
    for (v, decisions) in counted.into_iter() {
        for (decision, pods) in decisions {
            let (workload, vpa) = names[v].clone();
            ex.resize_counts.push(ResizeCount { workload, vpa, decision, pods });
        }
    }
}

fn vpa_name(cx: &Cx<'_>, v: VpaIx) -> String {
    let vertical = cx.ix.vpa(v);
    format!("{}/{}", vertical.namespace, vertical.name)
}
