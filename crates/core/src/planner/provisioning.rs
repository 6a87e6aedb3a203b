//! What each group really has: Ready minions, capacity on its way, members
//! that failed to provision — and the back-off that failures earn.
//!
//! A failed member is removed precisely (that member only) and the group is
//! backed off; the group's desired size is never lowered below the members
//! that survive (see `members.rs`), so repeated failures cannot walk a group
//! down to its minimum — the Magnum provider's failure mode.

use std::time::Duration as StdDuration;

use crate::model::{GroupState, MemberStatus, Timestamp};

use super::action::RemovalCause;
use super::explain::{Alert, Explanation, GroupExplanation, ProvisioningFailure};
use super::index::{GroupIx, MemberIx, NodeIx, Table};
use super::memory::{Backoff, Memory, member_key};
use super::protocol::{NODE_GROUP_LABEL, Phase, RemovalState};
use super::time::{after, after_std, elapsed};
use super::{Cx, Pass};

/// One group as the rest of the pass sees it.
#[derive(Clone, Debug, Default)]
pub struct GroupView {
    /// Members with a Ready node.
    pub ready: u32,
    /// Registered but not yet Ready nodes, within the provision time.
    pub starting_nodes: Vec<NodeIx>,
    /// Capacity asked of Heat that has no node yet: members without a node
    /// within the provision time, plus desired size Heat has not materialised.
    pub unregistered: u32,
    /// Members InProgress or Complete (what the group will have, removals aside).
    pub live: u32,
    /// Members that failed to provision, to be removed precisely.
    pub failed: Vec<(MemberIx, RemovalCause)>,
    pub backoff_until: Option<Timestamp>,
}

/// Per group, what it really has; records failures and back-offs in the
/// memory of `pass` and explains them.
pub fn assess(cx: &Cx<'_>, pass: &mut Pass<'_>) -> Table<GroupIx, GroupView> {
    let Pass { memory, ex, .. } = pass;
    let provision = cx.policy.scale_up.max_node_provision_time;
    let mut views = Table::default();
    let mut seen_failures = std::collections::BTreeSet::new();
    let mut first_seen = std::collections::BTreeMap::new();
    // Members whose removal was sent to Heat: their server going (node NotReady,
    // or no longer joined) is the removal at work, not a failed boot.
    let removing: std::collections::BTreeSet<(&str, &str)> = cx
        .ix
        .removals()
        .filter_map(|(_, st)| match st {
            RemovalState::Active(r) if r.phase == Phase::Removing => Some((r.group.as_str(), r.member.as_str())),
            _ => None,
        })
        .collect();
    for (g, group) in cx.ix.groups() {
        let mut view = GroupView::default();
        for (m, member) in cx.ix.members(g) {
            match member.status {
                MemberStatus::Deleting | MemberStatus::MarkedForRemoval => continue,
                MemberStatus::Failed => {
                    view.failed
                        .push((m, RemovalCause::ProvisioningFailed { failure: ProvisioningFailure::CreateFailed }));
                    continue;
                }
                MemberStatus::InProgress | MemberStatus::Complete => view.live += 1,
            }
            let key = member_key(&group.name, &member.id);
            let created = member.created.unwrap_or_else(|| {
                let t = memory.member_first_seen.get(&key).copied().unwrap_or(cx.now);
                first_seen.insert(key, t);
                t
            });
            let being_removed = removing.contains(&(group.name.as_str(), member.id.as_str()));
            match cx.ix.node_of(m) {
                Some(i) if cx.ix.node(i).ready => view.ready += 1,
                // Not Ready: the removal step asks Heat again while it lists the member.
                Some(_) if being_removed => {}
                // No longer joined (its server is gone): asked of Heat from here, without
                // counting as a failed boot (no alert, no back-off).
                None if being_removed => {
                    view.live -= 1;
                    view.failed.push((m, RemovalCause::NodeGone));
                }
                Some(i) => {
                    let node = cx.ix.node(i);
                    if elapsed(cx.now, node.created) < provision.get() {
                        view.starting_nodes.push(i);
                    } else {
                        ex.alerts.push(Alert::NodeUnready {
                            node: node.name.clone(),
                            group: group.name.clone(),
                            member: member.id.clone(),
                        });
                    }
                }
                None if elapsed(cx.now, created) < provision.get() => view.unregistered += 1,
                None => {
                    let cause = match (&member.node_name, member.status) {
                        // InProgress too: Heat marks every member of a group it
                        // updates, which does not make a lost node a failed boot.
                        (Some(node), MemberStatus::Complete | MemberStatus::InProgress) => {
                            ex.alerts.push(Alert::MemberLostNode {
                                group: group.name.clone(),
                                member: member.id.clone(),
                                node: node.clone(),
                            });
                            RemovalCause::NodeGone
                        }
                        _ => RemovalCause::ProvisioningFailed {
                            failure: ProvisioningFailure::NoNode { limit_secs: provision.get().as_secs() },
                        },
                    };
                    view.live -= 1;
                    view.failed.push((m, cause));
                }
            }
        }
        let phantom = group.desired.saturating_sub(group.members.len() as u32);
        if phantom > 0 {
            let recent = memory.last_scale_up.get(&group.name).is_some_and(|t| elapsed(cx.now, *t) < provision.get());
            if group.stack_busy || recent {
                view.unregistered += phantom;
            } else {
                ex.alerts.push(Alert::DesiredExceedsMembers {
                    group: group.name.clone(),
                    desired: group.desired,
                    members: group.members.len() as u32,
                });
            }
        }
        view.backoff_until = record_failures(cx, group, &view, memory, &mut seen_failures, ex);
        ex.groups.push(GroupExplanation {
            group: group.name.clone(),
            desired: group.desired,
            min: group.min_size,
            max: group.max_size,
            ready: view.ready,
            upcoming: view.unregistered + view.starting_nodes.len() as u32,
            backoff_until: view.backoff_until,
            options: Vec::new(),
        });
        views.push(view);
    }
    memory.failures_seen = seen_failures;
    memory.member_first_seen = first_seen;
    report_nodes_without_member(cx, ex);
    views
}

