//! The simulated actuator: executes the planner's actions under the same
//! contract as the real one (see `planner::action`) — it re-reads the live
//! state, acts only when the action's expectations still hold, and takes the
//! time Heat and the kubelet take. It keeps no state of its own: everything
//! it knows it reads from the world as it acts.

use std::collections::BTreeMap;

use heatscaler_core::model::{MemberStatus, Pod};
use heatscaler_core::planner::Action;
use heatscaler_core::planner::action::{
    DeleteNode, EvictPods, MarkDrained, RecreatePod, RemoveMembers, ResizePod, RollBackRemoval, ScaleUp, StartRemoval,
};
use heatscaler_core::planner::protocol::{self, Phase, RemovalState};

use crate::report::TimelineEvent;
use crate::world::kubelet::ResizeAnswer;
use crate::world::{Eviction, Owners, World};

/// Executes `action` against the world, or records why it did not. The
/// owner of each pod it evicts is told at once.
pub fn execute(world: &mut World<'_>, action: &Action, owners: &mut dyn Owners) {
    let result = match action {
        Action::ScaleUp(a) => scale_up(world, a),
        Action::RemoveMembers(a) => remove_members(world, a),
        Action::StartRemoval(a) => start_removal(world, a),
        Action::EvictPods(a) => evict(world, a, owners),
        Action::MarkDrained(a) => mark_drained(world, a),
        Action::RollBackRemoval(a) => roll_back(world, a),
        Action::DeleteNode(a) => delete_node(world, a),
        Action::ResizePod(a) => resize(world, a),
        Action::RecreatePod(a) => recreate(world, a, owners),
        Action::SetPreferredAffinity(a) => {
            template(world, owners, &a.workload, &a.term, Some(a.weight), &a.subject, "template gains")
        }
        Action::RemovePreferredAffinity(a) => {
            template(world, owners, &a.workload, &a.term, None, &a.subject, "template loses")
        }
    };
    match result {
        Ok(()) => world.wake_autoscaler(), // its watches see what its own action changed
        Err(why) => {
            let kind = action.kind().as_str().to_string();
            world.record(action.subject(), TimelineEvent::Refused { action: kind, why });
        }
    }
}

/// A template change, through the workload's controller (which checks the
/// rollout and the PDB, and rolls the change out).
fn template(
    world: &mut World<'_>,
    owners: &mut dyn Owners,
    workload: &heatscaler_core::model::WorkloadRef,
    term: &heatscaler_core::model::PodAffinityTerm,
    weight: Option<i32>,
    subject: &str,
    what: &str,
) -> Result<(), String> {
    if owners.change_template(world, workload, term, weight)? {
        world.record(&workload.name, TimelineEvent::Template { change: format!("{what} the advice to {subject}") });
    }
    Ok(())
}

fn group(world: &World<'_>, name: &str) -> Result<usize, String> {
    world.heat.group_index(name).ok_or_else(|| format!("no group {name}"))
}

fn scale_up(world: &mut World<'_>, a: &ScaleUp) -> Result<(), String> {
    let g = group(world, &a.group)?;
    let group = &world.heat.groups[g];
    if group.update.is_some() {
        return Err("stack update in progress".into());
    }
    if group.desired != a.expected_desired {
        return Err(format!("desired is {}, the plan expected {}", group.desired, a.expected_desired));
    }
    world.update_stack(g, a.new_desired, &[]);
    let now = world.now();
    world.journal.scale_up(now, a);
    Ok(())
}

