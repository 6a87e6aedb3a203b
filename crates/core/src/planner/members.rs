//! One Heat request per group that removes exactly the members that must go:
//! drained minions past their cooldown, and members that failed to provision.
//!
//! This is the last line of defence for "never delete an undrained node": a
//! drained member is included only if, in this very snapshot, its node still
//! carries the removal record for that member and runs no workload pod.

use std::collections::BTreeSet;

use crate::model::MemberStatus;

use super::action::{Action, MemberRemoval, RemovalCause, RemoveMembers};
use super::index::{GroupIx, Index, MemberIx, NodeIx, Table};
use super::protocol::{Phase, RemovalState};
use super::provisioning::GroupView;
use super::{Cx, Pass};

/// Groups that get a removal request this pass because of failed members
/// (scale-up leaves them alone: one Heat request per group per pass).
pub fn repairing(cx: &Cx<'_>, views: &Table<GroupIx, GroupView>) -> BTreeSet<GroupIx> {
    views.iter().filter(|(g, v)| !v.failed.is_empty() && !cx.ix.group(*g).stack_busy).map(|(g, _)| g).collect()
}

/// Reads the groups, the scale-up and the removals of `pass`; records a
/// scale-down in its memory.
pub fn compose(cx: &Cx<'_>, pass: &mut Pass<'_>) -> Vec<Action> {
    let Pass { groups: views, removals, up, memory, .. } = pass;
    let mut actions = Vec::new();
    for (g, group) in cx.ix.groups() {
        if group.stack_busy || up.scaled.contains(&g) {
            continue;
        }
        let mut members = Vec::new();
        for (m, cause) in &views[g].failed {
            members.push(MemberRemoval { member: cx.ix.member(*m).id.clone(), node: None, cause: cause.clone() });
        }
        let mut drained_any = false;
        for ready in removals.ready.get(&g).into_iter().flatten() {
            let verified = verify_drained(&cx.ix, ready.member, ready.node);
            debug_assert!(verified.is_ok(), "removal state machine offered an undrained member: {verified:?}");
            if verified.is_err() {
                continue;
            }
            drained_any = true;
            members.push(MemberRemoval {
                member: cx.ix.member(ready.member).id.clone(),
                node: Some(cx.ix.node(ready.node).name.clone()),
                cause: RemovalCause::Drained { drained: ready.drained },
            });
        }
        if members.is_empty() {
            continue;
        }
        let removed = members.len() as u32;
        let leaving = group
            .members
            .iter()
            .filter(|m| matches!(m.status, MemberStatus::Deleting | MemberStatus::MarkedForRemoval))
            .count() as u32;
        let staying = (group.members.len() as u32).saturating_sub(leaving + removed);
        let new_desired = group.desired.saturating_sub(removed).max(staying).max(group.min_size).min(group.desired);
        if drained_any {
            memory.last_scale_down = Some(cx.now);
        }
        actions.push(Action::RemoveMembers(RemoveMembers {
            group: group.name.clone(),
            expected_desired: group.desired,
            new_desired,
            members,
            requested_at: cx.now,
        }));
    }
    actions
}

/// The node of `member` carries a removal record for exactly this member in
/// phase `drained` or `removing`, and runs nothing but DaemonSet and mirror pods.
pub fn verify_drained(ix: &Index<'_>, member: MemberIx, node: NodeIx) -> Result<(), String> {
    let group = ix.group(member.group());
    let id = &ix.member(member).id;
    let RemovalState::Active(record) = ix.removal(node) else {
        return Err(format!("node {} has no removal record", ix.node(node).name));
    };
    if record.phase < Phase::Drained {
        return Err(format!("node {} is in phase {}", ix.node(node).name, record.phase));
    }
    if record.group != group.name || &record.member != id {
        return Err(format!("node {} records member {}/{}", ix.node(node).name, record.group, record.member));
    }
    if let Some(pod) = ix.workload_pods(node).next() {
        return Err(format!("node {} still runs pod {}", ix.node(node).name, pod.key()));
    }
    Ok(())
}
