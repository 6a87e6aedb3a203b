//! After every removal update: did exactly the chosen members leave, and no
//! other? Heat answers a removal request at once and does the work later, so
//! the answer is read when the stack is idle again (the next passes). A
//! removal that took another member, or left a chosen one behind although the
//! update completed, holds the group — heatscaler sends nothing more to it and
//! takes no step on its nodes — raises a critical `RemovalMismatch`, and
//! records the finding on the nodes involved ([`MISMATCH_ANNOTATION`],
//! [`MISMATCH_GROUP_ANNOTATION`]). The record holds the group across
//! restarts too: the operator, having looked, releases it by removing the two
//! annotations from the nodes and restarting the daemon (docs/operations.md).
//!
//! The ledger of sent removals and held groups outlives the actuator (which a
//! configuration reload rebuilds): it lives with the daemon's shared parts.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::{Actuator, Outcome};
use crate::alerts::{ObjectRef, ScalingEvent};
use crate::cloud::group::{GroupSnapshot, NodeGroupBackend};
use crate::cloud::heat::{State, parse_status};
use heatscaler_core::planner::protocol::NodePatch;

/// Set on the nodes of a removal that did not go as sent: what was expected
/// and what Heat did. Left for the operator; heatscaler never removes it.
pub const MISMATCH_ANNOTATION: &str = "heatscaler.io/removal-mismatch";
/// Set beside it: the group, held while any node carries this annotation
/// (so a restarted daemon holds it too). The operator removes both once the
/// group is sorted out.
pub const MISMATCH_GROUP_ANNOTATION: &str = "heatscaler.io/removal-mismatch-group";

/// A removal sent to Heat and not yet confirmed.
#[derive(Clone, Debug)]
pub(crate) struct SentRemoval {
    /// Every member the group had when the update was sent, with its node (if joined).
    pub before: BTreeMap<String, Option<String>>,
    /// The members the update named.
    pub chosen: BTreeSet<String>,
    /// The stack's `updated_time` before the update: a read with the same one
    /// was taken before Heat began it.
    pub updated_before: Option<String>,
    pub sent: Instant,
}

/// What became of a sent removal, once Heat is idle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Heat has not begun the update yet (the stack's update time is the old one).
    NotBegun,
    /// Exactly the chosen members left.
    Confirmed,
    /// The update failed and took no member but chosen ones: an ordinary
    /// failure, retried by the planner.
    Failed,
    /// Members that were not chosen left, or the update completed and a chosen member is still there.
    Mismatch { unexpected: Vec<String>, kept: Vec<String> },
}

/// Pure: compares the members before and now.
pub(crate) fn judge(sent: &SentRemoval, now: &GroupSnapshot) -> Verdict {
    let present: BTreeSet<&str> = now.members.iter().map(|m| m.name.as_str()).collect();
    let left: BTreeSet<&str> = sent.before.keys().map(String::as_str).filter(|m| !present.contains(m)).collect();
    let unexpected: Vec<String> = left.iter().filter(|m| !sent.chosen.contains(**m)).map(|m| m.to_string()).collect();
    let kept: Vec<String> = sent.chosen.iter().filter(|m| present.contains(m.as_str())).cloned().collect();
    let failed = parse_status(&now.stack_status).1 == Some(State::Failed);
    match (unexpected.is_empty(), kept.is_empty()) {
        (true, true) => Verdict::Confirmed,
        (true, false) if now.updated == sent.updated_before => Verdict::NotBegun,
        (true, false) if failed => Verdict::Failed,
        _ => Verdict::Mismatch { unexpected, kept },
    }
}

/// Sent removals awaiting confirmation, and groups held after a mismatch.
#[derive(Clone, Debug, Default)]
pub struct RemovalLedger(Arc<Mutex<LedgerState>>);

#[derive(Debug, Default)]
struct LedgerState {
    sent: BTreeMap<String, SentRemoval>,
    held: BTreeMap<String, String>,
}

impl RemovalLedger {
    pub(crate) fn record(&self, group: &str, sent: SentRemoval) {
        self.0.lock().expect("ledger lock").sent.insert(group.to_string(), sent);
    }