fn remove_members(world: &mut World<'_>, a: &RemoveMembers) -> Result<(), String> {
    let g = group(world, &a.group)?;
    let group = &world.heat.groups[g];
    if group.update.is_some() {
        return Err("stack update in progress".into());
    }
    if group.desired != a.expected_desired {
        return Err(format!("desired is {}, the plan expected {}", group.desired, a.expected_desired));
    }
    for m in &a.members {
        if !group.members.iter().any(|x| x.id == m.member && x.status != MemberStatus::Deleting) {
            return Err(format!("member {} is no longer listed", m.member));
        }
    }
    // Every drained node is checked before anything is changed.
    let mut patches = Vec::new();
    for node in a.members.iter().filter_map(|m| m.node.as_ref().map(|n| (n, &m.member))) {
        let (name, member) = node;
        let n = world.cluster.node(name).ok_or_else(|| format!("node {name} is gone"))?;
        let RemovalState::Active(record) = protocol::read(n) else {
            return Err(format!("node {name} carries no removal record"));
        };
        if record.phase < Phase::Drained || &record.member != member || record.group != a.group {
            return Err(format!("node {name} is not drained for member {member}"));
        }
        if let Some(p) = workload_pods(world, name).next() {
            return Err(format!("node {name} still runs {}/{}", p.namespace, p.name));
        }
        patches.push((name.clone(), a.node_patch(&record)));
    }
    for (name, patch) in patches {
        if let Some(n) = world.cluster.node_mut(&name) {
            patch.apply(n);
        }
    }
    let remove: Vec<String> = a.members.iter().map(|m| m.member.clone()).collect();
    let from = world.heat.groups[g].desired;
    world.update_stack(g, a.new_desired, &remove);
    let now = world.now();
    world.journal.remove_members(now, a, from);
    Ok(())
}

/// Pods on `node` a drain must move (not DaemonSet, mirror or finished pods).
fn workload_pods<'a>(world: &'a World<'_>, node: &'a str) -> impl Iterator<Item = &'a Pod> + 'a {
    world
        .cluster
        .snap
        .pods
        .iter()
        .filter(move |p| p.node_name.as_deref() == Some(node) && !p.is_daemonset() && !p.mirror && !p.is_terminal())
}

fn start_removal(world: &mut World<'_>, a: &StartRemoval) -> Result<(), String> {
    let node = world.cluster.node(&a.node).ok_or("node is gone")?;
    if !matches!(protocol::read(node), RemovalState::None) {
        return Err("node already carries a removal taint or record".into());
    }
    let g = group(world, &a.record.group)?;
    if !world.heat.groups[g].members.iter().any(|m| m.id == a.record.member && m.status == MemberStatus::Complete) {
        return Err(format!("member {} is not a complete member of {}", a.record.member, a.record.group));
    }
    if a.record.kind == protocol::RemovalKind::Empty && workload_pods(world, &a.node).any(|p| p.deletion.is_none()) {
        return Err("no longer empty".into());
    }
    let patch = a.patch();
    if let Some(n) = world.cluster.node_mut(&a.node) {
        patch.apply(n);
    }
    world.cluster_changed();
    world.record(
        &a.record.group,
        TimelineEvent::RemovalStarted {
            node: a.node.clone(),
            kind: a.record.kind.as_str().into(),
            utilization: a.utilization,
        },
    );
    Ok(())
}

fn phase_of(world: &World<'_>, node: &str) -> Result<Option<Phase>, String> {
    let n = world.cluster.node(node).ok_or("node is gone")?;
    Ok(protocol::read(n).record().map(|r| r.phase))
}

fn evict(world: &mut World<'_>, a: &EvictPods, owners: &mut dyn Owners) -> Result<(), String> {
    if phase_of(world, &a.node)? != Some(Phase::Draining) {
        return Err("node is not draining".into());
    }
    // The API server's view of each PDB, debited as this call evicts.
    let mut allowed: BTreeMap<usize, i32> = BTreeMap::new();
    for e in &a.pods {
        let Some(pod) = world.cluster.pod(&e.uid) else { continue }; // 404: already gone
        if pod.node_name.as_deref() != Some(a.node.as_str()) || pod.deletion.is_some() {
            continue;
        }
        match world.evict(&e.uid, Some(a.max_grace), &mut allowed, owners) {
            Eviction::Evicted => world.journal.evicted(),
            Eviction::Refused => world.journal.eviction_refused(), // 429: the next pass tries again
            Eviction::Gone => {}
        }
    }
    for (i, left) in allowed {
        world.cluster.snap.pdbs[i].disruptions_allowed = left;
    }
    Ok(())
}