/// Counts new failures into the group's back-off (each failed member once)
/// and returns the back-off in force, if any.
fn record_failures(
    cx: &Cx<'_>,
    group: &GroupState,
    view: &GroupView,
    memory: &mut Memory,
    seen: &mut std::collections::BTreeSet<String>,
    ex: &mut Explanation,
) -> Option<Timestamp> {
    let policy = &cx.policy.scale_up;
    for (m, cause) in &view.failed {
        // A member whose Node was deleted by hand is drift, reported on its
        // own: it neither backs the group off nor counts as a failed boot.
        let RemovalCause::ProvisioningFailed { failure } = cause else { continue };
        let member = cx.ix.member(*m);
        let key = member_key(&group.name, &member.id);
        let new = !memory.failures_seen.contains(&key);
        seen.insert(key);
        if !new {
            continue;
        }
        let backoff = memory.backoff.entry(group.name.clone()).or_insert(Backoff { failures: 0, until: cx.now });
        backoff.failures = backoff.failures.saturating_add(1);
        let factor = 1u32.checked_shl(backoff.failures - 1).unwrap_or(u32::MAX);
        let wait = policy.backoff_initial.get().saturating_mul(factor).min(policy.backoff_max.get());
        backoff.until = after_std(cx.now, wait);
        memory.last_failure = Some(cx.now);
        ex.alerts.push(Alert::ProvisioningFailed {
            group: group.name.clone(),
            member: member.id.clone(),
            cause: failure.clone(),
            backoff_until: backoff.until,
        });
    }
    let entry = memory.backoff.get(&group.name)?;
    if cx.now < entry.until {
        return Some(entry.until);
    }
    // A quiet period as long as the longest back-off forgives past failures.
    if after(entry.until, policy.backoff_max) <= cx.now || policy.backoff_max.get() == StdDuration::ZERO {
        memory.backoff.remove(&group.name);
    }
    None
}

fn report_nodes_without_member(cx: &Cx<'_>, ex: &mut Explanation) {
    for i in cx.ix.nodes() {
        if cx.ix.membership(i).is_some() || !cx.ix.removal(i).is_none() {
            continue;
        }
        let node = cx.ix.node(i);
        if let Some(group) = node.labels.get(NODE_GROUP_LABEL)
            // While Heat changes the stack its member list is not reliable
            // (and a new member's node may register first): report at rest only.
            && cx.ix.snap.groups.iter().any(|g| &g.name == group && !g.stack_busy)
        {
            ex.alerts.push(Alert::NodeWithoutMember { node: node.name.clone(), group: group.clone() });
        }
    }
}
