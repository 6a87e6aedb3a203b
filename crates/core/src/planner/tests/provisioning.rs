use crate::model::{Member, MemberStatus};
use crate::policy::Duration;

use super::super::action::RemovalCause;
use super::super::explain::{Alert, GroupRejection, PodOutcome};
use super::*;

fn add_member(w: &mut World, group: &str, id: &str, status: MemberStatus, age_secs: i64) {
    let created = w.ago(age_secs);
    let g = w.group_mut(group);
    g.desired += 1;
    g.members.push(Member { id: id.into(), node_name: None, status, created: Some(created) });
}

#[test]
fn a_failed_member_is_removed_alone_and_the_group_backed_off() {
    let mut w = World::new();
    w.group("workers", 1, 10, 4000, 16 * GI);
    w.minion("workers", "w-0");
    w.minion("workers", "w-1");
    add_member(&mut w, "workers", "w-2", MemberStatus::Failed, 60);
    w.pending("web-0", 3000, GI);
    w.pod("filler-0", Some("w-0"), 4000, GI);
    w.pod("filler-1", Some("w-1"), 4000, GI);
    let plan = w.step();
    let rm = removals(&plan);
    assert_eq!(rm.len(), 1);
    assert_eq!(rm[0].members.len(), 1);
    assert_eq!(rm[0].members[0].member, "w-2");
    assert!(matches!(rm[0].members[0].cause, RemovalCause::ProvisioningFailed { .. }));
    assert_eq!((rm[0].expected_desired, rm[0].new_desired), (3, 2));
    // No scale-up of the group in the same pass, and the alert says so.
    assert!(scale_ups(&plan).is_empty());
    assert!(
        plan.explanation
            .alerts
            .iter()
            .any(|a| matches!(a, Alert::ProvisioningFailed { member, .. } if member == "w-2"))
    );
    let until = w.memory.backoff["workers"].until;
    assert_eq!(until, w.now + SignedDuration::from_secs(300));

    // The same failed member seen again (Heat still busy removing it) is not a new failure.
    w.group_mut("workers").stack_busy = true;
    w.step();
    assert_eq!(w.memory.backoff["workers"].failures, 1);
}

#[test]
fn repeated_failures_never_walk_the_group_down() {
    let mut w = World::new();
    w.group("workers", 1, 10, 4000, 16 * GI);
    w.minion("workers", "w-0");
    w.minion("workers", "w-1");
    w.pod("filler-0", Some("w-0"), 4000, GI);
    w.pod("filler-1", Some("w-1"), 4000, GI);
    w.pending("web-0", 3000, GI);
    let mut backoffs = Vec::new();
    for round in 0..6 {
        // Scale up (after the back-off), Heat creates a member that fails (quota).
        let plan = w.step();
        let ups = scale_ups(&plan);
        if ups.is_empty() {
            let PodOutcome::NoScaleUp { groups, .. } = plan.explanation.pod(&w.pod_mut("web-0").key()).unwrap().clone()
            else {
                panic!()
            };
            assert!(matches!(groups[0].rejection, GroupRejection::BackedOff { .. }));
            w.now = w.memory.backoff["workers"].until;
            continue;
        }
        assert_eq!(ups[0].expected_desired, 2, "round {round}");
        w.apply(&plan);
        add_member(&mut w, "workers", &format!("f-{round}"), MemberStatus::Failed, 0);
        w.group_mut("workers").desired -= 1; // add_member counted it; apply already raised desired
        let plan = w.step();
        let rm = removals(&plan);
        assert_eq!(rm[0].new_desired, 2, "never below the two surviving members");
        w.apply(&plan);
        w.heat_done();
        backoffs.push(w.memory.backoff["workers"].until.duration_since(w.now).as_secs());
        assert_eq!(w.group_mut("workers").desired, 2);
    }
    assert_eq!(&backoffs[..3], &[300, 600, 1200], "exponential");
    assert!(backoffs.iter().all(|&b| b <= 1800), "capped at backoff-max: {backoffs:?}");
}

#[test]
fn a_member_without_a_node_after_the_provision_time_is_removed_within_it_is_upcoming() {
    let mut w = World::new();
    w.group("workers", 0, 10, 4000, 16 * GI);
    add_member(&mut w, "workers", "slow", MemberStatus::Complete, 10 * 60);
    w.pending("web-0", 1000, GI);
    let plan = w.plan();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    w.advance(6 * 60);
    let plan = w.step();
    let rm = removals(&plan);
    assert_eq!(rm[0].members[0].member, "slow");
    assert!(matches!(rm[0].members[0].cause, RemovalCause::ProvisioningFailed { .. }));
    assert_eq!(rm[0].new_desired, 0);
}

#[test]
fn at_min_size_a_failed_member_is_replaced_not_dropped() {
    let mut w = World::new();
    w.group("workers", 2, 10, 4000, 16 * GI);
    w.minion("workers", "w-0");
    add_member(&mut w, "workers", "bad", MemberStatus::Failed, 60);
    let rm = w.plan();
    let rm = removals(&rm);
    assert_eq!((rm[0].expected_desired, rm[0].new_desired), (2, 2));
}

#[test]
fn drift_is_reported_and_only_the_lost_member_is_removed() {
    let mut w = World::new();
    w.group("workers", 0, 10, 4000, 16 * GI);
    w.minion("workers", "w-0");
    w.minion("workers", "w-1");
    // w-1's Node was deleted by hand; a node labelled for the group has no member.
    w.snap.nodes.retain(|n| n.name != "w-1");
    w.minion("workers", "stray");
    w.group_mut("workers").members.retain(|m| m.id != "stray");
    w.group_mut("workers").desired -= 1;
    let plan = w.plan();
    let rm = removals(&plan);
    assert_eq!(rm.len(), 1);
    assert_eq!(rm[0].members.iter().map(|m| m.member.as_str()).collect::<Vec<_>>(), ["w-1"]);
    assert_eq!(rm[0].members[0].cause, RemovalCause::NodeGone);
    let alerts = &plan.explanation.alerts;
    assert!(alerts.iter().any(|a| matches!(a, Alert::MemberLostNode { member, .. } if member == "w-1")));
    assert!(alerts.iter().any(|a| matches!(a, Alert::NodeWithoutMember { node, .. } if node == "stray")));
    assert!(!plan.actions.iter().any(|a| a.subject() == "stray"));
    // A Node deleted by hand is drift, not a failed boot: no alert of one, no back-off.
    assert!(!alerts.iter().any(|a| matches!(a, Alert::ProvisioningFailed { .. })), "{}", plan.explanation);
    assert!(plan.memory.backoff.is_empty(), "{:?}", plan.memory.backoff);

    // Mid-update, Heat's member list may lag: the stray node is not reported then.
    w.group_mut("workers").stack_busy = true;
    let busy = w.plan();
    assert!(!busy.explanation.alerts.iter().any(|a| matches!(a, Alert::NodeWithoutMember { .. })));
}

#[test]
fn an_unready_old_minion_is_reported_not_removed() {
    let mut w = World::new();
    w.policy.scale_up.max_node_provision_time = Duration::from_secs(600);
    w.group("workers", 0, 10, 4000, 16 * GI);
    w.minion("workers", "w-0").ready = false;
    let plan = w.plan();
    assert!(plan.actions.is_empty());
    assert!(plan.explanation.alerts.iter().any(|a| matches!(a, Alert::NodeUnready { .. })));
}