/// `ResizePod` through the `resize` subresource; the kubelet's answer is
/// the pod's resize state, which the next pass reads.
fn resize(world: &mut World<'_>, a: &ResizePod) -> Result<(), String> {
    let subject = workload_of(world, &a.uid);
    let change = a.containers.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
    match world.resize_pod(&a.uid, &a.containers) {
        ResizeAnswer::Gone => Err(format!("pod {} is gone", a.pod)),
        ResizeAnswer::AlreadyRequested => Ok(()),
        ResizeAnswer::Invalid(why) => Err(format!("422 resizing {}: {why}", a.pod)),
        ResizeAnswer::Requested(verdict) => {
            world.record(
                &subject,
                TimelineEvent::PodResized { pod: a.pod.name.to_string(), change, kubelet: format!("{verdict:?}") },
            );
            Ok(())
        }
    }
}

/// `RecreatePod` through the eviction API, as a drain's evictions: the PDB
/// is honoured and the owner replaces the pod at once — at its template's
/// requests unless an admission controller applies the recommendation.
fn recreate(world: &mut World<'_>, a: &RecreatePod, owners: &mut dyn Owners) -> Result<(), String> {
    let Some(pod) = world.cluster.pod(&a.uid) else { return Err(format!("pod {} is gone", a.pod)) };
    if pod.deletion.is_some() {
        return Err(format!("pod {} is already terminating", a.pod));
    }
    let subject = workload_of(world, &a.uid);
    let mut allowed = BTreeMap::new();
    let workload = world.workload_of(&a.uid);
    let answer = world.evict(&a.uid, None, &mut allowed, owners);
    for (i, left) in allowed {
        world.cluster.snap.pdbs[i].disruptions_allowed = left;
    }
    match answer {
        Eviction::Evicted => {
            world.recreated(workload);
            let change = a.containers.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
            world.record(&subject, TimelineEvent::PodRecreated { pod: a.pod.name.to_string(), wanted: change });
            Ok(())
        }
        Eviction::Refused => {
            world.journal.pod_level.recreations_refused += 1;
            Err(format!("429 evicting {}: a PodDisruptionBudget allows no disruption", a.pod))
        }
        Eviction::Gone => Err(format!("pod {} is gone", a.pod)),
    }
}

/// The name of the workload that owns pod `uid` (the timeline's subject).
fn workload_of(world: &World<'_>, uid: &str) -> String {
    world
        .cluster
        .pod(uid)
        .map(|p| p.workload.as_ref().map_or_else(|| p.name.to_string(), |w| w.name.to_string()))
        .unwrap_or_else(|| uid.to_string())
}

fn mark_drained(world: &mut World<'_>, a: &MarkDrained) -> Result<(), String> {
    if phase_of(world, &a.node)? != Some(Phase::Draining) {
        return Err("node is not draining".into());
    }
    if workload_pods(world, &a.node).next().is_some() {
        return Err("workload pods remain".into());
    }
    let patch = a.patch();
    if let Some(n) = world.cluster.node_mut(&a.node) {
        patch.apply(n);
    }
    world.cluster_changed();
    world.record(&a.record.group, TimelineEvent::Drained { node: a.node.clone() });
    Ok(())
}

fn roll_back(world: &mut World<'_>, a: &RollBackRemoval) -> Result<(), String> {
    if phase_of(world, &a.node)? == Some(Phase::Removing) {
        return Err("node is being removed by Heat".into());
    }
    let patch = a.patch();
    let group = world.cluster.node(&a.node).and_then(|n| n.labels.get(protocol::NODE_GROUP_LABEL).cloned());
    if let Some(n) = world.cluster.node_mut(&a.node) {
        patch.apply(n);
    }
    world.cluster_changed();
    world.journal.rolled_back();
    world.record(
        group.as_deref().unwrap_or(&a.node),
        TimelineEvent::RolledBack { node: a.node.clone(), reason: a.reason.to_string() },
    );
    Ok(())
}

fn delete_node(world: &mut World<'_>, a: &DeleteNode) -> Result<(), String> {
    if phase_of(world, &a.node)? != Some(Phase::Removing) {
        return Err("node is not being removed".into());
    }
    let g = group(world, &a.group)?;
    if world.heat.groups[g].members.iter().any(|m| m.id == a.member) {
        return Err(format!("Heat still lists member {}", a.member));
    }
    world.delete_node(&a.node);
    world.record(&a.group, TimelineEvent::NodeDeleted { node: a.node.clone() });
    Ok(())
}