    fn pending(&self) -> Vec<(String, SentRemoval)> {
        self.0.lock().expect("ledger lock").sent.iter().map(|(g, s)| (g.clone(), s.clone())).collect()
    }

    fn settle(&self, group: &str) {
        self.0.lock().expect("ledger lock").sent.remove(group);
    }

    fn hold(&self, group: &str, why: String) {
        self.0.lock().expect("ledger lock").held.insert(group.to_string(), why);
    }

    /// Why the group is held, if it is.
    pub fn held(&self, group: &str) -> Option<String> {
        self.0.lock().expect("ledger lock").held.get(group).cloned()
    }

    /// Every held group with why.
    pub fn held_groups(&self) -> BTreeMap<String, String> {
        self.0.lock().expect("ledger lock").held.clone()
    }
}

impl Actuator {
    /// Checks every sent removal whose stack is idle again (see the module
    /// documentation). Called by the leader before each pass's actions.
    pub async fn confirm_removals(&self) -> Vec<Outcome> {
        let mut outcomes = Vec::new();
        for (group, sent) in self.ledger.pending() {
            let Ok(backend) = self.backend(&group) else {
                self.ledger.settle(&group);
                continue;
            };
            let now = match backend.read().await {
                Ok(now) if !now.busy => now,
                // Still at work, or unreadable now: asked again next pass.
                _ => continue,
            };
            match judge(&sent, &now) {
                Verdict::NotBegun => {}
                Verdict::Confirmed => {
                    tracing::info!(
                        group = %group,
                        members = ?sent.chosen,
                        took = ?sent.sent.elapsed(),
                        "Heat removed exactly the chosen member(s)"
                    );
                    self.ledger.settle(&group);
                }
                Verdict::Failed => {
                    tracing::warn!(group = %group, status = %now.stack_status, "the removal update failed; no other member left");
                    self.ledger.settle(&group);
                }
                Verdict::Mismatch { unexpected, kept } => {
                    self.ledger.settle(&group);
                    outcomes.push(self.hold_after_mismatch(&group, &sent, &now, &unexpected, &kept).await);
                }
            }
        }
        outcomes
    }

