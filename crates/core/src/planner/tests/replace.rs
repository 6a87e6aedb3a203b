//! `scale-down.replace-with-cheaper`: a minion whose pods fit on the other
//! nodes plus one cheaper minion is replaced by it, when the saving repays
//! running both within the time its youngest pod has already run.

use super::super::explain::{NodeStatus, Note};
use super::super::protocol::RemovalKind;
use super::*;

fn status<'p>(plan: &'p Plan, node: &str) -> &'p NodeStatus {
    plan.explanation.node(node).unwrap_or_else(|| panic!("{node} not explained"))
}

/// `big` minions (price `big_cpu / 1000` an hour) and `small` 4-CPU ones (4 an
/// hour); one big minion `b-0` running three 1-CPU pods an hour old, with
/// nowhere else to go. Boot latency as the snapshot shows it: 0 s (node and
/// member are created together).
fn world(big_cpu: i64) -> World {
    let mut w = World::new();
    w.policy.scale_down.replace_with_cheaper = true;
    w.group("big", 0, 4, big_cpu, 64 * GI);
    w.group("small", 0, 4, 4000, 16 * GI);
    w.minion("big", "b-0");
    for k in 0..3 {
        w.pod(&format!("app-{k}"), Some("b-0"), 1000, GI);
    }
    w
}

fn replacing(plan: &Plan) -> Option<(&str, &str, u64)> {
    plan.explanation.notes.iter().find_map(|n| match n {
        Note::Replacing { node, group, break_even_secs, .. } => Some((node.as_str(), group.as_str(), *break_even_secs)),
        _ => None,
    })
}

#[test]
fn a_node_whose_pods_fit_a_cheaper_minion_is_replaced_by_one() {
    let mut w = world(16000);
    let plan = w.step();
    // Both running for 0 s of boot plus 10 min of unneeded time cost 4/h;
    // the saving is 12/h: repaid after 200 s, and the pods have run an hour.
    assert_eq!(replacing(&plan), Some(("b-0", "small", 200)));
    let ups = scale_ups(&plan);
    assert_eq!(ups.len(), 1);
    assert_eq!((ups[0].group.as_str(), ups[0].new_desired, ups[0].pod_count), ("small", 1, 3));
    w.apply(&plan);
    // Asked once: no second replacement while this one is under way.
    w.advance(60);
    assert!(scale_ups(&w.step()).is_empty());

    // The new minion is Ready: b-0 is simulated first and its pods land
    // there, so b-0 is unneeded and the empty new minion is not.
    w.minion("small", "s-0");
    let now = w.now;
    w.node_mut("s-0").created = now;
    w.group_mut("small").members[0].created = Some(now);
    w.group_mut("small").desired = 1;
    let plan = w.step();
    assert!(matches!(status(&plan, "b-0"), NodeStatus::Unneeded { .. }), "{:?}", status(&plan, "b-0"));
    assert!(matches!(status(&plan, "s-0"), NodeStatus::NoPlaceForPod { .. }), "{:?}", status(&plan, "s-0"));
    // After unneeded-time (and the cool-down after the addition) b-0 is drained.
    w.advance(w.policy.scale_down.unneeded_time.get().as_secs() as i64);
    let plan = w.step();
    assert!(
        matches!(status(&plan, "b-0"), NodeStatus::RemovalStarted { kind: RemovalKind::Drain }),
        "{:?}",
        status(&plan, "b-0")
    );
    // Its removal under way, the replacement is done and forgotten.
    w.apply(&plan);
    w.step();
    assert_eq!(w.memory.replacement, None);
}

#[test]
fn a_replacement_waits_until_the_pods_have_run_as_long_as_it_takes_to_repay() {
    // 5/h against 4/h: 1/h saved, the overlap (10 min) costs 4/h × 10 min:
    // repaid after 40 min. The pods have run 30 min: not yet.
    let mut w = world(5000);
    for k in 0..3 {
        let at = w.ago(30 * 60);
        w.pod_mut(&format!("app-{k}")).created = at;
    }
    let plan = w.step();
    assert_eq!(replacing(&plan), None);
    assert!(scale_ups(&plan).is_empty());
    // Ten minutes later they have run 40 min: replaced.
    w.advance(10 * 60);
    assert_eq!(replacing(&w.step()), Some(("b-0", "small", 2400)));
}

#[test]
fn no_replacement_without_a_cheaper_group_that_takes_the_pods_or_with_the_knob_off() {
    // The pods need 5 CPUs together: no 4-CPU minion takes them.
    let mut w = world(16000);
    w.pod("app-3", Some("b-0"), 2000, GI);
    let plan = w.step();
    assert_eq!(replacing(&plan), None);
    assert!(scale_ups(&plan).is_empty());
    // The knob off (the default): no replacement where one would pay.
    let mut w = world(16000);
    w.policy.scale_down.replace_with_cheaper = false;
    let plan = w.step();
    assert_eq!(replacing(&plan), None);
    assert!(scale_ups(&plan).is_empty());
    // A pod that blocks the drain (no controller) keeps the node as it is.
    let mut w = world(16000);
    w.pod_mut("app-0").owner = None;
    assert_eq!(replacing(&w.step()), None);
}

#[test]
fn a_replacement_whose_new_minion_never_comes_is_given_up() {
    let mut w = world(16000);
    let plan = w.step();
    assert!(replacing(&plan).is_some());
    w.apply(&plan);
    assert!(w.memory.replacement.is_some());
    // Provisioning time, unneeded time and min pod age pass without the node:
    // forgotten, so another replacement may be asked.
    let sd = &w.policy.scale_down;
    let wait = w.policy.scale_up.max_node_provision_time.get() + sd.unneeded_time.get() + sd.min_pod_age.get();
    w.advance(wait.as_secs() as i64);
    w.group_mut("small").desired = 0; // Heat gave up on the member
    let plan = w.step();
    assert_eq!(replacing(&plan), Some(("b-0", "small", 200)));
}

/// `b-0` can first not be replaced (a pod without a controller holds it);
/// while the planner watches, a `burst` pod arrives, runs a minute and
/// completes; then the blocking pod goes too.
fn after_a_burst(burst_cpu: i64) -> World {
    let mut w = world(16000);
    w.pod("solo", Some("b-0"), 100, GI).owner = None;
    assert_eq!(replacing(&w.step()), None);
    w.advance(10);
    let now = w.now;
    w.pod("burst-0", Some("b-0"), burst_cpu, GI).created = now;
    assert_eq!(replacing(&w.step()), None);
    w.advance(60);
    w.snap.pods.retain(|p| p.name != "burst-0" && p.name != "solo");
    w
}

#[test]
fn a_replacement_keeps_the_room_that_pods_arriving_within_a_boot_needed() {
    // The three pods fit a 4-CPU minion, but a 2-CPU pod arrived a minute
    // ago and would then have had to wait for a boot: b-0 is kept.
    let mut w = after_a_burst(2000);
    let plan = w.step();
    assert_eq!(replacing(&plan), None);
    assert!(scale_ups(&plan).is_empty());
    // A 1-CPU arrival still fits beside them: replaced.
    let mut w = after_a_burst(1000);
    assert_eq!(replacing(&w.step()), Some(("b-0", "small", 200)));
}
