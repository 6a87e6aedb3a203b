//! Scale-up and removal with pod affinity, anti-affinity and topology spread
//! over zones: a group's template node carries the group's zone label, and
//! the pods of the whole zone count.

use crate::model::{LabelSelector, PodAffinityTerm, TopologySpread, WeightedPodAffinityTerm};

use super::super::explain::{NodeStatus, PodOutcome};
use super::*;

const ZONE: &str = "topology.kubernetes.io/zone";

fn app(app: &str) -> LabelSelector {
    LabelSelector { match_labels: BTreeMap::from([("app".into(), app.into())]), ..Default::default() }
}

fn zone_term(to: &str) -> PodAffinityTerm {
    PodAffinityTerm::in_namespace(app(to), ZONE, "default")
}

/// Groups `zone-a` and `zone-b` of 4-CPU minions, one minion each (`a-0`,
/// `b-0`); `zone-a` sorts first, so every tie goes to it.
fn zones() -> World {
    let mut w = World::new();
    for z in ["a", "b"] {
        let group = format!("zone-{z}");
        w.group(&group, 0, 10, 4000, 16 * GI).template.as_mut().unwrap().labels.insert(ZONE.into(), z.into());
        w.minion(&group, &format!("{z}-0"));
    }
    w
}

fn grown(plan: &Plan) -> Vec<(&str, u32)> {
    scale_ups(plan).iter().map(|s| (s.group.as_str(), s.new_desired)).collect()
}

#[test]
fn a_zone_anti_affine_pod_grows_the_group_in_the_other_zone() {
    let mut w = zones();
    w.pod("db-0", Some("a-0"), 1000, GI);
    w.pod("filler-0", Some("b-0"), 3900, GI);
    w.pending("db-1", 1000, GI);
    w.set_placement("db", Placement { pod_anti_affinity: vec![zone_term("db")], ..Placement::default() });
    let plan = w.plan();
    // a-0 has room but is in db-0's zone; b-0 is full; zone-a would win the tie.
    assert_eq!(grown(&plan), [("zone-b", 2)], "{}", plan.explanation);
}

#[test]
fn a_zone_affine_pod_grows_only_the_group_in_its_zone() {
    let mut w = zones();
    w.pod("cache-0", Some("b-0"), 3900, GI);
    w.pod("filler-0", Some("a-0"), 3900, GI);
    w.pending("web-0", 1000, GI);
    w.set_placement("web", Placement { pod_affinity: vec![zone_term("cache")], ..Placement::default() });
    let plan = w.plan();
    assert_eq!(grown(&plan), [("zone-b", 2)], "{}", plan.explanation);

    // With no cache anywhere, web cannot be helped by any group.
    w.snap.pods.retain(|p| p.name != "cache-0");
    let plan = w.plan();
    assert!(grown(&plan).is_empty(), "{}", plan.explanation);
    let outcome = &plan.explanation.pods.iter().find(|p| p.pod.name == "web-0").unwrap().outcome;
    assert!(matches!(outcome, PodOutcome::NoScaleUp { .. }), "{outcome:?}");
}

#[test]
fn a_preferred_zone_chooses_among_groups_that_fit() {
    let mut w = zones();
    w.pod("cache-0", Some("b-0"), 3900, GI);
    w.pod("filler-0", Some("a-0"), 3900, GI);
    w.pending("web-0", 1000, GI);
    let near = WeightedPodAffinityTerm { weight: 100, term: zone_term("cache") };
    w.set_placement("web", Placement { preferred_pod_affinity: vec![near], ..Placement::default() });
    let plan = w.plan();
    assert_eq!(grown(&plan), [("zone-b", 2)], "{}", plan.explanation);
    let text = plan.explanation.to_string();
    assert!(
        text.contains("option zone-b: +1 minion(s) for 1 pod(s), waste 0.84, priority 0, preference 100 (chosen)"),
        "{text}"
    );
    assert!(text.contains("option zone-a: +1 minion(s) for 1 pod(s), waste 0.84, priority 0\n"), "{text}");

    // A preference is no requirement: with zone-b at its max, zone-a grows.
    w.group_mut("zone-b").max_size = 1;
    let plan = w.plan();
    assert_eq!(grown(&plan), [("zone-a", 2)], "{}", plan.explanation);
}

#[test]
fn a_node_stays_when_its_pods_zone_affinity_cannot_be_met_elsewhere() {
    let mut w = zones();
    w.policy.scale_down.consolidation = false;
    w.minion("zone-b", "b-1");
    w.pod("cache-0", Some("b-0"), 3900, GI);
    w.pod("filler-0", Some("a-0"), 2500, GI);
    w.pod("web-0", Some("b-1"), 200, GI);
    // Without a rule web-0 may move to a-0: b-1 is unneeded.
    let plan = w.plan();
    assert!(matches!(plan.explanation.node("b-1"), Some(NodeStatus::Unneeded { .. })), "{}", plan.explanation);
    // Bound to the cache's zone, whose other node is full, it may not.
    w.set_placement("web", Placement { pod_affinity: vec![zone_term("cache")], ..Placement::default() });
    let plan = w.plan();
    let status = plan.explanation.node("b-1").unwrap();
    assert!(matches!(status, NodeStatus::NoPlaceForPod { .. }), "{status:?}");
}

#[test]
fn a_node_stays_when_its_pods_zone_spread_would_break_with_min_domains() {
    let mut w = zones();
    w.policy.scale_down.consolidation = false;
    w.pod("web-0", Some("a-0"), 200, GI);
    w.pod("web-1", Some("b-0"), 200, GI);
    let spread = |min_domains| TopologySpread::required(app("web"), ZONE, 1, min_domains);
    // Removing b-0 takes zone b away: one domain left, web-1 may join web-0.
    w.set_placement("web", Placement { spread: vec![spread(1)], ..Placement::default() });
    let plan = w.plan();
    assert!(
        ["a-0", "b-0"].iter().any(|n| matches!(plan.explanation.node(n), Some(NodeStatus::Unneeded { .. }))),
        "{}",
        plan.explanation
    );
    // minDomains 2: with one zone the floor is 0 and two in zone a is a skew of 2.
    w.set_placement("web", Placement { spread: vec![spread(2)], ..Placement::default() });
    let plan = w.plan();
    for n in ["a-0", "b-0"] {
        let status = plan.explanation.node(n).unwrap();
        assert!(matches!(status, NodeStatus::NoPlaceForPod { .. }), "{n}: {status:?}");
    }
}