    async fn hold_after_mismatch(
        &self,
        group: &str,
        sent: &SentRemoval,
        now: &GroupSnapshot,
        unexpected: &[String],
        kept: &[String],
    ) -> Outcome {
        let chosen: Vec<&str> = sent.chosen.iter().map(String::as_str).collect();
        let what = format!(
            "Heat was asked to remove member(s) {} of stack {} ({}) but removed {} and kept {}",
            chosen.join(", "),
            now.stack,
            now.stack_status,
            if unexpected.is_empty() { "no other member".to_string() } else { unexpected.join(", ") },
            if kept.is_empty() { "none of them".to_string() } else { kept.join(", ") },
        );
        let why = format!("{what}; heatscaler no longer acts on this group until it is restarted");
        tracing::error!(group, "{why}");
        self.ledger.hold(group, what.clone());
        let nodes: BTreeSet<String> =
            unexpected.iter().chain(kept).filter_map(|m| sent.before.get(m).cloned().flatten()).collect();
        let mut event = ScalingEvent::removal_mismatch(group, &why, &chosen, unexpected, kept);
        if let Some(first) = nodes.first() {
            event = event.with_object(ObjectRef::node(first.as_str()));
        }
        self.alerts.dispatch(event);
        for name in &nodes {
            let patch = NodePatch {
                set_annotations: [
                    (MISMATCH_ANNOTATION.to_string(), what.clone()),
                    (MISMATCH_GROUP_ANNOTATION.to_string(), group.to_string()),
                ]
                .into_iter()
                .collect(),
                ..NodePatch::default()
            };
            let name = name.as_str();
            match self.kube.node(name).await {
                Ok(Some(node)) => {
                    if let Err(e) = self.kube.patch_node(&node, &patch).await {
                        tracing::warn!(node = name, error = %e, "could not record the mismatch on the node");
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(node = name, error = %e, "could not read the node to record the mismatch"),
            }
        }
        Outcome::Done(format!("held group {group}: {what}"))
    }

    /// Holds the groups named by nodes' [`MISMATCH_GROUP_ANNOTATION`]
    /// (recorded by this or an earlier daemon). A hold is never released
    /// while the daemon runs: the operator removes the records and restarts it.
    pub fn hold_recorded(&self, recorded: &BTreeMap<String, String>) {
        let mut state = self.ledger.0.lock().expect("ledger lock");
        for (group, what) in recorded {
            state.held.entry(group.clone()).or_insert_with(|| what.clone());
        }
    }

    /// Refuses any action on a held group.
    pub(super) fn held(&self, group: Option<&str>) -> Option<Outcome> {
        let group = group?;
        self.ledger.held(group).map(|why| Outcome::Skipped(format!("group {group} is held: {why}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::group::HeatMember;
    use crate::cloud::heat::StackRef;
    use heatscaler_core::model::MemberStatus;

    fn snapshot(members: &[&str], status: &str) -> GroupSnapshot {
        GroupSnapshot {
            group: "workers".into(),
            stack: StackRef { name: "s".into(), id: "i".into() },
            stack_status: status.into(),
            stack_status_reason: String::new(),
            updated: Some(format!("{status}-time")),
            busy: false,
            desired: members.len() as u32,
            members: members
                .iter()
                .map(|m| HeatMember {
                    name: m.to_string(),
                    status: MemberStatus::Complete,
                    heat_status: "CREATE_COMPLETE".into(),
                    status_reason: None,
                    created: None,
                    heat_created: None,
                    physical_id: None,
                    server_id: None,
                    node_name: None,
                })
                .collect(),
            members_stack: None,
            parameters: Default::default(),
        }
    }

    fn sent(before: &[&str], chosen: &[&str]) -> SentRemoval {
        SentRemoval {
            before: before.iter().map(|m| (m.to_string(), Some(format!("node-{m}")))).collect(),
            chosen: chosen.iter().map(|m| m.to_string()).collect(),
            updated_before: Some("before".into()),
            sent: Instant::now(),
        }
    }

    #[test]
    fn exactly_the_chosen_members_gone_is_confirmed_new_members_do_not_matter() {
        let s = sent(&["0", "1", "2"], &["0"]);
        assert_eq!(judge(&s, &snapshot(&["1", "2"], "UPDATE_COMPLETE")), Verdict::Confirmed);
        assert_eq!(judge(&s, &snapshot(&["1", "2", "3"], "UPDATE_COMPLETE")), Verdict::Confirmed);
    }

    #[test]
    fn another_member_gone_is_a_mismatch() {
        // The case: member 0 asked for, Heat deleted member 2.
        let s = sent(&["0", "1", "2"], &["0"]);
        assert_eq!(
            judge(&s, &snapshot(&["0", "1"], "UPDATE_COMPLETE")),
            Verdict::Mismatch { unexpected: vec!["2".into()], kept: vec!["0".into()] }
        );
        // Even when the update failed half-way.
        assert!(matches!(judge(&s, &snapshot(&["0", "1"], "UPDATE_FAILED")), Verdict::Mismatch { .. }));
    }

    #[test]
    fn a_completed_update_that_kept_a_chosen_member_is_a_mismatch_a_failed_one_is_a_failure() {
        let s = sent(&["0", "1"], &["0"]);
        assert_eq!(
            judge(&s, &snapshot(&["0", "1"], "UPDATE_COMPLETE")),
            Verdict::Mismatch { unexpected: vec![], kept: vec!["0".into()] }
        );
        assert_eq!(judge(&s, &snapshot(&["0", "1"], "UPDATE_FAILED")), Verdict::Failed);
        // Read before Heat began the update: nothing to judge yet.
        let mut not_begun = snapshot(&["0", "1"], "UPDATE_COMPLETE");
        not_begun.updated = Some("before".into());
        assert_eq!(judge(&s, &not_begun), Verdict::NotBegun);
    }
}
